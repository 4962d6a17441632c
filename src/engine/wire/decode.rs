//! Reading frames: a frame opened into a single message or a batch, a
//! message classified from its envelope's raw fields, params and outcomes
//! parsed only when a method needs them.

use std::fmt;

use serde::de::{Deserializer, IgnoredAny, MapAccess, Visitor};
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::Value;

use super::*;

#[cfg(any(test, feature = "testing"))]
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

/// A frame, checked and split into its shape. The batch variant holds the
/// frame's bytes and walks them one member at a time.
#[derive(Debug)]
pub enum Opened {
    /// A single value (not an array): the frame's checked text, or the
    /// error answering it. Classify it with [`head`].
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
pub(super) fn batch(text: String) -> Opened {
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

#[cfg(any(test, feature = "testing"))]
/// What one inbound frame holds, every batch member classified: the
/// in-memory form of [`open`], for tests and fuzz targets.
#[derive(Debug, Clone, PartialEq)]
pub enum Incoming {
    /// A single message, or the error answering a single malformed object.
    Single(Result<Message, Reject>),
    /// A non-empty JSON array: each element classified on its own.
    Batch(Vec<Result<Message, Reject>>),
}

#[cfg(any(test, feature = "testing"))]
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

#[cfg(any(test, feature = "testing"))]
impl Iterator for BatchCursor {
    type Item = Result<Message, Reject>;

    fn next(&mut self) -> Option<Self::Item> {
        self.next_member().map(classify_member)
    }
}

/// The answer to a string the gateway must read (`id`, `method`) that holds
/// a lone surrogate: JSON, but not text (the lone-surrogate rule in
/// docs/protocol.md). Only a frame read from its envelope gets here; one read
/// in full ([`open`]) was refused before.
pub(super) fn lone_surrogate_in(field: &str) -> Reject {
    Reject::null(RpcError::parse(format_args!(
        "\"{field}\" holds a lone surrogate (a \\u escape of half a UTF-16 pair), which is not text"
    )))
}

/// The envelope of one message, as borrowed raw values: nothing is copied
/// or parsed until a field is needed. Unknown fields are skipped; a repeated
/// field keeps its last value, as a JSON object would.
#[derive(Default)]
pub(super) struct Envelope<'a> {
    jsonrpc: Option<&'a RawValue>,
    id: Option<&'a RawValue>,
    method: Option<&'a RawValue>,
    params: Option<&'a RawValue>,
    result: Option<&'a RawValue>,
    error: Option<&'a RawValue>,
}

/// The envelope field a key names.
pub(super) enum Field {
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

/// Parses a raw value that is known to be valid JSON, refusing one that
/// holds more than [`MAX_VALUES`] values (`field` names it in the error).
pub(super) fn parse_value(raw: &RawValue, id: &Id, field: &str) -> Result<Value, Reject> {
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

#[cfg(any(test, feature = "testing"))]
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

#[cfg(any(test, feature = "testing"))]
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
