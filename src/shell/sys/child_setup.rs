//! What runs in a new child before `exec` (see `spawn`). Code between
//! `clone` and `exec` may call async-signal-safe functions only, so this
//! uses raw syscalls and allocates nothing (its errors are errnos).

use std::io;
use std::os::fd::RawFd;

/// What a child does between `clone` and `exec` besides its fds and group
/// (see `spawn`), prepared in the parent so that the child only makes
/// syscalls.
#[derive(Debug, Clone, Copy)]
pub struct Setup {
    /// The gateway's pid, read before the clone ([`prepare_child`]).
    pub gateway: libc::pid_t,
    /// The `cgroup.procs` of a cgroup to join, open in the parent.
    pub cgroup: Option<RawFd>,
    /// Resource limits: the first `limit_count` of `limits`.
    pub limits: [Rlimit; 5],
    /// How many of `limits` to set.
    pub limit_count: usize,
}

/// The highest signal number on Linux (`SIGRTMAX`).
const MAX_SIGNAL: libc::c_int = 64;

/// Runs in the child between `fork` and `exec`:
///
/// * every signal disposition back to its default. `exec` resets handled
///   signals but keeps ignored ones, so whatever the gateway inherited as
///   ignored (SIGHUP under `nohup`, glibc's reserved 32 and 33 from a
///   threaded parent) would otherwise reach every command it runs;
/// * an empty signal mask;
/// * `PR_SET_PDEATHSIG` = SIGKILL: if the gateway dies without its orderly
///   shutdown (SIGKILL, a crash), the kernel kills this child. It covers the
///   direct child only (not its descendants), and the kernel clears it when
///   the child execs a set-user-ID or set-group-ID program.
///
/// `gateway` is the gateway's pid, read before the fork: if the gateway died
/// before `prctl` took effect, the child is already orphaned and gives up.
pub fn prepare_child(gateway: libc::pid_t) -> io::Result<()> {
    // The kernel's `struct sigaction` for SIG_DFL with no flags and an empty
    // mask is all zeros, whatever the architecture's layout; this buffer is
    // larger than any of them.
    let default_action = [0u64; 8];
    for signal in 1..=MAX_SIGNAL {
        if signal == libc::SIGKILL || signal == libc::SIGSTOP {
            continue;
        }
        // SAFETY: rt_sigaction reads the zeroed buffer and writes nothing
        // (null old action); the raw syscall is used because glibc refuses
        // signals 32 and 33. It is async-signal-safe.
        unsafe {
            libc::syscall(
                libc::SYS_rt_sigaction,
                signal,
                default_action.as_ptr(),
                std::ptr::null_mut::<u8>(),
                8usize,
            );
        }
    }
    // SAFETY: sigemptyset writes the local set; sigprocmask and prctl are
    // async-signal-safe syscalls with no memory effects beyond their arguments.
    unsafe {
        let mut empty: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut empty);
        if libc::sigprocmask(libc::SIG_SETMASK, &empty, std::ptr::null_mut()) != 0 {
            return Err(io::Error::last_os_error());
        }
        if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong) != 0 {
            return Err(io::Error::last_os_error());
        }
        if libc::getppid() != gateway {
            // The gateway exited while this child was starting. An errno,
            // not a message: nothing may be allocated here.
            return Err(io::Error::from_raw_os_error(libc::ESRCH));
        }
    }
    Ok(())
}

/// For a child on a pseudo-terminal, before [`prepare_child`]: a new session
/// (so the terminal can become its controlling terminal, and its job control
/// has a session of its own) with fd 0, the terminal's slave side, as the
/// controlling terminal.
pub fn take_terminal() -> io::Result<()> {
    // SAFETY: setsid and ioctl(TIOCSCTTY) are async-signal-safe syscalls with
    // no memory effects; fd 0 is the slave, set up by std before this runs.
    unsafe {
        if libc::setsid() < 0 {
            return Err(io::Error::last_os_error());
        }
        if libc::ioctl(0, libc::TIOCSCTTY as _, 0) < 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// One `setrlimit` to make in the child: resource, soft and hard limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rlimit {
    /// `RLIMIT_*`.
    pub resource: libc::__rlimit_resource_t,
    /// The soft limit (the one that takes effect).
    pub soft: libc::rlim_t,
    /// The hard limit (at least `soft`).
    pub hard: libc::rlim_t,
}

/// Runs in the child between `fork` and `exec`, after [`prepare_child`]:
/// sets each limit, failing with the kernel's error (`EPERM` for a hard
/// limit above the gateway's own, `EINVAL` for soft above hard) so that a
/// command never runs without a limit it was given.
pub fn set_limits(limits: &[Rlimit]) -> io::Result<()> {
    for limit in limits {
        let value = libc::rlimit {
            rlim_cur: limit.soft,
            rlim_max: limit.hard,
        };
        // SAFETY: setrlimit reads the local and is async-signal-safe.
        if unsafe { libc::setrlimit(limit.resource, &value) } != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// The hard limit now in force for `resource` in this process.
pub fn hard_limit(resource: libc::__rlimit_resource_t) -> libc::rlim_t {
    let mut value = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes the local.
    if unsafe { libc::getrlimit(resource, &mut value) } != 0 {
        return libc::RLIM_INFINITY;
    }
    value.rlim_max
}
