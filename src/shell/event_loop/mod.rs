//! The loop: one `Poll`, readiness in, engine calls out, and a timeout that
//! never passes the nearest deadline.
//!
//! Every fd is non-blocking and edge-triggered, so each source keeps a
//! "ready" flag that is cleared only by `WouldBlock`. Work per tick is
//! budgeted (stdin reads, child reads); a source with budget left over keeps
//! its flag and the next `poll` does not sleep.
//!
//! In a session (`--session`) the client's input and output are stdio, a
//! socket, or nothing (detached); `session.rs` holds that side of the loop.

use std::io;
use std::time::{Duration, Instant};

use mio::{Events, Interest, Poll, Token};

use super::child::Children;
use super::parent::ParentWatch;
use super::session::place::Place;
use super::session::Server;
use super::signals::{self, Action, Signals};
use super::stdio::{self, End, Kind};
use super::trace::{Dir, Trace};
use super::{crashlog, stderr};
use crate::config::{Config, SigintPolicy, PARENT_CHECK_INTERVAL};
use crate::engine::lifecycle::{Cause, Exit};
use crate::engine::session::SessionInfo;
use crate::engine::{ChildEvent, ChildKey, Engine, CHILD_READ_MAX};

const STDIN: Token = Token(0);
const STDOUT: Token = Token(1);
const SIGNALS: Token = Token(2);
/// A session's listening socket.
const LISTENER: Token = Token(3);
/// A session's client on the socket (read and write).
const CLIENT: Token = Token(4);
/// Session connections that have not said what they want yet.
const FIRST_PENDING: usize = 5;
const _: () = assert!(FIRST_PENDING + super::session::MAX_PENDING <= FIRST_CHILD_TOKEN);
/// Child pipes take the tokens from here up.
const FIRST_CHILD_TOKEN: usize = 16;

/// Bytes per stdin read (and the largest child read, [`CHILD_READ_MAX`]).
const READ_CHUNK: usize = 64 * 1024;
const _: () = assert!(READ_CHUNK >= CHILD_READ_MAX);
/// Stdin turns per tick (a 64 KiB read or 256 frames of backlog each), then
/// signals and children get a turn.
const STDIN_TURNS_PER_TICK: usize = 16;

/// The running gateway: engine plus every fd it needs.
pub(super) struct EventLoop {
    poll: Poll,
    engine: Engine,
    children: Children,
    signals: Signals,
    stdin: End,
    stdout: End,
    sigint: SigintPolicy,
    parent: Option<ParentWatch>,
    /// The process that started the gateway, kept after `parent` is let go:
    /// a session tells its SIGTERM from anyone else's.
    started_by: Option<ParentWatch>,
    next_parent_check: Instant,
    child_events: Vec<(ChildKey, ChildEvent)>,
    buf: Vec<u8>,
    /// `--trace`: every frame in and out.
    trace: Option<Trace>,
    /// The session this gateway runs, if any (`--session`).
    session: Option<Server>,
}

/// A session to run: its files, its lock (held), and its bounds.
pub(super) struct SessionStart {
    pub(super) place: Place,
    pub(super) lock: std::fs::File,
    pub(super) journal_bytes: usize,
    pub(super) linger: Duration,
}

impl EventLoop {
    pub(super) fn new(
        config: &Config,
        trace: Option<Trace>,
        session: Option<SessionStart>,
        engine_for: impl FnOnce(Instant, Option<SessionInfo>) -> io::Result<Engine>,
    ) -> io::Result<EventLoop> {
        let poll = Poll::new()?;
        let session = match session {
            Some(start) => Some(Server::start(
                start.place,
                start.lock,
                poll.registry(),
                LISTENER,
                FIRST_PENDING,
                start.journal_bytes,
                start.linger,
            )?),
            None => None,
        };
        let mut signals = signals::install()?;
        poll.registry()
            .register(&mut signals, SIGNALS, Interest::READABLE)?;
        let stdin = End::open(libc::STDIN_FILENO, &poll, STDIN, Interest::READABLE);
        let stdout = End::open(libc::STDOUT_FILENO, &poll, STDOUT, Interest::WRITABLE);
        let mut children = Children::new(poll.registry().try_clone()?, FIRST_CHILD_TOKEN);
        children.report_trace(trace.is_some());
        let now = Instant::now();
        Ok(EventLoop {
            engine: engine_for(now, session.as_ref().map(|s| s.info.clone()))?,
            poll,
            children,
            signals,
            stdin,
            stdout,
            sigint: config.sigint,
            parent: ParentWatch::new(),
            started_by: ParentWatch::new(),
            next_parent_check: now + PARENT_CHECK_INTERVAL,
            child_events: Vec::new(),
            buf: vec![0; READ_CHUNK],
            trace,
            session,
        })
    }

    /// Runs until the engine is done; returns how it ended.
    pub(super) fn run(mut self) -> Exit {
        let mut events = Events::with_capacity(256);
        if let Err(exit) = self.engine.start(&mut self.children, Instant::now()) {
            self.engine.on_exit(&mut self.children);
            self.children.kill_all();
            self.remove_session_files();
            return exit;
        }
        if self.stdout.done {
            if self.session.is_some() {
                self.detach("stdout is closed", Instant::now());
            } else {
                self.engine
                    .begin_shutdown(Cause::PeerGone, &mut self.children, Instant::now());
            }
        }
        loop {
            self.read_stdin();
            self.read_children();
            self.write_stdout(Instant::now());
            self.check_parent(Instant::now());
            self.engine.tick(&mut self.children, Instant::now());
            // Output queued by the tick (a drain finishing, an exit event) goes out now.
            self.write_stdout(Instant::now());
            self.serve_session(Instant::now());
            if let Some(trace) = &mut self.trace {
                trace.flush(Instant::now());
            }
            if let Some(exit) = self.engine.exit() {
                let exit = exit.clone();
                if let Some(trace) = &mut self.trace {
                    // One last try, without blocking: what does not fit is dropped.
                    trace.flush(Instant::now());
                }
                self.engine.on_exit(&mut self.children);
                self.children.kill_all();
                self.remove_session_files();
                return exit;
            }
            let timeout = self.timeout(Instant::now());
            if let Err(e) = self.poll.poll(&mut events, timeout) {
                if e.kind() != io::ErrorKind::Interrupted {
                    // Without a working poll nothing can be served: end now,
                    // children killed by the caller's exit path.
                    return Exit {
                        code: crate::exit_code::INTERNAL,
                        reason: format!("poll failed: {e}"),
                    };
                }
            }
            for event in events.iter() {
                match event.token() {
                    STDIN => self.stdin.ready = true,
                    STDOUT => {
                        self.stdout.ready = true;
                        if event.is_write_closed() || event.is_error() {
                            // The reader closed its end: writing would only
                            // produce EPIPE, so do not wait for a write to see it.
                            self.stdout_closed_by_peer(Instant::now());
                        }
                    }
                    SIGNALS => self.handle_signals(),
                    LISTENER => {
                        if let Some(server) = &mut self.session {
                            server.accept(self.poll.registry());
                        }
                    }
                    CLIENT => {
                        self.stdin.ready = true;
                        self.stdout.ready = true;
                        if event.is_error() {
                            self.stdout_closed_by_peer(Instant::now());
                        }
                    }
                    token
                        if self
                            .session
                            .as_ref()
                            .is_some_and(|s| s.is_pending_token(token)) =>
                    {
                        self.on_pending(token, Instant::now());
                    }
                    _ => {
                        self.children.on_readiness(event, &mut self.child_events);
                    }
                }
            }
            self.deliver_child_events(Instant::now());
        }
    }

    /// How long `poll` may sleep: zero while work is left over, else until
    /// the nearest deadline. Work paced by the outbound queue is not "left
    /// over": it waits for stdout to become writable.
    fn timeout(&self, now: Instant) -> Option<Duration> {
        let interest = self.engine.interest();
        let stdin_pending =
            (self.stdin.ready && !self.stdin.done && interest.read_input) || interest.pump_backlog;
        let children_pending = self.children.has_ready_output() && interest.read_children;
        let stdout_pending =
            self.stdout.kind == Kind::AlwaysReady && !self.stdout.done && interest.write;
        if stdin_pending || children_pending || stdout_pending {
            return Some(Duration::ZERO);
        }
        let parent = self.parent.as_ref().map(|_| self.next_parent_check);
        let linger = self.session.as_ref().and_then(Server::linger_at);
        [interest.deadline, parent, linger]
            .into_iter()
            .flatten()
            .min()
            .map(|deadline| deadline.saturating_duration_since(now))
    }

    /// Serves stdin for one tick: dispatches the backlog or reads a chunk,
    /// then writes what that produced, so output flows during a burst. Each
    /// turn reads the clock afresh: a deadline started by a turn (EOF, a
    /// shutdown request) counts from when it really started.
    fn read_stdin(&mut self) {
        for _ in 0..STDIN_TURNS_PER_TICK {
            let now = Instant::now();
            if self.engine.has_input_backlog() {
                if !self.engine.can_pump_input() {
                    // Paced: the backlog waits until the reader drains the
                    // queue (or the backend reads its stdin).
                    return;
                }
                self.engine.pump_input(&mut self.children, now);
            } else if self.stdin.ready && !self.stdin.done && self.engine.wants_input() {
                match stdio::read(self.stdin.fd, &mut self.buf) {
                    Ok(0) => {
                        self.stdin_finished(None, now);
                        return;
                    }
                    Ok(n) => {
                        let chunk = &self.buf[..n];
                        if let Some(trace) = &mut self.trace {
                            trace.bytes(Dir::In, chunk);
                        }
                        self.engine.on_input(chunk, &mut self.children, now);
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        self.stdin.ready = false;
                        return;
                    }
                    Err(e) => {
                        self.stdin_finished(Some(e), now);
                        return;
                    }
                }
            } else {
                return;
            }
            self.write_stdout(Instant::now());
        }
    }

    fn stdin_finished(&mut self, error: Option<io::Error>, now: Instant) {
        if self.session.is_some() {
            let why = match error {
                Some(e) => format!("reading its input failed: {e}"),
                None => "its input ended".to_owned(),
            };
            self.detach(&why, now);
            return;
        }
        self.stdin.finish(self.poll.registry());
        if let Some(e) = error {
            log::warn!("reading stdin failed ({e}); treating it as EOF");
        }
        self.engine.on_input_eof(&mut self.children, now);
    }

    /// Reads ready child pipes, one bounded read at a time, each delivered
    /// to the engine before the next so the queue's room is known before
    /// every read ([`Engine::child_read_size`]).
    fn read_children(&mut self) {
        self.deliver_child_events(Instant::now());
        let mut rounds = self.children.read_rounds();
        while let Some(pipe) = rounds.next_pipe(&self.children) {
            let size = self.engine.child_read_size();
            if size == 0 {
                break;
            }
            self.children
                .read_pipe(pipe, &mut self.buf[..size], &mut self.child_events);
            self.deliver_child_events(Instant::now());
        }
    }

    fn deliver_child_events(&mut self, now: Instant) {
        for (key, event) in std::mem::take(&mut self.child_events) {
            self.engine.on_child(key, event, &mut self.children, now);
        }
    }

    fn write_stdout(&mut self, now: Instant) {
        if self.stdout.done {
            return;
        }
        if !self.write_catch_up(now) {
            return;
        }
        let fd = self.stdout.fd;
        let trace = &mut self.trace;
        let mut journal = self.session.as_mut().map(|s| &mut s.journal);
        while self.stdout.ready && self.engine.has_writable_output() {
            let written = self.engine.outbound().write_with(now, |slices| {
                let written = stdio::writev(fd, slices);
                if let Ok(n) = &written {
                    let mut left = *n;
                    for slice in slices {
                        let take = left.min(slice.len());
                        if let Some(trace) = trace.as_mut() {
                            trace.bytes(Dir::Out, &slice[..take]);
                        }
                        if let Some(journal) = journal.as_mut() {
                            journal.append(&slice[..take]);
                        }
                        left -= take;
                        if left == 0 {
                            break;
                        }
                    }
                }
                written
            });
            if let Some(journal) = journal.as_mut() {
                journal.trim(self.engine.outbound_queued_bytes());
            }
            match written {
                Ok(n) => log::trace!("wrote {n} bytes to stdout"),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.stdout.ready = self.stdout.kind == Kind::AlwaysReady;
                    self.engine.note_write_stall();
                    return;
                }
                Err(e) => {
                    self.stdout_failed(e, now);
                    return;
                }
            }
        }
    }

    fn stdout_closed_by_peer(&mut self, now: Instant) {
        if !self.stdout.done {
            self.stdout_failed(io::Error::from_raw_os_error(libc::EPIPE), now);
        }
    }

    /// Classifies a write error: a disconnect (exit 3) or a host problem
    /// (exit 74); in a session, the client is detached either way.
    fn stdout_failed(&mut self, error: io::Error, now: Instant) {
        if self.session.is_some() {
            self.detach(&format!("writing to it failed: {error}"), now);
            return;
        }
        self.stdout.finish(self.poll.registry());
        let disconnect = matches!(
            error.raw_os_error(),
            Some(libc::EPIPE | libc::ECONNRESET | libc::EBADF | libc::ESHUTDOWN)
        );
        let cause = if disconnect {
            Cause::PeerGone
        } else {
            Cause::OutputError(format!("stdout write failed: {error}"))
        };
        self.engine.begin_shutdown(cause, &mut self.children, now);
    }

    fn handle_signals(&mut self) {
        let pending: Vec<(i32, Option<i32>)> = self
            .signals
            .pending()
            .map(|origin| (origin.signal, origin.process.map(|p| p.pid)))
            .collect();
        for (signal, sender) in pending {
            let name = signals::name(signal);
            self.engine.note_signal(name);
            let shutdown = match signals::action(signal) {
                Action::Reap => {
                    self.children.reap(&mut self.child_events);
                    false
                }
                Action::Sigint => self.sigint == SigintPolicy::Shutdown,
                Action::Shutdown => true,
                Action::Ignore => false,
            };
            if shutdown && signal == libc::SIGHUP && self.session.is_some() {
                // The terminal or the parent of the stdio client went: that
                // client is gone, the session is not.
                self.detach_stdio("SIGHUP", Instant::now());
                continue;
            }
            let from_parent =
                sender.is_some_and(|pid| self.started_by.as_ref().is_some_and(|p| p.sent_by(pid)));
            if shutdown && signal == libc::SIGTERM && self.session.is_some() && from_parent {
                // The UI that started the session ending its child, as a UI
                // written without sessions does when it quits: it lets go of
                // the session, which goes on (gateway.end ends it).
                self.detach_stdio("its parent sent SIGTERM", Instant::now());
                continue;
            }
            if !shutdown {
                if signal != libc::SIGCHLD {
                    log::info!("{name} ignored (see the signal table in docs/protocol.md)");
                }
                continue;
            }
            stderr::line(&format!("[gateway-signal] {name}"));
            crashlog::entry("signal", &format!("signal={name}"), &[]);
            self.engine
                .begin_shutdown(Cause::Signal(name), &mut self.children, Instant::now());
        }
    }

    fn check_parent(&mut self, now: Instant) {
        let Some(parent) = &self.parent else { return };
        if now < self.next_parent_check {
            return;
        }
        self.next_parent_check = now + PARENT_CHECK_INTERVAL;
        if parent.parent_exited() {
            self.parent = None;
            if self.session.is_some() {
                self.detach_stdio("its parent process exited", now);
                return;
            }
            self.engine
                .begin_shutdown(Cause::ParentExited, &mut self.children, now);
        }
    }
}

mod session;
