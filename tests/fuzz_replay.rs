//! Replays the fuzz targets' seed corpora on the stable toolchain.
//!
//! Every file under `fuzz/corpus-seed/<target>/` goes through the same
//! invariant function the libFuzzer target runs (`fuzz/invariants/`,
//! included below by path), so an ordinary `cargo test` guards every seed and
//! every fixed finding without a fuzzer. See `fuzz/README.md` for the input
//! format of each target and for how to fuzz.
//!
//! Two inputs are built here rather than checked in: the 20 MiB line (a
//! 20 MiB file would weigh on every clone, and libFuzzer truncates inputs to
//! its `-max_len` anyway) and the frames nested 100,000 levels deep in their
//! exact form for the stack-depth test (smaller copies are in the corpus).

use std::fs;
use std::panic::{self, AssertUnwindSafe};
use std::path::{Path, PathBuf};

use tui_gateway::config::DEFAULT_MAX_FRAME_BYTES;
use tui_gateway::engine::framer::Decoded;
use tui_gateway::engine::wire::{classify, response_frame, ErrorCode, Id, Incoming};

#[allow(dead_code)]
#[path = "../fuzz/invariants/mod.rs"]
mod invariants;

/// The seed files of one target, sorted by name.
fn seeds(target: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus-seed")
        .join(target);
    let mut files: Vec<PathBuf> = fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
        .map(|entry| entry.expect("a directory entry").path())
        .filter(|path| path.is_file())
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no seed in {}", dir.display());
    files
}

/// Runs `check` on every seed of `target` and names every one that fails.
fn replay(target: &str, check: fn(&[u8])) {
    let mut failed = Vec::new();
    let files = seeds(target);
    for file in &files {
        let data = fs::read(file).expect("a readable seed");
        if panic::catch_unwind(AssertUnwindSafe(|| check(&data))).is_err() {
            failed.push(file.display().to_string());
        }
    }
    assert!(
        failed.is_empty(),
        "{} of {} `{target}` seeds broke an invariant (messages above): {failed:#?}",
        failed.len(),
        files.len()
    );
}

#[test]
fn frame_seed_corpus_holds_every_invariant() {
    replay("frame", invariants::frame::check);
}

#[test]
fn message_seed_corpus_holds_every_invariant() {
    replay("message", invariants::message::check);
}

#[test]
fn scan_seed_corpus_holds_every_invariant() {
    replay("scan", invariants::scan::check);
}

#[test]
fn journal_seed_corpus_holds_every_invariant() {
    replay("journal", invariants::journal::check);
}

#[test]
fn outbound_seed_corpus_holds_every_invariant() {
    replay("outbound", invariants::outbound::check);
}

#[test]
fn engine_seed_corpus_holds_every_invariant() {
    replay("engine", invariants::engine::check);
}

#[test]
fn backend_seed_corpus_holds_every_invariant() {
    replay("backend", invariants::backend::check);
}

#[test]
fn process_seed_corpus_holds_every_invariant() {
    replay("process", invariants::process::check);
}

#[test]
fn bridge_seed_corpus_holds_every_invariant() {
    replay("bridge", invariants::bridge::check);
}

/// `ping id`, a 20 MiB line, `ping id + 1`.
fn twenty_mib_stream() -> Vec<u8> {
    let ping =
        |id: u32| format!("{{\"jsonrpc\":\"2.0\",\"method\":\"gateway.ping\",\"id\":{id}}}\n");
    let mut stream = ping(1).into_bytes();
    stream.resize(stream.len() + 20 * 1024 * 1024, b'x');
    stream.push(b'\n');
    stream.extend_from_slice(ping(2).as_bytes());
    stream
}

#[test]
fn a_20_mib_line_is_reported_once_and_framing_resumes() {
    let stream = twenty_mib_stream();
    let framed = invariants::frame::model(&stream, DEFAULT_MAX_FRAME_BYTES);
    assert!(matches!(
        &framed.items[..],
        [
            Decoded::Frame(_),
            Decoded::TooLarge {
                limit: DEFAULT_MAX_FRAME_BYTES
            },
            Decoded::Frame(_)
        ]
    ));
    for seed in 0..3 {
        invariants::frame::check_stream(&stream, DEFAULT_MAX_FRAME_BYTES, seed);
        // Through the engine: a ping answer, the -32600 with the limit, the
        // second ping's answer (checked inside).
        invariants::engine::run(&stream, DEFAULT_MAX_FRAME_BYTES, seed);
    }
    // The same line without its newline is cut at EOF, never dispatched.
    let unterminated = &stream[..stream.len() - 50];
    invariants::frame::check_stream(unterminated, DEFAULT_MAX_FRAME_BYTES, 7);
    invariants::engine::run(unterminated, DEFAULT_MAX_FRAME_BYTES, 7);
}

#[test]
fn serde_json_keeps_its_recursion_limit() {
    // 127 levels parse; 128 do not. Were the limit off (serde_json's
    // `unbounded_depth`), 100,000 levels would overflow the stack instead.
    let nested = |depth: usize| "[".repeat(depth) + &"]".repeat(depth);
    assert!(serde_json::from_str::<serde_json::Value>(&nested(127)).is_ok());
    let err = serde_json::from_str::<serde_json::Value>(&nested(128)).unwrap_err();
    assert!(err.to_string().contains("recursion limit"), "{err}");
}

#[test]
fn frames_nested_100k_deep_get_a_parse_error() {
    let deep = [
        "[".repeat(100_000),
        "[".repeat(100_000) + &"]".repeat(100_000),
        "{\"a\":".repeat(100_000) + "1" + &"}".repeat(100_000),
        format!(
            "{{\"jsonrpc\":\"2.0\",\"method\":\"gateway.ping\",\"params\":{},\"id\":1}}",
            "[".repeat(100_000) + &"]".repeat(100_000)
        ),
    ];
    for frame in deep {
        // The whole engine answers it with -32700 and serves the next frame.
        let stream =
            format!("{frame}\n{{\"jsonrpc\":\"2.0\",\"method\":\"gateway.ping\",\"id\":2}}\n");
        invariants::engine::run(stream.as_bytes(), DEFAULT_MAX_FRAME_BYTES, 1);
        // On a thread with a small stack: depth must not turn into stack use.
        std::thread::Builder::new()
            .stack_size(512 * 1024)
            .spawn(move || {
                let Incoming::Single(Err(reject)) = classify(frame.as_bytes()) else {
                    panic!("a 100k-deep frame was not refused")
                };
                assert_eq!(reject.error.code, ErrorCode::ParseError);
                assert_eq!(reject.id, Id::Null);
                let answer = response_frame(&reject.id, &Err(reject.error));
                let v: serde_json::Value = serde_json::from_slice(&answer).unwrap();
                assert_eq!(v["error"]["code"], -32700);
                invariants::message::check(frame.as_bytes());
            })
            .expect("spawn")
            .join()
            .expect("no panic, no stack overflow");
    }
}
