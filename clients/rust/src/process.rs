//! Process handles: [`Process`] receives a process's events in order;
//! [`ProcessControl`] (cloneable, `Send + Sync`) writes to it, signals,
//! resizes and cancels it from any thread.

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::base64;
use crate::error::{Error, GatewayExit, Result};
use crate::gateway::Shared;
use crate::lines::{LineSplitter, Piece, Utf8Decoder};
use crate::types::{
    CancelResult, Captured, CloseStdinResult, Encoding, LadderStep, LinesOptions, Output,
    OutputData, OutputLine, OutputText, ProcessEvent, ProcessExit, PtySize, Stream, WriteResult,
};

/// What the reader thread sends a process handle.
pub(crate) enum ProcMsg {
    Output(Output),
    Exit(ProcessExit),
    GatewayExited(GatewayExit),
}

/// The piece [`ProcessControl::write_all`] sends in one `process.write`
/// (the Node and Python clients' default too).
pub const WRITE_ALL_PIECE_BYTES: usize = 64 * 1024;

/// Acts on a running process: write to its stdin, signal, resize, cancel.
/// Cheap to clone, `Send + Sync`: keep one in the UI thread while another
/// thread reads the [`Process`]'s output.
#[derive(Clone)]
pub struct ProcessControl {
    shared: Arc<Shared>,
    proc: u64,
    pid: u32,
    pty: bool,
    argv: Arc<[String]>,
    encoding: Encoding,
    exited: Arc<AtomicBool>,
}

impl std::fmt::Debug for ProcessControl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProcessControl")
            .field("proc", &self.proc)
            .field("pid", &self.pid)
            .field("pty", &self.pty)
            .field("running", &self.running())
            .finish()
    }
}

fn signal_value(signal: &str) -> Value {
    match signal.parse::<u64>() {
        Ok(n) => Value::from(n),
        Err(_) => Value::from(signal),
    }
}

impl ProcessControl {
    /// The gateway's id of the process (`proc`; not the OS pid).
    pub fn proc(&self) -> u64 {
        self.proc
    }

    /// The command line it was spawned with.
    pub fn argv(&self) -> &[String] {
        &self.argv
    }

    /// How its output is sent: text, or base64 of the exact bytes (decoded
    /// by the client: [`OutputData::Bytes`]).
    pub fn encoding(&self) -> Encoding {
        self.encoding
    }

    /// The OS pid, also the id of its process group (and session, on a PTY).
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Whether it runs on a pseudo-terminal.
    pub fn is_pty(&self) -> bool {
        self.pty
    }

    /// `false` once its `process.exit` event has arrived.
    pub fn running(&self) -> bool {
        !self.exited.load(Ordering::SeqCst)
    }

    fn call(&self, method: &str, params: Value) -> Result<Value> {
        self.shared
            .call(method, params, self.shared.request_timeout)
    }

    /// `process.write`: accepted whole or refused whole. A string goes as
    /// UTF-8, other bytes as base64. When the child's stdin queue is full
    /// (`--child-stdin-limit`, 1 MiB) it fails with `-32001`
    /// ([`Error::is_overloaded`]); [`write_all`](Self::write_all) waits instead.
    pub fn write(&self, data: impl AsRef<[u8]>) -> Result<WriteResult> {
        let bytes = data.as_ref();
        let params = match std::str::from_utf8(bytes) {
            Ok(text) => json!({"proc": self.proc, "data": text}),
            Err(_) => {
                json!({"proc": self.proc, "data": base64::encode(bytes), "encoding": "base64"})
            }
        };
        let result = self.call("process.write", params)?;
        serde_json::from_value(result).map_err(|e| Error::Protocol(format!("process.write: {e}")))
    }

    /// Writes all of `data`, in pieces of 64 KiB
    /// ([`WRITE_ALL_PIECE_BYTES`]), waiting while the child's stdin queue is
    /// full (each piece refused with `-32001` is sent again after a backoff
    /// of 1 to 50 ms, until the child has read enough). Returns once
    /// the gateway accepted the last piece (not once the child read it):
    /// `queued` counts every byte, `pending` is the last answer's.
    pub fn write_all(&self, data: impl AsRef<[u8]>) -> Result<WriteResult> {
        let data = data.as_ref();
        let limit = self.shared.stdin_limit.load(Ordering::Relaxed) as usize;
        let piece = WRITE_ALL_PIECE_BYTES.min(limit).max(1);
        let mut start = 0;
        let mut result = WriteResult::default();
        while start < data.len() {
            let mut end = (start + piece).min(data.len());
            // Keep UTF-8 text whole per piece, so it goes as text.
            let mut back = end;
            while back > start && back < data.len() && (data[back] & 0xC0) == 0x80 {
                back -= 1;
            }
            if back > start {
                end = back;
            }
            let mut delay = Duration::from_millis(1);
            loop {
                match self.write(&data[start..end]) {
                    Ok(answer) => {
                        result.queued += answer.queued;
                        result.pending = answer.pending;
                        break;
                    }
                    Err(e) if e.is_overloaded() => {
                        std::thread::sleep(delay);
                        delay = (delay * 2).min(Duration::from_millis(50));
                    }
                    Err(e) => return Err(e),
                }
            }
            start = end;
        }
        Ok(result)
    }

    /// `process.close_stdin`: the child sees EOF once the queued bytes are
    /// written (on a PTY: the terminal's EOF character, Ctrl+D). Idempotent;
    /// after the process's exit event, `-32602` "unknown proc"
    /// ([`Error::is_process_gone`]).
    pub fn close_stdin(&self) -> Result<CloseStdinResult> {
        let result = self.call("process.close_stdin", json!({"proc": self.proc}))?;
        serde_json::from_value(result)
            .map_err(|e| Error::Protocol(format!("process.close_stdin: {e}")))
    }

    fn send_signal(&self, signal: &str, tree: bool) -> Result<bool> {
        if !self.running() {
            return Ok(false);
        }
        let mut params = json!({"proc": self.proc, "signal": signal_value(signal)});
        if tree {
            params["tree"] = Value::Bool(true);
        }
        match self.call("process.signal", params) {
            Ok(_) => Ok(true),
            Err(e) if e.is_process_gone() => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// `process.signal` to its process group (a shell's children get it too).
    /// `signal` is a name (`"SIGINT"`) or a number (`"2"`). Returns `false`,
    /// not an error, when the process had already exited (a Ctrl+C that lands
    /// as the command ends).
    pub fn signal(&self, signal: &str) -> Result<bool> {
        self.send_signal(signal, false)
    }

    /// `process.signal` with `tree: true`: to the process and every
    /// descendant, whatever group or session it moved to.
    pub fn signal_tree(&self, signal: &str) -> Result<bool> {
        self.send_signal(signal, true)
    }

    /// SIGTERM to its process group; `false` if it had already exited.
    pub fn terminate(&self) -> Result<bool> {
        self.signal("SIGTERM")
    }

    /// SIGKILL to its process group; `false` if it had already exited.
    pub fn kill(&self) -> Result<bool> {
        self.signal("SIGKILL")
    }

    /// `process.resize` of its terminal (spawned with a `pty`): columns
    /// first, as node-pty and xterm.js have it; the program gets SIGWINCH.
    /// Returns the size now in force. `-32602` for a process without a PTY.
    pub fn resize(&self, size: PtySize) -> Result<PtySize> {
        let params = json!({"proc": self.proc, "cols": size.cols, "rows": size.rows});
        let result = self.call("process.resize", params)?;
        serde_json::from_value(result).map_err(|e| Error::Protocol(format!("process.resize: {e}")))
    }

    /// `process.cancel`: ends the process and everything below it with a
    /// cancel ladder (`ladder`, else the spawn's `cancel`, else SIGINT, 2 s,
    /// SIGTERM, 3 s, SIGKILL), and returns **once nothing of the process tree
    /// is left**, which can take the ladder's waits: it has no timeout (run
    /// it on another thread to keep a UI responsive). Cancelling a process
    /// already being cancelled joins it. After the process's exit event,
    /// `-32602` "unknown proc" ([`Error::is_process_gone`] tells it apart),
    /// as in the Node and Python clients.
    pub fn cancel(&self, ladder: Option<&[LadderStep]>) -> Result<CancelResult> {
        let mut params = json!({"proc": self.proc});
        if let Some(ladder) = ladder {
            params["ladder"] = LadderStep::ladder_json(ladder);
        }
        let result = self.shared.call("process.cancel", params, None)?;
        serde_json::from_value(result).map_err(|e| Error::Protocol(format!("process.cancel: {e}")))
    }
}

/// A process started by [`Gateway::spawn_process`](crate::Gateway::spawn_process).
///
/// It receives the process's events in order (output chunks, then exactly
/// one exit) through [`next_event`](Self::next_event), [`events`](Self::events),
/// [`chunks`](Self::chunks), [`lines`](Self::lines), [`wait`](Self::wait) or
/// [`read_to_end`](Self::read_to_end); nothing is lost between the spawn and
/// your first read. It derefs to [`ProcessControl`] for `write`, `signal`,
/// `resize`, `cancel`, ...; [`control`](Self::control) gives a clone for
/// another thread. If the gateway exits first, reading ends with
/// [`Error::Exited`]. Output you do not read is buffered in the handle;
/// dropping the handle stops that.
pub struct Process {
    control: ProcessControl,
    rx: Receiver<ProcMsg>,
    queue: VecDeque<ProcessEvent>,
    exit: Option<ProcessExit>,
    /// The gateway exited before this process's exit event.
    gone: Option<Option<GatewayExit>>,
    /// The last item (the exit, or the gateway's exit) was delivered.
    finished: bool,
}

impl std::fmt::Debug for Process {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Process")
            .field("control", &self.control)
            .field("exit", &self.exit)
            .finish()
    }
}

impl std::ops::Deref for Process {
    type Target = ProcessControl;
    fn deref(&self) -> &ProcessControl {
        &self.control
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.control.shared.forget_process(self.control.proc);
    }
}

impl Process {
    pub(crate) fn new(
        shared: Arc<Shared>,
        (proc, pid): (u64, u32),
        argv: Vec<String>,
        (pty, encoding): (bool, Encoding),
        rx: Receiver<ProcMsg>,
        exited: Arc<AtomicBool>,
    ) -> Process {
        Process {
            control: ProcessControl {
                shared,
                proc,
                pid,
                pty,
                argv: argv.into(),
                encoding,
                exited,
            },
            rx,
            queue: VecDeque::new(),
            exit: None,
            gone: None,
            finished: false,
        }
    }

    /// A handle for writing, signalling, resizing and cancelling from another thread.
    pub fn control(&self) -> ProcessControl {
        self.control.clone()
    }

    /// Its exit, if it has been received (by `wait`, or by reading all events).
    pub fn exit_status(&self) -> Option<&ProcessExit> {
        self.exit.as_ref()
    }

    /// Moves one message from the channel into the handle; `false` on timeout.
    fn pull(&mut self, deadline: Option<Instant>) -> bool {
        let msg = match deadline {
            None => self.rx.recv().ok(),
            Some(deadline) => {
                let left = deadline.saturating_duration_since(Instant::now());
                match self.rx.recv_timeout(left) {
                    Ok(msg) => Some(msg),
                    Err(RecvTimeoutError::Timeout) => return false,
                    Err(RecvTimeoutError::Disconnected) => None,
                }
            }
        };
        match msg {
            Some(ProcMsg::Output(output)) => self.queue.push_back(ProcessEvent::Output(output)),
            Some(ProcMsg::Exit(exit)) => {
                self.exit = Some(exit.clone());
                self.queue.push_back(ProcessEvent::Exit(exit));
            }
            Some(ProcMsg::GatewayExited(exit)) => self.gone = Some(Some(exit)),
            None => self.gone = Some(self.control.shared.exit()),
        }
        true
    }

    fn gone_error(gone: &Option<GatewayExit>) -> Error {
        match gone {
            Some(exit) => Error::Exited(Box::new(exit.clone())),
            None => Error::Closed,
        }
    }

    fn next_until(&mut self, deadline: Option<Instant>) -> Option<Result<ProcessEvent>> {
        loop {
            if let Some(event) = self.queue.pop_front() {
                if matches!(event, ProcessEvent::Exit(_)) {
                    self.finished = true;
                }
                return Some(Ok(event));
            }
            if self.finished {
                return None;
            }
            if let Some(gone) = &self.gone {
                self.finished = true;
                return Some(Err(Self::gone_error(gone)));
            }
            if !self.pull(deadline) {
                let after = deadline.map_or(Duration::ZERO, |d| {
                    d.saturating_duration_since(Instant::now())
                });
                return Some(Err(Error::Timeout {
                    method: "process event".into(),
                    after,
                }));
            }
        }
    }

    /// The next event, blocking: an output chunk, or the exit (then `None`
    /// from the next call on). `Some(Err(Error::Exited))` if the gateway
    /// exited first.
    pub fn next_event(&mut self) -> Option<Result<ProcessEvent>> {
        self.next_until(None)
    }

    /// [`next_event`](Self::next_event), waiting at most `timeout`:
    /// `Some(Err(Error::Timeout))` if nothing came.
    pub fn next_event_timeout(&mut self, timeout: Duration) -> Option<Result<ProcessEvent>> {
        self.next_until(Some(Instant::now() + timeout)).map(|r| {
            r.map_err(|e| match e {
                Error::Timeout { method, .. } => Error::Timeout {
                    method,
                    after: timeout,
                },
                e => e,
            })
        })
    }

    /// Iterates over the events: output chunks in order, then the exit.
    pub fn events(&mut self) -> Events<'_> {
        Events { process: self }
    }

    /// Iterates over the output chunks (the exit is kept: [`wait`](Self::wait)
    /// returns it at once afterwards).
    pub fn chunks(&mut self) -> Chunks<'_> {
        Chunks { process: self }
    }

    /// Iterates over lines, per stream: chunks are joined and split on `\n`
    /// (one `\r` before it removed; any other `\r` stays in the line); a
    /// last line without `\n` comes at the end. A truncated marker adds no
    /// line; at a `"tail"` gap the line in progress is yielded as it is and
    /// the next line carries `skipped`. Lines are decoded as UTF-8 (lossy).
    pub fn lines(&mut self) -> Lines<'_> {
        self.lines_with(LinesOptions::default())
    }

    /// [`lines`](Self::lines) of one stream only, and/or with carriage-return
    /// rewrites delivered as they come ([`LinesOptions`]).
    pub fn lines_with(&mut self, options: LinesOptions) -> Lines<'_> {
        Lines {
            process: self,
            options,
            splitters: BTreeMap::new(),
            ready: VecDeque::new(),
            error: None,
            ended: false,
        }
    }

    /// Iterates over the output as text as it comes, partial lines included
    /// (a `Password: ` prompt comes at once). With `encoding: base64` the
    /// bytes are decoded here, a character split between chunks carried over.
    pub fn text(&mut self) -> Text<'_> {
        Text {
            process: self,
            decoders: BTreeMap::new(),
            pending: VecDeque::new(),
        }
    }

    /// Waits for the exit. Output not read yet stays in the handle, so the
    /// iterators still yield it afterwards.
    pub fn wait(&mut self) -> Result<ProcessExit> {
        loop {
            if let Some(exit) = &self.exit {
                return Ok(exit.clone());
            }
            if let Some(gone) = &self.gone {
                return Err(Self::gone_error(gone));
            }
            self.pull(None);
        }
    }

    /// [`wait`](Self::wait), at most `timeout`: `Ok(None)` if it is still running.
    pub fn wait_timeout(&mut self, timeout: Duration) -> Result<Option<ProcessExit>> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(exit) = &self.exit {
                return Ok(Some(exit.clone()));
            }
            if let Some(gone) = &self.gone {
                return Err(Self::gone_error(gone));
            }
            if !self.pull(Some(deadline)) {
                return Ok(None);
            }
        }
    }

    /// Reads everything it writes until it exits (bytes per stream, base64
    /// decoded), with its exit.
    pub fn read_to_end(&mut self) -> Result<Captured> {
        let mut captured = Captured::default();
        while let Some(event) = self.next_event() {
            match event? {
                ProcessEvent::Output(output) => {
                    let target = match output.stream {
                        Stream::Stdout | Stream::Other(_) => &mut captured.stdout,
                        Stream::Stderr => &mut captured.stderr,
                        Stream::Pty => &mut captured.pty,
                    };
                    target.extend_from_slice(output.data.as_bytes());
                }
                ProcessEvent::Exit(exit) => captured.exit = exit,
            }
        }
        Ok(captured)
    }
}

/// See [`Process::events`].
#[derive(Debug)]
pub struct Events<'a> {
    process: &'a mut Process,
}

impl Iterator for Events<'_> {
    type Item = Result<ProcessEvent>;
    fn next(&mut self) -> Option<Self::Item> {
        self.process.next_event()
    }
}

/// See [`Process::chunks`].
#[derive(Debug)]
pub struct Chunks<'a> {
    process: &'a mut Process,
}

impl Iterator for Chunks<'_> {
    type Item = Result<Output>;
    fn next(&mut self) -> Option<Self::Item> {
        loop {
            match self.process.next_event()? {
                Ok(ProcessEvent::Output(output)) => return Some(Ok(output)),
                Ok(ProcessEvent::Exit(_)) => {}
                Err(e) => return Some(Err(e)),
            }
        }
    }
}

/// See [`Process::lines`].
#[derive(Debug)]
pub struct Lines<'a> {
    process: &'a mut Process,
    options: LinesOptions,
    /// Per stream: its splitter, and `skipped` for its next line.
    splitters: BTreeMap<Stream, (LineSplitter, Option<u64>)>,
    ready: VecDeque<OutputLine>,
    error: Option<Error>,
    ended: bool,
}

impl Lines<'_> {
    fn emit(
        ready: &mut VecDeque<OutputLine>,
        stream: &Stream,
        pieces: Vec<Piece>,
        skipped: &mut Option<u64>,
    ) {
        for (bytes, rewrite) in pieces {
            ready.push_back(OutputLine {
                stream: stream.clone(),
                line: String::from_utf8_lossy(&bytes).into_owned(),
                skipped: skipped.take(),
                rewrite,
            });
        }
    }

    fn feed(&mut self, output: Output) {
        if self
            .options
            .stream
            .as_ref()
            .is_some_and(|s| *s != output.stream)
        {
            return;
        }
        let rewrites = self.options.rewrites;
        let (splitter, skipped) = self
            .splitters
            .entry(output.stream.clone())
            .or_insert_with(|| (LineSplitter::new(rewrites), None));
        let mut pieces = Vec::new();
        if let Some(gap) = output.skipped {
            splitter.cut(&mut pieces);
            Self::emit(
                &mut self.ready,
                &output.stream,
                std::mem::take(&mut pieces),
                skipped,
            );
            *skipped = Some(skipped.unwrap_or(0) + gap);
        }
        splitter.push(output.data.as_bytes(), &mut pieces);
        Self::emit(&mut self.ready, &output.stream, pieces, skipped);
    }

    fn flush(&mut self) {
        for (stream, (mut splitter, mut skipped)) in std::mem::take(&mut self.splitters) {
            let mut pieces = Vec::new();
            splitter.end(&mut pieces);
            Self::emit(&mut self.ready, &stream, pieces, &mut skipped);
        }
    }
}

impl Iterator for Lines<'_> {
    type Item = Result<OutputLine>;
    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(line) = self.ready.pop_front() {
                return Some(Ok(line));
            }
            if self.ended {
                return self.error.take().map(Err);
            }
            match self.process.next_event() {
                Some(Ok(ProcessEvent::Output(output))) => self.feed(output),
                Some(Ok(ProcessEvent::Exit(_))) | None => {
                    self.flush();
                    self.ended = true;
                }
                Some(Err(e)) => {
                    self.flush();
                    self.ended = true;
                    self.error = Some(e);
                }
            }
        }
    }
}

/// See [`Process::text`].
#[derive(Debug)]
pub struct Text<'a> {
    process: &'a mut Process,
    /// Per stream, for base64 handles.
    decoders: BTreeMap<Stream, Utf8Decoder>,
    pending: VecDeque<Result<OutputText>>,
}

impl Iterator for Text<'_> {
    type Item = Result<OutputText>;
    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(item) = self.pending.pop_front() {
                return Some(item);
            }
            match self.process.next_event() {
                Some(Ok(ProcessEvent::Output(output))) => {
                    let text = match output.data {
                        OutputData::Text(text) => text,
                        OutputData::Bytes(bytes) => self
                            .decoders
                            .entry(output.stream.clone())
                            .or_default()
                            .push(&bytes),
                    };
                    if !text.is_empty() || output.skipped.is_some() {
                        let item = OutputText {
                            stream: output.stream,
                            text,
                            skipped: output.skipped,
                        };
                        return Some(Ok(item));
                    }
                }
                end => {
                    // The end: what an incomplete character left, then the end itself.
                    for (stream, mut decoder) in std::mem::take(&mut self.decoders) {
                        let text = decoder.finish();
                        if !text.is_empty() {
                            self.pending.push_back(Ok(OutputText {
                                stream,
                                text,
                                skipped: None,
                            }));
                        }
                    }
                    match end {
                        Some(Err(e)) => self.pending.push_back(Err(e)),
                        _ => {
                            if self.pending.is_empty() {
                                return None;
                            }
                        }
                    }
                }
            }
        }
    }
}
