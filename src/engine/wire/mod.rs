//! The wire protocol, spelled out once: JSON-RPC 2.0 message types, their
//! classification from an inbound frame, and their serialization into
//! outbound frames.
//!
//! `docs/protocol.md` describes the same contract for humans; the tests in
//! this module and in `tests/protocol.rs` pin it.
//!
//! Three details worth knowing:
//!
//! * Frames are read in one pass ([`scan`]) that checks them and finds the
//!   envelope's fields as spans of the frame's own bytes: no `Value` tree
//!   is built for anything but `params`, `result` and `error`, and those
//!   only when a method reads them; a batch is walked one member at a time
//!   ([`BatchCursor`]), so a 16 MiB batch costs its own bytes, not a tree.
//! * Numeric ids are echoed as the exact bytes received: `1e400`, `1.0E+2`,
//!   `-0`, `2.50` and a 40-digit integer all come back unchanged.
//! * Every outbound frame goes through [`LineSafe`], which escapes U+2028 and
//!   U+2029: some line readers (JavaScript ones in particular) split on them,
//!   and a frame must stay one line for every reader.
//!
//! The parts, each one job:
//!
//! * `id`: request ids, echoed as sent and matched by value ([`Id`]);
//! * `error`: error codes, errors, and refusals ([`RpcError`], [`Reject`]);
//! * `scan`: the one pass over a frame that checks it and finds its
//!   envelope's fields, building and copying nothing;
//! * `reference`: serde_json's verdicts, which the scanner is fuzzed
//!   against and which word every parse error; value counts and depth;
//! * `decode`: frames opened into a message or a batch, messages classified
//!   from their envelope ([`head`], [`Head`]);
//! * `encode`: answers, events and requests written as line-safe JSON.

mod decode;
mod encode;
mod error;
mod id;
mod reference;
mod scan;
#[cfg(test)]
mod tests;

pub use self::decode::*;
pub use self::encode::*;
pub use self::error::*;
pub use self::id::*;
pub use self::reference::*;
pub use self::scan::*;

/// The protocol version announced in `gateway.ready`. Bumped only on an
/// incompatible change to the framing or the event envelope.
pub const PROTOCOL_VERSION: u32 = 1;

/// The method name of every event notification the gateway sends.
pub const EVENT_METHOD: &str = "event";
