//! Batches, walked one member a step so that pacing and signals get a turn
//! between members. Without a fallback a batch is answered as it is walked,
//! into the queue piece by piece. With one it is walked twice (`join.rs`):
//! a forward pass sends the fallback's members; once their answers are in,
//! an answer pass writes the array like any batch.

use std::collections::VecDeque;
use std::time::Instant;

use super::dispatch::Answer;
use super::host::Host;
use super::join::{Joins, Ready};
use super::outbound;
use super::service::{ForwardKind, Forwarded};
use super::wire::{head, BatchCursor, ErrorCode, Head, Id, RpcError};
use super::{Engine, Place, FRAMES_PER_TURN};

impl Engine {
    /// Answers batches whose fallback answers are all in, paced as any
    /// batch: a fallback's answer arrives with no input to drive them.
    pub(super) fn answer_ready_batches(&mut self, host: &mut dyn Host, now: Instant) {
        for _ in 0..FRAMES_PER_TURN {
            if self.batch.is_none() {
                self.begin_answer_pass();
            }
            let answering = matches!(
                self.batch,
                Some(Batch {
                    pass: Pass::Answer(_),
                    ..
                })
            );
            if !answering || !self.can_dispatch() {
                return;
            }
            self.step_batch(host, now);
        }
    }

    /// Takes the oldest batch whose fallback answers are all in as the
    /// batch being answered.
    pub(super) fn begin_answer_pass(&mut self) {
        if let Some(ready) = self.joins.next_ready() {
            self.out.begin_pieces();
            self.batch = Some(Batch {
                index: 0,
                answered: 0,
                pass: Pass::Answer(ready),
            });
        }
    }

    /// Takes the next step of the batch in progress: one member, or one
    /// kept answer, or the end. Once the gateway is shutting down (a
    /// `gateway.shutdown` earlier in the batch, a signal), members are not
    /// run: requests get `-32000` "shutting down", notifications nothing.
    pub(super) fn step_batch(&mut self, host: &mut dyn Host, now: Instant) {
        let Some(mut batch) = self.batch.take() else {
            return;
        };
        if let Pass::Answer(ready) = &mut batch.pass {
            if let Some(piece) = ready.kept.pop_front() {
                // Kept off the queue until now: it moves in as a piece.
                self.joins.released(&piece);
                self.push_batch_piece(&mut batch.answered, &piece, now);
                self.batch = Some(batch);
                return;
            }
        }
        let index = batch.index;
        batch.index += 1;
        let refusing = matches!(batch.pass, Pass::Refuse(_));
        let (member, join, refused) = match &mut batch.pass {
            Pass::Plain(members) | Pass::Refuse(members) => (members.next_member(), None, None),
            Pass::Forward(join, members) => (members.next_member(), Some(*join), None),
            Pass::Answer(ready) => (ready.members.next_member(), None, Some(&mut ready.refused)),
        };
        let Some(member) = member else {
            match batch.pass {
                Pass::Forward(join, members) => {
                    self.with_fallback(host, now, |f, cx| f.end_batch(cx));
                    self.joins.walked(join, members);
                }
                Pass::Plain(_) | Pass::Refuse(_) | Pass::Answer(_) => {
                    let last = if batch.answered > 0 {
                        b"]\n".to_vec()
                    } else {
                        Vec::new()
                    };
                    self.out.end_pieces(last, now);
                }
            }
            return;
        };
        let reply = match (join, refused) {
            (Some(join), _) => {
                self.forward_member(member, join, index, host, now);
                None
            }
            (None, Some(refused)) => self.answer_member(member, index, refused, host, now),
            _ if refusing => match head(member) {
                Ok(Head::Request { id, .. }) => {
                    Some((id, Answer::error(too_many_batches_waiting(&self.joins))))
                }
                Ok(_) => None,
                Err(reject) => Some((reject.id, Answer::error(reject.error))),
            },
            _ if self.lifecycle.drain().is_some() => match head(member) {
                Ok(Head::Request { id, .. }) => Some((id, Answer::error(shutting_down()))),
                Ok(_) => None,
                Err(reject) => Some((reject.id, Answer::error(reject.error))),
            },
            _ => self.dispatch_member(member, Place::Member, host, now),
        };
        if let Some((id, reply)) = reply {
            let mut piece = Vec::with_capacity(64);
            // Room for this member, its separator and the closing `]\n`.
            let room = self.out.room().saturating_sub(3);
            reply.write(&mut piece, &id, room);
            self.push_batch_piece(&mut batch.answered, &piece, now);
        }
        self.batch = Some(batch);
        self.run_pending_shutdown(host, now);
    }

    /// Appends one response to the batch answer being built in the queue,
    /// opening the array with the first.
    fn push_batch_piece(&mut self, answered: &mut usize, response: &[u8], now: Instant) {
        let mut piece = Vec::with_capacity(response.len() + 1);
        piece.push(if *answered == 0 { b'[' } else { b',' });
        piece.extend_from_slice(response);
        *answered += 1;
        // Sized against the room (a kept answer against the budget, which
        // the queue's own limits leave room for): only a closed queue
        // refuses, and then nothing is written anyway.
        outbound::paced(self.out.push_piece(piece, now));
    }

    /// The forward pass over one member of a batch with a fallback: what
    /// the fallback serves is forwarded now (its answer is owed to the
    /// join) or refused now (recorded by index); the gateway's own members
    /// wait for the answer pass; a client response is delivered now.
    fn forward_member(
        &mut self,
        text: &str,
        join: usize,
        index: u32,
        host: &mut dyn Host,
        now: Instant,
    ) {
        match head(text) {
            Ok(Head::Request { id, method, .. }) => {
                if !self.goes_to_fallback(self.route(&method)) {
                    return;
                }
                if self.lifecycle.drain().is_some() {
                    return self.joins.refuse(join, index, shutting_down());
                }
                if !self.joins.expect(join, &id) {
                    return self.joins.refuse(join, index, duplicate_id());
                }
                let kind = ForwardKind::Request(&id);
                if let Forwarded::Answer(error) = self.forward(text, kind, true, host, now) {
                    self.joins.forget(join, &id);
                    self.joins.refuse(join, index, error);
                }
            }
            Ok(Head::Notification { method, .. }) => {
                if self.goes_to_fallback(self.route(&method)) && self.lifecycle.drain().is_none() {
                    self.forward(text, ForwardKind::Notification, true, host, now);
                }
            }
            Ok(Head::Response { .. }) => {
                self.dispatch_member(text, Place::Forwarded, host, now);
            }
            // Answered in the answer pass, where it is read again.
            Err(_) => {}
        }
    }

    /// The answer pass over one member: the gateway's own members run now;
    /// the fallback's were answered by the kept answers, unless refused.
    fn answer_member(
        &mut self,
        text: &str,
        index: u32,
        refused: &mut VecDeque<(u32, RpcError)>,
        host: &mut dyn Host,
        now: Instant,
    ) -> Option<(Id, Answer)> {
        let forwarded = match head(text) {
            Ok(Head::Request { ref method, .. } | Head::Notification { ref method, .. }) => {
                self.goes_to_fallback(self.route(method))
            }
            Ok(Head::Response { .. }) => true,
            Err(_) => false,
        };
        if !forwarded {
            return if self.lifecycle.drain().is_some() {
                match head(text) {
                    Ok(Head::Request { id, .. }) => Some((id, Answer::error(shutting_down()))),
                    Ok(_) => None,
                    Err(reject) => Some((reject.id, Answer::error(reject.error))),
                }
            } else {
                self.dispatch_member(text, Place::Member, host, now)
            };
        }
        match refused.front() {
            Some((at, _)) if *at == index => {
                let (_, error) = refused.pop_front().expect("checked");
                let id = match head(text) {
                    Ok(Head::Request { id, .. }) => id,
                    _ => Id::Null,
                };
                Some((id, Answer::error(error)))
            }
            _ => None,
        }
    }
}

/// A batch being walked member by member.
#[derive(Debug)]
pub(super) struct Batch {
    /// The index of the next member.
    pub(super) index: u32,
    /// Responses pushed so far (the first one opens the array).
    pub(super) answered: usize,
    pub(super) pass: Pass,
}

/// Which walk over a batch this is.
#[derive(Debug)]
pub(super) enum Pass {
    /// Without a fallback: each member run and answered in turn, into the
    /// queue.
    Plain(BatchCursor),
    /// With one, first: members for the fallback forwarded, the rest left
    /// for the answer pass ([`Joins`]).
    Forward(usize, BatchCursor),
    /// Then, once the fallback's answers are all in: those first, then the
    /// gateway's own members, run and answered in turn, into the queue.
    Answer(Ready),
    /// With one, while batches waiting for it hold a frame's worth of
    /// text: nothing is run, each request gets `-32001`.
    Refuse(BatchCursor),
}

/// The answer to a request in a batch refused because batches waiting for
/// the fallback hold too much already.
fn too_many_batches_waiting(joins: &Joins) -> RpcError {
    RpcError::new(
        ErrorCode::Overloaded,
        format!(
            "batches waiting for the backend hold {} bytes already (at most --max-frame-bytes more are taken); retry when they are answered",
            joins.text_bytes()
        ),
    )
}

/// The answer to a batch member whose id is already owed by the fallback.
fn duplicate_id() -> RpcError {
    RpcError::invalid_request(
        "a request with this id is already in flight in a batch; ids must be unique among requests in flight",
    )
}

/// The answer to a request that arrives while the gateway shuts down.
pub(super) fn shutting_down() -> RpcError {
    RpcError::new(
        ErrorCode::HandlerFailed,
        "shutting down: the gateway no longer starts work",
    )
}
