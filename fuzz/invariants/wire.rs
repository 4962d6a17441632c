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

/// The lone-surrogate rule's oracle (docs/protocol.md): where the gateway
/// forwards a string unread, a `\u` escape of half a UTF-16 pair passes as
/// it came, so "is this JSON" means serde_json's verdict on the text with
/// every such escape replaced by `\ufffd`. Strings are tracked, so `\\ud800`
/// (an escaped backslash) is left alone; a proper pair is kept.
pub fn without_lone_surrogates(bytes: &[u8]) -> std::borrow::Cow<'_, [u8]> {
    let hex = |at: usize| -> Option<u16> {
        let digits = std::str::from_utf8(bytes.get(at..at + 4)?).ok()?;
        u16::from_str_radix(digits, 16)
            .ok()
            .filter(|_| digits.bytes().all(|b| b.is_ascii_hexdigit()))
    };
    let mut out: Option<Vec<u8>> = None;
    let (mut i, mut in_string) = (0, false);
    while i < bytes.len() {
        let b = bytes[i];
        let mut step = 1;
        let mut lone = false;
        if !in_string {
            in_string = b == b'"';
        } else if b == b'"' {
            in_string = false;
        } else if b == b'\\' {
            step = 2;
            if bytes.get(i + 1) == Some(&b'u') {
                if let Some(unit) = hex(i + 2) {
                    step = 6;
                    let low_follows = bytes.get(i + 6..i + 8) == Some(b"\\u")
                        && hex(i + 8).is_some_and(|l| (0xdc00..0xe000).contains(&l));
                    match unit {
                        0xd800..=0xdbff if low_follows => step = 12,
                        0xd800..=0xdfff => lone = true,
                        _ => {}
                    }
                }
            }
        }
        let end = (i + step).min(bytes.len());
        if lone {
            out.get_or_insert_with(|| bytes[..i].to_vec())
                .extend_from_slice(b"\\ufffd");
        } else if let Some(out) = out.as_mut() {
            out.extend_from_slice(&bytes[i..end]);
        }
        i = end;
    }
    match out {
        Some(out) => std::borrow::Cow::Owned(out),
        None => std::borrow::Cow::Borrowed(bytes),
    }
}

/// The UTF-16 code units a JSON string body (the bytes between its quotes,
/// UTF-8 with complete escapes) stands for. Units, not a `String`: a body may
/// hold half a pair, and two merged bodies may complete one.
pub fn utf16_units(body: &[u8]) -> Vec<u16> {
    let text = std::str::from_utf8(body)
        .unwrap_or_else(|e| panic!("a string body is not UTF-8 ({e}): {body:?}"));
    let mut units = Vec::with_capacity(body.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            let mut buf = [0u16; 2];
            units.extend_from_slice(c.encode_utf16(&mut buf));
            continue;
        }
        let unit = match chars.next() {
            Some('"') => 0x22,
            Some('\\') => 0x5c,
            Some('/') => 0x2f,
            Some('b') => 0x08,
            Some('f') => 0x0c,
            Some('n') => 0x0a,
            Some('r') => 0x0d,
            Some('t') => 0x09,
            Some('u') => {
                let digits: String = chars.by_ref().take(4).collect();
                u16::from_str_radix(&digits, 16)
                    .unwrap_or_else(|_| panic!("a bad \\u escape in a string body: {text:?}"))
            }
            other => panic!("a bad escape {other:?} in a string body: {text:?}"),
        };
        units.push(unit);
    }
    units
}
