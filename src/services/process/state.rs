//! One child's state: its output decoders, its stdin queue, and when its
//! `process.exit` may go out.
//!
//! The exit event waits for two things, which arrive in either order: the
//! child was reaped, and every output pipe reached EOF (so all its output is
//! already queued ahead of the exit event). Grandchildren that keep a pipe
//! open therefore delay the exit event until they close it or die.

use std::collections::VecDeque;
use std::time::Instant;

use serde_json::{json, Map, Value};

use super::decode::{Encoding, StreamDecoder};
use super::ladder::{Cancelling, Ladder};
use super::limiter::{Limiter, OutputLimit, Policy};
use crate::engine::host::{
    ChildKey, ExitStatus, Host, OutputStream, PtySize, ResourceLimits, StderrMode, StdinMode, Usage,
};
use crate::services::child_life::{slot, ChildLife};
use crate::services::stdin_queue::{Flushed, StdinQueue};

/// Why a child's stdin no longer takes writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StdinClosed {
    /// Spawned with `stdin: "null"`.
    Null,
    /// The client called `process.close_stdin`.
    ByClient,
    /// The pipe broke: the child closed its end or exited.
    Gone,
}

/// Why `process.write` was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum WriteRefused {
    /// Stdin takes no more writes.
    Closed(StdinClosed),
    /// The queue would pass its bound.
    Full {
        /// Bytes already waiting.
        pending: usize,
    },
}

/// What the gateway did that ends a process: the exit's `cause` unless the
/// process ended before it took effect... which the gateway cannot tell, so
/// it wins whenever it was started before the exit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stopped {
    /// `process.cancel`.
    Cancel,
    /// `timeout_ms` passed.
    Timeout,
    /// A stream passed its `output_limit` with `"kill"`.
    OutputLimit,
    /// The gateway was shutting down.
    Shutdown,
}

impl Stopped {
    fn as_str(self) -> &'static str {
        match self {
            Stopped::Cancel => "cancel",
            Stopped::Timeout => "timeout",
            Stopped::OutputLimit => "output_limit",
            Stopped::Shutdown => "shutdown",
        }
    }
}

/// How a process is bounded, as given at spawn.
#[derive(Debug, Clone)]
pub(crate) struct Envelope {
    /// `timeout_ms`.
    pub(crate) timeout_ms: Option<u64>,
    /// `output_limit`, per stream.
    pub(crate) output_limit: Option<OutputLimit>,
    /// `limits`.
    pub(crate) limits: ResourceLimits,
    /// `cancel`, or the default ladder.
    pub(crate) ladder: Ladder,
}

/// What a read of one stream produced.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Produced {
    /// Text to forward (possibly empty).
    pub(crate) text: String,
    /// This read passed a `kill` or `truncate` limit: say so once.
    pub(crate) truncated: bool,
    /// ... and the policy is `kill`: cancel the process.
    pub(crate) kill: bool,
}

/// An event of a ring held back until there is room for it.
#[derive(Debug)]
pub(crate) struct HeldPiece {
    /// Its stream.
    pub(crate) stream: OutputStream,
    /// Its text.
    pub(crate) data: String,
    /// On the first piece of a ring: the bytes skipped before it.
    pub(crate) skipped: Option<u64>,
}

/// A child the service tracks until its exit event is queued.
#[derive(Debug)]
pub(crate) struct Proc {
    /// The id on the wire.
    pub(crate) id: u64,
    /// The host's handle.
    pub(crate) key: ChildKey,
    /// The OS pid (and process-group id).
    pub(crate) pid: u32,
    /// As spawned, for `process.list`.
    pub(crate) argv: Vec<String>,
    /// The client's label.
    pub(crate) tag: Value,
    /// Wall-clock start, in Unix seconds (display only; never used for timing).
    pub(crate) started_at: f64,
    /// How its output travels.
    pub(crate) encoding: Encoding,
    /// Its terminal's size, for a process on a pseudo-terminal.
    pub(crate) pty: Option<PtySize>,
    /// Decoders of the outputs not yet at their end: `[stdout or pty, stderr]`.
    outputs: [Option<StreamDecoder>; 2],
    /// Reaped or not (how, when), and which outputs are open.
    life: ChildLife,
    stdin: Result<StdinQueue, StdinClosed>,
    /// Spawned with a stderr pipe of its own.
    has_stderr: bool,
    /// When it was spawned, on the engine's clock.
    spawned_at: Instant,
    /// Its bounds.
    pub(crate) envelope: Envelope,
    /// When its timeout cancels it.
    pub(crate) timeout_at: Option<Instant>,
    limiters: [Option<Limiter>; 2],
    /// Raw bytes read per stream.
    output_bytes: [u64; 2],
    /// Ring events waiting for room in the outbound queue.
    pub(crate) held: VecDeque<HeldPiece>,
    /// Its cancel ladder, while it runs.
    pub(crate) cancelling: Option<Cancelling>,
    /// What the gateway did to end it, first.
    pub(crate) stopped: Option<Stopped>,
    /// Cancelled, exited and drained, but something of its tree is left:
    /// look again then.
    pub(crate) tree_check_at: Option<Instant>,
}

impl Proc {
    /// A child that was just spawned with these modes.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        id: u64,
        key: ChildKey,
        pid: u32,
        argv: Vec<String>,
        tag: Value,
        started_at: f64,
        encoding: Encoding,
        stdin: StdinMode,
        stderr: StderrMode,
        pty: Option<PtySize>,
        envelope: Envelope,
        now: Instant,
    ) -> Proc {
        let has_stderr = pty.is_none() && stderr == StderrMode::Pipe;
        let limiter = |open: bool| {
            envelope
                .output_limit
                .filter(|_| open)
                .map(|l| Limiter::new(l, encoding))
        };
        Proc {
            id,
            key,
            pid,
            argv,
            tag,
            started_at,
            encoding,
            pty,
            outputs: [
                Some(StreamDecoder::new(encoding)),
                has_stderr.then(|| StreamDecoder::new(encoding)),
            ],
            life: ChildLife::new(has_stderr),
            has_stderr,
            spawned_at: now,
            timeout_at: envelope
                .timeout_ms
                .map(|ms| now + std::time::Duration::from_millis(ms)),
            limiters: [limiter(true), limiter(has_stderr)],
            envelope,
            output_bytes: [0; 2],
            held: VecDeque::new(),
            cancelling: None,
            stopped: None,
            tree_check_at: None,
            stdin: match stdin {
                _ if pty.is_some() => Ok(StdinQueue::default()),
                StdinMode::Pipe => Ok(StdinQueue::default()),
                StdinMode::Null => Err(StdinClosed::Null),
            },
        }
    }

    /// Not reaped yet.
    pub(crate) fn running(&self) -> bool {
        self.life.is_running()
    }

    /// Output pipes not yet at EOF.
    pub(crate) fn open_pipes(&self) -> usize {
        self.life.open_outputs()
    }

    /// Bytes waiting for the child's stdin.
    pub(crate) fn stdin_pending(&self) -> usize {
        self.stdin.as_ref().map_or(0, StdinQueue::pending)
    }

    /// Bytes read from a pipe: the text to emit, counted against the
    /// stream's limit.
    pub(crate) fn on_output(&mut self, stream: OutputStream, bytes: &[u8]) -> Produced {
        let at = slot(stream);
        self.output_bytes[at] += bytes.len() as u64;
        let Some(decoder) = &mut self.outputs[at] else {
            return Produced::default();
        };
        let Some(limiter) = &mut self.limiters[at] else {
            return Produced {
                text: decoder.push(bytes),
                ..Produced::default()
            };
        };
        let admitted = limiter.admit(bytes);
        let mut text = decoder.push(admitted.forward);
        if !admitted.cut {
            return Produced {
                text,
                ..Produced::default()
            };
        }
        // The forwarded part ends at an exact byte count: what the decoder
        // carries is cut there.
        text.push_str(&decoder.finish());
        let policy = limiter.policy();
        Produced {
            text,
            truncated: policy != Policy::Tail,
            kill: policy == Policy::Kill,
        }
    }

    /// A pipe reached EOF: the carried tail to emit (possibly empty), and a
    /// `tail` ring to deliver, decoded, with the bytes skipped before it.
    pub(crate) fn on_eof(&mut self, stream: OutputStream) -> (String, Option<(u64, String)>) {
        let at = slot(stream);
        let Some(mut decoder) = self.outputs[at].take() else {
            return (String::new(), None);
        };
        self.life.on_eof(stream);
        let tail = decoder.finish();
        let ring = self.limiters[at].as_mut().and_then(Limiter::take_ring);
        let ring = ring.map(|(skipped, bytes)| {
            let mut decoder = StreamDecoder::new(self.encoding);
            let mut text = decoder.push(&bytes);
            text.push_str(&decoder.finish());
            (skipped, text)
        });
        (tail, ring)
    }

    /// The child was reaped at `now`.
    pub(crate) fn on_exited(&mut self, status: ExitStatus, usage: Option<Usage>, now: Instant) {
        self.life.on_exited(status, usage, now);
    }

    /// Reaped, every pipe at EOF and every held ring event sent.
    pub(crate) fn is_done(&self) -> bool {
        self.life.is_over() && self.held.is_empty()
    }

    /// The stream names this process has, with their slot.
    fn streams(&self) -> Vec<(&'static str, usize)> {
        if self.pty.is_some() {
            vec![("pty", 0)]
        } else if self.has_stderr {
            vec![("stdout", 0), ("stderr", 1)]
        } else {
            vec![("stdout", 0)]
        }
    }

    /// The exit's `cause`, and which limit for `"limit"`.
    fn cause(&self, status: ExitStatus) -> (&'static str, Option<&'static str>) {
        if let Some(stopped) = self.stopped {
            return (stopped.as_str(), None);
        }
        let limits = &self.envelope.limits;
        let usage = self.life.reaped().and_then(|r| r.usage);
        let cpu_ms = usage.map_or(0, |u| u.user_ms + u.system_ms);
        match status {
            ExitStatus::Code(_) => ("exit", None),
            ExitStatus::Signal(libc::SIGXCPU) if limits.cpu_seconds.is_some() => {
                ("limit", Some("cpu_seconds"))
            }
            ExitStatus::Signal(libc::SIGKILL)
                if limits
                    .cpu_seconds
                    .is_some_and(|s| cpu_ms >= s.saturating_mul(1000)) =>
            {
                ("limit", Some("cpu_seconds"))
            }
            ExitStatus::Signal(libc::SIGKILL)
                if limits.memory_bytes.is_some() && usage.is_some_and(|u| u.oom_killed) =>
            {
                ("limit", Some("memory_bytes"))
            }
            ExitStatus::Signal(libc::SIGXFSZ) if limits.file_size_bytes.is_some() => {
                ("limit", Some("file_size_bytes"))
            }
            ExitStatus::Signal(_) => ("signal", None),
        }
    }

    /// The `process.exit` payload, once [`Proc::is_done`]; `None` before.
    pub(crate) fn exit_payload(&self) -> Option<Value> {
        if !self.is_done() {
            return None;
        }
        let reaped = *self.life.reaped()?;
        let status = reaped.status;
        let (code, signal) = status.fields();
        let (cause, limit) = self.cause(status);
        let streams = self.streams();
        let mut bytes = Map::new();
        for (name, at) in &streams {
            bytes.insert((*name).to_owned(), json!(self.output_bytes[*at]));
        }
        let mut payload = Map::new();
        payload.insert("proc".into(), json!(self.id));
        payload.insert("code".into(), code);
        payload.insert("signal".into(), signal);
        payload.insert("cause".into(), json!(cause));
        payload.insert(
            "duration_ms".into(),
            json!(reaped
                .at
                .saturating_duration_since(self.spawned_at)
                .as_millis() as u64),
        );
        payload.insert("output_bytes".into(), Value::Object(bytes));
        if self.envelope.output_limit.is_some() {
            let mut discarded = Map::new();
            for (name, at) in &streams {
                let n = self.limiters[*at].as_ref().map_or(0, Limiter::discarded);
                discarded.insert((*name).to_owned(), json!(n));
            }
            payload.insert("discarded".into(), Value::Object(discarded));
        }
        if let Some(limit) = limit {
            payload.insert("limit".into(), json!(limit));
        }
        if !self.envelope.limits.is_empty() {
            if let Some(u) = reaped.usage {
                payload.insert(
                    "usage".into(),
                    json!({"max_rss_bytes": u.max_rss_bytes, "user_ms": u.user_ms, "system_ms": u.system_ms, "oom_killed": u.oom_killed}),
                );
            }
        }
        Some(Value::Object(payload))
    }

    /// Milliseconds since the spawn, for `process.list`.
    pub(crate) fn elapsed_ms(&self, now: Instant) -> u64 {
        now.saturating_duration_since(self.spawned_at).as_millis() as u64
    }

    /// Queues `data` for stdin (all or nothing, within `limit` bytes waiting)
    /// and writes what the pipe takes now. Returns the bytes still waiting.
    pub(crate) fn write(
        &mut self,
        host: &mut dyn Host,
        data: &[u8],
        limit: usize,
    ) -> Result<usize, WriteRefused> {
        let queue = self.stdin.as_mut().map_err(|c| WriteRefused::Closed(*c))?;
        if queue.is_closing() {
            return Err(WriteRefused::Closed(StdinClosed::ByClient));
        }
        queue
            .push(data, limit)
            .map_err(|pending| WriteRefused::Full { pending })?;
        self.flush_stdin(host);
        match &self.stdin {
            Ok(q) => Ok(q.pending()),
            // The pipe broke while writing: the bytes can never arrive.
            Err(closed) => Err(WriteRefused::Closed(*closed)),
        }
    }

    /// Writes waiting bytes until the pipe is full or the queue is empty;
    /// closes stdin when asked to and the queue is empty; drops the queue if
    /// the pipe broke.
    pub(crate) fn flush_stdin(&mut self, host: &mut dyn Host) {
        let Ok(queue) = &mut self.stdin else { return };
        match queue.flush(host, self.key) {
            Flushed::Open => {}
            Flushed::Closed => self.stdin = Err(StdinClosed::ByClient),
            Flushed::Broken => self.stdin = Err(StdinClosed::Gone),
        }
    }

    /// `process.close_stdin`: now if nothing waits, else after the queue is
    /// written. Idempotent. Returns the bytes still to be written first.
    pub(crate) fn close_stdin(&mut self, host: &mut dyn Host) -> usize {
        if let Ok(queue) = &mut self.stdin {
            queue.close_when_empty();
        }
        self.flush_stdin(host);
        self.stdin_pending()
    }

    /// The pipe is closed on the far side: waiting bytes can never arrive.
    pub(crate) fn stdin_gone(&mut self, host: &mut dyn Host) {
        if self.stdin.is_ok() {
            host.close_stdin(self.key);
            self.stdin = Err(StdinClosed::Gone);
        }
    }

    /// One line for `busy_summary`.
    pub(crate) fn describe(&self) -> String {
        let state = if self.running() {
            "running".to_owned()
        } else {
            format!("exited, {} output pipe(s) still open", self.open_pipes())
        };
        format!(
            "proc {} (pid {}, {}) {state}",
            self.id,
            self.pid,
            self.argv.first().map(String::as_str).unwrap_or("?")
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::host::{SignalScope, SpawnSpec, Spawned};
    use std::io;

    /// A host whose stdin pipe takes `room` bytes, then would block.
    #[derive(Default)]
    struct Pipe {
        room: usize,
        written: Vec<u8>,
        closed: bool,
        broken: bool,
    }

    impl Host for Pipe {
        fn spawn(&mut self, _: &SpawnSpec) -> io::Result<Spawned> {
            unreachable!()
        }
        fn write_stdin(&mut self, _: ChildKey, data: &[u8]) -> io::Result<usize> {
            if self.broken {
                return Err(io::ErrorKind::BrokenPipe.into());
            }
            let n = data.len().min(self.room);
            if n == 0 {
                return Err(io::ErrorKind::WouldBlock.into());
            }
            self.room -= n;
            self.written.extend_from_slice(&data[..n]);
            Ok(n)
        }
        fn close_stdin(&mut self, _: ChildKey) {
            self.closed = true;
        }
        fn signal(&mut self, _: ChildKey, _: i32, _: SignalScope) -> io::Result<()> {
            Ok(())
        }
        fn signal_descendants(&mut self, _: i32) {}
        fn resize(&mut self, _: ChildKey, _: PtySize) -> io::Result<()> {
            Ok(())
        }
        fn release(&mut self, _: ChildKey) {}
    }

    fn proc(stdin: StdinMode, stderr: StderrMode) -> Proc {
        enveloped(stdin, stderr, None, Instant::now())
    }

    fn enveloped(
        stdin: StdinMode,
        stderr: StderrMode,
        output_limit: Option<OutputLimit>,
        now: Instant,
    ) -> Proc {
        let argv = vec!["cat".to_owned()];
        let envelope = Envelope {
            timeout_ms: None,
            output_limit,
            limits: ResourceLimits::default(),
            ladder: Ladder::default(),
        };
        Proc::new(
            1,
            ChildKey(0),
            42,
            argv,
            Value::Null,
            0.0,
            Encoding::Utf8,
            stdin,
            stderr,
            None,
            envelope,
            now,
        )
    }

    fn text(s: &str) -> Produced {
        Produced {
            text: s.to_owned(),
            ..Produced::default()
        }
    }

    #[test]
    fn stdin_queue_is_bounded_written_eagerly_and_closed_after_draining() {
        let mut host = Pipe {
            room: 3,
            ..Pipe::default()
        };
        let mut p = proc(StdinMode::Pipe, StderrMode::Pipe);
        assert_eq!(p.write(&mut host, b"hello", 8), Ok(2));
        assert_eq!(host.written, b"hel");
        assert_eq!(
            p.write(&mut host, b"1234567", 8),
            Err(WriteRefused::Full { pending: 2 })
        );
        assert_eq!(p.write(&mut host, b"123456", 8), Ok(8));
        assert_eq!(p.close_stdin(&mut host), 8);
        assert!(!host.closed, "closing waits for the queue");
        assert_eq!(
            p.write(&mut host, b"x", 8),
            Err(WriteRefused::Closed(StdinClosed::ByClient))
        );
        host.room = 100;
        p.flush_stdin(&mut host);
        assert_eq!(host.written, b"hello123456");
        assert!(host.closed);
        assert_eq!(p.close_stdin(&mut host), 0, "idempotent");
    }

    #[test]
    fn the_queue_never_holds_more_memory_than_its_limit() {
        let mut host = Pipe::default();
        let mut p = proc(StdinMode::Pipe, StderrMode::Pipe);
        let limit = 100_000;
        let mut accepted = 0;
        while p.write(&mut host, b"x", limit).is_ok() {
            accepted += 1;
        }
        assert_eq!(accepted, limit);
        let Ok(queue) = &p.stdin else { panic!("open") };
        assert!(queue.capacity() <= limit, "{}", queue.capacity());
    }

    #[test]
    fn a_broken_pipe_drops_the_queue() {
        let mut host = Pipe::default();
        let mut p = proc(StdinMode::Pipe, StderrMode::Pipe);
        assert_eq!(p.write(&mut host, b"abc", 8), Ok(3));
        host.broken = true;
        p.flush_stdin(&mut host);
        assert_eq!(p.stdin_pending(), 0);
        assert!(host.closed);
        assert_eq!(
            p.write(&mut host, b"x", 8),
            Err(WriteRefused::Closed(StdinClosed::Gone))
        );
        let mut p = proc(StdinMode::Null, StderrMode::Pipe);
        assert_eq!(
            p.write(&mut host, b"x", 8),
            Err(WriteRefused::Closed(StdinClosed::Null))
        );
    }

    #[test]
    fn exit_waits_for_reaping_and_every_pipe() {
        let t0 = Instant::now();
        let mut p = enveloped(StdinMode::Null, StderrMode::Pipe, None, t0);
        assert_eq!(p.on_output(OutputStream::Stdout, b"a\xe2\x82"), text("a"));
        let t1 = t0 + std::time::Duration::from_millis(25);
        p.on_exited(ExitStatus::Signal(libc::SIGKILL), None, t1);
        assert!(p.exit_payload().is_none());
        assert_eq!(
            p.on_eof(OutputStream::Stdout),
            ("\u{FFFD}".to_owned(), None)
        );
        assert!(p.exit_payload().is_none(), "stderr still open");
        assert_eq!(p.on_eof(OutputStream::Stderr), (String::new(), None));
        assert_eq!(
            p.exit_payload(),
            Some(json!({
                "proc": 1, "code": null, "signal": "SIGKILL", "cause": "signal",
                "duration_ms": 25, "output_bytes": {"stdout": 3, "stderr": 0},
            }))
        );

        let mut p = enveloped(StdinMode::Null, StderrMode::Merge, None, t0);
        assert_eq!(p.on_eof(OutputStream::Stdout), (String::new(), None));
        assert!(p.exit_payload().is_none(), "not reaped yet");
        p.on_exited(ExitStatus::Code(3), None, t0);
        assert_eq!(
            p.exit_payload(),
            Some(json!({
                "proc": 1, "code": 3, "signal": null, "cause": "exit",
                "duration_ms": 0, "output_bytes": {"stdout": 0},
            }))
        );
    }

    #[test]
    fn the_gateways_cause_wins_and_limits_are_recognised() {
        let t0 = Instant::now();
        let mut p = enveloped(StdinMode::Null, StderrMode::Merge, None, t0);
        p.stopped = Some(Stopped::Timeout);
        p.on_eof(OutputStream::Stdout);
        p.on_exited(ExitStatus::Code(130), None, t0);
        assert_eq!(p.exit_payload().unwrap()["cause"], "timeout");

        let mut p = enveloped(StdinMode::Null, StderrMode::Merge, None, t0);
        p.envelope.limits.cpu_seconds = Some(1);
        p.on_eof(OutputStream::Stdout);
        let usage = Usage {
            max_rss_bytes: 4096,
            user_ms: 990,
            system_ms: 15,
            oom_killed: false,
        };
        p.on_exited(ExitStatus::Signal(libc::SIGKILL), Some(usage), t0);
        let exit = p.exit_payload().unwrap();
        assert_eq!(
            (&exit["cause"], &exit["limit"]),
            (&json!("limit"), &json!("cpu_seconds"))
        );
        assert_eq!(
            exit["usage"],
            json!({"max_rss_bytes": 4096, "user_ms": 990, "system_ms": 15, "oom_killed": false})
        );
        p.on_exited(ExitStatus::Signal(libc::SIGXFSZ), Some(usage), t0);
        assert_eq!(
            p.exit_payload().unwrap()["cause"],
            "signal",
            "no file size limit"
        );
    }

    #[test]
    fn a_truncated_stream_says_so_once_and_counts_what_it_dropped() {
        let t0 = Instant::now();
        let limit = OutputLimit {
            bytes: 4,
            policy: Policy::Truncate,
        };
        let mut p = enveloped(StdinMode::Null, StderrMode::Pipe, Some(limit), t0);
        assert_eq!(p.on_output(OutputStream::Stdout, b"ab"), text("ab"));
        // The cut splits the euro sign: it ends the forwarded text as U+FFFD.
        let cut = p.on_output(OutputStream::Stdout, b"c\xe2\x82\xac tail");
        assert_eq!(
            cut,
            Produced {
                text: "c\u{FFFD}".to_owned(),
                truncated: true,
                kill: false
            }
        );
        assert_eq!(p.on_output(OutputStream::Stdout, b"more"), text(""));
        p.on_eof(OutputStream::Stdout);
        p.on_eof(OutputStream::Stderr);
        p.on_exited(ExitStatus::Code(0), None, t0);
        let exit = p.exit_payload().unwrap();
        assert_eq!(exit["output_bytes"], json!({"stdout": 15, "stderr": 0}));
        assert_eq!(exit["discarded"], json!({"stdout": 11, "stderr": 0}));
    }
}
