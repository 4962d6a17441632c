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
    /// `--max-processes`
    pub max_processes: usize,
    /// `--child-stdin-limit`
    pub child_stdin_limit_bytes: usize,
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
            max_processes: DEFAULT_MAX_PROCESSES,
            child_stdin_limit_bytes: DEFAULT_CHILD_STDIN_LIMIT_BYTES,
        }
    }
}

/// A flag: name, value placeholder, default as shown, and what it does.
pub const FLAGS: &[(&str, &str, &str, &str)] = &[
    (
        "--max-frame-bytes",
        "BYTES",
        "16MiB",
        "longest inbound line; longer ones get a -32600 error and are skipped",
    ),
    (
        "--shutdown-grace",
        "SECONDS",
        "1.0",
        "how long a shutdown may drain before it is forced (exit 4)",
    ),
    (
        "--stall-timeout",
        "SECONDS",
        "10",
        "no stdout progress for this long while output waits: exit 3",
    ),
    (
        "--outbound-soft-limit",
        "BYTES",
        "8MiB",
        "queued output above this for --outbound-soft-seconds: exit 3",
    ),
    (
        "--outbound-soft-seconds",
        "SECONDS",
        "10",
        "how long the queue may stay above the soft limit",
    ),
    (
        "--outbound-hard-limit",
        "BYTES",
        "64MiB",
        "queued output never exceeds this: producers pause long before, and an answer that would not fit gets -32001",
    ),
    (
        "--outbound-high-water",
        "BYTES",
        "4MiB",
        "every producer (requests, batch members, child output) pauses at this much queued output; at least 1MiB below the hard limit",
    ),
    (
        "--outbound-low-water",
        "BYTES",
        "1MiB",
        "producers resume when the reader has taken the queue down to this",
    ),
    (
        "--coalesce-cap",
        "BYTES",
        "60KiB",
        "largest text a merged streaming event may carry",
    ),
    (
        "--sigint",
        "ignore|shutdown",
        "ignore",
        "what SIGINT does (the TUI owns Ctrl+C)",
    ),
    (
        "--crash-log",
        "PATH",
        "(none)",
        "append exit, signal and crash entries to this file",
    ),
    (
        "--max-processes",
        "N",
        "64",
        "most children process.spawn runs at once",
    ),
    (
        "--child-stdin-limit",
        "BYTES",
        "1MiB",
        "bytes queued for one child's stdin before process.write is refused",
    ),
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
    (
        "RUST_LOG",
        None,
        "log level for stderr diagnostics (default: warn)",
    ),
];

/// Why the command line did not produce a configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigError {
    /// `--help` was asked for.
    Help,
    /// `--version` was asked for.
    Version,
    /// A bad flag or value; the text names it.
    Usage(String),
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::Help => f.write_str("help requested"),
            ConfigError::Version => f.write_str("version requested"),
            ConfigError::Usage(msg) => write!(f, "{msg} (see --help)"),
        }
    }
}

impl std::error::Error for ConfigError {}

impl Config {
    /// Parses the arguments (without the program name) and the environment.
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
            if arg == "--help" || arg == "-h" {
                return Err(ConfigError::Help);
            }
            if arg == "--version" || arg == "-V" {
                return Err(ConfigError::Version);
            }
            let (name, inline) = match arg.split_once('=') {
                Some((n, v)) if n.starts_with("--") => (n.to_owned(), Some(v.to_owned())),
                _ => (arg.clone(), None),
            };
            if !FLAGS.iter().any(|f| f.0 == name) {
                return Err(ConfigError::Usage(format!("unknown argument {arg:?}")));
            }
            let value = match inline {
                Some(v) => v,
                None => match args.next() {
                    Some(v) => os_to_string(&name, v)?,
                    None => return Err(ConfigError::Usage(format!("{name} needs a value"))),
                },
            };
            config.set(&name, &value)?;
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
        match name {
            "--max-frame-bytes" => self.max_frame_bytes = parse_bytes(name, value)?,
            "--shutdown-grace" => self.shutdown_grace = parse_seconds(name, value)?,
            "--stall-timeout" => self.stall_timeout = parse_seconds(name, value)?,
            "--outbound-soft-limit" => self.soft_limit_bytes = parse_bytes(name, value)?,
            "--outbound-soft-seconds" => self.soft_limit_duration = parse_seconds(name, value)?,
            "--outbound-hard-limit" => self.hard_limit_bytes = parse_bytes(name, value)?,
            "--outbound-high-water" => self.high_water_bytes = parse_bytes(name, value)?,
            "--outbound-low-water" => self.low_water_bytes = parse_bytes(name, value)?,
            "--coalesce-cap" => self.coalesce_cap_bytes = parse_bytes(name, value)?,
            "--sigint" => {
                self.sigint = match value {
                    "ignore" => SigintPolicy::Ignore,
                    "shutdown" => SigintPolicy::Shutdown,
                    _ => return Err(bad(name, value, "ignore or shutdown")),
                }
            }
            "--crash-log" => {
                if value.is_empty() {
                    return Err(bad(name, value, "a file path"));
                }
                self.crash_log = Some(PathBuf::from(value));
            }
            "--max-processes" => {
                self.max_processes = value
                    .parse()
                    .map_err(|_| bad(name, value, "a whole number"))?
            }
            "--child-stdin-limit" => self.child_stdin_limit_bytes = parse_bytes(name, value)?,
            _ => unreachable!("FLAGS lists every name set() handles"),
        }
        Ok(())
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

    /// Every setting in force, keyed by flag name without the dashes.
    pub fn settings(&self) -> serde_json::Map<String, serde_json::Value> {
        use serde_json::json;
        let mut map = serde_json::Map::new();
        let mut put = |name: &str, value: serde_json::Value| {
            map.insert(name.to_owned(), value);
        };
        put("max-frame-bytes", json!(self.max_frame_bytes));
        put("shutdown-grace", json!(self.shutdown_grace.as_secs_f64()));
        put("stall-timeout", json!(self.stall_timeout.as_secs_f64()));
        put("outbound-soft-limit", json!(self.soft_limit_bytes));
        put(
            "outbound-soft-seconds",
            json!(self.soft_limit_duration.as_secs_f64()),
        );
        put("outbound-hard-limit", json!(self.hard_limit_bytes));
        put("outbound-high-water", json!(self.high_water_bytes));
        put("outbound-low-water", json!(self.low_water_bytes));
        put("coalesce-cap", json!(self.coalesce_cap_bytes));
        put("sigint", json!(self.sigint.as_str()));
        put(
            "crash-log",
            json!(self.crash_log.as_ref().map(|p| p.display().to_string())),
        );
        put("max-processes", json!(self.max_processes));
        put("child-stdin-limit", json!(self.child_stdin_limit_bytes));
        map
    }

    /// The `--help` text.
    pub fn help() -> String {
        let mut text = String::from(
            "tui-gateway: a never-blocking NDJSON JSON-RPC 2.0 gateway for terminal UIs\n\n\
             Usage: tui-gateway [FLAGS]\n\n\
             Reads JSON-RPC 2.0 frames (one per line) on stdin and writes responses and\n\
             events on stdout. Diagnostics go to stderr. The full contract is in the\n\
             tui-gateway documentation: protocol.md (framing, methods, events, errors,\n\
             limits, signals) and process.md (process.*).\n\n\
             Methods:\n  \
             gateway.ping, gateway.info, gateway.stats, gateway.shutdown, client.capabilities\n  \
             process.spawn, process.write, process.close_stdin, process.signal, process.list,\n  \
             process.resize\n\
             Events (method \"event\", params {type, payload}):\n  \
             gateway.ready (always the first line), process.output, process.exit\n\n\
             Flags (sizes take a plain byte count or a KiB/MiB/GiB suffix):\n",
        );
        for (name, value, default, what) in FLAGS {
            text.push_str(&format!(
                "  {name} {value}\n      {what} [default: {default}]\n"
            ));
        }
        text.push_str(
            "  -h, --help\n      print this help\n  -V, --version\n      print the version\n",
        );
        text.push_str(
            "\nEnvironment (a flag on the command line wins; an empty variable counts as unset):\n",
        );
        for (name, _, what) in ENV_VARS {
            text.push_str(&format!("  {name}\n      {what}\n"));
        }
        text.push_str(
            "\nSignals:\n  \
             SIGTERM, SIGHUP, SIGQUIT, SIGPWR, SIGXCPU, SIGABRT: orderly shutdown (a second one: exit 4)\n  \
             SIGINT: as --sigint says\n  \
             SIGUSR1, SIGUSR2, SIGALRM, SIGVTALRM, SIGPROF, SIGXFSZ, SIGIO, SIGSTKFLT, SIGPIPE and\n  \
             the real-time signals: ignored (counted in gateway.stats)\n",
        );
        text.push_str(
            "\nExit codes:\n  0   orderly shutdown (stdin EOF, gateway.shutdown, a shutdown signal, parent exited)\n  \
             3   stdout peer gone, stalled or too slow\n  \
             4   shutdown deadline forced the exit (or a second shutdown signal)\n  \
             64  bad command line\n  \
             70  internal error (a panic, or out of memory)\n  \
             74  host I/O error writing stdout (ENOSPC, EIO, ...)\n",
        );
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
        assert_eq!(settings.len(), FLAGS.len());
        for (name, ..) in FLAGS {
            assert!(
                settings.contains_key(name.trim_start_matches('-')),
                "{name}"
            );
        }
    }

    #[test]
    fn help_lists_every_flag_and_variable() {
        let help = Config::help();
        for (name, ..) in FLAGS {
            assert!(help.contains(name));
        }
        for (name, ..) in ENV_VARS {
            assert!(help.contains(name));
        }
    }
}
