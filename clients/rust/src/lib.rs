//! A blocking client for [`tui-gateway`](https://crates.io/crates/tui-gateway),
//! the child process a terminal UI spawns to run commands on pipes or
//! pseudo-terminals, speaking newline-delimited JSON-RPC 2.0 over its stdin
//! and stdout.
//!
//! ```no_run
//! use tui_gateway_client::{Gateway, GatewayOptions, SpawnOptions};
//!
//! # fn main() -> Result<(), tui_gateway_client::Error> {
//! let gw = Gateway::spawn(GatewayOptions::default())?; // $TUI_GATEWAY_BIN, else tui-gateway on PATH
//! let mut proc = gw.spawn_process(["sh", "-c", "echo hello; echo oops >&2; exit 3"], SpawnOptions::new())?;
//! for line in proc.lines() {
//!     let line = line?;
//!     println!("[{}] {}", line.stream, line.line);
//! }
//! println!("{}", proc.wait()?); // exit 3
//! let exit = gw.close()?; // stdin EOF, wait, SIGTERM, SIGKILL: nothing is left running
//! assert!(exit.success());
//! # Ok(())
//! # }
//! ```
//!
//! Blocking and `std` only: one reader thread per gateway dispatches answers
//! by id to the calling thread and events to per-process channels. See the
//! crate's README for why, and for the API at a glance.

mod base64;
mod error;
mod gateway;
mod lines;
mod process;
mod types;

pub use error::{Error, GatewayExit, Result};
pub use gateway::{CloseOptions, Gateway, GatewayOptions, BRIDGE_READY_TIMEOUT, READY_TIMEOUT};
pub use process::{Chunks, Events, Lines, Process, ProcessControl, Text, WRITE_ALL_PIECE_BYTES};
pub use types::{
    BatchCall, CancelResult, Captured, CloseStdinResult, Encoding, Event, ExitCause, GatewayInfo,
    GatewayLimits, LadderStep, LinesOptions, Output, OutputData, OutputLimit, OutputLine,
    OutputPolicy, OutputText, PingResult, ProcessEvent, ProcessExit, ProcessInfo, PtySize,
    ReadyPayload, ResourceLimits, SpawnOptions, StderrMode, StdinMode, Stream, Usage, WriteResult,
};

/// `serde_json`, re-exported: [`Gateway::request`] takes and returns its `Value`.
pub use serde_json;
