//! serde_json's verdicts on a frame, as the gateway gave them before the
//! scanner: the reference the `scan` fuzz target holds the scanner to, and
//! the words of every parse error (the scanner only says "no"; these say
//! why, so an error's message is what it always was). Also: how many values
//! a text holds, and the nesting depth.

use std::fmt;

use serde::de::{Deserializer, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use serde_json::value::RawValue;

use super::*;

/// Deepest nesting of arrays and objects a frame may have: serde_json's own
/// recursion limit (127 levels parse, 128 do not), checked over the whole
/// frame before anything is read from it raw.
pub const MAX_DEPTH: usize = 127;

/// What one pass over JSON text finds outside what serde_json's skipping
/// checks: how deep arrays and objects nest, and whether a string holds a
/// raw control byte (JSON allows them only escaped; a member name read as
/// bytes is not checked for them by serde_json).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shape {
    /// The deepest nesting of arrays and objects.
    pub depth: usize,
    /// A byte below 0x20 inside a string.
    pub raw_control: bool,
}

/// [`Shape`] of JSON text, in one pass.
pub fn shape(text: &str) -> Shape {
    let (mut depth, mut deepest, mut raw_control) = (0usize, 0usize, false);
    walk(
        text,
        |b| match b {
            b'[' | b'{' => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        },
        |b| raw_control |= b < 0x20,
    );
    Shape {
        depth: deepest,
        raw_control,
    }
}

/// Calls `f` with every byte of JSON text that is outside a string.
#[cfg(any(test, feature = "testing"))]
pub(super) fn for_each_structural(text: &str, f: impl FnMut(u8)) {
    walk(text, f, |_| {});
}

/// The one string-aware walk over JSON text: `outside` gets every byte
/// outside a string, `inside` every byte of a string's contents that is not
/// part of an escape (nor a quote).
pub(super) fn walk(text: &str, mut outside: impl FnMut(u8), mut inside: impl FnMut(u8)) {
    let (mut in_string, mut escaped) = (false, false);
    for &b in text.as_bytes() {
        if in_string {
            match b {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => inside(b),
            }
        } else if b == b'"' {
            in_string = true;
        } else {
            outside(b);
        }
    }
}

/// JSON's four whitespace characters.
pub(super) const JSON_WS: &[char] = &[' ', '\t', '\n', '\r'];

/// Why [`scan`] refused a frame's text, in serde_json's words: the checks
/// the gateway made before the scanner, in their order. `surrogates` is the
/// mode the scan ran in. A text the reference finds nothing wrong with is a
/// scanner bug (the `scan` fuzz target looks for one); it is still refused,
/// as a parse error saying so.
pub(super) fn explain(text: &str, surrogates: Surrogates) -> Reject {
    let found = match surrogates {
        Surrogates::Refuse => serde_json::from_str::<Checked>(text)
            .err()
            .map(|e| Reject::null(RpcError::parse(e))),
        Surrogates::Allow => explain_forwarded(text),
    };
    found.unwrap_or_else(|| {
        debug_assert!(
            false,
            "the scanner refused what serde_json accepts: {text:?}"
        );
        Reject::null(RpcError::parse("invalid JSON"))
    })
}

/// The reference checks of an object or array frame to be forwarded.
fn explain_forwarded(text: &str) -> Option<Reject> {
    let Shape { depth, raw_control } = shape(text);
    if depth > MAX_DEPTH {
        return Some(Reject::null(RpcError::parse(format_args!(
            "recursion limit exceeded: more than {MAX_DEPTH} nested arrays and objects"
        ))));
    }
    if raw_control {
        // The envelope parse reads member names as bytes, which lets a raw
        // control byte through; every other string it checks itself.
        return Some(Reject::null(RpcError::parse(
            "a control character (below U+0020) inside a string must be escaped",
        )));
    }
    if text.trim_start_matches(JSON_WS).starts_with('{') {
        return serde_json::from_str::<Envelope<'_>>(text)
            .err()
            .map(|e| Reject::null(RpcError::parse(e)));
    }
    // An array: skipping checks syntax, escapes and control bytes, and
    // lets a lone surrogate through.
    serde_json::from_str::<serde::de::IgnoredAny>(text)
        .err()
        .map(|e| Reject::null(RpcError::parse(e)))
}

/// The reference verdict on a frame: `true` when the gateway before the
/// scanner accepted it as JSON in this mode (the `scan` fuzz target
/// compares [`scan`] with this).
#[cfg(any(test, feature = "testing"))]
pub fn reference_accepts(text: &str, surrogates: Surrogates) -> bool {
    match surrogates {
        Surrogates::Refuse => serde_json::from_str::<Checked>(text).is_ok(),
        Surrogates::Allow => explain_forwarded(text).is_none(),
    }
}

/// Any JSON value, visited in full and kept nowhere. Unlike `IgnoredAny`
/// (which skips strings without checking their escapes and has no depth
/// limit), this goes through `deserialize_any`, so serde_json validates
/// every escape and applies its recursion limit ([`MAX_DEPTH`]).
pub(super) struct Checked;

impl<'de> Deserialize<'de> for Checked {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Checked, D::Error> {
        d.deserialize_any(CheckedVisitor)
    }
}

pub(super) struct CheckedVisitor;

impl<'de> Visitor<'de> for CheckedVisitor {
    type Value = Checked;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E>(self, _: bool) -> Result<Checked, E> {
        Ok(Checked)
    }
    fn visit_i64<E>(self, _: i64) -> Result<Checked, E> {
        Ok(Checked)
    }
    fn visit_u64<E>(self, _: u64) -> Result<Checked, E> {
        Ok(Checked)
    }
    fn visit_f64<E>(self, _: f64) -> Result<Checked, E> {
        Ok(Checked)
    }
    fn visit_str<E>(self, _: &str) -> Result<Checked, E> {
        Ok(Checked)
    }
    fn visit_unit<E>(self) -> Result<Checked, E> {
        Ok(Checked)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Checked, A::Error> {
        while seq.next_element::<Checked>()?.is_some() {}
        Ok(Checked)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Checked, A::Error> {
        // With `arbitrary_precision` a number arrives as a one-entry map.
        while map.next_key::<Checked>()?.is_some() {
            map.next_value::<Checked>()?;
        }
        Ok(Checked)
    }
}

/// Most JSON values (elements, members and their keys) that `params`,
/// `result` or `error` may hold. A parsed value costs up to ~80 bytes
/// whatever its text, so a 16 MiB frame of `[1,1,1,...]` would become a
/// tree of over half a gigabyte; 100,000 values cost a few MiB at most,
/// and no method needs more (a command line has at most a few thousand).
pub const MAX_VALUES: usize = 100_000;

/// An upper bound on the number of JSON values in valid JSON text: one,
/// plus one per `,`, `:`, `[` and `{` outside strings. The reference for the
/// count the scanner keeps ([`Member::values`]), which is what the gateway
/// uses.
#[cfg(any(test, feature = "testing"))]
pub(super) fn value_count(text: &str) -> usize {
    let mut count = 1usize;
    for_each_structural(text, |b| {
        if matches!(b, b',' | b':' | b'[' | b'{') {
            count += 1;
        }
    });
    count
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

/// The envelope serde_json finds in an object (the reference for
/// [`scan`]'s [`Spans`]), or `None` when it refuses the text.
#[cfg(any(test, feature = "testing"))]
pub fn reference_spans(text: &str) -> Option<Spans> {
    let e: Envelope<'_> = serde_json::from_str(text).ok()?;
    let span = |raw: Option<&RawValue>| {
        raw.map(|raw| {
            let start = raw.get().as_ptr() as usize - text.as_ptr() as usize;
            Member::new(
                start..start + raw.get().len(),
                value_count(raw.get()),
                raw.get().starts_with('"') && raw.get().contains('\\'),
            )
        })
    };
    Some(Spans {
        jsonrpc: span(e.jsonrpc),
        id: span(e.id),
        method: span(e.method),
        params: span(e.params),
        result: span(e.result),
        error: span(e.error),
    })
}
