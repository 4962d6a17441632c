//! The protocol engine: framer, classifier, dispatch, outbound queue and
//! lifecycle, with no file descriptor and no wall clock.
//!
//! The shell feeds it bytes, child events, signals and the time; it answers
//! with bytes to write (through [`Engine::outbound`]), requests to the
//! [`Host`], and its next deadline. Unit tests, transcripts and fuzz targets
//! drive it in memory with [`NoHost`].
//!
//! This file holds the engine's state, input pacing and ticks; `lend` lends
//! contexts to services; `dispatch` classifies and routes each message,
//! `batch` and `join` walk batches, `builtins` answers `gateway.*`, and
//! `wire` is the protocol's text.

#[macro_use]
mod lend;
mod builtins;
pub use self::builtins::VERSION;
mod batch;
mod dispatch;
pub mod framer;
pub mod host;
mod join;
pub mod lifecycle;
pub mod outbound;
pub mod service;
pub mod session;
pub mod wire;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use serde_json::Value;

use self::batch::Batch;
use self::dispatch::Answer;
use self::framer::{Decoded, Framer};
pub use self::host::{ChildEvent, ChildKey, Host};
#[cfg(any(test, feature = "testing"))]
pub use self::host::NoHost;
use self::join::Joins;
use self::lifecycle::{Cause, Exit, Lifecycle, Phase};
use self::outbound::{Limits, Outbound};
pub use self::service::Fallback;
use self::service::{Call, Owing, ReadyHold, Service};
use self::session::{Session, SessionInfo, SessionRequest, SessionState};
use self::wire::{Id, RpcError};

/// Frames (or batch members) dispatched per turn before the engine yields to
/// the loop: enough to amortise a loop turn, few enough that output starts
/// flowing and signals are seen within a fraction of a millisecond of a burst.
pub const FRAMES_PER_TURN: usize = 256;

/// Largest read of a child pipe: the Linux pipe buffer's size.
pub const CHILD_READ_MAX: usize = 64 * 1024;
/// Smallest read of a child pipe while the queue nears its high-water mark,
/// so a nearly full queue is not filled a few bytes at a time.
pub const CHILD_READ_MIN: usize = 4 * 1024;
/// The most a byte of child output can grow on the wire: a control byte
/// becomes `\u00XX` in a JSON string.
pub const WORST_ESCAPE: usize = 6;

/// The engine's settings (the shell's own settings live in `Config`).
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Longest inbound line, in bytes, without its `\n`.
    pub max_frame_bytes: usize,
    /// Outbound queue bounds.
    pub outbound: Limits,
    /// How long a drain may last.
    pub shutdown_grace: Duration,
    /// Every setting in force, by flag name, as `gateway.info` reports it.
    pub settings: serde_json::Map<String, Value>,
    /// The session this engine serves (`--session`), if any.
    pub session: Option<SessionInfo>,
}

/// Counters for `gateway.stats` that the queue does not keep.
#[derive(Debug, Default, Clone)]
struct Stats {
    frames_in: u64,
    bytes_in: u64,
    parse_errors: u64,
    invalid_requests: u64,
    oversize_frames: u64,
    truncated_frames: u64,
    write_stalls: u64,
    signals: Vec<(&'static str, u64)>,
    responses_unmatched: u64,
    frames_forwarded: u64,
}

/// Where a message being dispatched came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Place {
    /// A frame of its own: a service may answer it later ([`Context::defer`]).
    Frame,
    /// A member of a batch answered as it is walked.
    Member,
    /// A member of a batch in its forward pass (see `join.rs`).
    Forwarded,
}

/// Where a method goes; a method with no route goes to the fallback, if
/// there is one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Route {
    /// The built-in at this index (`gateway.*`, and `client.capabilities`
    /// without a fallback).
    Builtin(usize),
    /// The service at this index.
    Service(usize),
}

/// Where stdin is. `backlog`: complete frames may wait in the framer (the
/// turn's budget ran out, or the queue was above its high-water mark).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Input {
    /// Bytes may still arrive.
    Reading { backlog: bool },
    /// Stdin reached EOF: the frames before it are answered, then the
    /// drain starts.
    EofPending { backlog: bool },
    /// Nothing more is read or dispatched (EOF answered, or shutting down).
    Closed,
}

impl Input {
    fn is_reading(self) -> bool {
        matches!(self, Input::Reading { .. })
    }

    fn backlog(self) -> bool {
        match self {
            Input::Reading { backlog } | Input::EofPending { backlog } => backlog,
            Input::Closed => false,
        }
    }

    fn set_backlog(&mut self, value: bool) {
        if let Input::Reading { backlog } | Input::EofPending { backlog } = self {
            *backlog = value;
        }
    }
}

/// What the engine wants from the loop this turn: what to read, whether to
/// write, and when to wake it at the latest ([`Engine::interest`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Interest {
    /// Read stdin (if it is readable).
    pub read_input: bool,
    /// Dispatch frames already read ([`Engine::pump_input`]): work to do now.
    pub pump_backlog: bool,
    /// Read children's pipes (if they are readable).
    pub read_children: bool,
    /// Bytes wait for stdout.
    pub write: bool,
    /// The nearest instant at which [`Engine::tick`] must run.
    pub deadline: Option<Instant>,
}

/// The services an engine runs: those behind method names, and at most one
/// fallback for everything else (a backend).
pub struct Services {
    /// Services behind their method names.
    pub services: Vec<Box<dyn Service>>,
    /// The fallback.
    pub fallback: Option<Box<dyn Fallback>>,
}

impl From<Vec<Box<dyn Service>>> for Services {
    fn from(services: Vec<Box<dyn Service>>) -> Services {
        Services {
            services,
            fallback: None,
        }
    }
}

impl std::fmt::Debug for Services {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Services")
            .field("services", &self.services.len())
            .field("fallback", &self.fallback.is_some())
            .finish()
    }
}

/// The in-memory gateway.
pub struct Engine {
    config: EngineConfig,
    framer: Framer,
    out: Outbound,
    lifecycle: Lifecycle,
    services: Vec<Box<dyn Service>>,
    /// Method name to route, hashed with FxHash (names are the gateway's
    /// own and a client's: no hash-flooding concern worth SipHash's cost).
    routes: rustc_hash::FxHashMap<&'static str, Route>,
    /// The service that takes unclaimed methods and stray responses. In
    /// the indexes that name a service (child owners, client requests) it is
    /// `services.len()`.
    fallback: Option<Box<dyn Fallback>>,
    /// Every line goes to the fallback unread (transparent forwarding).
    forward_lines: bool,
    /// Batch answers waiting for forwarded members.
    joins: Joins,
    /// The gateway's `gateway.ready` payload while a service holds it.
    held_ready: Option<Value>,
    /// A shutdown a service asked for, started after its call returns.
    requested: Option<Cause>,
    child_owner: HashMap<ChildKey, usize>,
    pending: HashMap<Id, usize>,
    next_request: u64,
    /// Where stdin is.
    input: Input,
    /// A batch being answered member by member.
    batch: Option<Batch>,
    started: Instant,
    /// What the client sent with `client.capabilities`; `gateway.info` echoes it.
    client_capabilities: Option<Value>,
    /// Requests services took to answer later and have not answered yet.
    owed: Owing,
    /// The session served, if any.
    session: Option<Session>,
    stats: Stats,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("phase", self.lifecycle.phase())
            .field("queued", &self.out.queued_bytes())
            .finish_non_exhaustive()
    }
}

/// Two services registered the same method.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DuplicateMethod(pub &'static str);

impl std::fmt::Display for DuplicateMethod {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "method {:?} is registered twice", self.0)
    }
}

impl std::error::Error for DuplicateMethod {}

impl Engine {
    /// An engine serving the built-ins plus `services`. `gateway.ready` is
    /// queued, unless a service holds it (`ReadyHold`). Call
    /// [`Engine::start`] before feeding it input.
    pub fn new(
        config: EngineConfig,
        services: impl Into<Services>,
        now: Instant,
    ) -> Result<Engine, DuplicateMethod> {
        let Services { services, fallback } = services.into();
        let mut routes = rustc_hash::FxHashMap::default();
        for (name, index) in builtins::routes(fallback.is_some(), config.session.is_some()) {
            routes.insert(name, Route::Builtin(index));
        }
        for (index, service) in services.iter().enumerate() {
            for name in service.methods() {
                if routes.insert(*name, Route::Service(index)).is_some() {
                    return Err(DuplicateMethod(name));
                }
            }
        }
        let forward_lines = fallback.as_ref().is_some_and(|f| f.forwards_every_line());
        let hold = fallback
            .as_ref()
            .map_or(ReadyHold::Send, |f| f.ready_hold());
        // A kept answer must fit in the queue whenever a batch may step
        // (below the high-water mark): the room above it is the budget.
        let join_budget = config.outbound.hard_bytes - config.outbound.high_water;
        let mut engine = Engine {
            framer: if forward_lines {
                Framer::verbatim(config.max_frame_bytes)
            } else {
                Framer::new(config.max_frame_bytes)
            },
            out: Outbound::new(config.outbound.clone()),
            lifecycle: Lifecycle::new(config.shutdown_grace),
            config,
            services,
            routes,
            fallback,
            forward_lines,
            joins: Joins::new(join_budget),
            held_ready: None,
            requested: None,
            child_owner: HashMap::new(),
            pending: HashMap::new(),
            next_request: 0,
            input: Input::Reading { backlog: false },
            batch: None,
            started: now,
            client_capabilities: None,
            owed: Owing::default(),
            session: None,
            stats: Stats::default(),
        };
        engine.session = engine.config.session.clone().map(|info| Session {
            info,
            state: SessionState::default(),
            requests: Vec::new(),
        });
        let ready = engine.ready_payload();
        match hold {
            ReadyHold::Send => {
                // The first frame of an empty queue: the limits guarantee its room.
                outbound::paced(
                    engine
                        .out
                        .push_frame(wire::event_frame("gateway.ready", &ready), now),
                );
            }
            ReadyHold::Hold => {
                engine.out.close_gate();
                engine.held_ready = Some(ready);
            }
            ReadyHold::Suppress => {}
        }
        Ok(engine)
    }

    /// Starts every service (a backend is spawned here). An error is the
    /// gateway's exit: nothing was served.
    pub fn start(&mut self, host: &mut dyn Host, now: Instant) -> Result<(), Exit> {
        for index in 0..self.service_count() {
            lend!(self, index, Call::None, host, now, |service, cx| service
                .start(cx))
            .map_err(|e| Exit {
                code: e.code,
                reason: e.reason,
            })?;
        }
        self.settle(host, now);
        Ok(())
    }

    /// The outbound queue, for the shell to write from.
    pub fn outbound(&mut self) -> &mut Outbound {
        &mut self.out
    }

    /// True when no output is waiting.
    pub fn outbound_is_empty(&self) -> bool {
        self.out.is_empty()
    }

    /// Bytes queued for stdout.
    pub fn outbound_queued_bytes(&self) -> usize {
        self.out.queued_bytes()
    }

    /// True when output can be written now (frames held behind a batch
    /// answer still being built wait for it).
    pub fn has_writable_output(&self) -> bool {
        self.out.has_writable()
    }

    /// The current lifecycle phase.
    pub fn phase(&self) -> &Phase {
        self.lifecycle.phase()
    }

    /// The exit, once the engine is done.
    pub fn exit(&self) -> Option<&Exit> {
        self.lifecycle.exit()
    }

    /// True while the engine wants more stdin bytes: serving, no backlog,
    /// and the outbound queue below its high-water mark. Otherwise unread
    /// input stays in the pipe, so the framer's backlog stays bounded.
    pub fn wants_input(&self) -> bool {
        self.input.is_reading()
            && matches!(self.lifecycle.phase(), Phase::Running)
            && !self.has_input_backlog()
            && self.can_pump_input()
    }

    /// True while input may be dispatched: the queue has room
    /// ([`Engine::can_dispatch`]) and the fallback can take more (a
    /// transparent bridge whose backend's stdin queue is full cannot).
    pub fn can_pump_input(&self) -> bool {
        self.can_dispatch() && self.fallback.as_ref().map_or(true, |f| f.accepts_input())
    }

    /// True while producers may add to the outbound queue: it is below its
    /// high-water mark (or has fallen back to the low-water mark since). Once
    /// stdout is lost everything is read and discarded, so nothing blocks.
    pub fn can_dispatch(&self) -> bool {
        self.out.is_closed() || !self.out.is_paused()
    }

    /// How many bytes the shell may read from one child pipe now: zero while
    /// paced, otherwise as much as fits below the high-water mark once
    /// escaped (`WORST_ESCAPE`), between `CHILD_READ_MIN` and
    /// `CHILD_READ_MAX`. The queue therefore passes the high-water mark by
    /// at most one read's worth, whatever the number of children.
    pub fn child_read_size(&self) -> usize {
        if !self.can_dispatch() {
            return 0;
        }
        if self.out.is_closed() {
            return CHILD_READ_MAX;
        }
        (self.out.room_below_high_water() / WORST_ESCAPE).clamp(CHILD_READ_MIN, CHILD_READ_MAX)
    }

    /// Bytes arrived on stdin: frame them and dispatch up to
    /// `FRAMES_PER_TURN` complete frames. Frames beyond the budget wait in
    /// the framer ([`Engine::has_input_backlog`]) for [`Engine::pump_input`],
    /// so the shell can write output and see signals between bursts. Push
    /// more bytes only when [`Engine::wants_input`] says so: that keeps the
    /// framer within its bound.
    pub fn on_input(&mut self, bytes: &[u8], host: &mut dyn Host, now: Instant) {
        if !self.input.is_reading() {
            return;
        }
        self.stats.bytes_in += bytes.len() as u64;
        self.framer.push(bytes);
        self.dispatch_input(FRAMES_PER_TURN, host, now);
    }

    /// True when frames or batch members may wait for [`Engine::pump_input`].
    pub fn has_input_backlog(&self) -> bool {
        self.input.backlog() || self.batch.is_some()
    }

    /// Dispatches up to `FRAMES_PER_TURN` more frames or batch members of
    /// the backlog, unless the queue is above its high-water mark.
    pub fn pump_input(&mut self, host: &mut dyn Host, now: Instant) {
        self.dispatch_input(FRAMES_PER_TURN, host, now);
    }

    fn dispatch_input(&mut self, budget: usize, host: &mut dyn Host, now: Instant) {
        self.input.set_backlog(false);
        let mut left = budget;
        loop {
            if !self.can_pump_input() || left == 0 {
                // Paced: the rest waits for the reader (or the next turn).
                self.input.set_backlog(true);
                break;
            }
            if self.batch.is_none() && self.joins.has_ready() {
                self.begin_answer_pass();
            }
            if self.batch.is_some() {
                left -= 1;
                self.step_batch(host, now);
                continue;
            }
            if !matches!(self.lifecycle.phase(), Phase::Running) {
                break;
            }
            let Some(decoded) = self.framer.next_span() else {
                break;
            };
            left -= 1;
            match decoded {
                Decoded::Frame(span) => {
                    self.stats.frames_in += 1;
                    log::trace!("frame in: {} bytes", span.len());
                    // The frame is read where it lies: the framer's buffer
                    // is lent out for the dispatch (which never touches the
                    // framer).
                    let buf = self.framer.lend();
                    self.dispatch_frame(&buf[span], host, now);
                    self.framer.give_back(buf);
                }
                Decoded::TooLarge { limit } if self.forward_lines => {
                    // Transparent: no answer of the gateway's own on stdout.
                    self.stats.oversize_frames += 1;
                    log::warn!("an inbound line over {limit} bytes (--max-frame-bytes) was dropped, not forwarded");
                }
                Decoded::TooLarge { limit } => {
                    self.stats.oversize_frames += 1;
                    log::debug!("frame over {limit} bytes skipped");
                    let err = RpcError::invalid_request("frame too large").with_data(
                        serde_json::json!({"reason": "frame too large", "limit": limit}),
                    );
                    self.answer(&Id::Null, &Answer::error(err), now);
                }
            }
        }
        self.with_fallback(host, now, |f, cx| f.end_input_turn(cx));
        if matches!(self.input, Input::EofPending { .. }) && !self.has_input_backlog() {
            self.finish_input(host, now);
        }
        self.settle(host, now);
    }

    /// Stdin reached EOF: every complete frame received before it is still
    /// answered (paced like any other), then the drain starts, its deadline
    /// counted from that moment. A truncated tail is dropped and logged.
    pub fn on_input_eof(&mut self, host: &mut dyn Host, now: Instant) {
        if !self.input.is_reading() {
            return;
        }
        self.input = Input::EofPending { backlog: true };
        self.dispatch_input(FRAMES_PER_TURN, host, now);
    }

    /// The backlog before EOF is answered: drop a truncated tail, then drain.
    fn finish_input(&mut self, host: &mut dyn Host, now: Instant) {
        self.input = Input::Closed;
        if let Some(bytes) = self.framer.finish() {
            self.stats.truncated_frames += 1;
            log::warn!(
                "stdin ended inside a frame: {bytes} bytes without a newline were not dispatched"
            );
        }
        self.begin_shutdown(Cause::StdinEof, host, now);
    }

    /// Counts a signal the shell received (for `gateway.stats`).
    pub fn note_signal(&mut self, name: &'static str) {
        match self.stats.signals.iter_mut().find(|(n, _)| *n == name) {
            Some((_, count)) => *count += 1,
            None => self.stats.signals.push((name, 1)),
        }
    }

    /// A stdout write returned `WouldBlock` with bytes still queued.
    pub fn note_write_stall(&mut self) {
        self.stats.write_stalls += 1;
    }

    /// The session's client went (a session only): a line it had half sent
    /// is dropped, and the queue holds its frames for the next client
    /// without counting the time against a slow reader.
    pub fn detach(&mut self) {
        self.framer.discard_partial();
        self.out.detach_reader();
        // What the client that went asked of the shell went with it.
        if let Some(session) = &mut self.session {
            session.requests.clear();
        }
    }

    /// A client attached to the session: output flows to it again.
    pub fn attach(&mut self, now: Instant) {
        self.out.attach_reader(now);
    }

    /// The session's journal and client as the shell sees them now, for
    /// `gateway.session`.
    pub fn set_session_state(&mut self, state: SessionState) {
        if let Some(session) = &mut self.session {
            session.state = state;
        }
    }

    /// What the client's session methods asked of the shell since the last call.
    pub fn take_session_requests(&mut self) -> Vec<SessionRequest> {
        self.session
            .as_mut()
            .map(|s| std::mem::take(&mut s.requests))
            .unwrap_or_default()
    }

    /// Starts (or escalates) the shutdown for `cause`.
    pub fn begin_shutdown(&mut self, cause: Cause, host: &mut dyn Host, now: Instant) {
        if cause.output_lost() {
            self.out.close();
            // Nobody will read the rest of its answer.
            self.batch = None;
        }
        if self.lifecycle.begin(cause, now) {
            self.input = Input::Closed;
            let drain = self
                .lifecycle
                .drain()
                .cloned()
                .expect("just started draining");
            for index in 0..self.service_count() {
                lend!(self, index, Call::None, host, now, |service, cx| {
                    service.on_drain(cx, &drain)
                });
            }
        }
        self.settle(host, now);
    }

    /// Something happened to a child: route it to the service that owns it.
    pub fn on_child(
        &mut self,
        key: ChildKey,
        event: ChildEvent,
        host: &mut dyn Host,
        now: Instant,
    ) {
        if let Some(&index) = self.child_owner.get(&key) {
            lend!(self, index, Call::None, host, now, |service, cx| {
                service.on_child(cx, key, event)
            });
        }
        self.settle(host, now);
    }

    /// Time passed: check the queue's limits, tick services, end the drain
    /// when it is done or its deadline has come.
    pub fn tick(&mut self, host: &mut dyn Host, now: Instant) {
        for index in 0..self.service_count() {
            lend!(self, index, Call::None, host, now, |service, cx| service
                .tick(cx));
        }
        self.answer_ready_batches(host, now);
        self.settle(host, now);
    }

    /// What the engine wants from the loop now, asked once per turn: the
    /// loop sleeps only when none of it is work to do at once.
    pub fn interest(&self) -> Interest {
        Interest {
            read_input: self.wants_input(),
            pump_backlog: self.has_input_backlog() && self.can_pump_input(),
            read_children: self.can_dispatch(),
            write: self.has_writable_output(),
            deadline: self.next_deadline(),
        }
    }

    /// The nearest instant at which [`Engine::tick`] must run.
    pub fn next_deadline(&self) -> Option<Instant> {
        let drain = self.lifecycle.drain().map(|d| d.deadline);
        [drain, self.out.next_deadline()]
            .into_iter()
            .chain(self.all_services().map(|s| s.next_deadline()))
            .flatten()
            .min()
    }

    /// The gateway is exiting now: services stop everything they run.
    pub fn on_exit(&mut self, host: &mut dyn Host) {
        for service in &mut self.services {
            service.on_exit(host);
        }
        if let Some(fallback) = &mut self.fallback {
            fallback.on_exit(host);
        }
    }

    /// After every input: apply queue verdicts and drain progress.
    fn settle(&mut self, host: &mut dyn Host, now: Instant) {
        if let Some(cause) = self.requested.take() {
            self.begin_shutdown(cause, host, now);
            return;
        }
        if let Some(verdict) = self.out.check(now) {
            self.begin_shutdown(Cause::SlowReader(verdict.to_string()), host, now);
            return;
        }
        let Some(drain) = self.lifecycle.drain() else {
            return;
        };
        let services_idle = self.all_services().all(|s| s.is_idle());
        let answered = self.batch.is_none() && self.joins.is_empty() && self.owed.is_empty();
        if services_idle && self.out.is_empty() && answered {
            self.lifecycle.finish();
        } else if now >= drain.deadline {
            let mut left: Vec<String> = self
                .all_services()
                .filter_map(|s| s.busy_summary())
                .collect();
            if self.batch.is_some() || !self.joins.is_empty() {
                left.push("a batch still being answered".to_owned());
            }
            if !self.owed.is_empty() {
                left.push(format!("{} answer(s) owed", self.owed.count()));
            }
            if !self.out.is_empty() {
                left.push(format!(
                    "{} bytes queued for stdout",
                    self.out.queued_bytes()
                ));
            }
            self.lifecycle.force(&left.join(", "));
        }
    }
}

#[cfg(test)]
mod tests;
