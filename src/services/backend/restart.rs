//! When a backend that ended is started again: the policy, an exponential
//! backoff from 250 ms to 10 s, and at most 5 restarts in any minute.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::config::RestartPolicy;
use crate::engine::host::ExitStatus;

/// The first restart's delay; each consecutive one doubles it.
pub(crate) const BACKOFF_MIN: Duration = Duration::from_millis(250);
/// The longest delay.
pub(crate) const BACKOFF_MAX: Duration = Duration::from_secs(10);
/// Most restarts in [`WINDOW`].
pub(crate) const MAX_PER_WINDOW: usize = 5;
/// The window restarts are counted in.
pub(crate) const WINDOW: Duration = Duration::from_secs(60);
/// A backend that ran this long before ending starts the backoff afresh.
pub(crate) const STABLE_AFTER: Duration = Duration::from_secs(10);

/// The restart bookkeeping of one bridge.
#[derive(Debug)]
pub(crate) struct Restarts {
    policy: RestartPolicy,
    recent: VecDeque<Instant>,
    consecutive: u32,
    total: u64,
}

impl Restarts {
    /// Restarts under `policy`.
    pub(crate) fn new(policy: RestartPolicy) -> Restarts {
        Restarts {
            policy,
            recent: VecDeque::new(),
            consecutive: 0,
            total: 0,
        }
    }

    /// Restarts so far.
    pub(crate) fn total(&self) -> u64 {
        self.total
    }

    /// A backend started at `started` ended with `status` at `now`: when to
    /// start the next one, or `None` if it is gone for good.
    pub(crate) fn after_exit(
        &mut self,
        status: ExitStatus,
        started: Instant,
        now: Instant,
    ) -> Option<Instant> {
        let wanted = match self.policy {
            RestartPolicy::Never => false,
            RestartPolicy::OnFailure => status != ExitStatus::Code(0),
            RestartPolicy::Always => true,
        };
        if !wanted {
            return None;
        }
        while self
            .recent
            .front()
            .is_some_and(|t| now.duration_since(*t) >= WINDOW)
        {
            self.recent.pop_front();
        }
        if self.recent.len() >= MAX_PER_WINDOW {
            return None;
        }
        if now.duration_since(started) >= STABLE_AFTER {
            self.consecutive = 0;
        }
        let delay = BACKOFF_MIN
            .saturating_mul(1 << self.consecutive.min(6))
            .min(BACKOFF_MAX);
        self.consecutive += 1;
        self.total += 1;
        self.recent.push_back(now);
        Some(now + delay)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_decides_and_backoff_doubles_up_to_the_rate_limit() {
        let t0 = Instant::now();
        let mut never = Restarts::new(RestartPolicy::Never);
        assert_eq!(never.after_exit(ExitStatus::Code(1), t0, t0), None);
        let mut on_failure = Restarts::new(RestartPolicy::OnFailure);
        assert_eq!(on_failure.after_exit(ExitStatus::Code(0), t0, t0), None);

        let mut always = Restarts::new(RestartPolicy::Always);
        let delays: Vec<Duration> = (0..5)
            .map(|_| always.after_exit(ExitStatus::Code(0), t0, t0).unwrap() - t0)
            .collect();
        assert_eq!(
            delays,
            [250, 500, 1000, 2000, 4000].map(Duration::from_millis)
        );
        assert_eq!(
            always.after_exit(ExitStatus::Signal(9), t0, t0),
            None,
            "5 a minute"
        );
        // A minute later there is room again; a backend that ran long starts
        // the backoff afresh.
        let later = t0 + WINDOW + Duration::from_secs(1);
        assert_eq!(
            always.after_exit(ExitStatus::Code(1), t0, later),
            Some(later + BACKOFF_MIN)
        );
        assert_eq!(always.total(), 6);
    }
}
