//! The protocol engine: framer, classifier, dispatch, outbound queue and
//! lifecycle, with no file descriptor and no wall clock.
//!
//! The shell feeds it bytes, child events, signals and the time; it answers
//! with bytes to write (through [`Engine::outbound`]), requests to the
//! [`Host`], and its next deadline. Unit tests, transcripts and fuzz targets
//! drive it in memory with [`NoHost`].

mod builtins;
pub use self::builtins::VERSION;
pub mod framer;
pub mod host;
pub mod lifecycle;
pub mod message;
pub mod outbound;
pub mod service;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use serde_json::Value;

use self::framer::{Decoded, Framer};
pub use self::host::{ChildEvent, ChildKey, Host, NoHost};
use self::lifecycle::{Cause, Exit, Lifecycle, Phase};
use self::message::{
    batch_frame, classify, response_frame, Id, Incoming, Message, Reject, RpcError,
};
use self::outbound::{Limits, Outbound};
use self::service::{Context, Reply, Service};

/// Frames dispatched per turn before the engine yields to the loop: enough
/// to amortise a loop turn, few enough that output starts flowing and
/// signals are seen within a fraction of a millisecond of a burst.
pub const FRAMES_PER_TURN: usize = 256;

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
}

/// The in-memory gateway.
pub struct Engine {
    config: EngineConfig,
    framer: Framer,
    out: Outbound,
    lifecycle: Lifecycle,
    services: Vec<Box<dyn Service>>,
    routes: HashMap<&'static str, usize>,
    child_owner: HashMap<ChildKey, usize>,
    pending: HashMap<Id, usize>,
    next_request: u64,
    input_open: bool,
    input_backlog: bool,
    started: Instant,
    /// What the client sent with `client.capabilities`; `gateway.info` echoes it.
    client_capabilities: Option<Value>,
    pending_shutdown: bool,
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
    /// An engine serving the built-ins plus `services`; `gateway.ready` is queued.
    pub fn new(
        config: EngineConfig,
        services: Vec<Box<dyn Service>>,
        now: Instant,
    ) -> Result<Engine, DuplicateMethod> {
        let mut routes = HashMap::new();
        for name in builtins::METHODS {
            routes.insert(*name, usize::MAX);
        }
        for (index, service) in services.iter().enumerate() {
            for name in service.methods() {
                if routes.insert(*name, index).is_some() {
                    return Err(DuplicateMethod(name));
                }
            }
        }
        let mut engine = Engine {
            framer: Framer::new(config.max_frame_bytes),
            out: Outbound::new(config.outbound.clone()),
            lifecycle: Lifecycle::new(config.shutdown_grace),
            config,
            services,
            routes,
            child_owner: HashMap::new(),
            pending: HashMap::new(),
            next_request: 0,
            input_open: true,
            input_backlog: false,
            started: now,
            client_capabilities: None,
            pending_shutdown: false,
            stats: Stats::default(),
        };
        let ready = engine.ready_payload();
        engine
            .out
            .push_frame(message::event_frame("gateway.ready", &ready), now);
        Ok(engine)
    }

    /// The outbound queue, for the shell to write from.
    pub fn outbound(&mut self) -> &mut Outbound {
        &mut self.out
    }

    /// True when no output is waiting.
    pub fn outbound_is_empty(&self) -> bool {
        self.out.is_empty()
    }

    /// The current lifecycle phase.
    pub fn phase(&self) -> &Phase {
        self.lifecycle.phase()
    }

    /// The exit, once the engine is done.
    pub fn exit(&self) -> Option<&Exit> {
        self.lifecycle.exit()
    }

    /// True while the engine wants stdin bytes.
    pub fn wants_input(&self) -> bool {
        self.input_open && matches!(self.lifecycle.phase(), Phase::Running)
    }

    /// True while the engine wants child output: false while the outbound
    /// queue is above its high-water mark (backpressure). Once stdout is lost
    /// output is read and discarded so children never block on a full pipe.
    pub fn wants_child_output(&self) -> bool {
        self.out.is_closed() || !self.out.is_paused()
    }

    /// Bytes arrived on stdin: frame them and dispatch up to
    /// [`FRAMES_PER_TURN`] complete frames. Frames beyond the budget wait in
    /// the framer ([`Engine::has_input_backlog`]) for [`Engine::pump_input`],
    /// so the shell can write output and see signals between bursts. Push
    /// more bytes only once the backlog is gone: that keeps the framer within
    /// its bound.
    pub fn on_input(&mut self, bytes: &[u8], host: &mut dyn Host, now: Instant) {
        if !self.wants_input() {
            return;
        }
        self.stats.bytes_in += bytes.len() as u64;
        self.framer.push(bytes);
        self.dispatch_input(FRAMES_PER_TURN, host, now);
    }

    /// True when complete frames wait in the framer for [`Engine::pump_input`].
    pub fn has_input_backlog(&self) -> bool {
        self.input_backlog
    }

    /// Dispatches up to [`FRAMES_PER_TURN`] more frames of the backlog.
    pub fn pump_input(&mut self, host: &mut dyn Host, now: Instant) {
        self.dispatch_input(FRAMES_PER_TURN, host, now);
    }

    fn dispatch_input(&mut self, budget: usize, host: &mut dyn Host, now: Instant) {
        self.input_backlog = false;
        let mut left = budget;
        while self.wants_input() {
            if left == 0 {
                self.input_backlog = true;
                break;
            }
            let Some(decoded) = self.framer.next_frame() else {
                break;
            };
            left -= 1;
            match decoded {
                Decoded::Frame(frame) => {
                    self.stats.frames_in += 1;
                    log::trace!("frame in: {} bytes", frame.len());
                    self.dispatch_frame(&frame, host, now);
                    // Frames after a shutdown request are not served.
                    self.run_pending_shutdown(host, now);
                }
                Decoded::TooLarge { limit } => {
                    self.stats.oversize_frames += 1;
                    log::debug!("frame over {limit} bytes skipped");
                    let err = RpcError::invalid_request("frame too large").with_data(
                        serde_json::json!({"reason": "frame too large", "limit": limit}),
                    );
                    self.out
                        .push_frame(response_frame(&Id::Null, &Err(err)), now);
                }
            }
        }
        self.settle(host, now);
    }

    /// Stdin reached EOF: drop a truncated tail, then drain. Returns the size
    /// of the truncated fragment, if there was one, for the shell to log.
    pub fn on_input_eof(&mut self, host: &mut dyn Host, now: Instant) -> Option<usize> {
        if !self.input_open {
            return None;
        }
        // Everything received before EOF is served first.
        self.dispatch_input(usize::MAX, host, now);
        self.input_open = false;
        let truncated = self.framer.finish();
        if truncated.is_some() {
            self.stats.truncated_frames += 1;
        }
        self.begin_shutdown(Cause::StdinEof, host, now);
        truncated
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

    /// Starts (or escalates) the shutdown for `cause`.
    pub fn begin_shutdown(&mut self, cause: Cause, host: &mut dyn Host, now: Instant) {
        if cause.output_lost() {
            self.out.close();
        }
        if self.lifecycle.begin(cause, now) {
            self.input_open = false;
            let drain = self
                .lifecycle
                .drain()
                .cloned()
                .expect("just started draining");
            self.for_each_service(host, now, |service, cx| service.on_drain(cx, &drain));
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
            self.with_service(index, host, now, |service, cx| {
                service.on_child(cx, key, event)
            });
        }
        self.settle(host, now);
    }

    /// Time passed: check the queue's limits, tick services, end the drain
    /// when it is done or its deadline has come.
    pub fn tick(&mut self, host: &mut dyn Host, now: Instant) {
        self.for_each_service(host, now, |service, cx| service.tick(cx));
        self.settle(host, now);
    }

    /// The nearest instant at which [`Engine::tick`] must run.
    pub fn next_deadline(&self) -> Option<Instant> {
        let drain = self.lifecycle.drain().map(|d| d.deadline);
        [drain, self.out.next_deadline()]
            .into_iter()
            .chain(self.services.iter().map(|s| s.next_deadline()))
            .flatten()
            .min()
    }

    /// The gateway is exiting now: services stop everything they run.
    pub fn on_exit(&mut self, host: &mut dyn Host) {
        for service in &mut self.services {
            service.on_exit(host);
        }
    }

    /// After every input: apply queue verdicts and drain progress.
    fn settle(&mut self, host: &mut dyn Host, now: Instant) {
        if let Some(verdict) = self.out.check(now) {
            self.begin_shutdown(Cause::SlowReader(verdict.to_string()), host, now);
            return;
        }
        let Some(drain) = self.lifecycle.drain() else {
            return;
        };
        let services_idle = self.services.iter().all(|s| s.is_idle());
        if services_idle && self.out.is_empty() {
            self.lifecycle.finish();
        } else if now >= drain.deadline {
            let mut left: Vec<String> = self
                .services
                .iter()
                .filter_map(|s| s.busy_summary())
                .collect();
            if !self.out.is_empty() {
                left.push(format!(
                    "{} bytes queued for stdout",
                    self.out.queued_bytes()
                ));
            }
            self.lifecycle.force(&left.join(", "));
        }
    }

    fn dispatch_frame(&mut self, frame: &[u8], host: &mut dyn Host, now: Instant) {
        match classify(frame) {
            Incoming::Single(item) => {
                if let Some(response) = self.dispatch_one(item, host, now) {
                    self.out
                        .push_frame(response_frame(&response.0, &response.1), now);
                }
            }
            Incoming::Batch(items) => {
                let responses: Vec<(Id, Reply)> = items
                    .into_iter()
                    .filter_map(|item| self.dispatch_one(item, host, now))
                    .collect();
                if !responses.is_empty() {
                    self.out.push_frame(batch_frame(&responses), now);
                }
            }
        }
    }

    /// Dispatches one message; returns the response to send, if any.
    fn dispatch_one(
        &mut self,
        item: Result<Message, Reject>,
        host: &mut dyn Host,
        now: Instant,
    ) -> Option<(Id, Reply)> {
        match item {
            Err(reject) => {
                log::debug!("rejected message: {}", reject.error);
                if reject.error.code == message::ErrorCode::ParseError {
                    self.stats.parse_errors += 1;
                } else {
                    self.stats.invalid_requests += 1;
                }
                Some((reject.id, Err(reject.error)))
            }
            Ok(Message::Request { id, method, params }) => {
                let reply = self.call(&method, params, host, now);
                Some((id, reply))
            }
            Ok(Message::Notification { method, params }) => {
                let _ = self.call(&method, params, host, now);
                None
            }
            Ok(Message::Response { id, outcome }) => {
                match self.pending.remove(&id) {
                    Some(index) => self.with_service(index, host, now, |service, cx| {
                        service.on_client_response(cx, &id, outcome)
                    }),
                    None => {
                        self.stats.responses_unmatched += 1;
                        log::debug!("dropping a response to unknown request {id}");
                    }
                }
                None
            }
        }
    }

    fn call(
        &mut self,
        method: &str,
        params: Option<Value>,
        host: &mut dyn Host,
        now: Instant,
    ) -> Reply {
        match self.routes.get(method) {
            None => Err(RpcError::method_not_found(method)),
            Some(&usize::MAX) => self.builtin(method, params, host, now),
            Some(&index) => self.with_service(index, host, now, |service, cx| {
                service.call(cx, method, params)
            }),
        }
    }

    fn with_service<R>(
        &mut self,
        index: usize,
        host: &mut dyn Host,
        now: Instant,
        f: impl FnOnce(&mut dyn Service, &mut Context<'_>) -> R,
    ) -> R {
        let mut cx = Context {
            now,
            out: &mut self.out,
            host,
            drain: self.lifecycle.drain(),
            service: index,
            child_owner: &mut self.child_owner,
            pending: &mut self.pending,
            next_request: &mut self.next_request,
        };
        f(self.services[index].as_mut(), &mut cx)
    }

    fn for_each_service(
        &mut self,
        host: &mut dyn Host,
        now: Instant,
        mut f: impl FnMut(&mut dyn Service, &mut Context<'_>),
    ) {
        for index in 0..self.services.len() {
            self.with_service(index, host, now, &mut f);
        }
    }
}

#[cfg(test)]
mod tests;
