//! Request ids: kept as the exact text a client sent, matched by value.

use std::fmt;

use serde::Serialize;
use serde_json::value::RawValue;
use serde_json::Value;

use super::*;

/// A request id: a JSON string, a JSON number (kept as its exact text) or `null`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Id {
    /// An integer id as JSON writes integers (`-?(0|[1-9][0-9]*)`, not
    /// `-0`) that fits an `i64`, the common case: kept as its value, which
    /// gives back its exact text. Every such id is this variant (there is
    /// no other way to build one), so equal texts are equal ids.
    Int(i64),
    /// Any other numeric id, as the exact text the client sent (`1e400`,
    /// `2.50`, `-0`, a 40-digit integer): echoed byte for byte, never
    /// rounded or normalised.
    Number(NumberText),
    /// A string id (decoded; echoed as an equal JSON string).
    Str(String),
    /// `null`: used for errors whose request id could not be determined.
    Null,
}

/// The text of a numeric id that is not an [`Id::Int`]; made only by
/// [`Id::number`], so an integer that fits is never held as text.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct NumberText(Box<str>);

impl std::ops::Deref for NumberText {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

/// The value of a JSON integer's text that fits an `i64`, when the text is
/// exactly that value's decimal form (so not `-0`).
fn int_value(text: &str) -> Option<i64> {
    let digits = text.strip_prefix('-').unwrap_or(text).as_bytes();
    // Up to 18 digits cannot overflow: add them up directly.
    if let [b'1'..=b'9', ..] = digits {
        if digits.len() <= 18 {
            let mut n: i64 = 0;
            for &d in digits {
                if !d.is_ascii_digit() {
                    return None;
                }
                n = n * 10 + i64::from(d - b'0');
            }
            return Some(if digits.len() < text.len() { -n } else { n });
        }
    }
    let canonical = match digits {
        [] => false,
        [b'0'] => text.len() == 1,
        [b'1'..=b'9', rest @ ..] => rest.iter().all(u8::is_ascii_digit),
        _ => false,
    };
    canonical.then(|| text.parse().ok()).flatten()
}

impl Id {
    /// The id of a JSON number's text (valid JSON).
    pub fn number(text: &str) -> Id {
        match int_value(text) {
            Some(n) => Id::Int(n),
            None => Id::Number(NumberText(text.into())),
        }
    }

    /// Reads an id from the text of a JSON value (valid JSON, without
    /// whitespace around it); `None` if it is not a legal id (an object, an
    /// array, a boolean, or a string with a lone surrogate).
    pub fn from_json(text: &str) -> Option<Id> {
        match text.as_bytes().first()? {
            b'"' => serde_json::from_str(text).ok().map(Id::Str),
            b'-' | b'0'..=b'9' => Some(Id::number(text)),
            b'n' => Some(Id::Null),
            _ => None,
        }
    }

    /// The id as a JSON value (numbers through `arbitrary_precision`, which
    /// may normalise their text: use [`Id::write`] to echo).
    pub fn to_value(&self) -> Value {
        match self {
            Id::Int(n) => Value::from(*n),
            Id::Number(n) => serde_json::from_str(n).unwrap_or(Value::Null),
            Id::Str(s) => Value::String(s.clone()),
            Id::Null => Value::Null,
        }
    }

    /// Appends the id as JSON: numbers as their exact text.
    pub fn write(&self, buf: &mut Vec<u8>) {
        match self {
            Id::Int(n) => write_int(buf, *n),
            Id::Number(n) => buf.extend_from_slice(n.as_bytes()),
            Id::Str(s) => write_json(buf, s),
            Id::Null => buf.extend_from_slice(b"null"),
        }
    }
}

/// Appends an integer's decimal form, two digits at a time.
fn write_int(buf: &mut Vec<u8>, n: i64) {
    const PAIRS: &[u8; 200] = b"0001020304050607080910111213141516171819\
        2021222324252627282930313233343536373839\
        4041424344454647484950515253545556575859\
        6061626364656667686970717273747576777879\
        8081828384858687888990919293949596979899";
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    let mut v = n.unsigned_abs();
    while v >= 100 {
        let pair = (v % 100) as usize * 2;
        v /= 100;
        at -= 2;
        digits[at..at + 2].copy_from_slice(&PAIRS[pair..pair + 2]);
    }
    if v >= 10 {
        let pair = v as usize * 2;
        at -= 2;
        digits[at..at + 2].copy_from_slice(&PAIRS[pair..pair + 2]);
    } else {
        at -= 1;
        digits[at] = b'0' + v as u8;
    }
    if n < 0 {
        buf.push(b'-');
    }
    buf.extend_from_slice(&digits[at..]);
}

impl Id {
    /// The form two ids are matched by: a number's value rather than its
    /// text, so a peer that writes `2.50` back as `2.5`, or `1e2` as
    /// `100.0`, still answers the same request. Integers without a fraction
    /// or exponent keep their exact text (they may exceed an `f64`); an
    /// integral value that fits is an [`Id::Int`].
    pub fn canonical(&self) -> Id {
        self.canonical_cow().into_owned()
    }

    /// [`Id::canonical`], borrowed when the id already is (a string, null,
    /// or an integer without a fraction or exponent: the common case).
    pub fn canonical_cow(&self) -> std::borrow::Cow<'_, Id> {
        match self {
            Id::Number(text) if text.contains(['.', 'e', 'E']) || &**text == "-0" => {
                std::borrow::Cow::Owned(self.canonical_number())
            }
            _ => std::borrow::Cow::Borrowed(self),
        }
    }

    fn canonical_number(&self) -> Id {
        match self {
            Id::Number(text) if text.contains(['.', 'e', 'E']) => match text.parse::<f64>() {
                Ok(v)
                    if v.is_finite() && v.fract() == 0.0 && v.abs() < 9.007_199_254_740_992e15 =>
                {
                    Id::Int(v as i64)
                }
                Ok(v) if v.is_finite() => Id::number(&format!("{v:?}")),
                _ => self.clone(),
            },
            Id::Number(text) if &**text == "-0" => Id::Int(0),
            other => other.clone(),
        }
    }
}

impl From<u64> for Id {
    fn from(n: u64) -> Id {
        match i64::try_from(n) {
            Ok(n) => Id::Int(n),
            Err(_) => Id::number(&n.to_string()),
        }
    }
}

impl fmt::Display for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Id::Int(n) => write!(f, "{n}"),
            Id::Number(n) => f.write_str(n),
            Id::Str(s) => write!(f, "{s:?}"),
            Id::Null => f.write_str("null"),
        }
    }
}

impl Serialize for Id {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Id::Int(n) => s.serialize_i64(*n),
            Id::Number(n) => RawValue::from_string(n.to_string())
                .map_err(serde::ser::Error::custom)?
                .serialize(s),
            Id::Str(v) => v.serialize(s),
            Id::Null => s.serialize_unit(),
        }
    }
}
