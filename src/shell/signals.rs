//! The signals the gateway handles, delivered as readiness through
//! signal-hook-mio: SIGTERM, SIGHUP, SIGINT and SIGCHLD. SIGPIPE is ignored
//! so a closed pipe is an `EPIPE`, never a death.

use std::io;

pub use signal_hook_mio::v1_0::Signals;

/// The signals the loop listens to.
pub const HANDLED: [i32; 4] = [libc::SIGTERM, libc::SIGHUP, libc::SIGINT, libc::SIGCHLD];

/// Registers the handlers and ignores SIGPIPE.
pub fn install() -> io::Result<Signals> {
    // SAFETY: setting SIGPIPE's disposition to SIG_IGN is async-signal-safe
    // and affects only this process (children get the default back on exec).
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_IGN);
    }
    Signals::new(HANDLED)
}

/// The name of a signal the loop handles, for logs and the crash log.
pub fn name(signal: i32) -> &'static str {
    crate::signal_name::known(signal).unwrap_or("SIG?")
}
