//! The outbound queue as its rules describe it, independently of the code:
//! which lines it should write, how many bytes it should hold, and when its
//! limits should declare the reader gone. The `outbound` target compares the
//! real queue with this after every op.

use std::time::Instant;

use serde_json::{json, Map, Value};
use tui_gateway::engine::outbound::{Limits, SlowReader};

/// What makes two streaming events mergeable: equal type, equal other
/// fields, the same text field.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct StreamKey {
    pub(super) event_type: String,
    pub(super) rest: Map<String, Value>,
    pub(super) field: String,
}

impl StreamKey {
    /// The event this key and text make, as a client parses it.
    pub(super) fn event(&self, text: &str) -> Value {
        let mut payload = self.rest.clone();
        payload.insert(self.field.clone(), Value::from(text));
        json!({"jsonrpc": "2.0", "method": "event",
               "params": {"type": self.event_type, "payload": payload}})
    }
}

/// One line the queue should write.
#[derive(Debug, Clone)]
pub(super) enum Line {
    /// A frame pushed whole: exactly these bytes.
    Plain(Vec<u8>),
    /// A streaming event and the concatenated text of the deltas it holds.
    Stream {
        key: StreamKey,
        text: String,
        /// Escaped text bytes (what the coalesce cap counts).
        escaped: usize,
        /// The whole line's bytes, `\n` included.
        len: usize,
    },
}

impl Line {
    pub(super) fn len(&self) -> usize {
        match self {
            Line::Plain(bytes) => bytes.len(),
            Line::Stream { len, .. } => *len,
        }
    }
}

/// Bytes `text` takes inside a JSON string on the wire: serde_json's escapes,
/// plus three bytes for each U+2028/U+2029 (`\u2028` is six bytes, the raw
/// character three).
fn escaped_len(text: &str) -> usize {
    let json = serde_json::to_string(text).expect("a string serialises");
    json.len() - 2 + 3 * separators(text)
}

fn separators(text: &str) -> usize {
    text.chars()
        .filter(|&c| c == '\u{2028}' || c == '\u{2029}')
        .count()
}

/// The length of a compact line holding `value`: compact JSON's length does
/// not depend on member order, so it can be predicted from the value alone.
fn line_len(value: &Value) -> usize {
    let json = serde_json::to_string(value).expect("a value serialises");
    json.len() + 3 * separators(&json) + 1
}

/// The queue as the rules describe it.
#[derive(Debug)]
pub(super) struct Model {
    pub(super) limits: Limits,
    /// Every line ever admitted, in order.
    pub(super) lines: Vec<Line>,
    /// Bytes admitted so far (the sum of the lines' lengths).
    pub(super) pushed: usize,
    /// Bytes written so far.
    pub(super) written: usize,
    /// Lines whose last byte was written (they can no longer change), and
    /// where the first line not yet written whole starts.
    frames_out: usize,
    frames_out_end: usize,
    /// The last line is a streaming frame no plain frame has followed yet.
    tail_open: bool,
    pub(super) closed: bool,
    pub(super) verdict: Option<SlowReader>,
    unreported: Option<SlowReader>,
    over_soft_since: Option<Instant>,
    waiting_since: Option<Instant>,
    pub(super) paused: bool,
    pub(super) high_water_mark: usize,
    pub(super) deltas_coalesced: u64,
}

impl Model {
    pub(super) fn new(limits: Limits) -> Model {
        Model {
            limits,
            lines: Vec::new(),
            pushed: 0,
            written: 0,
            frames_out: 0,
            frames_out_end: 0,
            tail_open: false,
            closed: false,
            verdict: None,
            unreported: None,
            over_soft_since: None,
            waiting_since: None,
            paused: false,
            high_water_mark: 0,
            deltas_coalesced: 0,
        }
    }

    pub(super) fn queued(&self) -> usize {
        if self.closed {
            0
        } else {
            self.pushed - self.written
        }
    }

    /// Lines whose last byte was written.
    pub(super) fn frames_out(&self) -> usize {
        self.frames_out
    }

    /// May `len` more bytes be queued? Not once the reader is gone, and
    /// never past the hard limit: that push is refused, the queue stays open.
    fn admit(&mut self, len: usize) -> bool {
        !self.closed && self.queued() + len <= self.limits.hard_bytes
    }

    pub(super) fn push(&mut self, line: Line, now: Instant) {
        if self.admit(line.len()) {
            self.pushed += line.len();
            self.tail_open = matches!(line, Line::Stream { .. });
            self.lines.push(line);
            self.grew(now);
        }
    }

    pub(super) fn push_stream(&mut self, key: StreamKey, text: String, now: Instant) {
        let escaped = escaped_len(&text);
        let tail_start = self.pushed - self.lines.last().map_or(0, Line::len);
        let tail_untouched = self.written <= tail_start;
        let cap = self.limits.coalesce_cap;
        let merge = !self.closed
            && self.tail_open
            && tail_untouched
            && matches!(self.lines.last(), Some(Line::Stream { key: k, escaped: e, .. })
                        if *k == key && e + escaped <= cap);
        if !merge {
            let len = line_len(&key.event(&text));
            return self.push(
                Line::Stream {
                    key,
                    text,
                    escaped,
                    len,
                },
                now,
            );
        }
        if !self.admit(escaped) {
            return;
        }
        let Some(Line::Stream {
            text: tail,
            escaped: tail_escaped,
            len,
            ..
        }) = self.lines.last_mut()
        else {
            unreachable!("merge checked the tail");
        };
        tail.push_str(&text);
        *tail_escaped += escaped;
        *len += escaped;
        self.pushed += escaped;
        self.deltas_coalesced += 1;
        self.grew(now);
    }

    fn grew(&mut self, now: Instant) {
        let queued = self.queued();
        self.high_water_mark = self.high_water_mark.max(queued);
        self.waiting_since.get_or_insert(now);
        if queued > self.limits.soft_bytes {
            self.over_soft_since.get_or_insert(now);
        }
        if queued >= self.limits.high_water {
            self.paused = true;
        }
    }

    pub(super) fn wrote(&mut self, n: usize, now: Instant) {
        if n == 0 {
            return;
        }
        self.written += n;
        // Only a line not started yet can still grow, so the lines written
        // whole so far keep their lengths.
        while let Some(line) = self.lines.get(self.frames_out) {
            if self.frames_out_end + line.len() > self.written {
                break;
            }
            self.frames_out_end += line.len();
            self.frames_out += 1;
        }
        let queued = self.queued();
        self.waiting_since = (queued > 0).then_some(now);
        if queued <= self.limits.soft_bytes {
            self.over_soft_since = None;
        }
        if queued <= self.limits.low_water {
            self.paused = false;
        }
    }

    pub(super) fn check(&mut self, now: Instant) -> Option<SlowReader> {
        if !self.closed {
            let soft = self
                .over_soft_since
                .is_some_and(|t| now.duration_since(t) >= self.limits.soft_duration);
            let stalled = self
                .waiting_since
                .is_some_and(|t| now.duration_since(t) >= self.limits.stall_timeout);
            if soft {
                self.gone(SlowReader::SoftLimit {
                    limit: self.limits.soft_bytes,
                    seconds: self.limits.soft_duration.as_secs_f64(),
                });
            } else if stalled {
                self.gone(SlowReader::Stalled {
                    seconds: self.limits.stall_timeout.as_secs_f64(),
                });
            }
        }
        self.unreported.take()
    }

    fn gone(&mut self, verdict: SlowReader) {
        self.verdict = Some(verdict.clone());
        self.unreported = Some(verdict);
        self.closed = true;
        self.tail_open = false;
        self.over_soft_since = None;
        self.waiting_since = None;
        self.paused = false;
    }

    pub(super) fn next_deadline(&self) -> Option<Instant> {
        let soft = self.over_soft_since.map(|t| t + self.limits.soft_duration);
        let stall = self.waiting_since.map(|t| t + self.limits.stall_timeout);
        [soft, stall].into_iter().flatten().min()
    }
}
