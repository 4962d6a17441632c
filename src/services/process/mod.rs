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
//!   room to reap them and flush their exit events before the deadline.
//!
//! The wire contract is `docs/process.md`.

mod decode;
mod errors;
mod params;
mod split;
mod state;

use std::collections::{BTreeMap, HashMap};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use serde_json::{json, Map, Value};

use self::decode::Encoding;
use self::errors::{os_error, spawn_error, stdin_closed};
use self::state::{Proc, WriteRefused};
use crate::config::Config;
use crate::engine::host::{ChildEvent, ChildKey, Host};
use crate::engine::lifecycle::{Cause, Drain};
use crate::engine::message::{ErrorCode, RpcError};
use crate::engine::service::{Context, Reply, Service};
use crate::services::shutdown::{Step, Timeline};
use crate::signal_name;

/// Procs named in a forced exit's reason; the rest are counted.
const SUMMARY_PROCS: usize = 5;

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
        );
        self.procs.insert(id, proc);
        self.by_key.insert(spawned.key, id);
        Ok(json!({"proc": id, "pid": spawned.pid}))
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

    fn list(&self) -> Value {
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
                });
                if let (Some(size), Value::Object(map)) = (p.pty, &mut entry) {
                    map.insert("pty".into(), json!({"rows": size.rows, "cols": size.cols}));
                }
                entry
            })
            .collect();
        Value::Array(procs)
    }

    /// Emits the exit event and forgets the child once it is complete.
    fn finish_if_done(&mut self, cx: &mut Context<'_>, id: u64) {
        let Some(payload) = self.procs.get(&id).and_then(Proc::exit_payload) else {
            return;
        };
        cx.emit("process.exit", payload);
        if let Some(proc) = self.procs.remove(&id) {
            self.by_key.remove(&proc.key);
            cx.release(proc.key);
        }
    }

    /// Sends `signal` to every descendant of the gateway: tracked children,
    /// whatever they left in their groups, and adopted orphans in any group
    /// or session.
    fn signal_all(&self, host: &mut dyn Host, signal: i32) {
        host.signal_descendants(signal);
    }
}

impl Service for ProcessService {
    fn name(&self) -> &'static str {
        "process"
    }

    fn methods(&self) -> &'static [&'static str] {
        &[
            "process.spawn",
            "process.write",
            "process.close_stdin",
            "process.signal",
            "process.list",
            "process.resize",
        ]
    }

    fn limits(&self) -> Map<String, Value> {
        let mut limits = Map::new();
        limits.insert("max_processes".into(), json!(self.max_processes));
        limits.insert("child_stdin_limit_bytes".into(), json!(self.stdin_limit));
        limits
    }

    fn call(&mut self, cx: &mut Context<'_>, method: &str, params: Option<Value>) -> Reply {
        match method {
            "process.spawn" => self.spawn(cx, params),
            "process.write" => self.write(cx, params),
            "process.close_stdin" => {
                let id = params::proc_only(method, params)?;
                let pending = self.proc_mut(id)?.close_stdin(cx.host());
                Ok(json!({"ok": true, "pending": pending}))
            }
            "process.signal" => self.signal(cx, params),
            "process.resize" => self.resize(cx, params),
            "process.list" => {
                params::none(method, params)?;
                Ok(self.list())
            }
            other => Err(RpcError::method_not_found(other)),
        }
    }

    fn on_child(&mut self, cx: &mut Context<'_>, child: ChildKey, event: ChildEvent) {
        let Some(&id) = self.by_key.get(&child) else {
            return;
        };
        let Some(proc) = self.procs.get_mut(&id) else {
            return;
        };
        let encoding = proc.encoding;
        let (stream, text) = match event {
            ChildEvent::Output(stream, bytes) => (stream, proc.on_output(stream, &bytes)),
            ChildEvent::Eof(stream) => (stream, proc.on_eof(stream)),
            ChildEvent::StdinWritable => return proc.flush_stdin(cx.host()),
            ChildEvent::StdinGone => return proc.stdin_gone(cx.host()),
            ChildEvent::Exited(status) => {
                proc.on_exited(status);
                return self.finish_if_done(cx, id);
            }
        };
        if !text.is_empty() {
            let pieces = match encoding {
                Encoding::Utf8 => split::utf8_pieces(text, self.piece_cap),
                Encoding::Base64 => split::base64_pieces(text, self.piece_cap),
            };
            for piece in pieces {
                let mut payload = Map::new();
                payload.insert("proc".into(), json!(id));
                payload.insert("stream".into(), json!(stream.as_str()));
                payload.insert("data".into(), Value::String(piece));
                cx.emit_stream("process.output", payload, "data");
            }
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
        let Some(step) = self.shutdown.as_mut().and_then(|t| t.due(cx.now())) else {
            return;
        };
        let signal = match step {
            Step::Term => libc::SIGTERM,
            Step::Kill => libc::SIGKILL,
        };
        self.signal_all(cx.host(), signal);
    }

    fn next_deadline(&self) -> Option<Instant> {
        if self.procs.is_empty() {
            return None;
        }
        self.shutdown.as_ref()?.next_deadline()
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
        }
        self.by_key.clear();
    }
}
