//! The service interface: how work plugs into the engine.
//!
//! A service registers method names, answers calls, and hears about its
//! children and about shutdown. It owns its state; it reaches the outside
//! only through the [`Context`] it is handed (the outbound queue, the clock
//! reading of this tick, and the [`Host`] for child processes).

use std::collections::HashMap;
use std::io;
use std::time::Instant;

use serde_json::{Map, Value};

use super::host::{ChildEvent, ChildKey, Host, SpawnSpec, Spawned};
use super::join::Joins;
use super::lifecycle::{Cause, Drain};
use super::outbound::{paced, Outbound, Refused};
use super::wire::{event_frame, request_frame, write_answer, Id, RpcError};

/// A method's answer: a result value or an error.
pub type Reply = Result<Value, RpcError>;

/// One message the engine hands to the fallback service, as the bytes it
/// came as (without its `\n`).
#[derive(Debug, Clone, Copy)]
pub struct Forward<'a> {
    /// The message's bytes, exactly as received (valid UTF-8 unless the
    /// fallback forwards every line unread: then anything but `\n`).
    pub raw: &'a [u8],
    /// What it is.
    pub kind: ForwardKind<'a>,
    /// True for a member of a batch: [`Fallback::end_batch`] follows the last one.
    pub in_batch: bool,
}

/// What a forwarded message is.
#[derive(Debug, Clone, Copy)]
pub enum ForwardKind<'a> {
    /// A request: its answer comes later, through [`FallbackContext::reply`] or
    /// [`FallbackContext::reply_line`], unless [`Forwarded::Answer`] is returned.
    Request(&'a Id),
    /// A notification.
    Notification,
    /// A response to a request the fallback's peer sent.
    Response(&'a Id),
    /// A whole line, not classified (transparent forwarding).
    Line,
}

/// What became of a forwarded message.
#[derive(Debug)]
pub enum Forwarded {
    /// Sent on; a request's answer comes later.
    Sent,
    /// Not sent: a request gets this error now (other kinds are dropped).
    Answer(RpcError),
}

/// How a service wants the gateway's `gateway.ready` sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadyHold {
    /// At once, first on stdout (the default).
    Send,
    /// Held, with every other frame behind it, until the service calls
    /// [`FallbackContext::release_ready`].
    Hold,
    /// Never: the gateway adds nothing of its own to the stream.
    Suppress,
}

/// A service could not start; the gateway exits with `code`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StartError {
    /// The exit code.
    pub code: i32,
    /// One line saying what failed.
    pub reason: String,
}

/// Declares a service's methods once, name and handler together: it
/// defines `METHOD_NAMES` (for [`Service::methods`]) and `dispatch` (for
/// [`Service::call`]), so a method cannot be listed without a handler or
/// handled without being listed. Each handler is
/// `fn(&mut self, &mut Context<'_>, Option<Value>) -> Reply`.
macro_rules! method_table {
    ($service:ty { $($name:literal => $handler:ident),+ $(,)? }) => {
        impl $service {
            /// Every method, in the order `gateway.ready` lists them.
            const METHOD_NAMES: &'static [&'static str] = &[$($name),+];

            /// Runs `method`; `-32601` for one not in the table.
            fn dispatch(
                &mut self,
                cx: &mut $crate::engine::service::Context<'_>,
                method: &str,
                params: Option<serde_json::Value>,
            ) -> $crate::engine::service::Reply {
                match method {
                    $($name => self.$handler(cx, params),)+
                    other => Err($crate::engine::wire::RpcError::method_not_found(other)),
                }
            }
        }
    };
}
pub(crate) use method_table;

/// What the engine reads of any service, the fallback included, without
/// lending it anything: its name and methods, its facts and counters, its
/// next deadline and whether it is idle, and its last moment.
pub trait Unit {
    /// A short name for logs and `gateway.info`.
    fn name(&self) -> &'static str;

    /// The methods this service answers. Names must be unique across services.
    fn methods(&self) -> &'static [&'static str];

    /// Limits this service enforces, merged into `gateway.ready` and `gateway.info`.
    fn limits(&self) -> Map<String, Value> {
        Map::new()
    }

    /// Counters merged into `gateway.stats`.
    fn stats(&self) -> Map<String, Value> {
        Map::new()
    }

    /// Facts merged into `gateway.info`.
    fn info(&self) -> Map<String, Value> {
        Map::new()
    }

    /// The next instant this service needs a tick, if any.
    fn next_deadline(&self) -> Option<Instant> {
        None
    }

    /// True when nothing is in flight: a drain may finish.
    fn is_idle(&self) -> bool {
        true
    }

    /// What is still in flight, for the exit reason when a drain is forced.
    fn busy_summary(&self) -> Option<String> {
        None
    }

    /// The gateway's last moment: stop everything now (kill children), no
    /// output will be written any more.
    fn on_exit(&mut self, _host: &mut dyn Host) {}
}

/// Which context a service's hooks are lent: [`Plain`] (a [`Context`]) for
/// every service, [`Bridged`] (a [`FallbackContext`], which adds the reply
/// machinery) for the fallback alone. The type decides it, so a service
/// cannot reach what only the fallback may use.
pub trait Lend {
    /// The context a hook is handed.
    type Cx<'a>;
}

/// The lending of an ordinary service: a [`Context`].
#[derive(Debug)]
pub enum Plain {}

impl Lend for Plain {
    type Cx<'a> = Context<'a>;
}

/// The lending of the fallback: a [`FallbackContext`].
#[derive(Debug)]
pub enum Bridged {}

impl Lend for Bridged {
    type Cx<'a> = FallbackContext<'a>;
}

/// A unit of work behind a set of methods: its hooks, each lent a context
/// of kind `L` for the length of the call.
pub trait Service<L: Lend = Plain>: Unit {
    /// Answers one call. For a notification the reply is discarded. A call
    /// that cannot be answered yet takes its request with
    /// [`Context::defer`]; what it returns then is ignored. A service with
    /// no methods of its own (the fallback, which is forwarded to instead)
    /// keeps the default: `-32601`.
    fn call(&mut self, _cx: &mut L::Cx<'_>, method: &str, _params: Option<Value>) -> Reply {
        Err(RpcError::method_not_found(method))
    }

    /// Starts the service (spawns what it runs), before any input is read.
    fn start(&mut self, _cx: &mut L::Cx<'_>) -> Result<(), StartError> {
        Ok(())
    }

    /// Something happened to a child this service spawned.
    fn on_child(&mut self, _cx: &mut L::Cx<'_>, _child: ChildKey, _event: ChildEvent) {}

    /// The client answered a request this service sent with [`Context::request_client`].
    fn on_client_response(
        &mut self,
        _cx: &mut L::Cx<'_>,
        _id: &Id,
        _outcome: Result<Value, Value>,
    ) {
    }

    /// The gateway started draining; called once. Stop starting work and wind
    /// down within `drain.deadline`.
    fn on_drain(&mut self, _cx: &mut L::Cx<'_>, _drain: &Drain) {}

    /// Called on every engine tick (after events and at this service's deadline).
    fn tick(&mut self, _cx: &mut L::Cx<'_>) {}
}

/// The service that takes every method no one else claims, and every
/// client response the gateway did not ask for: the backend bridge. At most
/// one per engine. Its hooks are lent a [`FallbackContext`]; besides them
/// it forwards messages as their bytes and decides how input and the ready
/// are paced.
pub trait Fallback: Service<Bridged> {
    /// True when every inbound line goes to [`Fallback::forward`] as a
    /// [`ForwardKind::Line`], unread (transparent forwarding).
    fn forwards_every_line(&self) -> bool {
        false
    }

    /// Sends one message on.
    fn forward(&mut self, cx: &mut FallbackContext<'_>, message: Forward<'_>) -> Forwarded;

    /// The last member of a batch was forwarded.
    fn end_batch(&mut self, _cx: &mut FallbackContext<'_>) {}

    /// A turn of input dispatch ended: a good moment to write what it
    /// queued, once for the whole turn rather than per message.
    fn end_input_turn(&mut self, _cx: &mut FallbackContext<'_>) {}

    /// False while it cannot take more input: stdin stays unread in its pipe
    /// (transparent forwarding past the backend's stdin bound).
    fn accepts_input(&self) -> bool {
        true
    }

    /// How `gateway.ready` goes out.
    fn ready_hold(&self) -> ReadyHold {
        ReadyHold::Send
    }
}

/// The call a [`Context`] was lent for.
#[derive(Debug, Clone, Copy)]
pub(super) enum Call<'a> {
    /// An event, a tick: no call.
    None,
    /// A request in a frame of its own, with this id.
    Frame(&'a Id),
    /// A request in a batch: answered as the batch is walked, so now.
    Member,
    /// A notification: nobody waits for an answer.
    Notification,
}

/// What [`Context::defer`] found.
#[derive(Debug)]
pub enum Deferral {
    /// The request is owed an answer: give it with [`Context::answer`].
    Owed(Owed),
    /// The call is a notification: no answer is owed, now or later.
    Notification,
    /// The call is a batch member (or no call at all): its answer goes into
    /// the batch's array as the batch is walked, so it must be given now.
    Now,
}

/// A request a service answers later. Not `Clone`, and consumed by
/// [`Context::answer`]: a request owed this way gets exactly one answer.
/// Dropping one unanswered is a bug (a debug assertion), except through
/// [`Owed::abandon`] when the gateway exits and writes nothing more.
#[derive(Debug)]
#[must_use = "an owed request must be answered with Context::answer"]
pub struct Owed {
    id: Option<Id>,
}

impl Owed {
    /// The request's id.
    pub fn id(&self) -> &Id {
        self.id
            .as_ref()
            .expect("an Owed holds its id until answered")
    }

    /// The gateway exits without writing anything more: nobody can be
    /// answered, and this one is let go.
    pub fn abandon(mut self) {
        self.id = None;
    }
}

impl Drop for Owed {
    fn drop(&mut self) {
        if let Some(id) = &self.id {
            log::error!("request {id} was owed an answer and dropped without one");
            debug_assert!(false, "request {id} dropped unanswered");
        }
    }
}

/// The engine's count of requests owed by services: a drain does not end
/// while one is owed.
#[derive(Debug, Default)]
pub(super) struct Owing {
    count: usize,
}

impl Owing {
    pub(super) fn is_empty(&self) -> bool {
        self.count == 0
    }

    pub(super) fn count(&self) -> usize {
        self.count
    }
}

/// What the engine lends the fallback, and no other service: the batch
/// answers its replies join, the held `gateway.ready`, and a way to ask for
/// shutdown.
#[derive(Debug)]
pub(super) struct Bridge<'a> {
    pub(super) joins: &'a mut Joins,
    pub(super) ready: &'a mut Option<Value>,
    pub(super) shutdown: &'a mut Option<Cause>,
}

/// What the engine lends a service for one call or event.
pub struct Context<'a> {
    pub(super) now: Instant,
    pub(super) out: &'a mut Outbound,
    pub(super) host: &'a mut dyn Host,
    pub(super) drain: Option<&'a Drain>,
    pub(super) service: usize,
    pub(super) child_owner: &'a mut HashMap<ChildKey, usize>,
    pub(super) pending: &'a mut HashMap<Id, usize>,
    pub(super) next_request: &'a mut u64,
    pub(super) call: Call<'a>,
    pub(super) deferred: bool,
    pub(super) owed: &'a mut Owing,
}

impl std::fmt::Debug for Context<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context")
            .field("now", &self.now)
            .field("service", &self.service)
            .finish_non_exhaustive()
    }
}

impl<'a> Context<'a> {
    /// The engine's clock reading for this tick.
    pub fn now(&self) -> Instant {
        self.now
    }

    /// The drain in progress, if the gateway is shutting down.
    pub fn drain(&self) -> Option<&Drain> {
        self.drain
    }

    /// Queues an event. It is never merged, dropped or reordered, except a
    /// type ending in `.delta` whose payload has a string `text` (or `data`)
    /// field: that is streaming-class and goes through [`Context::emit_stream`].
    pub fn emit(&mut self, event_type: &str, payload: Value) {
        if event_type.ends_with(".delta") {
            if let Value::Object(map) = payload {
                let field = ["text", "data"]
                    .into_iter()
                    .find(|f| map.get(*f).is_some_and(Value::is_string));
                match field {
                    Some(field) => self.emit_stream(event_type, map, field),
                    None => self.push(event_frame(event_type, &Value::Object(map))),
                }
                return;
            }
        }
        self.push(event_frame(event_type, &payload));
    }

    /// Queues a frame the gateway wrote. Producers are paced (dispatch and
    /// child reads stop at the high-water mark, which leaves headroom below
    /// the hard limit for one step): see [`paced`].
    fn push(&mut self, frame: Vec<u8>) {
        paced(self.out.push_frame(frame, self.now));
    }

    /// Queues a streaming event: `payload[field]` is a string that may be
    /// concatenated with an adjacent, otherwise equal event while the reader
    /// is slow.
    pub fn emit_stream(&mut self, event_type: &str, payload: Map<String, Value>, field: &str) {
        paced(self.out.push_stream(event_type, payload, field, self.now));
    }

    /// Bytes that may still be queued below the outbound hard limit.
    pub fn room(&self) -> usize {
        self.out.room()
    }

    /// True while producers should hold back (the outbound queue is above its
    /// high-water mark and has not yet fallen to the low-water mark).
    pub fn is_backpressured(&self) -> bool {
        self.out.is_paused()
    }

    /// Sends a request to the client; its response comes back through
    /// [`Service::on_client_response`] with the returned id.
    pub fn request_client(&mut self, method: &str, params: Value) -> Id {
        *self.next_request += 1;
        let id = Id::Str(format!("gw-{}", self.next_request));
        self.pending.insert(id.clone(), self.service);
        self.push(request_frame(&id, method, &params));
        id
    }

    /// Starts a child owned by this service; its events come back through
    /// [`Service::on_child`].
    pub fn spawn(&mut self, spec: &SpawnSpec) -> io::Result<Spawned> {
        let spawned = self.host.spawn(spec)?;
        self.child_owner.insert(spawned.key, self.service);
        Ok(spawned)
    }

    /// The host, for operations on children this service owns.
    pub fn host(&mut self) -> &mut dyn Host {
        self.host
    }

    /// Releases a child for good: the host frees it and no more events come.
    pub fn release(&mut self, key: ChildKey) {
        self.child_owner.remove(&key);
        self.host.release(key);
    }

    /// Takes the request of this call to answer later, with
    /// [`Context::answer`]: for a method whose answer waits on something
    /// (`process.cancel` waits for a process tree to end). Only a request in
    /// a frame of its own can wait; see [`Deferral`].
    pub fn defer(&mut self) -> Deferral {
        match self.call {
            Call::Frame(id) if !self.deferred => {
                self.deferred = true;
                self.owed.count += 1;
                Deferral::Owed(Owed {
                    id: Some(id.clone()),
                })
            }
            Call::Notification => Deferral::Notification,
            Call::Frame(_) | Call::Member | Call::None => Deferral::Now,
        }
    }

    /// Answers a request taken with [`Context::defer`], as a frame of its
    /// own (or a `-32001` error in its place if it would not fit).
    pub fn answer(&mut self, mut owed: Owed, reply: &Reply) {
        let Some(id) = owed.id.take() else { return };
        self.owed.count -= 1;
        let mut frame = Vec::with_capacity(64);
        write_answer(&mut frame, &id, reply, self.out.room().saturating_sub(1));
        frame.push(b'\n');
        self.push(frame);
    }
}

/// What the engine lends the fallback: a [`Context`] (it derefs to one)
/// and the reply machinery no other service is handed: answers to the
/// requests it forwarded (joined into their batch answers), frames its peer
/// wrote, the held `gateway.ready`, and a way to end the gateway.
#[derive(Debug)]
pub struct FallbackContext<'a> {
    pub(super) cx: Context<'a>,
    pub(super) bridge: Bridge<'a>,
}

impl<'a> std::ops::Deref for FallbackContext<'a> {
    type Target = Context<'a>;

    fn deref(&self) -> &Context<'a> {
        &self.cx
    }
}

impl<'a> std::ops::DerefMut for FallbackContext<'a> {
    fn deref_mut(&mut self) -> &mut Context<'a> {
        &mut self.cx
    }
}

impl FallbackContext<'_> {
    /// Answers a request that was forwarded earlier: into the batch answer
    /// it belongs to, or as a frame of its own.
    pub fn reply(&mut self, id: &Id, reply: &Reply) {
        let mut frame = Vec::with_capacity(64);
        write_answer(&mut frame, id, reply, self.cx.out.room().saturating_sub(1));
        if !self.bridge.joins.deliver(id, &frame) {
            frame.push(b'\n');
            self.push(frame);
        }
    }

    /// Passes on a response as the bytes it came as (`line`, without its
    /// `\n`): into the batch answer its id belongs to, or as a frame of its
    /// own (no copy). Refused as [`FallbackContext::push_line`] is.
    pub fn reply_line(&mut self, id: &Id, line: &[u8]) -> Result<(), Refused> {
        if self.bridge.joins.deliver(id, line) {
            return Ok(());
        }
        self.push_line(line)
    }

    /// Queues a frame someone else wrote, as its bytes (`line`, without its
    /// `\n`). Its size is the writer's: one larger than the room below the
    /// hard limit (a line near `--max-frame-bytes` under a small
    /// `--outbound-hard-limit`) is refused, and the caller answers for it.
    pub fn push_line(&mut self, line: &[u8]) -> Result<(), Refused> {
        let now = self.cx.now;
        self.push_foreign(line.len() + 1, |out| {
            out.push_frame_with(now, |buf| {
                buf.extend_from_slice(line);
                buf.push(b'\n');
            })
        })
    }

    /// Queues a frame someone else wrote (`len` bytes) with `push`, unless
    /// it is larger than the room: that is the writer's size, not a pacing
    /// bug, so it is refused here without the queue counting it as one. A
    /// closed queue drops it as it drops everything.
    fn push_foreign(
        &mut self,
        len: usize,
        push: impl FnOnce(&mut Outbound) -> Result<(), Refused>,
    ) -> Result<(), Refused> {
        if len > self.cx.out.room() && !self.cx.out.is_closed() {
            return Err(Refused::Full);
        }
        match push(self.cx.out) {
            Err(Refused::Closed) => Ok(()),
            other => other,
        }
    }

    /// Queues a streaming frame someone else wrote (`frame` ends in `\n`);
    /// `text` is the byte range of its text field's string contents. It may
    /// merge with an adjacent frame equal in every other byte.
    /// Refused as [`FallbackContext::push_line`] is.
    pub fn push_raw_stream(
        &mut self,
        frame: Vec<u8>,
        text: std::ops::Range<usize>,
    ) -> Result<(), Refused> {
        let now = self.cx.now;
        self.push_foreign(frame.len(), |out| out.push_stream_frame(frame, text, now))
    }

    /// The gateway's own `gateway.ready` payload while it is held (see
    /// [`ReadyHold::Hold`]); `None` once it went out or was never held.
    pub fn held_ready(&self) -> Option<&Value> {
        self.bridge.ready.as_ref()
    }

    /// Sends the held `gateway.ready` as `frame` (which ends in `\n`),
    /// ahead of everything queued while it was held, and lets output flow.
    pub fn release_ready(&mut self, frame: Vec<u8>) {
        if self.bridge.ready.take().is_some() {
            self.cx.out.open_gate(Some(frame), self.cx.now);
        }
    }

    /// Asks the engine to shut down for `cause` once this call returns (the
    /// backend's end can end the gateway).
    pub fn request_shutdown(&mut self, cause: Cause) {
        self.bridge.shutdown.get_or_insert(cause);
    }
}
