//! Every flag and environment variable, with its typed setting: parsing,
//! `gateway.info`'s `config`, `--help`, the manual page and the completions
//! all read this table.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use super::*;

/// One flag, whole: its name, value, help, and the typed setting it reads
/// and writes. `--help` (defaults included, rendered from
/// `Config::default()`), the manual page, the completions, parsing and
/// `config` in `gateway.info` all come from [`FLAGS`], so they cannot drift
/// apart.
#[derive(Clone, Copy)]
pub struct Flag {
    /// `--name`.
    pub name: &'static str,
    /// The value's placeholder; `None` for a switch that takes no value.
    pub value: Option<&'static str>,
    /// What it does.
    pub help: &'static str,
    /// It matters only with a backend (`-- CMD`); given without one it is a
    /// usage error.
    pub bridge_only: bool,
    setting: Setting,
}

/// A reader and a writer of one field of [`Config`].
type Field<T> = (fn(&Config) -> &T, fn(&mut Config) -> &mut T);

/// What a flag sets, by type: how its value is parsed, shown and written.
#[derive(Clone, Copy)]
enum Setting {
    /// A byte count (`65536`, `64KiB`, `16MiB`).
    Bytes(Field<usize>),
    /// Seconds, fractions allowed.
    Seconds(Field<Duration>),
    /// A whole number of at least `min`.
    Count { field: Field<usize>, min: usize },
    /// A path; `none` says what the default (no path) means.
    Path {
        field: Field<Option<PathBuf>>,
        none: &'static str,
        what: &'static str,
    },
    /// One of the words of the flag's `a|b|c` placeholder.
    Choice {
        get: fn(&Config) -> &'static str,
        set: fn(&mut Config, &str) -> bool,
    },
    /// A repeatable value, added to a list; `none` says what an empty list means.
    List {
        field: Field<Vec<String>>,
        none: &'static str,
        what: &'static str,
    },
    /// A switch: on when given.
    Switch(Field<bool>),
    /// A word, checked by `check` (which says what is wrong); `none` says
    /// what no word means.
    Text {
        field: Field<Option<String>>,
        none: &'static str,
        check: fn(&str) -> Result<(), String>,
    },
    /// A count of frames, or `latest`; `none` says what neither means.
    Frames {
        field: Field<Option<Cursor>>,
        none: &'static str,
    },
}

impl fmt::Debug for Flag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Flag").field("name", &self.name).finish()
    }
}

impl Flag {
    /// Applies a value (`""` for a switch).
    pub fn set(&self, config: &mut Config, value: &str) -> Result<(), ConfigError> {
        let name = self.name;
        match self.setting {
            Setting::Bytes((_, field)) => *field(config) = parse_bytes(name, value)?,
            Setting::Seconds((_, field)) => *field(config) = parse_seconds(name, value)?,
            Setting::Count {
                field: (_, field),
                min,
            } => {
                *field(config) = value
                    .trim()
                    .parse()
                    .ok()
                    .filter(|&n: &usize| n >= min)
                    .ok_or_else(|| match min {
                        0 => bad(name, value, "a whole number"),
                        _ => bad(name, value, &format!("a whole number, at least {min}")),
                    })?;
            }
            Setting::Path {
                field: (_, field),
                what,
                ..
            } => {
                if value.is_empty() {
                    return Err(bad(name, value, what));
                }
                *field(config) = Some(PathBuf::from(value));
            }
            Setting::Choice { set, .. } => {
                if !set(config, value) {
                    let words: Vec<&str> = self.value.unwrap_or("").split('|').collect();
                    let expected = match words.split_last() {
                        Some((last, rest)) if !rest.is_empty() => {
                            format!("{} or {last}", rest.join(", "))
                        }
                        _ => words.join(""),
                    };
                    return Err(bad(name, value, &expected));
                }
            }
            Setting::List {
                field: (_, field),
                what,
                ..
            } => {
                if value.is_empty() {
                    return Err(bad(name, value, what));
                }
                field(config).push(value.to_owned());
            }
            Setting::Switch((_, field)) => *field(config) = true,
            Setting::Text {
                field: (_, field),
                check,
                ..
            } => {
                check(value).map_err(|why| bad(name, value, &why))?;
                *field(config) = Some(value.to_owned());
            }
            Setting::Frames {
                field: (_, field), ..
            } => {
                let cursor = match value.trim() {
                    "latest" => Cursor::Latest,
                    n => Cursor::At(
                        n.parse()
                            .map_err(|_| bad(name, value, "a count of frames, or latest"))?,
                    ),
                };
                *field(config) = Some(cursor);
            }
        }
        Ok(())
    }

    /// The setting in force, for `gateway.info`.
    pub fn show(&self, config: &Config) -> serde_json::Value {
        use serde_json::json;
        match self.setting {
            Setting::Bytes((get, _))
            | Setting::Count {
                field: (get, _), ..
            } => json!(get(config)),
            Setting::Seconds((get, _)) => json!(get(config).as_secs_f64()),
            Setting::Path {
                field: (get, _), ..
            } => {
                json!(get(config).as_ref().map(|p| p.display().to_string()))
            }
            Setting::Choice { get, .. } => json!(get(config)),
            Setting::List {
                field: (get, _), ..
            } => json!(get(config)),
            Setting::Switch((get, _)) => json!(get(config)),
            Setting::Text {
                field: (get, _), ..
            } => json!(get(config)),
            Setting::Frames {
                field: (get, _), ..
            } => match get(config) {
                None => json!(null),
                Some(Cursor::At(n)) => json!(n),
                Some(Cursor::Latest) => json!("latest"),
            },
        }
    }

    /// The default, as `--help` shows it, rendered from `Config::default()`.
    pub fn default(&self) -> String {
        let defaults = Config::default();
        match self.setting {
            Setting::Bytes((get, _)) => show_bytes(*get(&defaults)),
            Setting::Seconds((get, _)) => show_seconds(*get(&defaults)),
            Setting::Count {
                field: (get, _), ..
            } => get(&defaults).to_string(),
            Setting::Path {
                field: (get, _),
                none,
                ..
            } => match get(&defaults) {
                Some(path) => path.display().to_string(),
                None => none.to_owned(),
            },
            Setting::Choice { get, .. } => get(&defaults).to_owned(),
            Setting::List {
                field: (get, _),
                none,
                ..
            } => match get(&defaults).as_slice() {
                [] => none.to_owned(),
                items => items.join(","),
            },
            Setting::Switch((get, _)) => if *get(&defaults) { "on" } else { "off" }.to_owned(),
            Setting::Text {
                field: (get, _),
                none,
                ..
            } => get(&defaults).clone().unwrap_or_else(|| none.to_owned()),
            Setting::Frames {
                field: (get, _),
                none,
            } => match get(&defaults) {
                None => none.to_owned(),
                Some(Cursor::At(n)) => n.to_string(),
                Some(Cursor::Latest) => "latest".to_owned(),
            },
        }
    }
}

/// `16777216` → `16MiB`, as the byte parser reads it back.
fn show_bytes(n: usize) -> String {
    match n {
        0 => "0".to_owned(),
        n if n % MIB == 0 => format!("{}MiB", n / MIB),
        n if n % KIB == 0 => format!("{}KiB", n / KIB),
        n => n.to_string(),
    }
}

/// `1.5 s` → `1.5`, `10 s` → `10`.
fn show_seconds(d: Duration) -> String {
    if d.subsec_nanos() == 0 {
        d.as_secs().to_string()
    } else {
        d.as_secs_f64().to_string()
    }
}

/// `field!(a.b)`: the reader and writer of `config.a.b`.
macro_rules! field {
    ($($field:ident).+) => {
        (|c: &Config| &c.$($field).+, |c: &mut Config| &mut c.$($field).+)
    };
}

/// Every flag.
pub const FLAGS: &[Flag] = &[
    Flag {
        name: "--max-frame-bytes",
        value: Some("BYTES"),
        help: "longest inbound line (and backend line), at most 4 GiB - 1; a longer inbound line gets a -32600 error and is skipped, a longer backend line is dropped",
        bridge_only: false,
        setting: Setting::Bytes(field!(max_frame_bytes)),
    },
    Flag {
        name: "--shutdown-grace",
        value: Some("SECONDS"),
        help: "how long a shutdown may drain before it is forced (exit 4)",
        bridge_only: false,
        setting: Setting::Seconds(field!(shutdown_grace)),
    },
    Flag {
        name: "--stall-timeout",
        value: Some("SECONDS"),
        help: "no stdout progress for this long while output waits: exit 3",
        bridge_only: false,
        setting: Setting::Seconds(field!(stall_timeout)),
    },
    Flag {
        name: "--outbound-soft-limit",
        value: Some("BYTES"),
        help: "queued output above this for --outbound-soft-seconds: exit 3",
        bridge_only: false,
        setting: Setting::Bytes(field!(soft_limit_bytes)),
    },
    Flag {
        name: "--outbound-soft-seconds",
        value: Some("SECONDS"),
        help: "how long the queue may stay above the soft limit",
        bridge_only: false,
        setting: Setting::Seconds(field!(soft_limit_duration)),
    },
    Flag {
        name: "--outbound-hard-limit",
        value: Some("BYTES"),
        help: "queued output never exceeds this: producers pause long before, and an answer that would not fit gets -32001",
        bridge_only: false,
        setting: Setting::Bytes(field!(hard_limit_bytes)),
    },
    Flag {
        name: "--outbound-high-water",
        value: Some("BYTES"),
        help: "every producer (requests, batch members, child and backend output) pauses at this much queued output; at least 1MiB below the hard limit",
        bridge_only: false,
        setting: Setting::Bytes(field!(high_water_bytes)),
    },
    Flag {
        name: "--outbound-low-water",
        value: Some("BYTES"),
        help: "producers resume when the reader has taken the queue down to this",
        bridge_only: false,
        setting: Setting::Bytes(field!(low_water_bytes)),
    },
    Flag {
        name: "--coalesce-cap",
        value: Some("BYTES"),
        help: "largest text a merged streaming event may carry",
        bridge_only: false,
        setting: Setting::Bytes(field!(coalesce_cap_bytes)),
    },
    Flag {
        name: "--sigint",
        value: Some("ignore|shutdown"),
        help: "what SIGINT does (the TUI owns Ctrl+C)",
        bridge_only: false,
        setting: Setting::Choice {
            get: |c| c.sigint.as_str(),
            set: |c, v| {
                c.sigint = match v {
                    "ignore" => SigintPolicy::Ignore,
                    "shutdown" => SigintPolicy::Shutdown,
                    _ => return false,
                };
                true
            },
        },
    },
    Flag {
        name: "--crash-log",
        value: Some("PATH"),
        help: "append exit, signal and crash entries to this file",
        bridge_only: false,
        setting: Setting::Path {
            field: field!(crash_log),
            none: "(none)",
            what: "a file path",
        },
    },
    Flag {
        name: "--trace",
        value: Some("FILE"),
        help: "append every frame in and out to FILE as NDJSON {t, dir, frame}; bounded and lossy, never slows the gateway (docs/protocol.md, Tracing)",
        bridge_only: false,
        setting: Setting::Path {
            field: field!(trace),
            none: "(none)",
            what: "a file path",
        },
    },
    Flag {
        name: "--max-processes",
        value: Some("N"),
        help: "most children process.spawn runs at once",
        bridge_only: false,
        setting: Setting::Count {
            field: field!(max_processes),
            min: 0,
        },
    },
    Flag {
        name: "--child-stdin-limit",
        value: Some("BYTES"),
        help: "bytes queued for one child's stdin before process.write is refused",
        bridge_only: false,
        setting: Setting::Bytes(field!(child_stdin_limit_bytes)),
    },
    Flag {
        name: "--session",
        value: Some("NAME"),
        help: "run in session NAME, or attach to it if it runs: the client may go and come back (docs/sessions.md)",
        bridge_only: false,
        setting: Setting::Text {
            field: field!(session.name),
            none: "(none: no session)",
            check: check_session_name,
        },
    },
    Flag {
        name: "--session-linger",
        value: Some("SECONDS"),
        help: "how long a detached session with no process running lives on",
        bridge_only: false,
        setting: Setting::Seconds(field!(session.linger)),
    },
    Flag {
        name: "--session-journal",
        value: Some("BYTES"),
        help: "the session's journal bound: frames kept for a client that comes back",
        bridge_only: false,
        setting: Setting::Bytes(field!(session.journal_bytes)),
    },
    Flag {
        name: "--frames-received",
        value: Some("N|latest"),
        help: "attaching: the client has the session's first N frames, and the rest follow; latest: it starts at the first frame not yet written, told its index (gateway.attached)",
        bridge_only: false,
        setting: Setting::Frames {
            field: field!(session.attach.frames_received),
            none: "(none: the session's gateway.ready again, then every frame not yet written)",
        },
    },
    Flag {
        name: "--epoch",
        value: Some("EPOCH"),
        help: "attaching: the session start the cursor belongs to (refused if it is another)",
        bridge_only: false,
        setting: Setting::Text {
            field: field!(session.attach.epoch),
            none: "(any)",
            check: check_epoch,
        },
    },
    Flag {
        name: "--takeover",
        value: None,
        help: "attaching: detach the session's client if it has one",
        bridge_only: false,
        setting: Setting::Switch(field!(session.attach.takeover)),
    },
    Flag {
        name: "--backend-cwd",
        value: Some("DIR"),
        help: "working directory of the backend CMD",
        bridge_only: true,
        setting: Setting::Path {
            field: field!(backend.cwd),
            none: "(the gateway's)",
            what: "a directory",
        },
    },
    Flag {
        name: "--backend-ready",
        value: Some("event|none"),
        help: "event: hold gateway.ready until the backend's own, then send one merged ready; none: send it at once",
        bridge_only: true,
        setting: Setting::Choice {
            get: |c| c.backend.ready.as_str(),
            set: |c, v| {
                c.backend.ready = match v {
                    "event" => ReadyPolicy::Event,
                    "none" => ReadyPolicy::None,
                    _ => return false,
                };
                true
            },
        },
    },
    Flag {
        name: "--backend-ready-timeout",
        value: Some("SECONDS"),
        help: "longest wait for the backend's gateway.ready; then ready goes out with backend_ready: false",
        bridge_only: true,
        setting: Setting::Seconds(field!(backend.ready_timeout)),
    },
    Flag {
        name: "--backend-restart",
        value: Some("never|on-failure|always"),
        help: "restart a backend that ended (backoff 250ms to 10s, at most 5 a minute)",
        bridge_only: true,
        setting: Setting::Choice {
            get: |c| c.backend.restart.as_str(),
            set: |c, v| {
                c.backend.restart = match v {
                    "never" => RestartPolicy::Never,
                    "on-failure" => RestartPolicy::OnFailure,
                    "always" => RestartPolicy::Always,
                    _ => return false,
                };
                true
            },
        },
    },
    Flag {
        name: "--backend-stdin-limit",
        value: Some("BYTES"),
        help: "bytes queued for the backend's stdin; past it requests get -32001 \"backend overloaded\"",
        bridge_only: true,
        setting: Setting::Bytes(field!(backend.stdin_limit_bytes)),
    },
    Flag {
        name: "--backend-max-pending",
        value: Some("N"),
        help: "requests the backend may owe an answer at once; past it requests get -32001",
        bridge_only: true,
        setting: Setting::Count {
            field: field!(backend.max_pending),
            min: 1,
        },
    },
    Flag {
        name: "--stream-event",
        value: Some("TYPE"),
        help: "one more backend event type that coalesces while the UI is slow (repeatable)",
        bridge_only: true,
        setting: Setting::List {
            field: field!(backend.stream_events),
            none: "*.delta",
            what: "an event type such as message.delta",
        },
    },
    Flag {
        name: "--keep-running",
        value: None,
        help: "stay up when the backend is gone for good: backend-bound requests get -32002, gateway.* keeps working",
        bridge_only: true,
        setting: Setting::Switch(field!(backend.keep_running)),
    },
    Flag {
        name: "--local-process",
        value: None,
        help: "serve process.* in the gateway even with a backend (it then shadows the backend's process.*)",
        bridge_only: true,
        setting: Setting::Switch(field!(backend.local_process)),
    },
    Flag {
        name: "--transparent",
        value: None,
        help: "add nothing to the stream: no gateway.ready, no backend.* events, every frame forwarded (any stdio JSON-RPC server)",
        bridge_only: true,
        setting: Setting::Switch(field!(backend.transparent)),
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

/// A session name: 1 to 64 of `A-Z a-z 0-9 . _ -`, not starting with `.`
/// (so no `/`, no `..`, nothing hidden).
pub fn check_session_name(name: &str) -> Result<(), String> {
    let ok = (1..=64).contains(&name.len())
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if ok {
        Ok(())
    } else {
        Err("a session name: 1 to 64 of A-Z a-z 0-9 . _ -, not starting with .".into())
    }
}

/// An epoch as `gateway.ready` gives it: 16 hexadecimal digits.
fn check_epoch(epoch: &str) -> Result<(), String> {
    if epoch.len() == 16 && epoch.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(())
    } else {
        Err("an epoch: the 16 hexadecimal digits gateway.ready gives".into())
    }
}
