//! `frame`: arbitrary bytes, split at arbitrary points, through the framer.
//!
//! Input: byte 0 picks the max frame size ([`MAX_FRAMES`], modulo 8), byte 1
//! seeds the read sizes, the rest is the stream.
//!
//! Asserted:
//! * the framer yields the same frames, oversize reports and truncated tail
//!   whatever the read sizes (one read, one byte at a time, a seeded mix),
//!   and they are what a plain line model of the protocol says: one frame per
//!   `\n`-terminated line, one trailing `\r` stripped, blank lines skipped, a
//!   line longer than the limit reported exactly once and skipped up to its
//!   `\n` (framing resumes right after it), an unterminated tail reported at
//!   EOF and never handed out;
//! * no frame contains `\n`, is blank or is longer than the limit, and every
//!   oversize report carries the limit;
//! * the framer never holds more than the limit plus the read just pushed,
//!   and between reads no more than the limit (one partial frame).

use tui_gateway::engine::framer::{Decoded, Framer};

use super::input::{next_chunk, Reader, Rng};

/// The max frame sizes byte 0 selects: tiny ones, so that over-long lines
/// and resynchronisation are everyday events for the fuzzer, up to the
/// gateway's default of 16 MiB.
pub const MAX_FRAMES: [usize; 8] = [
    1,
    2,
    16,
    64,
    256,
    4096,
    65536,
    tui_gateway::config::DEFAULT_MAX_FRAME_BYTES,
];

/// Streams up to this size are also pushed one byte at a time.
const BYTEWISE_LIMIT: usize = 64 * 1024;

/// The fuzz entry point.
pub fn check(data: &[u8]) {
    let mut input = Reader::new(data);
    let max = MAX_FRAMES[usize::from(input.u8()) % MAX_FRAMES.len()];
    let seed = u64::from(input.u8());
    check_stream(input.rest(), max, seed);
}

/// What framing a whole stream gives: the decoded items in order, and the
/// size of the truncated tail found at EOF.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Framed {
    /// Frames and oversize reports, in order.
    pub items: Vec<Decoded>,
    /// [`Framer::finish`]'s answer at EOF.
    pub truncated: Option<usize>,
}

/// The protocol's line rules, written as plainly as possible.
pub fn model(stream: &[u8], max: usize) -> Framed {
    let blank = |line: &[u8]| line.iter().all(u8::is_ascii_whitespace);
    let mut items = Vec::new();
    let mut rest = stream;
    while let Some(pos) = rest.iter().position(|&b| b == b'\n') {
        let line = &rest[..pos];
        rest = &rest[pos + 1..];
        if line.len() > max {
            items.push(Decoded::TooLarge { limit: max });
            continue;
        }
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if !blank(line) {
            items.push(Decoded::Frame(line.to_vec()));
        }
    }
    // An unterminated tail: reported as too large as soon as it passes the
    // limit, otherwise a truncated frame at EOF (unless it is blank).
    let truncated = if rest.len() > max {
        items.push(Decoded::TooLarge { limit: max });
        None
    } else {
        (!rest.is_empty() && !blank(rest)).then_some(rest.len())
    };
    Framed { items, truncated }
}

/// Frames `stream` under every split plan and compares each with the model.
pub fn check_stream(stream: &[u8], max: usize, seed: u64) {
    let expected = model(stream, max);
    let whole = run(stream, max, |left| left);
    assert_eq!(whole, expected, "one read, max {max}");
    let mut rng = Rng::new(seed);
    let mixed = run(stream, max, |left| next_chunk(&mut rng, left));
    assert_eq!(mixed, expected, "seeded reads (seed {seed}), max {max}");
    if stream.len() <= BYTEWISE_LIMIT {
        let bytewise = run(stream, max, |_| 1);
        assert_eq!(bytewise, expected, "one byte per read, max {max}");
    }
}

/// Pushes `stream` in reads of the sizes `next(left)` gives, draining the
/// framer after each, and checks the per-frame and memory invariants.
fn run(stream: &[u8], max: usize, mut next: impl FnMut(usize) -> usize) -> Framed {
    let mut framer = Framer::new(max);
    let mut items = Vec::new();
    let mut rest = stream;
    while !rest.is_empty() {
        let (chunk, tail) = rest.split_at(next(rest.len()).clamp(1, rest.len()));
        rest = tail;
        framer.push(chunk);
        assert!(
            framer.buffered() <= max + chunk.len(),
            "the framer holds {} bytes after a read of {} (max {max})",
            framer.buffered(),
            chunk.len()
        );
        while let Some(decoded) = framer.next_frame() {
            match &decoded {
                Decoded::Frame(frame) => {
                    assert!(!frame.contains(&b'\n'), "a frame contains \\n");
                    assert!(
                        !frame.iter().all(u8::is_ascii_whitespace),
                        "a blank frame was handed out"
                    );
                    assert!(frame.len() <= max, "a frame is longer than the limit");
                }
                Decoded::TooLarge { limit } => assert_eq!(*limit, max),
            }
            items.push(decoded);
        }
        assert!(
            framer.buffered() <= max,
            "between reads the framer holds {} bytes, more than one frame (max {max})",
            framer.buffered()
        );
    }
    let truncated = framer.finish();
    assert_eq!(framer.buffered(), 0, "finish() leaves nothing behind");
    Framed { items, truncated }
}
