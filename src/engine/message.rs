//! The wire protocol, spelled out once: JSON-RPC 2.0 message types, their
//! classification from an inbound frame, and their serialization into
//! outbound frames.
//!
//! `docs/protocol.md` describes the same contract for humans; the tests in
//! this module and in `tests/protocol.rs` pin it.
//!
//! Two details worth knowing:
//!
//! * Ids are echoed verbatim. The crate enables serde_json's
//!   `arbitrary_precision`, so `12345678901234567890123` or `1.50` come back
//!   exactly as they were sent, never rounded through an `f64`.
//! * Every outbound frame goes through [`LineSafe`], which escapes U+2028 and
//!   U+2029: some line readers (JavaScript ones in particular) split on them,
//!   and a frame must stay one line for every reader.

use std::fmt;
use std::io;

use serde::Serialize;
use serde_json::ser::{CharEscape, Formatter};
use serde_json::{Map, Value};

/// The protocol version announced in `gateway.ready`. Bumped only on an
/// incompatible change to the framing or the event envelope.
pub const PROTOCOL_VERSION: u32 = 1;

/// The method name of every event notification the gateway sends.
pub const EVENT_METHOD: &str = "event";

/// A request id: a JSON string, a JSON number (kept verbatim) or `null`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Id {
    /// A numeric id, stored as the exact text the client sent.
    Number(serde_json::Number),
    /// A string id.
    Str(String),
    /// `null`: used for errors whose request id could not be determined.
    Null,
}

impl Id {
    /// Reads an id from a JSON value; `None` if the value is not a legal id.
    pub fn from_value(value: &Value) -> Option<Id> {
        match value {
            Value::Number(n) => Some(Id::Number(n.clone())),
            Value::String(s) => Some(Id::Str(s.clone())),
            Value::Null => Some(Id::Null),
            _ => None,
        }
    }

    /// The id as a JSON value.
    pub fn to_value(&self) -> Value {
        match self {
            Id::Number(n) => Value::Number(n.clone()),
            Id::Str(s) => Value::String(s.clone()),
            Id::Null => Value::Null,
        }
    }
}

impl fmt::Display for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Id::Number(n) => write!(f, "{n}"),
            Id::Str(s) => write!(f, "{s:?}"),
            Id::Null => f.write_str("null"),
        }
    }
}

impl Serialize for Id {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Id::Number(n) => n.serialize(s),
            Id::Str(v) => v.serialize(s),
            Id::Null => s.serialize_unit(),
        }
    }
}

/// The error codes the gateway uses. The first five are JSON-RPC 2.0's; the
/// last two sit in the range the specification leaves to servers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    /// -32700: the frame is not valid UTF-8 or not valid JSON.
    ParseError,
    /// -32600: valid JSON, but not a JSON-RPC 2.0 message (or a frame too large).
    InvalidRequest,
    /// -32601: no service registered the method.
    MethodNotFound,
    /// -32602: the params do not fit the method.
    InvalidParams,
    /// -32603: a bug in the gateway.
    Internal,
    /// -32000: the handler ran and failed (for example a failed spawn).
    HandlerFailed,
    /// -32001: a bounded resource is full; retry later.
    Overloaded,
}

impl ErrorCode {
    /// The numeric code on the wire.
    pub fn code(self) -> i64 {
        match self {
            ErrorCode::ParseError => -32700,
            ErrorCode::InvalidRequest => -32600,
            ErrorCode::MethodNotFound => -32601,
            ErrorCode::InvalidParams => -32602,
            ErrorCode::Internal => -32603,
            ErrorCode::HandlerFailed => -32000,
            ErrorCode::Overloaded => -32001,
        }
    }
}

/// A JSON-RPC error object: what went wrong, in words a client developer can act on.
#[derive(Debug, Clone, PartialEq)]
pub struct RpcError {
    /// The error class.
    pub code: ErrorCode,
    /// One sentence: what happened and, where it helps, what to do.
    pub message: String,
    /// Structured detail (limits, OS error numbers), if any.
    pub data: Option<Value>,
}

impl RpcError {
    /// An error with a code and a message.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> RpcError {
        RpcError {
            code,
            message: message.into(),
            data: None,
        }
    }

    /// Attaches structured detail.
    pub fn with_data(mut self, data: Value) -> RpcError {
        self.data = Some(data);
        self
    }

    /// `-32700 Parse error`, with the parser's own explanation as `data`.
    pub fn parse(detail: impl fmt::Display) -> RpcError {
        RpcError::new(ErrorCode::ParseError, "Parse error")
            .with_data(serde_json::json!({ "reason": detail.to_string() }))
    }

    /// `-32600 Invalid Request`, with what is wrong as `data.reason`.
    pub fn invalid_request(reason: &str) -> RpcError {
        RpcError::new(ErrorCode::InvalidRequest, "Invalid Request")
            .with_data(serde_json::json!({ "reason": reason }))
    }

    /// `-32601`, naming the method.
    pub fn method_not_found(method: &str) -> RpcError {
        RpcError::new(
            ErrorCode::MethodNotFound,
            format!("Method not found: {method}"),
        )
    }

    /// `-32602`, saying which parameter is wrong and how.
    pub fn invalid_params(message: impl Into<String>) -> RpcError {
        RpcError::new(ErrorCode::InvalidParams, message)
    }

    fn to_value(&self) -> Value {
        let mut obj = Map::new();
        obj.insert("code".into(), Value::from(self.code.code()));
        obj.insert("message".into(), Value::from(self.message.clone()));
        if let Some(data) = &self.data {
            obj.insert("data".into(), data.clone());
        }
        Value::Object(obj)
    }
}

impl fmt::Display for RpcError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.message, self.code.code())
    }
}

impl std::error::Error for RpcError {}

/// One classified JSON-RPC message.
#[derive(Debug, Clone, PartialEq)]
pub enum Message {
    /// A call that wants a response.
    Request {
        /// Echoed verbatim in the response.
        id: Id,
        /// The method name.
        method: String,
        /// `params`, if present (always an array or an object).
        params: Option<Value>,
    },
    /// A call without an id: no response, ever.
    Notification {
        /// The method name.
        method: String,
        /// `params`, if present (always an array or an object).
        params: Option<Value>,
    },
    /// The client's answer to a request the gateway sent it.
    Response {
        /// The id the gateway chose for its request.
        id: Id,
        /// `result`, or the `error` object as sent.
        outcome: Result<Value, Value>,
    },
}

/// What one inbound frame holds.
#[derive(Debug, Clone, PartialEq)]
pub enum Incoming {
    /// A single message, or the error answering a single malformed object.
    Single(Result<Message, Reject>),
    /// A non-empty JSON array: each element classified on its own.
    Batch(Vec<Result<Message, Reject>>),
}

/// A frame or element the gateway refuses, with the id to answer it under.
#[derive(Debug, Clone, PartialEq)]
pub struct Reject {
    /// The request's id when it could be read, otherwise `null`.
    pub id: Id,
    /// Why.
    pub error: RpcError,
}

impl Reject {
    fn null(error: RpcError) -> Reject {
        Reject {
            id: Id::Null,
            error,
        }
    }
}

/// Classifies one frame (a line without its `\n`).
///
/// Invalid UTF-8 and invalid JSON are parse errors; an empty array is an
/// invalid request; anything else is classified element by element.
pub fn classify(frame: &[u8]) -> Incoming {
    let value: Value = match serde_json::from_slice(frame) {
        Ok(v) => v,
        Err(e) => return Incoming::Single(Err(Reject::null(RpcError::parse(e)))),
    };
    match value {
        Value::Array(items) if items.is_empty() => {
            Incoming::Single(Err(Reject::null(RpcError::invalid_request("empty batch"))))
        }
        Value::Array(items) => Incoming::Batch(items.into_iter().map(classify_value).collect()),
        other => Incoming::Single(classify_value(other)),
    }
}

/// Classifies one JSON value as a request, notification or response.
pub fn classify_value(value: Value) -> Result<Message, Reject> {
    let Value::Object(mut obj) = value else {
        return Err(Reject::null(RpcError::invalid_request(
            "a message must be a JSON object",
        )));
    };
    // The id, when present and well-formed, is echoed even in an error so the
    // client can match it; a malformed id is answered under `null`.
    let id = match obj.remove("id") {
        None => None,
        Some(raw) => match Id::from_value(&raw) {
            Some(id) => Some(id),
            None => {
                return Err(Reject::null(RpcError::invalid_request(
                    "\"id\" must be a string, a number or null",
                )))
            }
        },
    };
    let answer_id = id.clone().unwrap_or(Id::Null);
    let reject = |reason: &str| Reject {
        id: answer_id.clone(),
        error: RpcError::invalid_request(reason),
    };
    if obj.get("jsonrpc").and_then(Value::as_str) != Some("2.0") {
        return Err(reject("\"jsonrpc\" must be exactly \"2.0\""));
    }
    if let Some(method) = obj.remove("method") {
        let Value::String(method) = method else {
            return Err(reject("\"method\" must be a string"));
        };
        let params = match obj.remove("params") {
            None => None,
            Some(p @ (Value::Array(_) | Value::Object(_))) => Some(p),
            Some(_) => return Err(reject("\"params\" must be an array or an object")),
        };
        return Ok(match id {
            Some(id) => Message::Request { id, method, params },
            None => Message::Notification { method, params },
        });
    }
    let Some(id) = id else {
        return Err(reject(
            "a message needs \"method\" (a call) or \"id\" (a response)",
        ));
    };
    match (obj.remove("result"), obj.remove("error")) {
        (Some(result), None) => Ok(Message::Response {
            id,
            outcome: Ok(result),
        }),
        (None, Some(error @ Value::Object(_))) => Ok(Message::Response {
            id,
            outcome: Err(error),
        }),
        _ => Err(reject(
            "a response needs exactly one of \"result\" or an \"error\" object",
        )),
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
fn write_line_safe<W: ?Sized + io::Write>(writer: &mut W, fragment: &str) -> io::Result<()> {
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

/// One outbound response frame, `\n` included:
/// `{"jsonrpc":"2.0","result":R,"id":I}` or `{"jsonrpc":"2.0","error":E,"id":I}`.
pub fn response_frame(id: &Id, outcome: &Result<Value, RpcError>) -> Vec<u8> {
    let mut buf = Vec::with_capacity(64);
    write_response(&mut buf, id, outcome);
    buf.push(b'\n');
    buf
}

/// A batch answer: an array of responses on one line.
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

fn write_response(buf: &mut Vec<u8>, id: &Id, outcome: &Result<Value, RpcError>) {
    match outcome {
        Ok(result) => {
            buf.extend_from_slice(br#"{"jsonrpc":"2.0","result":"#);
            write_json(buf, result);
        }
        Err(error) => {
            buf.extend_from_slice(br#"{"jsonrpc":"2.0","error":"#);
            write_json(buf, &error.to_value());
        }
    }
    buf.extend_from_slice(br#","id":"#);
    write_json(buf, id);
    buf.push(b'}');
}

/// An event notification: `{"jsonrpc":"2.0","method":"event","params":{"type":T,"payload":P}}`.
pub fn event_frame(event_type: &str, payload: &Value) -> Vec<u8> {
    let mut buf = Vec::with_capacity(96);
    buf.extend_from_slice(br#"{"jsonrpc":"2.0","method":"event","params":{"type":"#);
    write_json(&mut buf, event_type);
    buf.extend_from_slice(br#","payload":"#);
    write_json(&mut buf, payload);
    buf.extend_from_slice(b"}}\n");
    buf
}

/// A request from the gateway to the client.
pub fn request_frame(id: &Id, method: &str, params: &Value) -> Vec<u8> {
    let mut buf = Vec::with_capacity(96);
    buf.extend_from_slice(br#"{"jsonrpc":"2.0","method":"#);
    write_json(&mut buf, method);
    buf.extend_from_slice(br#","params":"#);
    write_json(&mut buf, params);
    buf.extend_from_slice(br#","id":"#);
    write_json(&mut buf, id);
    buf.extend_from_slice(b"}\n");
    buf
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn single(frame: &str) -> Result<Message, Reject> {
        match classify(frame.as_bytes()) {
            Incoming::Single(m) => m,
            Incoming::Batch(_) => panic!("expected a single message for {frame}"),
        }
    }

    #[test]
    fn request_keeps_numeric_id_verbatim() {
        let m = single(r#"{"jsonrpc":"2.0","method":"m","id":12345678901234567890123}"#).unwrap();
        let Message::Request { id, .. } = m else {
            panic!("not a request")
        };
        let frame = response_frame(&id, &Ok(json!(1)));
        assert_eq!(
            frame,
            b"{\"jsonrpc\":\"2.0\",\"result\":1,\"id\":12345678901234567890123}\n"
        );
        let m = single(r#"{"jsonrpc":"2.0","method":"m","id":1.50}"#).unwrap();
        let Message::Request { id, .. } = m else {
            panic!("not a request")
        };
        assert_eq!(id.to_string(), "1.50");
    }

    #[test]
    fn absent_params_and_null_id_are_distinct_from_notifications() {
        assert_eq!(
            single(r#"{"jsonrpc":"2.0","method":"m"}"#).unwrap(),
            Message::Notification {
                method: "m".into(),
                params: None
            }
        );
        assert_eq!(
            single(r#"{"jsonrpc":"2.0","method":"m","id":null,"params":{}}"#).unwrap(),
            Message::Request {
                id: Id::Null,
                method: "m".into(),
                params: Some(json!({}))
            }
        );
    }

    #[test]
    fn rejects_carry_the_id_when_it_is_readable() {
        let r = single(r#"{"jsonrpc":"2.0","method":1,"id":"a"}"#).unwrap_err();
        assert_eq!(r.id, Id::Str("a".into()));
        assert_eq!(r.error.code, ErrorCode::InvalidRequest);
        let r = single(r#"{"jsonrpc":"2.0","method":"m","id":[1]}"#).unwrap_err();
        assert_eq!(r.id, Id::Null);
        let r = single(r#"{"jsonrpc":"1.0","method":"m","id":3}"#).unwrap_err();
        assert_eq!(r.error.code, ErrorCode::InvalidRequest);
        let r = single(r#"{"jsonrpc":"2.0","method":"m","params":"bar"}"#).unwrap_err();
        assert_eq!(r.error.code, ErrorCode::InvalidRequest);
    }

    #[test]
    fn parse_errors_for_bad_json_bad_utf8_and_deep_nesting() {
        for frame in [
            b"{\"jsonrpc\": \"2.0\", \"method\": \"foobar, \"params\": \"bar\", \"baz]".to_vec(),
            b"{\"jsonrpc\":\"2.0\",\"method\":\"\xff\"}".to_vec(),
            b"\"\\ud800\"".to_vec(),
            "[".repeat(100_000).into_bytes(),
        ] {
            let Incoming::Single(Err(r)) = classify(&frame) else {
                panic!("expected a parse error")
            };
            assert_eq!(r.error.code, ErrorCode::ParseError);
            assert_eq!(r.id, Id::Null);
        }
    }

    #[test]
    fn responses_from_the_client_are_classified() {
        assert_eq!(
            single(r#"{"jsonrpc":"2.0","result":{"x":1},"id":"gw-1"}"#).unwrap(),
            Message::Response {
                id: Id::Str("gw-1".into()),
                outcome: Ok(json!({"x":1}))
            }
        );
        let m = single(r#"{"jsonrpc":"2.0","error":{"code":1,"message":"no"},"id":7}"#).unwrap();
        assert!(matches!(
            m,
            Message::Response {
                outcome: Err(_),
                ..
            }
        ));
        assert!(single(r#"{"jsonrpc":"2.0","result":1,"error":{},"id":7}"#).is_err());
    }

    #[test]
    fn batches_classify_each_element() {
        let Incoming::Batch(items) = classify(br#"[1,{"jsonrpc":"2.0","method":"m"}]"#) else {
            panic!("expected a batch")
        };
        assert!(items[0].is_err());
        assert!(items[1].is_ok());
        let Incoming::Single(Err(r)) = classify(b"[]") else {
            panic!("expected an error")
        };
        assert_eq!(r.error.code, ErrorCode::InvalidRequest);
    }

    #[test]
    fn line_separators_are_escaped_everywhere() {
        let frame = event_frame(
            "t\u{2028}",
            &json!({"text": "a\u{2028}b\u{2029}c", "k\u{2029}": 1}),
        );
        let text = std::str::from_utf8(&frame).unwrap();
        assert!(!text.contains('\u{2028}') && !text.contains('\u{2029}'));
        assert!(text.contains(r"a\u2028b\u2029c"));
        let back: Value = serde_json::from_str(text.trim_end()).unwrap();
        assert_eq!(back["params"]["payload"]["text"], "a\u{2028}b\u{2029}c");
        assert_eq!(frame.iter().filter(|&&b| b == b'\n').count(), 1);
    }

    #[test]
    fn error_frames_are_valid_json_rpc() {
        let frame = response_frame(&Id::Null, &Err(RpcError::method_not_found("x")));
        let v: Value = serde_json::from_slice(&frame).unwrap();
        assert_eq!(
            v,
            json!({"jsonrpc":"2.0","error":{"code":-32601,"message":"Method not found: x"},"id":null})
        );
    }
}
