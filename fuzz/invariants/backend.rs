//! `backend`: arbitrary bytes as a backend's stdout, line by line, through
//! the bridge's line classifier, its ready merge and the outbound queue's
//! raw streaming merge.
//!
//! Input: byte 0 picks the coalesce cap; the rest is split at `\n` into
//! lines. Every line must classify without panicking, the same with the
//! last streaming event's template as without, and:
//! * a streaming line names a span whose bytes, quoted, are a JSON string;
//! * a ready line names its type string (which decodes to `gateway.ready`),
//!   and the merged ready is JSON whose payload's `gateway` field is the
//!   gateway's own payload;
//! * an array names spans that are each a JSON object;
//! * junk is never queued.
//!
//! Everything queued is then written, and the written lines must be, in
//! order: every non-streaming line byte for byte, and for streaming lines,
//! lines equal to an input line outside its text span whose decoded text is
//! the concatenation of the texts of consecutive input lines with the same
//! bytes outside the span, merged exactly while the cap allows.

use std::ops::Range;
use std::time::{Duration, Instant};

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
        text: String,
        escaped_len: usize,
    },
}

fn decode(body: &[u8]) -> String {
    let quoted = [&b"\""[..], body, b"\""].concat();
    serde_json::from_slice::<String>(&quoted)
        .unwrap_or_else(|e| panic!("a text span is not a JSON string body ({e}): {body:?}"))
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
            Line::Junk(_) => {}
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
                let value: Value = serde_json::from_slice(&merged).unwrap_or_else(|e| {
                    panic!(
                        "merged ready is not JSON ({e}): {}",
                        String::from_utf8_lossy(&merged)
                    )
                });
                assert_eq!(value["params"]["payload"]["gateway"], ours, "{value}");
                expected.push(Expect::Plain(merged[..merged.len() - 1].to_vec()));
                out.push_frame(merged, now).expect("room");
            }
            Line::Array(elements) => {
                for (span, _) in &elements {
                    let element: Value = serde_json::from_slice(&line[span.clone()]).unwrap();
                    assert!(element.is_object());
                }
                expected.push(Expect::Plain(line.to_vec()));
                out.push_frame([line, b"\n"].concat(), now).expect("room");
            }
            Line::Response(_) | Line::Other => {
                let value: Value = serde_json::from_slice(line).expect("a forwarded line is JSON");
                assert!(value.is_object());
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
                    joined.push_str(t);
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
