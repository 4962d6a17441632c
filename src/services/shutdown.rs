//! The termination timeline a service follows for its children during a
//! drain: SIGTERM, then SIGKILL, each once, both before the drain's
//! deadline. Shared by `process.*` and the backend bridge.

use std::time::{Duration, Instant};

use crate::engine::lifecycle::Drain;

/// How long before the drain deadline a gentle timeline sends SIGTERM.
/// 300 ms lets a well-behaved child run its handler and exit; capped at half
/// the grace so a short grace still leaves the child most of it to finish
/// on its own.
const TERM_LEAD: Duration = Duration::from_millis(300);
/// How long before the deadline SIGKILL comes. 150 ms covers the kill,
/// SIGCHLD, the reap, the last pipe reads and writing the exit events, with
/// margin on a loaded machine; capped at a quarter of the grace so SIGKILL
/// always comes after SIGTERM.
const KILL_LEAD: Duration = Duration::from_millis(150);

/// A signal the timeline says is due.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// SIGTERM.
    Term,
    /// SIGKILL.
    Kill,
}

/// When SIGTERM and SIGKILL are due, and whether they were sent.
#[derive(Debug)]
pub struct Timeline {
    term_at: Instant,
    kill_at: Instant,
    termed: bool,
    killed: bool,
}

impl Timeline {
    /// The timeline of `drain`. `gentle`: children may finish on their own
    /// first, so SIGTERM waits until shortly before the deadline; otherwise
    /// it is due at once (`now`).
    pub fn new(drain: &Drain, now: Instant, gentle: bool) -> Timeline {
        let grace = drain.deadline.saturating_duration_since(drain.started);
        Timeline {
            term_at: if gentle {
                drain.deadline - TERM_LEAD.min(grace / 2)
            } else {
                now
            },
            kill_at: drain.deadline - KILL_LEAD.min(grace / 4),
            termed: false,
            killed: false,
        }
    }

    /// The signal due at `now`, each returned once (SIGKILL when both are).
    pub fn due(&mut self, now: Instant) -> Option<Step> {
        let term = !self.termed && now >= self.term_at;
        let kill = !self.killed && now >= self.kill_at;
        self.termed |= term;
        self.killed |= kill;
        if kill {
            Some(Step::Kill)
        } else if term {
            Some(Step::Term)
        } else {
            None
        }
    }

    /// When the next signal is due, if one is left.
    pub fn next_deadline(&self) -> Option<Instant> {
        match (self.termed, self.killed) {
            (false, _) => Some(self.term_at),
            (true, false) => Some(self.kill_at),
            (true, true) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::lifecycle::Cause;

    fn drain(t0: Instant, grace_ms: u64) -> Drain {
        Drain {
            cause: Cause::StdinEof,
            started: t0,
            deadline: t0 + Duration::from_millis(grace_ms),
            code: 0,
            reason: String::new(),
        }
    }

    #[test]
    fn term_then_kill_once_each_before_the_deadline() {
        let t0 = Instant::now();
        let ms = |n| t0 + Duration::from_millis(n);
        let mut gentle = Timeline::new(&drain(t0, 1000), t0, true);
        assert_eq!(gentle.next_deadline(), Some(ms(700)));
        assert_eq!(gentle.due(ms(699)), None);
        assert_eq!(gentle.due(ms(700)), Some(Step::Term));
        assert_eq!(gentle.due(ms(700)), None);
        assert_eq!(gentle.next_deadline(), Some(ms(850)));
        assert_eq!(gentle.due(ms(900)), Some(Step::Kill));
        assert_eq!(gentle.next_deadline(), None);

        let mut at_once = Timeline::new(&drain(t0, 1000), t0, false);
        assert_eq!(at_once.due(t0), Some(Step::Term));
        // A short grace: SIGTERM at half of it, SIGKILL at three quarters.
        let mut short = Timeline::new(&drain(t0, 200), t0, true);
        assert_eq!(short.next_deadline(), Some(ms(100)));
        assert_eq!(short.due(ms(160)), Some(Step::Kill), "both due: SIGKILL");
    }
}
