//! Batch answers joined from several sources: members the gateway answers
//! itself and members a fallback service answers later.
//!
//! A batch with forwarded members cannot be streamed into the outbound queue
//! member by member: its forwarded answers arrive later, interleaved with
//! other frames. So its answer is built here, off the queue: local answers
//! go in as they are made, forwarded ones as they arrive (by id), and the
//! whole array is queued as one frame when the last one is in. Every piece
//! is admitted against the queue's room, like any answer; one that would
//! not fit is replaced by a `-32001` error for its id.

use std::collections::HashMap;
use std::time::Instant;

use super::message::{write_response, ErrorCode, Id, RpcError};
use super::outbound::Outbound;

/// Batch answers being joined.
#[derive(Debug, Default)]
pub struct Joins {
    open: Vec<Option<Join>>,
    /// Forwarded ids still owed, by their canonical form.
    by_id: HashMap<Id, usize>,
}

#[derive(Debug, Default)]
struct Join {
    /// The array's members so far, comma-separated, without brackets.
    body: Vec<u8>,
    /// Forwarded answers still owed.
    waiting: usize,
    /// Every member was walked.
    walked: bool,
}

impl Joins {
    /// Opens the answer of a new batch; returns its handle.
    pub fn start(&mut self) -> usize {
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

    /// True while batches wait for forwarded answers.
    pub fn is_empty(&self) -> bool {
        self.open.iter().all(Option::is_none)
    }

    /// Adds an answer the gateway made (`piece`: one response, no `\n`).
    pub fn add(&mut self, join: usize, id: &Id, piece: &[u8], out: &Outbound) {
        if let Some(j) = self.open.get_mut(join).and_then(Option::as_mut) {
            append(j, id, piece, out);
        }
    }

    /// Records that `id` is owed by the fallback. False if an answer for
    /// that id is already owed to a batch: the member must be refused, or
    /// its answer could not be told from the other one's.
    pub fn expect(&mut self, join: usize, id: &Id) -> bool {
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

    /// Every member of the batch was walked: queue its answer if nothing is owed.
    pub fn walked(&mut self, join: usize, out: &mut Outbound, now: Instant) {
        if let Some(j) = self.open.get_mut(join).and_then(Option::as_mut) {
            j.walked = true;
        }
        self.finish_if_complete(join, out, now);
    }

    /// An answer for `id` arrived (`piece`: one response, no `\n`). Returns
    /// false when no batch owes it (the caller sends it as a frame).
    pub fn deliver(&mut self, id: &Id, piece: &[u8], out: &mut Outbound, now: Instant) -> bool {
        if self.by_id.is_empty() {
            return false;
        }
        let Some(join) = self.by_id.remove(&*id.canonical_cow()) else {
            return false;
        };
        if let Some(j) = self.open.get_mut(join).and_then(Option::as_mut) {
            append(j, id, piece, out);
            j.waiting -= 1;
        }
        self.finish_if_complete(join, out, now);
        true
    }

    fn finish_if_complete(&mut self, join: usize, out: &mut Outbound, now: Instant) {
        let Some(slot) = self.open.get_mut(join) else {
            return;
        };
        if !slot.as_ref().is_some_and(|j| j.walked && j.waiting == 0) {
            return;
        }
        let j = slot.take().expect("checked above");
        if j.body.is_empty() {
            // Only notifications: no answer at all, as JSON-RPC 2.0 says.
            return;
        }
        let mut frame = Vec::with_capacity(j.body.len() + 3);
        frame.push(b'[');
        frame.extend_from_slice(&j.body);
        frame.extend_from_slice(b"]\n");
        // Every piece was admitted against the room when it came in.
        let _ = out.push_frame(frame, now);
    }
}

/// Appends one member, or a `-32001` error for its id when it would not fit
/// in the room left below the hard limit (counting the other open answers'
/// bytes would need a shared counter; each is bounded by the room alone).
fn append(j: &mut Join, id: &Id, piece: &[u8], out: &Outbound) {
    let room = out.room().saturating_sub(j.body.len() + 3);
    if !j.body.is_empty() {
        j.body.push(b',');
    }
    if piece.len() < room {
        j.body.extend_from_slice(piece);
    } else {
        let error = RpcError::new(
            ErrorCode::Overloaded,
            format!(
                "the answer ({} bytes) is larger than the {room} bytes left below the outbound hard limit (--outbound-hard-limit); ask for less",
                piece.len()
            ),
        )
        .with_data(serde_json::json!({"limit": room}));
        write_response(&mut j.body, id, &Err(error));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::outbound::Limits;
    use std::time::Duration;

    fn queue() -> Outbound {
        Outbound::new(Limits {
            soft_bytes: 1 << 20,
            soft_duration: Duration::from_secs(10),
            hard_bytes: 4 << 20,
            stall_timeout: Duration::from_secs(10),
            coalesce_cap: 64,
            high_water: 2 << 20,
            low_water: 1 << 20,
        })
    }

    fn drain(out: &mut Outbound, now: Instant) -> String {
        let mut all = Vec::new();
        while !out.is_empty() {
            let _ = out.write_with(now, |slices| -> Result<usize, ()> {
                let n: usize = slices.iter().map(|s| s.len()).sum();
                for s in slices {
                    all.extend_from_slice(s);
                }
                Ok(n)
            });
        }
        String::from_utf8(all).unwrap()
    }

    #[test]
    fn local_and_late_answers_join_into_one_array_once_all_are_in() {
        let now = Instant::now();
        let mut out = queue();
        let mut joins = Joins::default();
        let j = joins.start();
        joins.add(j, &Id::from(1), br#"{"id":1}"#, &out);
        assert!(joins.expect(j, &Id::Number("2.50".into())));
        assert!(
            !joins.expect(j, &Id::Number("2.5".into())),
            "same id in flight"
        );
        joins.walked(j, &mut out, now);
        assert!(out.is_empty(), "waits for the forwarded answer");
        assert!(!joins.deliver(&Id::from(7), b"{}", &mut out, now));
        // A backend may write 2.50 back as 2.5: still the same id.
        assert!(joins.deliver(&Id::Number("2.5".into()), br#"{"id":2.5}"#, &mut out, now));
        assert_eq!(drain(&mut out, now), "[{\"id\":1},{\"id\":2.5}]\n");
        assert!(joins.is_empty());
    }

    #[test]
    fn a_batch_of_notifications_gets_no_answer() {
        let now = Instant::now();
        let mut out = queue();
        let mut joins = Joins::default();
        let j = joins.start();
        joins.walked(j, &mut out, now);
        assert!(out.is_empty() && joins.is_empty());
    }
}
