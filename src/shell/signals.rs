//! The signals the gateway handles, in one table, delivered as readiness
//! through signal-hook's self-pipe, polled by the loop.
//!
//! Every signal whose default action would end the process is in [`TABLE`]:
//! it either starts the orderly shutdown (its name in the exit reason and the
//! crash log, children terminated on the usual timeline) or is ignored (a
//! log line and a count in `gateway.stats`). None ends the gateway silently.
//! The exceptions are the ones no process can catch (SIGKILL, SIGSTOP) and
//! the synchronous faults (SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGTRAP,
//! SIGSYS): a handler that returns from a real fault re-runs the faulting
//! instruction forever, so those keep their default, and the children die
//! with the gateway through `PR_SET_PDEATHSIG` (`docs/protocol.md`).
//!
//! SIGPIPE is ignored outright, so a closed pipe is an `EPIPE`, never a death.

use std::io;

use mio::net::UnixStream;
use mio::{Interest, Registry, Token};
use signal_hook::iterator::backend::{Pending, SignalDelivery};
use signal_hook::iterator::exfiltrator::origin::WithOrigin;

/// The signals as readiness: the handlers write to a self-pipe the loop
/// polls, and each signal comes out with its sender, when the kernel says
/// (a session tells its parent's SIGTERM from anyone else's). This is what
/// signal-hook-mio's `Signals` does, with the sender kept.
pub(crate) struct Signals(SignalDelivery<UnixStream, WithOrigin>);

impl std::fmt::Debug for Signals {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Signals")
    }
}

impl Signals {
    fn new(signals: impl IntoIterator<Item = i32>) -> io::Result<Signals> {
        let (read, write) = UnixStream::pair()?;
        let write = std::os::fd::OwnedFd::from(write);
        SignalDelivery::with_pipe(read, write, WithOrigin::default(), signals).map(Signals)
    }

    /// The signals received since the last call (each number once), with
    /// their origin.
    pub(crate) fn pending(&mut self) -> Pending<WithOrigin> {
        self.0.pending()
    }
}

impl mio::event::Source for Signals {
    fn register(
        &mut self,
        registry: &Registry,
        token: Token,
        interests: Interest,
    ) -> io::Result<()> {
        self.0.get_read_mut().register(registry, token, interests)
    }

    fn reregister(
        &mut self,
        registry: &Registry,
        token: Token,
        interests: Interest,
    ) -> io::Result<()> {
        self.0.get_read_mut().reregister(registry, token, interests)
    }

    fn deregister(&mut self, registry: &Registry) -> io::Result<()> {
        self.0.get_read_mut().deregister(registry)
    }
}

/// What a signal does to the gateway.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Action {
    /// Start the orderly shutdown (a second one ends it at once, exit 4).
    Shutdown,
    /// Log it and count it in `gateway.stats`; nothing else.
    Ignore,
    /// `--sigint` decides: ignore (the default) or shut down.
    Sigint,
    /// A child changed state: reap.
    Reap,
}

/// Every signal the loop listens to, what it does, and why.
pub(crate) const TABLE: &[(i32, Action, &str)] = &[
    (
        libc::SIGTERM,
        Action::Shutdown,
        "the standard request to stop",
    ),
    (
        libc::SIGHUP,
        Action::Shutdown,
        "the terminal or the parent went away",
    ),
    (
        libc::SIGQUIT,
        Action::Shutdown,
        "Ctrl+\\ in the TUI's process group: the user asks to quit",
    ),
    (
        libc::SIGPWR,
        Action::Shutdown,
        "power is failing: leave in order while there is time",
    ),
    (
        libc::SIGXCPU,
        Action::Shutdown,
        "the CPU-time soft limit was reached; SIGKILL follows at the hard one",
    ),
    (
        libc::SIGABRT,
        Action::Shutdown,
        "sent by another process (an abort of the gateway's own never returns here)",
    ),
    (
        libc::SIGINT,
        Action::Sigint,
        "Ctrl+C belongs to the TUI, which shares the process group",
    ),
    (libc::SIGUSR1, Action::Ignore, "no meaning for the gateway"),
    (libc::SIGUSR2, Action::Ignore, "no meaning for the gateway"),
    (
        libc::SIGALRM,
        Action::Ignore,
        "the gateway sets no timer; an alarm inherited across exec is stray",
    ),
    (libc::SIGVTALRM, Action::Ignore, "the gateway sets no timer"),
    (libc::SIGPROF, Action::Ignore, "the gateway sets no timer"),
    (
        libc::SIGXFSZ,
        Action::Ignore,
        "the write then fails with EFBIG, handled as an I/O error",
    ),
    (
        libc::SIGIO,
        Action::Ignore,
        "the gateway asks for no signal-driven I/O",
    ),
    (libc::SIGSTKFLT, Action::Ignore, "unused on Linux"),
    (libc::SIGCHLD, Action::Reap, "a child exited"),
];

/// Real-time signals (`SIGRTMIN` to `SIGRTMAX`, 34 to 64 with glibc) also
/// end a process by default; the gateway uses none, so they are ignored
/// (`SIG_IGN`, not counted).
pub(crate) const REALTIME: std::ops::RangeInclusive<i32> = 34..=64;

/// Names of the real-time signals, as `process.exit` reports them.
const REALTIME_NAMES: [&str; 31] = [
    "SIG34", "SIG35", "SIG36", "SIG37", "SIG38", "SIG39", "SIG40", "SIG41", "SIG42", "SIG43",
    "SIG44", "SIG45", "SIG46", "SIG47", "SIG48", "SIG49", "SIG50", "SIG51", "SIG52", "SIG53",
    "SIG54", "SIG55", "SIG56", "SIG57", "SIG58", "SIG59", "SIG60", "SIG61", "SIG62", "SIG63",
    "SIG64",
];

/// What the loop does with `signal`.
pub(crate) fn action(signal: i32) -> Action {
    TABLE
        .iter()
        .find(|(s, ..)| *s == signal)
        .map_or(Action::Ignore, |&(_, action, _)| action)
}

/// Registers the handlers, unblocks the handled signals (a parent may have
/// left some blocked, which would make them silently pending forever), and
/// ignores SIGPIPE and the real-time signals outright (`SIG_IGN`: nothing to
/// count, and registering 31 handlers would cost start-up time; a signal a
/// debugger or valgrind reserves is simply left alone). Children get every
/// disposition back to its default before exec (`sys::child_setup`).
pub(crate) fn install() -> io::Result<Signals> {
    let realtime: Vec<i32> = REALTIME
        .filter(|s| (libc::SIGRTMIN()..=libc::SIGRTMAX()).contains(s))
        .collect();
    let handled: Vec<i32> = TABLE.iter().map(|(s, ..)| *s).collect();
    let mut ignored = realtime;
    ignored.push(libc::SIGPIPE);
    super::sys::process::unblock_and_ignore(&handled, &ignored);
    Signals::new(TABLE.iter().map(|(s, ..)| *s))
}

/// The name of a signal the loop handles, for logs, stats and the crash log.
pub(crate) fn name(signal: i32) -> &'static str {
    crate::signal_name::known(signal)
        .or_else(|| {
            let index = usize::try_from(signal - REALTIME.start()).ok()?;
            REALTIME_NAMES.get(index).copied()
        })
        .unwrap_or("SIG?")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_signal_that_kills_by_default_is_handled() {
        // The Linux signals whose default action is to terminate (or dump
        // core), except the uncatchable and the synchronous faults.
        let terminating = [
            libc::SIGHUP,
            libc::SIGINT,
            libc::SIGQUIT,
            libc::SIGABRT,
            libc::SIGUSR1,
            libc::SIGUSR2,
            libc::SIGALRM,
            libc::SIGTERM,
            libc::SIGSTKFLT,
            libc::SIGXCPU,
            libc::SIGXFSZ,
            libc::SIGVTALRM,
            libc::SIGPROF,
            libc::SIGIO,
            libc::SIGPWR,
        ];
        for s in terminating {
            assert!(TABLE.iter().any(|(t, ..)| *t == s), "{} missing", name(s));
        }
        assert!(REALTIME.contains(&libc::SIGRTMIN()) && REALTIME.contains(&libc::SIGRTMAX()));
    }

    #[test]
    fn names_cover_the_table_and_the_realtime_range() {
        for (s, ..) in TABLE {
            assert_ne!(name(*s), "SIG?", "{s}");
        }
        assert_eq!(name(34), "SIG34");
        assert_eq!(name(64), "SIG64");
        assert_eq!(name(libc::SIGPWR), "SIGPWR");
    }
}
