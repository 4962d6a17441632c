//! Shared harness for the integration tests: spawns the built `tui-gateway`
//! binary over real pipes and speaks NDJSON JSON-RPC 2.0 to it.
//!
//! Rules the harness follows so tests hold on a loaded 2-core machine:
//!
//! * Nothing waits by sleeping. Reads and writes are non-blocking on the test
//!   side and wait in `poll(2)` up to a generous deadline; process exit is
//!   polled with `try_wait`. A deadline that passes is a failure with a
//!   message saying what was awaited.
//! * Every line read from stdout is checked on the way in: never blank, no
//!   raw U+2028/U+2029, valid JSON. Every test therefore checks the framing.
//! * Every fd the harness creates is close-on-exec, so a gateway spawned by a
//!   test running in parallel never inherits (and keeps open) another test's
//!   pipe.
//!
//! The pieces live in submodules, all re-exported here so a test writes
//! `use util::*;`: `gateway` (spawning and driving the gateway), `rpc` (JSON-RPC
//! frames and checks), `fd` (pipe and fd operations), `procfs` (processes seen
//! from outside) and `files` (temp files and the crash log). Each test binary
//! compiles this module on its own and uses only part of it, hence the
//! `dead_code` allowance, which covers the submodules too.

#![allow(dead_code)]

mod client;
mod fd;
mod files;
mod gateway;
mod procfs;
mod rpc;
mod stream;

// A test binary that uses nothing from one submodule would otherwise see its
// re-export reported as unused.
#[allow(unused_imports)]
pub use self::{client::*, fd::*, files::*, gateway::*, procfs::*, rpc::*, stream::*};

use std::time::Duration;

/// The binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_tui-gateway");

/// Variables the gateway reads, removed from every spawned gateway's
/// environment so the caller's environment never leaks into a test.
pub const GATEWAY_ENV_VARS: &[&str] = &[
    "RUST_LOG",
    "TUI_GATEWAY_SHUTDOWN_GRACE_S",
    "HERMES_TUI_GATEWAY_SHUTDOWN_GRACE_S",
    "TUI_GATEWAY_CRASH_LOG",
];

/// How long anything that should be quick may take on a loaded machine.
pub const PATIENCE: Duration = Duration::from_secs(10);

/// For bulk transfers of several MiB.
pub const LONG: Duration = Duration::from_secs(30);

/// The built-in methods every gateway answers.
pub const BUILTINS: &[&str] = &[
    "gateway.ping",
    "gateway.info",
    "gateway.stats",
    "gateway.shutdown",
    "client.capabilities",
];

/// Keys `gateway.stats` must carry (the stderr counters come on top).
pub const STATS_KEYS: &[&str] = &[
    "frames_in",
    "bytes_in",
    "frames_out",
    "bytes_out",
    "parse_errors",
    "invalid_requests",
    "oversize_frames",
    "truncated_frames",
    "outbound_queue_bytes",
    "outbound_high_water_mark",
    "deltas_coalesced",
    "frames_dropped",
    "frames_refused",
    "write_stalls",
    "signals",
];
