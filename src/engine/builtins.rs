//! The `gateway.*` methods and `client.capabilities`, answered by the engine itself.

use std::time::Instant;

use serde_json::{json, Map, Value};

use super::dispatch::Answer;
use super::host::Host;
use super::lifecycle::Cause;
use super::service::Reply;
use super::session::{self, SessionRequest};
use super::wire::{parse_params, ErrorCode, Id, Raw, RpcError, PROTOCOL_VERSION};
use super::Engine;

/// One built-in method.
struct Builtin {
    name: &'static str,
    /// Still the gateway's with a backend: the `gateway.*` namespace.
    with_backend: bool,
    /// Served only in a session (`--session`); `-32601` otherwise.
    session_only: bool,
    handler: Handler,
}

/// How a built-in answers.
enum Handler {
    /// With this result's JSON text, whatever the params: written as it
    /// stands, nothing built or parsed.
    Fixed(&'static str),
    /// With a value computed from the engine; params are not parsed.
    Computed(fn(&mut Engine, &mut dyn Host, Instant) -> Reply),
    /// With a value computed from the engine and the params, parsed.
    ReadsParams(fn(&mut Engine, Option<Value>) -> Reply),
}

/// The built-in methods, in the order `gateway.ready` lists them. With a
/// fallback (a backend) only the gateway's own namespace, `gateway.*`, is
/// served here; everything else, `client.capabilities` included, is the
/// backend's.
const BUILTINS: &[Builtin] = &[
    Builtin {
        name: "gateway.ping",
        with_backend: true,
        session_only: false,
        handler: Handler::Fixed(r#"{"ok":true}"#),
    },
    Builtin {
        name: "gateway.info",
        with_backend: true,
        session_only: false,
        handler: Handler::Computed(|engine, host, now| Ok(engine.info_value(host, now))),
    },
    Builtin {
        name: "gateway.stats",
        with_backend: true,
        session_only: false,
        handler: Handler::Computed(|engine, host, _| Ok(engine.stats_value(host))),
    },
    Builtin {
        name: "gateway.shutdown",
        with_backend: true,
        session_only: false,
        handler: Handler::Computed(|engine, _, _| {
            // The answer is queued before the drain starts, so it is
            // written before the gateway exits.
            let grace = engine.config.shutdown_grace.as_secs_f64();
            engine.requested.get_or_insert(Cause::Requested);
            Ok(json!({"ok": true, "grace_s": grace}))
        }),
    },
    Builtin {
        name: "client.capabilities",
        with_backend: false,
        session_only: false,
        handler: Handler::ReadsParams(|engine, params| engine.client_capabilities(params)),
    },
    Builtin {
        name: "gateway.detach",
        with_backend: true,
        session_only: true,
        handler: Handler::Computed(|engine, _, _| {
            engine.session_request(SessionRequest::Detach);
            Ok(json!({}))
        }),
    },
    Builtin {
        name: "gateway.end",
        with_backend: true,
        session_only: true,
        handler: Handler::Computed(|engine, _, _| {
            // As gateway.shutdown: the answer is queued before the drain.
            engine.requested.get_or_insert(Cause::SessionEnded);
            Ok(json!({}))
        }),
    },
    Builtin {
        name: "gateway.ack",
        with_backend: true,
        session_only: true,
        handler: Handler::ReadsParams(|engine, params| engine.ack(params)),
    },
    Builtin {
        name: "gateway.session",
        with_backend: true,
        session_only: true,
        handler: Handler::Computed(|engine, _, _| {
            let session = engine.session.as_ref().expect("routed in a session only");
            Ok(session::status(&session.info, &session.state))
        }),
    },
    Builtin {
        name: "gateway.attach",
        with_backend: true,
        session_only: true,
        handler: Handler::Computed(|_, _, _| {
            Err(RpcError::new(
                ErrorCode::InvalidRequest,
                "gateway.attach is the first message of a connection to a session's socket, not a message in the stream",
            ))
        }),
    },
];

/// The built-ins in force, with or without a fallback and a session.
pub(super) fn methods(
    with_fallback: bool,
    with_session: bool,
) -> impl Iterator<Item = &'static str> {
    routes(with_fallback, with_session).map(|(name, _)| name)
}

/// The built-ins in force, each with the index [`Engine::builtin`] runs it by.
pub(super) fn routes(
    with_fallback: bool,
    with_session: bool,
) -> impl Iterator<Item = (&'static str, usize)> {
    BUILTINS
        .iter()
        .enumerate()
        .filter(move |(_, b)| (b.with_backend || !with_fallback) && (!b.session_only || with_session))
        .map(|(index, b)| (b.name, index))
}

/// The crate version, as reported on the wire.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

impl Engine {
    /// Every method this engine answers: built-ins first, then services'.
    pub fn methods(&self) -> Vec<&'static str> {
        let mut methods: Vec<&'static str> =
            methods(self.fallback.is_some(), self.session.is_some()).collect();
        for service in self.all_services() {
            methods.extend_from_slice(service.methods());
        }
        methods
    }

    fn limits_value(&self) -> Value {
        let l = &self.config.outbound;
        let mut limits = Map::new();
        limits.insert("max_frame_bytes".into(), json!(self.config.max_frame_bytes));
        limits.insert("outbound_soft_limit_bytes".into(), json!(l.soft_bytes));
        limits.insert(
            "outbound_soft_limit_s".into(),
            json!(l.soft_duration.as_secs_f64()),
        );
        limits.insert("outbound_hard_limit_bytes".into(), json!(l.hard_bytes));
        limits.insert("outbound_high_water_bytes".into(), json!(l.high_water));
        limits.insert("outbound_low_water_bytes".into(), json!(l.low_water));
        limits.insert(
            "stall_timeout_s".into(),
            json!(l.stall_timeout.as_secs_f64()),
        );
        limits.insert("coalesce_cap_bytes".into(), json!(l.coalesce_cap));
        limits.insert(
            "shutdown_grace_s".into(),
            json!(self.config.shutdown_grace.as_secs_f64()),
        );
        for service in self.all_services() {
            limits.extend(service.limits());
        }
        Value::Object(limits)
    }

    pub(super) fn ready_payload(&self) -> Value {
        let mut ready = json!({
            "version": VERSION,
            "pid": std::process::id(),
            "protocol": PROTOCOL_VERSION,
            "methods": self.methods(),
            "limits": self.limits_value(),
        });
        if let (Value::Object(map), Some(s)) = (&mut ready, &self.session) {
            map.insert("session".into(), session::identity(&s.info));
        }
        ready
    }

    fn session_request(&mut self, request: SessionRequest) {
        if let Some(session) = &mut self.session {
            session.requests.push(request);
        }
    }

    /// `gateway.ack {"frames": N}`: the journal may let the first `N` frames
    /// go (never one not yet written).
    fn ack(&mut self, params: Option<Value>) -> Reply {
        let frames = params
            .as_ref()
            .and_then(|p| p.get("frames"))
            .and_then(Value::as_u64)
            .ok_or_else(|| {
                RpcError::invalid_params("gateway.ack takes {\"frames\": N}, N a count of frames received")
            })?;
        let state = self.session.as_ref().expect("routed in a session only").state;
        let first_held = state.first_held.max(frames.min(state.frames_total));
        self.session_request(SessionRequest::Ack(frames));
        Ok(json!({"first_held": first_held}))
    }

    /// Runs the built-in `method` (routed here, so it is in force).
    /// Runs the built-in at `index` (see [`routes`]).
    pub(super) fn builtin(
        &mut self,
        index: usize,
        params: Option<Raw<'_>>,
        host: &mut dyn Host,
        now: Instant,
    ) -> Answer {
        match BUILTINS[index].handler {
            Handler::Fixed(result) => Answer::Fixed(result),
            Handler::Computed(handler) => Answer::Reply(handler(self, host, now)),
            Handler::ReadsParams(handler) => match parse_params(params, &Id::Null) {
                Ok(params) => Answer::Reply(handler(self, params)),
                Err(reject) => Answer::error(reject.error),
            },
        }
    }

    fn info_value(&self, host: &dyn Host, now: Instant) -> Value {
        let mut info = json!({
            "version": VERSION,
            "pid": std::process::id(),
            "protocol": PROTOCOL_VERSION,
            "uptime_s": now.duration_since(self.started).as_secs_f64(),
            "methods": self.methods(),
            "services": self.all_services().map(|s| s.name()).collect::<Vec<_>>(),
            "config": self.config.settings,
            "client": self.client_capabilities,
            "limits": self.limits_value(),
        });
        if let Value::Object(map) = &mut info {
            if let Some(s) = &self.session {
                map.insert("session".into(), session::identity(&s.info));
            }
            map.extend(host.info());
            for service in self.all_services() {
                map.extend(service.info());
            }
        }
        info
    }

    fn client_capabilities(&mut self, params: Option<Value>) -> Reply {
        match params {
            None | Some(Value::Object(_)) => {}
            Some(Value::Array(ref items))
                if items.len() <= 1 && items.iter().all(Value::is_object) => {}
            Some(_) => {
                return Err(RpcError::invalid_params(
                    "client.capabilities takes an object of capabilities",
                ))
            }
        }
        self.client_capabilities = params;
        Ok(json!({
            "protocol": PROTOCOL_VERSION,
            "version": VERSION,
            "methods": self.methods(),
            "events": {"envelope": "event", "coalescing": true, "line_separators_escaped": true},
            "batches": true,
            "limits": self.limits_value(),
        }))
    }

    pub(super) fn stats_value(&self, host: &dyn Host) -> Value {
        let c = self.out.counters();
        let signals: Map<String, Value> = self
            .stats
            .signals
            .iter()
            .map(|(name, n)| ((*name).to_owned(), json!(n)))
            .collect();
        let mut stats = json!({
            "frames_in": self.stats.frames_in,
            "bytes_in": self.stats.bytes_in,
            "frames_out": c.frames_out,
            "bytes_out": c.bytes_out,
            "parse_errors": self.stats.parse_errors,
            "invalid_requests": self.stats.invalid_requests,
            "oversize_frames": self.stats.oversize_frames,
            "truncated_frames": self.stats.truncated_frames,
            "responses_unmatched": self.stats.responses_unmatched,
            "frames_forwarded": self.stats.frames_forwarded,
            "outbound_queue_bytes": self.out.queued_bytes(),
            "outbound_high_water_mark": c.high_water_mark,
            "deltas_coalesced": c.deltas_coalesced,
            "frames_dropped": c.frames_dropped,
            "frames_refused": c.frames_refused,
            "write_stalls": self.stats.write_stalls,
            "signals": signals,
        });
        if let (Value::Object(map), true) = (&mut stats, self.fallback.is_some()) {
            map.insert(
                "batches_waiting".into(),
                json!({
                    "answer_bytes": self.joins.answer_bytes(),
                    "text_bytes": self.joins.text_bytes(),
                }),
            );
        }
        if let Value::Object(map) = &mut stats {
            map.extend(host.stats());
            for service in self.all_services() {
                map.extend(service.stats());
            }
        }
        stats
    }

    /// Starts a shutdown asked for during the frame just answered
    /// (`gateway.shutdown`, or a service's request), after its answer was
    /// queued, so the frames after it are not served.
    pub(super) fn run_pending_shutdown(&mut self, host: &mut dyn Host, now: Instant) {
        if let Some(cause) = self.requested.take() {
            self.begin_shutdown(cause, host, now);
        }
    }
}
