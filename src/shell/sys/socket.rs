//! What sessions need of the OS beyond std: the uid of the process at the
//! other end of a Unix socket (`SO_PEERCRED`), this process's uid, an
//! exclusive lock on a file (`flock`), and pointing a stdio fd at
//! `/dev/null` once its client is gone.

use std::io;
use std::os::fd::{AsRawFd, RawFd};

/// The uid of the process that connected `fd` (a Unix stream socket), as
/// the kernel recorded it at `connect`.
pub fn peer_uid(fd: RawFd) -> io::Result<u32> {
    // SAFETY: an all-zero ucred is a valid value of the plain C struct.
    let mut cred: libc::ucred = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::ucred>() as libc::socklen_t;
    // SAFETY: getsockopt writes at most `len` bytes into the struct we own
    // and updates `len`.
    let rc = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_PEERCRED,
            (&mut cred as *mut libc::ucred).cast(),
            &mut len,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(cred.uid)
}

/// This process's real uid.
pub fn uid() -> u32 {
    // SAFETY: getuid has no memory effects and cannot fail.
    unsafe { libc::getuid() }
}

/// Takes an exclusive `flock` on `file` without waiting: `Ok(true)` when
/// taken (held until the file is closed), `Ok(false)` when another holds it.
pub fn try_lock(file: &std::fs::File) -> io::Result<bool> {
    loop {
        // SAFETY: flock has no memory effects.
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0 {
            return Ok(true);
        }
        let e = io::Error::last_os_error();
        match e.raw_os_error() {
            Some(libc::EINTR) => continue,
            Some(libc::EWOULDBLOCK) => return Ok(false),
            _ => return Err(e),
        }
    }
}

/// Points `fd` (0 or 1, a client's stdio that is gone) at `/dev/null`, so
/// the pipe it held is let go while the fd number stays valid.
pub fn point_at_dev_null(fd: RawFd) -> io::Result<()> {
    let null = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")?;
    loop {
        // SAFETY: dup2 only changes the fd table; `fd` is one of ours.
        if unsafe { libc::dup2(null.as_raw_fd(), fd) } >= 0 {
            return Ok(());
        }
        let e = io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::EINTR) {
            return Err(e);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::net::UnixStream;

    #[test]
    fn the_peer_of_a_socket_pair_is_this_user() {
        let (a, _b) = UnixStream::pair().unwrap();
        assert_eq!(peer_uid(a.as_raw_fd()).unwrap(), uid());
    }

    #[test]
    fn a_lock_is_held_once() {
        let dir = std::env::temp_dir().join(format!("tgw-lock-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("x.lock");
        let first = std::fs::File::create(&path).unwrap();
        let second = std::fs::File::open(&path).unwrap();
        assert!(try_lock(&first).unwrap());
        assert!(!try_lock(&second).unwrap());
        drop(first);
        assert!(try_lock(&second).unwrap());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
