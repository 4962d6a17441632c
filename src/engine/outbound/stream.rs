//! Streaming frames: text deltas and process output that merge with the
//! queue's tail while the reader is slow. A merge never crosses another
//! frame, never touches a frame whose first byte was already written, and
//! only joins frames equal in every byte but their text.

use std::time::Instant;

use serde_json::{Map, Value};

use super::{Entry, Outbound, Refused};
use crate::engine::wire::{event_frame, write_event_head, write_json, write_json_str_body};

/// The mergeable part of the tail frame: its bytes are
/// `prefix ‖ escaped text ‖ STREAM_SUFFIX`.
#[derive(Debug)]
pub(super) struct OpenStream {
    /// Everything before the text: the envelope, the type and the other payload fields.
    pub(super) prefix_len: usize,
    /// Everything after the text: the closing quote, braces and `\n`.
    pub(super) suffix_len: usize,
    /// Escaped text bytes in the frame so far.
    pub(super) text_len: usize,
}

/// Closes the text string, the payload, the params and the frame.
const STREAM_SUFFIX: &[u8] = b"\"}}}\n";

impl Outbound {
    /// Queues a streaming event whose `payload` has one text field (`field`,
    /// a string). It merges with the tail frame when that frame is a streaming
    /// frame not yet started, with the same type and the same other fields,
    /// and the merged text stays within the coalesce cap.
    pub fn push_stream(
        &mut self,
        event_type: &str,
        mut payload: Map<String, Value>,
        field: &str,
        now: Instant,
    ) -> Result<(), Refused> {
        let text = match payload.remove(field) {
            Some(Value::String(text)) => text,
            other => {
                // Not a streaming shape after all: send it as a plain event.
                if let Some(v) = other {
                    payload.insert(field.to_owned(), v);
                }
                let frame = event_frame(event_type, &Value::Object(payload));
                return self.push_frame(frame, now);
            }
        };
        let mut prefix = Vec::with_capacity(96);
        write_event_head(&mut prefix, event_type);
        write_json(&mut prefix, &Value::Object(payload));
        // Reopen the payload object and append the text field last.
        let reopened = prefix.pop();
        debug_assert_eq!(reopened, Some(b'}'));
        if !prefix.ends_with(b"{") {
            prefix.push(b',');
        }
        write_json(&mut prefix, field);
        prefix.extend_from_slice(b":\"");
        let prefix_len = prefix.len();
        let mut frame = prefix;
        // Exactly the frame's size: amortized growth would leave up to half
        // of every queued frame's allocation unused, doubling the memory a
        // full queue takes.
        let mut body = Vec::with_capacity(text.len() + 8);
        write_json_str_body(&mut body, &text);
        frame.reserve_exact(body.len() + STREAM_SUFFIX.len());
        frame.extend_from_slice(&body);
        let text_end = frame.len();
        frame.extend_from_slice(STREAM_SUFFIX);
        self.push_stream_frame(frame, prefix_len..text_end, now)
    }

    /// Queues a streaming frame built elsewhere (a backend's bytes, kept as
    /// they are): `text` is the byte range of a JSON string's contents
    /// inside it. It merges into the tail when the tail is an unstarted
    /// streaming frame whose bytes before and after the text are equal to
    /// this one's, and the joined text stays within the coalesce cap.
    /// Concatenating the escaped contents of two JSON strings gives the
    /// escaped contents of their concatenation, so the merged frame is the
    /// same JSON with the texts joined.
    pub fn push_stream_frame(
        &mut self,
        frame: Vec<u8>,
        text: std::ops::Range<usize>,
        now: Instant,
    ) -> Result<(), Refused> {
        debug_assert!(frame.ends_with(b"\n") && text.end <= frame.len());
        let (prefix, rest) = frame.split_at(text.start);
        let (body, suffix) = rest.split_at(text.end - text.start);
        let mergeable = match (&self.open, self.frames.back()) {
            _ if self.building => false,
            // `open` is cleared as soon as the tail's first byte is written,
            // so an open tail is always unstarted.
            (Some(open), Some(Entry { bytes: tail, .. })) => {
                open.prefix_len == prefix.len()
                    && open.suffix_len == suffix.len()
                    && tail[..open.prefix_len] == *prefix
                    && tail[tail.len() - open.suffix_len..] == *suffix
                    && open.text_len + body.len() <= self.limits.coalesce_cap
            }
            _ => false,
        };
        if mergeable {
            self.admit(body.len())?;
            let tail = &mut self.frames.back_mut().expect("checked above").bytes;
            // The suffixes are equal: replace the tail's with the body and this one's.
            tail.truncate(tail.len() - suffix.len());
            tail.extend_from_slice(body);
            tail.extend_from_slice(suffix);
            if let Some(open) = &mut self.open {
                open.text_len += body.len();
            }
            self.queued += body.len();
            self.counters.deltas_coalesced += 1;
            self.after_growth(now);
            return Ok(());
        }
        let open = OpenStream {
            prefix_len: prefix.len(),
            suffix_len: suffix.len(),
            text_len: body.len(),
        };
        self.push_frame(frame, now)?;
        if !self.building {
            self.open = Some(open);
        }
        Ok(())
    }
}
