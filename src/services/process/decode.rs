//! Turning a child's output bytes into `process.output` text, and
//! `process.write` text back into bytes.
//!
//! Pipe reads split the byte stream anywhere, and the outbound queue may
//! concatenate adjacent `process.output` events while the reader is slow. So
//! every chunk a [`StreamDecoder`] hands out must be valid on its own *and*
//! after concatenation:
//!
//! * `utf8`: a multi-byte character split across reads is carried (at most
//!   three bytes) until the rest arrives; invalid bytes become U+FFFD, one per
//!   maximal invalid subpart, exactly as [`String::from_utf8_lossy`] does for
//!   the whole stream; an incomplete tail at EOF becomes one U+FFFD.
//! * `base64`: every chunk encodes a multiple of three bytes, so it carries no
//!   padding and concatenated chunks are still one valid base64 string; the
//!   zero to two leftover bytes wait for the next read and are flushed, padded,
//!   at EOF.

/// How a child's output bytes travel on the wire (and how `process.write`
/// data is read).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Encoding {
    /// Text; invalid UTF-8 becomes U+FFFD.
    Utf8,
    /// Standard base64 (RFC 4648, with padding): exact bytes.
    Base64,
}

/// Decodes one output pipe's byte stream into wire chunks, carrying what
/// cannot be sent yet.
#[derive(Debug)]
pub(crate) struct StreamDecoder {
    encoding: Encoding,
    /// Bytes held back: an incomplete UTF-8 character (at most 3 bytes) or
    /// the bytes past the last multiple of three (at most 2 bytes).
    carry: Vec<u8>,
}

impl StreamDecoder {
    /// A decoder with nothing carried.
    pub(crate) fn new(encoding: Encoding) -> StreamDecoder {
        StreamDecoder {
            encoding,
            carry: Vec::with_capacity(4),
        }
    }

    /// Bytes held back, waiting for the rest of their unit.
    #[cfg(test)]
    pub(crate) fn carried(&self) -> usize {
        self.carry.len()
    }

    /// Decodes the next bytes read from the pipe. The result may be empty
    /// (everything was carried).
    pub(crate) fn push(&mut self, bytes: &[u8]) -> String {
        let joined;
        let input: &[u8] = if self.carry.is_empty() {
            bytes
        } else {
            let mut j = std::mem::take(&mut self.carry);
            j.extend_from_slice(bytes);
            joined = j;
            &joined
        };
        match self.encoding {
            Encoding::Utf8 => {
                let mut out = String::with_capacity(input.len());
                let tail = utf8_lossy_into(input, &mut out);
                self.carry.extend_from_slice(tail);
                out
            }
            Encoding::Base64 => {
                let whole = input.len() / 3 * 3;
                self.carry.extend_from_slice(&input[whole..]);
                base64_encode(&input[..whole])
            }
        }
    }

    /// The pipe reached EOF: whatever is carried, as a last chunk (empty if
    /// nothing was carried).
    pub(crate) fn finish(&mut self) -> String {
        let carry = std::mem::take(&mut self.carry);
        if carry.is_empty() {
            return String::new();
        }
        match self.encoding {
            // A truncated character is one maximal invalid subpart.
            Encoding::Utf8 => String::from(char::REPLACEMENT_CHARACTER),
            Encoding::Base64 => base64_encode(&carry),
        }
    }
}

/// Appends the valid UTF-8 of `input` to `out`, with U+FFFD for each maximal
/// invalid subpart; returns the incomplete character at the very end (a
/// prefix of a valid sequence, at most 3 bytes), which is not decoded.
fn utf8_lossy_into<'a>(mut input: &'a [u8], out: &mut String) -> &'a [u8] {
    loop {
        match std::str::from_utf8(input) {
            Ok(valid) => {
                out.push_str(valid);
                return &[];
            }
            Err(e) => {
                let (valid, rest) = input.split_at(e.valid_up_to());
                // `valid_up_to` guarantees this prefix is UTF-8.
                out.push_str(std::str::from_utf8(valid).unwrap_or_default());
                match e.error_len() {
                    // Invalid bytes in the middle: replace and go on.
                    Some(len) => {
                        out.push(char::REPLACEMENT_CHARACTER);
                        input = &rest[len..];
                    }
                    // The input ends inside a character that may still complete.
                    None => return rest,
                }
            }
        }
    }
}

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Standard base64 with `=` padding.
pub(crate) fn base64_encode(bytes: &[u8]) -> String {
    let mut out = Vec::with_capacity(bytes.len().div_ceil(3) * 4);
    let mut chunks = bytes.chunks_exact(3);
    for c in &mut chunks {
        let n = u32::from(c[0]) << 16 | u32::from(c[1]) << 8 | u32::from(c[2]);
        out.extend_from_slice(&[
            ALPHABET[(n >> 18) as usize & 63],
            ALPHABET[(n >> 12) as usize & 63],
            ALPHABET[(n >> 6) as usize & 63],
            ALPHABET[n as usize & 63],
        ]);
    }
    match *chunks.remainder() {
        [a] => {
            let n = u32::from(a) << 16;
            out.extend_from_slice(&[
                ALPHABET[(n >> 18) as usize & 63],
                ALPHABET[(n >> 12) as usize & 63],
                b'=',
                b'=',
            ]);
        }
        [a, b] => {
            let n = u32::from(a) << 16 | u32::from(b) << 8;
            out.extend_from_slice(&[
                ALPHABET[(n >> 18) as usize & 63],
                ALPHABET[(n >> 12) as usize & 63],
                ALPHABET[(n >> 6) as usize & 63],
                b'=',
            ]);
        }
        _ => {}
    }
    // Every byte pushed comes from the ASCII alphabet or is '='.
    String::from_utf8(out).unwrap_or_default()
}

/// Why a base64 string was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Base64Error {
    /// A byte outside the standard alphabet (and not trailing padding).
    InvalidByte {
        /// Where, counted in bytes from the start.
        offset: usize,
    },
    /// The length (without padding) leaves a lone sixth of a byte.
    InvalidLength,
}

impl std::fmt::Display for Base64Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Base64Error::InvalidByte { offset } => {
                write!(f, "invalid base64 character at offset {offset}")
            }
            Base64Error::InvalidLength => f.write_str("truncated base64 (impossible length)"),
        }
    }
}

fn sextet(b: u8) -> Option<u32> {
    let v = match b {
        b'A'..=b'Z' => b - b'A',
        b'a'..=b'z' => b - b'a' + 26,
        b'0'..=b'9' => b - b'0' + 52,
        b'+' => 62,
        b'/' => 63,
        _ => return None,
    };
    Some(u32::from(v))
}

/// Decodes standard base64. Padding is optional (at most two `=` at the
/// end); whitespace and the URL-safe alphabet are refused.
pub(crate) fn base64_decode(text: &str) -> Result<Vec<u8>, Base64Error> {
    let bytes = text.as_bytes();
    let body_len = bytes.len()
        - bytes
            .iter()
            .rev()
            .take(2)
            .take_while(|&&b| b == b'=')
            .count();
    let body = &bytes[..body_len];
    if let Some(offset) = body.iter().position(|&b| sextet(b).is_none()) {
        return Err(Base64Error::InvalidByte { offset });
    }
    if body_len % 4 == 1 || (body_len != bytes.len() && bytes.len() % 4 != 0) {
        return Err(Base64Error::InvalidLength);
    }
    let mut out = Vec::with_capacity(body_len / 4 * 3 + 2);
    let mut acc = 0u32;
    let mut bits = 0;
    for &b in body {
        let v = sextet(b).unwrap_or_default();
        acc = acc << 6 | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `bytes` in chunks of the given sizes (cycled) and joins the output.
    fn feed(encoding: Encoding, bytes: &[u8], sizes: &[usize]) -> Vec<String> {
        let mut d = StreamDecoder::new(encoding);
        let mut chunks = Vec::new();
        let mut rest = bytes;
        for &size in sizes.iter().cycle() {
            if rest.is_empty() {
                break;
            }
            let (now, later) = rest.split_at(size.min(rest.len()));
            chunks.push(d.push(now));
            rest = later;
        }
        chunks.push(d.finish());
        chunks
    }

    #[test]
    fn utf8_never_splits_a_character_whatever_the_read_sizes() {
        let text = "a€😀ü\u{10FFFF}z".repeat(50);
        for sizes in [&[1][..], &[2], &[3], &[5, 1, 7], &[4096]] {
            let chunks = feed(Encoding::Utf8, text.as_bytes(), sizes);
            // Each chunk is a String, so each is valid on its own by type;
            // the join is the original text, so nothing was lost or replaced.
            assert_eq!(chunks.concat(), text, "sizes {sizes:?}");
        }
    }

    #[test]
    fn utf8_invalid_bytes_match_from_utf8_lossy_across_any_split() {
        let mut bytes = b"ok \xff\xfe mid \xe2\x82 cut \xf0\x9f\x98".to_vec();
        bytes.extend_from_slice("€ end \u{80}".as_bytes());
        bytes.extend_from_slice(b"\xc3"); // truncated at EOF
        let expected = String::from_utf8_lossy(&bytes).into_owned();
        for sizes in [&[1][..], &[2], &[3], &[7, 2], &[1000]] {
            let chunks = feed(Encoding::Utf8, &bytes, sizes);
            assert_eq!(chunks.concat(), expected, "sizes {sizes:?}");
        }
    }

    #[test]
    fn utf8_carry_is_at_most_three_bytes_and_flushes_at_eof() {
        let mut d = StreamDecoder::new(Encoding::Utf8);
        assert_eq!(d.push(b"x\xf0\x9f\x98"), "x");
        assert_eq!(d.carried(), 3);
        assert_eq!(d.push(b"\x80"), "😀");
        assert_eq!(d.carried(), 0);
        assert_eq!(d.push(b"\xe2"), "");
        assert_eq!(d.finish(), "\u{FFFD}");
        assert_eq!(d.finish(), "");
    }

    #[test]
    fn base64_chunks_stay_valid_when_concatenated() {
        let bytes: Vec<u8> = (0..=255u8).cycle().take(1000).collect();
        for sizes in [&[1][..], &[2], &[4, 5], &[64], &[999]] {
            let chunks = feed(Encoding::Base64, &bytes, sizes);
            let (last, body) = chunks.split_last().unwrap();
            for c in body {
                assert_eq!(c.len() % 4, 0, "unpadded whole groups only");
                assert!(!c.contains('='), "padding only in the last chunk");
            }
            let _ = last;
            let joined = chunks.concat();
            assert_eq!(joined, base64_encode(&bytes), "sizes {sizes:?}");
            assert_eq!(base64_decode(&joined).unwrap(), bytes);
        }
    }

    #[test]
    fn base64_matches_rfc_4648_vectors() {
        for (plain, encoded) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64_encode(plain.as_bytes()), encoded);
            assert_eq!(base64_decode(encoded).unwrap(), plain.as_bytes());
            let unpadded = encoded.trim_end_matches('=');
            assert_eq!(base64_decode(unpadded).unwrap(), plain.as_bytes());
        }
        assert_eq!(base64_encode(&[0xfb, 0xff]), "+/8=");
    }

    #[test]
    fn base64_decode_refuses_garbage_with_its_offset() {
        assert_eq!(
            base64_decode("Zm9v!A=="),
            Err(Base64Error::InvalidByte { offset: 4 })
        );
        assert_eq!(
            base64_decode("Zm 9v"),
            Err(Base64Error::InvalidByte { offset: 2 })
        );
        assert_eq!(base64_decode("Zm9vY"), Err(Base64Error::InvalidLength));
        assert_eq!(base64_decode("Zg="), Err(Base64Error::InvalidLength));
        assert_eq!(
            base64_decode("Zg=a"),
            Err(Base64Error::InvalidByte { offset: 2 })
        );
        assert!(base64_decode("Zm-_").is_err(), "URL-safe alphabet");
    }
}
