//! Fuzz target `outbound`: an arbitrary program of pushes, partial writes and clock steps against the outbound queue.
//! The invariants live in `fuzz/invariants/outbound.rs`, shared with the corpus
//! replay in `tests/fuzz_replay.rs`.

#![no_main]

#[allow(dead_code)]
#[path = "../invariants/mod.rs"]
mod invariants;

libfuzzer_sys::fuzz_target!(|data: &[u8]| invariants::outbound::check(data));
