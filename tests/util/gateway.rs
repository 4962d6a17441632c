//! The gateway under test: a `Builder` that spawns the binary (or a shell
//! wrapping it) with piped stdio and a chosen `StderrMode`, and the running
//! `Gateway` with its non-blocking stdin/stdout, framed reads with deadlines
//! (`Read1`), request/response helpers that skip events and stash other
//! replies, signals and exit waits, and stderr read to EOF by a background
//! `Collector`. Dropping a `Gateway` kills whatever is still running.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::fd::{
    fill_pipe, fionread, pipe_capacity, pipe_cloexec, poll_fd, set_nonblocking, set_pipe_capacity,
};
use super::procfs::{code_of, is_gateway_process, poll_until, process_gone};
use super::rpc::{event_type, is_event, is_response, line, lines, parse_frame, rpc, rpc_with};
use super::{BIN, GATEWAY_ENV_VARS, LONG, PATIENCE};

// ---------------------------------------------------------------------------
// stderr collector
// ---------------------------------------------------------------------------

#[derive(Debug, Default)]
struct Collected {
    bytes: Vec<u8>,
    eof: bool,
}

/// Reads a stream to EOF on a background thread.
#[derive(Debug, Default)]
pub struct Collector {
    state: Mutex<Collected>,
    cv: Condvar,
}

impl Collector {
    fn start<R: Read + Send + 'static>(mut reader: R) -> Arc<Collector> {
        let c = Arc::new(Collector::default());
        let c2 = Arc::clone(&c);
        std::thread::spawn(move || {
            let mut buf = vec![0u8; 16 * 1024];
            loop {
                match reader.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => {
                        let mut s = c2.state.lock().unwrap();
                        s.bytes.extend_from_slice(&buf[..n]);
                        c2.cv.notify_all();
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(_) => break,
                }
            }
            c2.state.lock().unwrap().eof = true;
            c2.cv.notify_all();
        });
        c
    }

    /// What was read so far.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.state.lock().unwrap().bytes).into_owned()
    }

    /// Waits until `pred(text, eof)` holds; false on timeout.
    pub fn wait(&self, timeout: Duration, pred: impl Fn(&str, bool) -> bool) -> bool {
        let deadline = Instant::now() + timeout;
        let mut s = self.state.lock().unwrap();
        loop {
            if pred(&String::from_utf8_lossy(&s.bytes), s.eof) {
                return true;
            }
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            s = self.cv.wait_timeout(s, deadline - now).unwrap().0;
        }
    }
}

// ---------------------------------------------------------------------------
// The gateway under test
// ---------------------------------------------------------------------------

/// Where the gateway's stderr goes.
#[derive(Debug)]
pub enum StderrMode {
    /// A pipe read to EOF by a background thread (the default).
    Collect,
    /// A pipe the test never reads, optionally shrunk to `pipe_size` bytes
    /// and, with `prefill`, filled to capacity before the gateway starts (so
    /// its very first stderr write finds the pipe full).
    Unread {
        /// `F_SETPIPE_SZ` for the pipe.
        pipe_size: Option<usize>,
        /// Fill the pipe before spawning.
        prefill: bool,
    },
    /// `/dev/null`.
    Null,
}

/// Configures and spawns a gateway.
#[derive(Debug)]
pub struct Builder {
    args: Vec<String>,
    env: Vec<(String, String)>,
    stdin: Option<Stdio>,
    stdout: Option<Stdio>,
    stderr: StderrMode,
    expect_ready: bool,
    shell: Option<String>,
    pre_exec: Option<PreExec>,
}

/// Code run in the gateway's process between fork and exec.
pub struct PreExec(Box<dyn FnMut() -> io::Result<()> + Send + Sync>);

impl std::fmt::Debug for PreExec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PreExec")
    }
}

impl Builder {
    /// Adds command-line arguments.
    pub fn args<I, S>(mut self, args: I) -> Builder
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    /// Sets an environment variable (the gateway's own variables and
    /// `RUST_LOG` are otherwise removed, so the caller's environment does not leak in).
    pub fn env(mut self, key: &str, value: &str) -> Builder {
        self.env.push((key.into(), value.into()));
        self
    }

    /// Gives the gateway this stdin instead of a pipe held by the test.
    pub fn stdin(mut self, stdin: Stdio) -> Builder {
        self.stdin = Some(stdin);
        self
    }

    /// Gives the gateway this stdout instead of a pipe read by the test.
    /// The ready line is then not awaited.
    pub fn stdout(mut self, stdout: Stdio) -> Builder {
        self.stdout = Some(stdout);
        self.expect_ready = false;
        self
    }

    /// Chooses where stderr goes.
    pub fn stderr(mut self, mode: StderrMode) -> Builder {
        self.stderr = mode;
        self
    }

    /// Do not wait for (or check) the ready line at spawn.
    pub fn no_ready(mut self) -> Builder {
        self.expect_ready = false;
        self
    }

    /// Runs `f` in the gateway's process before exec (to start it with
    /// signals ignored or blocked, as a careless parent would). `f` must make
    /// async-signal-safe calls only.
    pub fn pre_exec(
        mut self,
        f: impl FnMut() -> io::Result<()> + Send + Sync + 'static,
    ) -> Builder {
        self.pre_exec = Some(PreExec(Box::new(f)));
        self
    }

    /// Runs `sh -c SCRIPT tui-gateway ARGS...` instead of the gateway itself:
    /// in the script `"$0" "$@"` is the gateway command line. The pid the
    /// harness signals is then the one from the ready event.
    pub fn via_shell(mut self, script: &str) -> Builder {
        self.shell = Some(script.into());
        self
    }

    /// Spawns the gateway and, unless told otherwise, reads and checks its ready line.
    pub fn spawn(self) -> Gateway {
        let mut stderr_read: Option<OwnedFd> = None;
        let spawned_at;
        let mut child = {
            let mut cmd = match &self.shell {
                Some(script) => {
                    let mut c = Command::new("sh");
                    c.arg("-c").arg(script).arg(BIN);
                    c
                }
                None => Command::new(BIN),
            };
            cmd.args(&self.args);
            if let Some(PreExec(f)) = self.pre_exec {
                // SAFETY: the caller promises async-signal-safe code.
                unsafe {
                    std::os::unix::process::CommandExt::pre_exec(&mut cmd, f);
                }
            }
            for var in GATEWAY_ENV_VARS {
                cmd.env_remove(var);
            }
            for (k, v) in &self.env {
                cmd.env(k, v);
            }
            cmd.stdin(self.stdin.unwrap_or_else(Stdio::piped));
            cmd.stdout(self.stdout.unwrap_or_else(Stdio::piped));
            match self.stderr {
                StderrMode::Collect => {
                    cmd.stderr(Stdio::piped());
                }
                StderrMode::Null => {
                    cmd.stderr(Stdio::null());
                }
                StderrMode::Unread { pipe_size, prefill } => {
                    let (r, w) = pipe_cloexec();
                    if let Some(size) = pipe_size {
                        set_pipe_capacity(r.as_raw_fd(), size);
                    }
                    if prefill {
                        fill_pipe(&w);
                    }
                    stderr_read = Some(r);
                    cmd.stderr(Stdio::from(w));
                }
            }
            spawned_at = Instant::now();
            cmd.spawn().expect("spawn tui-gateway")
            // `cmd` drops here, closing the test's copies of any fds handed to the child.
        };
        let stdin = child.stdin.take().map(|s| File::from(OwnedFd::from(s)));
        let stdout = child.stdout.take().map(|s| File::from(OwnedFd::from(s)));
        for f in stdin.iter().chain(stdout.iter()) {
            set_nonblocking(f.as_raw_fd(), true);
        }
        let stderr = child.stderr.take().map(Collector::start);
        let mut gw = Gateway {
            gateway_pid: child.id(),
            child,
            stdin,
            stdout,
            buf: Vec::new(),
            buf_start: 0,
            stdout_eof: false,
            stash: VecDeque::new(),
            stderr,
            stderr_unread: stderr_read,
            ready: None,
            status: None,
            next_id: 0,
            spawned_at,
        };
        if self.expect_ready {
            let ready = gw.recv_frame(PATIENCE).unwrap_or_else(|| {
                panic!(
                    "stdout closed before the ready line; stderr:\n{}",
                    gw.stderr_text()
                )
            });
            assert_eq!(
                event_type(&ready),
                Some("gateway.ready"),
                "the first stdout line must be the gateway.ready event, got {ready}"
            );
            if let Some(pid) = ready.pointer("/params/payload/pid").and_then(Value::as_u64) {
                gw.gateway_pid = pid as u32;
            }
            gw.ready = Some(ready);
        }
        gw
    }
}

/// A running gateway with its stdio held by the test.
#[derive(Debug)]
pub struct Gateway {
    /// The spawned process (the gateway itself, or `sh` with [`Builder::via_shell`]).
    pub child: Child,
    /// The gateway's pid (from the ready event when there is one).
    pub gateway_pid: u32,
    stdin: Option<File>,
    stdout: Option<File>,
    buf: Vec<u8>,
    buf_start: usize,
    stdout_eof: bool,
    stash: VecDeque<Value>,
    stderr: Option<Arc<Collector>>,
    /// The read end of a stderr pipe nobody reads ([`StderrMode::Unread`]).
    pub stderr_unread: Option<OwnedFd>,
    /// The ready event, when it was awaited.
    pub ready: Option<Value>,
    status: Option<ExitStatus>,
    next_id: u64,
    /// When `spawn` was called.
    pub spawned_at: Instant,
}

/// The outcome of a read with a deadline.
#[derive(Debug, PartialEq, Eq)]
pub enum Read1 {
    /// A complete line (without its `\n`).
    Line(Vec<u8>),
    /// EOF; holds any trailing bytes that had no `\n`.
    Eof(Vec<u8>),
    /// Nothing complete arrived in time.
    Timeout,
}

impl Gateway {
    /// A builder with defaults: piped stdio, stderr collected, ready line awaited.
    pub fn builder() -> Builder {
        Builder {
            args: Vec::new(),
            env: Vec::new(),
            stdin: None,
            stdout: None,
            stderr: StderrMode::Collect,
            expect_ready: true,
            shell: None,
            pre_exec: None,
        }
    }

    /// Spawns with these arguments and defaults otherwise.
    pub fn spawn(args: &[&str]) -> Gateway {
        Gateway::builder().args(args.iter().copied()).spawn()
    }

    /// The ready event's payload.
    pub fn ready_payload(&self) -> &Value {
        &self.ready.as_ref().expect("ready line was not awaited")["params"]["payload"]
    }

    // ----- stdin ---------------------------------------------------------

    /// The raw fd of the test's end of stdin.
    pub fn stdin_fd(&self) -> RawFd {
        self.stdin
            .as_ref()
            .expect("stdin is not a pipe held by the test")
            .as_raw_fd()
    }

    /// Writes all of `bytes` to stdin within `timeout`. Errors: `TimedOut`
    /// when the gateway stopped reading, `BrokenPipe` when it is gone.
    pub fn try_send_raw(&mut self, bytes: &[u8], timeout: Duration) -> io::Result<()> {
        let deadline = Instant::now() + timeout;
        let stdin = self
            .stdin
            .as_mut()
            .expect("stdin is not a pipe held by the test (or was closed)");
        let fd = stdin.as_raw_fd();
        let mut rest = bytes;
        while !rest.is_empty() {
            match stdin.write(rest) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => rest = &rest[n..],
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    let now = Instant::now();
                    if now >= deadline {
                        return Err(io::Error::new(
                            io::ErrorKind::TimedOut,
                            format!(
                                "gateway stopped reading stdin: {} of {} bytes unwritten after {timeout:?}",
                                rest.len(),
                                bytes.len()
                            ),
                        ));
                    }
                    poll_fd(fd, libc::POLLOUT, deadline - now);
                }
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Writes what the pipe takes now of `bytes`, without waiting; returns
    /// how many bytes went in (0 when the pipe is full).
    pub fn write_some(&mut self, bytes: &[u8]) -> usize {
        let stdin = self
            .stdin
            .as_mut()
            .expect("stdin is not a pipe held by the test (or was closed)");
        loop {
            match stdin.write(bytes) {
                Ok(n) => return n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return 0,
                Err(e) => panic!("writing the gateway's stdin: {e}"),
            }
        }
    }

    /// Writes raw bytes to stdin; panics if they cannot all be written within [`LONG`].
    pub fn send_raw(&mut self, bytes: &[u8]) {
        if let Err(e) = self.try_send_raw(bytes, LONG) {
            panic!(
                "writing {} bytes to the gateway's stdin failed: {e}",
                bytes.len()
            );
        }
    }

    /// Writes one frame.
    pub fn send(&mut self, v: &Value) {
        self.send_raw(&line(v));
    }

    /// Closes the test's end of stdin (the gateway sees EOF).
    pub fn close_stdin(&mut self) {
        self.stdin = None;
    }

    // ----- stdout --------------------------------------------------------

    /// The raw fd of the test's end of stdout.
    pub fn stdout_fd(&self) -> RawFd {
        self.stdout
            .as_ref()
            .expect("stdout is not a pipe held by the test")
            .as_raw_fd()
    }

    /// Closes the test's end of stdout (the gateway's writes then fail with EPIPE).
    pub fn close_stdout(&mut self) {
        self.stdout = None;
    }

    fn take_line(&mut self) -> Option<Vec<u8>> {
        let pending = &self.buf[self.buf_start..];
        let pos = memchr_nl(pending)?;
        let line = pending[..pos].to_vec();
        self.buf_start += pos + 1;
        if self.buf_start == self.buf.len() {
            self.buf.clear();
            self.buf_start = 0;
        } else if self.buf_start > 1 << 20 {
            self.buf.drain(..self.buf_start);
            self.buf_start = 0;
        }
        Some(line)
    }

    /// Reads what is available now; returns false at EOF.
    fn fill(&mut self) -> bool {
        let stdout = self
            .stdout
            .as_mut()
            .expect("stdout is not a pipe held by the test");
        let mut chunk = vec![0u8; 256 * 1024];
        loop {
            match stdout.read(&mut chunk) {
                Ok(0) => {
                    self.stdout_eof = true;
                    return false;
                }
                Ok(n) => {
                    self.buf.extend_from_slice(&chunk[..n]);
                    return true;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return true,
                Err(e) => panic!("reading the gateway's stdout: {e}"),
            }
        }
    }

    /// Reads at most `max` bytes of stdout that are available now (no
    /// waiting); returns how many. For readers that pace themselves.
    pub fn read_available(&mut self, max: usize) -> usize {
        let stdout = self
            .stdout
            .as_mut()
            .expect("stdout is not a pipe held by the test");
        let mut chunk = vec![0u8; max];
        loop {
            match stdout.read(&mut chunk) {
                Ok(0) => {
                    self.stdout_eof = true;
                    return 0;
                }
                Ok(n) => {
                    self.buf.extend_from_slice(&chunk[..n]);
                    return n;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return 0,
                Err(e) => panic!("reading the gateway's stdout: {e}"),
            }
        }
    }

    /// The next complete frame already read (see [`Gateway::read_available`]), checked.
    pub fn take_frame(&mut self) -> Option<Value> {
        self.take_line().map(|l| parse_frame(&l))
    }

    /// True once stdout reached EOF.
    pub fn stdout_eof(&self) -> bool {
        self.stdout_eof
    }

    /// Reads one raw stdout line within `timeout`.
    pub fn read_line(&mut self, timeout: Duration) -> Read1 {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(line) = self.take_line() {
                return Read1::Line(line);
            }
            if self.stdout_eof {
                let rest = self.buf[self.buf_start..].to_vec();
                self.buf.clear();
                self.buf_start = 0;
                return Read1::Eof(rest);
            }
            let now = Instant::now();
            if now >= deadline {
                return Read1::Timeout;
            }
            poll_fd(self.stdout_fd(), libc::POLLIN, deadline - now);
            self.fill();
        }
    }

    /// Reads one raw line; `None` at a clean EOF. Panics on timeout or on a
    /// partial line at EOF.
    pub fn recv_line(&mut self, timeout: Duration) -> Option<Vec<u8>> {
        match self.read_line(timeout) {
            Read1::Line(l) => Some(l),
            Read1::Eof(rest) if rest.is_empty() => None,
            Read1::Eof(rest) => panic!(
                "stdout ended inside a frame: {:?}",
                String::from_utf8_lossy(&rest)
            ),
            Read1::Timeout => panic!(
                "no stdout line within {timeout:?} (partial: {:?});\nstderr so far:\n{}",
                String::from_utf8_lossy(&self.buf[self.buf_start..]),
                self.stderr_text()
            ),
        }
    }

    /// Reads one frame; `None` at EOF. Every frame is checked: not blank,
    /// no raw U+2028/U+2029, valid JSON.
    pub fn recv_frame(&mut self, timeout: Duration) -> Option<Value> {
        let line = self.recv_line(timeout)?;
        Some(parse_frame(&line))
    }

    /// The next frame that is not an event (checking stashed frames first).
    pub fn next_reply(&mut self, timeout: Duration) -> Value {
        if let Some(v) = self.stash.pop_front() {
            return v;
        }
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let v = self.recv_frame(left).unwrap_or_else(|| {
                panic!(
                    "stdout closed while a reply was awaited; stderr:\n{}",
                    self.stderr_text()
                )
            });
            if !is_event(&v) {
                return v;
            }
        }
    }

    /// The response with this id, skipping events and stashing other replies.
    pub fn recv_response(&mut self, id: &Value, timeout: Duration) -> Value {
        if let Some(i) = self.stash.iter().position(|v| v.get("id") == Some(id)) {
            return self.stash.remove(i).unwrap();
        }
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let v = self.recv_frame(left).unwrap_or_else(|| {
                panic!(
                    "stdout closed while the response to {id} was awaited; stderr:\n{}",
                    self.stderr_text()
                )
            });
            if is_event(&v) {
                continue;
            }
            if v.get("id") == Some(id) && is_response(&v) {
                return v;
            }
            self.stash.push_back(v);
        }
    }

    /// Sends a request with a fresh string id and returns the whole response.
    pub fn request(&mut self, method: &str, params: Option<Value>) -> Value {
        self.next_id += 1;
        let id = json!(format!("harness-{}", self.next_id));
        let req = match params {
            Some(p) => rpc_with(id.clone(), method, p),
            None => rpc(id.clone(), method),
        };
        self.send(&req);
        self.recv_response(&id, PATIENCE)
    }

    /// Sends a request and returns its `result`, panicking on an error response.
    pub fn call(&mut self, method: &str, params: Option<Value>) -> Value {
        let resp = self.request(method, params);
        match resp.get("result") {
            Some(r) => r.clone(),
            None => panic!("{method} failed: {resp}"),
        }
    }

    /// `gateway.stats`.
    pub fn stats(&mut self) -> Value {
        self.call("gateway.stats", None)
    }

    /// Reads stdout to EOF: the frames (checked) and any trailing partial line.
    pub fn drain_stdout(&mut self, timeout: Duration) -> (Vec<Value>, Vec<u8>) {
        let deadline = Instant::now() + timeout;
        let mut frames: Vec<Value> = self.stash.drain(..).collect();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.read_line(left) {
                Read1::Line(l) => frames.push(parse_frame(&l)),
                Read1::Eof(rest) => return (frames, rest),
                Read1::Timeout => panic!(
                    "stdout did not reach EOF within {timeout:?} ({} frames read)",
                    frames.len()
                ),
            }
        }
    }

    /// Sends `count` `gateway.info` requests without reading any answer, then
    /// waits until the stdout pipe is at least three quarters full: from then
    /// on the gateway holds output it cannot write. Keep `count` answers
    /// (about 1.5 KB each) well below `--outbound-high-water` (4 MiB): past
    /// it the rest wait unread in a backlog, and a drain waits for that.
    pub fn fill_stdout(&mut self, count: usize) {
        let reqs: Vec<Value> = (0..count)
            .map(|i| rpc(format!("fill-{i}"), "gateway.info"))
            .collect();
        self.send_raw(&lines(&reqs));
        let fd = self.stdout_fd();
        let cap = pipe_capacity(fd);
        assert!(
            poll_until(PATIENCE, || fionread(fd) >= cap * 3 / 4),
            "stdout pipe never filled: {} of {cap} bytes after {count} gateway.info requests",
            fionread(fd)
        );
    }

    // ----- process -------------------------------------------------------

    /// Sends a signal to the gateway.
    pub fn signal(&self, sig: libc::c_int) {
        // SAFETY: kill has no memory effects.
        let r = unsafe { libc::kill(self.gateway_pid as libc::pid_t, sig) };
        assert_eq!(
            r,
            0,
            "kill({}, {sig}): {}",
            self.gateway_pid,
            io::Error::last_os_error()
        );
    }

    /// The exit status if the spawned process has exited (non-blocking).
    pub fn try_exit(&mut self) -> Option<ExitStatus> {
        if self.status.is_none() {
            self.status = self.child.try_wait().expect("try_wait");
        }
        self.status
    }

    /// Waits for the spawned process to exit; panics (and kills it) after `timeout`.
    pub fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        if poll_until(timeout, || self.try_exit().is_some()) {
            return self.status.expect("try_exit recorded the status");
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        panic!(
            "gateway did not exit within {timeout:?}; stderr:\n{}",
            self.stderr_text()
        );
    }

    /// Waits for exit and returns the exit code (panics if killed by a signal).
    pub fn wait_code(&mut self, timeout: Duration) -> i32 {
        code_of(self.wait_exit(timeout))
    }

    // ----- stderr --------------------------------------------------------

    /// Stderr read so far ("" if not collected).
    pub fn stderr_text(&self) -> String {
        self.stderr.as_ref().map(|c| c.text()).unwrap_or_default()
    }

    /// Waits until stderr contains `needle`.
    pub fn wait_stderr(&self, needle: &str, timeout: Duration) -> bool {
        self.stderr
            .as_ref()
            .expect("stderr is not collected")
            .wait(timeout, |t, _| t.contains(needle))
    }

    /// Waits for stderr EOF (all writers gone) and returns all of it.
    pub fn stderr_complete(&self, timeout: Duration) -> String {
        let c = self.stderr.as_ref().expect("stderr is not collected");
        assert!(
            c.wait(timeout, |_, eof| eof),
            "stderr did not reach EOF within {timeout:?}:\n{}",
            c.text()
        );
        c.text()
    }

    /// After exit: the one `[gateway-exit] <reason>` line's reason.
    pub fn exit_reason(&self) -> String {
        let text = self.stderr_complete(PATIENCE);
        let reasons: Vec<&str> = text
            .lines()
            .filter_map(|l| l.strip_prefix("[gateway-exit] "))
            .collect();
        assert_eq!(
            reasons.len(),
            1,
            "expected exactly one `[gateway-exit] <reason>` line on stderr, got:\n{text}"
        );
        reasons[0].to_owned()
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        if self.try_exit().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        // With `via_shell` the gateway is not our child: do not leave it behind.
        if self.gateway_pid != self.child.id()
            && !process_gone(self.gateway_pid)
            && is_gateway_process(self.gateway_pid)
        {
            // SAFETY: kill has no memory effects.
            unsafe { libc::kill(self.gateway_pid as libc::pid_t, libc::SIGKILL) };
        }
    }
}

fn memchr_nl(bytes: &[u8]) -> Option<usize> {
    bytes.iter().position(|&b| b == b'\n')
}
