//! Whether the backend takes JSON-RPC batches, learnt from what it answers,
//! and how each batch is sent meanwhile.
//!
//! A backend either answers a batch with an array (it takes batches) or
//! answers the whole array with one error whose id is `null` (it refuses
//! them, as the hermes gateway does). The gateway does not know which until
//! the backend shows it, so until then:
//!
//! * a batch with requests is sent as an array and kept: if the backend
//!   refuses it, every batch kept is sent again member by member, however
//!   many, so nothing the client sent is lost;
//! * a batch of notifications only is sent member by member at once: its
//!   refusal would be the only sign of one, and a `null`-id error cannot be
//!   told from the answer to a request whose id is `null`. Sent one by one,
//!   notifications mean the same to any backend;
//! * past `limit` bytes of batches kept, further batches are sent member by
//!   member too, so keeping them stays bounded.
//!
//! A refusal is what it looks like: one error with a `null` id, arriving
//! before any answer to a member of the batch it refuses. What a `null`-id
//! error is (a refusal, or the answer to a `null`-id request the client
//! sent) is decided by the order things were sent in ([`NullSlot`]), which
//! is the order a backend that reads its input in turn answers in.

use std::collections::VecDeque;

use crate::engine::wire::Id;

/// What the gateway knows of the backend and batches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Support {
    /// Not seen yet.
    Unknown,
    /// It answered a batch: batches are sent whole.
    Yes,
    /// It refused one: every batch is sent member by member.
    No,
}

impl Support {
    /// As `gateway.info` shows it.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Support::Unknown => "unknown",
            Support::Yes => "taken",
            Support::No => "refused",
        }
    }
}

/// What a `null`-id message from the backend may be, in send order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum NullSlot {
    /// The refusal of a batch sent as an array.
    Refusal,
    /// The answer to a request whose id is `null`.
    Request,
}

/// A batch sent as an array while support is unknown.
#[derive(Debug)]
struct Kept {
    members: Vec<Vec<u8>>,
    /// Its requests' ids, canonical.
    ids: Vec<Id>,
}

/// What a response from the backend means here.
#[derive(Debug, PartialEq)]
pub(crate) enum Response {
    /// An answer: forward it.
    Answer,
    /// The refusal of a batch: not an answer to anything the client sent.
    /// `resend` holds the bytes to write to the backend's stdin: in order,
    /// the members of every batch kept, one per line (empty when the
    /// refusal was expected, support being learnt already).
    Refusal { resend: Vec<u8> },
}

/// The batching state of one bridge.
#[derive(Debug)]
pub(crate) struct Batching {
    support: Support,
    kept: VecDeque<Kept>,
    kept_bytes: usize,
    /// At most this many bytes of batches are kept.
    limit: usize,
    /// While support is unknown, or refusals are still on their way: what
    /// each `null`-id message may be, in send order.
    nulls: VecDeque<NullSlot>,
}

impl Batching {
    /// Nothing known yet; keeps at most `limit` bytes of batches.
    pub(crate) fn new(limit: usize) -> Batching {
        Batching {
            support: Support::Unknown,
            kept: VecDeque::new(),
            kept_bytes: 0,
            limit,
            nulls: VecDeque::new(),
        }
    }

    /// What is known.
    pub(crate) fn support(&self) -> Support {
        self.support
    }

    /// The bytes to write to the backend's stdin for one batch: an array
    /// line, or one line per member. `ids` are its requests' canonical ids.
    pub(crate) fn send(&mut self, members: Vec<Vec<u8>>, ids: Vec<Id>) -> Vec<u8> {
        let size: usize = members.iter().map(|m| m.len() + 1).sum::<usize>() + 2;
        let as_array = match self.support {
            Support::Yes => true,
            Support::No => false,
            Support::Unknown => !ids.is_empty() && self.kept_bytes + size <= self.limit,
        };
        if !as_array {
            return one_per_line(&members);
        }
        let mut line = Vec::with_capacity(size);
        line.push(b'[');
        for (i, member) in members.iter().enumerate() {
            if i > 0 {
                line.push(b',');
            }
            line.extend_from_slice(member);
        }
        line.extend_from_slice(b"]\n");
        if self.support == Support::Unknown {
            self.kept_bytes += size;
            self.kept.push_back(Kept { members, ids });
            self.nulls.push_back(NullSlot::Refusal);
        }
        line
    }

    /// A single request whose id is `null` was sent: its answer may be
    /// told from a refusal only by its place in the order.
    pub(crate) fn sent_null_request(&mut self) {
        if self.nulls.contains(&NullSlot::Refusal) || self.support == Support::Unknown {
            self.nulls.push_back(NullSlot::Request);
        }
    }

    /// A response (not an array) came from the backend: `id` is its id,
    /// `error` whether it is an error.
    pub(crate) fn on_response(&mut self, id: &Id, error: bool) -> Response {
        if *id != Id::Null {
            // Nothing kept (the common case, batches known): no lookup.
            if !self.kept.is_empty() {
                let key = id.canonical();
                if self.kept.iter().any(|k| k.ids.contains(&key)) {
                    self.learn_yes();
                }
            }
            return Response::Answer;
        }
        if !error {
            // A result answers a request, the oldest one waiting.
            if let Some(at) = self.nulls.iter().position(|s| *s == NullSlot::Request) {
                self.nulls.remove(at);
            }
            return Response::Answer;
        }
        match self.nulls.pop_front() {
            Some(NullSlot::Refusal) if self.support == Support::Unknown => {
                self.support = Support::No;
                self.kept_bytes = 0;
                let resend = self
                    .kept
                    .drain(..)
                    .flat_map(|k| one_per_line(&k.members))
                    .collect();
                log::info!(
                    "the backend refused a batch: sending batches member by member from now on"
                );
                Response::Refusal { resend }
            }
            // A batch sent before the first refusal was learnt, refused too.
            Some(NullSlot::Refusal) => Response::Refusal { resend: Vec::new() },
            Some(NullSlot::Request) | None => Response::Answer,
        }
    }

    /// An array came from the backend: it takes batches.
    pub(crate) fn on_array(&mut self) {
        if self.support == Support::Unknown {
            self.learn_yes();
        }
    }

    /// The backend is gone: nothing sent to it is awaited any more. What
    /// was learnt holds for the next one (the same command).
    pub(crate) fn reset(&mut self) {
        self.kept.clear();
        self.kept_bytes = 0;
        self.nulls.clear();
    }

    fn learn_yes(&mut self) {
        self.support = Support::Yes;
        self.reset();
    }
}

/// Each member on a line of its own.
fn one_per_line(members: &[Vec<u8>]) -> Vec<u8> {
    let mut out = Vec::with_capacity(members.iter().map(|m| m.len() + 1).sum());
    for member in members {
        out.extend_from_slice(member);
        out.push(b'\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(ids: &[u64]) -> (Vec<Vec<u8>>, Vec<Id>) {
        let members = ids
            .iter()
            .map(|i| format!(r#"{{"jsonrpc":"2.0","id":{i},"method":"m"}}"#).into_bytes())
            .collect();
        (members, ids.iter().map(|&i| Id::from(i)).collect())
    }

    fn notes(n: usize) -> Vec<Vec<u8>> {
        (0..n)
            .map(|_| br#"{"jsonrpc":"2.0","method":"n"}"#.to_vec())
            .collect()
    }

    #[test]
    fn every_batch_kept_is_sent_again_when_the_first_refusal_comes_however_many() {
        let mut b = Batching::new(1 << 20);
        let mut sent = Vec::new();
        for i in 0..20 {
            let (members, ids) = batch(&[2 * i, 2 * i + 1]);
            let line = b.send(members, ids);
            assert!(line.starts_with(b"["), "sent as an array while unknown");
            sent.push(line);
        }
        let Response::Refusal { resend } = b.on_response(&Id::Null, true) else {
            panic!("a refusal")
        };
        let lines = resend
            .split(|&c| c == b'\n')
            .filter(|l| !l.is_empty())
            .count();
        assert_eq!(lines, 40, "all 20 batches, member by member");
        assert_eq!(b.support(), Support::No);
        // The 19 other refusals are swallowed, and resend nothing again.
        for _ in 0..19 {
            assert_eq!(
                b.on_response(&Id::Null, true),
                Response::Refusal { resend: vec![] }
            );
        }
        // From then on a null-id error is an answer.
        assert_eq!(b.on_response(&Id::Null, true), Response::Answer);
        let (members, ids) = batch(&[99]);
        assert!(!b.send(members, ids).starts_with(b"["));
    }

    #[test]
    fn a_null_id_error_answering_a_null_id_request_is_not_a_refusal() {
        let mut b = Batching::new(1 << 20);
        // Notifications only: member by member, nothing to learn from.
        let line = b.send(notes(3), vec![]);
        assert_eq!(line.iter().filter(|&&c| c == b'\n').count(), 3);
        assert!(!line.starts_with(b"["));
        b.sent_null_request();
        assert_eq!(b.on_response(&Id::Null, true), Response::Answer);
        assert_eq!(b.support(), Support::Unknown);
    }

    #[test]
    fn the_order_sent_tells_a_null_id_answer_from_a_refusal() {
        let mut b = Batching::new(1 << 20);
        b.sent_null_request();
        let (members, ids) = batch(&[1]);
        b.send(members, ids);
        b.sent_null_request();
        // A backend that refuses batches: the answer, the refusal, the answer.
        assert_eq!(b.on_response(&Id::Null, true), Response::Answer);
        assert!(matches!(
            b.on_response(&Id::Null, true),
            Response::Refusal { ref resend } if !resend.is_empty()
        ));
        assert_eq!(b.on_response(&Id::Null, true), Response::Answer);
    }

    #[test]
    fn an_answer_to_a_member_means_batches_are_taken() {
        let mut b = Batching::new(1 << 20);
        let (members, ids) = batch(&[7, 8]);
        b.send(members, ids);
        assert_eq!(b.on_response(&Id::from(8), false), Response::Answer);
        assert_eq!(b.support(), Support::Yes);
        assert_eq!(b.on_response(&Id::Null, true), Response::Answer);
        let (members, ids) = batch(&[9]);
        assert!(b.send(members, ids).starts_with(b"["));
    }

    #[test]
    fn past_the_limit_batches_are_sent_member_by_member_and_not_kept() {
        let mut b = Batching::new(100);
        let (members, ids) = batch(&[1, 2]);
        assert!(b.send(members, ids).starts_with(b"["));
        let (members, ids) = batch(&[3, 4]);
        assert!(
            !b.send(members, ids).starts_with(b"["),
            "over 100 bytes kept"
        );
        let Response::Refusal { resend } = b.on_response(&Id::Null, true) else {
            panic!()
        };
        assert_eq!(resend.iter().filter(|&&c| c == b'\n').count(), 2);
    }
}
