//! Signal names, in one table: `process.signal` takes them, `process.exit`
//! reports them, and the shell logs the signals it receives by them.

/// The signals known by name, with their Linux numbers.
const TABLE: &[(&str, i32)] = &[
    ("SIGHUP", libc::SIGHUP),
    ("SIGINT", libc::SIGINT),
    ("SIGQUIT", libc::SIGQUIT),
    ("SIGILL", libc::SIGILL),
    ("SIGTRAP", libc::SIGTRAP),
    ("SIGABRT", libc::SIGABRT),
    ("SIGBUS", libc::SIGBUS),
    ("SIGFPE", libc::SIGFPE),
    ("SIGKILL", libc::SIGKILL),
    ("SIGUSR1", libc::SIGUSR1),
    ("SIGSEGV", libc::SIGSEGV),
    ("SIGUSR2", libc::SIGUSR2),
    ("SIGSTKFLT", libc::SIGSTKFLT),
    ("SIGPIPE", libc::SIGPIPE),
    ("SIGALRM", libc::SIGALRM),
    ("SIGTERM", libc::SIGTERM),
    ("SIGCHLD", libc::SIGCHLD),
    ("SIGCONT", libc::SIGCONT),
    ("SIGSTOP", libc::SIGSTOP),
    ("SIGTSTP", libc::SIGTSTP),
    ("SIGTTIN", libc::SIGTTIN),
    ("SIGTTOU", libc::SIGTTOU),
    ("SIGURG", libc::SIGURG),
    ("SIGXCPU", libc::SIGXCPU),
    ("SIGXFSZ", libc::SIGXFSZ),
    ("SIGVTALRM", libc::SIGVTALRM),
    ("SIGPROF", libc::SIGPROF),
    ("SIGWINCH", libc::SIGWINCH),
    ("SIGIO", libc::SIGIO),
    ("SIGPWR", libc::SIGPWR),
    ("SIGSYS", libc::SIGSYS),
];

/// The highest signal number `process.signal` accepts (Linux's `SIGRTMAX`).
pub const MAX_SIGNAL: i32 = 64;

/// The number of a signal name such as `"SIGTERM"`.
pub fn number(name: &str) -> Option<i32> {
    TABLE.iter().find(|(n, _)| *n == name).map(|&(_, v)| v)
}

/// The conventional name of a signal number, if it has one.
pub fn known(signal: i32) -> Option<&'static str> {
    TABLE.iter().find(|&&(_, v)| v == signal).map(|(n, _)| *n)
}

/// The name reported for a signal number: `"SIGKILL"`, or `"SIG<n>"` for a
/// number without a name (real-time signals).
pub fn name(signal: i32) -> String {
    known(signal).map_or_else(|| format!("SIG{signal}"), str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_numbers_round_trip() {
        for &(n, v) in TABLE {
            assert_eq!(number(n), Some(v));
            assert_eq!(name(v), n);
        }
        assert_eq!(number("SIGTERM"), Some(15));
        assert_eq!(number("TERM"), None);
        assert_eq!(number("sigterm"), None);
        assert_eq!(name(40), "SIG40");
    }
}
