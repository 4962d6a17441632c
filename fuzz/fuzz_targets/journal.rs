//! Fuzz target `journal`: a session's journal driven by a program of
//! appends, trims, acknowledgements and attaches, checked against the whole
//! stream. The invariants live in `fuzz/invariants/journal.rs`, shared with
//! the corpus replay in `tests/fuzz_replay.rs`.

#![no_main]

#[allow(dead_code)]
#[path = "../invariants/mod.rs"]
mod invariants;

libfuzzer_sys::fuzz_target!(|data: &[u8]| invariants::journal::check(data));
