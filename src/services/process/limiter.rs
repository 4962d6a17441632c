//! `output_limit`: how much of one output stream is forwarded, counted in
//! raw bytes before decoding. `kill` and `truncate` forward exactly the
//! first N bytes; `tail` forwards the first half as it comes and keeps the
//! last half in a ring, delivered when the stream ends with the count of
//! bytes skipped between them (`docs/process.md`, "output_limit").

use std::collections::VecDeque;

use serde_json::{json, Value};

use super::decode::Encoding;
use super::params::{bad, integer, kind};
use crate::engine::wire::RpcError;

/// Largest `output_limit.bytes` for `kill` and `truncate` (2^48): a counter.
pub(crate) const MAX_LIMIT_BYTES: u64 = 1 << 48;
/// Largest `output_limit.bytes` for `tail`: its ring (half of it, per
/// stream) is held in memory.
pub(crate) const MAX_TAIL_BYTES: u64 = 16 << 20;

/// What happens past the limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Policy {
    /// Cancel the process.
    Kill,
    /// Keep it running; forward nothing more.
    Truncate,
    /// Forward the head, keep the tail, skip the middle.
    Tail,
}

impl Policy {
    fn as_str(self) -> &'static str {
        match self {
            Policy::Kill => "kill",
            Policy::Truncate => "truncate",
            Policy::Tail => "tail",
        }
    }
}

/// `output_limit {bytes, policy}`, per stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct OutputLimit {
    /// Bytes per stream.
    pub(crate) bytes: u64,
    /// What happens past them.
    pub(crate) policy: Policy,
}

impl OutputLimit {
    /// Reads the `output_limit` param.
    pub(crate) fn from_param(value: Value) -> Result<OutputLimit, RpcError> {
        let Value::Object(mut map) = value else {
            return Err(bad(format!(
                "output_limit must be an object {{bytes, policy}}, got {}",
                kind(&value)
            )));
        };
        if let Some(unknown) = map.keys().find(|k| *k != "bytes" && *k != "policy") {
            return Err(bad(format!(
                "output_limit: unknown parameter {unknown:?} (expected bytes, policy)"
            )));
        }
        let policy = match map.remove("policy") {
            Some(Value::String(s)) if s == "kill" => Policy::Kill,
            Some(Value::String(s)) if s == "truncate" => Policy::Truncate,
            Some(Value::String(s)) if s == "tail" => Policy::Tail,
            Some(Value::String(s)) => {
                return Err(bad(format!(
                    "output_limit.policy must be \"kill\", \"truncate\" or \"tail\", got {s:?}"
                )))
            }
            None | Some(Value::Null) => {
                return Err(bad(
                    "output_limit needs policy: \"kill\", \"truncate\" or \"tail\"",
                ))
            }
            Some(other) => {
                return Err(bad(format!(
                    "output_limit.policy must be \"kill\", \"truncate\" or \"tail\", got {}",
                    kind(&other)
                )))
            }
        };
        let max = match policy {
            Policy::Tail => MAX_TAIL_BYTES,
            Policy::Kill | Policy::Truncate => MAX_LIMIT_BYTES,
        };
        let bytes = match map.remove("bytes") {
            None | Some(Value::Null) => {
                return Err(bad(format!(
                    "output_limit needs bytes: an integer from 1 to {max}"
                )))
            }
            Some(v) => integer("output_limit.bytes", &v, 1, max)?,
        };
        Ok(OutputLimit { bytes, policy })
    }

    /// As the client wrote it.
    pub(crate) fn to_json(self) -> Value {
        json!({"bytes": self.bytes, "policy": self.policy.as_str()})
    }
}

/// What [`Limiter::admit`] lets through of one read.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Admitted<'a> {
    /// The bytes to forward now.
    pub(crate) forward: &'a [u8],
    /// This read passed the head for the first time: the forwarded part
    /// ends here (until a `tail` ring is delivered).
    pub(crate) cut: bool,
}

/// One stream's count against its limit.
#[derive(Debug)]
pub(crate) struct Limiter {
    policy: Policy,
    /// Bytes forwarded as they come.
    head: u64,
    /// Bytes the ring keeps (`tail` only).
    ring_cap: usize,
    ring: VecDeque<u8>,
    /// Bytes read from the stream.
    seen: u64,
    /// Bytes forwarded (the head, then the ring once delivered).
    forwarded: u64,
}

impl Limiter {
    /// A stream under `limit`, sent with `encoding`. In base64 the head of
    /// a `tail` is rounded down to whole 3-byte groups, so the head's text
    /// and the ring's join into valid base64.
    pub(crate) fn new(limit: OutputLimit, encoding: Encoding) -> Limiter {
        let (head, ring_cap) = match limit.policy {
            Policy::Kill | Policy::Truncate => (limit.bytes, 0),
            Policy::Tail => {
                let mut head = limit.bytes / 2;
                if encoding == Encoding::Base64 {
                    head -= head % 3;
                }
                (head, (limit.bytes - head) as usize)
            }
        };
        Limiter {
            policy: limit.policy,
            head,
            ring_cap,
            ring: VecDeque::new(),
            seen: 0,
            forwarded: 0,
        }
    }

    /// Counts one read and returns the part to forward now. Past the head,
    /// `tail` keeps the newest bytes in its ring.
    pub(crate) fn admit<'a>(&mut self, bytes: &'a [u8]) -> Admitted<'a> {
        let before = self.seen;
        self.seen += bytes.len() as u64;
        let room = self.head.saturating_sub(before);
        let take = (room as usize).min(bytes.len());
        self.forwarded += take as u64;
        let cut = before <= self.head && self.seen > self.head;
        if self.policy == Policy::Tail {
            let rest = &bytes[take..];
            let keep = &rest[rest.len().saturating_sub(self.ring_cap)..];
            let overflow = (self.ring.len() + keep.len()).saturating_sub(self.ring_cap);
            self.ring.drain(..overflow);
            self.ring.extend(keep);
        }
        Admitted {
            forward: &bytes[..take],
            cut,
        }
    }

    /// The stream ended: the ring to deliver and the bytes skipped before
    /// it, if the stream passed its head (`tail` only).
    pub(crate) fn take_ring(&mut self) -> Option<(u64, Vec<u8>)> {
        if self.policy != Policy::Tail || self.seen <= self.head {
            return None;
        }
        let ring: Vec<u8> = std::mem::take(&mut self.ring).into();
        self.forwarded += ring.len() as u64;
        Some((self.seen - self.forwarded, ring))
    }

    /// Bytes read and not forwarded (so far).
    pub(crate) fn discarded(&self) -> u64 {
        self.seen - self.forwarded
    }

    /// The policy in force.
    pub(crate) fn policy(&self) -> Policy {
        self.policy
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limiter(bytes: u64, policy: Policy) -> Limiter {
        Limiter::new(OutputLimit { bytes, policy }, Encoding::Utf8)
    }

    #[test]
    fn truncate_forwards_exactly_the_limit_and_counts_the_rest() {
        let mut l = limiter(10, Policy::Truncate);
        assert_eq!(
            l.admit(b"123456"),
            Admitted {
                forward: b"123456",
                cut: false
            }
        );
        assert_eq!(
            l.admit(b"7890ab"),
            Admitted {
                forward: b"7890",
                cut: true
            }
        );
        assert_eq!(
            l.admit(b"cdef"),
            Admitted {
                forward: b"",
                cut: false
            }
        );
        assert_eq!(l.discarded(), 6);
        assert_eq!(l.take_ring(), None);
    }

    #[test]
    fn exactly_the_limit_is_not_a_cut() {
        let mut l = limiter(4, Policy::Kill);
        assert_eq!(
            l.admit(b"abcd"),
            Admitted {
                forward: b"abcd",
                cut: false
            }
        );
        assert_eq!(l.discarded(), 0);
        assert!(l.admit(b"e").cut);
    }

    #[test]
    fn tail_keeps_the_head_and_the_newest_bytes() {
        let mut l = limiter(8, Policy::Tail);
        assert_eq!(
            l.admit(b"abc"),
            Admitted {
                forward: b"abc",
                cut: false
            }
        );
        assert_eq!(
            l.admit(b"defgh"),
            Admitted {
                forward: b"d",
                cut: true
            }
        );
        assert_eq!(l.admit(b"ijklmnop").forward, b"");
        let (skipped, ring) = l.take_ring().expect("passed the head");
        assert_eq!(ring, b"mnop");
        assert_eq!(skipped, 16 - 4 - 4);
        assert_eq!(l.discarded(), skipped);
    }

    #[test]
    fn a_short_tail_stream_has_no_ring() {
        let mut l = limiter(8, Policy::Tail);
        assert_eq!(l.admit(b"abcd").forward, b"abcd");
        assert_eq!(l.take_ring(), None);
        let mut l = limiter(8, Policy::Tail);
        l.admit(b"abcdef");
        assert_eq!(l.take_ring(), Some((0, b"ef".to_vec())));
    }

    #[test]
    fn a_base64_tail_head_is_whole_groups() {
        let mut l = Limiter::new(
            OutputLimit {
                bytes: 16,
                policy: Policy::Tail,
            },
            Encoding::Base64,
        );
        assert_eq!(l.admit(b"0123456789").forward, b"012345");
    }

    #[test]
    fn bad_limits_are_refused_naming_the_field() {
        let err = |v: Value| OutputLimit::from_param(v).unwrap_err().message;
        assert!(err(json!({"bytes": 0, "policy": "kill"})).contains("output_limit.bytes"));
        assert!(err(json!({"bytes": -5, "policy": "kill"})).contains("got -5"));
        assert!(err(json!({"bytes": 5, "policy": "drop"})).contains("got \"drop\""));
        assert!(err(json!({"bytes": 5})).contains("needs policy"));
        assert!(err(json!({"policy": "tail"})).contains("needs bytes"));
        assert!(err(json!({"bytes": 17 << 20, "policy": "tail"})).contains("16777216"));
        assert!(err(json!({"bytes": 5, "policy": "kill", "per": "all"})).contains("\"per\""));
        assert!(err(json!(5)).contains("got a number"));
        let ok = OutputLimit::from_param(json!({"bytes": 5, "policy": "tail"})).unwrap();
        assert_eq!(ok.to_json(), json!({"bytes": 5, "policy": "tail"}));
    }
}
