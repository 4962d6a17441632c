//! One child's state: its output decoders, its stdin queue, and when its
//! `process.exit` may go out.
//!
//! The exit event waits for two things, which arrive in either order: the
//! child was reaped, and every output pipe reached EOF (so all its output is
//! already queued ahead of the exit event). Grandchildren that keep a pipe
//! open therefore delay the exit event until they close it or die.

use serde_json::{json, Value};

use super::decode::{Encoding, StreamDecoder};
use crate::engine::host::{
    ChildKey, ExitStatus, Host, OutputStream, PtySize, StderrMode, StdinMode,
};
use crate::services::stdin_queue::{Flushed, StdinQueue};
use crate::signal_name;

/// Why a child's stdin no longer takes writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StdinClosed {
    /// Spawned with `stdin: "null"`.
    Null,
    /// The client called `process.close_stdin`.
    ByClient,
    /// The pipe broke: the child closed its end or exited.
    Gone,
}

/// Why `process.write` was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteRefused {
    /// Stdin takes no more writes.
    Closed(StdinClosed),
    /// The queue would pass its bound.
    Full {
        /// Bytes already waiting.
        pending: usize,
    },
}

/// A child the service tracks until its exit event is queued.
#[derive(Debug)]
pub struct Proc {
    /// The id on the wire.
    pub id: u64,
    /// The host's handle.
    pub key: ChildKey,
    /// The OS pid (and process-group id).
    pub pid: u32,
    /// As spawned, for `process.list`.
    pub argv: Vec<String>,
    /// The client's label.
    pub tag: Value,
    /// Wall-clock start, in Unix seconds (display only; never used for timing).
    pub started_at: f64,
    /// How its output travels.
    pub encoding: Encoding,
    /// Its terminal's size, for a process on a pseudo-terminal.
    pub pty: Option<PtySize>,
    /// Decoders of the outputs not yet at their end: `[stdout or pty, stderr]`.
    outputs: [Option<StreamDecoder>; 2],
    status: Option<ExitStatus>,
    stdin: Result<StdinQueue, StdinClosed>,
}

fn slot(stream: OutputStream) -> usize {
    match stream {
        OutputStream::Stdout | OutputStream::Pty => 0,
        OutputStream::Stderr => 1,
    }
}

impl Proc {
    /// A child that was just spawned with these modes.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
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
    ) -> Proc {
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
                (pty.is_none() && stderr == StderrMode::Pipe).then(|| StreamDecoder::new(encoding)),
            ],
            status: None,
            stdin: match stdin {
                _ if pty.is_some() => Ok(StdinQueue::default()),
                StdinMode::Pipe => Ok(StdinQueue::default()),
                StdinMode::Null => Err(StdinClosed::Null),
            },
        }
    }

    /// Not reaped yet.
    pub fn running(&self) -> bool {
        self.status.is_none()
    }

    /// Output pipes not yet at EOF.
    pub fn open_pipes(&self) -> usize {
        self.outputs.iter().flatten().count()
    }

    /// Bytes waiting for the child's stdin.
    pub fn stdin_pending(&self) -> usize {
        self.stdin.as_ref().map_or(0, StdinQueue::pending)
    }

    /// Bytes read from a pipe: the text to emit (possibly empty).
    pub fn on_output(&mut self, stream: OutputStream, bytes: &[u8]) -> String {
        match &mut self.outputs[slot(stream)] {
            Some(decoder) => decoder.push(bytes),
            None => String::new(),
        }
    }

    /// A pipe reached EOF: the carried tail to emit (possibly empty).
    pub fn on_eof(&mut self, stream: OutputStream) -> String {
        match self.outputs[slot(stream)].take() {
            Some(mut decoder) => decoder.finish(),
            None => String::new(),
        }
    }

    /// The child was reaped.
    pub fn on_exited(&mut self, status: ExitStatus) {
        self.status = Some(status);
    }

    /// The `process.exit` payload, once the child was reaped and every pipe
    /// reached EOF; `None` before that.
    pub fn exit_payload(&self) -> Option<Value> {
        if self.open_pipes() > 0 {
            return None;
        }
        let (code, signal) = match self.status? {
            ExitStatus::Code(c) => (json!(c), Value::Null),
            ExitStatus::Signal(s) => (Value::Null, json!(signal_name::name(s))),
        };
        Some(json!({"proc": self.id, "code": code, "signal": signal}))
    }

    /// Queues `data` for stdin (all or nothing, within `limit` bytes waiting)
    /// and writes what the pipe takes now. Returns the bytes still waiting.
    pub fn write(
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
    pub fn flush_stdin(&mut self, host: &mut dyn Host) {
        let Ok(queue) = &mut self.stdin else { return };
        match queue.flush(host, self.key) {
            Flushed::Open => {}
            Flushed::Closed => self.stdin = Err(StdinClosed::ByClient),
            Flushed::Broken => self.stdin = Err(StdinClosed::Gone),
        }
    }

    /// `process.close_stdin`: now if nothing waits, else after the queue is
    /// written. Idempotent. Returns the bytes still to be written first.
    pub fn close_stdin(&mut self, host: &mut dyn Host) -> usize {
        if let Ok(queue) = &mut self.stdin {
            queue.close_when_empty();
        }
        self.flush_stdin(host);
        self.stdin_pending()
    }

    /// The pipe is closed on the far side: waiting bytes can never arrive.
    pub fn stdin_gone(&mut self, host: &mut dyn Host) {
        if self.stdin.is_ok() {
            host.close_stdin(self.key);
            self.stdin = Err(StdinClosed::Gone);
        }
    }

    /// One line for `busy_summary`.
    pub fn describe(&self) -> String {
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
        let argv = vec!["cat".to_owned()];
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
        )
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
        let mut p = proc(StdinMode::Null, StderrMode::Pipe);
        assert_eq!(p.on_output(OutputStream::Stdout, b"a\xe2\x82"), "a");
        p.on_exited(ExitStatus::Signal(libc::SIGKILL));
        assert!(p.exit_payload().is_none());
        assert_eq!(p.on_eof(OutputStream::Stdout), "\u{FFFD}");
        assert!(p.exit_payload().is_none(), "stderr still open");
        assert_eq!(p.on_eof(OutputStream::Stderr), "");
        assert_eq!(
            p.exit_payload(),
            Some(json!({"proc": 1, "code": null, "signal": "SIGKILL"}))
        );

        let mut p = proc(StdinMode::Null, StderrMode::Merge);
        assert_eq!(p.on_eof(OutputStream::Stdout), "");
        assert!(p.exit_payload().is_none(), "not reaped yet");
        p.on_exited(ExitStatus::Code(3));
        assert_eq!(
            p.exit_payload(),
            Some(json!({"proc": 1, "code": 3, "signal": null}))
        );
    }
}
