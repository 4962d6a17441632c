//! The gateway's own stdin, stdout and stderr: what they are, making them
//! non-blocking, and putting their flags back.
//!
//! A tty shares its file-status flags (`O_NONBLOCK` included) with every
//! process that has it open, the user's shell among them, so the original
//! flags are saved before the first change and restored on every exit path:
//! normal exit, error exit and panic (through [`restore_all`], which the
//! panic hook calls).

use std::io;
use std::os::fd::RawFd;

use mio::unix::SourceFd;
use mio::{Interest, Poll, Token};
use std::sync::atomic::{AtomicI32, Ordering};

use super::sys::fd::{self as sys_fd, FileKind};

/// "Not saved" marker for [`SAVED_FLAGS`].
const UNSET: i32 = i32::MIN;

/// Original `F_GETFL` flags of fds 0, 1, 2, saved before the first change.
static SAVED_FLAGS: [AtomicI32; 3] = [
    AtomicI32::new(UNSET),
    AtomicI32::new(UNSET),
    AtomicI32::new(UNSET),
];

/// What kind of file a stdio fd is, as far as readiness goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A pipe, socket, tty or other pollable file: non-blocking and registered.
    Pollable,
    /// A regular file, a directory or a block device: epoll refuses these
    /// (`EPERM`); they are always ready and never block for long.
    AlwaysReady,
    /// The fd is not open.
    Closed,
}

/// Looks at `fd` with `fstat`.
pub fn kind(fd: RawFd) -> Kind {
    match sys_fd::file_kind(fd) {
        None => Kind::Closed,
        Some(FileKind::File) => Kind::AlwaysReady,
        Some(FileKind::Stream) => Kind::Pollable,
    }
}

/// Saves the flags of fds 0, 1 and 2 before anything changes them. All three
/// are read first because they may share one open file description (a tty):
/// changing one changes the others, so saving lazily would record a changed
/// flag as the original.
pub fn save_all() {
    for (fd, slot) in SAVED_FLAGS.iter().enumerate() {
        if let Ok(flags) = get_flags(fd as RawFd) {
            let _ = slot.compare_exchange(UNSET, flags, Ordering::SeqCst, Ordering::SeqCst);
        }
    }
}

/// Sets `O_NONBLOCK` on `fd`. For fds 0, 1 and 2 call [`save_all`] first.
pub fn set_nonblocking(fd: RawFd) -> io::Result<()> {
    let flags = get_flags(fd)?;
    if flags & libc::O_NONBLOCK == 0 {
        set_flags(fd, flags | libc::O_NONBLOCK)?;
    }
    Ok(())
}

/// Puts back the saved flags of fds 0, 1 and 2. Safe to call more than once
/// and from a panic hook.
pub fn restore_all() {
    for (fd, slot) in SAVED_FLAGS.iter().enumerate() {
        let saved = slot.swap(UNSET, Ordering::SeqCst);
        if saved != UNSET {
            let _ = set_flags(fd as RawFd, saved);
        }
    }
}

/// Marks every fd above 2 that the gateway inherited close-on-exec, so a
/// child never holds, say, a copy of the TUI's pipe that the TUI's own
/// parent leaked to us (which would keep that pipe from ever reaching EOF).
/// Called once at start, before the gateway opens fds of its own.
pub fn cloexec_inherited() {
    let Ok(dir) = std::fs::read_dir("/proc/self/fd") else {
        return;
    };
    let fds: Vec<RawFd> = dir
        .flatten()
        .filter_map(|entry| entry.file_name().to_str()?.parse().ok())
        .filter(|&fd| fd > 2)
        .collect();
    // The directory's own fd is closed by now; setting a flag on a closed
    // fd fails harmlessly.
    for fd in fds {
        set_cloexec(fd);
    }
}

/// Marks `fd` close-on-exec so no child inherits it.
pub fn set_cloexec(fd: RawFd) {
    sys_fd::set_cloexec(fd);
}

/// One end of a stdio stream the loop reads or writes (the gateway's, a
/// relay's), or a session client's socket, with its readiness.
#[derive(Debug)]
pub(crate) struct End {
    pub(crate) fd: RawFd,
    pub(crate) kind: Kind,
    /// Readiness not yet exhausted (always true for always-ready files).
    pub(crate) ready: bool,
    /// Finished: EOF read, or output lost.
    pub(crate) done: bool,
}

impl End {
    /// Looks at `fd`, makes it non-blocking and registers it with `poll`
    /// when it can be polled; a file is always ready.
    pub(crate) fn open(fd: RawFd, poll: &Poll, token: Token, interest: Interest) -> End {
        let mut kind = kind(fd);
        if kind == Kind::Pollable {
            let registered = set_nonblocking(fd).and_then(|()| {
                poll.registry()
                    .register(&mut SourceFd(&fd), token, interest)
            });
            if let Err(e) = registered {
                // epoll refuses some character devices (/dev/null) with EPERM;
                // they never block, so treat them like regular files.
                log::debug!("fd {fd} is not pollable ({e}); treating it as always ready");
                kind = Kind::AlwaysReady;
            }
        }
        End {
            fd,
            kind,
            ready: true,
            done: kind == Kind::Closed,
        }
    }

    /// Finished: no more reads or writes, and the loop stops watching it.
    pub(crate) fn finish(&mut self, registry: &mio::Registry) {
        if self.kind == Kind::Pollable && !self.done {
            let _ = registry.deregister(&mut SourceFd(&self.fd));
        }
        self.done = true;
    }
}

use super::sys::fd::{flags as get_flags, set_flags};
pub use super::sys::fd::{read, writev};
