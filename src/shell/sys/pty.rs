//! Pseudo-terminal pairs: the master stays in the gateway (non-blocking,
//! close-on-exec, one more fd in the poll set), the slave becomes a child's
//! stdin, stdout, stderr and controlling terminal.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use super::retry;

/// A terminal's size in character cells: the one type the engine and the
/// shell share.
pub use crate::engine::host::PtySize as Size;

fn winsize(size: Size) -> libc::winsize {
    libc::winsize {
        ws_row: size.rows,
        ws_col: size.cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    }
}

/// A new terminal pair.
#[derive(Debug)]
pub struct Pair {
    /// The gateway's side: non-blocking and close-on-exec.
    pub master: OwnedFd,
    /// The child's side: close-on-exec (std dups it onto the child's 0, 1, 2).
    pub slave: OwnedFd,
}

/// Opens a terminal pair of this size: `/dev/ptmx` opened close-on-exec
/// and non-blocking, unlocked, and its slave opened through it
/// (`TIOCGPTPEER`, no path lookup): four syscalls. Kernels before 4.13
/// lack `TIOCGPTPEER`; there `openpty` and flag changes do it.
pub fn open(size: Size) -> io::Result<Pair> {
    let winsize = winsize(size);
    // SAFETY: open reads the NUL-terminated path; the fd is new and owned
    // by nobody else.
    let master = retry(|| unsafe {
        libc::open(
            b"/dev/ptmx\0".as_ptr().cast(),
            libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC | libc::O_NONBLOCK,
        )
    })?;
    // SAFETY: as above.
    let master = unsafe { OwnedFd::from_raw_fd(master) };
    let unlock: libc::c_int = 0;
    // SAFETY: TIOCSPTLCK reads an int from the pointer, valid for the call.
    retry(|| unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCSPTLCK, &unlock) })?;
    // SAFETY: TIOCGPTPEER takes open flags and returns a new fd.
    let slave = unsafe {
        libc::ioctl(
            master.as_raw_fd(),
            libc::TIOCGPTPEER,
            libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC,
        )
    };
    if slave < 0 {
        return open_with_openpty(winsize);
    }
    // SAFETY: the fd is new and owned by nobody else.
    let slave = unsafe { OwnedFd::from_raw_fd(slave) };
    // SAFETY: TIOCSWINSZ reads a winsize from the pointer, valid for the call.
    retry(|| unsafe { libc::ioctl(slave.as_raw_fd(), libc::TIOCSWINSZ, &winsize) })?;
    Ok(Pair { master, slave })
}

/// [`open`] where `TIOCGPTPEER` is missing.
fn open_with_openpty(winsize: libc::winsize) -> io::Result<Pair> {
    let (mut master, mut slave) = (-1, -1);
    // SAFETY: openpty writes two fds into the out-parameters and reads the
    // window size; the name buffer is null (not wanted) and the termios
    // pointer null (defaults).
    let r = unsafe {
        libc::openpty(
            &mut master,
            &mut slave,
            std::ptr::null_mut(),
            std::ptr::null(),
            &winsize,
        )
    };
    if r != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: both fds were just created and belong to nobody else.
    let pair = unsafe {
        Pair {
            master: OwnedFd::from_raw_fd(master),
            slave: OwnedFd::from_raw_fd(slave),
        }
    };
    for fd in [pair.master.as_raw_fd(), pair.slave.as_raw_fd()] {
        set_fd_flag(fd, libc::F_GETFD, libc::F_SETFD, libc::FD_CLOEXEC)?;
    }
    set_fd_flag(
        pair.master.as_raw_fd(),
        libc::F_GETFL,
        libc::F_SETFL,
        libc::O_NONBLOCK,
    )?;
    Ok(pair)
}

fn set_fd_flag(fd: RawFd, get: i32, set: i32, flag: i32) -> io::Result<()> {
    // SAFETY: fcntl on a valid fd with integer arguments.
    let flags = retry(|| unsafe { libc::fcntl(fd, get) })?;
    retry(|| unsafe { libc::fcntl(fd, set, flags | flag) })?;
    Ok(())
}

/// Sets the window size (`TIOCSWINSZ`); the kernel sends SIGWINCH to the
/// terminal's foreground process group.
pub fn resize(master: RawFd, size: Size) -> io::Result<()> {
    let winsize = winsize(size);
    // SAFETY: TIOCSWINSZ reads a winsize from the pointer, valid for the call.
    retry(|| unsafe { libc::ioctl(master, libc::TIOCSWINSZ, &winsize) })?;
    Ok(())
}

/// The terminal's end-of-file character (`VEOF`, normally Ctrl+D).
pub fn eof_char(master: RawFd) -> u8 {
    control_char(master, libc::VEOF, 0x04)
}

/// The terminal's interrupt character (`VINTR`, Ctrl+C unless changed):
/// typed into the master, the line discipline signals the foreground group
/// with SIGINT, if the program on it left `ISIG` on.
pub fn intr_char(master: RawFd) -> u8 {
    control_char(master, libc::VINTR, 0x03)
}

/// Control character `index` of the terminal's settings, or `default`.
fn control_char(master: RawFd, index: usize, default: u8) -> u8 {
    // SAFETY: tcgetattr writes a termios into the zeroed local.
    unsafe {
        let mut t: libc::termios = std::mem::zeroed();
        if libc::tcgetattr(master, &mut t) == 0 && t.c_cc[index] != 0 {
            t.c_cc[index]
        } else {
            default
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs::File;
    use std::io::{Read, Write};

    #[test]
    fn a_pair_carries_bytes_through_the_line_discipline_and_knows_its_size() {
        let pair = open(Size { rows: 24, cols: 80 }).unwrap();
        let mut ws: libc::winsize = unsafe { std::mem::zeroed() };
        unsafe { libc::ioctl(pair.slave.as_raw_fd(), libc::TIOCGWINSZ, &mut ws) };
        assert_eq!((ws.ws_row, ws.ws_col), (24, 80));
        resize(
            pair.master.as_raw_fd(),
            Size {
                rows: 50,
                cols: 132,
            },
        )
        .unwrap();
        unsafe { libc::ioctl(pair.slave.as_raw_fd(), libc::TIOCGWINSZ, &mut ws) };
        assert_eq!((ws.ws_row, ws.ws_col), (50, 132));
        assert_eq!(eof_char(pair.master.as_raw_fd()), 0x04);
        let mut slave = File::from(pair.slave);
        slave.write_all(b"hi\n").unwrap();
        let mut master = File::from(pair.master);
        let mut buf = [0u8; 16];
        // Non-blocking: the bytes are already there (onlcr turns \n into \r\n).
        let n = master.read(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"hi\r\n");
        assert_eq!(
            master.read(&mut buf).unwrap_err().kind(),
            io::ErrorKind::WouldBlock
        );
        drop(slave);
        // With the slave closed everywhere, the master reads EIO: the end.
        // (Another test of this binary forking at this moment holds a copy
        // of the slave until its exec closes it: poll.)
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            match master.read(&mut buf) {
                Err(e) if e.raw_os_error() == Some(libc::EIO) => break,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                other => panic!("{other:?}"),
            }
            assert!(std::time::Instant::now() < deadline, "no EIO");
            std::thread::sleep(std::time::Duration::from_millis(1)); // polling interval
        }
    }
}
