//! What the backend owes: every request forwarded and not yet answered, by
//! id, and, once the backend is gone, the answers it will never give, paid
//! to the client in order as the outbound queue has room.
//!
//! Ids are matched by value ([`Id::canonical`]): a backend that writes
//! `2.50` back as `2.5` still answers the request, and the client gets its
//! answer under the id as it wrote it. Integer ids, the common case, are
//! keys without allocation.

use std::collections::{HashMap, VecDeque};

// FxHash: ids are short and chosen by the client, which is not an adversary
// of its own gateway, so a fast hash beats SipHash's flood resistance here (a
// pipelined burst keeps 100,000 ids in the map); an integer id is one multiply.
use rustc_hash::FxBuildHasher;

use serde_json::Value;

use crate::engine::wire::{Id, RpcError};

/// Requests the backend owes under one id.
#[derive(Debug)]
struct Pending {
    /// The id as the client wrote it, when its canonical form (the key)
    /// does not give it back (`-0`, `2.50`, `1e2`).
    written: Option<Id>,
    count: u32,
}

impl Pending {
    fn new(id: &Id) -> Pending {
        let exact = matches!(id.canonical_cow(), std::borrow::Cow::Borrowed(_));
        Pending {
            written: (!exact).then(|| id.clone()),
            count: 0,
        }
    }

    /// The id to answer under.
    fn id(&self, key: &Id) -> Id {
        self.written.clone().unwrap_or_else(|| key.clone())
    }
}

/// Answers the backend will never give, paid to the client as the outbound
/// queue has room (a paced producer like any other: a crash with half a
/// million requests pending must not queue half a million errors at once),
/// then the event that says why, after the last of them.
#[derive(Debug)]
struct Owed {
    /// The requests, as the client wrote their ids, and how many under each.
    ids: std::collections::VecDeque<(Id, u32)>,
    /// What each of them gets: `-32002` (the backend ended) or `-32000`
    /// (the gateway shut down before a restart).
    error: RpcError,
    /// `backend.exited`, sent once every answer above is queued.
    then: Option<Value>,
}

/// One step of [`Ledger::pay`].
#[derive(Debug)]
pub(crate) enum Payment<'a> {
    /// Answer this request with this error (return false: no room now).
    Answer(&'a Id, &'a RpcError),
    /// The event that follows a group's last answer.
    Then(Value),
}

/// The requests the backend owes, and the answers owed for it.
#[derive(Debug, Default)]
pub(crate) struct Ledger {
    /// Integer ids written as their value (the common case: `"id": 7`),
    /// and how many are in flight under each: an integer set, no `Id`.
    ints: HashMap<i64, u32, FxBuildHasher>,
    /// Every other id, by canonical id: the id as the client wrote it, and
    /// how many are in flight under it.
    pending: HashMap<Id, Pending, FxBuildHasher>,
    /// Requests in `pending`, counted (at most `--backend-max-pending`).
    count: usize,
    /// Answers owed for requests no backend will answer, oldest first.
    owed: VecDeque<Owed>,
}

impl Ledger {
    /// Requests forwarded and not answered.
    pub(crate) fn pending(&self) -> usize {
        self.count
    }

    /// True while answers owed for a gone backend wait to be paid.
    pub(crate) fn owes(&self) -> bool {
        !self.owed.is_empty()
    }

    /// A request was forwarded: the backend owes its answer.
    pub(crate) fn expect(&mut self, id: &Id) {
        self.count += 1;
        if let Id::Int(n) = id {
            *self.ints.entry(*n).or_insert(0) += 1;
            return;
        }
        self.pending
            .entry(id.canonical())
            .or_insert_with(|| Pending::new(id))
            .count += 1;
    }

    /// A request was answered: it no longer waits for the backend.
    pub(crate) fn settle(&mut self, id: &Id) {
        let key = id.canonical_cow();
        // An integer value (`7`, or `7.0` written back for `7`) is looked
        // for in the integer set first.
        if let Id::Int(n) = &*key {
            if let Some(count) = self.ints.get_mut(n) {
                self.count -= 1;
                *count -= 1;
                if *count == 0 {
                    self.ints.remove(n);
                }
                return;
            }
        }
        if let Some(pending) = self.pending.get_mut(&*key) {
            self.count -= 1;
            pending.count -= 1;
            if pending.count == 0 {
                self.pending.remove(&*key);
            }
        }
    }

    /// Every pending request will get `error` instead of the backend's
    /// answer; `then` (an event payload) follows the last of them.
    pub(crate) fn owe_all(&mut self, error: RpcError, then: Option<Value>) {
        self.count = 0;
        let ints = self.ints.drain().map(|(n, count)| (Id::Int(n), count));
        let ids = self
            .pending
            .drain()
            .map(|(key, pending)| (pending.id(&key), pending.count))
            .chain(ints)
            .collect();
        self.owed.push_back(Owed { ids, error, then });
    }

    /// Pays owed answers oldest first through `to`, which returns false
    /// for an answer when the queue has no room (then the rest waits for
    /// the next call); each group's event follows its last answer.
    pub(crate) fn pay(&mut self, mut to: impl FnMut(Payment<'_>) -> bool) {
        while let Some(group) = self.owed.front_mut() {
            while let Some((id, count)) = group.ids.front_mut() {
                if !to(Payment::Answer(id, &group.error)) {
                    return;
                }
                *count -= 1;
                if *count == 0 {
                    group.ids.pop_front();
                }
            }
            let group = self.owed.pop_front().expect("the front group");
            if let Some(payload) = group.then {
                to(Payment::Then(payload));
            }
        }
    }

    /// Requests owed an answer, pending or owed.
    pub(crate) fn unanswered(&self) -> u64 {
        let pending: u64 = self
            .pending
            .values()
            .map(|p| u64::from(p.count))
            .sum::<u64>()
            + self.ints.values().map(|&n| u64::from(n)).sum::<u64>();
        let owed: u64 = self
            .owed
            .iter()
            .flat_map(|g| g.ids.iter().map(|(_, n)| u64::from(*n)))
            .sum();
        pending + owed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pending_id_is_answered_under_the_bytes_the_client_wrote() {
        for text in ["7", "-0", "2.50", "1e2", "12345678901234567890123", "-42"] {
            let id = Id::number(text);
            let key = id.canonical();
            assert_eq!(Pending::new(&id).id(&key), id, "{text}");
        }
        let id = Id::Str("r1".into());
        assert_eq!(Pending::new(&id).id(&id.canonical()), id);
        // The backend may write a number back in another form: same key.
        let key = |t: &str| Id::number(t).canonical();
        assert_eq!(key("2.50"), key("2.5"));
        assert_eq!(key("-0"), key("0"));
        assert_eq!(key("1e2"), key("100"));
        assert_ne!(key("7"), Id::Str("7".into()).canonical());
        // Integers need no allocation and no copy of the id.
        assert_eq!(key("7"), Id::Int(7));
        assert!(Pending::new(&Id::number("7")).written.is_none());
    }

    #[test]
    fn an_integer_id_is_settled_by_its_value_in_any_form() {
        let mut ledger = Ledger::default();
        for id in ["7", "100", "1e2", "-3"] {
            ledger.expect(&Id::number(id));
        }
        assert_eq!(ledger.pending(), 4);
        for answer in ["7.0", "100", "100.0", "-3"] {
            ledger.settle(&Id::number(answer));
        }
        assert_eq!((ledger.pending(), ledger.unanswered()), (0, 0));
        ledger.expect(&Id::Int(7));
        ledger.settle(&Id::Int(8));
        ledger.settle(&Id::Str("7".into()));
        assert_eq!(
            ledger.pending(),
            1,
            "an answer to no pending id settles nothing"
        );
    }

    #[test]
    fn owed_answers_are_paid_in_order_as_room_allows_then_the_event() {
        let mut ledger = Ledger::default();
        for id in ["1", "2.50", "1"] {
            ledger.expect(&Id::number(id));
        }
        ledger.settle(&Id::number("2.5"));
        assert_eq!((ledger.pending(), ledger.unanswered()), (2, 2));
        ledger.owe_all(RpcError::invalid_request("gone"), Some(Value::from(7)));
        assert_eq!((ledger.pending(), ledger.unanswered()), (0, 2));
        let (mut paid, mut events, mut room) = (Vec::new(), Vec::new(), 1);
        let mut pay = |ledger: &mut Ledger, room: &mut usize| {
            ledger.pay(|payment| match payment {
                Payment::Answer(id, _) => {
                    if *room == 0 {
                        return false;
                    }
                    *room -= 1;
                    paid.push(id.clone());
                    true
                }
                Payment::Then(payload) => {
                    events.push(payload);
                    true
                }
            })
        };
        pay(&mut ledger, &mut room);
        assert!(ledger.owes(), "one answer paid, one waits for room");
        room = 5;
        pay(&mut ledger, &mut room);
        assert!(!ledger.owes());
        assert_eq!(paid, vec![Id::Int(1); 2]);
        assert_eq!(events, vec![Value::from(7)]);
    }
}
