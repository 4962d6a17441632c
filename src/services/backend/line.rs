//! What one line of the backend's stdout is, read from its envelope only:
//! the bytes are forwarded as they are, so nothing here builds a value tree.

use std::ops::Range;

use serde_json::{json, Value};

use crate::engine::wire::{
    elements, event_frame, head, json_str, members, scan_line, write_json, Head, Id, Scanned,
    ShortName, Spans, EVENT_METHOD,
};

/// The event type whose first arrival the gateway's ready waits for.
pub const READY_EVENT: &str = "gateway.ready";
/// The type a backend ready is renamed to once the gateway's ready went out.
pub const BACKEND_READY_EVENT: &str = "backend.ready";

/// The event types that coalesce: every `*.delta`, plus `--stream-event`s.
#[derive(Debug, Clone, Default)]
pub struct StreamTypes {
    extra: Vec<String>,
}

impl StreamTypes {
    /// `*.delta` and these.
    pub fn new(extra: Vec<String>) -> StreamTypes {
        StreamTypes { extra }
    }

    /// True for a streaming type.
    pub fn contains(&self, event_type: &str) -> bool {
        event_type.ends_with(".delta") || self.extra.iter().any(|t| t == event_type)
    }
}

/// One backend line, classified.
#[derive(Debug, PartialEq)]
pub enum Line {
    /// A response to a request the client sent.
    Response(Id),
    /// A `gateway.ready` event: where its `type` string and its `payload`
    /// sit in the line.
    Ready {
        /// The `"gateway.ready"` string, quotes included.
        type_span: Range<usize>,
        /// The payload value, when it is an object.
        payload: Option<Range<usize>>,
    },
    /// A streaming event: the contents of its text string.
    Stream(Range<usize>),
    /// Anything else that is a JSON object: an event, a notification, a
    /// request to the client.
    Other,
    /// A JSON array (a batch answer): each element's span, and its id when
    /// it is a response.
    Array(Vec<(Range<usize>, Option<Id>)>),
    /// Not one JSON object or array: never forwarded.
    Junk(&'static str),
}

/// The bytes around the text of the last streaming event: a line that is
/// these bytes around valid JSON string contents is the same event with
/// another text, so it is classified without being parsed. This is the
/// common case of a flood (a backend streaming one token per line).
#[derive(Debug, Clone, Default)]
pub struct StreamTemplate {
    prefix: Vec<u8>,
    suffix: Vec<u8>,
}

impl StreamTemplate {
    /// The text span of `line` when it fits the template.
    fn fit(&self, line: &[u8]) -> Option<Range<usize>> {
        let (p, s) = (self.prefix.len(), self.suffix.len());
        if p == 0
            || line.len() < p + s
            || !line.starts_with(&self.prefix)
            || !line.ends_with(&self.suffix)
        {
            return None;
        }
        let body = &line[p..line.len() - s];
        (is_string_body(body) && std::str::from_utf8(body).is_ok()).then_some(p..line.len() - s)
    }
}

/// True when `body` is the contents of a JSON string: no quote or control
/// byte outside an escape, every escape complete.
fn is_string_body(body: &[u8]) -> bool {
    let mut i = 0;
    while i < body.len() {
        match body[i] {
            b'"' | 0x00..=0x1f => return false,
            b'\\' => match body.get(i + 1) {
                Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => i += 2,
                Some(b'u') => {
                    let hex = body.get(i + 2..i + 6);
                    if !hex.is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit)) {
                        return false;
                    }
                    i += 6;
                }
                _ => return false,
            },
            _ => i += 1,
        }
    }
    true
}

/// [`classify`], trying the last streaming event's template first and
/// remembering the template of each streaming line classified in full.
pub fn classify_with(line: &[u8], streams: &StreamTypes, template: &mut StreamTemplate) -> Line {
    if let Some(span) = template.fit(line) {
        return Line::Stream(span);
    }
    let class = classify(line, streams);
    if let Line::Stream(span) = &class {
        template.prefix.clear();
        template.prefix.extend_from_slice(&line[..span.start]);
        template.suffix.clear();
        template.suffix.extend_from_slice(&line[span.end..]);
    }
    class
}

/// Classifies one line (without its `\n`): one [`scan_line`] checks it
/// and finds its envelope; an event's `params` (and its `payload`, a small
/// object) are walked again for the few names an event is read by.
pub fn classify(line: &[u8], streams: &StreamTypes) -> Line {
    let Ok(text) = std::str::from_utf8(line) else {
        return Line::Junk("not UTF-8");
    };
    match scan_line(text) {
        None => Line::Junk("not JSON"),
        Some(Scanned::Scalar) => Line::Junk("JSON, but not an object"),
        Some(Scanned::Array) => classify_array(text),
        Some(Scanned::Object(spans)) => event_line(text, &spans, streams).unwrap_or_else(|| {
            let id = spans.id.and_then(|m| Id::from_json(&text[m.span()]));
            match id {
                Some(id)
                    if spans.method.is_none()
                        && (spans.result.is_some() || spans.error.is_some()) =>
                {
                    Line::Response(id)
                }
                _ => Line::Other,
            }
        }),
    }
}

/// An event line's class: `None` for anything that is not an event of the
/// gateway's envelope (`method` "event", no id, `params.type` a string).
fn event_line(line: &str, spans: &Spans, streams: &StreamTypes) -> Option<Line> {
    if spans.id.is_some() || json_str(&line[spans.method.as_ref()?.span()])? != EVENT_METHOD {
        return None;
    }
    let is_object = |span: &Range<usize>| line.as_bytes()[span.start] == b'{';
    let params = spans.params.as_ref().map(|m| m.span()).filter(is_object)?;
    let params = Fields::of(line, params);
    let type_span = params.event_type.clone()?;
    let event_type = json_str(&line[type_span.clone()])?;
    let payload = params.payload.clone().filter(is_object);
    if event_type == READY_EVENT {
        return Some(Line::Ready { type_span, payload });
    }
    if !streams.contains(&event_type) {
        return Some(Line::Other);
    }
    // The text is `payload.text` (or `payload.data`), or `params.text` for
    // a backend that puts it beside the type.
    let holder = match payload {
        Some(p) => Fields::of(line, p),
        None => params,
    };
    let text = holder
        .text
        .or(holder.data)
        .filter(|span| line.as_bytes()[span.start] == b'"');
    Some(match text {
        Some(span) => Line::Stream(span.start + 1..span.end - 1),
        None => Line::Other,
    })
}

/// The members of `params` (or of its `payload`) that matter for an
/// event, as spans of the line; a repeated name keeps its last value.
#[derive(Default, Clone)]
struct Fields {
    event_type: Option<Range<usize>>,
    text: Option<Range<usize>>,
    data: Option<Range<usize>>,
    payload: Option<Range<usize>>,
}

impl Fields {
    fn of(line: &str, object: Range<usize>) -> Fields {
        let mut fields = Fields::default();
        for (name, value) in members(line, object) {
            let slot = match name.as_ref().map(ShortName::as_bytes) {
                Some(b"type") => &mut fields.event_type,
                Some(b"text") => &mut fields.text,
                Some(b"data") => &mut fields.data,
                Some(b"payload") => &mut fields.payload,
                _ => continue,
            };
            *slot = Some(value);
        }
        fields
    }
}

fn classify_array(text: &str) -> Line {
    let start = text.len() - text.trim_start_matches([' ', '\t', '\n', '\r']).len();
    let spans: Vec<Range<usize>> = elements(text, start..text.len()).collect();
    if spans.is_empty() {
        return Line::Junk("an empty array");
    }
    if !spans.iter().all(|e| text.as_bytes()[e.start] == b'{') {
        // Only a batch of messages is a protocol array.
        return Line::Junk("JSON, but not an object");
    }
    Line::Array(
        spans
            .into_iter()
            .map(|span| {
                let id = match head(&text[span.clone()]) {
                    Ok(Head::Response { id, .. }) => Some(id),
                    _ => None,
                };
                (span, id)
            })
            .collect(),
    )
}

/// The gateway's ready built from the backend's: its bytes, with two fields
/// added at the end of its payload, `gateway` (ours) and `backend_ready:
/// true` (or a payload holding only those), so `payload.backend_ready` says
/// whether the backend's ready came whichever way the ready went out.
pub fn merged_ready(line: &[u8], payload: Option<Range<usize>>, ours: &Value) -> Vec<u8> {
    let mut gateway = Vec::new();
    write_json(&mut gateway, ours);
    let mut frame = Vec::with_capacity(line.len() + gateway.len() + 16);
    match payload {
        Some(span) => {
            let object = &line[span.clone()];
            let close = object.iter().rposition(|&b| b == b'}').expect("an object");
            let inner_empty = object[1..close].iter().all(u8::is_ascii_whitespace);
            frame.extend_from_slice(&line[..span.start + close]);
            if !inner_empty {
                frame.push(b',');
            }
            frame.extend_from_slice(br#""gateway":"#);
            frame.extend_from_slice(&gateway);
            frame.extend_from_slice(br#","backend_ready":true"#);
            frame.extend_from_slice(&line[span.start + close..]);
        }
        None => {
            frame = event_frame(
                "gateway.ready",
                &json!({ "gateway": ours, "backend_ready": true }),
            );
            frame.pop();
        }
    }
    frame.push(b'\n');
    frame
}

#[cfg(test)]
mod tests {
    use super::*;

    fn streams() -> StreamTypes {
        StreamTypes::new(vec!["tool.progress".into()])
    }

    #[test]
    fn lines_are_classified_from_their_envelope() {
        let s = streams();
        assert_eq!(
            classify(br#"{"jsonrpc":"2.0","id":1.50,"result":{"b":1,"a":2}}"#, &s),
            Line::Response(Id::number("1.50"))
        );
        assert_eq!(classify(b"hello world", &s), Line::Junk("not JSON"));
        assert_eq!(classify(b"42", &s), Line::Junk("JSON, but not an object"));
        assert_eq!(classify(b"\xff{}", &s), Line::Junk("not UTF-8"));
        assert_eq!(
            classify(br#"{"jsonrpc":"2.0","method":"x"}"#, &s),
            Line::Other
        );
        assert_eq!(classify(br#"{"not":"rpc"}"#, &s), Line::Other);
    }

    #[test]
    fn a_delta_names_the_contents_of_its_text_string() {
        let s = streams();
        let line = br#"{"jsonrpc":"2.0","method":"event","params":{"type":"message.delta","session_id":"s1","payload":{"text":"h\"i"}}}"#;
        let Line::Stream(span) = classify(line, &s) else {
            panic!()
        };
        assert_eq!(&line[span], br#"h\"i"#);
        let line =
            br#"{"jsonrpc":"2.0","method":"event","params":{"type":"tool.progress","text":"x"}}"#;
        let Line::Stream(span) = classify(line, &s) else {
            panic!()
        };
        assert_eq!(&line[span], b"x");
        // Not a declared type, or no string text: forwarded as it is.
        let line = br#"{"jsonrpc":"2.0","method":"event","params":{"type":"message.complete","payload":{"text":"x"}}}"#;
        assert_eq!(classify(line, &s), Line::Other);
        let line = br#"{"jsonrpc":"2.0","method":"event","params":{"type":"a.delta","payload":{"text":5}}}"#;
        assert_eq!(classify(line, &s), Line::Other);
    }

    /// The lone-surrogate rule (docs/protocol.md): a backend line is JSON
    /// with lone surrogates anywhere, and is classified as if they were text.
    #[test]
    fn lone_surrogates_in_a_backend_line_are_forwarded_as_they_came() {
        let s = streams();
        for (line, want) in [
            (
                &br#"{"\udcff.txt":1,"jsonrpc":"2.0","method":"x"}"#[..],
                Line::Other,
            ),
            (
                br#"{"jsonrpc":"2.0","id":"\ud800","result":1}"#,
                Line::Other,
            ),
            (
                br#"{"jsonrpc":"2.0","id":7,"result":{"name":"\udcff"}}"#,
                Line::Response(Id::number("7")),
            ),
            (
                br#"{"jsonrpc":"2.0","method":"event","params":{"type":"\udead"}}"#,
                Line::Other,
            ),
            (
                br#"{"jsonrpc":"2.0","method":"event","params":"\ud800"}"#,
                Line::Other,
            ),
            (
                br#"{"jsonrpc":"2.0","method":"x","params":["\ud800"]}"#,
                Line::Other,
            ),
            (
                br#"{"jsonrpc":"2.0","method":"ev\ud800","params":{"type":"a.delta","text":"x"}}"#,
                Line::Other,
            ),
        ] {
            assert_eq!(
                classify(line, &s),
                want,
                "{}",
                String::from_utf8_lossy(line)
            );
        }
        let line = br#"{"jsonrpc":"2.0","method":"event","params":{"type":"a.delta","payload":{"\ud800":0,"text":"\ud83d"}}}"#;
        let Line::Stream(span) = classify(line, &s) else {
            panic!()
        };
        assert_eq!(&line[span], br#"\ud83d"#);
        assert!(matches!(
            classify(br#"[{"a\ud800":1}]"#, &s),
            Line::Array(_)
        ));
        // Names are read as bytes, yet a raw control byte in one is no JSON.
        for junk in [
            &b"{\"a\x01\":1,\"method\":\"x\"}"[..],
            b"{\"\\u0041\t\":1,\"method\":\"x\"}",
            b"{\"method\":\"x\",\"params\":{\"\\u0041\t\":1}}",
        ] {
            assert_eq!(classify(junk, &s), Line::Junk("not JSON"), "{junk:?}");
        }
    }

    #[test]
    fn a_ready_event_names_its_type_and_payload() {
        let line = br#"{"jsonrpc":"2.0","method":"event","params":{"type":"gateway.ready","payload":{"skin":1}}}"#;
        let Line::Ready { type_span, payload } = classify(line, &streams()) else {
            panic!()
        };
        assert_eq!(&line[type_span], br#""gateway.ready""#);
        assert_eq!(&line[payload.unwrap()], br#"{"skin":1}"#);
    }

    #[test]
    fn an_array_lists_its_responses() {
        let line = br#" [{"jsonrpc":"2.0","id":"a","result":1}, {"jsonrpc":"2.0","method":"m"}]"#;
        let Line::Array(elements) = classify(line, &streams()) else {
            panic!()
        };
        assert_eq!(elements.len(), 2);
        assert_eq!(elements[0].1, Some(Id::Str("a".into())));
        assert_eq!(
            &line[elements[1].0.clone()],
            br#"{"jsonrpc":"2.0","method":"m"}"#
        );
        assert_eq!(classify(b"[]", &streams()), Line::Junk("an empty array"));
        assert_eq!(
            classify(b"[1,2,3]", &streams()),
            Line::Junk("JSON, but not an object")
        );
    }

    #[test]
    fn a_line_that_fits_the_last_deltas_template_is_that_delta_with_another_text() {
        let s = streams();
        let mut t = StreamTemplate::default();
        let a = br#"{"jsonrpc":"2.0","method":"event","params":{"type":"message.delta","session_id":"s1","payload":{"text":"a"}}}"#;
        let Line::Stream(first) = classify_with(a, &s, &mut t) else {
            panic!()
        };
        for text in [&br#"b\n\u00e9\"x"#[..], b"", "é".as_bytes()] {
            let line = [&a[..first.start], text, &a[first.end..]].concat();
            let fast = classify_with(&line, &s, &mut t);
            assert_eq!(
                fast,
                classify(&line, &s),
                "{}",
                String::from_utf8_lossy(&line)
            );
        }
        // Not a string body: parsed in full, and never a stream.
        for text in [&b"a\"b"[..], b"\\q", b"\\u12", b"\x01", b"\xff"] {
            let line = [&a[..first.start], text, &a[first.end..]].concat();
            assert!(!matches!(classify_with(&line, &s, &mut t), Line::Stream(_)));
        }
    }
}
