//! Processes: sending signals, the parent's pid, and leaving at once.
//!
//! `kill` is safe to call with any pid, memory-wise; whether the pid is one
//! the gateway may signal is the caller's proof (a pid that is unreaped, or
//! found below the gateway by a walk), stated at each call site.

use std::io;

/// Sends `signal` to `pid` (a negative pid: that process group).
pub fn kill(pid: libc::pid_t, signal: i32) -> io::Result<()> {
    // SAFETY: kill has no memory effects.
    if unsafe { libc::kill(pid, signal) } == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Sends `signal` to every process of group `pgid`.
pub fn kill_group(pgid: libc::pid_t, signal: i32) -> io::Result<()> {
    kill(-pgid, signal)
}

/// The parent's pid (`getppid`).
pub fn parent_pid() -> libc::pid_t {
    // SAFETY: getppid has no memory effects and cannot fail.
    unsafe { libc::getppid() }
}

/// Ends the process now with `code`, running nothing (`_exit`): for the
/// out-of-memory path, where unwinding or flushing could allocate.
pub fn exit_now(code: i32) -> ! {
    // SAFETY: _exit never returns and touches no Rust state.
    unsafe { libc::_exit(code) }
}

/// Unblocks `handled` (a parent may have left them blocked, which would
/// leave them pending forever) and sets `ignored` to `SIG_IGN`.
pub fn unblock_and_ignore(handled: &[i32], ignored: &[i32]) {
    // SAFETY: sigemptyset/sigaddset only write the local set; sigprocmask
    // changes this thread's mask (the gateway has one thread); setting a
    // disposition to SIG_IGN affects only this process.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for &s in handled {
            libc::sigaddset(&mut set, s);
        }
        libc::sigprocmask(libc::SIG_UNBLOCK, &set, std::ptr::null_mut());
        for &s in ignored {
            libc::signal(s, libc::SIG_IGN);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signal_zero_tells_a_live_process_from_a_gone_one() {
        assert!(kill(std::process::id() as libc::pid_t, 0).is_ok());
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id() as libc::pid_t;
        child.wait().unwrap();
        let gone = kill(pid, 0).unwrap_err();
        assert_eq!(gone.raw_os_error(), Some(libc::ESRCH));
        assert!(parent_pid() > 0);
    }
}
