//! The bridge: `tui-gateway [FLAGS] -- CMD` runs CMD as the backend, on
//! private pipes, and forwards everything both ways as the bytes it came as.
//!
//! * Routing: the engine answers `gateway.*` (and `process.*` with
//!   `--local-process`); every other message reaches this service, the
//!   fallback, as its original text, and is queued for the backend's stdin
//!   (bounded by `--backend-stdin-limit`; past it a request gets `-32001`).
//! * The backend's stdout is framed and each line classified from its
//!   envelope (`line.rs`): responses settle the request they answer,
//!   streaming events may coalesce with their neighbours, the backend's
//!   `gateway.ready` is merged into the gateway's own, and a line that is
//!   not JSON never reaches the client.
//!   The reading is `stdout.rs`.
//! * Its stderr is relayed line by line (`relay.rs`).
//! * When it ends: pending requests get `-32002`, `backend.exited` goes out,
//!   and it is restarted (`restart.rs`) or the gateway ends with its status.
//!
//! The wire contract is `docs/bridge.md`.

mod batching;
pub mod line;
mod pending;
mod ready;
mod relay;
mod restart;
mod stdout;

use self::pending::{Ledger, Payment};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde_json::{json, Map, Value};

use self::batching::Batching;
use self::line::{StreamTemplate, StreamTypes};
use self::relay::LineRelay;
use self::restart::Restarts;
use crate::config::{BackendConfig, Config, ReadyPolicy};
use crate::engine::framer::Framer;
use crate::engine::host::{
    ChildEvent, ChildKey, ExitStatus, OutputStream, ResourceLimits, SignalScope, SpawnSpec,
    StderrMode, StdinMode,
};
use crate::engine::lifecycle::{exit_code, Cause, Drain};
use crate::engine::service::{
    Bridged, Fallback, FallbackContext, Forward, ForwardKind, Forwarded, ReadyHold, Service,
    StartError, Unit,
};
use crate::engine::wire::{ErrorCode, Id, RpcError};
use crate::services::child_life::ChildLife;
use crate::services::shutdown::{Step, Timeline};
use crate::services::stdin_queue::{Flushed, StdinQueue};

/// How long the stdout of a backend that exited may stay open (a
/// descendant holding it) before the backend counts as gone anyway. What it
/// wrote before exiting is read first: the wait is extended while output
/// is paced by a slow client.
const LINGER: Duration = Duration::from_millis(250);
/// How often a lingering stdout is looked at again while the client is slow.
const LINGER_RECHECK: Duration = Duration::from_millis(50);

/// The running backend.
#[derive(Debug)]
struct Backend {
    key: ChildKey,
    pid: u32,
    started: Instant,
    framer: Framer,
    relay: LineRelay,
    /// Reaped or not, and its stdout and stderr open or not.
    life: ChildLife,
    /// When it was reaped: its stdout may linger until then + [`LINGER`].
    linger_until: Option<Instant>,
    stdin_open: bool,
    /// The gateway signalled it (a shutdown): its status is not passed on.
    signalled: bool,
}

/// Where the bridge is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Running,
    /// Waiting to start the next backend.
    Restarting(Instant),
    /// Gone for good (`--keep-running`, or a drain that ends the gateway).
    Gone(ExitStatus),
}

#[derive(Debug, Default)]
struct Stats {
    requests_forwarded: u64,
    notifications_forwarded: u64,
    responses_forwarded: u64,
    refused: u64,
    answered_for_backend: u64,
    junk_lines: u64,
    oversize_lines: u64,
    bytes_to_backend: u64,
    bytes_from_backend: u64,
    frames_from_backend: u64,
    stderr_lines: u64,
    stderr_dropped: u64,
}

/// The backend bridge service.
#[derive(Debug)]
pub struct BackendService {
    config: BackendConfig,
    max_frame_bytes: usize,
    streams: StreamTypes,
    /// The bytes around the last streaming event's text ([`StreamTemplate`]).
    template: StreamTemplate,
    backend: Option<Backend>,
    state: State,
    stdin: StdinQueue,
    /// Requests the backend owes an answer, and answers owed for requests
    /// no backend will answer (`pending.rs`).
    ledger: Ledger,
    /// The batch being forwarded: its members and its requests' ids, sent
    /// at its end.
    batch: Option<(Vec<Vec<u8>>, Vec<Id>)>,
    /// Whether the backend takes batches, and the batches kept until that
    /// is known (`batching.rs`).
    batching: Batching,
    restarts: Restarts,
    generation: u64,
    ready_deadline: Option<Instant>,
    shutdown: Option<Timeline>,
    junk_window: (Instant, u32),
    stats: Stats,
}

impl BackendService {
    /// A bridge to `config.backend.argv`.
    pub fn new(config: &Config) -> BackendService {
        BackendService {
            streams: StreamTypes::new(config.backend.stream_events.clone()),
            template: StreamTemplate::default(),
            restarts: Restarts::new(config.backend.restart),
            config: config.backend.clone(),
            max_frame_bytes: config.max_frame_bytes,
            backend: None,
            state: State::Running,
            stdin: StdinQueue::default(),
            ledger: Ledger::default(),
            batch: None,
            batching: Batching::new(config.backend.stdin_limit_bytes),
            generation: 0,
            ready_deadline: None,
            shutdown: None,
            junk_window: (Instant::now(), 0),
            stats: Stats::default(),
        }
    }

    fn spawn(&mut self, cx: &mut FallbackContext<'_>) -> std::io::Result<()> {
        let spec = SpawnSpec {
            argv: self.config.argv.clone(),
            cwd: self.config.cwd.clone(),
            clear_env: false,
            env: Vec::new(),
            stdin: StdinMode::Pipe,
            stderr: StderrMode::Pipe,
            pty: None,
            limits: ResourceLimits::default(),
        };
        let spawned = cx.spawn(&spec)?;
        self.generation += 1;
        log::info!(
            "backend {:?} started, pid {} (generation {})",
            self.config.argv,
            spawned.pid,
            self.generation
        );
        self.backend = Some(Backend {
            key: spawned.key,
            pid: spawned.pid,
            started: cx.now(),
            framer: Framer::new(self.max_frame_bytes),
            relay: LineRelay::default(),
            life: ChildLife::new(true),
            linger_until: None,
            stdin_open: true,
            signalled: false,
        });
        self.state = State::Running;
        self.flush(cx);
        Ok(())
    }

    fn command_line(&self) -> String {
        self.config.argv.join(" ")
    }

    /// Writes what the backend's stdin takes now.
    fn flush(&mut self, cx: &mut FallbackContext<'_>) {
        let Some(b) = self.backend.as_mut().filter(|b| b.stdin_open) else {
            return;
        };
        let before = self.stdin.pending();
        let flushed = self.stdin.flush(cx.host(), b.key);
        self.stats.bytes_to_backend += before.saturating_sub(self.stdin.pending()) as u64;
        if flushed != Flushed::Open {
            b.stdin_open = false;
        }
    }

    /// Queues one message for the backend, or says why it cannot be.
    fn enqueue(
        &mut self,
        cx: &mut FallbackContext<'_>,
        raw: &[u8],
        in_batch: bool,
    ) -> Result<(), RpcError> {
        if let State::Gone(status) = self.state {
            return Err(backend_exited(status));
        }
        if cx.drain().is_some() && self.stdin.is_closing() {
            return Err(RpcError::new(
                ErrorCode::HandlerFailed,
                "shutting down: the backend's stdin is closed",
            ));
        }
        if self.backend.as_ref().is_some_and(|b| !b.stdin_open) {
            return Err(RpcError::new(
                ErrorCode::HandlerFailed,
                "the backend closed its stdin: it takes no more messages",
            ));
        }
        let limit = self.config.stdin_limit_bytes;
        let batch_bytes = self
            .batch
            .as_ref()
            .map_or(0, |(members, _)| members.iter().map(|m| m.len() + 1).sum());
        // One message larger than the whole bound is taken when nothing
        // waits (it could never be sent otherwise): the queue then holds at
        // most max(limit, --max-frame-bytes) plus a newline.
        let waiting = self.stdin.pending() + batch_bytes;
        if waiting > 0 && waiting + raw.len() + 2 > limit {
            self.stats.refused += 1;
            return Err(RpcError::new(
                ErrorCode::Overloaded,
                format!(
                    "backend overloaded: {} bytes already wait for its stdin (--backend-stdin-limit {limit}); retry when it has read them",
                    self.stdin.pending() + batch_bytes
                ),
            )
            .with_data(json!({"limit": limit, "pending": self.stdin.pending() + batch_bytes})));
        }
        if in_batch {
            let (members, _) = self.batch.get_or_insert_with(Default::default);
            members.push(raw.to_vec());
        } else {
            // Checked against the limit above; written at the end of the
            // input turn (end_input_turn), one write for many messages.
            self.stdin.push_line(raw);
        }
        Ok(())
    }

    /// Queues bytes for the backend's stdin that were admitted already (a
    /// message checked against the bound, a batch, a batch sent again).
    fn push_stdin(&mut self, bytes: &[u8]) {
        if let Err(full) = self.stdin.push(bytes, usize::MAX) {
            unreachable!("an unbounded push was refused: {full:?}");
        }
    }

    /// Every pending request will get `error` instead of the backend's
    /// answer; `then` (an event payload) follows the last of them.
    fn owe_pending(&mut self, cx: &mut FallbackContext<'_>, error: RpcError, then: Option<Value>) {
        self.ledger.owe_all(error, then);
        self.pay_owed(cx);
    }

    /// Answers owed requests while the queue has room, oldest first; each
    /// group's event goes out after its last answer. Called again every
    /// tick, so the rest follows as the client reads. A transparent bridge
    /// adds nothing of its own: the owed are let go unanswered.
    fn pay_owed(&mut self, cx: &mut FallbackContext<'_>) {
        let transparent = self.config.transparent;
        let stats = &mut self.stats;
        self.ledger.pay(|payment| match payment {
            Payment::Answer(..) if cx.is_backpressured() => false,
            Payment::Answer(_, _) if transparent => true,
            Payment::Answer(id, error) => {
                stats.answered_for_backend += 1;
                cx.reply(id, &Err(error.clone()));
                true
            }
            Payment::Then(_) if transparent => true,
            Payment::Then(payload) => {
                cx.emit("backend.exited", payload);
                true
            }
        });
    }

    fn on_stderr(&mut self, cx: &mut FallbackContext<'_>, bytes: Option<&[u8]>) {
        let Some(b) = self.backend.as_mut() else {
            return;
        };
        let mut relay = std::mem::take(&mut b.relay);
        let (mut written, mut dropped) = (0, 0);
        let mut emit = |l: &[u8]| {
            if cx.host().stderr_line(l) {
                written += 1;
            } else {
                dropped += 1;
            }
        };
        match bytes {
            Some(bytes) => relay.push(bytes, &mut emit),
            None => relay.finish(&mut emit),
        }
        self.stats.stderr_lines += written;
        self.stats.stderr_dropped += dropped;
        if let Some(b) = self.backend.as_mut() {
            b.relay = relay;
        }
    }

    /// Ends the backend's life once it was reaped and its stdout closed (or
    /// lingered long enough): answers what it owed, says so, and restarts
    /// it or ends the gateway.
    fn finish_if_gone(&mut self, cx: &mut FallbackContext<'_>) {
        let now = cx.now();
        let backpressured = cx.is_backpressured();
        let Some(b) = &mut self.backend else { return };
        let Some(status) = b.life.status() else {
            return;
        };
        if !b.life.is_over() {
            match b.linger_until {
                Some(t) if now >= t && backpressured => {
                    // What it wrote may still wait in the pipe for room in
                    // the queue: look again a little later.
                    b.linger_until = Some(now + LINGER_RECHECK);
                    return;
                }
                Some(t) if now >= t => {}
                _ => return,
            }
        }
        let b = self.backend.take().expect("checked above");
        if b.life.is_open(OutputStream::Stdout) {
            log::warn!(
                "backend pid {} exited, but a descendant still holds its stdout; not waiting for it",
                b.pid
            );
        }
        let mut framer = b.framer;
        if let Some(tail) = framer.finish() {
            self.stats.junk_lines += 1;
            log::warn!("the backend's stdout ended inside a line: {tail} bytes without a newline were not forwarded");
        }
        cx.release(b.key);
        self.stdin = StdinQueue::default();
        self.batch = None;
        self.batching.reset();
        let (code, signal) = status.fields();
        log::info!("backend pid {} ended: {}", b.pid, status.describe());
        // A backend that never got ready: the client still gets its ready
        // first, then what follows.
        self.release_ready_unmerged(cx);
        let restart_at = if cx.drain().is_some() {
            None
        } else {
            self.restarts.after_exit(status, b.started, cx.now())
        };
        // Everything it owed is answered, as the queue has room, and then
        // the client hears why.
        self.owe_pending(
            cx,
            backend_exited(status),
            Some(json!({"code": code, "signal": signal, "restarting": restart_at.is_some()})),
        );
        match restart_at {
            Some(at) => {
                self.state = State::Restarting(at);
            }
            None => {
                self.state = State::Gone(status);
                let keep = self.config.keep_running && !self.config.transparent;
                let draining = cx.drain().is_some();
                // Serving: the gateway ends with its backend (unless
                // --keep-running). Draining: a backend that ended on its own
                // (not signalled by the gateway) passes its status on.
                if (!draining && !keep) || (draining && !b.signalled) {
                    cx.request_shutdown(Cause::BackendGone {
                        code: status.shell_code(),
                        reason: format!("backend {}", status.describe()),
                    });
                }
            }
        }
    }

    fn signal(&mut self, cx: &mut FallbackContext<'_>, signal: i32, scope: SignalScope) {
        if let Some(b) = self.backend.as_mut().filter(|b| b.life.is_running()) {
            b.signalled = true;
            let key = b.key;
            if let Err(e) = cx.host().signal(key, signal, scope) {
                log::debug!("signalling the backend: {e}");
            }
        }
    }
}

fn backend_exited(status: ExitStatus) -> RpcError {
    let (code, signal) = status.fields();
    RpcError::new(
        ErrorCode::BackendExited,
        format!("backend exited: it {} before answering", status.describe()),
    )
    .with_data(json!({"code": code, "signal": signal}))
}

impl Unit for BackendService {
    fn name(&self) -> &'static str {
        "backend"
    }

    fn methods(&self) -> &'static [&'static str] {
        &[]
    }

    fn limits(&self) -> Map<String, Value> {
        let mut limits = Map::new();
        limits.insert(
            "backend_stdin_limit_bytes".into(),
            json!(self.config.stdin_limit_bytes),
        );
        limits.insert("backend_max_pending".into(), json!(self.config.max_pending));
        limits
    }

    fn next_deadline(&self) -> Option<Instant> {
        let linger = self.backend.as_ref().and_then(|b| b.linger_until);
        let restart = match self.state {
            State::Restarting(at) => Some(at),
            _ => None,
        };
        let shutdown = self
            .shutdown
            .as_ref()
            .filter(|_| self.backend.is_some())
            .and_then(Timeline::next_deadline);
        [self.ready_deadline, linger, restart, shutdown]
            .into_iter()
            .flatten()
            .min()
    }

    fn is_idle(&self) -> bool {
        self.backend.is_none() && !self.ledger.owes()
    }

    fn busy_summary(&self) -> Option<String> {
        let Some(b) = self.backend.as_ref() else {
            return self.ledger.owes().then(|| {
                format!(
                    "{} answer(s) for a gone backend not yet queued",
                    self.ledger.unanswered()
                )
            });
        };
        Some(format!(
            "backend pid {} {} with {} request(s) unanswered",
            b.pid,
            if !b.life.is_running() {
                "exited, its stdout still open"
            } else {
                "still running"
            },
            self.ledger.unanswered()
        ))
    }

    fn on_exit(&mut self, host: &mut dyn crate::engine::host::Host) {
        if let Some(b) = self.backend.take() {
            if b.life.is_running() {
                let _ = host.signal(b.key, libc::SIGKILL, SignalScope::Tree);
            }
            host.release(b.key);
        }
    }

    fn stats(&self) -> Map<String, Value> {
        let s = &self.stats;
        let mut map = Map::new();
        map.insert(
            "backend".into(),
            json!({
                "requests_forwarded": s.requests_forwarded,
                "notifications_forwarded": s.notifications_forwarded,
                "responses_forwarded": s.responses_forwarded,
                "pending": self.ledger.unanswered(),
                "refused_overloaded": s.refused,
                "answered_backend_exited": s.answered_for_backend,
                "restarts": self.restarts.total(),
                "junk_lines": s.junk_lines,
                "oversize_lines": s.oversize_lines,
                "frames_from_backend": s.frames_from_backend,
                "bytes_from_backend": s.bytes_from_backend,
                "bytes_to_backend": s.bytes_to_backend,
                "stdin_queue_bytes": self.stdin.pending(),
                "stderr_lines_relayed": s.stderr_lines,
                "stderr_lines_dropped": s.stderr_dropped,
                "stderr_lines_truncated": self.backend.as_ref().map_or(0, |b| b.relay.truncated),
            }),
        );
        map
    }

    fn info(&self) -> Map<String, Value> {
        let state = match self.state {
            State::Running if self.backend.as_ref().is_some_and(|b| !b.life.is_running()) => {
                "exited".to_owned()
            }
            State::Running => "running".to_owned(),
            State::Restarting(_) => "restarting".to_owned(),
            State::Gone(status) => format!("gone ({})", status.describe()),
        };
        let mut map = Map::new();
        map.insert(
            "backend".into(),
            json!({
                "argv": self.config.argv,
                "cwd": self.config.cwd.as_ref().map(|p| p.display().to_string()),
                "pid": self.backend.as_ref().map(|b| b.pid),
                "state": state,
                "generation": self.generation,
                "restart": self.config.restart.as_str(),
                "ready": self.config.ready.as_str(),
                "transparent": self.config.transparent,
                "keep_running": self.config.keep_running,
                "local_process": self.config.local_process,
                "batches": self.batching.support().as_str(),
            }),
        );
        map
    }
}

impl Service<Bridged> for BackendService {
    fn start(&mut self, cx: &mut FallbackContext<'_>) -> Result<(), StartError> {
        if self.config.ready == ReadyPolicy::Event && !self.config.transparent {
            self.ready_deadline = Some(cx.now() + self.config.ready_timeout);
        }
        self.spawn(cx).map_err(|e| StartError {
            code: exit_code::UNAVAILABLE,
            reason: format!(
                "cannot start the backend {:?}: {e}{}",
                self.command_line(),
                match self.config.cwd.as_ref() {
                    Some(dir) => format!(" (in --backend-cwd {})", PathBuf::from(dir).display()),
                    None => String::new(),
                }
            ),
        })
    }

    fn on_child(&mut self, cx: &mut FallbackContext<'_>, child: ChildKey, event: ChildEvent) {
        if self.backend.as_ref().map_or(true, |b| b.key != child) {
            return;
        }
        match event {
            ChildEvent::Output(OutputStream::Stderr, bytes) => self.on_stderr(cx, Some(&bytes)),
            ChildEvent::Output(_, bytes) => self.on_stdout(cx, &bytes),
            ChildEvent::Eof(stream) => {
                if stream == OutputStream::Stderr {
                    self.on_stderr(cx, None);
                }
                if let Some(b) = self.backend.as_mut() {
                    b.life.on_eof(stream);
                }
            }
            ChildEvent::StdinWritable => self.flush(cx),
            ChildEvent::StdinGone => {
                if let Some(b) = self.backend.as_mut() {
                    b.stdin_open = false;
                }
                self.stdin = StdinQueue::default();
            }
            ChildEvent::Exited(status, usage) => {
                if let Some(b) = self.backend.as_mut() {
                    b.life.on_exited(status, usage, cx.now());
                    b.linger_until = Some(cx.now() + LINGER);
                }
            }
        }
        self.finish_if_gone(cx);
    }

    fn on_drain(&mut self, cx: &mut FallbackContext<'_>, drain: &Drain) {
        if let State::Restarting(_) = self.state {
            // No backend will start again: what waited for one is answered.
            self.state = State::Gone(ExitStatus::Code(0));
            self.stdin = StdinQueue::default();
            self.owe_pending(
                cx,
                RpcError::new(
                    ErrorCode::HandlerFailed,
                    "shutting down: the backend was waiting to restart and will not",
                ),
                None,
            );
        }
        // Output flows from now on, the ready first, whatever the backend does.
        self.release_ready_unmerged(cx);
        let gentle = matches!(
            drain.cause,
            Cause::StdinEof | Cause::Requested | Cause::BackendGone { .. }
        );
        if gentle {
            // Close its stdin once every queued byte is written, and let it
            // finish on its own; its answers still flow to the client.
            self.stdin.close_when_empty();
            self.flush(cx);
        }
        self.shutdown = Some(Timeline::new(drain, cx.now(), gentle));
        self.tick(cx);
    }

    fn tick(&mut self, cx: &mut FallbackContext<'_>) {
        let now = cx.now();
        if self.ready_deadline.is_some_and(|t| now >= t) {
            self.release_ready_unmerged(cx);
        }
        if let State::Restarting(at) = self.state {
            if now >= at {
                if let Err(e) = self.spawn(cx) {
                    stderr_note(
                        cx,
                        &format!(
                            "[gateway-backend] restarting {:?} failed: {e}",
                            self.command_line()
                        ),
                    );
                    let status = ExitStatus::Code(exit_code::UNAVAILABLE);
                    self.state = State::Gone(status);
                    // What waited for the restart is answered: it failed.
                    self.stdin = StdinQueue::default();
                    self.owe_pending(cx, backend_exited(status), None);
                    if !self.config.keep_running {
                        cx.request_shutdown(Cause::BackendGone {
                            code: exit_code::UNAVAILABLE,
                            reason: format!("restarting the backend failed: {e}"),
                        });
                    }
                }
            }
        }
        self.pay_owed(cx);
        match self.shutdown.as_mut().and_then(|t| t.due(now)) {
            Some(Step::Term) => self.signal(cx, libc::SIGTERM, SignalScope::Group),
            Some(Step::Kill) => self.signal(cx, libc::SIGKILL, SignalScope::Tree),
            None => {}
        }
        self.finish_if_gone(cx);
    }
}

impl Fallback for BackendService {
    fn forwards_every_line(&self) -> bool {
        self.config.transparent
    }

    fn accepts_input(&self) -> bool {
        // Transparent forwarding has no answer of its own to refuse with:
        // past the bound, the client's stdin waits in its pipe instead.
        !self.config.transparent || self.stdin.pending() < self.config.stdin_limit_bytes
    }

    fn ready_hold(&self) -> ReadyHold {
        match (self.config.transparent, self.config.ready) {
            (true, _) => ReadyHold::Suppress,
            (false, ReadyPolicy::Event) => ReadyHold::Hold,
            (false, ReadyPolicy::None) => ReadyHold::Send,
        }
    }

    fn forward(&mut self, cx: &mut FallbackContext<'_>, message: Forward<'_>) -> Forwarded {
        match message.kind {
            ForwardKind::Line => {
                if let State::Gone(_) = self.state {
                    return Forwarded::Sent;
                }
                // Transparent: bounded by not reading the client
                // (accepts_input), not by refusing.
                self.stdin.push_line(message.raw);
                Forwarded::Sent
            }
            ForwardKind::Request(_) if self.ledger.pending() >= self.config.max_pending => {
                self.stats.refused += 1;
                Forwarded::Answer(
                    RpcError::new(
                        ErrorCode::Overloaded,
                        format!(
                            "backend overloaded: it owes {} answers already (--backend-max-pending); retry when it has answered some",
                            self.ledger.pending()
                        ),
                    )
                    .with_data(json!({"limit": self.config.max_pending})),
                )
            }
            ForwardKind::Request(id) => match self.enqueue(cx, message.raw, message.in_batch) {
                Ok(()) => {
                    self.stats.requests_forwarded += 1;
                    if let (true, Some((_, ids))) = (message.in_batch, self.batch.as_mut()) {
                        ids.push(id.canonical());
                    } else if *id == Id::Null {
                        self.batching.sent_null_request();
                    }
                    self.ledger.expect(id);
                    Forwarded::Sent
                }
                Err(error) => Forwarded::Answer(error),
            },
            ForwardKind::Notification | ForwardKind::Response(_) => {
                let response = matches!(message.kind, ForwardKind::Response(_));
                match self.enqueue(cx, message.raw, message.in_batch) {
                    Ok(()) if response => self.stats.responses_forwarded += 1,
                    Ok(()) => self.stats.notifications_forwarded += 1,
                    Err(error) => {
                        log::warn!("a client message for the backend was dropped: {error}");
                    }
                }
                Forwarded::Sent
            }
        }
    }

    fn end_batch(&mut self, _cx: &mut FallbackContext<'_>) {
        let Some((members, ids)) = self.batch.take() else {
            return;
        };
        // Written at the end of the input turn, with what else it queued.
        let bytes = self.batching.send(members, ids);
        self.push_stdin(&bytes);
    }

    fn end_input_turn(&mut self, cx: &mut FallbackContext<'_>) {
        self.flush(cx);
    }
}

fn stderr_note(cx: &mut FallbackContext<'_>, text: &str) {
    let mut line = text.as_bytes()[..text.len().min(relay::LINE_MAX - 1)].to_vec();
    line.push(b'\n');
    cx.host().stderr_line(&line);
}
