//! Writing frames: responses within a size, events, requests, and JSON
//! that stays one line for every reader (U+2028 and U+2029 escaped).

use std::io;

use serde::Serialize;
use serde_json::ser::{CharEscape, Formatter};
use serde_json::Value;

use super::*;

/// Appends a response within `room` bytes, or a `-32001` error saying the
/// answer is larger than the outbound queue can take.
pub fn write_answer(buf: &mut Vec<u8>, id: &Id, reply: &Result<Value, RpcError>, room: usize) {
    if let Err(too_large) = write_response_within(buf, id, reply, room) {
        let error = RpcError::new(
            ErrorCode::Overloaded,
            format!(
                "the answer is larger than the {} bytes left below the outbound hard limit (--outbound-hard-limit); ask for less",
                too_large.limit
            ),
        )
        .with_data(serde_json::json!({"limit": too_large.limit}));
        write_response(buf, id, &Err(error));
    }
}

/// Appends a response whose result is `result`'s JSON text, as it stands,
/// within `room` bytes (or the `-32001` error [`write_answer`] gives).
pub fn write_fixed_answer(buf: &mut Vec<u8>, id: &Id, result: &str, room: usize) {
    const HEAD: &[u8] = br#"{"jsonrpc":"2.0","result":"#;
    let start = buf.len();
    buf.extend_from_slice(HEAD);
    buf.extend_from_slice(result.as_bytes());
    buf.extend_from_slice(br#","id":"#);
    id.write(buf);
    buf.push(b'}');
    if buf.len() - start > room {
        buf.truncate(start);
        let value = serde_json::from_str(result).expect("a fixed result is JSON");
        write_answer(buf, id, &Ok(value), room);
    }
}

/// A serde_json formatter for one-line frames: compact, and escapes U+2028
/// and U+2029 so no line reader splits a frame.
#[derive(Debug, Default, Clone, Copy)]
pub struct LineSafe;

impl Formatter for LineSafe {
    fn write_string_fragment<W>(&mut self, writer: &mut W, fragment: &str) -> io::Result<()>
    where
        W: ?Sized + io::Write,
    {
        write_line_safe(writer, fragment)
    }

    fn write_char_escape<W>(&mut self, writer: &mut W, escape: CharEscape) -> io::Result<()>
    where
        W: ?Sized + io::Write,
    {
        serde_json::ser::CompactFormatter.write_char_escape(writer, escape)
    }
}

/// Writes an already JSON-escaped string fragment, escaping the two line
/// separators serde_json leaves alone.
pub(super) fn write_line_safe<W: ?Sized + io::Write>(
    writer: &mut W,
    fragment: &str,
) -> io::Result<()> {
    // U+2028 is E2 80 A8 and U+2029 is E2 80 A9 in UTF-8: look for the lead
    // byte with memchr, which keeps the common case (no E2 at all) fast.
    let bytes = fragment.as_bytes();
    let mut start = 0;
    let mut from = 0;
    while let Some(offset) = memchr::memchr(0xE2, &bytes[from..]) {
        let at = from + offset;
        let escaped: &[u8] = match bytes.get(at + 1..at + 3) {
            Some([0x80, 0xA8]) => b"\\u2028",
            Some([0x80, 0xA9]) => b"\\u2029",
            _ => {
                from = at + 1;
                continue;
            }
        };
        writer.write_all(&bytes[start..at])?;
        writer.write_all(escaped)?;
        start = at + 3;
        from = start;
    }
    writer.write_all(&bytes[start..])
}

/// Appends `value` as line-safe compact JSON.
pub fn write_json<T: Serialize + ?Sized>(buf: &mut Vec<u8>, value: &T) {
    let mut ser = serde_json::Serializer::with_formatter(&mut *buf, LineSafe);
    // Serializing a `Value` or one of our own types into a Vec cannot fail:
    // there is no I/O error and no non-string map key.
    value
        .serialize(&mut ser)
        .expect("serializing to memory cannot fail");
}

/// Appends `text` as the body of a JSON string (no quotes), line-safe.
pub fn write_json_str_body(buf: &mut Vec<u8>, text: &str) {
    let start = buf.len();
    write_json(buf, text);
    // Drop the surrounding quotes that serializing a `&str` produced.
    buf.pop();
    buf.remove(start);
}

#[cfg(any(test, feature = "testing"))]
/// One outbound response frame, `\n` included:
/// `{"jsonrpc":"2.0","result":R,"id":I}` or `{"jsonrpc":"2.0","error":E,"id":I}`.
pub fn response_frame(id: &Id, outcome: &Result<Value, RpcError>) -> Vec<u8> {
    let mut buf = Vec::with_capacity(64);
    write_response(&mut buf, id, outcome);
    buf.push(b'\n');
    buf
}

#[cfg(any(test, feature = "testing"))]
/// A batch answer: an array of responses on one line (the engine writes
/// batches piece by piece; this whole form is for tests and fuzz targets).
pub fn batch_frame(responses: &[(Id, Result<Value, RpcError>)]) -> Vec<u8> {
    let mut buf = Vec::with_capacity(64 * responses.len());
    buf.push(b'[');
    for (i, (id, outcome)) in responses.iter().enumerate() {
        if i > 0 {
            buf.push(b',');
        }
        write_response(&mut buf, id, outcome);
    }
    buf.extend_from_slice(b"]\n");
    buf
}

/// Appends one response object (no newline).
pub fn write_response(buf: &mut Vec<u8>, id: &Id, outcome: &Result<Value, RpcError>) {
    let written = write_response_within(buf, id, outcome, usize::MAX);
    debug_assert!(written.is_ok(), "no limit");
}

/// An answer did not fit in the room it was given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TooLarge {
    /// The room, in bytes.
    pub limit: usize,
}

/// Appends one response object (no newline) if it fits in `limit` bytes;
/// otherwise leaves `buf` as it was. Serialization stops as soon as the
/// limit is passed, so a huge answer never exists in memory in full.
pub fn write_response_within(
    buf: &mut Vec<u8>,
    id: &Id,
    outcome: &Result<Value, RpcError>,
    limit: usize,
) -> Result<(), TooLarge> {
    let start = buf.len();
    let mut out = Bounded {
        buf,
        end: start.saturating_add(limit),
    };
    let written = match outcome {
        Ok(result) => out
            .put(br#"{"jsonrpc":"2.0","result":"#)
            .and_then(|()| out.json(result)),
        Err(error) => out
            .put(br#"{"jsonrpc":"2.0","error":"#)
            .and_then(|()| out.json(&error.to_value())),
    };
    let mut tail = Vec::with_capacity(32);
    tail.extend_from_slice(br#","id":"#);
    id.write(&mut tail);
    tail.push(b'}');
    match written.and_then(|()| out.put(&tail)) {
        Ok(()) => Ok(()),
        Err(_) => {
            buf.truncate(start);
            Err(TooLarge { limit })
        }
    }
}

/// A `Vec` writer that refuses to grow past `end`.
pub(super) struct Bounded<'a> {
    buf: &'a mut Vec<u8>,
    end: usize,
}

impl Bounded<'_> {
    fn put(&mut self, bytes: &[u8]) -> io::Result<()> {
        io::Write::write_all(self, bytes)
    }

    fn json<T: Serialize + ?Sized>(&mut self, value: &T) -> io::Result<()> {
        let mut ser = serde_json::Serializer::with_formatter(&mut *self, LineSafe);
        value.serialize(&mut ser).map_err(io::Error::other)
    }
}

impl io::Write for Bounded<'_> {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        if self.buf.len().saturating_add(bytes.len()) > self.end {
            return Err(io::ErrorKind::OutOfMemory.into());
        }
        self.buf.extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// An event notification: `{"jsonrpc":"2.0","method":"event","params":{"type":T,"payload":P}}`.
pub fn event_frame(event_type: &str, payload: &Value) -> Vec<u8> {
    let mut buf = Vec::with_capacity(96);
    write_event_head(&mut buf, event_type);
    write_json(&mut buf, payload);
    buf.extend_from_slice(b"}}\n");
    buf
}

/// The start of every event the gateway writes, up to its payload's value:
/// `{"jsonrpc":"2.0","method":"event","params":{"type":T,"payload":`. The
/// caller writes the payload and closes with `}}`.
pub fn write_event_head(buf: &mut Vec<u8>, event_type: &str) {
    buf.extend_from_slice(br#"{"jsonrpc":"2.0","method":"event","params":{"type":"#);
    write_json(buf, event_type);
    buf.extend_from_slice(br#","payload":"#);
}

/// A request from the gateway to the client.
pub fn request_frame(id: &Id, method: &str, params: &Value) -> Vec<u8> {
    let mut buf = Vec::with_capacity(96);
    buf.extend_from_slice(br#"{"jsonrpc":"2.0","method":"#);
    write_json(&mut buf, method);
    buf.extend_from_slice(br#","params":"#);
    write_json(&mut buf, params);
    buf.extend_from_slice(br#","id":"#);
    id.write(&mut buf);
    buf.extend_from_slice(b"}\n");
    buf
}
