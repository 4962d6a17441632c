//! `process.*`: run commands for the client, stream their output, feed their
//! stdin, signal them, and make sure none outlives the gateway.
//!
//! The shell does the syscalls (spawn into a new process group, non-blocking
//! pipes, reaping on SIGCHLD, reading only while the outbound queue is below
//! its high-water mark); this service keeps the per-child bookkeeping:
//!
//! * output bytes become `process.output` streaming events, decoded so that
//!   coalesced chunks stay valid (`decode.rs`), and cut so no line passes
//!   64 KiB (`split.rs`);
//! * `process.exit` goes out exactly once, after the child was reaped *and*
//!   its pipes reached EOF, so it always follows all of that child's output
//!   (`state.rs`);
//! * stdin writes are queued per child up to `--child-stdin-limit` and written
//!   as the pipe takes them;
//! * on shutdown, children are terminated by group on a timeline that leaves
//!   room to reap them and flush their exit events before the deadline;
//! * a command's envelope (`timeout_ms`, `output_limit`, `limits`, its
//!   cancel ladder) bounds it, and `process.exit` says what ended it
//!   (`ladder.rs`, `limiter.rs`); `process.cancel` is answered when nothing
//!   of the tree is left, the one answer that waits ([`Context::defer`]).
//!
//! The wire contract is `docs/process.md`.

mod decode;
mod errors;
mod ladder;
mod limiter;
mod params;
mod split;
mod state;

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{json, Map, Value};

use self::decode::Encoding;
use self::errors::{os_error, spawn_error, stdin_closed};
use self::ladder::{Cancelling, Ladder, Step};
use self::state::{Envelope, HeldPiece, Proc, Stopped, WriteRefused};
use crate::config::Config;
use crate::engine::host::{ChildEvent, ChildKey, Host, OutputStream, SignalScope};
use crate::engine::lifecycle::{Cause, Drain};
use crate::engine::service::{method_table, Context, Deferral, Reply, Service, Unit};
use crate::engine::wire::{ErrorCode, RpcError};
use crate::services::shutdown::{Step as ShutdownStep, Timeline};
use crate::signal_name;

/// Procs named in a forced exit's reason; the rest are counted.
const SUMMARY_PROCS: usize = 5;

/// How often a cancelled process whose tree is not gone yet is looked at
/// again (its stragglers were signalled; the reaper collects them).
const TREE_POLL: Duration = Duration::from_millis(10);

/// The `process.*` service.
#[derive(Debug)]
pub struct ProcessService {
    max_processes: usize,
    stdin_limit: usize,
    /// Most escaped bytes of `data` in one `process.output` (`--coalesce-cap`).
    piece_cap: usize,
    procs: BTreeMap<u64, Proc>,
    by_key: HashMap<ChildKey, u64>,
    next_id: u64,
    shutdown: Option<Timeline>,
}

impl ProcessService {
    /// A service enforcing the configuration's process limits.
    pub fn new(config: &Config) -> ProcessService {
        ProcessService {
            max_processes: config.max_processes,
            stdin_limit: config.child_stdin_limit_bytes,
            piece_cap: config.coalesce_cap_bytes,
            procs: BTreeMap::new(),
            by_key: HashMap::new(),
            next_id: 0,
            shutdown: None,
        }
    }

    fn proc_mut(&mut self, id: u64) -> Result<&mut Proc, RpcError> {
        self.procs.get_mut(&id).ok_or_else(|| {
            RpcError::invalid_params(format!(
                "unknown proc {id}: no such process (never spawned, or its process.exit was already sent)"
            ))
        })
    }

    fn spawn(&mut self, cx: &mut Context<'_>, params: Option<Value>) -> Reply {
        let p = params::spawn(params)?;
        if cx.drain().is_some() {
            return Err(RpcError::new(
                ErrorCode::HandlerFailed,
                "the gateway is shutting down: no new processes",
            ));
        }
        if self.procs.len() >= self.max_processes {
            return Err(RpcError::new(
                ErrorCode::Overloaded,
                format!(
                    "too many processes: {} are tracked, the limit is {} (--max-processes); wait for a process.exit",
                    self.procs.len(),
                    self.max_processes
                ),
            )
            .with_data(json!({"limit": self.max_processes})));
        }
        let spawned = cx.spawn(&p.spec).map_err(|e| spawn_error(&p.spec, &e))?;
        self.next_id += 1;
        let id = self.next_id;
        let started_at = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as f64 / 1000.0)
            .unwrap_or(0.0);
        let envelope = Envelope {
            timeout_ms: p.timeout_ms,
            output_limit: p.output_limit,
            limits: p.spec.limits,
            ladder: p.ladder,
        };
        let proc = Proc::new(
            id,
            spawned.key,
            spawned.pid,
            p.spec.argv,
            p.tag,
            started_at,
            p.encoding,
            p.spec.stdin,
            p.spec.stderr,
            p.spec.pty,
            envelope,
            cx.now(),
        );
        self.procs.insert(id, proc);
        self.by_key.insert(spawned.key, id);
        Ok(json!({"proc": id, "pid": spawned.pid}))
    }

    fn close_stdin(&mut self, cx: &mut Context<'_>, params: Option<Value>) -> Reply {
        let id = params::proc_only("process.close_stdin", params)?;
        let pending = self.proc_mut(id)?.close_stdin(cx.host());
        Ok(json!({"ok": true, "pending": pending}))
    }

    fn list(&mut self, cx: &mut Context<'_>, params: Option<Value>) -> Reply {
        params::none("process.list", params)?;
        Ok(self.listing(cx.now()))
    }

    fn write(&mut self, cx: &mut Context<'_>, params: Option<Value>) -> Reply {
        let w = params::write(params)?;
        let limit = self.stdin_limit;
        let proc = self.proc_mut(w.proc)?;
        let len = w.data.len();
        match proc.write(cx.host(), &w.data, limit) {
            Ok(pending) => Ok(json!({"queued": len, "pending": pending})),
            Err(WriteRefused::Full { pending }) => Err(RpcError::new(
                ErrorCode::Overloaded,
                format!(
                    "stdin queue of proc {} is full: {pending} bytes wait, {len} more would pass the limit of {limit} (--child-stdin-limit); retry when the child has read more",
                    w.proc
                ),
            )
            .with_data(json!({"limit": limit, "pending": pending}))),
            Err(WriteRefused::Closed(why)) => Err(stdin_closed(w.proc, why)),
        }
    }

    fn signal(&mut self, cx: &mut Context<'_>, params: Option<Value>) -> Reply {
        let s = params::signal(params)?;
        let proc = self.proc_mut(s.proc)?;
        let key = proc.key;
        let name = signal_name::name(s.signal);
        match cx.host().signal(key, s.signal, s.scope) {
            Ok(()) => Ok(json!({"ok": true, "signal": name})),
            Err(e) => Err(os_error(
                format!("cannot send {name} to proc {}: {e}", s.proc),
                &e,
            )),
        }
    }

    fn resize(&mut self, cx: &mut Context<'_>, params: Option<Value>) -> Reply {
        let r = params::resize(params)?;
        let proc = self.proc_mut(r.proc)?;
        if proc.pty.is_none() {
            return Err(RpcError::invalid_params(format!(
                "proc {} has no terminal: process.resize needs a process spawned with pty",
                r.proc
            )));
        }
        let key = proc.key;
        match cx.host().resize(key, r.size) {
            Ok(()) => {
                proc.pty = Some(r.size);
                Ok(json!({"ok": true, "rows": r.size.rows, "cols": r.size.cols}))
            }
            Err(e) => Err(os_error(
                format!("cannot resize the terminal of proc {}: {e}", r.proc),
                &e,
            )),
        }
    }

    /// `process.cancel`: starts the ladder (or joins the one running) and
    /// answers when the tree is gone.
    fn cancel(&mut self, cx: &mut Context<'_>, params: Option<Value>) -> Reply {
        let c = params::cancel(params)?;
        self.proc_mut(c.proc)?;
        let owed = match cx.defer() {
            Deferral::Owed(owed) => Some(owed),
            Deferral::Notification => None,
            Deferral::Now => {
                return Err(RpcError::invalid_request(
                    "process.cancel answers when the process tree is gone, so it cannot be a batch member: send it as a frame of its own (nothing was cancelled)",
                ))
            }
        };
        self.start_cancel(cx, c.proc, Stopped::Cancel, c.ladder);
        if let (Some(owed), Some(cancelling)) = (
            owed,
            self.procs
                .get_mut(&c.proc)
                .and_then(|p| p.cancelling.as_mut()),
        ) {
            cancelling.owe(owed);
        }
        self.finish_if_done(cx, c.proc);
        // Ignored: the answer was taken with `defer` (or is a notification's).
        Ok(Value::Null)
    }

    /// Starts cancelling `id` for `why` with `ladder` (else its own), unless
    /// a cancel already runs: then this one joins it.
    fn start_cancel(
        &mut self,
        cx: &mut Context<'_>,
        id: u64,
        why: Stopped,
        ladder: Option<Ladder>,
    ) {
        let now = cx.now();
        let Some(proc) = self.procs.get_mut(&id) else {
            return;
        };
        proc.stopped.get_or_insert(why);
        if proc.cancelling.is_some() {
            return;
        }
        let ladder = ladder.unwrap_or_else(|| proc.envelope.ladder.clone());
        let cancelling = Cancelling::start(ladder, now);
        let first = cancelling.first();
        proc.cancelling = Some(cancelling);
        send_step(cx.host(), proc, first, true);
    }

    fn listing(&self, now: Instant) -> Value {
        let procs: Vec<Value> = self
            .procs
            .values()
            .map(|p| {
                let mut entry = json!({
                    "proc": p.id,
                    "pid": p.pid,
                    "argv": p.argv,
                    "tag": p.tag,
                    "started_at": p.started_at,
                    "running": p.running(),
                    "elapsed_ms": p.elapsed_ms(now),
                });
                if let Value::Object(map) = &mut entry {
                    if let Some(size) = p.pty {
                        map.insert("pty".into(), json!({"rows": size.rows, "cols": size.cols}));
                    }
                    let e = &p.envelope;
                    if let Some(ms) = e.timeout_ms {
                        map.insert("timeout_ms".into(), json!(ms));
                    }
                    if let Some(limit) = e.output_limit {
                        map.insert("output_limit".into(), limit.to_json());
                    }
                    if !e.limits.is_empty() {
                        map.insert("limits".into(), limits_json(&e.limits));
                    }
                    if e.ladder != Ladder::default() {
                        map.insert("cancel".into(), e.ladder.to_json());
                    }
                    if p.cancelling.is_some() {
                        map.insert("cancelling".into(), json!(true));
                    }
                }
                entry
            })
            .collect();
        Value::Array(procs)
    }

    /// Emits the exit event and forgets the child once it is complete (and,
    /// while it is being cancelled, once nothing of its tree is left: then
    /// the cancel requests are answered, after the exit event).
    fn finish_if_done(&mut self, cx: &mut Context<'_>, id: u64) {
        let Some(proc) = self.procs.get_mut(&id) else {
            return;
        };
        let Some(payload) = proc.exit_payload() else {
            return;
        };
        if proc.cancelling.is_some() {
            // Signal 0: is any of the tree left?
            if cx.host().signal(proc.key, 0, SignalScope::Tree).is_ok() {
                proc.tree_check_at = Some(cx.now() + TREE_POLL);
                return;
            }
        }
        let answer = json!({
            "proc": id,
            "code": payload["code"],
            "exit_signal": payload["signal"],
        });
        cx.emit("process.exit", payload);
        let Some(proc) = self.procs.remove(&id) else {
            return;
        };
        self.by_key.remove(&proc.key);
        cx.release(proc.key);
        if let Some(cancelling) = proc.cancelling {
            let (owed, step, signal) = cancelling.finish();
            let mut answer = answer;
            answer["step"] = json!(step);
            answer["signal"] = json!(signal_name::name(signal));
            for owed in owed {
                cx.answer(owed, &Ok(answer.clone()));
            }
        }
    }

    /// Sends held ring events while the queue takes them; then finishes
    /// the processes they held back. Events are left held only when the
    /// queue is paced, and then the loop is busy writing stdout and ticks
    /// every turn: no deadline is needed to come back.
    fn send_held(&mut self, cx: &mut Context<'_>) {
        let waiting: Vec<u64> = self
            .procs
            .values()
            .filter(|p| !p.held.is_empty())
            .map(|p| p.id)
            .collect();
        for id in waiting {
            while let Some(piece) = self.procs.get_mut(&id).and_then(|p| p.held.pop_front()) {
                emit_output(cx, id, piece.stream, piece.data, piece.skipped);
                if cx.is_backpressured() {
                    break;
                }
            }
            self.finish_if_done(cx, id);
            if cx.is_backpressured() {
                return;
            }
        }
    }

    /// Sends `signal` to every descendant of the gateway: tracked children,
    /// whatever they left in their groups, and adopted orphans in any group
    /// or session.
    fn signal_all(&self, host: &mut dyn Host, signal: i32) {
        host.signal_descendants(signal);
    }
}

method_table!(ProcessService {
    "process.spawn" => spawn,
    "process.write" => write,
    "process.close_stdin" => close_stdin,
    "process.signal" => signal,
    "process.cancel" => cancel,
    "process.list" => list,
    "process.resize" => resize,
});

impl Unit for ProcessService {
    fn name(&self) -> &'static str {
        "process"
    }

    fn methods(&self) -> &'static [&'static str] {
        Self::METHOD_NAMES
    }

    fn limits(&self) -> Map<String, Value> {
        let mut limits = Map::new();
        limits.insert("max_processes".into(), json!(self.max_processes));
        limits.insert("child_stdin_limit_bytes".into(), json!(self.stdin_limit));
        limits
    }

    fn next_deadline(&self) -> Option<Instant> {
        if self.procs.is_empty() {
            return None;
        }
        let own = self.procs.values().flat_map(|p| {
            [
                p.timeout_at,
                p.cancelling.as_ref().and_then(Cancelling::next_deadline),
                p.tree_check_at,
            ]
        });
        let shutdown = self.shutdown.as_ref().and_then(Timeline::next_deadline);
        own.chain([shutdown]).flatten().min()
    }

    fn is_idle(&self) -> bool {
        self.procs.is_empty()
    }

    fn busy_summary(&self) -> Option<String> {
        if self.procs.is_empty() {
            return None;
        }
        let mut named: Vec<String> = self
            .procs
            .values()
            .take(SUMMARY_PROCS)
            .map(Proc::describe)
            .collect();
        if self.procs.len() > SUMMARY_PROCS {
            named.push(format!("{} more", self.procs.len() - SUMMARY_PROCS));
        }
        Some(format!(
            "{} process(es) unfinished: {}",
            self.procs.len(),
            named.join("; ")
        ))
    }

    fn on_exit(&mut self, host: &mut dyn Host) {
        host.signal_descendants(libc::SIGKILL);
        for proc in std::mem::take(&mut self.procs).into_values() {
            host.release(proc.key);
            if let Some(cancelling) = proc.cancelling {
                // Nothing more is written: nobody can be answered.
                cancelling.abandon();
            }
        }
        self.by_key.clear();
    }
}

impl Service for ProcessService {
    fn call(&mut self, cx: &mut Context<'_>, method: &str, params: Option<Value>) -> Reply {
        self.dispatch(cx, method, params)
    }

    fn on_child(&mut self, cx: &mut Context<'_>, child: ChildKey, event: ChildEvent) {
        let Some(&id) = self.by_key.get(&child) else {
            return;
        };
        let Some(proc) = self.procs.get_mut(&id) else {
            return;
        };
        let encoding = proc.encoding;
        let cap = self.piece_cap;
        let pieces = |text: String| match encoding {
            Encoding::Utf8 => split::utf8_pieces(text, cap),
            Encoding::Base64 => split::base64_pieces(text, cap),
        };
        match event {
            ChildEvent::Output(stream, bytes) => {
                let produced = proc.on_output(stream, &bytes);
                if !produced.text.is_empty() {
                    for piece in pieces(produced.text) {
                        emit_output(cx, id, stream, piece, None);
                    }
                }
                if produced.truncated {
                    let mut payload = output_payload(id, stream, String::new());
                    payload.insert("truncated".into(), json!(true));
                    cx.emit("process.output", Value::Object(payload));
                }
                if produced.kill {
                    self.start_cancel(cx, id, Stopped::OutputLimit, None);
                }
            }
            ChildEvent::Eof(stream) => {
                let (tail, ring) = proc.on_eof(stream);
                if !tail.is_empty() {
                    for piece in pieces(tail) {
                        emit_output(cx, id, stream, piece, None);
                    }
                }
                if let Some((skipped, text)) = ring {
                    let mut skipped = Some(skipped);
                    let mut ring = pieces(text);
                    if ring.is_empty() {
                        ring.push(String::new());
                    }
                    for data in ring {
                        proc.held.push_back(HeldPiece {
                            stream,
                            data,
                            skipped: skipped.take(),
                        });
                    }
                    self.send_held(cx);
                }
            }
            ChildEvent::StdinWritable => return proc.flush_stdin(cx.host()),
            ChildEvent::StdinGone => return proc.stdin_gone(cx.host()),
            ChildEvent::Exited(status, usage) => proc.on_exited(status, usage, cx.now()),
        }
        self.finish_if_done(cx, id);
    }

    fn on_drain(&mut self, cx: &mut Context<'_>, drain: &Drain) {
        // On stdin EOF running commands may finish on their own first.
        let gentle = drain.cause == Cause::StdinEof;
        self.shutdown = Some(Timeline::new(drain, cx.now(), gentle));
        self.tick(cx);
    }

    fn tick(&mut self, cx: &mut Context<'_>) {
        let now = cx.now();
        if let Some(step) = self.shutdown.as_mut().and_then(|t| t.due(now)) {
            let signal = match step {
                ShutdownStep::Term => libc::SIGTERM,
                ShutdownStep::Kill => libc::SIGKILL,
            };
            for proc in self.procs.values_mut() {
                proc.stopped.get_or_insert(Stopped::Shutdown);
            }
            self.signal_all(cx.host(), signal);
        }
        let mut timed_out = Vec::new();
        let mut recheck = Vec::new();
        for proc in self.procs.values_mut() {
            if proc.timeout_at.is_some_and(|at| at <= now) {
                proc.timeout_at = None;
                timed_out.push(proc.id);
            }
            if let Some(step) = proc.cancelling.as_mut().and_then(|c| c.due(now)) {
                send_step(cx.host(), proc, step, false);
            }
            if proc.tree_check_at.is_some_and(|at| at <= now) {
                proc.tree_check_at = None;
                recheck.push(proc.id);
            }
        }
        for id in timed_out {
            self.start_cancel(cx, id, Stopped::Timeout, None);
        }
        for id in recheck {
            self.finish_if_done(cx, id);
        }
        if self.procs.values().any(|p| !p.held.is_empty()) {
            self.send_held(cx);
        }
    }
}

/// Sends one step of a cancel ladder to `proc`'s tree. A first step of
/// SIGINT on a terminal types the interrupt character instead, as a user
/// would (a signal if the terminal takes no input now).
fn send_step(host: &mut dyn Host, proc: &Proc, step: Step, first: bool) {
    if first
        && step.signal == libc::SIGINT
        && proc.pty.is_some()
        && host.interrupt(proc.key).is_ok()
    {
        return;
    }
    if let Err(e) = host.signal(proc.key, step.signal, SignalScope::Tree) {
        // ESRCH: nothing of the tree is left, which the exit shows.
        log::debug!(
            "cancel step {} to proc {}: {e}",
            signal_name::name(step.signal),
            proc.id
        );
    }
}

/// The payload of a `process.output` event.
fn output_payload(id: u64, stream: OutputStream, data: String) -> Map<String, Value> {
    let mut payload = Map::new();
    payload.insert("proc".into(), json!(id));
    payload.insert("stream".into(), json!(stream.as_str()));
    payload.insert("data".into(), Value::String(data));
    payload
}

/// Queues one `process.output` (streaming-class; a ring's first piece
/// carries `skipped`, so it never merges with the head before it).
fn emit_output(
    cx: &mut Context<'_>,
    id: u64,
    stream: OutputStream,
    data: String,
    skipped: Option<u64>,
) {
    let mut payload = output_payload(id, stream, data);
    if let Some(skipped) = skipped {
        payload.insert("skipped".into(), json!(skipped));
    }
    cx.emit_stream("process.output", payload, "data");
}

/// `limits` as the client wrote it (only the members given).
fn limits_json(limits: &crate::engine::host::ResourceLimits) -> Value {
    let mut map = Map::new();
    let members = [
        ("memory_bytes", limits.memory_bytes),
        ("cpu_seconds", limits.cpu_seconds),
        ("open_files", limits.open_files),
        ("processes", limits.processes),
        ("file_size_bytes", limits.file_size_bytes),
    ];
    for (name, value) in members {
        if let Some(v) = value {
            map.insert(name.into(), json!(v));
        }
    }
    Value::Object(map)
}
