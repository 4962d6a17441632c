//! # tui-gateway
//!
//! A child process for terminal UIs: newline-delimited JSON-RPC 2.0 over
//! stdin and stdout, served by one thread, one `mio::Poll` and non-blocking
//! file descriptors only.
//!
//! ## Why one thread and no blocking call
//!
//! The Python gateway this project learns from wedged in the field: a worker
//! held the stdout lock inside a `flush()` on a half-closed pipe, and SIGTERM
//! then stalled shutdown behind it. Here no call can block: a half-closed
//! pipe shows up as `EPIPE` or `WouldBlock`, output waits in a byte-counted
//! queue, signals arrive as readiness events, and the shutdown deadline is
//! checked on every loop tick. Because nothing can block the loop, the
//! deadline always holds.
//!
//! ## Two layers
//!
//! * The **engine** (`engine`) has no file descriptors and no wall clock:
//!   framer, classifier, dispatch to services, the outbound queue with
//!   coalescing and limits, and the shutdown state machine. It takes bytes
//!   and `now`, and gives back bytes to write, requests to its `engine::Host`
//!   and its next deadline. Unit tests and fuzz targets drive it in memory.
//! * The **shell** ([`shell`]) is the mio loop: it owns every fd, the
//!   signals, the children and the clock, and turns readiness into engine
//!   calls.
//!
//! Services (`services`) plug into the engine behind method names. With
//! `-- CMD`, the backend bridge is the fallback service: every method no one
//! else claims, and every client response the gateway did not ask for,
//! reaches it as the bytes it came as, and its backend's frames go out as the
//! backend wrote them (`docs/bridge.md`).
//!
//! ## Invariants
//!
//! 1. The loop blocks only inside `poll()`; its timeout never exceeds the
//!    time to the nearest deadline; a turn dispatches at most 256 frames or
//!    batch members, so a signal is seen within milliseconds.
//! 2. Every registered fd is non-blocking; stdio flags are restored on every
//!    exit path, panics included.
//! 3. Only whole frames reach stdout; a frame is never interleaved with another.
//! 4. Responses and non-streaming events are never dropped, merged or
//!    reordered (until the reader is declared gone).
//! 5. Nothing the gateway started, nor anything descended from it, outlives
//!    it: the gateway is a child subreaper, reaps every descendant, and kills
//!    every one at exit whatever group or session it moved to; a group is
//!    signalled by its id only while its leader is unreaped.
//! 6. Memory is bounded by configured limits, whatever the peers do: every
//!    producer asks the outbound queue for room before one bounded step, and
//!    the queue never passes its hard limit (`docs/protocol.md`, "Bounded,
//!    in numbers").

#![deny(
    unsafe_code,
    missing_docs,
    missing_debug_implementations,
    rust_2018_idioms,
    unused_imports,
    dead_code
)]

/// Declares modules public to the tests, the fuzz targets and the
/// benchmark (they build with the `testing` feature) and crate-private in
/// the shipped build, whose public surface is what `main.rs` calls.
macro_rules! modules_public_for_testing {
    ($($(#[$attr:meta])* $name:ident;)+) => {
        $(
            $(#[$attr])*
            #[cfg(feature = "testing")]
            pub mod $name;
            $(#[$attr])*
            #[cfg(not(feature = "testing"))]
            pub(crate) mod $name;
        )+
    };
}

pub mod config;
pub mod manual;
pub mod shell;
modules_public_for_testing! {
    engine;
    services;
    signal_name;
}

pub use config::{Config, ConfigError};
pub use engine::lifecycle::exit_code;
pub use engine::{Engine, EngineConfig, VERSION};
