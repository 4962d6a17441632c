//! Raw file-descriptor operations on the pipes between test and gateway:
//! `fcntl` flags (`O_NONBLOCK`, close-on-exec), close-on-exec pipes, filling a
//! pipe to capacity, reading and setting its capacity, counting the bytes
//! waiting in it, and waiting for readiness with `poll(2)`. Every failing
//! system call panics with its name and the OS error.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::time::Duration;

fn cvt(ret: libc::c_int, what: &str) -> libc::c_int {
    if ret < 0 {
        panic!("{what}: {}", io::Error::last_os_error());
    }
    ret
}

/// The file-status flags (`F_GETFL`) of an fd.
pub fn fl_flags(fd: RawFd) -> libc::c_int {
    // SAFETY: F_GETFL on an fd we own has no memory effects.
    cvt(unsafe { libc::fcntl(fd, libc::F_GETFL) }, "fcntl(F_GETFL)")
}

/// Turns `O_NONBLOCK` on or off.
pub fn set_nonblocking(fd: RawFd, on: bool) {
    let flags = fl_flags(fd);
    let flags = if on {
        flags | libc::O_NONBLOCK
    } else {
        flags & !libc::O_NONBLOCK
    };
    // SAFETY: F_SETFL on an fd we own.
    cvt(
        unsafe { libc::fcntl(fd, libc::F_SETFL, flags) },
        "fcntl(F_SETFL)",
    );
}

/// Marks an fd close-on-exec.
pub fn set_cloexec(fd: RawFd) {
    // SAFETY: F_SETFD on an fd we own.
    cvt(
        unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) },
        "fcntl(F_SETFD)",
    );
}

/// A close-on-exec pipe: (read end, write end).
pub fn pipe_cloexec() -> (OwnedFd, OwnedFd) {
    let mut fds = [0 as libc::c_int; 2];
    // SAFETY: pipe2 writes two fds into the array.
    cvt(
        unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) },
        "pipe2",
    );
    // SAFETY: both fds were just created and are owned by nobody else.
    unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) }
}

/// Writes into a pipe until it is full. `O_NONBLOCK` is on only while
/// filling: the flag belongs to the open file description, which a child
/// given this fd would share.
pub fn fill_pipe(w: &OwnedFd) {
    let fd = w.as_raw_fd();
    set_nonblocking(fd, true);
    let chunk = [b'#'; 4096];
    write_until_full(fd, &chunk);
    // Top up byte by byte: a write of up to PIPE_BUF bytes is all or nothing.
    write_until_full(fd, &chunk[..1]);
    set_nonblocking(fd, false);
}

/// Writes `chunk` to the non-blocking `fd` over and over until it would block.
fn write_until_full(fd: RawFd, chunk: &[u8]) {
    loop {
        // SAFETY: writing from a valid buffer to an fd we own.
        let n = unsafe { libc::write(fd, chunk.as_ptr().cast(), chunk.len()) };
        if n < 0 {
            let e = io::Error::last_os_error();
            match e.kind() {
                io::ErrorKind::Interrupted => continue,
                io::ErrorKind::WouldBlock => return,
                _ => panic!("filling a pipe: {e}"),
            }
        }
    }
}

/// Bytes waiting in a pipe (`FIONREAD`).
pub fn fionread(fd: RawFd) -> usize {
    let mut n: libc::c_int = 0;
    // SAFETY: FIONREAD writes one int.
    cvt(
        unsafe { libc::ioctl(fd, libc::FIONREAD, &mut n) },
        "ioctl(FIONREAD)",
    );
    n as usize
}

/// A pipe's capacity (`F_GETPIPE_SZ`).
pub fn pipe_capacity(fd: RawFd) -> usize {
    // SAFETY: F_GETPIPE_SZ has no memory effects.
    cvt(
        unsafe { libc::fcntl(fd, libc::F_GETPIPE_SZ) },
        "fcntl(F_GETPIPE_SZ)",
    ) as usize
}

/// Sets a pipe's capacity (`F_SETPIPE_SZ`); returns the size granted.
pub fn set_pipe_capacity(fd: RawFd, bytes: usize) -> usize {
    // SAFETY: F_SETPIPE_SZ has no memory effects.
    cvt(
        unsafe { libc::fcntl(fd, libc::F_SETPIPE_SZ, bytes as libc::c_int) },
        "fcntl(F_SETPIPE_SZ)",
    ) as usize
}

/// Waits up to `timeout` for `events` on `fd`; returns the revents (0 on timeout).
pub fn poll_fd(fd: RawFd, events: libc::c_short, timeout: Duration) -> libc::c_short {
    let mut pfd = libc::pollfd {
        fd,
        events,
        revents: 0,
    };
    let ms = timeout.as_millis().min(i32::MAX as u128) as libc::c_int;
    // SAFETY: one valid pollfd.
    let n = unsafe { libc::poll(&mut pfd, 1, ms) };
    if n < 0 {
        let e = io::Error::last_os_error();
        if e.kind() == io::ErrorKind::Interrupted {
            return 0;
        }
        panic!("poll: {e}");
    }
    pfd.revents
}
