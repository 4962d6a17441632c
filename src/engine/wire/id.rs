//! Request ids: kept as the exact text a client sent, matched by value.

use std::fmt;

use serde::Serialize;
use serde_json::value::RawValue;
use serde_json::Value;

use super::*;

/// A request id: a JSON string, a JSON number (kept as its exact text) or `null`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Id {
    /// A numeric id, stored as the exact text the client sent (`1e400`,
    /// `2.50`, `-0`): echoed byte for byte, never rounded or normalised.
    Number(Box<str>),
    /// A string id (decoded; echoed as an equal JSON string).
    Str(String),
    /// `null`: used for errors whose request id could not be determined.
    Null,
}

impl Id {
    /// Reads an id from the text of a JSON value (valid JSON, without
    /// whitespace around it); `None` if it is not a legal id (an object, an
    /// array, a boolean, or a string with a lone surrogate).
    pub fn from_json(text: &str) -> Option<Id> {
        match text.as_bytes().first()? {
            b'"' => serde_json::from_str(text).ok().map(Id::Str),
            b'-' | b'0'..=b'9' => Some(Id::Number(text.into())),
            b'n' => Some(Id::Null),
            _ => None,
        }
    }

    /// The id as a JSON value (numbers through `arbitrary_precision`, which
    /// may normalise their text: use [`Id::write`] to echo).
    pub fn to_value(&self) -> Value {
        match self {
            Id::Number(n) => serde_json::from_str(n).unwrap_or(Value::Null),
            Id::Str(s) => Value::String(s.clone()),
            Id::Null => Value::Null,
        }
    }

    /// Appends the id as JSON: numbers as their exact text.
    pub fn write(&self, buf: &mut Vec<u8>) {
        match self {
            Id::Number(n) => buf.extend_from_slice(n.as_bytes()),
            Id::Str(s) => write_json(buf, s),
            Id::Null => buf.extend_from_slice(b"null"),
        }
    }
}

impl Id {
    /// The form two ids are matched by: a number's value rather than its
    /// text, so a peer that writes `2.50` back as `2.5`, or `1e2` as
    /// `100.0`, still answers the same request. Integers without a fraction
    /// or exponent keep their exact text (they may exceed an `f64`).
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
                    Id::Number(format!("{}", v as i64).into())
                }
                Ok(v) if v.is_finite() => Id::Number(format!("{v:?}").into()),
                _ => self.clone(),
            },
            Id::Number(text) if &**text == "-0" => Id::Number("0".into()),
            other => other.clone(),
        }
    }
}

impl From<u64> for Id {
    fn from(n: u64) -> Id {
        Id::Number(n.to_string().into())
    }
}

impl fmt::Display for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Id::Number(n) => f.write_str(n),
            Id::Str(s) => write!(f, "{s:?}"),
            Id::Null => f.write_str("null"),
        }
    }
}

impl Serialize for Id {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Id::Number(n) => RawValue::from_string(n.to_string())
                .map_err(serde::ser::Error::custom)?
                .serialize(s),
            Id::Str(v) => v.serialize(s),
            Id::Null => s.serialize_unit(),
        }
    }
}
