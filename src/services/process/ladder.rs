//! The cancel ladder: how a process is stopped when the client cancels it,
//! its timeout passes or an output limit with `"kill"` is reached. Each
//! step sends a signal to the whole tree and waits for it to end before the
//! next; [`Cancelling`] walks the steps on the engine's clock and holds the
//! `process.cancel` requests that wait for the end (`docs/process.md`,
//! "The cancel ladder").

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::params::{bad, integer, kind, signal_number};
use crate::engine::service::Owed;
use crate::engine::wire::RpcError;
use crate::signal_name;

/// Most steps in a ladder.
pub(crate) const MAX_STEPS: usize = 8;
/// Longest wait after a step: an hour.
pub(crate) const MAX_WAIT_MS: u64 = 3_600_000;

/// One step: a signal, and how long to wait for the tree to end before
/// the next step (`None` only on the last).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Step {
    /// The signal number.
    pub(crate) signal: i32,
    /// Milliseconds to wait before the next step.
    pub(crate) wait_ms: Option<u64>,
}

/// 1 to [`MAX_STEPS`] steps; every step but the last has a wait.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Ladder {
    steps: Vec<Step>,
}

impl Default for Ladder {
    /// `[["SIGINT", 2000], ["SIGTERM", 3000], ["SIGKILL"]]`
    fn default() -> Ladder {
        Ladder {
            steps: vec![
                Step {
                    signal: libc::SIGINT,
                    wait_ms: Some(2000),
                },
                Step {
                    signal: libc::SIGTERM,
                    wait_ms: Some(3000),
                },
                Step {
                    signal: libc::SIGKILL,
                    wait_ms: None,
                },
            ],
        }
    }
}

impl Ladder {
    /// Reads a ladder given as param `name`: `[[signal, wait_ms], ..., [signal]]`.
    pub(crate) fn from_param(name: &str, value: Value) -> Result<Ladder, RpcError> {
        let shape = "an array of 1 to 8 steps [signal, wait_ms], the last one [signal]";
        let Value::Array(items) = value else {
            return Err(bad(format!("{name} must be {shape}, got {}", kind(&value))));
        };
        if items.is_empty() || items.len() > MAX_STEPS {
            return Err(bad(format!(
                "{name} must be {shape}, got {} steps",
                items.len()
            )));
        }
        let last = items.len() - 1;
        let mut steps = Vec::with_capacity(items.len());
        for (i, item) in items.into_iter().enumerate() {
            let at = format!("{name}[{i}]");
            let Value::Array(parts) = item else {
                return Err(bad(format!(
                    "{at} must be a step [signal, wait_ms], got {}",
                    kind(&item)
                )));
            };
            let (signal, wait) = match parts.as_slice() {
                [signal] => (signal, None),
                [signal, wait] => (signal, Some(wait)),
                _ => {
                    return Err(bad(format!(
                        "{at} must be [signal, wait_ms] or, last, [signal]; got {} elements",
                        parts.len()
                    )))
                }
            };
            let signal = signal_number(&format!("{at}[0]"), signal)?;
            let wait_ms = match wait {
                Some(w) => Some(integer(&format!("{at}[1]"), w, 0, MAX_WAIT_MS)?),
                None if i < last => {
                    return Err(bad(format!(
                        "{at} needs a wait: [signal, wait_ms] (only the last step may omit it)"
                    )))
                }
                None => None,
            };
            steps.push(Step { signal, wait_ms });
        }
        Ok(Ladder { steps })
    }

    /// The steps, in order.
    pub(crate) fn steps(&self) -> &[Step] {
        &self.steps
    }

    /// As the client would write it, with signal names.
    pub(crate) fn to_json(&self) -> Value {
        Value::Array(
            self.steps
                .iter()
                .map(|s| match s.wait_ms {
                    Some(w) => json!([signal_name::name(s.signal), w]),
                    None => json!([signal_name::name(s.signal)]),
                })
                .collect(),
        )
    }
}

/// A ladder being walked for one process.
#[derive(Debug)]
pub(crate) struct Cancelling {
    ladder: Ladder,
    /// The index of the step sent last.
    sent: usize,
    /// When the next step is due; `None` after the last step.
    next_at: Option<Instant>,
    /// `process.cancel` requests waiting for the tree to end.
    owed: Vec<Owed>,
}

impl Cancelling {
    /// Starts walking `ladder` at `now`: the caller sends step 0 at once.
    pub(crate) fn start(ladder: Ladder, now: Instant) -> Cancelling {
        let mut cancelling = Cancelling {
            ladder,
            sent: 0,
            next_at: None,
            owed: Vec::new(),
        };
        cancelling.schedule(now);
        cancelling
    }

    fn schedule(&mut self, now: Instant) {
        let steps = self.ladder.steps();
        self.next_at = match steps[self.sent].wait_ms {
            Some(wait) if self.sent + 1 < steps.len() => Some(now + Duration::from_millis(wait)),
            _ => None,
        };
    }

    /// The first step.
    pub(crate) fn first(&self) -> Step {
        self.ladder.steps()[0]
    }

    /// The next step, if it is due at `now`: it becomes the step sent last.
    pub(crate) fn due(&mut self, now: Instant) -> Option<Step> {
        if self.next_at? > now {
            return None;
        }
        self.sent += 1;
        self.schedule(now);
        Some(self.ladder.steps()[self.sent])
    }

    /// When the next step is due.
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        self.next_at
    }

    /// Another request waits for the end.
    pub(crate) fn owe(&mut self, owed: Owed) {
        self.owed.push(owed);
    }

    /// The tree ended: the requests to answer, and the answer's `step` and
    /// `signal` (the step sent last).
    pub(crate) fn finish(self) -> (Vec<Owed>, usize, i32) {
        let signal = self.ladder.steps()[self.sent].signal;
        (self.owed, self.sent, signal)
    }

    /// The gateway exits and writes nothing more: the waiting requests
    /// cannot be answered.
    pub(crate) fn abandon(self) {
        for owed in self.owed {
            owed.abandon();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(value: Value) -> String {
        Ladder::from_param("ladder", value).unwrap_err().message
    }

    #[test]
    fn a_ladder_reads_names_numbers_and_waits() {
        let ladder = Ladder::from_param("ladder", json!([["SIGTERM", 0], [9]])).expect("valid");
        assert_eq!(
            ladder.steps(),
            &[
                Step {
                    signal: libc::SIGTERM,
                    wait_ms: Some(0)
                },
                Step {
                    signal: libc::SIGKILL,
                    wait_ms: None
                }
            ]
        );
        assert_eq!(ladder.to_json(), json!([["SIGTERM", 0], ["SIGKILL"]]));
        assert_eq!(
            Ladder::default().to_json(),
            json!([["SIGINT", 2000], ["SIGTERM", 3000], ["SIGKILL"]])
        );
    }

    #[test]
    fn a_bad_ladder_is_refused_naming_the_step() {
        assert!(refused(json!([])).contains("got 0 steps"));
        assert!(refused(Value::Array(vec![json!(["SIGINT", 1]); 9])).contains("got 9 steps"));
        assert!(refused(json!([["SIGNOPE"]])).contains("ladder[0][0]"));
        assert!(refused(json!([[0]])).contains("out of range"));
        assert!(refused(json!([["SIGINT", -1], ["SIGKILL"]])).contains("ladder[0][1]"));
        assert!(refused(json!([["SIGINT", 3_600_001], ["SIGKILL"]])).contains("3600000"));
        assert!(refused(json!([["SIGINT"], ["SIGKILL"]])).contains("needs a wait"));
        assert!(refused(json!([["SIGINT", 1, 2]])).contains("3 elements"));
        assert!(refused(json!("SIGKILL")).contains("got a string"));
        assert!(refused(json!([{"signal": "SIGKILL"}])).contains("got an object"));
    }

    #[test]
    fn steps_come_due_on_the_clock_and_the_last_has_no_deadline() {
        let t0 = Instant::now();
        let mut c = Cancelling::start(Ladder::default(), t0);
        assert_eq!(c.first().signal, libc::SIGINT);
        assert_eq!(c.next_deadline(), Some(t0 + Duration::from_millis(2000)));
        assert_eq!(c.due(t0 + Duration::from_millis(1999)), None);
        let step = c.due(t0 + Duration::from_millis(2000)).expect("due");
        assert_eq!(step.signal, libc::SIGTERM);
        let later = t0 + Duration::from_millis(5000);
        assert_eq!(c.due(later).map(|s| s.signal), Some(libc::SIGKILL));
        assert_eq!(c.next_deadline(), None);
        assert_eq!(c.due(later + Duration::from_secs(60)), None);
        let (owed, step, signal) = c.finish();
        assert!(owed.is_empty());
        assert_eq!((step, signal), (2, libc::SIGKILL));
    }
}
