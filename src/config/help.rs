//! What `--help` and the manual page say besides the flags: what the
//! gateway is, its methods, signals, exit codes and where the docs are.

use super::*;

/// One line on what the gateway is.
pub const SUMMARY: &str = "a never-blocking NDJSON JSON-RPC 2.0 gateway for terminal UIs";

/// What it does, for `--help` and the manual page.
pub const DESCRIPTION: &str =
    "Reads JSON-RPC 2.0 frames (one per line) on stdin and writes responses and\n\
events on stdout. Diagnostics go to stderr. With -- CMD, CMD runs as the\n\
backend on private pipes: every method but gateway.* is forwarded to it as\n\
the same bytes, and its frames come back as it wrote them. With --session\n\
NAME, the gateway outlives its client: the client may go and come back\n\
(tui-gateway attach NAME, here or over ssh) and gets every frame it missed.";

/// Where the contract is written down.
pub const DOCS: &str =
    "The full contract is in the tui-gateway repository, in docs/: docs/protocol.md\n\
(framing, methods, events, errors, limits, signals, tracing), docs/process.md\n\
(process.*), docs/bridge.md (-- CMD) and docs/sessions.md (--session, attach,\n\
sessions); tui-gateway --man prints a manual page.";

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
        "in a session",
        "gateway.detach, gateway.end, gateway.ack, gateway.session",
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
        "orderly shutdown (a second one: exit 4); in a session, SIGHUP, and SIGTERM from the process that started it, only detach the stdio client",
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
        "orderly shutdown (stdin EOF, gateway.shutdown, a shutdown signal, parent exited); a session's end; a relay whose connection ended",
    ),
    ("3", "stdout peer gone, stalled or too slow"),
    (
        "4",
        "shutdown deadline forced the exit (or a second shutdown signal)",
    ),
    ("64", "bad command line (or a --trace file that cannot be opened)"),
    (
        "69",
        "the backend CMD cannot be started (not found, not executable); a session's directory is unsafe; an attach was refused or no such session runs",
    ),
    ("70", "internal error (a panic, or out of memory)"),
    ("74", "host I/O error writing stdout (ENOSPC, EIO, ...)"),
    (
        "N",
        "with a backend: the backend's own exit status once it is gone for good (128+S when a signal S ended it, as a shell reports it)",
    ),
];

impl Config {
    /// The `--help` text.
    pub fn help() -> String {
        let mut text = format!(
            "tui-gateway: {SUMMARY}\n\n\
             Usage: tui-gateway [FLAGS]\n       \
             tui-gateway [FLAGS] -- CMD [ARGS...]   (bridge to an existing backend)\n       \
             tui-gateway --session NAME [FLAGS] [-- CMD [ARGS...]]   (start session NAME, or attach to it)\n       \
             tui-gateway attach NAME [--frames-received N|latest] [--epoch EPOCH] [--takeover]\n       \
             tui-gateway sessions [--json]\n       \
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
                flag.name,
                flag.help,
                flag.default()
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
