//! `scan`: the one-pass scanner (`src/engine/wire/scan.rs`) against
//! serde_json on every input.
//!
//! Asserted, for any bytes:
//! * read as text (`Surrogates::Refuse`), the scanner accepts exactly what
//!   `serde_json::from_str::<Value>` accepts, and exactly what the
//!   gateway's check before the scanner accepted (the reference);
//! * forwarded (`Surrogates::Allow`), it accepts exactly what the reference
//!   for a forwarded frame accepts;
//! * a backend line (`scan_line`) is accepted exactly when serde_json can
//!   skip it as one value (`IgnoredAny`);
//! * an object's envelope spans are the ones serde_json's envelope parse
//!   finds (the last of a repeated field, escaped names decoded);
//! * an array's elements, walked by the scanner, are serde_json's; an
//!   object's members are each one value, the last followed by its brace.
//!
//! The deliberate differences from a plain `serde_json::Value` parse, each
//! on purpose and each checked here against its own reference:
//! * forwarded frames and backend lines allow a lone surrogate (`\ud800`)
//!   in strings the gateway does not read (the lone-surrogate rule,
//!   docs/protocol.md), as serde_json's skipping does;
//! * backend lines have no depth limit (serde_json's skipping has none;
//!   the 127-level bound protects only the gateway's own parses);
//! * numbers are kept as text, so `1e400` is valid (as with serde_json's
//!   `arbitrary_precision`, which the gateway builds with).

use serde::de::IgnoredAny;
use serde_json::value::RawValue;
use serde_json::Value;
use tui_gateway::engine::wire::{
    elements, members, reference_accepts, reference_spans, scan, scan_line, Scanned, Surrogates,
};

pub fn check(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let refuse = scan(text, Surrogates::Refuse);
    let value_ok = serde_json::from_str::<Value>(text).is_ok();
    assert_eq!(
        refuse.is_some(),
        value_ok,
        "as text, against serde_json::Value: {text:?}"
    );
    assert_eq!(
        refuse.is_some(),
        reference_accepts(text, Surrogates::Refuse),
        "as text, against the reference: {text:?}"
    );
    let allow = scan(text, Surrogates::Allow);
    assert_eq!(
        allow.is_some(),
        reference_accepts(text, Surrogates::Allow),
        "forwarded, against the reference: {text:?}"
    );
    let line = scan_line(text);
    assert_eq!(
        line.is_some(),
        serde_json::from_str::<IgnoredAny>(text).is_ok(),
        "a backend line, against serde_json's skipping: {text:?}"
    );
    if refuse.is_some() {
        assert_eq!(refuse, allow, "what is text is also forwardable: {text:?}");
    }
    if allow.is_some() {
        assert_eq!(allow, line, "what is forwardable is also a line: {text:?}");
    }
    match line {
        Some(Scanned::Object(spans)) => {
            assert_eq!(
                Some(spans),
                reference_spans(text),
                "envelope spans: {text:?}"
            );
            // Every member's value is one JSON value, and after the last
            // one comes only the closing brace.
            let start = text.len() - text.trim_start_matches([' ', '\t', '\n', '\r']).len();
            let mut end = start + 1;
            for (_, value) in members(text, start..text.len()) {
                assert!(
                    serde_json::from_str::<IgnoredAny>(&text[value.clone()]).is_ok(),
                    "a member's value: {text:?}"
                );
                end = value.end;
            }
            let rest = text[end..].trim_start_matches([' ', '\t', '\n', '\r']);
            assert!(rest.starts_with('}'), "members end at the brace: {text:?}");
        }
        Some(Scanned::Array) => {
            let start = text.len() - text.trim_start_matches([' ', '\t', '\n', '\r']).len();
            let ours: Vec<&str> = elements(text, start..text.len())
                .map(|r| &text[r])
                .collect();
            let theirs: Vec<&str> = serde_json::from_str::<Vec<&RawValue>>(text)
                .expect("an array serde_json skips is one it reads")
                .into_iter()
                .map(RawValue::get)
                .collect();
            assert_eq!(ours, theirs, "array elements: {text:?}");
        }
        Some(Scanned::Scalar) | None => {}
    }
}
