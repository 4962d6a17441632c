//! Fuzz target `engine`: arbitrary bytes through the whole in-memory engine, in arbitrary reads, with a fake clock.
//! The invariants live in `fuzz/invariants/engine.rs`, shared with the corpus
//! replay in `tests/fuzz_replay.rs`.

#![no_main]

#[allow(dead_code)]
#[path = "../invariants/mod.rs"]
mod invariants;

libfuzzer_sys::fuzz_target!(|data: &[u8]| invariants::engine::check(data));
