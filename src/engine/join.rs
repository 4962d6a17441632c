//! Batch answers that wait for a fallback service.
//!
//! A batch is answered as one array, and the fallback's answers arrive
//! later, interleaved with other frames, so a batch with members for the
//! fallback cannot stream its answer into the outbound queue as it is
//! walked. It is answered in two passes instead:
//!
//! 1. **Forward** (at dispatch): members for the fallback are forwarded
//!    (and owed here, by id); members the fallback refused at once (a
//!    duplicate id, an overloaded or gone backend) are recorded by index
//!    with their error; every other member waits. The batch's text is kept.
//! 2. **Answer** (once every owed answer is in, [`Joins::next_ready`]): the
//!    engine walks the batch again through the same paced path as a batch
//!    without a fallback (`begin_pieces`, one member a step, stopping at the
//!    high-water mark): first the fallback's answers kept here, then each
//!    member the gateway answers, run then.
//!
//! What is held here is bounded and counted: the fallback's answers count
//! against a budget of their own, the room between the outbound queue's
//! high-water mark and its hard limit (so each one fits in the queue
//! whenever a batch may step; one that would pass the budget is kept as a
//! small `-32001` for its id), and the texts of waiting batches against one
//! frame's worth (past it the engine refuses a new batch at once). Nothing
//! held here stops the gateway reading the client or the fallback, so a
//! batch never waits on itself, nor on a request the client sends later.

use std::collections::{HashMap, VecDeque};

use super::wire::{write_response, BatchCursor, ErrorCode, Id, RpcError};

/// Batches waiting for the fallback, and those ready to be answered.
#[derive(Debug)]
pub(crate) struct Joins {
    open: Vec<Option<Join>>,
    /// Owed ids, by their canonical form.
    by_id: HashMap<Id, usize>,
    ready: VecDeque<Ready>,
    /// Bytes of the fallback's answers held (kept or ready).
    answer_bytes: usize,
    /// At most this many bytes of answers are held; past it, `-32001`.
    budget: usize,
    /// Bytes of batch texts held (open or ready).
    text_bytes: usize,
}

/// A batch in its forward pass, or waiting for answers.
#[derive(Debug, Default)]
struct Join {
    /// The batch, once its forward pass is over.
    members: Option<BatchCursor>,
    /// The fallback's answers so far (one response each, no `\n`).
    kept: VecDeque<Vec<u8>>,
    /// Members refused at once: their index and answer, in member order.
    refused: VecDeque<(u32, RpcError)>,
    /// Answers still owed by the fallback.
    waiting: usize,
}

/// A batch whose answers are all in: what its answer pass needs.
#[derive(Debug)]
pub(crate) struct Ready {
    /// The batch, rewound to its first member.
    pub(crate) members: BatchCursor,
    /// The fallback's answers: they go first.
    pub(crate) kept: VecDeque<Vec<u8>>,
    /// Members refused at once, by index, in member order.
    pub(crate) refused: VecDeque<(u32, RpcError)>,
}

impl Joins {
    /// No batch waiting; the fallback's answers may hold `budget` bytes
    /// (the room between the queue's high-water mark and hard limit).
    pub(crate) fn new(budget: usize) -> Joins {
        Joins {
            open: Vec::new(),
            by_id: HashMap::new(),
            ready: VecDeque::new(),
            answer_bytes: 0,
            budget,
            text_bytes: 0,
        }
    }

    /// Opens a batch's forward pass; returns its handle.
    pub(crate) fn start(&mut self) -> usize {
        let join = Some(Join::default());
        match self.open.iter().position(Option::is_none) {
            Some(slot) => {
                self.open[slot] = join;
                slot
            }
            None => {
                self.open.push(join);
                self.open.len() - 1
            }
        }
    }

    /// True when no batch waits and none is ready.
    pub(crate) fn is_empty(&self) -> bool {
        self.ready.is_empty() && self.open.iter().all(Option::is_none)
    }

    /// Bytes of the fallback's answers held.
    pub(crate) fn answer_bytes(&self) -> usize {
        self.answer_bytes
    }

    /// Bytes of batch texts held.
    pub(crate) fn text_bytes(&self) -> usize {
        self.text_bytes
    }

    /// Records that `id` is owed by the fallback. False if an answer for
    /// that id is already owed to a batch: the member must be refused, or
    /// its answer could not be told from the other one's.
    pub(crate) fn expect(&mut self, join: usize, id: &Id) -> bool {
        let key = id.canonical();
        if self.by_id.contains_key(&key) {
            return false;
        }
        if let Some(j) = self.open.get_mut(join).and_then(Option::as_mut) {
            j.waiting += 1;
            self.by_id.insert(key, join);
        }
        true
    }

    /// Member `index` is answered with `error` without reaching the
    /// fallback.
    pub(crate) fn refuse(&mut self, join: usize, index: u32, error: RpcError) {
        if let Some(j) = self.open.get_mut(join).and_then(Option::as_mut) {
            j.refused.push_back((index, error));
        }
    }

    /// `id` was expected ([`Joins::expect`]) but the fallback refused it at
    /// once: it is owed no more.
    pub(crate) fn forget(&mut self, join: usize, id: &Id) {
        let key = id.canonical();
        if self.by_id.get(&key) == Some(&join) {
            self.by_id.remove(&key);
            if let Some(j) = self.open.get_mut(join).and_then(Option::as_mut) {
                j.waiting -= 1;
            }
        }
    }

    /// The forward pass is over: keep the batch for its answer pass.
    pub(crate) fn walked(&mut self, join: usize, members: BatchCursor) {
        if let Some(j) = self.open.get_mut(join).and_then(Option::as_mut) {
            self.text_bytes += members.frame_len();
            j.members = Some(members);
        }
        self.ready_if_complete(join);
    }

    /// An answer for `id` arrived (`piece`: one response, no `\n`). Returns
    /// false when no batch owes it (the caller sends it as a frame).
    pub(crate) fn deliver(&mut self, id: &Id, piece: &[u8]) -> bool {
        if self.by_id.is_empty() {
            return false;
        }
        let Some(join) = self.by_id.remove(&*id.canonical_cow()) else {
            return false;
        };
        // With its separator and the array's closing bytes.
        let piece = if self.answer_bytes + piece.len() + 3 <= self.budget {
            piece.to_vec()
        } else {
            over_budget(id, piece.len(), self.budget)
        };
        if let Some(j) = self.open.get_mut(join).and_then(Option::as_mut) {
            self.answer_bytes += piece.len();
            j.kept.push_back(piece);
            j.waiting -= 1;
        }
        self.ready_if_complete(join);
        true
    }

    /// True when a batch has every answer and waits for its answer pass.
    #[inline]
    pub(crate) fn has_ready(&self) -> bool {
        !self.ready.is_empty()
    }

    /// The oldest batch ready for its answer pass, if any.
    pub(crate) fn next_ready(&mut self) -> Option<Ready> {
        let mut ready = self.ready.pop_front()?;
        self.text_bytes -= ready.members.frame_len();
        ready.members.rewind();
        Some(ready)
    }

    /// A kept answer left for the queue: it no longer counts here.
    pub(crate) fn released(&mut self, piece: &[u8]) {
        self.answer_bytes -= piece.len();
    }

    fn ready_if_complete(&mut self, join: usize) {
        let Some(slot) = self.open.get_mut(join) else {
            return;
        };
        if !slot
            .as_ref()
            .is_some_and(|j| j.members.is_some() && j.waiting == 0)
        {
            return;
        }
        let j = slot.take().expect("checked above");
        self.ready.push_back(Ready {
            members: j.members.expect("checked above"),
            kept: j.kept,
            refused: j.refused,
        });
    }
}

/// The answer kept for `id` when the fallback's answer would pass the
/// budget: a `-32001` of about a hundred bytes.
fn over_budget(id: &Id, len: usize, budget: usize) -> Vec<u8> {
    let error = RpcError::new(
        ErrorCode::Overloaded,
        format!(
            "the answer ({len} bytes) does not fit in the {budget} bytes a batch's answers may hold (--outbound-hard-limit); ask for less in one batch"
        ),
    )
    .with_data(serde_json::json!({"limit": budget}));
    let mut piece = Vec::with_capacity(160);
    write_response(&mut piece, id, &Err(error));
    piece
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::wire::{open, Opened};

    fn cursor(text: &str) -> BatchCursor {
        match open(text.as_bytes()) {
            Opened::Batch(cursor) => cursor,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_batch_is_ready_once_walked_and_every_owed_answer_is_in() {
        let mut joins = Joins::new(1 << 20);
        let j = joins.start();
        assert!(joins.expect(j, &Id::number("2.50")));
        assert!(!joins.expect(j, &Id::number("2.5")), "same id in flight");
        joins.walked(j, cursor(r#"[{"a":1},{"b":2}]"#));
        assert!(joins.next_ready().is_none(), "waits for the answer");
        assert!(!joins.deliver(&Id::from(7), b"{}"));
        // A backend may write 2.50 back as 2.5: still the same id.
        assert!(joins.deliver(&Id::number("2.5"), br#"{"id":2.5}"#));
        assert_eq!(joins.answer_bytes(), 10);
        let mut ready = joins.next_ready().expect("ready");
        assert_eq!(ready.kept, [br#"{"id":2.5}"#.to_vec()]);
        assert_eq!(ready.members.next_member(), Some(r#"{"a":1}"#), "rewound");
        assert!(joins.is_empty());
        joins.released(&ready.kept[0]);
        assert_eq!(joins.answer_bytes(), 0);
    }

    #[test]
    fn a_refused_member_is_no_longer_owed_and_keeps_its_error() {
        let mut joins = Joins::new(1 << 20);
        let j = joins.start();
        assert!(joins.expect(j, &Id::from(1)));
        joins.forget(j, &Id::from(1));
        joins.refuse(j, 0, RpcError::invalid_request("no"));
        joins.walked(j, cursor("[1]"));
        let ready = joins.next_ready().expect("nothing owed");
        assert_eq!(ready.refused.len(), 1);
        assert_eq!(ready.refused[0].0, 0);
    }

    #[test]
    fn an_answer_past_the_budget_is_kept_as_a_small_overloaded_error() {
        let mut joins = Joins::new(100);
        let j = joins.start();
        assert!(joins.expect(j, &Id::from(1)));
        joins.walked(j, cursor("[1]"));
        let big = vec![b'x'; 1000];
        assert!(joins.deliver(&Id::from(1), &big));
        let ready = joins.next_ready().unwrap();
        let text = String::from_utf8(ready.kept[0].clone()).unwrap();
        assert!(text.contains("-32001") && text.len() < 300, "{text}");
    }
}
