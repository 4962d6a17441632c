//! What every outbound line and every response must look like, whichever
//! target produced it.

use serde_json::Value;

/// Checks one outbound line (without its `\n`) and returns it parsed: not
/// blank, UTF-8, compact (no surrounding whitespace, no raw `\r`), U+2028 and
/// U+2029 escaped, and a JSON value.
pub fn check_line(line: &[u8]) -> Value {
    assert!(!line.is_empty(), "an outbound line is blank");
    let text = std::str::from_utf8(line)
        .unwrap_or_else(|e| panic!("an outbound line is not UTF-8 ({e}): {line:?}"));
    assert!(
        !text.contains(['\u{2028}', '\u{2029}']),
        "an outbound line carries a raw U+2028/U+2029: {text:?}"
    );
    assert!(
        !text.contains(['\n', '\r']) && text.trim() == text,
        "an outbound line is not compact: {text:?}"
    );
    serde_json::from_str(text)
        .unwrap_or_else(|e| panic!("an outbound line is not JSON ({e}): {text:?}"))
}

/// Splits written bytes into checked lines. Returns the parsed lines with
/// their start offsets, and the bytes after the last `\n` (a frame still
/// being written).
pub fn split_lines(bytes: &[u8]) -> (Vec<(usize, Value)>, &[u8]) {
    let mut lines = Vec::new();
    let mut start = 0;
    while let Some(pos) = bytes[start..].iter().position(|&b| b == b'\n') {
        lines.push((start, check_line(&bytes[start..start + pos])));
        start += pos + 1;
    }
    (lines, &bytes[start..])
}

/// True for a value JSON-RPC allows as an id: a string, a number or null.
pub fn is_id(value: &Value) -> bool {
    matches!(value, Value::String(_) | Value::Number(_) | Value::Null)
}

/// Checks that `v` is a JSON-RPC 2.0 response object: exactly `jsonrpc`
/// ("2.0"), `id` (string, number or null) and one of `result` or `error`,
/// the error being `{code: integer, message: non-empty string, data?}`.
/// Returns the error code, if it is an error.
pub fn check_response(v: &Value) -> Option<i64> {
    let obj = v
        .as_object()
        .unwrap_or_else(|| panic!("a response is not an object: {v}"));
    assert_eq!(obj.get("jsonrpc"), Some(&Value::from("2.0")), "in {v}");
    assert!(obj.get("id").is_some_and(is_id), "bad or missing id in {v}");
    let outcome: Vec<&str> = ["result", "error"]
        .into_iter()
        .filter(|k| obj.contains_key(*k))
        .collect();
    assert_eq!(obj.len(), 3, "a response has exactly three members: {v}");
    assert_eq!(outcome.len(), 1, "exactly one of result or error: {v}");
    let error = obj.get("error")?;
    let error = error
        .as_object()
        .unwrap_or_else(|| panic!("error is not an object: {v}"));
    assert!(
        error
            .keys()
            .all(|k| ["code", "message", "data"].contains(&k.as_str())),
        "an error object has only code, message and data: {v}"
    );
    let code = error
        .get("code")
        .and_then(Value::as_i64)
        .unwrap_or_else(|| panic!("error code is not an integer: {v}"));
    assert!(
        error
            .get("message")
            .and_then(Value::as_str)
            .is_some_and(|m| !m.is_empty()),
        "error message is not a non-empty string: {v}"
    );
    Some(code)
}
