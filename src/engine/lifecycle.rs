//! The shutdown state machine: `Running → Draining { deadline, reason } → Done { code, reason }`.
//!
//! Draining lets in-flight work finish and queued output leave, bounded by a
//! deadline fixed when draining starts. The deadline is absolute: nothing that
//! happens later (a busy child, a full pipe) moves it. A second termination
//! signal, or the deadline itself, ends the drain at once.

use std::time::{Duration, Instant};

/// Process exit codes, as documented in `--help` and the README.
pub mod exit_code {
    /// Orderly exit: everything drained.
    pub const ORDERLY: i32 = 0;
    /// The stdout reader is gone, stalled or too slow.
    pub const PEER_GONE: i32 = 3;
    /// The shutdown deadline forced the exit before draining finished.
    pub const FORCED: i32 = 4;
    /// Bad command line (`EX_USAGE`).
    pub const USAGE: i32 = 64;
    /// The backend command cannot be started (`EX_UNAVAILABLE`).
    pub const UNAVAILABLE: i32 = 69;
    /// Internal error: a panic (`EX_SOFTWARE`).
    pub const INTERNAL: i32 = 70;
    /// Host I/O error other than a disconnect (`EX_IOERR`).
    pub const IO_ERROR: i32 = 74;
}

/// Why the gateway is shutting down.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cause {
    /// Stdin reached EOF.
    StdinEof,
    /// A `gateway.shutdown` request.
    Requested,
    /// SIGTERM, SIGHUP (or SIGINT with `--sigint shutdown`), by name.
    Signal(&'static str),
    /// The process that spawned the gateway exited.
    ParentExited,
    /// Stdout's reader closed its end.
    PeerGone,
    /// Stdout's reader stopped reading (a limit was passed); the text says which.
    SlowReader(String),
    /// Writing stdout failed for a reason that is not a disconnect.
    OutputError(String),
    /// A `gateway.end` request: the session ends.
    SessionEnded,
    /// A detached session had nothing running for its linger; the text
    /// says for how long.
    SessionIdle(String),
    /// The backend ended for good; the gateway exits with its status
    /// (`code`: the exit code, or 128 + the signal).
    BackendGone {
        /// The exit code to pass on.
        code: i32,
        /// How it ended, for the exit reason.
        reason: String,
    },
}

impl Cause {
    /// The exit code an orderly drain for this cause ends with.
    pub fn exit_code(&self) -> i32 {
        match self {
            Cause::PeerGone | Cause::SlowReader(_) => exit_code::PEER_GONE,
            Cause::OutputError(_) => exit_code::IO_ERROR,
            Cause::BackendGone { code, .. } => *code,
            _ => exit_code::ORDERLY,
        }
    }

    /// True for causes after which stdout must never be written again.
    pub fn output_lost(&self) -> bool {
        matches!(
            self,
            Cause::PeerGone | Cause::SlowReader(_) | Cause::OutputError(_)
        )
    }

    /// The reason recorded in `[gateway-exit]` and the crash log.
    pub fn reason(&self) -> String {
        match self {
            Cause::StdinEof => "stdin EOF".into(),
            Cause::Requested => "gateway.shutdown request".into(),
            Cause::Signal(name) => format!("signal {name}"),
            Cause::ParentExited => "parent exited".into(),
            Cause::SessionIdle(text) => text.clone(),
            Cause::SessionEnded => "gateway.end request".into(),
            Cause::PeerGone => "stdout peer gone".into(),
            Cause::SlowReader(why) => why.clone(),
            Cause::OutputError(why) => why.clone(),
            Cause::BackendGone { reason, .. } => reason.clone(),
        }
    }
}

/// An orderly shutdown in progress.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Drain {
    /// What started it.
    pub cause: Cause,
    /// When it started.
    pub started: Instant,
    /// When it ends, drained or not.
    pub deadline: Instant,
    /// The exit code if it finishes in time (a later fatal output error can raise it).
    pub code: i32,
    /// The reason recorded at exit.
    pub reason: String,
}

/// How the gateway ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exit {
    /// The process exit code.
    pub code: i32,
    /// One line for `[gateway-exit]` and the crash log.
    pub reason: String,
}

/// Where the gateway is in its life.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Phase {
    /// Serving.
    Running,
    /// Shutting down, bounded by a deadline.
    Draining(Drain),
    /// Finished; the shell exits with this.
    Done(Exit),
}

/// The lifecycle of one gateway.
#[derive(Debug)]
pub struct Lifecycle {
    grace: Duration,
    phase: Phase,
}

impl Lifecycle {
    /// A running gateway whose drains last at most `grace`.
    pub fn new(grace: Duration) -> Lifecycle {
        Lifecycle {
            grace,
            phase: Phase::Running,
        }
    }

    /// The current phase.
    pub fn phase(&self) -> &Phase {
        &self.phase
    }

    /// The drain in progress, if any.
    pub fn drain(&self) -> Option<&Drain> {
        match &self.phase {
            Phase::Draining(d) => Some(d),
            _ => None,
        }
    }

    /// The exit, once done.
    pub fn exit(&self) -> Option<&Exit> {
        match &self.phase {
            Phase::Done(e) => Some(e),
            _ => None,
        }
    }

    /// Starts draining for `cause`. Returns true if this started a new drain
    /// (services must then be told). While already draining, a fatal output
    /// cause raises the exit code and joins the reason; a second termination
    /// signal ends at once.
    pub fn begin(&mut self, cause: Cause, now: Instant) -> bool {
        match &mut self.phase {
            Phase::Running => {
                self.phase = Phase::Draining(Drain {
                    code: cause.exit_code(),
                    reason: cause.reason(),
                    cause,
                    started: now,
                    deadline: now + self.grace,
                });
                true
            }
            Phase::Draining(drain) => {
                if let Cause::Signal(name) = cause {
                    if matches!(drain.cause, Cause::Signal(_)) {
                        let reason = format!("{}; second {name}: immediate exit", drain.reason);
                        self.phase = Phase::Done(Exit {
                            code: exit_code::FORCED,
                            reason,
                        });
                    }
                } else if let Cause::BackendGone { code, reason } = &cause {
                    // A backend that ended on its own during an orderly
                    // drain (stdin EOF, gateway.shutdown) passes on its status.
                    let own_cause = !matches!(drain.cause, Cause::Signal(_) | Cause::ParentExited)
                        && !drain.cause.output_lost();
                    if own_cause && drain.code == exit_code::ORDERLY && *code != 0 {
                        drain.code = *code;
                        drain.reason = format!("{}; then {reason}", drain.reason);
                    }
                } else if cause.output_lost() && drain.code == exit_code::ORDERLY {
                    drain.code = cause.exit_code();
                    drain.reason = format!("{}; then {}", drain.reason, cause.reason());
                }
                false
            }
            Phase::Done(_) => false,
        }
    }

    /// Ends an orderly drain: everything finished in time.
    pub fn finish(&mut self) {
        if let Phase::Draining(d) = &self.phase {
            self.phase = Phase::Done(Exit {
                code: d.code,
                reason: d.reason.clone(),
            });
        }
    }

    /// Ends a drain whose deadline passed, saying what was left undone.
    pub fn force(&mut self, left: &str) {
        if let Phase::Draining(d) = &self.phase {
            let code = if d.code == exit_code::ORDERLY {
                exit_code::FORCED
            } else {
                d.code
            };
            self.phase = Phase::Done(Exit {
                code,
                reason: format!(
                    "{}; grace of {:.3}s expired with {left}",
                    d.reason,
                    self.grace.as_secs_f64()
                ),
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_signal_ends_at_once_with_forced_code() {
        let t0 = Instant::now();
        let mut l = Lifecycle::new(Duration::from_secs(1));
        assert!(l.begin(Cause::Signal("SIGTERM"), t0));
        assert!(!l.begin(Cause::Signal("SIGHUP"), t0));
        let exit = l.exit().unwrap();
        assert_eq!(exit.code, exit_code::FORCED);
        assert!(exit.reason.contains("second SIGHUP"));
    }

    #[test]
    fn output_loss_during_an_orderly_drain_raises_the_code() {
        let t0 = Instant::now();
        let mut l = Lifecycle::new(Duration::from_secs(1));
        l.begin(Cause::StdinEof, t0);
        l.begin(Cause::PeerGone, t0);
        l.finish();
        assert_eq!(l.exit().unwrap().code, exit_code::PEER_GONE);
        assert_eq!(l.exit().unwrap().reason, "stdin EOF; then stdout peer gone");
    }

    #[test]
    fn deadline_forces_code_four_unless_already_failing() {
        let t0 = Instant::now();
        let mut l = Lifecycle::new(Duration::from_millis(500));
        l.begin(Cause::Requested, t0);
        assert_eq!(l.drain().unwrap().deadline, t0 + Duration::from_millis(500));
        l.force("12 bytes queued");
        assert_eq!(l.exit().unwrap().code, exit_code::FORCED);

        let mut l = Lifecycle::new(Duration::from_millis(500));
        l.begin(Cause::PeerGone, t0);
        l.force("1 child alive");
        assert_eq!(l.exit().unwrap().code, exit_code::PEER_GONE);
    }
}
