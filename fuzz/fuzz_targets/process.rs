//! Fuzz target `process`: the engine with the real `process.*` service over
//! an in-memory host whose children (pipes and pseudo-terminals) print, end
//! their output, exit and take stdin as the fuzzer says. The invariants live
//! in `fuzz/invariants/process.rs`, shared with the corpus replay in
//! `tests/fuzz_replay.rs`.

#![no_main]

#[allow(dead_code)]
#[path = "../invariants/mod.rs"]
mod invariants;

libfuzzer_sys::fuzz_target!(|data: &[u8]| invariants::process::check(data));
