//! Fuzz target `frame`: arbitrary bytes split at arbitrary points through the framer.
//! The invariants live in `fuzz/invariants/frame.rs`, shared with the corpus
//! replay in `tests/fuzz_replay.rs`.

#![no_main]

#[allow(dead_code)]
#[path = "../invariants/mod.rs"]
mod invariants;

libfuzzer_sys::fuzz_target!(|data: &[u8]| invariants::frame::check(data));
