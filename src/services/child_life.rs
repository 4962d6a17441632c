//! A child's life as a service sees it: running, then reaped (its status,
//! its resource usage and when), and which of its outputs are still open.
//!
//! Its end is the one rule `process` and `backend` share: a child is over
//! when it was reaped *and* every output reached EOF, in whichever order
//! the two arrive, so everything it wrote was read before its end is
//! reported. A grandchild that keeps a pipe open delays that end until it
//! closes it or dies (the backend bounds the wait with its linger).

use std::time::Instant;

use crate::engine::host::{ExitStatus, OutputStream, Usage};

/// The slot of an output: `0` for stdout or a PTY master, `1` for stderr.
pub(crate) fn slot(stream: OutputStream) -> usize {
    match stream {
        OutputStream::Stdout | OutputStream::Pty => 0,
        OutputStream::Stderr => 1,
    }
}

/// How a child ended.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Reaped {
    pub(crate) status: ExitStatus,
    pub(crate) usage: Option<Usage>,
    /// On the engine's clock.
    pub(crate) at: Instant,
}

/// A child's life: see the module's contract.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ChildLife {
    reaped: Option<Reaped>,
    /// `[stdout or PTY master, stderr]`: not yet at EOF.
    open: [bool; 2],
}

impl ChildLife {
    /// A child just spawned, with a stdout (or PTY) and maybe a stderr of
    /// its own to read.
    pub(crate) fn new(stderr: bool) -> ChildLife {
        ChildLife {
            reaped: None,
            open: [true, stderr],
        }
    }

    /// `stream` reached EOF; true if it was open until now.
    pub(crate) fn on_eof(&mut self, stream: OutputStream) -> bool {
        std::mem::replace(&mut self.open[slot(stream)], false)
    }

    /// The child was reaped at `at`.
    pub(crate) fn on_exited(&mut self, status: ExitStatus, usage: Option<Usage>, at: Instant) {
        self.reaped = Some(Reaped { status, usage, at });
    }

    /// How it ended, once reaped.
    pub(crate) fn reaped(&self) -> Option<&Reaped> {
        self.reaped.as_ref()
    }

    /// Its status, once reaped.
    pub(crate) fn status(&self) -> Option<ExitStatus> {
        self.reaped.map(|r| r.status)
    }

    /// Not reaped yet.
    pub(crate) fn is_running(&self) -> bool {
        self.reaped.is_none()
    }

    /// True while `stream` has not reached EOF.
    pub(crate) fn is_open(&self, stream: OutputStream) -> bool {
        self.open[slot(stream)]
    }

    /// Outputs not yet at EOF.
    pub(crate) fn open_outputs(&self) -> usize {
        self.open.iter().filter(|open| **open).count()
    }

    /// Reaped and every output at EOF: all it wrote has been read.
    pub(crate) fn is_over(&self) -> bool {
        self.reaped.is_some() && self.open_outputs() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_child_is_over_only_when_reaped_and_every_output_is_at_eof_in_either_order() {
        let now = Instant::now();
        let status = ExitStatus::Code(0);

        let mut exit_first = ChildLife::new(true);
        exit_first.on_exited(status, None, now);
        assert!(!exit_first.is_over(), "both outputs still open");
        assert!(exit_first.on_eof(OutputStream::Stdout));
        assert!(!exit_first.is_over(), "stderr still open");
        assert!(exit_first.on_eof(OutputStream::Stderr));
        assert!(exit_first.is_over());

        let mut eof_first = ChildLife::new(false);
        assert!(eof_first.on_eof(OutputStream::Pty));
        assert!(!eof_first.on_eof(OutputStream::Pty), "an output ends once");
        assert!(eof_first.is_running() && !eof_first.is_over());
        eof_first.on_exited(status, None, now);
        assert_eq!(eof_first.status(), Some(status));
        assert!(eof_first.is_over());
    }
}
