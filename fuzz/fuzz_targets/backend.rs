//! Fuzz target `backend`: arbitrary bytes as a backend's stdout through the
//! bridge's line classifier, ready merge and raw streaming merge. The
//! invariants live in `fuzz/invariants/backend.rs`, shared with the corpus
//! replay in `tests/fuzz_replay.rs`.

#![no_main]

#[allow(dead_code)]
#[path = "../invariants/mod.rs"]
mod invariants;

libfuzzer_sys::fuzz_target!(|data: &[u8]| invariants::backend::check(data));
