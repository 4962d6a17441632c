//! Fuzz target `message`: arbitrary bytes as one frame through the classifier.
//! The invariants live in `fuzz/invariants/message.rs`, shared with the corpus
//! replay in `tests/fuzz_replay.rs`.

#![no_main]

#[allow(dead_code)]
#[path = "../invariants/mod.rs"]
mod invariants;

libfuzzer_sys::fuzz_target!(|data: &[u8]| invariants::message::check(data));
