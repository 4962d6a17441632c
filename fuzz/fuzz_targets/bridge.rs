//! Fuzz target `bridge`: the engine with the real backend service over an
//! in-memory host whose backend reads, answers in any order, refuses or
//! takes batches, writes events and junk, dies and is restarted as the
//! fuzzer says, while the client sends singles and batches and reads
//! slowly. The invariants live in `fuzz/invariants/bridge.rs`, shared with
//! the corpus replay in `tests/fuzz_replay.rs`.

#![no_main]

#[allow(dead_code)]
#[path = "../invariants/mod.rs"]
mod invariants;

libfuzzer_sys::fuzz_target!(|data: &[u8]| invariants::bridge::check(data));
