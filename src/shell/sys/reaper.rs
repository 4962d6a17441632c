//! The gateway as a child subreaper: every descendant that loses its parent
//! (a daemon that double-forked, a job left by a finished shell) is
//! re-parented to the gateway instead of init, so none can escape it; one
//! `waitpid(-1)` loop reaps tracked children and adopted orphans alike.
//!
//! `waitpid(-1)` would steal the statuses of children spawned and awaited
//! elsewhere in the same process, so it is exercised by the integration
//! tests (`tests/terminals.rs`: adopted orphans reaped, tracked exits never
//! mistaken), not by unit tests sharing a process with other tests' children.

use std::io;

/// How a reaped process ended: its exit code, or the signal that killed it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// `exit(code)`.
    Code(i32),
    /// Killed by this signal.
    Signal(i32),
}

/// Makes the gateway a child subreaper (`PR_SET_CHILD_SUBREAPER`, Linux 3.4).
pub fn become_subreaper() -> io::Result<()> {
    // SAFETY: prctl with integer arguments; affects only this process.
    if unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1 as libc::c_ulong) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Reaps one exited child, if any has exited: `(pid, status)`. `None` when
/// none is waiting (or the gateway has no children at all).
pub fn reap_one() -> io::Result<Option<(libc::pid_t, Status)>> {
    let mut status = 0;
    loop {
        // SAFETY: waitpid writes the status into the local.
        let pid = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) };
        if pid > 0 {
            let status = if libc::WIFSIGNALED(status) {
                Status::Signal(libc::WTERMSIG(status))
            } else {
                Status::Code(libc::WEXITSTATUS(status))
            };
            return Ok(Some((pid, status)));
        }
        if pid == 0 {
            return Ok(None);
        }
        let e = io::Error::last_os_error();
        match e.raw_os_error() {
            Some(libc::EINTR) => continue,
            Some(libc::ECHILD) => return Ok(None),
            _ => return Err(e),
        }
    }
}
