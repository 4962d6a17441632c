//! Whole-frame checks without building anything: UTF-8, JSON syntax,
//! escapes, nesting depth, raw control bytes, and how many values a text holds.

use std::fmt;

use serde::de::{Deserializer, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;

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

/// UTF-8, JSON syntax, string escapes and nesting depth, for the whole
/// frame, without building anything: the same verdict as parsing it into a
/// `Value`, at a fraction of the cost.
pub(super) fn check(frame: Vec<u8>) -> Result<String, Reject> {
    let text = String::from_utf8(frame).map_err(|e| {
        Reject::null(RpcError::parse(format_args!(
            "invalid UTF-8 at byte {}",
            e.utf8_error().valid_up_to()
        )))
    })?;
    serde_json::from_str::<Checked>(&text).map_err(|e| Reject::null(RpcError::parse(e)))?;
    Ok(text)
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
/// plus one per `,`, `:`, `[` and `{` outside strings.
pub(super) fn value_count(text: &str) -> usize {
    let mut count = 1usize;
    for_each_structural(text, |b| {
        if matches!(b, b',' | b':' | b'[' | b'{') {
            count += 1;
        }
    });
    count
}
