//! The invariants the fuzz targets assert, in one place.
//!
//! Both the libFuzzer targets (`fuzz/fuzz_targets/*.rs`) and the corpus
//! replay (`tests/fuzz_replay.rs`, run by an ordinary `cargo test`) include
//! this module with `#[path = "..."] mod invariants;`, so a finding the fuzzer
//! saves and a seed checked in under `fuzz/corpus-seed/<target>/` are judged
//! by exactly the same code, on the stable toolchain, with no fuzzer around.
//!
//! Each target module has one entry point, `check(data: &[u8])`: it decodes
//! the fuzz input (see [`input`]), drives one part of the engine through its
//! public API only, and panics on the first broken invariant. "Does not
//! panic" is the least of it: every module compares what the engine does
//! with a small independent model of what the protocol says it must do.
//!
//! | target     | input                                  | asserts                                                     |
//! |------------|----------------------------------------|-------------------------------------------------------------|
//! | `frame`    | max-frame selector, split seed, bytes  | same frames for every split, as the line model says; bounds |
//! | `message`  | one frame                              | classification matches the JSON-RPC rules; errors and ids   |
//! | `scan`     | one frame                              | the scanner's verdicts and spans equal serde_json's          |
//! | `outbound` | limits, then a program of queue ops    | bytes written = model of frames, merges, limits, timers     |
//! | `engine`   | schedule seed, max-frame selector, bytes | one response per request, in order, as valid NDJSON       |
//! | `process`  | schedule seed, then a program of requests and child events | one answer per request; per process, exit last and once |
//! | `backend`  | coalesce cap, then a backend's stdout lines | classification spans valid; merged ready is JSON; written = lines, merged only as the rule says |
//! | `journal`  | bound, then a program of appends, trims, acks, attaches | a replay from frame f is the stream from frame f; refusals exactly when due; bounded |
//! | `bridge`   | schedule seed, setup, then a program of client requests and batches and backend reads, answers, deaths | every request answered exactly once, one array per batch, nothing refused |

pub mod backend;
pub mod bridge;
pub mod engine;
pub mod frame;
pub mod input;
pub mod journal;
pub mod message;
pub mod outbound;
pub mod process;
pub mod scan;
pub mod wire;
