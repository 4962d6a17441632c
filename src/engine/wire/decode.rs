//! Reading frames: a frame opened into a single message or a batch, a
//! message classified from its envelope's raw fields, params and outcomes
//! parsed only when a method needs them.

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

/// What one frame is, checked and classified: a single message (read from
/// its envelope, borrowing the frame's bytes), or a batch, which holds a
/// copy of the frame (a batch is answered over several turns) and walks it
/// one member at a time.
#[derive(Debug)]
pub enum Opened<'a> {
    /// A single value (not an array).
    Single {
        /// The frame's text, exactly as received (empty when the frame is
        /// not UTF-8: it is then answered, never forwarded).
        text: &'a str,
        /// The message it is, or the error answering it.
        message: Result<Head<'a>, Reject>,
    },
    /// A non-empty array: its members, one at a time.
    Batch(BatchCursor),
}

/// Checks one frame (a line without its `\n`) and classifies it: a parse
/// error for invalid UTF-8, invalid JSON or nesting past [`MAX_DEPTH`]; an
/// invalid request for `[]`; a batch cursor for any other array; otherwise
/// the single message.
pub fn open(frame: &[u8]) -> Opened<'_> {
    open_with(frame, Surrogates::Refuse)
}

/// [`open`] for a gateway with a backend. The verdicts are [`open`]'s but
/// one: in an object or an array, a lone surrogate (`\ud800`) in a string
/// the gateway does not read reaches the backend as it came, as it would
/// without the gateway (the lone-surrogate rule in docs/protocol.md).
pub fn open_forwarding(frame: &[u8]) -> Opened<'_> {
    open_with(frame, Surrogates::Allow)
}

fn open_with(frame: &[u8], surrogates: Surrogates) -> Opened<'_> {
    let text = match std::str::from_utf8(frame) {
        Ok(text) => text,
        Err(e) => {
            let message = Err(Reject::null(RpcError::parse(format_args!(
                "invalid UTF-8 at byte {}",
                e.valid_up_to()
            ))));
            return Opened::Single { text: "", message };
        }
    };
    let container = matches!(first_byte(text), Some(b'{' | b'['));
    // A frame that is not an object or an array is read as text.
    let surrogates = if container {
        surrogates
    } else {
        Surrogates::Refuse
    };
    let message = match scan(text, surrogates) {
        Some(Scanned::Array) => return batch(text.to_owned()),
        Some(Scanned::Object(spans)) => head_of(text, &spans),
        Some(Scanned::Scalar) => Err(not_an_object()),
        None => Err(explain(text, surrogates)),
    };
    Opened::Single { text, message }
}

/// The cursor over a checked array frame, or `-32600` for `[]`.
pub(super) fn batch(text: String) -> Opened<'static> {
    let body = text.trim_start_matches(JSON_WS);
    let first = text.len() - body.len() + 1;
    let mut cursor = BatchCursor {
        pos: first,
        first,
        text,
        done: false,
    };
    if cursor.at_end() {
        let message = Err(Reject::null(RpcError::invalid_request("empty batch")));
        return Opened::Single { text: "", message };
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
    match open(frame) {
        Opened::Single { message, .. } => Incoming::Single(message.and_then(Head::into_message)),
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
        let start = self.pos
            + (self.text.len()
                - self.pos
                - self.text[self.pos..].trim_start_matches(JSON_WS).len());
        let Some(end) = value_end(&self.text, start) else {
            // Unreachable for a checked frame; end the batch rather than loop.
            self.done = true;
            return None;
        };
        let after = self.text[end..].trim_start_matches(JSON_WS);
        self.pos = self.text.len() - after.len() + usize::from(after.starts_with(','));
        Some(&self.text[start..end])
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

/// One raw value of a message (`params`, `result`, `error`): its text, and
/// an upper bound on the JSON values it holds (see [`Member::values`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Raw<'a> {
    /// The value's text, exactly as received.
    pub text: &'a str,
    /// At most this many JSON values.
    pub values: usize,
}

/// Parses a raw value that is known to be valid JSON, refusing one that
/// holds more than [`MAX_VALUES`] values (`field` names it in the error).
pub(super) fn parse_value(raw: Raw<'_>, id: &Id, field: &str) -> Result<Value, Reject> {
    check_size(raw, id, field)?;
    serde_json::from_str(raw.text).map_err(|e| Reject::null(RpcError::parse(e)))
}

/// Refuses a raw value that holds more than [`MAX_VALUES`] values, whether
/// or not it is parsed, so the verdict does not depend on who reads it.
pub fn check_size(raw: Raw<'_>, id: &Id, field: &str) -> Result<(), Reject> {
    let count = raw.values;
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
    Ok(())
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
        params: Option<Raw<'a>>,
    },
    /// A call without an id.
    Notification {
        /// The method name (borrowed from the frame unless it has escapes).
        method: std::borrow::Cow<'a, str>,
        /// `params`, if present (an array or an object).
        params: Option<Raw<'a>>,
    },
    /// An answer to a request.
    Response {
        /// The id it answers.
        id: Id,
        /// `Ok(result)` or `Err(error object)`, raw.
        outcome: Result<Raw<'a>, Raw<'a>>,
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

/// Parses raw `params` (see `parse_value`); `id` is the id to refuse under.
pub fn parse_params(params: Option<Raw<'_>>, id: &Id) -> Result<Option<Value>, Reject> {
    params.map(|raw| parse_value(raw, id, "params")).transpose()
}

/// Parses a raw response's `result` or `error` object (see `parse_value`).
pub fn parse_outcome(
    outcome: Result<Raw<'_>, Raw<'_>>,
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
/// and `error` raw (see [`Head`]): one [`scan`] of the text, which also
/// checks it (a backend line is read only through this).
pub fn head(text: &str) -> Result<Head<'_>, Reject> {
    if first_byte(text) != Some(b'{') {
        return Err(not_an_object());
    }
    match scan(text, Surrogates::Allow) {
        Some(Scanned::Object(spans)) => head_of(text, &spans),
        _ => Err(explain(text, Surrogates::Allow)),
    }
}

fn not_an_object() -> Reject {
    Reject::null(RpcError::invalid_request("a message must be a JSON object"))
}

/// The message an object's envelope says it is.
fn head_of<'a>(text: &'a str, spans: &Spans) -> Result<Head<'a>, Reject> {
    let field = |member: &Option<Member>| member.as_ref().map(|m| &text[m.span()]);
    let raw = |member: &Option<Member>| {
        member.as_ref().map(|m| Raw {
            text: &text[m.span()],
            values: m.values(),
        })
    };
    // The id, when present and well-formed, is echoed even in an error so the
    // client can match it; a malformed id is answered under `null`.
    let id = match field(&spans.id) {
        None => None,
        Some(raw) => match Id::from_json(raw) {
            Some(id) => Some(id),
            None if raw.starts_with('"') => return Err(lone_surrogate_in("id")),
            None => {
                return Err(Reject::null(RpcError::invalid_request(
                    "\"id\" must be a string, a number or null",
                )))
            }
        },
    };
    let reject = |id: &Option<Id>, reason: &str| Reject {
        id: id.clone().unwrap_or(Id::Null),
        error: RpcError::invalid_request(reason),
    };
    let version_ok = field(&spans.jsonrpc).is_some_and(|raw| {
        raw == "\"2.0\"" || serde_json::from_str::<String>(raw).is_ok_and(|v| v == "2.0")
    });
    if !version_ok {
        return Err(reject(&id, "\"jsonrpc\" must be exactly \"2.0\""));
    }
    if let Some(member) = &spans.method {
        let method = &text[member.span()];
        let plain = method.len() >= 2 && method.starts_with('"') && !member.escaped();
        let method = if plain {
            Some(std::borrow::Cow::Borrowed(&method[1..method.len() - 1]))
        } else {
            json_str(method)
        };
        let Some(method) = method else {
            let method = &text[member.span()];
            if method.starts_with('"') {
                return Err(lone_surrogate_in("method"));
            }
            return Err(reject(&id, "\"method\" must be a string"));
        };
        let params = match raw(&spans.params) {
            None => None,
            Some(params) if params.text.starts_with(['[', '{']) => Some(params),
            Some(_) => return Err(reject(&id, "\"params\" must be an array or an object")),
        };
        return Ok(match id {
            Some(id) => Head::Request { id, method, params },
            None => Head::Notification { method, params },
        });
    }
    let Some(id) = id else {
        return Err(reject(
            &None,
            "a message needs \"method\" (a call) or \"id\" (a response)",
        ));
    };
    match (raw(&spans.result), raw(&spans.error)) {
        (Some(result), None) => Ok(Head::Response {
            id,
            outcome: Ok(result),
        }),
        (None, Some(error)) if error.text.starts_with('{') => Ok(Head::Response {
            id,
            outcome: Err(error),
        }),
        _ => Err(reject(
            &Some(id),
            "a response needs exactly one of \"result\" or an \"error\" object",
        )),
    }
}

/// True when a response line (valid JSON) carries an `error` member.
pub fn contains_error(line: &[u8]) -> bool {
    std::str::from_utf8(line)
        .ok()
        .and_then(|text| scan(text, Surrogates::Allow))
        .is_some_and(|scanned| matches!(scanned, Scanned::Object(spans) if spans.error.is_some()))
}

/// A JSON string's value, from its text: borrowed when it has no escapes,
/// `None` when the text is not a string (or holds a lone surrogate).
pub fn json_str(raw: &str) -> Option<std::borrow::Cow<'_, str>> {
    let inner = raw.strip_prefix('"')?.strip_suffix('"')?;
    if !inner.contains('\\') {
        return Some(std::borrow::Cow::Borrowed(inner));
    }
    serde_json::from_str::<String>(raw)
        .ok()
        .map(std::borrow::Cow::Owned)
}
