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
//! * Its stderr is relayed line by line (`relay.rs`).
//! * When it ends: pending requests get `-32002`, `backend.exited` goes out,
//!   and it is restarted (`restart.rs`) or the gateway ends with its status.
//!
//! The wire contract is `docs/bridge.md`.

mod batching;
pub mod line;
mod relay;
mod restart;

use std::collections::HashMap;
use std::ops::Range;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde_json::{json, Map, Value};

use self::batching::{Batching, Response};
use self::line::{
    classify, classify_with, merged_ready, Line, StreamTemplate, StreamTypes, BACKEND_READY_EVENT,
};
use self::relay::LineRelay;
use self::restart::Restarts;
use crate::config::{BackendConfig, Config, ReadyPolicy};
use crate::engine::framer::{Decoded, Framer};
use crate::engine::host::{
    ChildEvent, ChildKey, ExitStatus, OutputStream, ResourceLimits, SignalScope, SpawnSpec,
    StderrMode, StdinMode,
};
use crate::engine::lifecycle::{exit_code, Cause, Drain};
use crate::engine::outbound::Refused;
use crate::engine::service::{
    Context, Forward, ForwardKind, Forwarded, ReadyHold, Reply, Service, StartError,
};
use crate::engine::wire::{event_frame, write_json, ErrorCode, Id, RpcError};
use crate::services::shutdown::{Step, Timeline};
use crate::services::stdin_queue::{Flushed, StdinQueue};
use crate::signal_name;

/// How long the stdout of a backend that exited may stay open (a
/// descendant holding it) before the backend counts as gone anyway. What it
/// wrote before exiting is read first: the wait is extended while output
/// is paced by a slow client.
const LINGER: Duration = Duration::from_millis(250);
/// How often a lingering stdout is looked at again while the client is slow.
const LINGER_RECHECK: Duration = Duration::from_millis(50);
/// Junk lines logged per [`JUNK_WINDOW`]; the rest are only counted.
const JUNK_LOGGED: u32 = 20;
const JUNK_WINDOW: Duration = Duration::from_secs(10);
/// Bytes of a junk line shown in the log.
const JUNK_SHOWN: usize = 200;

/// FNV-1a: ids are short and chosen by the client, which is not an
/// adversary of its own gateway, so a fast hash beats SipHash's flood
/// resistance here (a pipelined burst keeps 100,000 ids in the map).
#[derive(Debug, Default, Clone, Copy)]
struct BuildFnv;

#[derive(Debug)]
struct Fnv(u64);

impl std::hash::BuildHasher for BuildFnv {
    type Hasher = Fnv;
    fn build_hasher(&self) -> Fnv {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
}

impl std::hash::Hasher for Fnv {
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
    }
    fn finish(&self) -> u64 {
        self.0
    }
}

/// A pending request's id as the map knows it: an integer id (the common
/// case) as its value, with no allocation; any other id in its canonical
/// form ([`Id::canonical`]), so `2.50` and `2.5` are one id.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum PendingKey {
    Int(i64),
    Other(Id),
}

impl PendingKey {
    fn of(id: &Id) -> PendingKey {
        match id {
            Id::Number(text) => match text.parse::<i64>() {
                Ok(n) => PendingKey::Int(n),
                // `1e2` and `100.0` are the integer 100 too.
                Err(_) => match id.canonical() {
                    Id::Number(canonical) => match canonical.parse::<i64>() {
                        Ok(n) => PendingKey::Int(n),
                        Err(_) => PendingKey::Other(Id::Number(canonical)),
                    },
                    other => PendingKey::Other(other),
                },
            },
            _ => PendingKey::Other(id.clone()),
        }
    }
}

/// Requests the backend owes under one id.
#[derive(Debug)]
struct Pending {
    /// The id as the client wrote it, when the key does not give it back
    /// (`-0`, `2.50`).
    written: Option<Id>,
    count: u32,
}

impl Pending {
    fn new(id: &Id) -> Pending {
        // A JSON integer has no leading zeros or `+`: its value's decimal
        // form is its text, except for `-0` (and `1e2`, `100.0`).
        let exact = match (PendingKey::of(id), id) {
            (PendingKey::Int(_), Id::Number(text)) => {
                &**text != "-0" && !text.contains(['.', 'e', 'E'])
            }
            (PendingKey::Other(key), _) => key == *id,
            _ => false,
        };
        Pending {
            written: (!exact).then(|| id.clone()),
            count: 0,
        }
    }

    /// The id to answer under.
    fn id(&self, key: &PendingKey) -> Id {
        match (&self.written, key) {
            (Some(id), _) => id.clone(),
            (None, PendingKey::Int(n)) => Id::Number(n.to_string().into()),
            (None, PendingKey::Other(id)) => id.clone(),
        }
    }
}

/// Answers the backend will never give, paid to the client as the outbound
/// queue has room (a paced producer like any other: a crash with half a
/// million requests pending must not queue half a million errors at once),
/// then the event that says why, after the last of them.
#[derive(Debug)]
struct Owed {
    /// The requests, as the client wrote their ids, and how many under each.
    ids: std::collections::VecDeque<(Id, u32)>,
    /// What each of them gets: `-32002` (the backend ended) or `-32000`
    /// (the gateway shut down before a restart).
    error: RpcError,
    /// `backend.exited`, sent once every answer above is queued.
    then: Option<Value>,
}

/// The running backend.
#[derive(Debug)]
struct Backend {
    key: ChildKey,
    pid: u32,
    started: Instant,
    framer: Framer,
    relay: LineRelay,
    stdout_open: bool,
    stderr_open: bool,
    status: Option<ExitStatus>,
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
    /// Requests the backend owes an answer, by canonical id: the id as the
    /// client wrote it, and how many are in flight under it.
    pending: HashMap<PendingKey, Pending, BuildFnv>,
    /// Requests in `pending`, counted (at most `--backend-max-pending`).
    pending_count: usize,
    /// Answers owed for requests no backend will answer, oldest first.
    owed: std::collections::VecDeque<Owed>,
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
            pending: HashMap::default(),
            pending_count: 0,
            owed: std::collections::VecDeque::new(),
            batch: None,
            batching: Batching::new(config.backend.stdin_limit_bytes),
            generation: 0,
            ready_deadline: None,
            shutdown: None,
            junk_window: (Instant::now(), 0),
            stats: Stats::default(),
        }
    }

    fn spawn(&mut self, cx: &mut Context<'_>) -> std::io::Result<()> {
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
            stdout_open: true,
            stderr_open: true,
            status: None,
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
    fn flush(&mut self, cx: &mut Context<'_>) {
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
        cx: &mut Context<'_>,
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
            self.push_stdin(raw);
            self.push_stdin(b"\n");
        }
        Ok(())
    }

    /// One line of the backend's stdout.
    fn on_line(&mut self, cx: &mut Context<'_>, line: Vec<u8>) {
        self.stats.frames_from_backend += 1;
        if self.config.transparent {
            match classify(&line, &self.streams) {
                Line::Junk(why) => self.junk(cx, why, &line),
                _ => self.pass_on(cx, line),
            }
            return;
        }
        match classify_with(&line, &self.streams, &mut self.template) {
            Line::Response(id) => {
                let error = id == Id::Null && crate::engine::wire::contains_error(&line);
                if let Response::Refusal { resend } = self.batching.on_response(&id, error) {
                    // Not an answer to anything the client sent.
                    self.push_stdin(&resend);
                    self.flush(cx);
                    return;
                }
                self.settle(&id);
                let len = line.len();
                let pushed = cx.reply_line(&id, line);
                self.too_large(cx, pushed, len, Some(&id));
            }
            Line::Ready { type_span, payload } => self.on_ready(cx, line, type_span, payload),
            Line::Stream(text) => {
                let mut frame = line;
                frame.push(b'\n');
                let len = frame.len();
                let pushed = cx.push_raw_stream(frame, text);
                self.too_large(cx, pushed, len, None);
            }
            Line::Other => self.pass_on(cx, line),
            Line::Array(elements) => {
                if elements.iter().all(|(_, id)| id.is_none()) {
                    return self.pass_on(cx, line);
                }
                // A batch answer: each response goes to the batch it answers.
                self.batching.on_array();
                for (span, id) in elements {
                    let element = &line[span];
                    let pushed = match &id {
                        Some(id) => {
                            self.settle(id);
                            cx.reply_line(id, element.to_vec())
                        }
                        None => cx.push_line(element.to_vec()),
                    };
                    self.too_large(cx, pushed, element.len(), id.as_ref());
                }
            }
            Line::Junk(why) => self.junk(cx, why, &line),
        }
    }

    /// Passes a backend line that answers no request on to the client.
    fn pass_on(&mut self, cx: &mut Context<'_>, line: Vec<u8>) {
        let len = line.len();
        let pushed = cx.push_line(line);
        self.too_large(cx, pushed, len, None);
    }

    /// A backend line the outbound queue refused for its size (larger than
    /// the room below the hard limit): a response is answered with `-32001`
    /// under its id instead, anything else is dropped like an over-long line
    /// (counted, logged). No request loses its answer.
    fn too_large(
        &mut self,
        cx: &mut Context<'_>,
        pushed: Result<(), Refused>,
        len: usize,
        answers: Option<&Id>,
    ) {
        if pushed.is_ok() {
            return;
        }
        self.stats.oversize_lines += 1;
        let room = cx.room();
        match answers {
            Some(id) => cx.reply(
                id,
                &Err(RpcError::new(
                    ErrorCode::Overloaded,
                    format!(
                        "the backend's answer ({len} bytes) is larger than the {room} bytes left below the outbound hard limit (--outbound-hard-limit)"
                    ),
                )
                .with_data(json!({"limit": room}))),
            ),
            None => self.junk(
                cx,
                "larger than the room below --outbound-hard-limit",
                format!("({len} bytes)").as_bytes(),
            ),
        }
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
    fn owe_pending(&mut self, cx: &mut Context<'_>, error: RpcError, then: Option<Value>) {
        self.pending_count = 0;
        let ids = self
            .pending
            .drain()
            .map(|(key, pending)| (pending.id(&key), pending.count))
            .collect();
        self.owed.push_back(Owed { ids, error, then });
        self.pay_owed(cx);
    }

    /// Answers owed requests while the queue has room, oldest first; each
    /// group's event goes out after its last answer. Called again every
    /// tick, so the rest follows as the client reads.
    fn pay_owed(&mut self, cx: &mut Context<'_>) {
        while let Some(group) = self.owed.front_mut() {
            while let Some((id, count)) = group.ids.front_mut() {
                if cx.is_backpressured() {
                    return;
                }
                if !self.config.transparent {
                    self.stats.answered_for_backend += 1;
                    cx.reply(id, &Err(group.error.clone()));
                }
                *count -= 1;
                if *count == 0 {
                    group.ids.pop_front();
                }
            }
            let group = self.owed.pop_front().expect("the front group");
            if let (Some(payload), false) = (group.then, self.config.transparent) {
                cx.emit("backend.exited", payload);
            }
        }
    }

    /// Requests owed an answer, pending or owed.
    fn unanswered(&self) -> u64 {
        let pending: u64 = self.pending.values().map(|p| u64::from(p.count)).sum();
        let owed: u64 = self
            .owed
            .iter()
            .flat_map(|g| g.ids.iter().map(|(_, n)| u64::from(*n)))
            .sum();
        pending + owed
    }

    /// A request was answered: it no longer waits for the backend.
    fn settle(&mut self, id: &Id) {
        let key = PendingKey::of(id);
        if let Some(pending) = self.pending.get_mut(&key) {
            self.pending_count -= 1;
            pending.count -= 1;
            if pending.count == 0 {
                self.pending.remove(&key);
            }
        }
    }

    fn on_ready(
        &mut self,
        cx: &mut Context<'_>,
        line: Vec<u8>,
        type_span: Range<usize>,
        payload: Option<Range<usize>>,
    ) {
        // The gateway's ready is held only until the first backend ready
        // (or the timeout): this is that first one.
        if let Some(ours) = cx.held_ready().cloned() {
            self.ready_deadline = None;
            let frame = merged_ready(&line, payload, &ours);
            return cx.release_ready(frame);
        }
        // The client already had its ready: this one is news about the backend.
        let mut renamed = Vec::with_capacity(line.len() + 1);
        renamed.extend_from_slice(&line[..type_span.start]);
        write_json(&mut renamed, BACKEND_READY_EVENT);
        renamed.extend_from_slice(&line[type_span.end..]);
        self.pass_on(cx, renamed);
    }

    fn junk(&mut self, cx: &mut Context<'_>, why: &str, line: &[u8]) {
        self.stats.junk_lines += 1;
        let now = cx.now();
        if now.duration_since(self.junk_window.0) >= JUNK_WINDOW {
            self.junk_window = (now, 0);
        }
        self.junk_window.1 += 1;
        if self.junk_window.1 > JUNK_LOGGED {
            return;
        }
        let shown = String::from_utf8_lossy(&line[..line.len().min(JUNK_SHOWN)]);
        let more = if line.len() > JUNK_SHOWN { "..." } else { "" };
        let note = format!(
            "[gateway-backend-junk] a backend stdout line that is {why} was not forwarded ({} bytes): {shown:?}{more}\n",
            line.len()
        );
        cx.host().stderr_line(note.as_bytes());
    }

    fn on_stdout(&mut self, cx: &mut Context<'_>, bytes: &[u8]) {
        self.stats.bytes_from_backend += bytes.len() as u64;
        let Some(b) = self.backend.as_mut() else {
            return;
        };
        b.framer.push(bytes);
        loop {
            let Some(b) = self.backend.as_mut() else {
                return;
            };
            match b.framer.next_frame() {
                None => return,
                Some(Decoded::Frame(line)) => self.on_line(cx, line),
                Some(Decoded::TooLarge { limit }) => {
                    self.stats.oversize_lines += 1;
                    self.junk(
                        cx,
                        "longer than --max-frame-bytes",
                        format!("(over {limit} bytes)").as_bytes(),
                    );
                }
            }
        }
    }

    fn on_stderr(&mut self, cx: &mut Context<'_>, bytes: Option<&[u8]>) {
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
    fn finish_if_gone(&mut self, cx: &mut Context<'_>) {
        let now = cx.now();
        let backpressured = cx.is_backpressured();
        let Some(b) = &mut self.backend else { return };
        let Some(status) = b.status else { return };
        if b.stdout_open || b.stderr_open {
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
        if b.stdout_open {
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
        let (code, signal) = status_fields(status);
        log::info!("backend pid {} ended: {}", b.pid, describe(status));
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
                        code: shell_status(status),
                        reason: format!("backend {}", describe(status)),
                    });
                }
            }
        }
    }

    fn signal(&mut self, cx: &mut Context<'_>, signal: i32, scope: SignalScope) {
        if let Some(b) = self.backend.as_mut().filter(|b| b.status.is_none()) {
            b.signalled = true;
            let key = b.key;
            if let Err(e) = cx.host().signal(key, signal, scope) {
                log::debug!("signalling the backend: {e}");
            }
        }
    }

    /// Sends the held ready without the backend's: the timeout passed, the
    /// backend ended first, or the gateway is shutting down.
    fn release_ready_unmerged(&mut self, cx: &mut Context<'_>) {
        if let Some(mut ours) = cx.held_ready().cloned() {
            if let Value::Object(map) = &mut ours {
                map.insert("backend_ready".into(), Value::Bool(false));
            }
            log::warn!(
                "no gateway.ready from the backend (within {:.1}s, --backend-ready-timeout, or before it ended or the gateway shut down): sending the gateway's own with backend_ready: false",
                self.config.ready_timeout.as_secs_f64()
            );
            cx.release_ready(event_frame("gateway.ready", &ours));
        }
        self.ready_deadline = None;
    }
}

fn status_fields(status: ExitStatus) -> (Value, Value) {
    match status {
        ExitStatus::Code(c) => (json!(c), Value::Null),
        ExitStatus::Signal(s) => (Value::Null, json!(signal_name::name(s))),
    }
}

/// The status a shell would report: the code, or 128 + the signal.
fn shell_status(status: ExitStatus) -> i32 {
    match status {
        ExitStatus::Code(c) => c,
        ExitStatus::Signal(s) => 128 + s,
    }
}

fn describe(status: ExitStatus) -> String {
    match status {
        ExitStatus::Code(c) => format!("exited with code {c}"),
        ExitStatus::Signal(s) => format!("was killed by {}", signal_name::name(s)),
    }
}

fn backend_exited(status: ExitStatus) -> RpcError {
    let (code, signal) = status_fields(status);
    RpcError::new(
        ErrorCode::BackendExited,
        format!("backend exited: it {} before answering", describe(status)),
    )
    .with_data(json!({"code": code, "signal": signal}))
}

impl Service for BackendService {
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

    fn call(&mut self, _cx: &mut Context<'_>, method: &str, _params: Option<Value>) -> Reply {
        Err(RpcError::method_not_found(method))
    }

    fn start(&mut self, cx: &mut Context<'_>) -> Result<(), StartError> {
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

    fn is_fallback(&self) -> bool {
        true
    }

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

    fn forward(&mut self, cx: &mut Context<'_>, message: Forward<'_>) -> Forwarded {
        match message.kind {
            ForwardKind::Line => {
                if let State::Gone(_) = self.state {
                    return Forwarded::Sent;
                }
                // Transparent: bounded by not reading the client
                // (accepts_input), not by refusing.
                self.push_stdin(message.raw);
                self.push_stdin(b"\n");
                Forwarded::Sent
            }
            ForwardKind::Request(_) if self.pending_count >= self.config.max_pending => {
                self.stats.refused += 1;
                Forwarded::Answer(
                    RpcError::new(
                        ErrorCode::Overloaded,
                        format!(
                            "backend overloaded: it owes {} answers already (--backend-max-pending); retry when it has answered some",
                            self.pending_count
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
                    self.pending
                        .entry(PendingKey::of(id))
                        .or_insert_with(|| Pending::new(id))
                        .count += 1;
                    self.pending_count += 1;
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

    fn end_batch(&mut self, _cx: &mut Context<'_>) {
        let Some((members, ids)) = self.batch.take() else {
            return;
        };
        // Written at the end of the input turn, with what else it queued.
        let bytes = self.batching.send(members, ids);
        self.push_stdin(&bytes);
    }

    fn end_input_turn(&mut self, cx: &mut Context<'_>) {
        self.flush(cx);
    }

    fn on_child(&mut self, cx: &mut Context<'_>, child: ChildKey, event: ChildEvent) {
        if self.backend.as_ref().map_or(true, |b| b.key != child) {
            return;
        }
        match event {
            ChildEvent::Output(OutputStream::Stderr, bytes) => self.on_stderr(cx, Some(&bytes)),
            ChildEvent::Output(_, bytes) => self.on_stdout(cx, &bytes),
            ChildEvent::Eof(OutputStream::Stderr) => {
                self.on_stderr(cx, None);
                if let Some(b) = self.backend.as_mut() {
                    b.stderr_open = false;
                }
            }
            ChildEvent::Eof(_) => {
                if let Some(b) = self.backend.as_mut() {
                    b.stdout_open = false;
                }
            }
            ChildEvent::StdinWritable => self.flush(cx),
            ChildEvent::StdinGone => {
                if let Some(b) = self.backend.as_mut() {
                    b.stdin_open = false;
                }
                self.stdin = StdinQueue::default();
            }
            ChildEvent::Exited(status, _) => {
                if let Some(b) = self.backend.as_mut() {
                    b.status = Some(status);
                    b.linger_until = Some(cx.now() + LINGER);
                }
            }
        }
        self.finish_if_gone(cx);
    }

    fn on_drain(&mut self, cx: &mut Context<'_>, drain: &Drain) {
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

    fn tick(&mut self, cx: &mut Context<'_>) {
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
        self.backend.is_none() && self.owed.is_empty()
    }

    fn busy_summary(&self) -> Option<String> {
        let Some(b) = self.backend.as_ref() else {
            return (!self.owed.is_empty()).then(|| {
                format!(
                    "{} answer(s) for a gone backend not yet queued",
                    self.unanswered()
                )
            });
        };
        Some(format!(
            "backend pid {} {} with {} request(s) unanswered",
            b.pid,
            if b.status.is_some() {
                "exited, its stdout still open"
            } else {
                "still running"
            },
            self.unanswered()
        ))
    }

    fn on_exit(&mut self, host: &mut dyn crate::engine::host::Host) {
        if let Some(b) = self.backend.take() {
            if b.status.is_none() {
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
                "pending": self.unanswered(),
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
            State::Running if self.backend.as_ref().is_some_and(|b| b.status.is_some()) => {
                "exited".to_owned()
            }
            State::Running => "running".to_owned(),
            State::Restarting(_) => "restarting".to_owned(),
            State::Gone(status) => format!("gone ({})", describe(status)),
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

fn stderr_note(cx: &mut Context<'_>, text: &str) {
    let mut line = text.as_bytes()[..text.len().min(relay::LINE_MAX - 1)].to_vec();
    line.push(b'\n');
    cx.host().stderr_line(&line);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pending_id_is_answered_under_the_bytes_the_client_wrote() {
        for text in ["7", "-0", "2.50", "1e2", "12345678901234567890123", "-42"] {
            let id = Id::Number(text.into());
            let key = PendingKey::of(&id);
            assert_eq!(Pending::new(&id).id(&key), id, "{text}");
        }
        let id = Id::Str("r1".into());
        assert_eq!(Pending::new(&id).id(&PendingKey::of(&id)), id);
        // The backend may write a number back in another form: same key.
        let key = |t: &str| PendingKey::of(&Id::Number(t.into()));
        assert_eq!(key("2.50"), key("2.5"));
        assert_eq!(key("-0"), key("0"));
        assert_eq!(key("1e2"), key("100"));
        assert_ne!(key("7"), PendingKey::of(&Id::Str("7".into())));
        // Integers need no allocation and no copy of the id.
        assert_eq!(key("7"), PendingKey::Int(7));
        assert!(Pending::new(&Id::Number("7".into())).written.is_none());
    }
}
