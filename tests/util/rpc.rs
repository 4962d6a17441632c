//! JSON-RPC 2.0 frames as the tests see them: building requests and
//! notifications and their NDJSON lines, classifying what comes back (event,
//! response, error code, numbers), matching answers against the
//! specification's examples, and checking every stdout line on the way in
//! (`parse_frame`: not blank, no raw U+2028/U+2029, valid JSON).

use serde_json::{json, Value};

/// A request `{"jsonrpc":"2.0","method":M,"id":ID}`.
pub fn rpc(id: impl Into<Value>, method: &str) -> Value {
    json!({"jsonrpc": "2.0", "method": method, "id": id.into()})
}

/// A request with params.
pub fn rpc_with(id: impl Into<Value>, method: &str, params: Value) -> Value {
    json!({"jsonrpc": "2.0", "method": method, "params": params, "id": id.into()})
}

/// A notification (no id).
pub fn notification(method: &str, params: Option<Value>) -> Value {
    match params {
        Some(p) => json!({"jsonrpc": "2.0", "method": method, "params": p}),
        None => json!({"jsonrpc": "2.0", "method": method}),
    }
}

/// One NDJSON line for `v`.
pub fn line(v: &Value) -> Vec<u8> {
    let mut bytes = serde_json::to_vec(v).expect("serialize");
    bytes.push(b'\n');
    bytes
}

/// Many NDJSON lines in one buffer.
pub fn lines<'a>(values: impl IntoIterator<Item = &'a Value>) -> Vec<u8> {
    let mut out = Vec::new();
    for v in values {
        out.extend_from_slice(&line(v));
    }
    out
}

/// True for `{"jsonrpc":"2.0","method":"event","params":{...}}` frames.
pub fn is_event(v: &Value) -> bool {
    v.get("method").and_then(Value::as_str) == Some("event") && v.get("id").is_none()
}

/// The `params.type` of an event.
pub fn event_type(v: &Value) -> Option<&str> {
    if !is_event(v) {
        return None;
    }
    v.pointer("/params/type").and_then(Value::as_str)
}

/// True for a response object (has `id` and `result` or `error`, no `method`).
pub fn is_response(v: &Value) -> bool {
    v.is_object()
        && v.get("method").is_none()
        && v.get("id").is_some()
        && (v.get("result").is_some() || v.get("error").is_some())
}

/// The error code of a response, if it is an error.
pub fn error_code(v: &Value) -> Option<i64> {
    v.pointer("/error/code").and_then(Value::as_i64)
}

/// A JSON number as u64 (works with serde_json's `arbitrary_precision`).
pub fn as_u64(v: &Value) -> u64 {
    v.as_u64()
        .unwrap_or_else(|| panic!("expected a non-negative integer, got {v}"))
}

/// A JSON number as f64.
pub fn as_f64(v: &Value) -> f64 {
    v.as_f64()
        .unwrap_or_else(|| panic!("expected a number, got {v}"))
}

/// Compares one response against a JSON-RPC 2.0 specification example.
///
/// The specification's error messages are examples: the code, the id and the
/// envelope must match exactly, and the gateway's message must start with the
/// example's (it may add detail, such as the method name). An error may carry
/// `data`. A result must be equal.
pub fn rpc_match(actual: &Value, expected: &Value) -> Result<(), String> {
    let a = actual
        .as_object()
        .ok_or_else(|| format!("not an object: {actual}"))?;
    let e = expected.as_object().expect("expected is an object");
    if a.get("jsonrpc") != Some(&json!("2.0")) {
        return Err(format!("jsonrpc is not \"2.0\" in {actual}"));
    }
    for key in a.keys() {
        if !["jsonrpc", "result", "error", "id"].contains(&key.as_str()) {
            return Err(format!("unexpected member {key:?} in {actual}"));
        }
    }
    match a.get("id") {
        Some(id) if Some(id) == e.get("id") => {}
        other => {
            return Err(format!(
                "id {other:?} instead of {:?} in {actual}",
                e.get("id")
            ))
        }
    }
    if let Some(result) = e.get("result") {
        if a.get("error").is_some() || a.get("result") != Some(result) {
            return Err(format!("expected result {result}, got {actual}"));
        }
        return Ok(());
    }
    let ee = &e["error"];
    if a.get("result").is_some() {
        return Err(format!("expected an error, got {actual}"));
    }
    let ae = a
        .get("error")
        .and_then(Value::as_object)
        .ok_or_else(|| format!("no error object in {actual}"))?;
    for key in ae.keys() {
        if !["code", "message", "data"].contains(&key.as_str()) {
            return Err(format!("unexpected error member {key:?} in {actual}"));
        }
    }
    if ae.get("code").and_then(Value::as_i64) != ee["code"].as_i64() {
        return Err(format!("expected code {}, got {actual}", ee["code"]));
    }
    let want = ee["message"].as_str().unwrap_or("");
    match ae.get("message").and_then(Value::as_str) {
        Some(m) if m.starts_with(want) => Ok(()),
        _ => Err(format!(
            "expected a message starting with {want:?}, got {actual}"
        )),
    }
}

/// Panics unless `actual` matches the spec example `expected` (see [`rpc_match`]).
/// Arrays are batches: same length, elements matched in any order.
pub fn assert_rpc_eq(actual: &Value, expected: &Value) {
    match (actual, expected) {
        (Value::Array(a), Value::Array(e)) => {
            assert_eq!(
                a.len(),
                e.len(),
                "batch answer has {} elements, expected {}:\n  got      {actual}\n  expected {expected}",
                a.len(),
                e.len()
            );
            let mut used = vec![false; a.len()];
            for exp in e {
                let found = (0..a.len()).find(|&i| !used[i] && rpc_match(&a[i], exp).is_ok());
                match found {
                    Some(i) => used[i] = true,
                    None => panic!("no element of the batch answer matches {exp}:\n  got {actual}"),
                }
            }
        }
        (Value::Array(_), _) | (_, Value::Array(_)) => {
            panic!("batch/non-batch mismatch:\n  got      {actual}\n  expected {expected}")
        }
        _ => {
            if let Err(why) = rpc_match(actual, expected) {
                panic!("{why}\n  expected (spec) {expected}");
            }
        }
    }
}

/// Checks one stdout line and parses it.
pub fn parse_frame(line: &[u8]) -> Value {
    assert!(!line.is_empty(), "a blank line appeared on stdout");
    assert!(
        !contains(line, "\u{2028}".as_bytes()) && !contains(line, "\u{2029}".as_bytes()),
        "raw U+2028/U+2029 on stdout (must be escaped): {:?}",
        String::from_utf8_lossy(line)
    );
    serde_json::from_slice(line).unwrap_or_else(|e| {
        panic!(
            "stdout line is not JSON ({e}): {:?}",
            String::from_utf8_lossy(line)
        )
    })
}

/// Byte-substring search.
pub fn contains(hay: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || hay.windows(needle.len()).any(|w| w == needle)
}
