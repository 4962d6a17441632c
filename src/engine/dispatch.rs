//! Dispatch: a frame opened, each message classified and sent where it
//! goes (a built-in, a service, the fallback), and its answer queued.

use std::time::Instant;

use super::batch::{Batch, Pass};
use super::host::Host;
use super::service::{Call, Forward, ForwardKind, Forwarded, Reply};
use super::wire::{
    check_size, head, open, open_forwarding, parse_outcome, parse_params, write_answer,
    write_fixed_answer, ErrorCode, Head, Id, Opened, Raw, Reject, RpcError,
};
use super::{outbound, Engine, Place, Route};

impl Engine {
    pub(super) fn dispatch_frame(&mut self, frame: &[u8], host: &mut dyn Host, now: Instant) {
        if self.forward_lines {
            self.stats.frames_forwarded += 1;
            let message = Forward {
                raw: frame,
                kind: ForwardKind::Line,
                in_batch: false,
            };
            self.with_fallback(host, now, |f, cx| f.forward(cx, message));
            return;
        }
        let opened = match self.fallback {
            Some(_) => open_forwarding(frame),
            None => open(frame),
        };
        match opened {
            Opened::Single { text, message } => {
                if let Some((id, answer)) =
                    self.dispatch_message(text, message, Place::Frame, host, now)
                {
                    self.answer(&id, &answer, now);
                }
                // Frames after a shutdown request are not served.
                self.run_pending_shutdown(host, now);
            }
            Opened::Batch(members) => {
                let pass = match self.fallback {
                    // Batches waiting for the fallback hold their text: at
                    // most one frame's worth, and one more frame.
                    Some(_) if self.joins.text_bytes() >= self.config.max_frame_bytes => {
                        self.out.begin_pieces();
                        Pass::Refuse(members)
                    }
                    Some(_) => Pass::Forward(self.joins.start(), members),
                    None => {
                        self.out.begin_pieces();
                        Pass::Plain(members)
                    }
                };
                self.batch = Some(Batch {
                    index: 0,
                    answered: 0,
                    pass,
                });
            }
        }
    }

    /// Queues one response frame, written in place in the queue, or a
    /// `-32001` error in its place if it would not fit under the hard limit.
    pub(super) fn answer(&mut self, id: &Id, answer: &Answer, now: Instant) {
        let room = self.out.room().saturating_sub(1);
        let pushed = self.out.push_frame_with(now, |buf| {
            answer.write(buf, id, room);
            buf.push(b'\n');
        });
        outbound::paced(pushed);
    }

    pub(super) fn count_reject(&mut self, error: &RpcError) {
        log::debug!("rejected message: {error}");
        if error.code == ErrorCode::ParseError {
            self.stats.parse_errors += 1;
        } else {
            self.stats.invalid_requests += 1;
        }
    }

    /// Dispatches one message (a single frame's text or a batch member's):
    /// returns the answer to send now, if any. A request forwarded to the
    /// fallback, or one a service took to answer later, returns `None`.
    pub(super) fn dispatch_member(
        &mut self,
        text: &str,
        place: Place,
        host: &mut dyn Host,
        now: Instant,
    ) -> Option<(Id, Answer)> {
        self.dispatch_message(text, head(text), place, host, now)
    }

    /// [`Engine::dispatch_member`] of a message already classified.
    fn dispatch_message(
        &mut self,
        text: &str,
        message: Result<Head<'_>, Reject>,
        place: Place,
        host: &mut dyn Host,
        now: Instant,
    ) -> Option<(Id, Answer)> {
        let message = match message {
            Ok(message) => message,
            Err(reject) => {
                self.count_reject(&reject.error);
                return Some((reject.id, Answer::error(reject.error)));
            }
        };
        match message {
            Head::Request { id, method, params } => {
                let route = self.route(&method);
                if self.goes_to_fallback(route) {
                    let in_batch = place == Place::Forwarded;
                    return self.forward_request(text, id, in_batch, host, now);
                }
                let call = match place {
                    Place::Frame => Call::Frame(&id),
                    Place::Member | Place::Forwarded => Call::Member,
                };
                let answer = self.call(route, &method, params, call, host, now)?;
                Some((id, answer))
            }
            Head::Notification { method, params } => {
                let route = self.route(&method);
                if self.goes_to_fallback(route) {
                    let kind = ForwardKind::Notification;
                    let in_batch = place == Place::Forwarded;
                    self.forward(text, kind, in_batch, host, now);
                } else {
                    // A notification's reply is nobody's: it is dropped.
                    self.call(route, &method, params, Call::Notification, host, now);
                }
                None
            }
            Head::Response { id, outcome } => {
                if let Some(index) = self.pending.remove(&id) {
                    if let Ok(outcome) = parse_outcome(outcome, &id) {
                        lend!(self, index, Call::None, host, now, |service, cx| {
                            service.on_client_response(cx, &id, outcome)
                        });
                    }
                } else if self.fallback.is_some() {
                    let kind = ForwardKind::Response(&id);
                    let in_batch = place == Place::Forwarded;
                    self.forward(text, kind, in_batch, host, now);
                } else {
                    self.stats.responses_unmatched += 1;
                    log::debug!("dropping a response to unknown request {id}");
                }
                None
            }
        }
    }

    /// Forwards a request to the fallback: its answer comes later, unless
    /// the fallback refuses it now.
    pub(super) fn forward_request(
        &mut self,
        text: &str,
        id: Id,
        in_batch: bool,
        host: &mut dyn Host,
        now: Instant,
    ) -> Option<(Id, Answer)> {
        let kind = ForwardKind::Request(&id);
        match self.forward(text, kind, in_batch, host, now) {
            Forwarded::Sent => None,
            Forwarded::Answer(error) => Some((id, Answer::error(error))),
        }
    }

    pub(super) fn route(&self, method: &str) -> Option<Route> {
        self.routes.get(method).copied()
    }

    /// True for a method no service claims, with a fallback to take it.
    pub(super) fn goes_to_fallback(&self, route: Option<Route>) -> bool {
        route.is_none() && self.fallback.is_some()
    }

    /// Hands one message to the fallback (the caller knows there is one).
    pub(super) fn forward(
        &mut self,
        raw: &str,
        kind: ForwardKind<'_>,
        in_batch: bool,
        host: &mut dyn Host,
        now: Instant,
    ) -> Forwarded {
        self.stats.frames_forwarded += 1;
        let message = Forward {
            raw: raw.as_bytes(),
            kind,
            in_batch,
        };
        self.with_fallback(host, now, |f, cx| f.forward(cx, message))
            .unwrap_or_else(|| Forwarded::Answer(RpcError::method_not_found("this method")))
    }

    /// Runs a method. `None` when the service took the request to answer
    /// later ([`Context::defer`]). Params holding too many values are
    /// refused first, whoever the method is; they are parsed only for a
    /// method that reads them.
    pub(super) fn call(
        &mut self,
        route: Option<Route>,
        method: &str,
        params: Option<Raw<'_>>,
        call: Call<'_>,
        host: &mut dyn Host,
        now: Instant,
    ) -> Option<Answer> {
        // The caller answers under the request's id: a refusal's own id is unused.
        let refuse_as = &Id::Null;
        if let Some(Err(reject)) = params.map(|raw| check_size(raw, refuse_as, "params")) {
            return Some(Answer::error(reject.error));
        }
        match route {
            None => Some(Answer::error(RpcError::method_not_found(method))),
            Some(Route::Builtin(index)) => Some(self.builtin(index, params, host, now)),
            Some(Route::Service(index)) => {
                let params = match parse_params(params, refuse_as) {
                    Ok(params) => params,
                    Err(reject) => return Some(Answer::error(reject.error)),
                };
                lend!(self, index, call, host, now, |service, cx| {
                    let reply = service.call(cx, method, params);
                    (!cx.deferred).then_some(Answer::Reply(reply))
                })
            }
        }
    }
}

/// What answers a request: a method's reply, or a built-in's fixed result
/// written as it stands (no value built).
#[derive(Debug)]
pub(crate) enum Answer {
    /// A result value or an error.
    Reply(Reply),
    /// A result's JSON text.
    Fixed(&'static str),
}

impl Answer {
    /// An error answer.
    pub(crate) fn error(error: RpcError) -> Answer {
        Answer::Reply(Err(error))
    }

    /// Appends the response object (no newline) within `room` bytes, or a
    /// `-32001` error in its place (see [`write_answer`]).
    pub(crate) fn write(&self, buf: &mut Vec<u8>, id: &Id, room: usize) {
        match self {
            Answer::Reply(reply) => write_answer(buf, id, reply, room),
            Answer::Fixed(result) => write_fixed_answer(buf, id, result, room),
        }
    }
}
