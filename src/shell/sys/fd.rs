//! File descriptors: what kind a descriptor is, its flags, and the raw
//! `read`, `write` and `writev` the loop needs on fds it does not own as
//! `File`s (the gateway's own stdio). Each wrapper retries `EINTR` where a
//! retry is the only sensible answer and returns the OS error otherwise.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

/// What `fstat` says an fd is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    /// A regular file, a directory or a block device: never pollable.
    File,
    /// Anything else: a pipe, a socket, a terminal, a character device.
    Stream,
}

/// What `fd` is, or `None` if it is not open.
pub fn file_kind(fd: RawFd) -> Option<FileKind> {
    // SAFETY: an all-zero stat is a valid value of the plain C struct.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: fstat writes into the struct we own.
    if unsafe { libc::fstat(fd, &mut st) } != 0 {
        return None;
    }
    Some(match st.st_mode & libc::S_IFMT {
        libc::S_IFREG | libc::S_IFDIR | libc::S_IFBLK => FileKind::File,
        _ => FileKind::Stream,
    })
}

/// The file status flags of `fd` (`F_GETFL`).
pub fn flags(fd: RawFd) -> io::Result<i32> {
    // SAFETY: F_GETFL has no memory effects.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    if flags < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(flags)
    }
}

/// Sets the file status flags of `fd` (`F_SETFL`).
pub fn set_flags(fd: RawFd, flags: i32) -> io::Result<()> {
    // SAFETY: F_SETFL has no memory effects.
    if unsafe { libc::fcntl(fd, libc::F_SETFL, flags) } < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// Marks `fd` close-on-exec; an fd that is not open is left alone.
pub fn set_cloexec(fd: RawFd) {
    // SAFETY: F_GETFD/F_SETFD only touch the fd table entry.
    unsafe {
        let flags = libc::fcntl(fd, libc::F_GETFD);
        if flags >= 0 {
            libc::fcntl(fd, libc::F_SETFD, flags | libc::FD_CLOEXEC);
        }
    }
}

/// One `read(2)`, retried on `EINTR`.
pub fn read(fd: RawFd, buf: &mut [u8]) -> io::Result<usize> {
    loop {
        // SAFETY: the buffer is valid for `buf.len()` bytes.
        let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
        if n >= 0 {
            return Ok(n as usize);
        }
        let err = io::Error::last_os_error();
        if err.kind() != io::ErrorKind::Interrupted {
            return Err(err);
        }
    }
}

/// One `write(2)`, not retried: `EINTR` comes back to the caller. Allocates
/// nothing, so the panic and out-of-memory paths may use it.
pub fn write(fd: RawFd, buf: &[u8]) -> io::Result<usize> {
    // SAFETY: the slice is valid for its length.
    let n = unsafe { libc::write(fd, buf.as_ptr().cast(), buf.len()) };
    if n < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(n as usize)
    }
}

/// One `writev(2)`, retried on `EINTR`.
pub fn writev(fd: RawFd, slices: &[io::IoSlice<'_>]) -> io::Result<usize> {
    let count = libc::c_int::try_from(slices.len().min(libc::c_int::MAX as usize))
        .unwrap_or(libc::c_int::MAX);
    loop {
        // SAFETY: IoSlice is ABI-compatible with iovec, and `count` slices
        // of the array are valid.
        let n = unsafe { libc::writev(fd, slices.as_ptr().cast(), count) };
        if n >= 0 {
            return Ok(n as usize);
        }
        let err = io::Error::last_os_error();
        if err.kind() != io::ErrorKind::Interrupted {
            return Err(err);
        }
    }
}

/// A pipe made close-on-exec and non-blocking in one call: (read end,
/// write end). A child's end is made blocking in the child.
pub fn pipe_nonblocking() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: pipe2 writes two fds into the array on success.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC | libc::O_NONBLOCK) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: both fds were just created and are owned by nobody else.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// `fd` as a descriptor numbered 3 or above (close-on-exec): a child's
/// stdio is made by `dup2` onto 0, 1 and 2, which must not overwrite a
/// source still to be copied. Unchanged when it already is (the usual
/// case: the gateway's own 0, 1 and 2 are open).
pub fn above_stdio(fd: OwnedFd) -> io::Result<OwnedFd> {
    if fd.as_raw_fd() >= 3 {
        return Ok(fd);
    }
    // SAFETY: F_DUPFD_CLOEXEC duplicates a valid fd into a new one, which
    // is owned by nobody else; the original is closed when `fd` drops.
    let dup = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_DUPFD_CLOEXEC, 3) };
    if dup < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: as above.
    Ok(unsafe { OwnedFd::from_raw_fd(dup) })
}

/// Appends `bytes` to the file at `path` (NUL-terminated), creating it with
/// `mode`, in one open, one write and one close: no allocation, so the crash
/// path may use it. Failures are ignored: there is nowhere left to report them.
pub fn append_once(path: &[u8], mode: libc::mode_t, bytes: &[u8]) {
    if path.last() != Some(&0) {
        return;
    }
    // SAFETY: the path is NUL-terminated (checked); open, write and close
    // have no memory effects beyond the buffers passed.
    unsafe {
        let fd = libc::open(
            path.as_ptr().cast(),
            libc::O_WRONLY | libc::O_APPEND | libc::O_CREAT | libc::O_CLOEXEC,
            libc::c_uint::from(mode),
        );
        if fd >= 0 {
            libc::write(fd, bytes.as_ptr().cast(), bytes.len());
            libc::close(fd);
        }
    }
}
