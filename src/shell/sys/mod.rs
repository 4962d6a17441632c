//! Everything OS-specific the shell needs beyond std, in one place, as mio
//! keeps its `sys/`: each function wraps one or two syscalls, says why it
//! is safe, and is tested against real processes and fds. Linux only.
//!
//! This is the only place with `unsafe` code (the crate denies it
//! elsewhere; the one other exception is the allocator hook in `oom.rs`).
//!
//! * `cgroup`: a cgroup v2 per command with limits, where delegated;
//! * `child_setup`: what runs in a new child before `exec`;
//! * `fd`: kinds, flags, raw reads and writes, pipes;
//! * [`pty`]: pseudo-terminal pairs and window sizes;
//! * `reaper`: the child subreaper and `waitpid(-1)`;
//! * `pidfd`: signalling a process through a pidfd, so a reused pid is
//!   never signalled by mistake;
//! * `process`: `kill`, the parent's pid, `_exit`, the signal mask;
//! * `socket`: a Unix socket's peer uid, `flock`, `/dev/null` for a gone
//!   client's stdio;
//! * `spawn`: starting a command with `clone(CLONE_VM | CLONE_VFORK)`;
//! * `tree`: the gateway's descendants, walked through `/proc`.

#![allow(unsafe_code)]

pub(crate) mod cgroup;
pub(crate) mod child_setup;
pub(crate) mod fd;
pub(crate) mod pidfd;
pub(crate) mod process;
pub mod pty;
pub(crate) mod reaper;
pub(crate) mod socket;
pub(crate) mod spawn;
pub(crate) mod tree;

use std::io;

/// Runs `f` until it stops failing with `EINTR`; `-1` means failure.
pub fn retry<T: PartialEq + From<i8>>(mut f: impl FnMut() -> T) -> io::Result<T> {
    loop {
        let r = f();
        if r != T::from(-1) {
            return Ok(r);
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}
