//! `backend`: arbitrary bytes as a backend's stdout, line by line, through
//! the bridge's line classifier, its ready merge and the outbound queue's
//! raw streaming merge.
//!
//! Input: byte 0 picks the coalesce cap; the rest is split at `\n` into
//! lines. Every line must classify without panicking, the same with the
//! last streaming event's template as without, and:
//! * a streaming line names a span whose bytes, quoted, are a JSON string
//!   (texts are compared as UTF-16 units: a span may hold half a pair);
//! * a ready line names its type string (which decodes to `gateway.ready`),
//!   and the merged ready is JSON whose payload's `gateway` field is the
//!   gateway's own payload;
//! * an array names spans that are each a JSON object;
//! * junk is never queued, and is exactly what the bridge must not forward:
//!   not UTF-8, not JSON, or not an object or a non-empty array of objects,
//!   where "JSON" follows the lone-surrogate rule (docs/protocol.md): a `\u`
//!   escape of half a UTF-16 pair is JSON and passes as it came.
//!
//! Everything queued is then written, and the written lines must be, in
//! order: every non-streaming line byte for byte, and for streaming lines,
//! lines equal to an input line outside its text span whose decoded text is
//! the concatenation of the texts of consecutive input lines with the same
//! bytes outside the span, merged exactly while the cap allows.

use std::ops::Range;
use std::time::{Duration, Instant};

use super::wire::{utf16_units, without_lone_surrogates};
use serde::de::IgnoredAny;
use serde_json::value::RawValue;
use serde_json::{json, Value};
use tui_gateway::engine::outbound::{Limits, Outbound};
use tui_gateway::services::backend::line::{
    classify, classify_with, merged_ready, Line, StreamTemplate, StreamTypes,
};

/// What the queue must write for one input line.
enum Expect {
    Plain(Vec<u8>),
    Stream {
        prefix: Vec<u8>,
        suffix: Vec<u8>,
        text: Vec<u16>,
        escaped_len: usize,
    },
}

/// A text span's UTF-16 units, once the span is shown to be the body of a
/// JSON string (lone surrogates allowed: the lone-surrogate rule).
fn decode(body: &[u8]) -> Vec<u16> {
    let quoted = [&b"\""[..], body, b"\""].concat();
    if let Err(e) = serde_json::from_slice::<String>(&without_lone_surrogates(&quoted)) {
        panic!("a text span is not a JSON string body ({e}): {body:?}");
    }
    utf16_units(body)
}

/// A forwarded line or element parsed as the lone-surrogate rule reads it:
/// `None` when it is JSON nested deeper than serde_json builds a `Value`
/// for (the bridge forwards backend lines of any depth).
fn parse(bytes: &[u8], what: &str) -> Option<Value> {
    let text = without_lone_surrogates(bytes);
    assert!(
        is_json(bytes),
        "{what} is not JSON: {}",
        String::from_utf8_lossy(bytes)
    );
    match serde_json::from_slice(&text) {
        Ok(value) => Some(value),
        Err(e) if e.to_string().starts_with("recursion limit exceeded") => None,
        Err(e) => panic!(
            "{what} is not JSON ({e}): {}",
            String::from_utf8_lossy(bytes)
        ),
    }
}

/// UTF-8 and JSON by the lone-surrogate rule, at any depth.
fn is_json(bytes: &[u8]) -> bool {
    std::str::from_utf8(bytes).is_ok()
        && serde_json::from_slice::<IgnoredAny>(&without_lone_surrogates(bytes)).is_ok()
}

/// What the bridge forwards: JSON (by the rule) that is an object or a
/// non-empty array of objects.
fn forwardable(line: &[u8]) -> bool {
    let starts_object = |b: &[u8]| {
        b.iter()
            .find(|b| !matches!(b, b' ' | b'\t' | b'\r' | b'\n'))
            == Some(&b'{')
    };
    is_json(line)
        && (starts_object(line)
            || serde_json::from_slice::<Vec<&RawValue>>(&without_lone_surrogates(line)).is_ok_and(
                |items| {
                    !items.is_empty() && items.iter().all(|e| starts_object(e.get().as_bytes()))
                },
            ))
}

pub fn check(data: &[u8]) {
    let Some((&cap_byte, rest)) = data.split_first() else {
        return;
    };
    let cap = 1 + usize::from(cap_byte) * 64;
    let now = Instant::now();
    let mut out = Outbound::new(Limits {
        soft_bytes: usize::MAX / 4,
        soft_duration: Duration::from_secs(3600),
        hard_bytes: usize::MAX / 2,
        stall_timeout: Duration::from_secs(3600),
        coalesce_cap: cap,
        high_water: usize::MAX / 8,
        low_water: 0,
    });
    let ours = json!({"version": "0.1.0", "methods": ["gateway.ping"]});
    let ours_bytes = serde_json::to_vec(&ours).unwrap();
    let streams = StreamTypes::new(vec!["tool.progress".into()]);
    let mut expected = Vec::new();
    let mut template = StreamTemplate::default();
    for line in rest.split(|&b| b == b'\n') {
        // The template shortcut must agree with a full classification.
        let class = classify_with(line, &streams, &mut template);
        assert_eq!(
            class,
            classify(line, &streams),
            "{:?}",
            String::from_utf8_lossy(line)
        );
        match class {
            Line::Junk(why) => {
                // Junk is exactly what the rule does not forward: not UTF-8,
                // not JSON (lone surrogates allowed), or not an object or a
                // non-empty array of objects.
                assert!(
                    !forwardable(line),
                    "a forwardable line was called junk ({why}): {:?}",
                    String::from_utf8_lossy(line)
                );
            }
            Line::Stream(span) => {
                let Range { start, end } = span;
                assert!(start <= end && end <= line.len());
                let text = decode(&line[start..end]);
                let mut frame = line.to_vec();
                frame.push(b'\n');
                expected.push(Expect::Stream {
                    prefix: line[..start].to_vec(),
                    suffix: frame[end..].to_vec(),
                    text,
                    escaped_len: end - start,
                });
                out.push_stream_frame(frame, span, now).expect("room");
            }
            Line::Ready { type_span, payload } => {
                assert_eq!(
                    serde_json::from_slice::<String>(&line[type_span]).unwrap(),
                    "gateway.ready"
                );
                let merged = merged_ready(line, payload, &ours);
                assert!(merged.ends_with(b"\n"));
                match parse(&merged, "the merged ready") {
                    Some(value) => {
                        assert_eq!(value["params"]["payload"]["gateway"], ours, "{value}");
                        assert_eq!(value["params"]["payload"]["backend_ready"], true, "{value}");
                    }
                    // Too deep to build: the payload is the backend's, with ours added.
                    None => assert!(merged
                        .windows(ours_bytes.len())
                        .any(|w| w == ours_bytes.as_slice())),
                }
                expected.push(Expect::Plain(merged[..merged.len() - 1].to_vec()));
                out.push_frame(merged, now).expect("room");
            }
            Line::Array(elements) => {
                for (span, _) in &elements {
                    let element = &line[span.clone()];
                    assert!(is_json(element) && element.first() == Some(&b'{'));
                }
                expected.push(Expect::Plain(line.to_vec()));
                out.push_frame([line, b"\n"].concat(), now).expect("room");
            }
            Line::Response(_) | Line::Other => {
                assert!(forwardable(line), "{:?}", String::from_utf8_lossy(line));
                if let Some(value) = parse(line, "a forwarded line") {
                    assert!(value.is_object());
                }
                expected.push(Expect::Plain(line.to_vec()));
                out.push_frame([line, b"\n"].concat(), now).expect("room");
            }
        }
    }
    let mut written = Vec::new();
    while !out.is_empty() {
        out.write_with(now, |slices| -> Result<usize, ()> {
            let n = slices.iter().map(|s| s.len()).sum();
            slices.iter().for_each(|s| written.extend_from_slice(s));
            Ok(n)
        })
        .unwrap();
    }
    let lines: Vec<&[u8]> = written
        .strip_suffix(b"\n")
        .map(|w| w.split(|&b| b == b'\n').collect())
        .unwrap_or_default();
    let mut items = expected.iter().peekable();
    for line in lines {
        match items.next().expect("more lines written than queued") {
            Expect::Plain(bytes) => assert_eq!(line, &bytes[..]),
            Expect::Stream {
                prefix,
                suffix,
                text,
                escaped_len,
            } => {
                let suffix_core = &suffix[..suffix.len() - 1];
                assert!(line.starts_with(prefix) && line.ends_with(suffix_core));
                let body = &line[prefix.len()..line.len() - suffix_core.len()];
                let got = decode(body);
                // Nothing is written until every line is queued, so every
                // neighbour equal outside its text merges while the cap allows.
                let mut joined = text.clone();
                let mut escaped = *escaped_len;
                while let Some(Expect::Stream {
                    prefix: p,
                    suffix: s,
                    text: t,
                    escaped_len: e,
                }) = items.peek()
                {
                    if p != prefix || s != suffix || escaped + e > cap {
                        break;
                    }
                    joined.extend_from_slice(t);
                    escaped += e;
                    items.next();
                }
                assert_eq!(got, joined, "merged text");
                assert_eq!(body.len(), escaped);
                assert!(escaped <= cap.max(*escaped_len), "merged past the cap");
            }
        }
    }
    assert!(items.next().is_none(), "a queued line was not written");
}
