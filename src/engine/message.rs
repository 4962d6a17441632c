//! The wire protocol, spelled out once: JSON-RPC 2.0 message types, their
//! classification from an inbound frame, and their serialization into
//! outbound frames.
//!
//! `docs/protocol.md` describes the same contract for humans; the tests in
//! this module and in `tests/protocol.rs` pin it.
//!
//! Two details worth knowing:
//!
//! * Frames are classified from a light parse that keeps the original bytes:
//!   the envelope's fields are read as borrowed raw values (`RawValue`), no
//!   `Value` tree is built for anything but `params`, `result` and `error`,
//!   and a batch is walked one member at a time ([`BatchCursor`]), so a
//!   16 MiB batch costs its own bytes, not a tree of them.
//! * Numeric ids are echoed as the exact bytes received: `1e400`, `1.0E+2`,
//!   `-0`, `2.50` and a 40-digit integer all come back unchanged.
//! * Every outbound frame goes through [`LineSafe`], which escapes U+2028 and
//!   U+2029: some line readers (JavaScript ones in particular) split on them,
//!   and a frame must stay one line for every reader.

use std::fmt;
use std::io;

use serde::de::{Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};
use serde_json::ser::{CharEscape, Formatter};
use serde_json::value::RawValue;
use serde_json::{Map, Value};

/// The protocol version announced in `gateway.ready`. Bumped only on an
/// incompatible change to the framing or the event envelope.
pub const PROTOCOL_VERSION: u32 = 1;

/// The method name of every event notification the gateway sends.
pub const EVENT_METHOD: &str = "event";

/// A request id: a JSON string, a JSON number (kept as its exact text) or `null`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Id {
    /// A numeric id, stored as the exact text the client sent (`1e400`,
    /// `2.50`, `-0`): echoed byte for byte, never rounded or normalised.
    Number(Box<str>),
    /// A string id (decoded; echoed as an equal JSON string).
    Str(String),
    /// `null`: used for errors whose request id could not be determined.
    Null,
}

impl Id {
    /// Reads an id from the raw text of a JSON value; `None` if it is not a
    /// legal id (an object, an array or a boolean).
    pub fn from_raw(raw: &RawValue) -> Option<Id> {
        let text = raw.get().trim();
        match text.as_bytes().first()? {
            b'"' => serde_json::from_str(text).ok().map(Id::Str),
            b'-' | b'0'..=b'9' => Some(Id::Number(text.into())),
            b'n' => Some(Id::Null),
            _ => None,
        }
    }

    /// The id as a JSON value (numbers through `arbitrary_precision`, which
    /// may normalise their text: use [`Id::write`] to echo).
    pub fn to_value(&self) -> Value {
        match self {
            Id::Number(n) => serde_json::from_str(n).unwrap_or(Value::Null),
            Id::Str(s) => Value::String(s.clone()),
            Id::Null => Value::Null,
        }
    }

    /// Appends the id as JSON: numbers as their exact text.
    pub fn write(&self, buf: &mut Vec<u8>) {
        match self {
            Id::Number(n) => buf.extend_from_slice(n.as_bytes()),
            Id::Str(s) => write_json(buf, s),
            Id::Null => buf.extend_from_slice(b"null"),
        }
    }
}

impl Id {
    /// The form two ids are matched by: a number's value rather than its
    /// text, so a peer that writes `2.50` back as `2.5`, or `1e2` as
    /// `100.0`, still answers the same request. Integers without a fraction
    /// or exponent keep their exact text (they may exceed an `f64`).
    pub fn canonical(&self) -> Id {
        self.canonical_cow().into_owned()
    }

    /// [`Id::canonical`], borrowed when the id already is (a string, null,
    /// or an integer without a fraction or exponent: the common case).
    pub fn canonical_cow(&self) -> std::borrow::Cow<'_, Id> {
        match self {
            Id::Number(text) if text.contains(['.', 'e', 'E']) || &**text == "-0" => {
                std::borrow::Cow::Owned(self.canonical_number())
            }
            _ => std::borrow::Cow::Borrowed(self),
        }
    }

    fn canonical_number(&self) -> Id {
        match self {
            Id::Number(text) if text.contains(['.', 'e', 'E']) => match text.parse::<f64>() {
                Ok(v)
                    if v.is_finite() && v.fract() == 0.0 && v.abs() < 9.007_199_254_740_992e15 =>
                {
                    Id::Number(format!("{}", v as i64).into())
                }
                Ok(v) if v.is_finite() => Id::Number(format!("{v:?}").into()),
                _ => self.clone(),
            },
            Id::Number(text) if &**text == "-0" => Id::Number("0".into()),
            other => other.clone(),
        }
    }
}

impl From<u64> for Id {
    fn from(n: u64) -> Id {
        Id::Number(n.to_string().into())
    }
}

impl fmt::Display for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Id::Number(n) => f.write_str(n),
            Id::Str(s) => write!(f, "{s:?}"),
            Id::Null => f.write_str("null"),
        }
    }
}

impl Serialize for Id {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Id::Number(n) => RawValue::from_string(n.to_string())
                .map_err(serde::ser::Error::custom)?
                .serialize(s),
            Id::Str(v) => v.serialize(s),
            Id::Null => s.serialize_unit(),
        }
    }
}

/// The error codes the gateway uses. The first five are JSON-RPC 2.0's; the
/// last three sit in the range the specification leaves to servers.
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
    /// -32002: the backend exited before answering (bridge mode).
    BackendExited,
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
            ErrorCode::BackendExited => -32002,
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

/// Deepest nesting of arrays and objects a frame may have: serde_json's own
/// recursion limit (127 levels parse, 128 do not), checked over the whole
/// frame before anything is read from it raw.
pub const MAX_DEPTH: usize = 127;

/// A frame, checked and split into its shape. The batch variant holds the
/// frame's bytes and walks them one member at a time.
#[derive(Debug)]
pub enum Opened {
    /// A single value (not an array): the frame's checked text, or the
    /// error answering it. Classify it with [`head`] or [`classify_member`].
    Single(Result<String, Reject>),
    /// A non-empty array: its members, one at a time.
    Batch(BatchCursor),
}

/// Checks one frame (a line without its `\n`) and classifies it: a parse
/// error for invalid UTF-8, invalid JSON or nesting past [`MAX_DEPTH`]; an
/// invalid request for `[]`; a batch cursor for any other array; otherwise
/// the single message.
pub fn open(frame: Vec<u8>) -> Opened {
    let text = match check(frame) {
        Ok(text) => text,
        Err(reject) => return Opened::Single(Err(reject)),
    };
    if !text.trim_start_matches(JSON_WS).starts_with('[') {
        return Opened::Single(Ok(text));
    }
    batch(text)
}

/// [`open`] for a gateway with a backend: a frame that is an object or an
/// array is checked for UTF-8, nesting and syntax without decoding its
/// strings (an object's syntax by the envelope parse that classifies it,
/// [`head`], one pass instead of two). The verdicts are [`open`]'s but one:
/// a lone surrogate (`\ud800`) in a string the gateway does not read reaches
/// the backend as it came, as it would without the gateway (the
/// lone-surrogate rule in docs/protocol.md). Other values take [`open`]'s
/// path.
pub fn open_forwarding(frame: Vec<u8>) -> Opened {
    let first = frame
        .iter()
        .copied()
        .find(|b| !matches!(b, b' ' | b'\t' | b'\n' | b'\r'));
    if !matches!(first, Some(b'{' | b'[')) {
        return open(frame);
    }
    let text = match String::from_utf8(frame) {
        Ok(text) => text,
        Err(e) => {
            return Opened::Single(Err(Reject::null(RpcError::parse(format_args!(
                "invalid UTF-8 at byte {}",
                e.utf8_error().valid_up_to()
            )))))
        }
    };
    let Shape { depth, raw_control } = shape(&text);
    if depth > MAX_DEPTH {
        return Opened::Single(Err(Reject::null(RpcError::parse(format_args!(
            "recursion limit exceeded: more than {MAX_DEPTH} nested arrays and objects"
        )))));
    }
    if raw_control {
        // The envelope parse reads member names as bytes, which lets a raw
        // control byte through; every other string it checks itself.
        return Opened::Single(Err(Reject::null(RpcError::parse(
            "a control character (below U+0020) inside a string must be escaped",
        ))));
    }
    if first == Some(b'{') {
        return Opened::Single(Ok(text));
    }
    // An array: skipping checks syntax, escapes and control bytes, and
    // lets a lone surrogate through.
    if let Err(e) = serde_json::from_str::<IgnoredAny>(&text) {
        return Opened::Single(Err(Reject::null(RpcError::parse(e))));
    }
    batch(text)
}

/// The cursor over a checked array frame, or `-32600` for `[]`.
fn batch(text: String) -> Opened {
    let body = text.trim_start_matches(JSON_WS);
    let first = text.len() - body.len() + 1;
    let mut cursor = BatchCursor {
        pos: first,
        first,
        text,
        done: false,
    };
    if cursor.at_end() {
        return Opened::Single(Err(Reject::null(RpcError::invalid_request("empty batch"))));
    }
    Opened::Batch(cursor)
}

/// What one pass over JSON text finds outside what serde_json's skipping
/// checks: how deep arrays and objects nest, and whether a string holds a
/// raw control byte (JSON allows them only escaped; a member name read as
/// bytes is not checked for them by serde_json).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shape {
    /// The deepest nesting of arrays and objects.
    pub depth: usize,
    /// A byte below 0x20 inside a string.
    pub raw_control: bool,
}

/// [`Shape`] of JSON text, in one pass.
pub fn shape(text: &str) -> Shape {
    let (mut depth, mut deepest, mut raw_control) = (0usize, 0usize, false);
    walk(
        text,
        |b| match b {
            b'[' | b'{' => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        },
        |b| raw_control |= b < 0x20,
    );
    Shape {
        depth: deepest,
        raw_control,
    }
}

/// Calls `f` with every byte of JSON text that is outside a string.
fn for_each_structural(text: &str, f: impl FnMut(u8)) {
    walk(text, f, |_| {});
}

/// The one string-aware walk over JSON text: `outside` gets every byte
/// outside a string, `inside` every byte of a string's contents that is not
/// part of an escape (nor a quote).
fn walk(text: &str, mut outside: impl FnMut(u8), mut inside: impl FnMut(u8)) {
    let (mut in_string, mut escaped) = (false, false);
    for &b in text.as_bytes() {
        if in_string {
            match b {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => inside(b),
            }
        } else if b == b'"' {
            in_string = true;
        } else {
            outside(b);
        }
    }
}

/// What one inbound frame holds, every batch member classified: the
/// in-memory form of [`open`], for tests and fuzz targets.
#[derive(Debug, Clone, PartialEq)]
pub enum Incoming {
    /// A single message, or the error answering a single malformed object.
    Single(Result<Message, Reject>),
    /// A non-empty JSON array: each element classified on its own.
    Batch(Vec<Result<Message, Reject>>),
}

/// Classifies one frame completely (see [`open`] for the incremental form).
pub fn classify(frame: &[u8]) -> Incoming {
    match open(frame.to_vec()) {
        Opened::Single(item) => Incoming::Single(item.and_then(|text| classify_member(&text))),
        Opened::Batch(cursor) => Incoming::Batch(cursor.collect()),
    }
}

/// The members of a batch frame, one at a time, without a tree of them. The
/// frame was checked by [`open`], so every step is a parse of valid JSON.
#[derive(Debug)]
pub struct BatchCursor {
    /// The whole frame, checked.
    text: String,
    /// Where the next member (or the closing `]`) starts, whitespace allowed.
    pos: usize,
    /// Where the first member starts (after the `[`).
    first: usize,
    done: bool,
}

impl BatchCursor {
    fn at_end(&mut self) -> bool {
        let rest = self.text[self.pos..].trim_start_matches(JSON_WS);
        if rest.starts_with(']') || rest.is_empty() {
            self.done = true;
        }
        self.done
    }
}

impl BatchCursor {
    /// Starts over at the first member (a second pass over the batch).
    pub fn rewind(&mut self) {
        self.pos = self.first;
        self.done = false;
    }

    /// The frame's size in bytes: what holding it costs.
    pub fn frame_len(&self) -> usize {
        self.text.len()
    }

    /// The text of the next member, as it appears in the frame.
    pub fn next_member(&mut self) -> Option<&str> {
        if self.done || self.at_end() {
            return None;
        }
        let start = self.pos;
        let rest = &self.text[start..];
        let mut members = serde_json::Deserializer::from_str(rest).into_iter::<&RawValue>();
        let (range, end) = match members.next() {
            Some(Ok(raw)) => {
                let from = raw.get().as_ptr() as usize - rest.as_ptr() as usize;
                (from..from + raw.get().len(), members.byte_offset())
            }
            // Unreachable for a checked frame; end the batch rather than loop.
            _ => {
                self.done = true;
                return None;
            }
        };
        let after = rest[end..].trim_start_matches(JSON_WS);
        let consumed = rest.len() - after.len();
        self.pos += consumed + usize::from(after.starts_with(','));
        Some(&self.text[start + range.start..start + range.end])
    }
}

impl Iterator for BatchCursor {
    type Item = Result<Message, Reject>;

    fn next(&mut self) -> Option<Self::Item> {
        self.next_member().map(classify_member)
    }
}

/// JSON's four whitespace characters.
const JSON_WS: &[char] = &[' ', '\t', '\n', '\r'];

/// UTF-8, JSON syntax, string escapes and nesting depth, for the whole
/// frame, without building anything: the same verdict as parsing it into a
/// `Value`, at a fraction of the cost.
fn check(frame: Vec<u8>) -> Result<String, Reject> {
    let text = String::from_utf8(frame).map_err(|e| {
        Reject::null(RpcError::parse(format_args!(
            "invalid UTF-8 at byte {}",
            e.utf8_error().valid_up_to()
        )))
    })?;
    serde_json::from_str::<Checked>(&text).map_err(|e| Reject::null(RpcError::parse(e)))?;
    Ok(text)
}

/// Any JSON value, visited in full and kept nowhere. Unlike `IgnoredAny`
/// (which skips strings without checking their escapes and has no depth
/// limit), this goes through `deserialize_any`, so serde_json validates
/// every escape and applies its recursion limit ([`MAX_DEPTH`]).
struct Checked;

impl<'de> Deserialize<'de> for Checked {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Checked, D::Error> {
        d.deserialize_any(CheckedVisitor)
    }
}

struct CheckedVisitor;

impl<'de> Visitor<'de> for CheckedVisitor {
    type Value = Checked;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E>(self, _: bool) -> Result<Checked, E> {
        Ok(Checked)
    }
    fn visit_i64<E>(self, _: i64) -> Result<Checked, E> {
        Ok(Checked)
    }
    fn visit_u64<E>(self, _: u64) -> Result<Checked, E> {
        Ok(Checked)
    }
    fn visit_f64<E>(self, _: f64) -> Result<Checked, E> {
        Ok(Checked)
    }
    fn visit_str<E>(self, _: &str) -> Result<Checked, E> {
        Ok(Checked)
    }
    fn visit_unit<E>(self) -> Result<Checked, E> {
        Ok(Checked)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Checked, A::Error> {
        while seq.next_element::<Checked>()?.is_some() {}
        Ok(Checked)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Checked, A::Error> {
        // With `arbitrary_precision` a number arrives as a one-entry map.
        while map.next_key::<Checked>()?.is_some() {
            map.next_value::<Checked>()?;
        }
        Ok(Checked)
    }
}

/// The answer to a string the gateway must read (`id`, `method`) that holds
/// a lone surrogate: JSON, but not text (the lone-surrogate rule in
/// docs/protocol.md). Only a frame read from its envelope gets here; one read
/// in full ([`open`]) was refused before.
fn lone_surrogate_in(field: &str) -> Reject {
    Reject::null(RpcError::parse(format_args!(
        "\"{field}\" holds a lone surrogate (a \\u escape of half a UTF-16 pair), which is not text"
    )))
}

/// The envelope of one message, as borrowed raw values: nothing is copied
/// or parsed until a field is needed. Unknown fields are skipped; a repeated
/// field keeps its last value, as a JSON object would.
#[derive(Default)]
struct Envelope<'a> {
    jsonrpc: Option<&'a RawValue>,
    id: Option<&'a RawValue>,
    method: Option<&'a RawValue>,
    params: Option<&'a RawValue>,
    result: Option<&'a RawValue>,
    error: Option<&'a RawValue>,
}

/// The envelope field a key names.
enum Field {
    Jsonrpc,
    Id,
    Method,
    Params,
    Result,
    Error,
    Other,
}

impl<'de> Deserialize<'de> for Field {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Field, D::Error> {
        struct Names;
        impl Visitor<'_> for Names {
            type Value = Field;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a field name")
            }
            fn visit_bytes<E: serde::de::Error>(self, key: &[u8]) -> Result<Field, E> {
                Ok(match key {
                    b"jsonrpc" => Field::Jsonrpc,
                    b"id" => Field::Id,
                    b"method" => Field::Method,
                    b"params" => Field::Params,
                    b"result" => Field::Result,
                    b"error" => Field::Error,
                    _ => Field::Other,
                })
            }
        }
        // As bytes: serde_json then decodes escapes without refusing a lone
        // surrogate, which no envelope name holds (the lone-surrogate rule,
        // docs/protocol.md: a name is matched, never decoded to text).
        d.deserialize_bytes(Names)
    }
}

impl<'de> Deserialize<'de> for Envelope<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Envelope<'de>, D::Error> {
        struct Fields;
        impl<'de> Visitor<'de> for Fields {
            type Value = Envelope<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Envelope<'de>, A::Error> {
                let mut e = Envelope::default();
                while let Some(field) = map.next_key::<Field>()? {
                    let value: &'de RawValue = map.next_value()?;
                    let slot = match field {
                        Field::Jsonrpc => &mut e.jsonrpc,
                        Field::Id => &mut e.id,
                        Field::Method => &mut e.method,
                        Field::Params => &mut e.params,
                        Field::Result => &mut e.result,
                        Field::Error => &mut e.error,
                        Field::Other => continue,
                    };
                    *slot = Some(value);
                }
                Ok(e)
            }
        }
        d.deserialize_map(Fields)
    }
}

/// Most JSON values (elements, members and their keys) that `params`,
/// `result` or `error` may hold. A parsed value costs up to ~80 bytes
/// whatever its text, so a 16 MiB frame of `[1,1,1,...]` would become a
/// tree of over half a gigabyte; 100,000 values cost a few MiB at most,
/// and no method needs more (a command line has at most a few thousand).
pub const MAX_VALUES: usize = 100_000;

/// An upper bound on the number of JSON values in valid JSON text: one,
/// plus one per `,`, `:`, `[` and `{` outside strings.
fn value_count(text: &str) -> usize {
    let mut count = 1usize;
    for_each_structural(text, |b| {
        if matches!(b, b',' | b':' | b'[' | b'{') {
            count += 1;
        }
    });
    count
}

/// Parses a raw value that is known to be valid JSON, refusing one that
/// holds more than [`MAX_VALUES`] values (`field` names it in the error).
fn parse_value(raw: &RawValue, id: &Id, field: &str) -> Result<Value, Reject> {
    let count = value_count(raw.get());
    if count > MAX_VALUES {
        let message = format!(
            "\"{field}\" holds about {count} JSON values; at most {MAX_VALUES} are parsed (send fewer, larger values)"
        );
        let error = if field == "params" {
            RpcError::invalid_params(message)
        } else {
            RpcError::new(ErrorCode::InvalidRequest, message)
        };
        return Err(Reject {
            id: id.clone(),
            error: error.with_data(serde_json::json!({"limit": MAX_VALUES})),
        });
    }
    serde_json::from_str(raw.get()).map_err(|e| Reject::null(RpcError::parse(e)))
}

/// One message classified from its envelope alone: `params`, `result` and
/// `error` stay raw text until [`Head::into_message`] parses them, so a
/// message that is only forwarded is never parsed past its envelope.
#[derive(Debug, Clone)]
pub enum Head<'a> {
    /// A call that wants a response.
    Request {
        /// Its id.
        id: Id,
        /// The method name (borrowed from the frame unless it has escapes).
        method: std::borrow::Cow<'a, str>,
        /// `params`, if present (an array or an object).
        params: Option<&'a RawValue>,
    },
    /// A call without an id.
    Notification {
        /// The method name (borrowed from the frame unless it has escapes).
        method: std::borrow::Cow<'a, str>,
        /// `params`, if present (an array or an object).
        params: Option<&'a RawValue>,
    },
    /// An answer to a request.
    Response {
        /// The id it answers.
        id: Id,
        /// `Ok(result)` or `Err(error object)`, raw.
        outcome: Result<&'a RawValue, &'a RawValue>,
    },
}

impl Head<'_> {
    /// Parses the raw parts into a [`Message`], refusing a value past
    /// [`MAX_VALUES`].
    pub fn into_message(self) -> Result<Message, Reject> {
        Ok(match self {
            Head::Request { id, method, params } => Message::Request {
                params: parse_params(params, &id)?,
                method: method.into_owned(),
                id,
            },
            Head::Notification { method, params } => Message::Notification {
                params: parse_params(params, &Id::Null)?,
                method: method.into_owned(),
            },
            Head::Response { id, outcome } => Message::Response {
                outcome: parse_outcome(outcome, &id)?,
                id,
            },
        })
    }
}

/// Parses raw `params` (see [`parse_value`]); `id` is the id to refuse under.
pub fn parse_params(params: Option<&RawValue>, id: &Id) -> Result<Option<Value>, Reject> {
    params.map(|raw| parse_value(raw, id, "params")).transpose()
}

/// Parses a raw response's `result` or `error` object (see [`parse_value`]).
pub fn parse_outcome(
    outcome: Result<&RawValue, &RawValue>,
    id: &Id,
) -> Result<Result<Value, Value>, Reject> {
    Ok(match outcome {
        Ok(raw) => Ok(parse_value(raw, id, "result")?),
        Err(raw) => Err(parse_value(raw, id, "error")?),
    })
}

/// Classifies the text of one JSON value (a single frame or a batch member)
/// as a request, notification or response.
pub fn classify_member(text: &str) -> Result<Message, Reject> {
    head(text)?.into_message()
}

/// Classifies one JSON value from its envelope, leaving `params`, `result`
/// and `error` raw (see [`Head`]). The text must be valid JSON (checked by
/// [`open`], or by the envelope parse itself for a backend line).
pub fn head(text: &str) -> Result<Head<'_>, Reject> {
    if !text.trim_start_matches(JSON_WS).starts_with('{') {
        return Err(Reject::null(RpcError::invalid_request(
            "a message must be a JSON object",
        )));
    }
    let envelope: Envelope<'_> =
        serde_json::from_str(text).map_err(|e| Reject::null(RpcError::parse(e)))?;
    // The id, when present and well-formed, is echoed even in an error so the
    // client can match it; a malformed id is answered under `null`.
    let id = match envelope.id {
        None => None,
        Some(raw) => match Id::from_raw(raw) {
            Some(id) => Some(id),
            None if raw.get().starts_with('"') => return Err(lone_surrogate_in("id")),
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
    let version_ok = envelope.jsonrpc.is_some_and(|raw| {
        raw.get() == "\"2.0\""
            || serde_json::from_str::<String>(raw.get()).is_ok_and(|v| v == "2.0")
    });
    if !version_ok {
        return Err(reject("\"jsonrpc\" must be exactly \"2.0\""));
    }
    if let Some(method) = envelope.method {
        let Some(method) = json_str(method) else {
            if method.get().starts_with('"') {
                return Err(lone_surrogate_in("method"));
            }
            return Err(reject("\"method\" must be a string"));
        };
        let params = match envelope.params {
            None => None,
            Some(raw) if raw.get().starts_with(['[', '{']) => Some(raw),
            Some(_) => return Err(reject("\"params\" must be an array or an object")),
        };
        return Ok(match id {
            Some(id) => Head::Request { id, method, params },
            None => Head::Notification { method, params },
        });
    }
    let Some(id) = id else {
        return Err(reject(
            "a message needs \"method\" (a call) or \"id\" (a response)",
        ));
    };
    match (envelope.result, envelope.error) {
        (Some(result), None) => Ok(Head::Response {
            id,
            outcome: Ok(result),
        }),
        (None, Some(error)) if error.get().starts_with('{') => Ok(Head::Response {
            id,
            outcome: Err(error),
        }),
        _ => Err(reject(
            "a response needs exactly one of \"result\" or an \"error\" object",
        )),
    }
}

/// True when a response line (valid JSON) carries an `error` member.
pub fn contains_error(line: &[u8]) -> bool {
    std::str::from_utf8(line)
        .ok()
        .and_then(|text| serde_json::from_str::<Envelope<'_>>(text).ok())
        .is_some_and(|e| e.error.is_some())
}

/// A raw JSON string's value: borrowed when it has no escapes, `None` when
/// the value is not a string.
pub fn json_str(raw: &RawValue) -> Option<std::borrow::Cow<'_, str>> {
    let text = raw.get();
    let inner = text.strip_prefix('"')?.strip_suffix('"')?;
    if !inner.contains('\\') {
        return Some(std::borrow::Cow::Borrowed(inner));
    }
    serde_json::from_str::<String>(text)
        .ok()
        .map(std::borrow::Cow::Owned)
}

/// Where a raw value sits inside the text it was borrowed from.
pub fn span_in(outer: &str, inner: &RawValue) -> std::ops::Range<usize> {
    let start = inner.get().as_ptr() as usize - outer.as_ptr() as usize;
    start..start + inner.get().len()
}

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
struct Bounded<'a> {
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
    id.write(&mut buf);
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
    fn numeric_ids_are_echoed_as_their_exact_bytes() {
        let forty = "1234567890123456789012345678901234567890";
        for raw in ["1e400", "1.0E+2", "-0", "2.50", forty, "-1.5e-7", "0"] {
            let frame = format!(r#"{{"jsonrpc":"2.0","method":"m","id": {raw} }}"#);
            let Message::Request { id, .. } = single(&frame).unwrap() else {
                panic!("not a request")
            };
            let out = response_frame(&id, &Ok(json!(null)));
            let expected = format!("{{\"jsonrpc\":\"2.0\",\"result\":null,\"id\":{raw}}}\n");
            assert_eq!(String::from_utf8(out).unwrap(), expected);
        }
    }

    #[test]
    fn params_with_too_many_values_are_refused_before_parsing() {
        let many = vec!["1"; MAX_VALUES].join(",");
        let frame = format!(r#"{{"jsonrpc":"2.0","method":"m","params":[{many}],"id":9}}"#);
        let r = single(&frame).unwrap_err();
        assert_eq!(
            (r.id, r.error.code),
            (Id::from(9), ErrorCode::InvalidParams)
        );
        let fits = vec!["1"; MAX_VALUES - 2].join(",");
        let frame = format!(r#"{{"jsonrpc":"2.0","method":"m","params":[{fits}],"id":9}}"#);
        assert!(single(&frame).is_ok());
        // 7 values (object, key, array, 1, 2, key, object); the bound says 8.
        assert_eq!(value_count(r#"{"a,b:[{":[1,2],"c":{}}"#), 8);
    }

    #[test]
    fn a_batch_is_walked_member_by_member() {
        let frame = br#" [ 1 , {"jsonrpc":"2.0","method":"m","id":"a"},
            {"jsonrpc":"2.0","method":"n","params":[[1],{"x":"]"}]} ] "#;
        let Opened::Batch(mut members) = open(frame.to_vec()) else {
            panic!("a batch")
        };
        assert!(members.next().unwrap().is_err());
        assert!(matches!(members.next(), Some(Ok(Message::Request { .. }))));
        let Some(Ok(Message::Notification { params, .. })) = members.next() else {
            panic!("a notification")
        };
        assert_eq!(params, Some(json!([[1], {"x": "]"}])));
        assert!(members.next().is_none() && members.next().is_none());
        let Opened::Single(Err(r)) = open(b" [ ] ".to_vec()) else {
            panic!("empty batch")
        };
        assert_eq!(r.error.code, ErrorCode::InvalidRequest);
    }

    #[test]
    fn envelope_fields_repeat_as_in_a_json_object_and_unknown_ones_are_skipped() {
        let m = single(r#"{"x":{"deep":[1,2]},"jsonrpc":"1.0","method":"a","jsonrpc":"2.0","method":"b","id":1,"id":"z"}"#)
            .unwrap();
        assert_eq!(
            m,
            Message::Request {
                id: Id::Str("z".into()),
                method: "b".into(),
                params: None
            }
        );
        let m = single(r#"{"jsonrpc":"2\u002e0","method":"\u0061","id":null}"#).unwrap();
        assert!(matches!(m, Message::Request { method, .. } if method == "a"));
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

    #[test]
    fn forwarding_checks_a_single_frame_in_one_pass_with_the_same_verdicts() {
        let verdict = |frame: &str| match open_forwarding(frame.as_bytes().to_vec()) {
            Opened::Single(Ok(text)) => head(&text).map(|_| ()).map_err(|r| r.error.code),
            Opened::Single(Err(r)) => Err(r.error.code),
            Opened::Batch(_) => Ok(()),
        };
        assert_eq!(
            verdict(r#"{"jsonrpc":"2.0","id":1,"method":"a","params":{"x":[1]}}"#),
            Ok(())
        );
        for bad in [
            r#"{"jsonrpc":"2.0","id":1,"method":"a"} x"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"a","params":{"x":[1}}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"a","p":"\q"}"#,
            "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"a\",\"p\":\"\u{1}\"}",
        ] {
            assert_eq!(verdict(bad), Err(ErrorCode::ParseError), "{bad}");
        }
        let deep = format!(
            r#"{{"jsonrpc":"2.0","method":"a","params":{}1{}}}"#,
            "[".repeat(127),
            "]".repeat(127)
        );
        assert_eq!(
            verdict(&deep),
            Err(ErrorCode::ParseError),
            "128 levels with the envelope"
        );
        let ok = format!(
            r#"{{"jsonrpc":"2.0","method":"a","params":{}1{}}}"#,
            "[".repeat(126),
            "]".repeat(126)
        );
        assert_eq!(verdict(&ok), Ok(()));
        assert!(matches!(
            open_forwarding(b"\xff{}".to_vec()),
            Opened::Single(Err(_)) | Opened::Batch(_)
        ));
        assert!(
            matches!(open_forwarding(b"{\"a\":\"\xff\"}".to_vec()), Opened::Single(Err(r)) if r.error.code == ErrorCode::ParseError)
        );
        // Not an object: the full check, as without a backend.
        assert_eq!(verdict("42 x"), Err(ErrorCode::ParseError));
    }

    /// The lone-surrogate rule (docs/protocol.md): refused in what the
    /// gateway reads, passed as it came in what it forwards.
    #[test]
    fn a_lone_surrogate_is_refused_where_read_and_forwarded_where_not() {
        let forwarding = |frame: &str| match open_forwarding(frame.as_bytes().to_vec()) {
            Opened::Single(Ok(text)) => head(&text).map(|_| ()).map_err(|r| r.error.code),
            Opened::Single(Err(r)) => Err(r.error.code),
            Opened::Batch(mut members) => {
                while members.next_member().is_some() {}
                Ok(())
            }
        };
        let parse_error = Err(ErrorCode::ParseError);
        for unread in [
            r#"{"jsonrpc":"2.0","id":1,"method":"a","params":{"p":"\ud800"}}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"a","params":{"\udcff.txt":1}}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"a","x\udc00":"\udc00"}"#,
            r#"{"jsonrpc":"2.0","id":1,"result":"\ud83d"}"#,
            r#"[{"jsonrpc":"2.0","id":1,"method":"a","params":["\ud800"]}]"#,
            r#"[{"jsonrpc":"2.0","method":"a"}, {"a\udfff":"\\ud800"}]"#,
        ] {
            assert_eq!(forwarding(unread), Ok(()), "{unread}");
            // Read in full without a backend: a parse error.
            assert!(
                matches!(classify(unread.as_bytes()), Incoming::Single(Err(ref r)) if r.error.code == ErrorCode::ParseError),
                "{unread}"
            );
        }
        for read in [
            r#"{"jsonrpc":"2.0","id":"\ud800","method":"a"}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"a\udc00"}"#,
        ] {
            assert_eq!(forwarding(read), parse_error, "{read}");
        }
        // Not "2.0", whatever else it is.
        assert_eq!(
            forwarding(r#"{"jsonrpc":"2.0\ud800","id":1,"method":"a"}"#),
            Err(ErrorCode::InvalidRequest)
        );
        // A pair is text; an escaped backslash is no escape; an array is
        // still checked in full for syntax, escapes and control bytes.
        assert_eq!(
            forwarding(r#"{"jsonrpc":"2.0","id":"\ud83d\ude00","method":"a"}"#),
            Ok(())
        );
        assert_eq!(
            forwarding(r#"{"jsonrpc":"2.0","id":"\\ud800","method":"a"}"#),
            Ok(())
        );
        for bad in [
            r#"[{"jsonrpc":"2.0","method":"a","p":"\q"}]"#,
            r#"[{"jsonrpc":"2.0","method":"a","p":"\u12"}]"#,
            "[{\"jsonrpc\":\"2.0\",\"method\":\"a\",\"p\":\"\u{1}\"}]",
            r#"[{"jsonrpc":"2.0","method":"a"},]"#,
            r#"[{"jsonrpc":"2.0","method":"a"}] x"#,
            "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"a\",\"k\u{1}\":1}",
            "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"a\",\"\\u0041\t\":1}",
        ] {
            assert_eq!(forwarding(bad), parse_error, "{bad}");
        }
        assert_eq!(forwarding("  []"), Err(ErrorCode::InvalidRequest));
    }
}
