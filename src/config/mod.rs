//! The gateway's configuration: every setting with its default, read from
//! the command line and the environment.
//!
//! `--help`, the manual page, the completions and `gateway.info` are
//! generated from [`FLAGS`] and [`ENV_VARS`], so none of them can drift
//! from what the parser takes.
//!
//! * this file: the settings ([`Config`]), their defaults, parsing and
//!   validation;
//! * `flags`: every flag and environment variable, typed;
//! * `help`: the rest of `--help` and the manual page.

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
/// The largest `--max-frame-bytes`: the scanner keeps a frame's offsets
/// in 32 bits, so the envelope it finds stays small to move.
pub const MAX_FRAME_BYTES_LIMIT: usize = u32::MAX as usize;
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

/// Default `--session-linger`: a detached session with nothing running
/// waits this long for its client.
pub const DEFAULT_SESSION_LINGER: Duration = Duration::from_secs(600);
/// Default `--session-journal`: the frames a session keeps for a client
/// that comes back.
pub const DEFAULT_SESSION_JOURNAL_BYTES: usize = 64 * MIB;

/// What the command line asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Serve a client on stdio (in a session with `--session`).
    Serve,
    /// `tui-gateway attach NAME`: relay stdio to a running session.
    Attach(String),
    /// `tui-gateway sessions [--json]`: list the running sessions.
    Sessions {
        /// `--json`: an array of `gateway.session` objects.
        json: bool,
    },
}

/// Where a client's stream resumes when it attaches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cursor {
    /// It has the session's first N frames.
    At(u64),
    /// From the first frame not yet written, with the frame's index said
    /// (`gateway.attached`): a client that keeps a cursor, attaching fresh.
    Latest,
}

/// Where an attach starts (`--frames-received`, `--epoch`, `--takeover`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AttachConfig {
    /// `--frames-received`
    pub frames_received: Option<Cursor>,
    /// `--epoch`
    pub epoch: Option<String>,
    /// `--takeover`
    pub takeover: bool,
}

/// Sessions (`docs/sessions.md`).
#[derive(Debug, Clone)]
pub struct SessionConfig {
    /// `--session`
    pub name: Option<String>,
    /// `--session-linger`
    pub linger: Duration,
    /// `--session-journal`
    pub journal_bytes: usize,
    /// How a relay attaches.
    pub attach: AttachConfig,
}

/// The whole configuration of one gateway.
#[derive(Debug, Clone)]
pub struct Config {
    /// What to do.
    pub command: Command,
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
    /// Sessions.
    pub session: SessionConfig,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            command: Command::Serve,
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
            session: SessionConfig {
                name: None,
                linger: DEFAULT_SESSION_LINGER,
                journal_bytes: DEFAULT_SESSION_JOURNAL_BYTES,
                attach: AttachConfig::default(),
            },
        }
    }
}

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
        let mut args = args.into_iter().peekable();
        match args.peek().and_then(|a| a.to_str()) {
            Some("sessions") => {
                args.next();
                let mut json = false;
                for arg in args {
                    match arg.to_str() {
                        Some("--json") => json = true,
                        Some("--help" | "-h") => return Err(ConfigError::Help),
                        _ => {
                            return Err(ConfigError::Usage(format!(
                                "sessions takes only --json, not {arg:?}"
                            )))
                        }
                    }
                }
                config.command = Command::Sessions { json };
                return Ok(config);
            }
            Some("attach") => {
                args.next();
                let name = match args.next() {
                    Some(name) => os_to_string("attach", name)?,
                    None => {
                        return Err(ConfigError::Usage(
                            "attach needs a session name: tui-gateway attach NAME".into(),
                        ))
                    }
                };
                flags::check_session_name(&name)
                    .map_err(|why| ConfigError::Usage(format!("attach {name:?}: {why}")))?;
                config.command = Command::Attach(name);
            }
            _ => {}
        }
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
            if matches!(config.command, Command::Attach(_)) && !ATTACH_FLAGS.contains(&flag.name) {
                return Err(ConfigError::Usage(format!(
                    "attach takes only {}, not {name}",
                    ATTACH_FLAGS.join(", ")
                )));
            }
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
            flag.set(&mut config, &value)?;
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
        flag.set(self, value)
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
        if self.max_frame_bytes > MAX_FRAME_BYTES_LIMIT {
            return usage(format!(
                "--max-frame-bytes must be at most {MAX_FRAME_BYTES_LIMIT} (4 GiB - 1): a frame's offsets are 32-bit"
            ));
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
            let defaults = Config::default();
            let bridge_only = FLAGS
                .iter()
                .filter(|f| f.bridge_only)
                .find(|f| f.show(self) != f.show(&defaults));
            if let Some(flag) = bridge_only {
                return usage(format!(
                    "{} needs a backend command: tui-gateway [FLAGS] -- CMD [ARGS...]",
                    flag.name
                ));
            }
        }
        let attach_given = self.session.attach != AttachConfig::default();
        if attach_given && self.session.name.is_none() && self.command == Command::Serve {
            return usage(
                "--frames-received, --epoch and --takeover are for attaching: tui-gateway attach NAME, or --session NAME"
                    .into(),
            );
        }
        if self.session.name.is_some() && self.session.journal_bytes < self.hard_limit_bytes {
            return usage(format!(
                "--session-journal ({}) must be at least --outbound-hard-limit ({}): the journal holds every frame not yet written",
                self.session.journal_bytes, self.hard_limit_bytes
            ));
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
            session: None,
        }
    }

    /// Every setting in force, keyed by flag name without the dashes, plus
    /// the backend command (`backend`, `null` without one).
    pub fn settings(&self) -> serde_json::Map<String, serde_json::Value> {
        let mut map: serde_json::Map<String, serde_json::Value> = FLAGS
            .iter()
            .map(|f| (f.name.trim_start_matches('-').to_owned(), f.show(self)))
            .collect();
        let backend = self.is_bridge().then(|| self.backend.argv.clone());
        map.insert("backend".into(), serde_json::json!(backend));
        map
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

mod flags;
mod help;
#[cfg(test)]
mod tests;

pub use self::flags::{check_session_name, Flag, ENV_VARS, FLAGS};

/// The flags `tui-gateway attach NAME` takes.
pub const ATTACH_FLAGS: &[&str] = &["--frames-received", "--epoch", "--takeover"];
pub use self::help::{DESCRIPTION, DOCS, EARLY_EXITS, EXIT_CODES, METHODS, SIGNALS, SUMMARY};
