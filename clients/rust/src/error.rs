//! The client's errors: one enum, `std::error::Error`, `Send + Sync`.

use std::fmt;
use std::io;
use std::time::Duration;

use serde_json::Value;

/// How the gateway process ended, and what it said about it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GatewayExit {
    /// The gateway's OS process id.
    pub pid: u32,
    /// Its exit code, or `None` when a signal killed it.
    pub code: Option<i32>,
    /// The signal that killed it (`"SIGKILL"`, ...), if one did.
    pub signal: Option<String>,
    /// The documented meaning of the exit code (`"orderly shutdown"`, `"bad
    /// command line"`, ...; the repository's `docs/protocol.md`, "Exit codes").
    pub reason: String,
    /// The gateway's own `[gateway-exit] <reason>` stderr line, without the
    /// prefix (`"stdin EOF"`, `"signal SIGTERM"`, ...).
    pub exit_reason: Option<String>,
    /// The last lines of its stderr (at most 50).
    pub stderr_tail: Vec<String>,
    /// Process groups the client killed because the gateway died by a signal
    /// (so it could not stop the commands it ran).
    pub orphans_killed: Vec<u32>,
}

impl GatewayExit {
    /// Exit code 0: an orderly shutdown that drained in time.
    pub fn success(&self) -> bool {
        self.code == Some(0)
    }

    /// The documented meaning of an exit (the repository's
    /// `docs/protocol.md`, "Exit codes").
    pub(crate) fn meaning(code: Option<i32>, signal: Option<&str>) -> &'static str {
        match (code, signal) {
            (_, Some(_)) => "killed by a signal (no shutdown ran)",
            (Some(0), _) => "orderly shutdown",
            (Some(3), _) => "stdout peer gone, stalled, or too slow",
            (Some(4), _) => "the shutdown deadline forced the exit",
            (Some(64), _) => "bad command line",
            (Some(69), _) => "the backend command cannot be started",
            (Some(70), _) => "internal error (a panic, or out of memory)",
            (Some(74), _) => "host I/O error writing stdout",
            (Some(_), None) => "the backend's own status, or an unknown code",
            (None, None) => "unknown",
        }
    }
}

impl fmt::Display for GatewayExit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.code, &self.signal) {
            (_, Some(sig)) => write!(f, "tui-gateway (pid {}) killed by {sig}", self.pid)?,
            (Some(code), None) => write!(
                f,
                "tui-gateway (pid {}) exited with code {code} ({})",
                self.pid, self.reason
            )?,
            (None, None) => write!(f, "tui-gateway (pid {}) exited", self.pid)?,
        }
        if let Some(reason) = &self.exit_reason {
            write!(f, ": {reason}")?;
        }
        Ok(())
    }
}

/// Every error of the client. Its `Debug` is its message, so that a `main`
/// returning `Result<(), Error>` prints something readable; match on the
/// variants for the details.
#[non_exhaustive]
pub enum Error {
    /// The binary was not found; `searched` says where the client looked.
    NotFound { searched: Vec<String> },
    /// The gateway did not start: it could not be executed, exited before
    /// `gateway.ready`, or sent none in time (it is killed then).
    Start {
        message: String,
        exit: Option<Box<GatewayExit>>,
    },
    /// An error response: `-32601` unknown method, `-32602` bad params,
    /// `-32000` the handler failed, `-32001` overloaded (retry later), ...
    Rpc {
        method: String,
        code: i64,
        message: String,
        data: Option<Value>,
    },
    /// The gateway exited: pending calls and process handles end with this.
    Exited(Box<GatewayExit>),
    /// [`Gateway::close`](crate::Gateway::close) was called.
    Closed,
    /// No answer within the timeout (the call is forgotten; a late answer is
    /// dropped). For `process.cancel`, the ladder goes on.
    Timeout { method: String, after: Duration },
    /// Writing to or reading from the gateway failed.
    Io(io::Error),
    /// A bad argument (a cwd that is not UTF-8, ...).
    InvalidInput(String),
    /// The gateway answered something this client cannot read.
    Protocol(String),
}

impl Error {
    /// The JSON-RPC error code, for [`Error::Rpc`].
    pub fn code(&self) -> Option<i64> {
        match self {
            Error::Rpc { code, .. } => Some(*code),
            _ => None,
        }
    }

    /// `-32001`: a bounded resource is full (a child's stdin queue, the
    /// process table); retry later.
    pub fn is_overloaded(&self) -> bool {
        self.code() == Some(-32001)
    }

    /// The process is gone: its exit event was already sent (`-32602`
    /// "unknown proc"), or nothing of it is left to signal (`-32000` ESRCH).
    pub fn is_process_gone(&self) -> bool {
        match self {
            Error::Rpc {
                code: -32602,
                message,
                ..
            } => message.starts_with("unknown proc"),
            Error::Rpc {
                code: -32000,
                data: Some(data),
                ..
            } => data.get("code").and_then(serde_json::Value::as_str) == Some("ESRCH"),
            _ => false,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::NotFound { searched } => write!(
                f,
                "tui-gateway not found (looked at: {}); install it with `cargo install --locked --path .` \
                 in a checkout of tui-gateway, or set TUI_GATEWAY_BIN to the binary",
                searched.join(", ")
            ),
            Error::Start { message, exit } => {
                write!(f, "tui-gateway did not start: {message}")?;
                if let Some(exit) = exit {
                    write!(f, "; {exit}")?;
                    if !exit.stderr_tail.is_empty() {
                        write!(f, "\nstderr:\n{}", exit.stderr_tail.join("\n"))?;
                    }
                }
                Ok(())
            }
            Error::Rpc { method, code, message, data } => {
                write!(f, "{method}: error {code}: {message}")?;
                if let Some(data) = data {
                    write!(f, " ({data})")?;
                }
                Ok(())
            }
            Error::Exited(exit) => write!(f, "the gateway exited: {exit}"),
            Error::Closed => f.write_str("the gateway is closed"),
            Error::Timeout { method, after } => write!(f, "{method}: no answer within {after:?}"),
            Error::Io(e) => write!(f, "I/O error talking to the gateway: {e}"),
            Error::InvalidInput(m) => write!(f, "invalid input: {m}"),
            Error::Protocol(m) => write!(f, "protocol error: {m}"),
        }
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io(e) => Some(e),
            _ => None,
        }
    }
}

impl From<io::Error> for Error {
    fn from(e: io::Error) -> Error {
        Error::Io(e)
    }
}

/// `Result<T, tui_gateway_client::Error>`.
pub type Result<T, E = Error> = std::result::Result<T, E>;
