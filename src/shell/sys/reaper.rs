//! The gateway as a child subreaper: every descendant that loses its parent
//! (a daemon that double-forked, a job left by a finished shell) is
//! re-parented to the gateway instead of init, so none can escape it; one
//! `wait4(-1)` loop reaps tracked children and adopted orphans alike.
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

/// What the kernel counted for a reaped process (`struct rusage`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Usage {
    /// Peak resident set size, in bytes (the kernel counts KiB).
    pub max_rss_bytes: u64,
    /// User CPU time, in milliseconds.
    pub user_ms: u64,
    /// System CPU time, in milliseconds.
    pub system_ms: u64,
}

/// One reaped process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reaped {
    /// Its pid.
    pub pid: libc::pid_t,
    /// How it ended.
    pub status: Status,
    /// What it used (with the descendants it waited for).
    pub usage: Usage,
}

fn millis(t: libc::timeval) -> u64 {
    (t.tv_sec.max(0) as u64) * 1000 + (t.tv_usec.max(0) as u64) / 1000
}

/// Reaps one exited child, if any has exited. `None` when none is waiting
/// (or the gateway has no children at all).
pub fn reap_one() -> io::Result<Option<Reaped>> {
    let mut status = 0;
    loop {
        // SAFETY: an all-zero rusage is a valid value of the plain C struct.
        let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
        // SAFETY: wait4 writes the status and the usage into the locals.
        let pid = unsafe { libc::wait4(-1, &mut status, libc::WNOHANG, &mut usage) };
        if pid > 0 {
            let status = if libc::WIFSIGNALED(status) {
                Status::Signal(libc::WTERMSIG(status))
            } else {
                Status::Code(libc::WEXITSTATUS(status))
            };
            let usage = Usage {
                max_rss_bytes: (usage.ru_maxrss.max(0) as u64) * 1024,
                user_ms: millis(usage.ru_utime),
                system_ms: millis(usage.ru_stime),
            };
            return Ok(Some(Reaped { pid, status, usage }));
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
