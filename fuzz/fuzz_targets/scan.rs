//! Fuzz target `scan`: arbitrary bytes through the one-pass scanner,
//! compared with serde_json. The invariants live in `fuzz/invariants/scan.rs`,
//! shared with the corpus replay in `tests/fuzz_replay.rs`.

#![no_main]

#[allow(dead_code)]
#[path = "../invariants/mod.rs"]
mod invariants;

libfuzzer_sys::fuzz_target!(|data: &[u8]| invariants::scan::check(data));
