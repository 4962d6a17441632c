//! What a service may ask of the shell: the few operations on child
//! processes that need file descriptors or syscalls.
//!
//! The engine never touches an fd. A service that runs children asks the
//! [`Host`] to spawn, write, signal and release them, and hears back through
//! [`ChildEvent`]s that the shell turns readiness into. Tests and fuzz
//! targets pass [`NoHost`], which refuses every request.

use std::io;
use std::path::PathBuf;

/// Identifies one child for as long as the host holds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ChildKey(pub usize);

/// Which output of a child.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OutputStream {
    /// The child's stdout pipe (and its stderr, when merged).
    Stdout,
    /// The child's stderr pipe.
    Stderr,
    /// The master side of the child's pseudo-terminal (stdout and stderr
    /// both, as a terminal shows them).
    Pty,
}

impl OutputStream {
    /// The name used on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            OutputStream::Stdout => "stdout",
            OutputStream::Stderr => "stderr",
            OutputStream::Pty => "pty",
        }
    }
}

/// A terminal's size in character cells.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PtySize {
    /// Rows, 1 to 10,000.
    pub rows: u16,
    /// Columns, 1 to 10,000.
    pub cols: u16,
}

/// Which processes a signal reaches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignalScope {
    /// The child's process group (its own, made at spawn).
    Group,
    /// The child and every descendant of it, whatever group or session
    /// they moved to.
    Tree,
}

/// Where a child's stdin comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StdinMode {
    /// A pipe the service writes through [`Host::write_stdin`].
    Pipe,
    /// `/dev/null`.
    Null,
}

/// Where a child's stderr goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StderrMode {
    /// Its own pipe, reported as [`OutputStream::Stderr`].
    Pipe,
    /// The same pipe as stdout.
    Merge,
    /// `/dev/null`.
    Null,
}

/// Everything needed to start a child.
#[derive(Debug, Clone)]
pub struct SpawnSpec {
    /// Program and arguments; `argv[0]` is looked up in `PATH`.
    pub argv: Vec<String>,
    /// Working directory, if not the gateway's.
    pub cwd: Option<PathBuf>,
    /// Start from an empty environment instead of the gateway's.
    pub clear_env: bool,
    /// Variables to set (`Some`) or remove (`None`), applied in order.
    pub env: Vec<(String, Option<String>)>,
    /// The child's stdin.
    pub stdin: StdinMode,
    /// The child's stderr.
    pub stderr: StderrMode,
    /// A pseudo-terminal of this size as the child's stdin, stdout, stderr
    /// and controlling terminal (`stdin` and `stderr` are then ignored).
    pub pty: Option<PtySize>,
    /// Resource limits set in the child before `exec` (`setrlimit`); a limit
    /// the kernel refuses fails the spawn.
    pub limits: ResourceLimits,
}

/// Resource limits for one child, each `None` when not limited. Each is set
/// with `setrlimit` in the child before `exec`, so it holds per process of
/// the tree (every descendant inherits it), not for the tree as a whole.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ResourceLimits {
    /// `RLIMIT_DATA`: the data segment and private anonymous mappings
    /// (heap, `mmap`), in bytes. Allocation past it fails with `ENOMEM`.
    pub memory_bytes: Option<u64>,
    /// `RLIMIT_CPU`: CPU seconds; SIGXCPU at the limit, SIGKILL a second later.
    pub cpu_seconds: Option<u64>,
    /// `RLIMIT_NOFILE`: open file descriptors (one more than the highest fd).
    pub open_files: Option<u64>,
    /// `RLIMIT_NPROC`: processes *of the user*, counted across the whole
    /// machine, not only this command's.
    pub processes: Option<u64>,
    /// `RLIMIT_FSIZE`: the largest file the child may write, in bytes;
    /// SIGXFSZ past it.
    pub file_size_bytes: Option<u64>,
}

impl ResourceLimits {
    /// True when nothing is limited.
    pub fn is_empty(&self) -> bool {
        *self == ResourceLimits::default()
    }
}

/// A child the host started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Spawned {
    /// The handle for later requests and events.
    pub key: ChildKey,
    /// The OS process id (also its process-group id).
    pub pid: u32,
}

/// How a child ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitStatus {
    /// Exited with this code.
    Code(i32),
    /// Killed by this signal number.
    Signal(i32),
}

impl ExitStatus {
    /// The `code` and `signal` members of an exit on the wire: one is
    /// `null`, the signal by name.
    pub fn fields(self) -> (serde_json::Value, serde_json::Value) {
        use serde_json::Value;
        match self {
            ExitStatus::Code(c) => (Value::from(c), Value::Null),
            ExitStatus::Signal(s) => (Value::Null, Value::from(crate::signal_name::name(s))),
        }
    }

    /// The status a shell would report: the code, or 128 + the signal.
    pub fn shell_code(self) -> i32 {
        match self {
            ExitStatus::Code(c) => c,
            ExitStatus::Signal(s) => 128 + s,
        }
    }

    /// "exited with code 3", "was killed by SIGKILL": for reasons and logs.
    pub fn describe(self) -> String {
        match self {
            ExitStatus::Code(c) => format!("exited with code {c}"),
            ExitStatus::Signal(s) => {
                format!("was killed by {}", crate::signal_name::name(s))
            }
        }
    }
}

/// What the kernel reported about a reaped child's use of resources
/// (`wait4`'s `rusage`: the child and the descendants it waited for).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    /// Peak resident set size, in bytes.
    pub max_rss_bytes: u64,
    /// User CPU time, in milliseconds.
    pub user_ms: u64,
    /// System CPU time, in milliseconds.
    pub system_ms: u64,
    /// The command's own cgroup recorded an OOM kill (only where the host
    /// gives commands with memory limits a cgroup).
    pub oom_killed: bool,
}

/// What the shell reports about a child.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChildEvent {
    /// Bytes read from one of its pipes.
    Output(OutputStream, Vec<u8>),
    /// That pipe reached EOF (or failed, which ends it the same way).
    Eof(OutputStream),
    /// Its stdin pipe can take more bytes.
    StdinWritable,
    /// Its stdin pipe is closed on the far side (the child closed it or exited).
    StdinGone,
    /// It was reaped, with what the kernel reported of its use of
    /// resources (`None` where it reported nothing).
    Exited(ExitStatus, Option<Usage>),
}

/// Child-process operations the shell performs for services.
pub trait Host {
    /// Starts a child in a new process group, with non-blocking pipes that
    /// the shell watches. Fails with the OS error of the failed spawn.
    fn spawn(&mut self, spec: &SpawnSpec) -> io::Result<Spawned>;
    /// Writes to the child's stdin without blocking; `WouldBlock` when full.
    fn write_stdin(&mut self, key: ChildKey, data: &[u8]) -> io::Result<usize>;
    /// Closes the child's stdin (idempotent).
    fn close_stdin(&mut self, key: ChildKey);
    /// Sends `signal` to the child's process group, or its whole tree. Never
    /// reaches a process that is not provably the gateway's. Signal 0 asks
    /// whether any of them is left: `ESRCH` when none is. Once the child is
    /// reaped, its tree is what is left of its group plus every descendant
    /// found below it by an earlier `Tree` signal, among the gateway's
    /// descendants.
    fn signal(&mut self, key: ChildKey, signal: i32, scope: SignalScope) -> io::Result<()>;
    /// Sends `signal` to every descendant of the gateway, tracked children
    /// and adopted orphans alike, in any group or session.
    fn signal_descendants(&mut self, signal: i32);
    /// Types the terminal's interrupt character (`VINTR`, usually Ctrl+C)
    /// into the child's terminal, as a user would; `Unsupported` for a
    /// child without one, `WouldBlock` when the terminal takes no input now.
    fn interrupt(&mut self, _key: ChildKey) -> io::Result<()> {
        Err(io::ErrorKind::Unsupported.into())
    }
    /// Sets the window size of the child's terminal; `Unsupported` for a
    /// child without one.
    fn resize(&mut self, key: ChildKey, size: PtySize) -> io::Result<()>;
    /// The service is done with this child (it exited and its pipes are
    /// drained): the host may forget it.
    fn release(&mut self, key: ChildKey);
    /// Writes one line (ending in `\n`, at most 4 KiB, so one atomic pipe
    /// write) to the gateway's stderr without blocking; false if dropped.
    fn stderr_line(&mut self, _line: &[u8]) -> bool {
        false
    }
    /// Host-side counters for `gateway.stats` (stderr drops, children alive).
    fn stats(&self) -> serde_json::Map<String, serde_json::Value> {
        serde_json::Map::new()
    }
    /// Host-side facts for `gateway.info` (how the process tree is held).
    fn info(&self) -> serde_json::Map<String, serde_json::Value> {
        serde_json::Map::new()
    }
}

/// A host that runs nothing: for in-memory engines (unit tests, fuzzing).
#[cfg(any(test, feature = "testing"))]
#[derive(Debug, Default, Clone, Copy)]
pub struct NoHost;

#[cfg(any(test, feature = "testing"))]
impl Host for NoHost {
    fn spawn(&mut self, _spec: &SpawnSpec) -> io::Result<Spawned> {
        Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "this engine has no process host",
        ))
    }
    fn write_stdin(&mut self, _key: ChildKey, _data: &[u8]) -> io::Result<usize> {
        Err(io::ErrorKind::NotFound.into())
    }
    fn close_stdin(&mut self, _key: ChildKey) {}
    fn signal(&mut self, _key: ChildKey, _signal: i32, _scope: SignalScope) -> io::Result<()> {
        Err(io::ErrorKind::NotFound.into())
    }
    fn signal_descendants(&mut self, _signal: i32) {}
    fn resize(&mut self, _key: ChildKey, _size: PtySize) -> io::Result<()> {
        Err(io::ErrorKind::NotFound.into())
    }
    fn release(&mut self, _key: ChildKey) {}
}
