//! Streaming runs for volume tests: a gateway whose stdin is written while
//! its stdout is read (a client that keeps up), with output handed to a sink
//! chunk by chunk instead of buffered, and its peak RSS (`VmHWM`) sampled
//! while it runs.

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::{set_nonblocking, BIN, GATEWAY_ENV_VARS};

/// What the sink wants after a chunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    /// Keep going.
    Continue,
    /// Close stdin now (the rest of the input, if any, is dropped) and keep reading.
    CloseStdin,
    /// Stop pumping (stdout stays open).
    Stop,
}

/// How a run ended.
#[derive(Debug)]
pub struct Finished {
    /// The exit code, if it exited.
    pub code: Option<i32>,
    /// The signal that killed it, if one did.
    pub signal: Option<i32>,
    /// Peak resident set size, in bytes: the last `VmHWM` read while the
    /// gateway was alive (sampled during [`Run::pump`] and just before the
    /// exit). Not `wait4`'s `ru_maxrss`: Linux carries that across fork and
    /// exec, so it would include the test process's own size.
    pub max_rss: u64,
    /// Everything it wrote on stderr.
    pub stderr: String,
    /// When `waitpid` saw it exit.
    pub exited_at: Instant,
}

impl Finished {
    /// The `[gateway-exit]` reason.
    pub fn reason(&self) -> &str {
        self.stderr
            .lines()
            .rev()
            .find_map(|l| l.strip_prefix("[gateway-exit] "))
            .unwrap_or("")
    }
}

/// A gateway run with its stdout handed to a sink.
#[derive(Debug)]
pub struct Run {
    /// The gateway's pid.
    pub pid: u32,
    child: Child,
    stdin: Option<File>,
    stdout: File,
    stdout_eof: bool,
    stderr: Option<JoinHandle<String>>,
    /// The highest `VmHWM` read so far.
    hwm: u64,
    hwm_read_at: Option<Instant>,
}

impl Run {
    /// Spawns the gateway with `args`; stdin is a pipe unless `stdin` is given.
    pub fn spawn(args: &[&str], stdin: Option<Stdio>) -> Run {
        Run::spawn_with(args, stdin, |_| {})
    }

    /// [`Run::spawn`] with a hook to adjust the command (environment, `pre_exec`).
    pub fn spawn_with(
        args: &[&str],
        stdin: Option<Stdio>,
        adjust: impl FnOnce(&mut Command),
    ) -> Run {
        let mut cmd = Command::new(BIN);
        cmd.args(args)
            .stdin(stdin.unwrap_or_else(Stdio::piped))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for var in GATEWAY_ENV_VARS {
            cmd.env_remove(var);
        }
        adjust(&mut cmd);
        let mut child = cmd.spawn().expect("spawn tui-gateway");
        let stdin = child.stdin.take().map(|s| File::from(OwnedFd::from(s)));
        let stdout = File::from(OwnedFd::from(child.stdout.take().expect("piped")));
        for f in stdin.iter().chain([&stdout]) {
            set_nonblocking(f.as_raw_fd(), true);
        }
        let mut err = child.stderr.take().expect("piped");
        let stderr = std::thread::spawn(move || {
            let mut text = String::new();
            let _ = err.read_to_string(&mut text);
            text
        });
        Run {
            pid: child.id(),
            child,
            stdin,
            stdout,
            stdout_eof: false,
            stderr: Some(stderr),
            hwm: 0,
            hwm_read_at: None,
        }
    }

    /// Reads the gateway's `VmHWM` (at most every 5 ms unless `force`).
    fn sample_hwm(&mut self, force: bool) {
        let now = Instant::now();
        if !force
            && self
                .hwm_read_at
                .is_some_and(|t| now - t < Duration::from_millis(5))
        {
            return;
        }
        self.hwm_read_at = Some(now);
        if let Some(hwm) = super::proc_mem_bytes(self.pid, "VmHWM") {
            self.hwm = self.hwm.max(hwm);
        }
    }

    /// Sends `signal` to the gateway.
    pub fn signal(&self, signal: libc::c_int) {
        // SAFETY: kill has no memory effects.
        unsafe { libc::kill(self.pid as libc::pid_t, signal) };
    }

    /// Closes the test's end of stdin.
    pub fn close_stdin(&mut self) {
        self.stdin = None;
    }

    /// Writes `input` (then closes stdin if `close_after`) while reading
    /// stdout into `sink`, until stdout reaches EOF or the sink says stop.
    /// Panics if that takes longer than `timeout`.
    pub fn pump(
        &mut self,
        input: &[u8],
        close_after: bool,
        timeout: Duration,
        mut sink: impl FnMut(&[u8]) -> Flow,
    ) {
        let deadline = Instant::now() + timeout;
        let mut rest = input;
        let mut chunk = vec![0u8; 256 * 1024];
        loop {
            if rest.is_empty() && close_after {
                self.stdin = None;
            }
            if let (Some(stdin), false) = (&mut self.stdin, rest.is_empty()) {
                match stdin.write(rest) {
                    Ok(n) => rest = &rest[n..],
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    // The gateway stopped reading for good (it is exiting).
                    Err(_) => {
                        self.stdin = None;
                        rest = &[];
                    }
                }
            }
            let mut read_any = false;
            while !self.stdout_eof {
                match self.stdout.read(&mut chunk) {
                    Ok(0) => self.stdout_eof = true,
                    Ok(n) => {
                        read_any = true;
                        match sink(&chunk[..n]) {
                            Flow::Continue => {}
                            Flow::CloseStdin => {
                                self.stdin = None;
                                rest = &[];
                            }
                            Flow::Stop => return,
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) => panic!("reading the gateway's stdout: {e}"),
                }
            }
            self.sample_hwm(false);
            if self.stdout_eof {
                return;
            }
            let now = Instant::now();
            assert!(
                now < deadline,
                "pump did not finish within {timeout:?} ({} input bytes unwritten)",
                rest.len()
            );
            if !read_any {
                let mut fds = vec![libc::pollfd {
                    fd: self.stdout.as_raw_fd(),
                    events: libc::POLLIN,
                    revents: 0,
                }];
                if let (Some(stdin), false) = (&self.stdin, rest.is_empty()) {
                    fds.push(libc::pollfd {
                        fd: stdin.as_raw_fd(),
                        events: libc::POLLOUT,
                        revents: 0,
                    });
                }
                let wait = (deadline - now).min(Duration::from_millis(100));
                // SAFETY: fds is a live array of pollfd of the given length.
                unsafe {
                    libc::poll(
                        fds.as_mut_ptr(),
                        fds.len() as libc::nfds_t,
                        wait.as_millis() as i32,
                    )
                };
            }
        }
    }

    /// Waits (polling) up to `timeout` for the gateway to exit and collects
    /// its status and peak RSS.
    pub fn finish(mut self, timeout: Duration) -> Finished {
        self.sample_hwm(true);
        self.stdin = None;
        let deadline = Instant::now() + timeout;
        let pid = self.pid as libc::pid_t;
        loop {
            let mut status = 0;
            // SAFETY: waitpid writes the status only.
            let got = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
            if got == pid {
                let exited_at = Instant::now();
                let stderr = self
                    .stderr
                    .take()
                    .and_then(|h| h.join().ok())
                    .unwrap_or_default();
                let (code, signal) = if libc::WIFEXITED(status) {
                    (Some(libc::WEXITSTATUS(status)), None)
                } else {
                    (None, Some(libc::WTERMSIG(status)))
                };
                // Keep std from reaping (or killing) a pid that is gone.
                std::mem::forget(self.child);
                return Finished {
                    code,
                    signal,
                    max_rss: self.hwm,
                    stderr,
                    exited_at,
                };
            }
            if Instant::now() >= deadline {
                let _ = self.child.kill();
                panic!("the gateway did not exit within {timeout:?}");
            }
            std::thread::sleep(Duration::from_millis(1)); // polling interval, not a wait for an event
        }
    }
}

/// Splits a byte stream into lines, handing each complete line to `f`.
#[derive(Debug, Default)]
pub struct Lines {
    partial: Vec<u8>,
}

impl Lines {
    /// Feeds a chunk; `f` gets every line it completes (without `\n`).
    pub fn feed(&mut self, chunk: &[u8], mut f: impl FnMut(&[u8])) {
        let mut rest = chunk;
        while let Some(pos) = rest.iter().position(|&b| b == b'\n') {
            if self.partial.is_empty() {
                f(&rest[..pos]);
            } else {
                self.partial.extend_from_slice(&rest[..pos]);
                f(&std::mem::take(&mut self.partial));
            }
            rest = &rest[pos + 1..];
        }
        self.partial.extend_from_slice(rest);
    }

    /// Bytes of an unfinished line.
    pub fn pending(&self) -> usize {
        self.partial.len()
    }
}

/// Collects the numeric ids of responses in a stream without holding it:
/// every `"id":N` (the key exactly, so `"pid"` never matches), across chunk
/// boundaries.
#[derive(Debug, Default)]
pub struct IdScanner {
    /// How far into `"id":` the previous chunk ended.
    matched: usize,
    /// The id being read, and whether a digit was seen yet.
    digits: Option<(u64, bool)>,
    /// Every id seen, in order.
    pub ids: Vec<u64>,
    /// Newlines seen (complete lines).
    pub lines: usize,
    /// Bytes seen.
    pub bytes: u64,
}

impl IdScanner {
    const KEY: &'static [u8] = b"\"id\":";

    /// Scans a chunk.
    pub fn feed(&mut self, chunk: &[u8]) {
        self.bytes += chunk.len() as u64;
        for &b in chunk {
            if b == b'\n' {
                self.lines += 1;
            }
            if let Some((n, any)) = self.digits {
                if b.is_ascii_digit() {
                    self.digits = Some((n * 10 + u64::from(b - b'0'), true));
                    continue;
                }
                if any {
                    self.ids.push(n);
                }
                self.digits = None;
            }
            if b == Self::KEY[self.matched] {
                self.matched += 1;
                if self.matched == Self::KEY.len() {
                    self.matched = 0;
                    self.digits = Some((0, false));
                }
            } else {
                self.matched = usize::from(b == Self::KEY[0]);
            }
        }
    }
}

/// Spawns with `pre_exec` code that runs in the child before exec.
pub fn with_pre_exec(cmd: &mut Command, f: impl FnMut() -> io::Result<()> + Send + Sync + 'static) {
    // SAFETY: the callers pass closures that make async-signal-safe calls only.
    unsafe {
        cmd.pre_exec(f);
    }
}
