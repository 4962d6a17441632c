//! `outbound`: an arbitrary program of pushes, partial writes and clock
//! steps, run against the outbound queue and against a model of it.
//!
//! Input: byte 0 and byte 1 pick the limits ([`limits`]); then each op is
//! one byte (`op % 8`) and its operands:
//!
//! | op | what                                                          | operands       |
//! |----|---------------------------------------------------------------|----------------|
//! | 0  | push a response frame                                          | id             |
//! | 1, 2 | push a streaming delta with one of [`STREAMS`]' keys        | key, text      |
//! | 3  | a partial write of a size the operand picks (0 included)      | size           |
//! | 4  | a write that fails (`WouldBlock`): nothing may move            |                |
//! | 5  | advance the clock, then `check`                                | step           |
//! | 6  | push a streaming event whose text field is not a string       | key            |
//! | 7  | push a delta-typed event as a plain frame (never merged)      | text           |
//!
//! The model keeps, for every line the queue should write, either its exact
//! bytes (plain frames) or its parsed content and length (streaming frames,
//! whose text grows by merging), plus the byte counts and timers the limits
//! depend on. It is written from the rules, not from the code:
//! * frames leave whole and in order; a partial write resumes at its byte;
//! * a delta merges with the tail only when the tail is a streaming frame of
//!   the same type and equal other fields, not one byte of it written yet,
//!   and the merged text stays within the coalesce cap; nothing else merges;
//! * a push that would take the queue past the hard limit declares the
//!   reader gone: the queue closes, drops everything, takes nothing more;
//! * above the soft limit for the soft duration, or nothing written for the
//!   stall timeout while bytes wait, the reader is gone too (`check` reports
//!   the verdict exactly once);
//! * producers pause at the high-water mark and resume at the low one.
//!
//! After every op the queue's byte count, state, verdict, counters and next
//! deadline must equal the model's, and queued bytes never pass the hard
//! limit. At the end the queue is drained with writes of random sizes and
//! every written byte is checked against the model's lines: plain frames
//! byte for byte, streaming frames by content (the text of each equal to the
//! deltas merged into it, concatenated) and length; every line is non-blank,
//! compact JSON with U+2028/U+2029 escaped.

use std::time::{Duration, Instant};

use serde_json::{json, Map, Value};
use tui_gateway::engine::outbound::{Limits, Outbound};
use tui_gateway::engine::wire::{event_frame, response_frame, Id};

use self::model::{Line, Model, StreamKey};
use super::input::{Reader, Rng};
use super::wire::check_line;

mod model;

/// The streaming keys op 1 chooses from: (event type, other payload fields,
/// text field). Equal keys may merge, different ones never.
pub const STREAMS: [(&str, &str, &str); 7] = [
    ("message.delta", r#"{"session_id":"a"}"#, "text"),
    ("message.delta", r#"{"session_id":"b"}"#, "text"),
    ("message.delta", r#"{"session_id":"a","seq":1}"#, "text"),
    ("process.output", r#"{"proc":1,"stream":"stdout"}"#, "data"),
    ("process.output", r#"{"proc":1,"stream":"stderr"}"#, "data"),
    ("message.delta", r#"{}"#, "text"),
    ("x\u{2028}.delta", r#"{"k\u2029":"v\u2028"}"#, "text"),
];

/// Text pieces deltas are made of: plain, JSON escapes, line separators,
/// multi-byte UTF-8, control characters.
const PIECES: [&str; 16] = [
    "a", "b", "xyz", " ", "\"", "\\", "\n", "\r", "\t", "\u{2028}", "\u{2029}", "é", "😀", "\u{0}",
    "\u{1f}", "</",
];

/// The limits bytes 0 and 1 select: small enough that every limit is hit.
pub fn limits(b0: u8, b1: u8) -> Limits {
    let pick = |byte: u8, shift: u8| usize::from((byte >> shift) & 3);
    let hard = [120, 400, 2000, 1 << 20][pick(b0, 0)];
    let high = (hard / 2).max(2);
    Limits {
        hard_bytes: hard,
        coalesce_cap: [1, 8, 64, 60 * 1024][pick(b0, 2)],
        soft_bytes: hard * (1 + pick(b0, 4)) / 4,
        stall_timeout: Duration::from_millis([1000, 3000, 10_000, 3_600_000][pick(b0, 6)]),
        soft_duration: Duration::from_millis([500, 2000, 5000, 10_000][pick(b1, 0)]),
        high_water: high,
        low_water: [0, high / 4, high / 2, high - 1][pick(b1, 2)],
    }
}

/// The fuzz entry point.
pub fn check(data: &[u8]) {
    let mut input = Reader::new(data);
    let (b0, b1) = (input.u8(), input.u8());
    let limits = limits(b0, b1);
    let t0 = Instant::now();
    let mut h = Harness {
        queue: Outbound::new(limits.clone()),
        model: Model::new(limits),
        now: t0,
        written: Vec::new(),
    };
    while !input.is_empty() {
        match input.u8() % 8 {
            0 => {
                let id = input.u8();
                let frame = response_frame(&Id::from(u64::from(id)), &Ok(json!({ "n": id })));
                h.push_plain(frame);
            }
            1 | 2 => {
                let key = usize::from(input.u8()) % STREAMS.len();
                let text = text(&mut input);
                h.push_stream(key, Value::String(text));
            }
            3 => {
                let n = input.u8();
                let size = match n >> 6 {
                    0 => usize::from(n & 63),
                    1 => 64 + usize::from(n & 63) * 8,
                    2 => 1 + usize::from(n & 63) * 97,
                    _ => usize::MAX,
                };
                h.write(size);
            }
            4 => h.failed_write(),
            5 => {
                h.now += Duration::from_millis(25 * u64::from(input.u8()));
                h.check_limits();
            }
            6 => {
                let key = usize::from(input.u8()) % STREAMS.len();
                h.push_stream(key, json!(42));
            }
            _ => {
                let payload = json!({"session_id": "a", "text": text(&mut input)});
                h.push_plain(event_frame("message.delta", &payload));
            }
        }
        h.compare();
    }
    // Drain what is left with writes of seeded sizes, then read it all back.
    let mut rng = Rng::new(u64::from(b0) << 8 | u64::from(b1));
    while h.model.queued() > 0 {
        let size = 1 + rng.below(300) as usize;
        h.write(size);
        h.compare();
    }
    h.verify_output();
}

fn text(input: &mut Reader<'_>) -> String {
    let len = input.u8() % 16;
    (0..len)
        .map(|_| PIECES[usize::from(input.u8()) % PIECES.len()])
        .collect()
}

/// The queue under test, its model, the fake clock and the bytes written.
struct Harness {
    queue: Outbound,
    model: Model,
    now: Instant,
    written: Vec<u8>,
}

impl Harness {
    fn push_plain(&mut self, frame: Vec<u8>) {
        self.model.push(Line::Plain(frame.clone()), self.now);
        let _ = self.queue.push_frame(frame, self.now);
    }

    fn push_stream(&mut self, key: usize, text: Value) {
        let (event_type, rest, field) = STREAMS[key];
        let rest: Map<String, Value> = serde_json::from_str(rest).expect("STREAMS are objects");
        let mut payload = rest.clone();
        payload.insert(field.to_owned(), text.clone());
        match text {
            Value::String(text) => {
                let key = StreamKey {
                    event_type: event_type.to_owned(),
                    rest,
                    field: field.to_owned(),
                };
                self.model.push_stream(key, text, self.now);
            }
            // Not a streaming shape: it must go out as a plain event.
            other => {
                let mut plain = rest;
                plain.insert(field.to_owned(), other);
                let frame = event_frame(event_type, &Value::Object(plain));
                self.model.push(Line::Plain(frame), self.now);
            }
        }
        let _ = self.queue.push_stream(event_type, payload, field, self.now);
    }

    fn write(&mut self, size: usize) {
        let queued = self.queue.queued_bytes();
        let written = &mut self.written;
        let mut offered = 0;
        let n = self
            .queue
            .write_with(self.now, |slices| {
                offered = slices.iter().map(|s| s.len()).sum::<usize>();
                assert!(offered > 0, "write_with offered nothing with bytes queued");
                assert!(offered <= queued, "offered more than is queued");
                let mut left = size.min(offered);
                for slice in slices {
                    let take = left.min(slice.len());
                    written.extend_from_slice(&slice[..take]);
                    left -= take;
                }
                Ok::<usize, ()>(size.min(offered))
            })
            .expect("the writer never fails here");
        if queued == 0 {
            assert_eq!(n, 0, "wrote from an empty queue");
        }
        self.model.wrote(n, self.now);
    }

    fn failed_write(&mut self) {
        let result = self.queue.write_with(self.now, |_| Err::<usize, ()>(()));
        if self.model.queued() > 0 {
            assert_eq!(result, Err(()));
        }
    }

    fn check_limits(&mut self) {
        let expected = self.model.check(self.now);
        assert_eq!(self.queue.check(self.now), expected, "check() verdict");
    }

    /// The queue's observable state equals the model's.
    fn compare(&self) {
        let (q, m) = (&self.queue, &self.model);
        assert!(
            q.queued_bytes() <= m.limits.hard_bytes,
            "queued bytes passed the hard limit"
        );
        assert_eq!(q.queued_bytes(), m.queued(), "queued bytes");
        assert_eq!(q.is_empty(), m.queued() == 0);
        assert_eq!(q.is_closed(), m.closed, "closed");
        assert_eq!(q.slow_reader(), m.verdict.as_ref(), "verdict");
        assert_eq!(q.is_paused(), m.paused, "paused");
        assert_eq!(q.next_deadline(), m.next_deadline(), "next deadline");
        let c = q.counters();
        assert_eq!(c.bytes_out, self.written.len() as u64, "bytes_out");
        assert_eq!(c.frames_out, m.frames_out() as u64, "frames_out");
        assert_eq!(c.deltas_coalesced, m.deltas_coalesced, "deltas_coalesced");
        assert_eq!(c.high_water_mark, m.high_water_mark, "high_water_mark");
    }

    /// Every written byte is what the model's lines say, in order.
    fn verify_output(&self) {
        let m = &self.model;
        assert_eq!(self.written.len(), m.written);
        if !m.closed {
            assert_eq!(m.written, m.pushed, "an open queue drains completely");
        }
        let mut offset = 0;
        for line in &m.lines {
            if offset >= self.written.len() {
                break;
            }
            let end = offset + line.len();
            if end > self.written.len() {
                // Cut off when the reader was declared gone: a prefix of the
                // frame, never a whole line.
                assert!(m.closed, "a frame was cut short on an open queue");
                let part = &self.written[offset..];
                assert!(!part.contains(&b'\n'));
                if let Line::Plain(bytes) = line {
                    assert!(bytes.starts_with(part), "a cut frame is not a prefix");
                }
                offset = self.written.len();
                break;
            }
            let bytes = &self.written[offset..end];
            let body = bytes
                .strip_suffix(b"\n")
                .unwrap_or_else(|| panic!("line at {offset} does not end where the model ends it"));
            let value = check_line(body);
            match line {
                Line::Plain(frame) => assert_eq!(bytes, &frame[..], "a plain frame changed"),
                Line::Stream { key, text, .. } => {
                    assert_eq!(value, key.event(text), "a streaming frame's content")
                }
            }
            offset = end;
        }
        assert!(
            offset >= self.written.len(),
            "bytes written beyond the model"
        );
    }
}
