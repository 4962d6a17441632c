//! The session journal (`src/shell/session/journal.rs`) against a model:
//! the whole stream the session ever wrote, kept by the model in full.
//!
//! Input: a bound selector, then a program of operations, each a tag byte
//! and its operands: append bytes (lines and half lines), trim against a
//! queue size, acknowledge frames, and attach from a frame (then drain the
//! replay in random steps). Asserts:
//! * a replay from frame `f` is exactly the stream's bytes from frame `f`
//!   on: no gap, no duplicate, from a frame boundary;
//! * an attach is refused as `Gone` exactly when `f` is before the first
//!   frame held, as `Future` exactly when `f` is past the frames written;
//! * `frames_total` counts the newlines written; the first frame held never
//!   goes back; a trim leaves the journal within the bound beside the queue,
//!   or holding no whole frame at all;
//! * the kept `gateway.ready` is the stream's first line when that line is one.

use tui_gateway::shell::session::journal::{Journal, Refusal};

use super::input::{Reader, Rng};

pub fn check(data: &[u8]) {
    let mut input = Reader::new(data);
    let bound = [16usize, 64, 256, 4096][usize::from(input.u8() % 4)];
    let mut rng = Rng::new(u64::from(input.u8()));
    let mut journal = Journal::new(bound);
    let mut stream: Vec<u8> = Vec::new();
    let mut first_held = 0u64;
    while !input.is_empty() {
        match input.u8() % 4 {
            0 => {
                // Append: up to 64 bytes, a newline wherever the input says.
                let len = usize::from(input.u8() % 64);
                let mut chunk = Vec::with_capacity(len);
                for _ in 0..len {
                    let b = input.u8();
                    chunk.push(if matches!(b % 5, 0) {
                        b'\n'
                    } else {
                        b'a' + b % 26
                    });
                }
                if stream.is_empty() && input.u8() & 1 == 0 {
                    chunk.splice(0..0, b"{\"type\":\"gateway.ready\"}\n".iter().copied());
                }
                journal.append(&chunk);
                stream.extend_from_slice(&chunk);
            }
            1 => {
                let queued = usize::from(input.u8()) * bound / 256;
                journal.trim(queued);
                let whole_frame_held = journal.first_held() < journal.frames_total();
                assert!(
                    journal.bytes_held() + queued <= bound || !whole_frame_held,
                    "a trim left {} bytes beside {queued} queued, bound {bound}",
                    journal.bytes_held()
                );
            }
            2 => {
                let frames = u64::from(input.u8());
                journal.ack(frames);
                assert!(journal.first_held() >= frames.min(journal.frames_total()));
            }
            _ => {
                let total = newlines(&stream);
                let from = match input.u8() % 4 {
                    0 => None,
                    _ => Some(u64::from(input.u8()) % (total + 3)),
                };
                let asked = from.unwrap_or(total);
                match journal.locate(from) {
                    Ok((frame, at)) => {
                        assert_eq!(frame, asked);
                        assert!(frame >= journal.first_held() && frame <= total);
                        journal.replay_from(at);
                        let mut replayed = Vec::new();
                        while journal.is_replaying() {
                            let (a, b) = journal.pending_replay();
                            let step = 1 + rng.below(64) as usize;
                            let chunk: Vec<u8> = a.iter().chain(b).take(step).copied().collect();
                            assert!(!chunk.is_empty(), "a replay with nothing to send");
                            replayed.extend_from_slice(&chunk);
                            journal.replayed(chunk.len());
                        }
                        assert_eq!(
                            replayed,
                            &stream[frame_start(&stream, frame)..],
                            "the replay from frame {frame} is not the stream from there"
                        );
                    }
                    Err(Refusal::Gone {
                        first_held,
                        frames_total,
                    }) => {
                        assert!(asked < first_held, "frame {asked} refused but held");
                        assert_eq!((first_held, frames_total), (journal.first_held(), total));
                    }
                    Err(Refusal::Future {
                        asked: refused,
                        frames_total,
                    }) => {
                        assert_eq!(refused, asked);
                        assert!(asked > total && frames_total == total);
                    }
                }
            }
        }
        assert_eq!(journal.frames_total(), newlines(&stream));
        assert!(
            journal.first_held() >= first_held,
            "the first frame held went back"
        );
        first_held = journal.first_held();
        let held_from = frame_start(&stream, first_held);
        assert_eq!(
            journal.bytes_held(),
            stream.len() - held_from,
            "the journal is not the stream's tail"
        );
    }
    if let Some(end) = stream.iter().position(|&b| b == b'\n') {
        let first = &stream[..=end];
        let is_ready = first
            .windows(22)
            .any(|w| w == b"\"type\":\"gateway.ready\"");
        assert_eq!(journal.ready(), is_ready.then_some(first));
    }
}

fn newlines(bytes: &[u8]) -> u64 {
    bytes.iter().filter(|&&b| b == b'\n').count() as u64
}

/// Where frame `n` starts in the stream.
fn frame_start(stream: &[u8], n: u64) -> usize {
    if n == 0 {
        return 0;
    }
    stream
        .iter()
        .enumerate()
        .filter(|(_, &b)| b == b'\n')
        .nth(n as usize - 1)
        .map_or(stream.len(), |(i, _)| i + 1)
}
