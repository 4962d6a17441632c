//! `message`: arbitrary bytes as one frame, through the classifier.
//!
//! Input: the whole of it is the frame.
//!
//! Asserted:
//! * opened as a gateway with a backend opens it (`open_forwarding`), the
//!   frame follows the lone-surrogate rule (docs/protocol.md): a parse error
//!   exactly when it is not JSON with each lone surrogate escape read as
//!   U+FFFD, or when its `id` or `method` holds one;
//! * `classify` returns (never panics) and agrees with serde_json on what is
//!   JSON: anything that does not parse (invalid UTF-8, bad syntax, nesting
//!   past serde_json's recursion limit, lone surrogates) is a `-32700` with
//!   id `null`; an empty array is a `-32600`; a non-empty array is a batch
//!   with one entry per element, in order;
//! * each element is accepted exactly when the JSON-RPC 2.0 rules say so (a
//!   request, a notification, or a response to the gateway) and what was
//!   accepted is what was sent (method, params, id, result or error);
//! * every error serialises into a valid JSON-RPC error response, carrying
//!   the element's id when it was a legal id and `null` otherwise;
//! * every accepted request's id comes back in its response exactly as sent:
//!   the same string, or the same number down to its spelling (`1.50`,
//!   `1e400`, 30-digit integers; the crate keeps numbers verbatim);
//! * a batch answer serialises to one line holding those responses in order.

use serde_json::{Map, Value};
use tui_gateway::engine::wire::{
    batch_frame, classify, open_forwarding, response_frame, ErrorCode, Id, Incoming, Message,
    Opened, Reject,
};

use super::wire::{check_line, check_response, is_id, without_lone_surrogates};

/// The fuzz entry point.
pub fn check(frame: &[u8]) {
    check_forwarding(frame);
    let incoming = classify(frame);
    match (serde_json::from_slice::<Value>(frame), &incoming) {
        (Err(_), Incoming::Single(Err(reject))) => {
            assert_eq!(reject.error.code, ErrorCode::ParseError, "{reject:?}");
            check_reject(reject, &Value::Null);
        }
        (Err(e), other) => panic!("serde_json refuses the frame ({e}) but classify gave {other:?}"),
        (Ok(Value::Array(items)), Incoming::Single(Err(reject))) if items.is_empty() => {
            assert_eq!(reject.error.code, ErrorCode::InvalidRequest, "{reject:?}");
            check_reject(reject, &Value::Null);
        }
        (Ok(Value::Array(sent)), Incoming::Batch(got)) => {
            assert_eq!(sent.len(), got.len(), "one batch entry per element");
            for (element, item) in sent.iter().zip(got) {
                check_element(element, item);
            }
            check_batch_answer(got);
        }
        (Ok(value), Incoming::Single(item)) if !value.is_array() => check_element(&value, item),
        (Ok(value), other) => panic!("classify gave {other:?} for {value}"),
    }
}

/// The same frame opened by a gateway with a backend, against the
/// lone-surrogate rule (docs/protocol.md): an object or an array is a parse
/// error exactly when it is not JSON once each lone surrogate escape is
/// read as U+FFFD, or when an object's `id` or `method` (which the gateway
/// reads) holds one; any other value is never forwarded, so it is refused
/// (read in full, as without a backend).
fn check_forwarding(frame: &[u8]) {
    let verdict = match open_forwarding(frame) {
        Opened::Single { message, .. } => message.err().map(|r| r.error.code),
        Opened::Batch(mut members) => {
            while members.next_member().is_some() {}
            None
        }
    };
    let is_parse_error = verdict == Some(ErrorCode::ParseError);
    let lenient = without_lone_surrogates(frame);
    let Ok(value) = serde_json::from_slice::<Value>(&lenient) else {
        assert!(is_parse_error, "not JSON by the rule, yet {verdict:?}");
        return;
    };
    if !value.is_object() && !value.is_array() {
        // Never forwarded: the gateway answers it, reading it in full.
        assert!(verdict.is_some(), "a scalar frame is refused");
        return;
    }
    let read_field_has_one = matches!(lenient, std::borrow::Cow::Owned(_))
        && ["id", "method"].iter().any(|field| {
            value
                .get(field)
                .and_then(Value::as_str)
                .is_some_and(|s| s.contains('\u{fffd}'))
        });
    if !read_field_has_one {
        assert!(!is_parse_error, "JSON by the rule, yet a parse error");
    }
}

/// The id an error about `element` must carry: its own when legal, else null.
fn answer_id(element: &Value) -> Value {
    match element.get("id") {
        Some(id) if element.is_object() && is_id(id) => id.clone(),
        _ => Value::Null,
    }
}

/// JSON-RPC 2.0's rules for one element, independently of the classifier:
/// is it a call (request or notification) or a response the gateway accepts?
fn acceptable(element: &Value) -> bool {
    let Some(obj) = element.as_object() else {
        return false;
    };
    if obj.get("jsonrpc").and_then(Value::as_str) != Some("2.0") {
        return false;
    }
    if obj.get("id").is_some_and(|id| !is_id(id)) {
        return false;
    }
    match obj.get("method") {
        Some(Value::String(_)) => matches!(
            obj.get("params"),
            None | Some(Value::Array(_)) | Some(Value::Object(_))
        ),
        Some(_) => false,
        None => {
            obj.contains_key("id")
                && match (obj.get("result"), obj.get("error")) {
                    (Some(_), None) => true,
                    (None, Some(error)) => error.is_object(),
                    _ => false,
                }
        }
    }
}

fn check_element(element: &Value, item: &Result<Message, Reject>) {
    let empty = Map::new();
    let obj = element.as_object().unwrap_or(&empty);
    match item {
        Err(reject) => {
            assert!(
                !acceptable(element),
                "a valid message was rejected: {element} ({reject:?})"
            );
            assert_eq!(reject.error.code, ErrorCode::InvalidRequest, "{reject:?}");
            check_reject(reject, &answer_id(element));
        }
        Ok(message) => {
            assert!(
                acceptable(element),
                "accepted an invalid message: {element}"
            );
            match message {
                Message::Request { id, method, params } => {
                    let sent = obj.get("id").expect("a request has an id");
                    assert_eq!(&id.to_value(), sent, "id not kept exactly");
                    assert_eq!(obj.get("method"), Some(&Value::from(method.as_str())));
                    assert_eq!(obj.get("params"), params.as_ref());
                    // The id goes back exactly as it came, number spelling included.
                    let frame = response_frame(id, &Ok(Value::Null));
                    let v = check_frame(&frame);
                    assert_eq!(check_response(&v), None);
                    assert_eq!(&v["id"], sent, "id not echoed exactly");
                }
                Message::Notification { method, params } => {
                    assert!(!obj.contains_key("id"), "a notification with an id");
                    assert_eq!(obj.get("method"), Some(&Value::from(method.as_str())));
                    assert_eq!(obj.get("params"), params.as_ref());
                }
                Message::Response { id, outcome } => {
                    assert!(!obj.contains_key("method"));
                    assert_eq!(Some(&id.to_value()), obj.get("id"));
                    match outcome {
                        Ok(result) => assert_eq!(Some(result), obj.get("result")),
                        Err(error) => assert_eq!(Some(error), obj.get("error")),
                    }
                }
            }
        }
    }
}

/// A reject serialises to a valid error response with the expected id.
fn check_reject(reject: &Reject, id: &Value) {
    assert_eq!(&reject.id.to_value(), id, "error id for {reject:?}");
    let frame = response_frame(&reject.id, &Err(reject.error.clone()));
    let v = check_frame(&frame);
    assert_eq!(check_response(&v), Some(reject.error.code.code()), "{v}");
    assert_eq!(&v["id"], id);
}

/// The answer to a batch is one line: an array of the responses, in order.
fn check_batch_answer(items: &[Result<Message, Reject>]) {
    let responses: Vec<(Id, _)> = items
        .iter()
        .filter_map(|item| match item {
            Ok(Message::Request { id, .. }) => Some((id.clone(), Ok(Value::Null))),
            Err(reject) => Some((reject.id.clone(), Err(reject.error.clone()))),
            Ok(_) => None,
        })
        .collect();
    if responses.is_empty() {
        return;
    }
    let v = check_frame(&batch_frame(&responses));
    let array = v.as_array().expect("a batch answer is an array");
    assert_eq!(array.len(), responses.len());
    for (got, (id, _)) in array.iter().zip(&responses) {
        check_response(got);
        assert_eq!(got["id"], id.to_value());
    }
}

/// One frame: a single checked line ending in its only `\n`.
fn check_frame(frame: &[u8]) -> Value {
    let line = frame
        .strip_suffix(b"\n")
        .expect("a frame ends with a newline");
    check_line(line)
}
