//! The loop's side of a session: who the client is (stdio, a socket, or
//! nobody), what a new client is owed before the queue (the attach answer,
//! the replay), detaching and attaching, and the session's turn (what the
//! client's session methods asked, the linger). The socket, the journal and
//! the handshake are `shell::session`'s.

use std::io;
use std::time::Instant;

use mio::{Interest, Token};

use super::{EventLoop, CLIENT};
use crate::engine::lifecycle::{Cause, Phase};
use crate::engine::session::SessionRequest;
use crate::shell::session::{Client, Knock};
use crate::shell::stderr;
use crate::shell::stdio::{self, End, Kind};
use crate::shell::trace::Dir;

impl EventLoop {
    /// Writes what a newly attached client is owed before the queue: the
    /// attach answer (and a `gateway.ready`), then the journal's replay.
    /// True when it is all written and the queue may go on.
    pub(super) fn write_catch_up(&mut self, now: Instant) -> bool {
        let Some(server) = &mut self.session else {
            return true;
        };
        while self.stdout.ready && (!server.preamble.is_empty() || server.journal.is_replaying()) {
            let written = if server.preamble.is_empty() {
                let (a, b) = server.journal.pending_replay();
                stdio::writev(self.stdout.fd, &[io::IoSlice::new(a), io::IoSlice::new(b)])
            } else {
                stdio::writev(self.stdout.fd, &[io::IoSlice::new(&server.preamble)])
            };
            match written {
                Ok(n) => {
                    if let Some(trace) = &mut self.trace {
                        if server.preamble.is_empty() {
                            let (a, b) = server.journal.pending_replay();
                            let split = n.min(a.len());
                            trace.bytes(Dir::Out, &a[..split]);
                            trace.bytes(Dir::Out, &b[..n - split]);
                        }
                    }
                    if server.preamble.is_empty() {
                        server.journal.replayed(n);
                    } else {
                        server.preamble.drain(..n);
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.stdout.ready = self.stdout.kind == Kind::AlwaysReady;
                    return false;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    self.stdout_failed(e, now);
                    return false;
                }
            }
        }
        server.preamble.is_empty() && !server.journal.is_replaying()
    }

    /// A session's turn: what the client's session methods asked, a
    /// detach that waited for its answer to be written, the linger, and
    /// the state `gateway.session` reports.
    pub(super) fn serve_session(&mut self, now: Instant) {
        let Some(server) = &mut self.session else {
            return;
        };
        for request in self.engine.take_session_requests() {
            match request {
                SessionRequest::Ack(frames) => server.journal.ack(frames),
                // Asked by a client that is gone since (its input ended
                // right after): there is nobody left to detach.
                SessionRequest::Detach if matches!(server.client, Client::Gone) => {}
                SessionRequest::Detach => {
                    let queued = self.engine.outbound().queued_frame_ends();
                    server.detach_at = Some(server.journal.frames_total() + queued);
                }
            }
        }
        let answered = server.detach_at.is_some_and(|at| {
            server.journal.frames_total() >= at
                && server.preamble.is_empty()
                && !server.journal.is_replaying()
        });
        let processes = self.children.alive();
        let lingered = server
            .linger_deadline(processes, now)
            .is_some_and(|deadline| now >= deadline)
            .then(|| server.linger_reason());
        self.engine.set_session_state(server.state(processes));
        if answered {
            self.detach("it asked to (gateway.detach)", now);
        }
        if let Some(reason) = lingered {
            if matches!(self.engine.phase(), Phase::Running) {
                self.engine
                    .begin_shutdown(Cause::SessionIdle(reason), &mut self.children, now);
            }
        }
        let detached = self
            .session
            .as_ref()
            .is_some_and(|s| matches!(s.client, Client::Gone));
        if detached && matches!(self.engine.phase(), Phase::Draining(_)) {
            // Ending with nobody attached: no one will read what is queued,
            // so the drain does not wait for it (counted as dropped).
            self.engine.outbound().close();
        }
    }

    /// Detaches the session's client, whoever it is: the session goes on.
    pub(super) fn detach(&mut self, why: &str, now: Instant) {
        let Some(server) = &mut self.session else {
            return;
        };
        let registry = self.poll.registry();
        // A detach asked for (gateway.detach) belongs to the client that
        // asked: whatever ends it, it never carries over to the next one.
        server.detach_at = None;
        match std::mem::replace(&mut server.client, Client::Gone) {
            Client::Gone => return,
            Client::Stdio => {
                self.stdin.finish(registry);
                self.stdout.finish(registry);
                for fd in [libc::STDIN_FILENO, libc::STDOUT_FILENO] {
                    // The client's pipe is let go; the fd stays valid.
                    if let Err(e) = crate::shell::sys::socket::point_at_dev_null(fd) {
                        log::warn!("cannot point fd {fd} at /dev/null: {e}");
                    }
                }
            }
            Client::Socket(mut stream) => {
                let _ = registry.deregister(&mut stream);
            }
        }
        self.stdin.done = true;
        self.stdout.done = true;
        server.journal.stop_replay();
        server.preamble.clear();
        server.detach_at = None;
        self.engine.detach();
        stderr::line(&format!(
            "[gateway-session] {}: client detached ({why}); {} frames written",
            server.info.name,
            server.journal.frames_total()
        ));
        let _ = now;
    }

    /// Detaches the stdio client, if it is the one attached (SIGHUP, the
    /// parent's exit): a relayed client is not touched by what happens to
    /// the terminal that started the session.
    pub(super) fn detach_stdio(&mut self, why: &str, now: Instant) {
        match self.session.as_ref().map(|s| &s.client) {
            Some(Client::Stdio) => self.detach(why, now),
            _ => log::info!("{why}: the stdio client is not attached; nothing to detach"),
        }
    }

    /// A connection that has not said what it wants yet is readable.
    pub(super) fn on_pending(&mut self, token: Token, now: Instant) {
        let processes = self.children.alive();
        let Some(server) = &mut self.session else {
            return;
        };
        if let Some(knock) = server.on_pending(token, self.poll.registry(), processes) {
            self.attach(knock, now);
        }
    }

    /// Attaches a connection that asked to, or refuses it.
    pub(super) fn attach(&mut self, knock: Knock, now: Instant) {
        let Some(server) = &mut self.session else {
            return;
        };
        let (result, at) = match server.admit(&knock.request) {
            Ok(admitted) => admitted,
            Err(error) => {
                stderr::line(&format!(
                    "[gateway-session] {}: refused an attach: {}",
                    server.info.name, error.message
                ));
                server.refuse(knock, error);
                return;
            }
        };
        if !matches!(server.client, Client::Gone) {
            self.detach("another client took over", now);
        }
        let Some(server) = &mut self.session else {
            return;
        };
        let Knock {
            mut stream,
            request,
            rest,
        } = knock;
        server.journal.replay_from(at);
        let from = result["frames_from"].as_u64().unwrap_or(0);
        server.greet(&request, result);
        if let Err(e) = self.poll.registry().register(
            &mut stream,
            CLIENT,
            Interest::READABLE | Interest::WRITABLE,
        ) {
            log::warn!("cannot watch the attached client: {e}");
            server.journal.stop_replay();
            server.preamble.clear();
            return;
        }
        let fd = std::os::fd::AsRawFd::as_raw_fd(&stream);
        let end = |fd| End {
            fd,
            kind: Kind::Pollable,
            ready: true,
            done: false,
        };
        self.stdin = end(fd);
        self.stdout = end(fd);
        server.client = Client::Socket(stream);
        stderr::line(&format!(
            "[gateway-session] {}: client attached (frames from {from})",
            server.info.name
        ));
        self.engine.attach(now);
        if !rest.is_empty() {
            if let Some(trace) = &mut self.trace {
                trace.bytes(Dir::In, &rest);
            }
            self.engine.on_input(&rest, &mut self.children, now);
        }
    }

    /// The session ends: its socket and lock file go.
    pub(super) fn remove_session_files(&self) {
        if let Some(server) = &self.session {
            server.remove_files();
        }
    }
}
