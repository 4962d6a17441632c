//! One gateway child process: start, the reader thread, calls, close.
//!
//! Threads: the caller's threads write frames (one at a time, under a mutex,
//! so a frame is never interleaved); one reader thread reads the gateway's
//! stdout and dispatches answers by id (to the waiting caller) and events (to
//! each process's channel and to subscribers); one thread drains its stderr.
//! The reader never writes, so it can never block on a gateway that is
//! itself waiting for its stdout to be read.

use std::collections::{HashMap, VecDeque};
use std::ffi::{OsStr, OsString};
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::error::{Error, GatewayExit, Result};
use crate::process::{ProcMsg, Process};
use crate::types::{
    BatchCall, Encoding, Event, GatewayInfo, Output, PingResult, ProcessExit, ProcessInfo,
    ReadyPayload, SpawnOptions,
};

/// How long [`Gateway::spawn`] waits for `gateway.ready` by default.
pub const READY_TIMEOUT: Duration = Duration::from_secs(10);
/// With a backend (`"--"` in the args) the gateway holds its ready until the
/// backend's, for up to its `--backend-ready-timeout` of 15 s.
pub const BRIDGE_READY_TIMEOUT: Duration = Duration::from_secs(20);
/// Lines of the gateway's stderr kept for [`GatewayExit::stderr_tail`].
const STDERR_TAIL_LINES: usize = 50;

/// How to start the gateway. `GatewayOptions::default()` runs the binary named
/// by `TUI_GATEWAY_BIN`, else `tui-gateway` on `PATH`, with no arguments.
#[derive(Debug, Clone, Default)]
pub struct GatewayOptions {
    /// The binary (a path, or a name looked up in `PATH`). Default:
    /// `$TUI_GATEWAY_BIN`, else `tui-gateway` on `PATH`.
    pub program: Option<PathBuf>,
    /// Its arguments (`--shutdown-grace 2`, `-- my-backend`, ...).
    pub args: Vec<OsString>,
    /// Variables to set (`Some`) or remove (`None`) on top of this process's.
    pub env: Vec<(OsString, Option<OsString>)>,
    pub cwd: Option<PathBuf>,
    /// How long to wait for `gateway.ready` (default 10 s; 20 s with a backend).
    pub ready_timeout: Option<Duration>,
    /// The default timeout of every call but `process.cancel` (default: none).
    pub request_timeout: Option<Duration>,
}

impl GatewayOptions {
    pub fn new() -> GatewayOptions {
        GatewayOptions::default()
    }
    pub fn program(mut self, program: impl Into<PathBuf>) -> Self {
        self.program = Some(program.into());
        self
    }
    pub fn arg(mut self, arg: impl Into<OsString>) -> Self {
        self.args.push(arg.into());
        self
    }
    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }
    pub fn env(mut self, name: impl Into<OsString>, value: impl Into<OsString>) -> Self {
        self.env.push((name.into(), Some(value.into())));
        self
    }
    pub fn env_remove(mut self, name: impl Into<OsString>) -> Self {
        self.env.push((name.into(), None));
        self
    }
    pub fn cwd(mut self, dir: impl Into<PathBuf>) -> Self {
        self.cwd = Some(dir.into());
        self
    }
    pub fn ready_timeout(mut self, timeout: Duration) -> Self {
        self.ready_timeout = Some(timeout);
        self
    }
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = Some(timeout);
        self
    }
}

/// Options of [`Gateway::close_with`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CloseOptions {
    /// How long to wait after the stdin EOF before SIGTERM (default: the
    /// gateway's shutdown grace + 1 s).
    pub grace: Option<Duration>,
    /// Send `gateway.shutdown` first: running commands get SIGTERM at once
    /// (exit reason `gateway.shutdown request` instead of `stdin EOF`).
    pub shutdown: bool,
}

/// What a waiting call receives from the reader thread.
pub(crate) enum Reply {
    Result(Value),
    /// A `process.spawn` answer: the reader registered the process's channel
    /// before reading the next line, so no event of it can be missed.
    Spawned(Value, Receiver<ProcMsg>, Arc<AtomicBool>),
    Error(Error),
}

struct PendingCall {
    tx: Sender<Reply>,
    method: String,
    /// `Some` for `process.spawn`: register the process, with this encoding.
    spawn: Option<Encoding>,
}

struct ProcEntry {
    tx: Sender<ProcMsg>,
    exited: Arc<AtomicBool>,
    base64: bool,
}

#[derive(Default)]
struct ExitState {
    /// The gateway has exited (seen with `WNOWAIT`, before it is reaped): no
    /// signal may be sent to its pid from now on.
    exiting: bool,
    exit: Option<GatewayExit>,
}

#[derive(Default)]
struct StderrState {
    tail: VecDeque<String>,
    reason: Option<String>,
}

/// The state shared by the [`Gateway`], its process handles and its threads.
pub(crate) struct Shared {
    writer: Mutex<Option<ChildStdin>>,
    /// Set by `close`: the frame being written (if any) is the last one.
    closing: AtomicBool,
    next_id: AtomicU64,
    pending: Mutex<HashMap<u64, PendingCall>>,
    procs: Mutex<HashMap<u64, ProcEntry>>,
    /// Every process spawned and not reported ended, handle or not: `proc`
    /// → pid, for killing their groups if the gateway dies by a signal.
    live: Mutex<HashMap<u64, u32>>,
    subscribers: Mutex<Vec<Sender<Event>>>,
    state: Mutex<ExitState>,
    state_cv: Condvar,
    stderr: Mutex<StderrState>,
    pub(crate) pid: u32,
    pub(crate) request_timeout: Option<Duration>,
    /// `child_stdin_limit_bytes` from `gateway.ready` (default 1 MiB).
    pub(crate) stdin_limit: AtomicU64,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic in a user's code while holding none of these locks cannot poison
    // them; if one is poisoned anyway, the data is still consistent.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Shared {
    /// The exit, once the reader recorded it.
    pub(crate) fn exit(&self) -> Option<GatewayExit> {
        lock(&self.state).exit.clone()
    }

    /// Waits at most `timeout` for the gateway's exit to be recorded.
    fn wait_exit(&self, timeout: Duration) -> Option<GatewayExit> {
        let deadline = Instant::now() + timeout;
        let mut state = lock(&self.state);
        loop {
            if let Some(exit) = &state.exit {
                return Some(exit.clone());
            }
            let now = Instant::now();
            if now >= deadline {
                return None;
            }
            state = self
                .state_cv
                .wait_timeout(state, deadline - now)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    /// Sends `sig` to the gateway unless it has exited (so never to a reused pid).
    fn kill_gateway(&self, sig: libc::c_int) {
        let state = lock(&self.state);
        if !state.exiting {
            // SAFETY: kill(2) with a pid we started and have not reaped.
            unsafe {
                libc::kill(self.pid as libc::pid_t, sig);
            }
        }
    }

    /// The error for a call that cannot be made now.
    fn gone_error(&self) -> Error {
        if self.closing.load(Ordering::SeqCst) {
            return Error::Closed;
        }
        match self.exit() {
            Some(exit) => Error::Exited(Box::new(exit)),
            None => Error::Closed,
        }
    }

    fn write_frame(&self, frame: &Value) -> Result<()> {
        let mut line = serde_json::to_vec(frame).map_err(|e| Error::Protocol(e.to_string()))?;
        line.push(b'\n');
        let mut writer = lock(&self.writer);
        if self.closing.load(Ordering::SeqCst) {
            writer.take();
        }
        let Some(stdin) = writer.as_mut() else {
            return Err(self.gone_error());
        };
        let written = stdin.write_all(&line).and_then(|()| stdin.flush());
        if self.closing.load(Ordering::SeqCst) {
            // `close` came while this frame was being written: it was the last.
            writer.take();
        }
        drop(writer);
        match written {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {
                // The gateway is gone or going; say how it ended if the reader
                // learns it soon.
                match self.wait_exit(Duration::from_secs(2)) {
                    Some(exit) => Err(Error::Exited(Box::new(exit))),
                    None => Err(Error::Io(e)),
                }
            }
            Err(e) => Err(Error::Io(e)),
        }
    }

    /// Sends a request and waits for its answer.
    pub(crate) fn request(
        &self,
        method: &str,
        params: Value,
        timeout: Option<Duration>,
        spawn: Option<Encoding>,
    ) -> Result<Reply> {
        if self.closing.load(Ordering::SeqCst) || self.exit().is_some() {
            return Err(self.gone_error());
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = mpsc::channel();
        lock(&self.pending).insert(
            id,
            PendingCall {
                tx,
                method: method.to_string(),
                spawn,
            },
        );
        if self.exit().is_some() {
            // `finish` may have ended the pending calls just before this one.
            lock(&self.pending).remove(&id);
            return Err(self.gone_error());
        }
        let mut frame = json!({"jsonrpc": "2.0", "id": id, "method": method});
        if !params.is_null() {
            frame["params"] = params;
        }
        if let Err(e) = self.write_frame(&frame) {
            lock(&self.pending).remove(&id);
            return Err(e);
        }
        let reply = match timeout {
            None => rx.recv().map_err(|_| self.gone_error()),
            Some(after) => match rx.recv_timeout(after) {
                Ok(reply) => Ok(reply),
                Err(RecvTimeoutError::Timeout) => {
                    // A late answer is dropped; but a spawn's stays pending
                    // with nobody to receive it, so that the reader kills the
                    // process it started.
                    if method != "process.spawn" {
                        lock(&self.pending).remove(&id);
                    }
                    // The answer may have been dispatched meanwhile.
                    match rx.try_recv() {
                        Ok(reply) => Ok(reply),
                        Err(_) => Err(Error::Timeout {
                            method: method.to_string(),
                            after,
                        }),
                    }
                }
                Err(RecvTimeoutError::Disconnected) => Err(self.gone_error()),
            },
        }?;
        match reply {
            Reply::Error(e) => Err(e),
            reply => Ok(reply),
        }
    }

    pub(crate) fn call(
        &self,
        method: &str,
        params: Value,
        timeout: Option<Duration>,
    ) -> Result<Value> {
        match self.request(method, params, timeout, None)? {
            Reply::Result(v) | Reply::Spawned(v, ..) => Ok(v),
            Reply::Error(e) => Err(e),
        }
    }

    /// Sends `calls` as one JSON array and waits for each answer.
    pub(crate) fn batch(
        &self,
        calls: &[BatchCall],
        timeout: Option<Duration>,
    ) -> Result<Vec<Option<Result<Value>>>> {
        if self.closing.load(Ordering::SeqCst) || self.exit().is_some() {
            return Err(self.gone_error());
        }
        let mut frames = Vec::with_capacity(calls.len());
        let mut waits = Vec::with_capacity(calls.len());
        {
            let mut pending = lock(&self.pending);
            for call in calls {
                let mut frame = json!({"jsonrpc": "2.0", "method": call.method});
                if !call.params.is_null() {
                    frame["params"] = call.params.clone();
                }
                if call.notify {
                    waits.push(None);
                } else {
                    let id = self.next_id.fetch_add(1, Ordering::Relaxed);
                    let (tx, rx) = mpsc::channel();
                    pending.insert(
                        id,
                        PendingCall {
                            tx,
                            method: call.method.clone(),
                            spawn: None,
                        },
                    );
                    frame["id"] = id.into();
                    waits.push(Some((id, rx)));
                }
                frames.push(frame);
            }
        }
        let forget = |waits: &[Option<(u64, Receiver<Reply>)>]| {
            let mut pending = lock(&self.pending);
            for (id, _) in waits.iter().flatten() {
                pending.remove(id);
            }
        };
        if self.exit().is_some() {
            forget(&waits);
            return Err(self.gone_error());
        }
        if let Err(e) = self.write_frame(&Value::Array(frames)) {
            forget(&waits);
            return Err(e);
        }
        let deadline = timeout.map(|t| Instant::now() + t);
        let mut out = Vec::with_capacity(calls.len());
        for wait in &waits {
            let Some((_, rx)) = wait else {
                out.push(None);
                continue;
            };
            let reply = match deadline {
                None => rx.recv().map_err(|_| RecvTimeoutError::Disconnected),
                Some(deadline) => {
                    rx.recv_timeout(deadline.saturating_duration_since(Instant::now()))
                }
            };
            match reply {
                Ok(Reply::Result(v)) | Ok(Reply::Spawned(v, ..)) => out.push(Some(Ok(v))),
                Ok(Reply::Error(e @ Error::Rpc { .. })) => out.push(Some(Err(e))),
                Ok(Reply::Error(e)) => {
                    forget(&waits);
                    return Err(e);
                }
                Err(RecvTimeoutError::Timeout) => {
                    forget(&waits);
                    let after = timeout.unwrap_or_default();
                    return Err(Error::Timeout {
                        method: "batch".into(),
                        after,
                    });
                }
                Err(RecvTimeoutError::Disconnected) => {
                    forget(&waits);
                    return Err(self.gone_error());
                }
            }
        }
        Ok(out)
    }

    /// The handle was dropped: stop routing the process's events to it.
    pub(crate) fn forget_process(&self, proc: u64) {
        lock(&self.procs).remove(&proc);
    }

    fn broadcast(&self, event: impl FnOnce() -> Event) {
        let mut subs = lock(&self.subscribers);
        if subs.is_empty() {
            return;
        }
        let event = event();
        subs.retain(|tx| tx.send(event.clone()).is_ok());
    }
}

/// A running `tui-gateway`, started by [`Gateway::spawn`].
///
/// Every method takes `&self` and the type is `Send + Sync`: share it in an
/// `Arc` between a UI thread and worker threads. Calls block the calling
/// thread until the answer comes; events are delivered on channels.
/// Dropping it closes it as [`close`](Self::close) does.
pub struct Gateway {
    shared: Arc<Shared>,
    ready: ReadyPayload,
    reader: Mutex<Option<JoinHandle<()>>>,
    closed: Mutex<Option<GatewayExit>>,
}

impl std::fmt::Debug for Gateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gateway")
            .field("pid", &self.shared.pid)
            .field("version", &self.ready.version)
            .finish()
    }
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata()
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

/// Resolves a program: a path as it is, a bare name in `PATH`. `what` says
/// where the name came from, for the error.
fn resolve(program: &OsStr, searched: &mut Vec<String>, what: &str) -> Option<PathBuf> {
    let path = Path::new(program);
    if path.components().count() > 1 {
        if is_executable(path) {
            return Some(path.to_path_buf());
        }
        searched.push(format!("{what}{} (not an executable file)", path.display()));
        return None;
    }
    let dirs = std::env::var_os("PATH").unwrap_or_default();
    for dir in std::env::split_paths(&dirs) {
        let candidate = dir.join(path);
        if is_executable(&candidate) {
            return Some(candidate);
        }
    }
    let dirs = dirs.to_string_lossy();
    searched.push(format!("{what}{} in PATH ({dirs})", path.display()));
    None
}

/// The binary: the `program` option, else `$TUI_GATEWAY_BIN`, else
/// `tui-gateway` on `PATH`.
fn locate(program: Option<&Path>) -> Result<PathBuf> {
    let mut searched = Vec::new();
    let found = if let Some(p) = program {
        resolve(p.as_os_str(), &mut searched, "the program option: ")
    } else if let Some(env) = std::env::var_os("TUI_GATEWAY_BIN").filter(|v| !v.is_empty()) {
        resolve(&env, &mut searched, "TUI_GATEWAY_BIN=")
    } else {
        resolve(OsStr::new("tui-gateway"), &mut searched, "")
    };
    found.ok_or(Error::NotFound { searched })
}

/// A signal number's name (`9` → `"SIGKILL"`).
pub(crate) fn signal_name(sig: i32) -> String {
    let name = match sig {
        libc::SIGHUP => "SIGHUP",
        libc::SIGINT => "SIGINT",
        libc::SIGQUIT => "SIGQUIT",
        libc::SIGILL => "SIGILL",
        libc::SIGTRAP => "SIGTRAP",
        libc::SIGABRT => "SIGABRT",
        libc::SIGBUS => "SIGBUS",
        libc::SIGFPE => "SIGFPE",
        libc::SIGKILL => "SIGKILL",
        libc::SIGUSR1 => "SIGUSR1",
        libc::SIGSEGV => "SIGSEGV",
        libc::SIGUSR2 => "SIGUSR2",
        libc::SIGPIPE => "SIGPIPE",
        libc::SIGALRM => "SIGALRM",
        libc::SIGTERM => "SIGTERM",
        libc::SIGCHLD => "SIGCHLD",
        libc::SIGCONT => "SIGCONT",
        libc::SIGSTOP => "SIGSTOP",
        libc::SIGTSTP => "SIGTSTP",
        libc::SIGXCPU => "SIGXCPU",
        libc::SIGXFSZ => "SIGXFSZ",
        libc::SIGSYS => "SIGSYS",
        _ => return format!("SIG{sig}"),
    };
    name.to_string()
}

impl Gateway {
    /// Starts the gateway and waits for its `gateway.ready`.
    ///
    /// The binary is `options.program`, else `$TUI_GATEWAY_BIN`, else
    /// `tui-gateway` on `PATH`. Fails with [`Error::NotFound`] (saying where it
    /// looked) or [`Error::Start`] (with the exit code, its meaning and the
    /// stderr tail when it exited before its ready).
    pub fn spawn(options: GatewayOptions) -> Result<Gateway> {
        let program = locate(options.program.as_deref())?;
        let mut cmd = Command::new(&program);
        cmd.args(&options.args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (name, value) in &options.env {
            match value {
                Some(v) => cmd.env(name, v),
                None => cmd.env_remove(name),
            };
        }
        if let Some(dir) = &options.cwd {
            cmd.current_dir(dir);
        }
        let mut child = cmd.spawn().map_err(|e| Error::Start {
            message: format!("cannot execute {}: {e}", program.display()),
            exit: None,
        })?;
        let stdin = child.stdin.take().expect("piped stdin");
        let stdout = child.stdout.take().expect("piped stdout");
        let stderr = child.stderr.take().expect("piped stderr");
        let shared = Arc::new(Shared {
            writer: Mutex::new(Some(stdin)),
            closing: AtomicBool::new(false),
            next_id: AtomicU64::new(1),
            pending: Mutex::new(HashMap::new()),
            procs: Mutex::new(HashMap::new()),
            live: Mutex::new(HashMap::new()),
            subscribers: Mutex::new(Vec::new()),
            state: Mutex::new(ExitState::default()),
            state_cv: Condvar::new(),
            stderr: Mutex::new(StderrState::default()),
            pid: child.id(),
            request_timeout: options.request_timeout,
            stdin_limit: AtomicU64::new(1 << 20),
        });

        let (stderr_done_tx, stderr_done_rx) = mpsc::channel::<()>();
        {
            let shared = Arc::clone(&shared);
            thread::Builder::new()
                .name("tui-gateway-stderr".into())
                .spawn(move || {
                    read_stderr(&shared, stderr);
                    drop(stderr_done_tx);
                })
                .map_err(Error::Io)?;
        }
        let (ready_tx, ready_rx) = mpsc::channel::<Value>();
        let reader = {
            let shared = Arc::clone(&shared);
            thread::Builder::new()
                .name("tui-gateway-reader".into())
                .spawn(move || {
                    let mut reader = Reader {
                        shared: Arc::clone(&shared),
                        ready_tx: Some(ready_tx),
                    };
                    reader.run(stdout);
                    drop(reader);
                    finish(&shared, child, stderr_done_rx);
                })
                .map_err(Error::Io)?
        };

        let bridge = options.args.iter().any(|a| a == "--");
        let ready_timeout = options.ready_timeout.unwrap_or(if bridge {
            BRIDGE_READY_TIMEOUT
        } else {
            READY_TIMEOUT
        });
        let ready = match ready_rx.recv_timeout(ready_timeout) {
            Ok(raw) => ReadyPayload::from_value(raw),
            Err(RecvTimeoutError::Timeout) => {
                shared.kill_gateway(libc::SIGKILL);
                let exit = shared.wait_exit(Duration::from_secs(10));
                return Err(Error::Start {
                    message: format!("no gateway.ready within {ready_timeout:?} (it was killed)"),
                    exit: exit.map(Box::new),
                });
            }
            Err(RecvTimeoutError::Disconnected) => {
                let exit = shared.wait_exit(Duration::from_secs(10));
                return Err(Error::Start {
                    message: "it exited before gateway.ready".into(),
                    exit: exit.map(Box::new),
                });
            }
        };
        let limits = ready.gateway.as_ref().map_or(&ready.limits, |g| &g.limits);
        if let Some(limit) = limits.child_stdin_limit_bytes {
            shared.stdin_limit.store(limit, Ordering::Relaxed);
        }
        Ok(Gateway {
            shared,
            ready,
            reader: Mutex::new(Some(reader)),
            closed: Mutex::new(None),
        })
    }

    /// The `gateway.ready` payload: version, pid, protocol, methods, limits.
    pub fn ready(&self) -> &ReadyPayload {
        &self.ready
    }

    /// The gateway's OS process id.
    pub fn pid(&self) -> u32 {
        self.shared.pid
    }

    /// Whether `gateway.ready` lists `method`.
    pub fn supports(&self, method: &str) -> bool {
        self.ready.methods.iter().any(|m| m == method)
    }

    /// How the gateway exited, once it has (`None` while it runs).
    pub fn exit_status(&self) -> Option<GatewayExit> {
        self.shared.exit()
    }

    /// The last lines of the gateway's stderr (always drained, at most 50 kept).
    pub fn stderr_tail(&self) -> Vec<String> {
        lock(&self.shared.stderr).tail.iter().cloned().collect()
    }

    /// Every event from now on: `process.output` and `process.exit` of every
    /// process (also delivered to their handles), other event types, other
    /// notifications, and finally [`Event::Exited`]. Drop the receiver to
    /// unsubscribe. Events you do not take are buffered.
    pub fn events(&self) -> Receiver<Event> {
        let (tx, rx) = mpsc::channel();
        // Under the subscribers' lock: `finish` records the exit before it
        // takes this lock to end the subscriptions, so either this sees the
        // exit or `finish` sees this subscription.
        let mut subscribers = lock(&self.shared.subscribers);
        match self.shared.exit() {
            Some(exit) => drop(tx.send(Event::Exited(exit))),
            None => subscribers.push(tx),
        }
        rx
    }

    /// Sends `method` with `params` (`Value::Null` for none) and returns its
    /// `result`, or [`Error::Rpc`] for an error answer. Waits at most the
    /// `request_timeout` option (default: no limit).
    pub fn request(&self, method: &str, params: Value) -> Result<Value> {
        self.shared
            .call(method, params, self.shared.request_timeout)
    }

    /// [`request`](Self::request) with its own timeout (`None`: as long as it
    /// takes). A timeout stops only this wait: the request still runs in the
    /// gateway, and its late answer is dropped.
    pub fn request_timeout(
        &self,
        method: &str,
        params: Value,
        timeout: Option<Duration>,
    ) -> Result<Value> {
        self.shared.call(method, params, timeout)
    }

    /// Sends a notification (no answer, not even an error): `true` once
    /// written, `false` when there is no gateway (closed or exited).
    pub fn notify(&self, method: &str, params: Value) -> bool {
        let mut frame = json!({"jsonrpc": "2.0", "method": method});
        if !params.is_null() {
            frame["params"] = params;
        }
        self.shared.write_frame(&frame).is_ok()
    }

    /// Sends `calls` as one batch (one frame, answered as one array): one
    /// entry per call, in order, `None` for a notification, an error answer
    /// as `Some(Err(Error::Rpc))`. The whole batch fails only with
    /// [`Error::Timeout`] (the `request_timeout` option), [`Error::Exited`] or
    /// [`Error::Closed`].
    pub fn batch(&self, calls: &[BatchCall]) -> Result<Vec<Option<Result<Value>>>> {
        if calls.is_empty() {
            return Ok(Vec::new());
        }
        self.shared.batch(calls, self.shared.request_timeout)
    }

    /// `gateway.ping`: `{ok: true}` once the gateway answered.
    pub fn ping(&self) -> Result<PingResult> {
        let result = self.request("gateway.ping", Value::Null)?;
        serde_json::from_value(result).map_err(|e| Error::Protocol(format!("gateway.ping: {e}")))
    }

    /// `gateway.info`, typed.
    pub fn info(&self) -> Result<GatewayInfo> {
        let raw = self.request("gateway.info", Value::Null)?;
        let mut info: GatewayInfo = serde_json::from_value(raw.clone())
            .map_err(|e| Error::Protocol(format!("gateway.info: {e}")))?;
        info.raw = raw;
        Ok(info)
    }

    /// `gateway.stats`: the gateway's counters, as JSON.
    pub fn stats(&self) -> Result<Value> {
        self.request("gateway.stats", Value::Null)
    }

    /// `client.capabilities`: tells the gateway about the client, returns its own.
    pub fn capabilities(&self, client: Value) -> Result<Value> {
        self.request("client.capabilities", client)
    }

    /// `process.list`, typed.
    pub fn list_processes(&self) -> Result<Vec<ProcessInfo>> {
        let raw = self.request("process.list", Value::Null)?;
        serde_json::from_value(raw).map_err(|e| Error::Protocol(format!("process.list: {e}")))
    }

    /// `process.spawn`: runs `argv` (`argv[0]` looked up in `PATH`) with
    /// `options` and returns its handle. The handle receives every output
    /// chunk and the exit event of the process, in order, from the first byte.
    pub fn spawn_process<I, S>(&self, argv: I, options: SpawnOptions) -> Result<Process>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let argv: Vec<String> = argv.into_iter().map(Into::into).collect();
        let params = options.to_params(argv.clone())?;
        let reply = self.shared.request(
            "process.spawn",
            params,
            self.shared.request_timeout,
            Some(options.encoding),
        )?;
        match reply {
            Reply::Spawned(result, rx, exited) => {
                let proc = result.get("proc").and_then(Value::as_u64);
                let pid = result.get("pid").and_then(Value::as_u64);
                match (proc, pid) {
                    (Some(proc), Some(pid)) => Ok(Process::new(
                        Arc::clone(&self.shared),
                        (proc, pid as u32),
                        argv,
                        (options.pty.is_some(), options.encoding),
                        rx,
                        exited,
                    )),
                    _ => Err(Error::Protocol(format!("process.spawn answered {result}"))),
                }
            }
            Reply::Result(result) => {
                Err(Error::Protocol(format!("process.spawn answered {result}")))
            }
            Reply::Error(e) => Err(e),
        }
    }

    /// Closes the gateway and returns how it exited:
    ///
    /// 1. ends its stdin (and sends nothing else): it stops reading, lets
    ///    running commands run on for most of its shutdown grace
    ///    (`--shutdown-grace`: with the default 1 s, SIGTERM comes at 700 ms
    ///    and SIGKILL at 850 ms), flushes and exits 0;
    /// 2. if it has not exited after its grace + 1 s, sends it SIGTERM and
    ///    waits its grace + 0.5 s more;
    /// 3. then SIGKILL (and kills the process groups of the commands it had
    ///    not reported ended, as for any gateway killed by a signal).
    ///
    /// Idempotent: later calls return the same exit. Calls made after it fail
    /// with [`Error::Closed`]. A clean close is `Ok` with `code: Some(0)`.
    /// Blocks the calling thread meanwhile.
    pub fn close(&self) -> Result<GatewayExit> {
        self.close_with(CloseOptions::default())
    }

    /// [`close`](Self::close) with options: `grace`, how long to wait after
    /// the stdin EOF before SIGTERM; `shutdown`, send a `gateway.shutdown`
    /// notification first, so running commands get SIGTERM at once.
    pub fn close_with(&self, options: CloseOptions) -> Result<GatewayExit> {
        let mut closed = lock(&self.closed);
        if let Some(exit) = &*closed {
            return Ok(exit.clone());
        }
        let grace = self.grace();
        let wait = options.grace.unwrap_or(grace + Duration::from_secs(1));
        if options.shutdown {
            self.notify("gateway.shutdown", Value::Null);
        }
        self.shared.closing.store(true, Ordering::SeqCst);
        if let Ok(mut writer) = self.shared.writer.try_lock() {
            writer.take(); // stdin EOF
        } // else: the frame being written is the last; its writer closes stdin.
        let exit = match self.shared.wait_exit(wait) {
            Some(exit) => exit,
            None => {
                self.shared.kill_gateway(libc::SIGTERM);
                match self.shared.wait_exit(grace + Duration::from_millis(500)) {
                    Some(exit) => exit,
                    None => {
                        self.shared.kill_gateway(libc::SIGKILL);
                        self.shared
                            .wait_exit(Duration::from_secs(10))
                            .ok_or_else(|| Error::Timeout {
                                method: "close".into(),
                                after: wait + grace + Duration::from_secs(10),
                            })?
                    }
                }
            }
        };
        if let Some(reader) = lock(&self.reader).take() {
            let _ = reader.join();
        }
        *closed = Some(exit.clone());
        Ok(exit)
    }

    fn grace(&self) -> Duration {
        let limits = self
            .ready
            .gateway
            .as_ref()
            .map_or(&self.ready.limits, |g| &g.limits);
        let secs = limits
            .shutdown_grace_s
            .filter(|s| s.is_finite() && *s >= 0.0)
            .unwrap_or(1.0);
        Duration::from_secs_f64(secs.min(3600.0))
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.close();
    }
}

// -- the reader thread ----------------------------------------------------------

struct Reader {
    shared: Arc<Shared>,
    ready_tx: Option<Sender<Value>>,
}

impl Reader {
    fn run(&mut self, stdout: impl Read) {
        let mut input = BufReader::with_capacity(1 << 16, stdout);
        let mut line = Vec::new();
        loop {
            line.clear();
            match input.read_until(b'\n', &mut line) {
                Ok(0) => return,
                Ok(_) => {
                    if line.last() != Some(&b'\n') {
                        return; // an unterminated last line: a forced exit cut it
                    }
                    line.pop();
                    if line.last() == Some(&b'\r') {
                        line.pop();
                    }
                    if line.iter().all(u8::is_ascii_whitespace) {
                        continue;
                    }
                    match serde_json::from_slice::<Value>(&line) {
                        Ok(Value::Array(items)) => items.into_iter().for_each(|m| self.dispatch(m)),
                        Ok(message) => self.dispatch(message),
                        Err(_) => {} // not JSON: never from the gateway itself; skipped
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => return,
            }
        }
    }

    fn dispatch(&mut self, mut message: Value) {
        let Some(obj) = message.as_object_mut() else {
            return;
        };
        if let Some(method) = obj
            .get("method")
            .and_then(Value::as_str)
            .map(str::to_string)
        {
            let params = obj.remove("params").unwrap_or(Value::Null);
            match obj.get("id") {
                Some(id) => self.answer_unknown_request(id.clone(), &method),
                None if method == "event" => self.event(params),
                None => self
                    .shared
                    .broadcast(|| Event::Notification { method, params }),
            }
            return;
        }
        let Some(id) = obj.get("id").and_then(Value::as_u64) else {
            return;
        };
        let Some(call) = lock(&self.shared.pending).remove(&id) else {
            return;
        };
        let reply = if let Some(error) = obj.remove("error") {
            Reply::Error(Error::Rpc {
                method: call.method,
                code: error.get("code").and_then(Value::as_i64).unwrap_or(0),
                message: error
                    .get("message")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string(),
                data: error.get("data").cloned(),
            })
        } else {
            let result = obj.remove("result").unwrap_or(Value::Null);
            if call.method == "process.spawn" {
                let proc = result.get("proc").and_then(Value::as_u64);
                if let (Some(proc), Some(pid)) = (proc, result.get("pid").and_then(Value::as_u64)) {
                    lock(&self.shared.live).insert(proc, pid as u32);
                }
            }
            match (call.spawn, result.get("proc").and_then(Value::as_u64)) {
                (Some(encoding), Some(proc)) => {
                    // Register before the next line is read: the process's
                    // first output may be in it.
                    let (tx, rx) = mpsc::channel();
                    let exited = Arc::new(AtomicBool::new(false));
                    let entry = ProcEntry {
                        tx,
                        exited: Arc::clone(&exited),
                        base64: encoding == Encoding::Base64,
                    };
                    lock(&self.shared.procs).insert(proc, entry);
                    Reply::Spawned(result, rx, exited)
                }
                _ => Reply::Result(result),
            }
        };
        if let Err(mpsc::SendError(Reply::Spawned(result, ..))) = call.tx.send(reply) {
            // The caller gave up on the spawn (a timeout), but the process
            // started: nobody will read it, so kill it (from another thread:
            // the reader never writes).
            if let Some(proc) = result.get("proc").and_then(Value::as_u64) {
                lock(&self.shared.procs).remove(&proc);
                let shared = Arc::clone(&self.shared);
                let params = json!({"proc": proc, "signal": "SIGKILL", "tree": true});
                let _ = thread::Builder::new()
                    .name("tui-gateway-answer".into())
                    .spawn(move || {
                        let _ =
                            shared.call("process.signal", params, Some(Duration::from_secs(10)));
                    });
            }
        }
    }

    /// The gateway (with a backend: the backend) sent a request this client
    /// has no handler for: answer -32601 from another thread, since the
    /// reader must never block on a write.
    fn answer_unknown_request(&self, id: Value, method: &str) {
        let shared = Arc::clone(&self.shared);
        let frame = json!({
            "jsonrpc": "2.0",
            "id": id,
            "error": {"code": -32601, "message": format!("Method not found: {method} (the Rust client has no handler)")},
        });
        let _ = thread::Builder::new()
            .name("tui-gateway-answer".into())
            .spawn(move || {
                let _ = shared.write_frame(&frame);
            });
    }

    fn event(&mut self, params: Value) {
        let Value::Object(mut params) = params else {
            return;
        };
        let kind = params
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let payload = params.remove("payload").unwrap_or(Value::Null);
        match kind.as_str() {
            "gateway.ready" => match self.ready_tx.take() {
                Some(tx) => {
                    let _ = tx.send(payload);
                }
                None => self
                    .shared
                    .broadcast(|| Event::Ready(ReadyPayload::from_value(payload))),
            },
            "process.output" => {
                let Some(proc) = payload.get("proc").and_then(Value::as_u64) else {
                    return;
                };
                let mut procs = lock(&self.shared.procs);
                let base64 = procs.get(&proc).is_some_and(|e| e.base64);
                let Some(output) = Output::from_payload(&payload, base64) else {
                    return;
                };
                if let Some(entry) = procs.get(&proc) {
                    if entry.tx.send(ProcMsg::Output(output.clone())).is_err() {
                        procs.remove(&proc); // the handle was dropped
                    }
                }
                drop(procs);
                self.shared.broadcast(|| Event::ProcessOutput(output));
            }
            "process.exit" => {
                let Some(exit) = ProcessExit::from_payload(payload) else {
                    return;
                };
                lock(&self.shared.live).remove(&exit.proc);
                if let Some(entry) = lock(&self.shared.procs).remove(&exit.proc) {
                    entry.exited.store(true, Ordering::SeqCst);
                    let _ = entry.tx.send(ProcMsg::Exit(exit.clone()));
                }
                self.shared.broadcast(|| Event::ProcessExit(exit));
            }
            _ => self.shared.broadcast(|| Event::Other { kind, payload }),
        }
    }
}

fn read_stderr(shared: &Shared, stderr: impl Read) {
    let mut input = BufReader::new(stderr);
    let mut line = Vec::new();
    loop {
        line.clear();
        match input.read_until(b'\n', &mut line) {
            Ok(0) => return,
            Ok(_) => {
                let text = String::from_utf8_lossy(&line);
                let text = text.trim_end_matches(['\n', '\r']);
                let mut state = lock(&shared.stderr);
                if let Some(reason) = text.strip_prefix("[gateway-exit] ") {
                    state.reason = Some(reason.to_string());
                }
                if state.tail.len() == STDERR_TAIL_LINES {
                    state.tail.pop_front();
                }
                state.tail.push_back(text.to_string());
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => return,
        }
    }
}

/// After the gateway's stdout ended: wait for it, record the exit, and end
/// every pending call, process handle and subscription with it.
/// SIGKILLs the process group of each pid that still leads its group (a
/// group whose leader is gone and reaped is never signalled: its id could be
/// a stranger's by now). Returns the groups killed.
fn kill_orphan_groups(live: &HashMap<u64, u32>) -> Vec<u32> {
    let mut killed = Vec::new();
    for &pid in live.values() {
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // "pid (comm) state ppid pgrp ...": the fields after the last ')'.
        let fields: Vec<&str> = stat
            .rsplit_once(')')
            .map_or(Vec::new(), |(_, rest)| rest.split_whitespace().collect());
        let leads = fields.get(2).and_then(|pgrp| pgrp.parse::<u32>().ok()) == Some(pid);
        if leads && fields.first() != Some(&"Z") {
            // SAFETY: kill(2) of a process group whose leader is alive.
            if unsafe { libc::kill(-(pid as libc::pid_t), libc::SIGKILL) } == 0 {
                killed.push(pid);
            }
        }
    }
    killed.sort_unstable();
    killed
}

fn finish(shared: &Shared, mut child: Child, stderr_done: Receiver<()>) {
    // See the exit without reaping it, and mark it under the lock, so that
    // `kill_gateway` never signals a pid that could be reused.
    loop {
        // SAFETY: a zeroed siginfo_t is valid; waitid only writes to it.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        // SAFETY: waitid on our own child, WNOWAIT leaves it waitable.
        let rc = unsafe {
            libc::waitid(
                libc::P_PID,
                shared.pid as libc::id_t,
                &mut info,
                libc::WEXITED | libc::WNOWAIT,
            )
        };
        if rc == 0 || std::io::Error::last_os_error().kind() != std::io::ErrorKind::Interrupted {
            break;
        }
    }
    lock(&shared.state).exiting = true;
    let status = child.wait().ok();
    // Its stderr ends with it (no child of it holds the gateway's stderr).
    let _ = stderr_done.recv_timeout(Duration::from_secs(2));
    let (reason, stderr_tail) = {
        let s = lock(&shared.stderr);
        (s.reason.clone(), s.tail.iter().cloned().collect())
    };
    let code = status.and_then(|s| s.code());
    let signal = status.and_then(|s| s.signal()).map(signal_name);
    // Killed by a signal, the gateway ran no shutdown: kill the groups of
    // the commands it had not reported ended.
    let orphans_killed = if signal.is_some() {
        kill_orphan_groups(&lock(&shared.live))
    } else {
        Vec::new()
    };
    let exit = GatewayExit {
        pid: shared.pid,
        reason: GatewayExit::meaning(code, signal.as_deref()).to_string(),
        code,
        signal,
        exit_reason: reason,
        stderr_tail,
        orphans_killed,
    };
    {
        let mut state = lock(&shared.state);
        state.exit = Some(exit.clone());
        shared.state_cv.notify_all();
    }
    for (_, call) in lock(&shared.pending).drain() {
        let _ = call
            .tx
            .send(Reply::Error(Error::Exited(Box::new(exit.clone()))));
    }
    for (_, entry) in lock(&shared.procs).drain() {
        let _ = entry.tx.send(ProcMsg::GatewayExited(exit.clone()));
    }
    for tx in lock(&shared.subscribers).drain(..) {
        let _ = tx.send(Event::Exited(exit.clone()));
    }
    lock(&shared.writer).take();
}
