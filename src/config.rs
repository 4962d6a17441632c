//! Every flag and environment variable, with its default, in one place.
//!
//! `--help` is generated from [`FLAGS`] and [`ENV_VARS`], so the table and
//! the help text cannot drift apart.

use std::ffi::OsString;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use crate::engine::outbound::{Limits, HEADROOM};
use crate::engine::EngineConfig;

const KIB: usize = 1024;
const MIB: usize = 1024 * KIB;

/// Longest inbound line: large enough for a pasted file or an image in
/// base64, small enough that one bad line cannot take much memory.
pub const DEFAULT_MAX_FRAME_BYTES: usize = 16 * MIB;
/// The reference gateway's grace: long enough to flush a few MiB and let
/// children exit on SIGTERM, short enough that a TUI's quit feels instant.
pub const DEFAULT_SHUTDOWN_GRACE: Duration = Duration::from_secs(1);
/// A TUI that reads nothing for 10 s while output waits is hung or gone.
pub const DEFAULT_STALL_TIMEOUT: Duration = Duration::from_secs(10);
/// Redis's client-output-buffer model: 8 MiB may wait for 10 s ...
pub const DEFAULT_SOFT_LIMIT_BYTES: usize = 8 * MIB;
/// ... for this long ...
pub const DEFAULT_SOFT_LIMIT_DURATION: Duration = Duration::from_secs(10);
/// ... and 64 MiB is never exceeded.
pub const DEFAULT_HARD_LIMIT_BYTES: usize = 64 * MIB;
/// Producers (child pipes) pause here: half the soft limit, so backpressure
/// starts well before any limit is near.
pub const DEFAULT_HIGH_WATER_BYTES: usize = 4 * MIB;
/// ... and resume here, so they do not flap on every write.
pub const DEFAULT_LOW_WATER_BYTES: usize = MIB;
/// A merged streaming frame stays below the 64 KiB line limit of common readers.
pub const DEFAULT_COALESCE_CAP_BYTES: usize = 60 * KIB;
/// Concurrent children per gateway.
pub const DEFAULT_MAX_PROCESSES: usize = 64;
/// Bytes queued for one child's stdin before `process.write` is refused.
pub const DEFAULT_CHILD_STDIN_LIMIT_BYTES: usize = MIB;
/// How often the parent is checked: "within about a second" with margin.
pub const PARENT_CHECK_INTERVAL: Duration = Duration::from_millis(500);

/// What SIGINT does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SigintPolicy {
    /// Ignore it: the TUI owns Ctrl+C and shares the process group.
    Ignore,
    /// Treat it like SIGTERM.
    Shutdown,
}

impl SigintPolicy {
    /// The flag value.
    pub fn as_str(self) -> &'static str {
        match self {
            SigintPolicy::Ignore => "ignore",
            SigintPolicy::Shutdown => "shutdown",
        }
    }
}

/// How the gateway's `gateway.ready` relates to the backend's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadyPolicy {
    /// Hold the gateway's ready until the backend's first `gateway.ready`
    /// event (or `--backend-ready-timeout`), then send one merged ready.
    Event,
    /// Send the gateway's ready at once; a backend ready becomes `backend.ready`.
    None,
}

impl ReadyPolicy {
    /// The flag value.
    pub fn as_str(self) -> &'static str {
        match self {
            ReadyPolicy::Event => "event",
            ReadyPolicy::None => "none",
        }
    }
}

/// When a backend that ended is started again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RestartPolicy {
    /// Never: the gateway exits with the backend's status (or, with
    /// `--keep-running`, answers backend-bound requests with `-32002`).
    Never,
    /// After an exit with a non-zero code or by a signal.
    OnFailure,
    /// After any exit.
    Always,
}

impl RestartPolicy {
    /// The flag value.
    pub fn as_str(self) -> &'static str {
        match self {
            RestartPolicy::Never => "never",
            RestartPolicy::OnFailure => "on-failure",
            RestartPolicy::Always => "always",
        }
    }
}

/// The backend bridge's settings (`tui-gateway [FLAGS] -- CMD [ARGS...]`).
#[derive(Debug, Clone)]
pub struct BackendConfig {
    /// The command after `--`.
    pub argv: Vec<String>,
    /// `--backend-cwd`
    pub cwd: Option<PathBuf>,
    /// `--backend-ready`
    pub ready: ReadyPolicy,
    /// `--backend-ready-timeout`
    pub ready_timeout: Duration,
    /// `--backend-restart`
    pub restart: RestartPolicy,
    /// `--backend-stdin-limit`
    pub stdin_limit_bytes: usize,
    /// `--backend-max-pending`
    pub max_pending: usize,
    /// `--stream-event` (added to the default `*.delta`)
    pub stream_events: Vec<String>,
    /// `--keep-running`
    pub keep_running: bool,
    /// `--local-process`
    pub local_process: bool,
    /// `--transparent`
    pub transparent: bool,
}

/// Default `--backend-ready-timeout`: a Python backend importing a large
/// application can take several seconds on a cold disk.
pub const DEFAULT_BACKEND_READY_TIMEOUT: Duration = Duration::from_secs(15);
/// Default `--backend-stdin-limit`: a few large pasted prompts.
pub const DEFAULT_BACKEND_STDIN_LIMIT_BYTES: usize = 4 * MIB;
/// Default `--backend-max-pending`: a TUI has a handful of requests in
/// flight, a pipelining client thousands; each costs about 80 bytes of
/// bookkeeping, so the bound is about 8 MiB.
pub const DEFAULT_BACKEND_MAX_PENDING: usize = 100_000;

/// The whole configuration of one gateway.
#[derive(Debug, Clone)]
pub struct Config {
    /// `--max-frame-bytes`
    pub max_frame_bytes: usize,
    /// `--shutdown-grace`
    pub shutdown_grace: Duration,
    /// `--stall-timeout`
    pub stall_timeout: Duration,
    /// `--outbound-soft-limit`
    pub soft_limit_bytes: usize,
    /// `--outbound-soft-seconds`
    pub soft_limit_duration: Duration,
    /// `--outbound-hard-limit`
    pub hard_limit_bytes: usize,
    /// `--outbound-high-water`
    pub high_water_bytes: usize,
    /// `--outbound-low-water`
    pub low_water_bytes: usize,
    /// `--coalesce-cap`
    pub coalesce_cap_bytes: usize,
    /// `--sigint`
    pub sigint: SigintPolicy,
    /// `--crash-log`
    pub crash_log: Option<PathBuf>,
    /// `--trace`
    pub trace: Option<PathBuf>,
    /// `--max-processes`
    pub max_processes: usize,
    /// `--child-stdin-limit`
    pub child_stdin_limit_bytes: usize,
    /// The bridge's flags; `backend.argv` is empty without `-- CMD`.
    pub backend: BackendConfig,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            max_frame_bytes: DEFAULT_MAX_FRAME_BYTES,
            shutdown_grace: DEFAULT_SHUTDOWN_GRACE,
            stall_timeout: DEFAULT_STALL_TIMEOUT,
            soft_limit_bytes: DEFAULT_SOFT_LIMIT_BYTES,
            soft_limit_duration: DEFAULT_SOFT_LIMIT_DURATION,
            hard_limit_bytes: DEFAULT_HARD_LIMIT_BYTES,
            high_water_bytes: DEFAULT_HIGH_WATER_BYTES,
            low_water_bytes: DEFAULT_LOW_WATER_BYTES,
            coalesce_cap_bytes: DEFAULT_COALESCE_CAP_BYTES,
            sigint: SigintPolicy::Ignore,
            crash_log: None,
            trace: None,
            max_processes: DEFAULT_MAX_PROCESSES,
            child_stdin_limit_bytes: DEFAULT_CHILD_STDIN_LIMIT_BYTES,
            backend: BackendConfig {
                argv: Vec::new(),
                cwd: None,
                ready: ReadyPolicy::Event,
                ready_timeout: DEFAULT_BACKEND_READY_TIMEOUT,
                restart: RestartPolicy::Never,
                stdin_limit_bytes: DEFAULT_BACKEND_STDIN_LIMIT_BYTES,
                max_pending: DEFAULT_BACKEND_MAX_PENDING,
                stream_events: Vec::new(),
                keep_running: false,
                local_process: false,
                transparent: false,
            },
        }
    }
}

/// One flag, whole: its name, value, default, help, how it is parsed and
/// how `gateway.info` shows it. `--help`, parsing and `config` in
/// `gateway.info` all come from [`FLAGS`], so they cannot drift apart.
#[derive(Clone, Copy)]
pub struct Flag {
    /// `--name`.
    pub name: &'static str,
    /// The value's placeholder; `None` for a switch that takes no value.
    pub value: Option<&'static str>,
    /// The default, as `--help` shows it.
    pub default: &'static str,
    /// What it does.
    pub help: &'static str,
    /// Applies a value (`""` for a switch).
    set: fn(&mut Config, &str, &str) -> Result<(), ConfigError>,
    /// The setting in force, for `gateway.info`.
    show: fn(&Config) -> serde_json::Value,
}

impl fmt::Debug for Flag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Flag").field("name", &self.name).finish()
    }
}

macro_rules! show {
    ($($field:tt)+) => {
        |c: &Config| serde_json::json!(c.$($field)+)
    };
}

/// Every flag. Bridge flags (from `--backend-cwd` on) matter only with `-- CMD`.
pub const FLAGS: &[Flag] = &[
    Flag {
        name: "--max-frame-bytes",
        value: Some("BYTES"),
        default: "16MiB",
        help: "longest inbound line (and backend line); a longer inbound line gets a -32600 error and is skipped, a longer backend line is dropped",
        set: |c, n, v| {
            c.max_frame_bytes = parse_bytes(n, v)?;
            Ok(())
        },
        show: show!(max_frame_bytes),
    },
    Flag {
        name: "--shutdown-grace",
        value: Some("SECONDS"),
        default: "1.0",
        help: "how long a shutdown may drain before it is forced (exit 4)",
        set: |c, n, v| {
            c.shutdown_grace = parse_seconds(n, v)?;
            Ok(())
        },
        show: show!(shutdown_grace.as_secs_f64()),
    },
    Flag {
        name: "--stall-timeout",
        value: Some("SECONDS"),
        default: "10",
        help: "no stdout progress for this long while output waits: exit 3",
        set: |c, n, v| {
            c.stall_timeout = parse_seconds(n, v)?;
            Ok(())
        },
        show: show!(stall_timeout.as_secs_f64()),
    },
    Flag {
        name: "--outbound-soft-limit",
        value: Some("BYTES"),
        default: "8MiB",
        help: "queued output above this for --outbound-soft-seconds: exit 3",
        set: |c, n, v| {
            c.soft_limit_bytes = parse_bytes(n, v)?;
            Ok(())
        },
        show: show!(soft_limit_bytes),
    },
    Flag {
        name: "--outbound-soft-seconds",
        value: Some("SECONDS"),
        default: "10",
        help: "how long the queue may stay above the soft limit",
        set: |c, n, v| {
            c.soft_limit_duration = parse_seconds(n, v)?;
            Ok(())
        },
        show: show!(soft_limit_duration.as_secs_f64()),
    },
    Flag {
        name: "--outbound-hard-limit",
        value: Some("BYTES"),
        default: "64MiB",
        help: "queued output never exceeds this: producers pause long before, and an answer that would not fit gets -32001",
        set: |c, n, v| {
            c.hard_limit_bytes = parse_bytes(n, v)?;
            Ok(())
        },
        show: show!(hard_limit_bytes),
    },
    Flag {
        name: "--outbound-high-water",
        value: Some("BYTES"),
        default: "4MiB",
        help: "every producer (requests, batch members, child and backend output) pauses at this much queued output; at least 1MiB below the hard limit",
        set: |c, n, v| {
            c.high_water_bytes = parse_bytes(n, v)?;
            Ok(())
        },
        show: show!(high_water_bytes),
    },
    Flag {
        name: "--outbound-low-water",
        value: Some("BYTES"),
        default: "1MiB",
        help: "producers resume when the reader has taken the queue down to this",
        set: |c, n, v| {
            c.low_water_bytes = parse_bytes(n, v)?;
            Ok(())
        },
        show: show!(low_water_bytes),
    },
    Flag {
        name: "--coalesce-cap",
        value: Some("BYTES"),
        default: "60KiB",
        help: "largest text a merged streaming event may carry",
        set: |c, n, v| {
            c.coalesce_cap_bytes = parse_bytes(n, v)?;
            Ok(())
        },
        show: show!(coalesce_cap_bytes),
    },
    Flag {
        name: "--sigint",
        value: Some("ignore|shutdown"),
        default: "ignore",
        help: "what SIGINT does (the TUI owns Ctrl+C)",
        set: |c, n, v| {
            c.sigint = match v {
                "ignore" => SigintPolicy::Ignore,
                "shutdown" => SigintPolicy::Shutdown,
                _ => return Err(bad(n, v, "ignore or shutdown")),
            };
            Ok(())
        },
        show: show!(sigint.as_str()),
    },
    Flag {
        name: "--crash-log",
        value: Some("PATH"),
        default: "(none)",
        help: "append exit, signal and crash entries to this file",
        set: |c, n, v| {
            if v.is_empty() {
                return Err(bad(n, v, "a file path"));
            }
            c.crash_log = Some(PathBuf::from(v));
            Ok(())
        },
        show: |c| serde_json::json!(c.crash_log.as_ref().map(|p| p.display().to_string())),
    },
    Flag {
        name: "--trace",
        value: Some("FILE"),
        default: "(none)",
        help: "append every frame in and out to FILE as NDJSON {t, dir, frame}; bounded and lossy, never slows the gateway (docs/protocol.md, Tracing)",
        set: |c, n, v| {
            if v.is_empty() {
                return Err(bad(n, v, "a file path"));
            }
            c.trace = Some(PathBuf::from(v));
            Ok(())
        },
        show: |c| serde_json::json!(c.trace.as_ref().map(|p| p.display().to_string())),
    },
    Flag {
        name: "--max-processes",
        value: Some("N"),
        default: "64",
        help: "most children process.spawn runs at once",
        set: |c, n, v| {
            c.max_processes = v.parse().map_err(|_| bad(n, v, "a whole number"))?;
            Ok(())
        },
        show: show!(max_processes),
    },
    Flag {
        name: "--child-stdin-limit",
        value: Some("BYTES"),
        default: "1MiB",
        help: "bytes queued for one child's stdin before process.write is refused",
        set: |c, n, v| {
            c.child_stdin_limit_bytes = parse_bytes(n, v)?;
            Ok(())
        },
        show: show!(child_stdin_limit_bytes),
    },
    Flag {
        name: "--backend-cwd",
        value: Some("DIR"),
        default: "(the gateway's)",
        help: "working directory of the backend CMD",
        set: |c, n, v| {
            if v.is_empty() {
                return Err(bad(n, v, "a directory"));
            }
            c.backend.cwd = Some(PathBuf::from(v));
            Ok(())
        },
        show: |c| serde_json::json!(c.backend.cwd.as_ref().map(|p| p.display().to_string())),
    },
    Flag {
        name: "--backend-ready",
        value: Some("event|none"),
        default: "event",
        help: "event: hold gateway.ready until the backend's own, then send one merged ready; none: send it at once",
        set: |c, n, v| {
            c.backend.ready = match v {
                "event" => ReadyPolicy::Event,
                "none" => ReadyPolicy::None,
                _ => return Err(bad(n, v, "event or none")),
            };
            Ok(())
        },
        show: show!(backend.ready.as_str()),
    },
    Flag {
        name: "--backend-ready-timeout",
        value: Some("SECONDS"),
        default: "15",
        help: "longest wait for the backend's gateway.ready; then ready goes out with backend_ready: false",
        set: |c, n, v| {
            c.backend.ready_timeout = parse_seconds(n, v)?;
            Ok(())
        },
        show: show!(backend.ready_timeout.as_secs_f64()),
    },
    Flag {
        name: "--backend-restart",
        value: Some("never|on-failure|always"),
        default: "never",
        help: "restart a backend that ended (backoff 250ms to 10s, at most 5 a minute)",
        set: |c, n, v| {
            c.backend.restart = match v {
                "never" => RestartPolicy::Never,
                "on-failure" => RestartPolicy::OnFailure,
                "always" => RestartPolicy::Always,
                _ => return Err(bad(n, v, "never, on-failure or always")),
            };
            Ok(())
        },
        show: show!(backend.restart.as_str()),
    },
    Flag {
        name: "--backend-stdin-limit",
        value: Some("BYTES"),
        default: "4MiB",
        help: "bytes queued for the backend's stdin; past it requests get -32001 \"backend overloaded\"",
        set: |c, n, v| {
            c.backend.stdin_limit_bytes = parse_bytes(n, v)?;
            Ok(())
        },
        show: show!(backend.stdin_limit_bytes),
    },
    Flag {
        name: "--backend-max-pending",
        value: Some("N"),
        default: "100000",
        help: "requests the backend may owe an answer at once; past it requests get -32001",
        set: |c, n, v| {
            c.backend.max_pending = v
                .parse()
                .ok()
                .filter(|&n: &usize| n > 0)
                .ok_or_else(|| bad(n, v, "a positive whole number"))?;
            Ok(())
        },
        show: show!(backend.max_pending),
    },
    Flag {
        name: "--stream-event",
        value: Some("TYPE"),
        default: "*.delta",
        help: "one more backend event type that coalesces while the UI is slow (repeatable)",
        set: |c, n, v| {
            if v.is_empty() {
                return Err(bad(n, v, "an event type such as message.delta"));
            }
            c.backend.stream_events.push(v.to_owned());
            Ok(())
        },
        show: show!(backend.stream_events),
    },
    Flag {
        name: "--keep-running",
        value: None,
        default: "off",
        help: "stay up when the backend is gone for good: backend-bound requests get -32002, gateway.* keeps working",
        set: |c, _, _| {
            c.backend.keep_running = true;
            Ok(())
        },
        show: show!(backend.keep_running),
    },
    Flag {
        name: "--local-process",
        value: None,
        default: "off",
        help: "serve process.* in the gateway even with a backend (it then shadows the backend's process.*)",
        set: |c, _, _| {
            c.backend.local_process = true;
            Ok(())
        },
        show: show!(backend.local_process),
    },
    Flag {
        name: "--transparent",
        value: None,
        default: "off",
        help: "add nothing to the stream: no gateway.ready, no backend.* events, every frame forwarded (any stdio JSON-RPC server)",
        set: |c, _, _| {
            c.backend.transparent = true;
            Ok(())
        },
        show: show!(backend.transparent),
    },
];

/// Environment variables read at start-up: name, the flag whose default it
/// sets (if any), and what it does. A flag on the command line makes its
/// variables irrelevant; an empty variable counts as unset. Of two variables
/// for one flag, the first listed wins.
pub const ENV_VARS: &[(&str, Option<&str>, &str)] = &[
    (
        "TUI_GATEWAY_SHUTDOWN_GRACE_S",
        Some("--shutdown-grace"),
        "default for --shutdown-grace",
    ),
    (
        "HERMES_TUI_GATEWAY_SHUTDOWN_GRACE_S",
        Some("--shutdown-grace"),
        "alias of the above, from the reference gateway (lower precedence)",
    ),
    (
        "TUI_GATEWAY_CRASH_LOG",
        Some("--crash-log"),
        "default for --crash-log",
    ),
    ("TUI_GATEWAY_TRACE", Some("--trace"), "default for --trace"),
    (
        "RUST_LOG",
        None,
        "log level for stderr diagnostics (default: warn)",
    ),
];

/// One line on what the gateway is.
pub const SUMMARY: &str = "a never-blocking NDJSON JSON-RPC 2.0 gateway for terminal UIs";

/// What it does, for `--help` and the manual page.
pub const DESCRIPTION: &str =
    "Reads JSON-RPC 2.0 frames (one per line) on stdin and writes responses and\n\
events on stdout. Diagnostics go to stderr. With -- CMD, CMD runs as the\n\
backend on private pipes: every method but gateway.* is forwarded to it as\n\
the same bytes, and its frames come back as it wrote them.";

/// Where the contract is written down.
pub const DOCS: &str =
    "The full contract is in the tui-gateway repository, in docs/: docs/protocol.md\n\
(framing, methods, events, errors, limits, signals, tracing), docs/process.md\n\
(process.*) and docs/bridge.md (-- CMD); tui-gateway --man prints a manual page.";

/// The methods, by who serves them.
pub const METHODS: &[(&str, &str)] = &[
    (
        "built-in",
        "gateway.ping, gateway.info, gateway.stats, gateway.shutdown, client.capabilities",
    ),
    (
        "processes",
        "process.spawn, process.write, process.close_stdin, process.signal, process.cancel, process.list, process.resize",
    ),
    (
        "with a backend",
        "only gateway.* (and process.* with --local-process) are the gateway's; the rest is forwarded",
    ),
    (
        "events (method \"event\", params {type, payload})",
        "gateway.ready (always the first line), process.output, process.exit; with a backend: backend.ready, backend.exited",
    ),
];

/// Arguments that print something and exit 0 instead of running.
pub const EARLY_EXITS: &[(&str, &str)] = &[
    ("-h, --help", "print this help"),
    ("-V, --version", "print the version"),
    (
        "--man",
        "print the manual page (roff: tui-gateway --man | man -l -)",
    ),
    (
        "--completions bash|zsh|fish",
        "print a completion script for that shell",
    ),
];

/// How the gateway takes each signal.
pub const SIGNALS: &[(&str, &str)] = &[
    (
        "SIGTERM, SIGHUP, SIGQUIT, SIGPWR, SIGXCPU, SIGABRT",
        "orderly shutdown (a second one: exit 4)",
    ),
    ("SIGINT", "as --sigint says"),
    (
        "SIGUSR1, SIGUSR2, SIGALRM, SIGVTALRM, SIGPROF, SIGXFSZ, SIGIO, SIGSTKFLT, SIGPIPE and the real-time signals",
        "ignored (counted in gateway.stats)",
    ),
];

/// Every exit code.
pub const EXIT_CODES: &[(&str, &str)] = &[
    (
        "0",
        "orderly shutdown (stdin EOF, gateway.shutdown, a shutdown signal, parent exited)",
    ),
    ("3", "stdout peer gone, stalled or too slow"),
    (
        "4",
        "shutdown deadline forced the exit (or a second shutdown signal)",
    ),
    ("64", "bad command line (or a --trace file that cannot be opened)"),
    (
        "69",
        "the backend CMD cannot be started (not found, not executable)",
    ),
    ("70", "internal error (a panic, or out of memory)"),
    ("74", "host I/O error writing stdout (ENOSPC, EIO, ...)"),
    (
        "N",
        "with a backend: the backend's own exit status once it is gone for good (128+S when a signal S ended it, as a shell reports it)",
    ),
];

/// Why the command line did not produce a configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigError {
    /// `--help` was asked for.
    Help,
    /// `--man`: print the manual page.
    Man,
    /// `--completions SHELL`: print a completion script.
    Completions(crate::manual::Shell),
    /// `--version` was asked for.
    Version,
    /// A bad flag or value; the text names it.
    Usage(String),
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::Help => f.write_str("help requested"),
            ConfigError::Man => f.write_str("manual page requested"),
            ConfigError::Completions(shell) => write!(f, "{shell:?} completions requested"),
            ConfigError::Version => f.write_str("version requested"),
            ConfigError::Usage(msg) => write!(f, "{msg} (see --help)"),
        }
    }
}

impl std::error::Error for ConfigError {}

impl Config {
    /// Parses the arguments (without the program name) and the environment.
    /// Everything after `--` is the backend command.
    pub fn parse<I, E>(args: I, env: E) -> Result<Config, ConfigError>
    where
        I: IntoIterator<Item = OsString>,
        E: Fn(&str) -> Option<OsString>,
    {
        let mut config = Config::default();
        // Flags first: a setting given on the command line makes its
        // environment variables irrelevant, even malformed ones.
        let mut given: Vec<String> = Vec::new();
        let mut args = args.into_iter();
        while let Some(arg) = args.next() {
            let arg = os_to_string("argument", arg)?;
            if arg == "--" {
                for word in args.by_ref() {
                    config
                        .backend
                        .argv
                        .push(os_to_string("backend command", word)?);
                }
                if config.backend.argv.is_empty() {
                    return Err(ConfigError::Usage(
                        "-- must be followed by the backend command".into(),
                    ));
                }
                break;
            }
            if arg == "--help" || arg == "-h" {
                return Err(ConfigError::Help);
            }
            if arg == "--version" || arg == "-V" {
                return Err(ConfigError::Version);
            }
            if arg == "--man" {
                return Err(ConfigError::Man);
            }
            if arg == "--completions" || arg.starts_with("--completions=") {
                let shell = match arg.split_once('=') {
                    Some((_, v)) => v.to_owned(),
                    None => match args.next() {
                        Some(v) => os_to_string("--completions", v)?,
                        None => {
                            return Err(ConfigError::Usage(
                                "--completions needs a shell: bash, zsh or fish".into(),
                            ))
                        }
                    },
                };
                return match crate::manual::Shell::parse(&shell) {
                    Some(shell) => Err(ConfigError::Completions(shell)),
                    None => Err(ConfigError::Usage(format!(
                        "--completions: unknown shell {shell:?} (expected bash, zsh or fish)"
                    ))),
                };
            }
            let (name, inline) = match arg.split_once('=') {
                Some((n, v)) if n.starts_with("--") => (n.to_owned(), Some(v.to_owned())),
                _ => (arg.clone(), None),
            };
            let Some(flag) = FLAGS.iter().find(|f| f.name == name) else {
                return Err(ConfigError::Usage(format!("unknown argument {arg:?}")));
            };
            let value = match (flag.value, inline) {
                (None, None) => String::new(),
                (None, Some(_)) => {
                    return Err(ConfigError::Usage(format!("{name} takes no value")))
                }
                (Some(_), Some(v)) => v,
                (Some(_), None) => match args.next() {
                    Some(v) => os_to_string(&name, v)?,
                    None => return Err(ConfigError::Usage(format!("{name} needs a value"))),
                },
            };
            (flag.set)(&mut config, flag.name, &value)?;
            given.push(name);
        }
        // Then the environment, for settings no flag gave. An empty variable
        // means unset, for every variable alike. Of two variables for one
        // flag, the first in ENV_VARS wins and the other is not read.
        for (var, flag, _) in ENV_VARS {
            let Some(flag) = flag else { continue };
            if given.iter().any(|g| g == flag) {
                continue;
            }
            let Some(value) = env(var).filter(|v| !v.is_empty()) else {
                continue;
            };
            let value = os_to_string(var, value)?;
            config
                .set(flag, &value)
                .map_err(|e| ConfigError::Usage(format!("{var}: {}", usage_text(&e))))?;
            given.push((*flag).to_owned());
        }
        config.validate()?;
        Ok(config)
    }

    fn set(&mut self, name: &str, value: &str) -> Result<(), ConfigError> {
        let flag = FLAGS
            .iter()
            .find(|f| f.name == name)
            .expect("ENV_VARS names flags of FLAGS");
        (flag.set)(self, flag.name, value)
    }

    /// True when a backend command was given (`-- CMD`).
    pub fn is_bridge(&self) -> bool {
        !self.backend.argv.is_empty()
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let usage = |msg: String| Err(ConfigError::Usage(msg));
        if self.max_frame_bytes == 0 || self.coalesce_cap_bytes == 0 || self.hard_limit_bytes == 0 {
            return usage(
                "--max-frame-bytes, --coalesce-cap and --outbound-hard-limit must be positive"
                    .into(),
            );
        }
        if self.low_water_bytes >= self.high_water_bytes {
            return usage(format!(
                "--outbound-low-water ({}) must be below --outbound-high-water ({})",
                self.low_water_bytes, self.high_water_bytes
            ));
        }
        if self.high_water_bytes.saturating_add(HEADROOM) > self.hard_limit_bytes {
            return usage(format!(
                "--outbound-high-water ({}) must be at least {HEADROOM} bytes below --outbound-hard-limit ({}): \
                 that headroom takes the one bounded step a producer may make past the mark",
                self.high_water_bytes, self.hard_limit_bytes
            ));
        }
        if self.backend.stdin_limit_bytes == 0 {
            return usage("--backend-stdin-limit must be positive".into());
        }
        if !self.is_bridge() {
            let bridge_only = FLAGS
                .iter()
                .skip_while(|f| f.name != "--backend-cwd")
                .find(|f| (f.show)(self) != (f.show)(&Config::default()));
            if let Some(flag) = bridge_only {
                return usage(format!(
                    "{} needs a backend command: tui-gateway [FLAGS] -- CMD [ARGS...]",
                    flag.name
                ));
            }
        }
        if self.soft_limit_bytes > self.hard_limit_bytes {
            return usage(format!(
                "--outbound-soft-limit ({}) must not exceed --outbound-hard-limit ({})",
                self.soft_limit_bytes, self.hard_limit_bytes
            ));
        }
        Ok(())
    }

    /// The engine's part of the configuration.
    pub fn engine(&self) -> EngineConfig {
        EngineConfig {
            max_frame_bytes: self.max_frame_bytes,
            outbound: Limits {
                soft_bytes: self.soft_limit_bytes,
                soft_duration: self.soft_limit_duration,
                hard_bytes: self.hard_limit_bytes,
                stall_timeout: self.stall_timeout,
                coalesce_cap: self.coalesce_cap_bytes,
                high_water: self.high_water_bytes,
                low_water: self.low_water_bytes,
            },
            shutdown_grace: self.shutdown_grace,
            settings: self.settings(),
        }
    }

    /// Every setting in force, keyed by flag name without the dashes, plus
    /// the backend command (`backend`, `null` without one).
    pub fn settings(&self) -> serde_json::Map<String, serde_json::Value> {
        let mut map: serde_json::Map<String, serde_json::Value> = FLAGS
            .iter()
            .map(|f| (f.name.trim_start_matches('-').to_owned(), (f.show)(self)))
            .collect();
        let backend = self.is_bridge().then(|| self.backend.argv.clone());
        map.insert("backend".into(), serde_json::json!(backend));
        map
    }

    /// The `--help` text.
    pub fn help() -> String {
        let mut text = format!(
            "tui-gateway: {SUMMARY}\n\n\
             Usage: tui-gateway [FLAGS]\n       \
             tui-gateway [FLAGS] -- CMD [ARGS...]   (bridge to an existing backend)\n       \
             tui-gateway --man | --completions bash|zsh|fish | --help | --version\n\n\
             {DESCRIPTION}\n\n\
             Methods:\n"
        );
        for (what, list) in METHODS {
            text.push_str(&format!("  {what}: {list}\n"));
        }
        text.push_str("\nFlags (sizes take a plain byte count or a KiB/MiB/GiB suffix):\n");
        for flag in FLAGS {
            let value = flag.value.map(|v| format!(" {v}")).unwrap_or_default();
            text.push_str(&format!(
                "  {}{value}\n      {} [default: {}]\n",
                flag.name, flag.help, flag.default
            ));
        }
        for (names, what) in EARLY_EXITS {
            text.push_str(&format!("  {names}\n      {what}\n"));
        }
        text.push_str(
            "\nEnvironment (a flag on the command line wins; an empty variable counts as unset):\n",
        );
        for (name, _, what) in ENV_VARS {
            text.push_str(&format!("  {name}\n      {what}\n"));
        }
        text.push_str("\nSignals:\n");
        for (signals, what) in SIGNALS {
            text.push_str(&format!("  {signals}: {what}\n"));
        }
        text.push_str("\nExit codes:\n");
        for (code, what) in EXIT_CODES {
            text.push_str(&format!("  {code:<4}{what}\n"));
        }
        text.push_str(&format!("\n{DOCS}\n"));
        text
    }
}

fn os_to_string(what: &str, value: OsString) -> Result<String, ConfigError> {
    value
        .into_string()
        .map_err(|v| ConfigError::Usage(format!("{what}: {v:?} is not valid UTF-8")))
}

/// The message inside a usage error.
fn usage_text(e: &ConfigError) -> String {
    match e {
        ConfigError::Usage(msg) => msg.clone(),
        other => other.to_string(),
    }
}

fn bad(name: &str, value: &str, expected: &str) -> ConfigError {
    ConfigError::Usage(format!(
        "{name}: invalid value {value:?}, expected {expected}"
    ))
}

/// `1.5` → 1.5 s. Negative, NaN and absurd (over a day) values are refused.
fn parse_seconds(name: &str, value: &str) -> Result<Duration, ConfigError> {
    match value.trim().parse::<f64>() {
        Ok(s) if s.is_finite() && (0.0..=86_400.0).contains(&s) => Ok(Duration::from_secs_f64(s)),
        _ => Err(bad(name, value, "seconds between 0 and 86400, such as 1.5")),
    }
}

/// `65536`, `64KiB`, `16MiB`, `1GiB` → bytes.
fn parse_bytes(name: &str, value: &str) -> Result<usize, ConfigError> {
    let v = value.trim();
    let (digits, unit) = match v.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => v.split_at(i),
        None => (v, ""),
    };
    let scale = match unit.trim() {
        "" | "B" => 1,
        "K" | "KiB" | "k" => KIB,
        "M" | "MiB" => MIB,
        "G" | "GiB" => 1024 * MIB,
        _ => {
            return Err(bad(
                name,
                value,
                "a byte count such as 65536, 64KiB or 16MiB",
            ))
        }
    };
    digits
        .parse::<usize>()
        .ok()
        .and_then(|n| n.checked_mul(scale))
        .ok_or_else(|| bad(name, value, "a byte count such as 65536, 64KiB or 16MiB"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `--help` shows each default as text beside the flag; the code uses a
    /// constant. Parsing every shown default must give the setting in
    /// force, so the two cannot drift apart. Defaults that are not values
    /// (`(none)`, `off`, `*.delta`) are the absence of the flag, and parse
    /// to nothing.
    #[test]
    fn every_default_that_help_shows_parses_to_the_setting_in_force() {
        let defaults = Config::default();
        let mut checked = 0;
        for flag in FLAGS {
            let (Some(_), false) = (flag.value, flag.default.starts_with(['(', '*'])) else {
                continue;
            };
            let mut config = Config::default();
            (flag.set)(&mut config, flag.name, flag.default)
                .unwrap_or_else(|e| panic!("{}: its default {:?}: {e}", flag.name, flag.default));
            assert_eq!(
                (flag.show)(&config),
                (flag.show)(&defaults),
                "{} shows {:?} as its default",
                flag.name,
                flag.default
            );
            checked += 1;
        }
        assert!(checked >= 15, "only {checked} flags checked");
    }

    fn parse(args: &[&str], env: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::parse(args.iter().map(OsString::from), |name| {
            env.iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| OsString::from(v))
        })
    }

    #[test]
    fn defaults_and_both_flag_forms() {
        let c = parse(&[], &[]).unwrap();
        assert_eq!(c.max_frame_bytes, 16 * MIB);
        assert_eq!(c.shutdown_grace, Duration::from_secs(1));
        let c = parse(
            &[
                "--max-frame-bytes",
                "64KiB",
                "--stall-timeout=0.5",
                "--sigint",
                "shutdown",
            ],
            &[],
        )
        .unwrap();
        assert_eq!(c.max_frame_bytes, 64 * KIB);
        assert_eq!(c.stall_timeout, Duration::from_millis(500));
        assert_eq!(c.sigint, SigintPolicy::Shutdown);
    }

    #[test]
    fn grace_env_precedence_flag_then_ours_then_alias() {
        let alias = [("HERMES_TUI_GATEWAY_SHUTDOWN_GRACE_S", "3")];
        assert_eq!(
            parse(&[], &alias).unwrap().shutdown_grace,
            Duration::from_secs(3)
        );
        let both = [alias[0], ("TUI_GATEWAY_SHUTDOWN_GRACE_S", "2")];
        assert_eq!(
            parse(&[], &both).unwrap().shutdown_grace,
            Duration::from_secs(2)
        );
        assert_eq!(
            parse(&["--shutdown-grace", "0.25"], &both)
                .unwrap()
                .shutdown_grace,
            Duration::from_millis(250)
        );
    }

    #[test]
    fn bad_input_is_a_usage_error_naming_the_problem() {
        for (args, needle) in [
            (&["--nope"][..], "--nope"),
            (&["--shutdown-grace"][..], "needs a value"),
            (&["--shutdown-grace", "-1"][..], "--shutdown-grace"),
            (&["--max-frame-bytes", "12XB"][..], "--max-frame-bytes"),
            (&["--sigint", "maybe"][..], "ignore or shutdown"),
            (&["--outbound-low-water", "8MiB"][..], "must be below"),
        ] {
            match parse(args, &[]) {
                Err(ConfigError::Usage(msg)) => assert!(msg.contains(needle), "{msg}"),
                other => panic!("{args:?}: {other:?}"),
            }
        }
        assert!(matches!(
            parse(&[], &[("TUI_GATEWAY_SHUTDOWN_GRACE_S", "soon")]),
            Err(ConfigError::Usage(_))
        ));
    }

    #[test]
    fn a_flag_makes_its_variables_irrelevant_even_malformed_ones() {
        let broken = [
            ("HERMES_TUI_GATEWAY_SHUTDOWN_GRACE_S", "soon"),
            ("TUI_GATEWAY_SHUTDOWN_GRACE_S", "-3"),
        ];
        let c = parse(&["--shutdown-grace", "0.5"], &broken).unwrap();
        assert_eq!(c.shutdown_grace, Duration::from_millis(500));
        let c = parse(&["--crash-log", "/tmp/x"], &[("TUI_GATEWAY_CRASH_LOG", "")]).unwrap();
        assert_eq!(c.crash_log, Some(PathBuf::from("/tmp/x")));
        // Without the flag, a malformed variable is an error that names it.
        match parse(&[], &broken[..1]) {
            Err(ConfigError::Usage(msg)) => {
                assert!(msg.contains("HERMES_TUI_GATEWAY_SHUTDOWN_GRACE_S"), "{msg}")
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn an_empty_variable_is_unset_for_every_variable() {
        let empty: Vec<(&str, &str)> = ENV_VARS.iter().map(|(n, ..)| (*n, "")).collect();
        let c = parse(&[], &empty).unwrap();
        assert_eq!(c.shutdown_grace, DEFAULT_SHUTDOWN_GRACE);
        assert_eq!(c.crash_log, None);
        // An empty primary variable falls through to the alias.
        let c = parse(
            &[],
            &[
                ("TUI_GATEWAY_SHUTDOWN_GRACE_S", ""),
                ("HERMES_TUI_GATEWAY_SHUTDOWN_GRACE_S", "2"),
            ],
        )
        .unwrap();
        assert_eq!(c.shutdown_grace, Duration::from_secs(2));
    }

    #[test]
    fn settings_name_every_flag() {
        let settings = Config::default().settings();
        assert_eq!(settings.len(), FLAGS.len() + 1);
        for flag in FLAGS {
            assert!(
                settings.contains_key(flag.name.trim_start_matches('-')),
                "{}",
                flag.name
            );
        }
        assert_eq!(settings["backend"], serde_json::Value::Null);
    }

    #[test]
    fn help_lists_every_flag_and_variable() {
        let help = Config::help();
        for flag in FLAGS {
            assert!(help.contains(flag.name));
        }
        for (name, ..) in ENV_VARS {
            assert!(help.contains(name));
        }
    }

    #[test]
    fn everything_after_the_double_dash_is_the_backend_command() {
        let c = parse(
            &[
                "--backend-restart",
                "on-failure",
                "--keep-running",
                "--",
                "python3",
                "-m",
                "app",
                "--help",
            ],
            &[],
        )
        .unwrap();
        assert_eq!(c.backend.argv, ["python3", "-m", "app", "--help"]);
        assert_eq!(c.backend.restart, RestartPolicy::OnFailure);
        assert!(c.backend.keep_running && c.is_bridge());
        let c = parse(
            &[
                "--stream-event",
                "a.chunk",
                "--stream-event=b.chunk",
                "--",
                "x",
            ],
            &[],
        )
        .unwrap();
        assert_eq!(c.backend.stream_events, ["a.chunk", "b.chunk"]);
        assert_eq!(c.settings()["backend"], serde_json::json!(["x"]));
    }

    #[test]
    fn bridge_flags_without_a_command_and_switches_with_values_are_usage_errors() {
        for (args, needle) in [
            (&["--"][..], "followed by the backend command"),
            (&["--keep-running"][..], "needs a backend command"),
            (&["--backend-ready", "none"][..], "needs a backend command"),
            (&["--transparent=yes", "--", "x"][..], "takes no value"),
            (&["--backend-ready", "soon", "--", "x"][..], "event or none"),
            (
                &["--backend-restart", "sometimes", "--", "x"][..],
                "on-failure",
            ),
            (&["--backend-stdin-limit", "0", "--", "x"][..], "positive"),
        ] {
            match parse(args, &[]) {
                Err(ConfigError::Usage(msg)) => assert!(msg.contains(needle), "{args:?}: {msg}"),
                other => panic!("{args:?}: {other:?}"),
            }
        }
    }
}
