//! Process file descriptors: a pidfd names one process for as long as the
//! fd is open, so a signal sent through it can never reach a process that
//! reused the pid. Linux 5.3 (`pidfd_open`) and 5.1 (`pidfd_send_signal`);
//! where the kernel lacks them, callers fall back to `kill` on a pid they
//! have not reaped yet (which cannot have been reused either).

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

/// A pidfd for `pid`, close-on-exec.
pub fn open(pid: libc::pid_t) -> io::Result<OwnedFd> {
    // SAFETY: pidfd_open takes a pid and flags and returns a new fd or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the fd was just created (pidfds are close-on-exec by default).
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// Sends `signal` to the process the pidfd names. `ESRCH` once it has exited.
pub fn send_signal(pidfd: &OwnedFd, signal: i32) -> io::Result<()> {
    // SAFETY: pidfd_send_signal with a null siginfo and no flags.
    let r = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd.as_raw_fd(),
            signal,
            std::ptr::null::<libc::siginfo_t>(),
            0,
        )
    };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pidfd_signals_its_process_and_only_it() {
        let mut child = std::process::Command::new("sleep")
            .arg("100")
            .spawn()
            .unwrap();
        let fd = match open(child.id() as i32) {
            Ok(fd) => fd,
            // An old kernel: the fallback path is the one in use.
            Err(e) if e.raw_os_error() == Some(libc::ENOSYS) => {
                child.kill().unwrap();
                child.wait().unwrap();
                return;
            }
            Err(e) => panic!("{e}"),
        };
        send_signal(&fd, libc::SIGKILL).unwrap();
        let status = child.wait().unwrap();
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(status.signal(), Some(libc::SIGKILL));
        // Reaped: the pidfd now names nothing.
        assert_eq!(
            send_signal(&fd, libc::SIGTERM).unwrap_err().raw_os_error(),
            Some(libc::ESRCH)
        );
    }
}
