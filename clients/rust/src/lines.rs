//! Splitting a stream into lines (with or without carriage-return rewrites)
//! and decoding UTF-8 across chunks: the same rules as the Node and Python
//! clients (`clients/README.md`, "`lines()` and carriage returns").

/// One stream's line assembler. Works on bytes; lines are decoded at the end.
#[derive(Debug, Default)]
pub(crate) struct LineSplitter {
    rewrites: bool,
    /// The line (or, with rewrites, the version) in progress.
    part: Vec<u8>,
    /// A version of the current line was already delivered.
    shown: bool,
    /// A `\r` ended the last chunk: `\r\n` or a rewrite, the next byte says.
    pending_cr: bool,
}

/// A finished line: its bytes, and whether it rewrites the one delivered before.
pub(crate) type Piece = (Vec<u8>, bool);

impl LineSplitter {
    pub(crate) fn new(rewrites: bool) -> LineSplitter {
        LineSplitter {
            rewrites,
            ..LineSplitter::default()
        }
    }

    pub(crate) fn push(&mut self, text: &[u8], out: &mut Vec<Piece>) {
        if text.is_empty() {
            return;
        }
        if !self.rewrites {
            let mut start = 0;
            while let Some(nl) = text[start..].iter().position(|&b| b == b'\n') {
                self.part.extend_from_slice(&text[start..start + nl]);
                let mut line = std::mem::take(&mut self.part);
                if line.last() == Some(&b'\r') {
                    line.pop();
                }
                out.push((line, false));
                start += nl + 1;
            }
            self.part.extend_from_slice(&text[start..]);
            return;
        }
        let mut i = 0;
        if self.pending_cr {
            self.pending_cr = false;
            if text[0] == b'\n' {
                self.end_line(out);
                i = 1;
            } else {
                self.end_version(out);
            }
        }
        while i < text.len() {
            let Some(offset) = text[i..].iter().position(|&b| b == b'\r' || b == b'\n') else {
                self.part.extend_from_slice(&text[i..]);
                break;
            };
            let j = i + offset;
            self.part.extend_from_slice(&text[i..j]);
            if text[j] == b'\n' {
                self.end_line(out);
                i = j + 1;
            } else if j + 1 == text.len() {
                self.pending_cr = true; // "\r\n" or a rewrite: the next text decides
                i = text.len();
            } else if text[j + 1] == b'\n' {
                self.end_line(out);
                i = j + 2;
            } else {
                self.end_version(out);
                i = j + 1;
            }
        }
    }

    /// A gap in the stream (an output limit's `"tail"`): the line in progress as it is.
    pub(crate) fn cut(&mut self, out: &mut Vec<Piece>) {
        let text = std::mem::take(&mut self.part);
        if !text.is_empty() {
            out.push((text, self.rewrites && self.shown));
        }
        self.shown = false;
        self.pending_cr = false;
    }

    /// The stream ended: a last line without a newline.
    pub(crate) fn end(&mut self, out: &mut Vec<Piece>) {
        let mut text = std::mem::take(&mut self.part);
        if self.rewrites {
            if !text.is_empty() {
                out.push((text, self.shown));
            }
        } else {
            if text.last() == Some(&b'\r') {
                text.pop();
            }
            if !text.is_empty() {
                out.push((text, false));
            }
        }
        self.shown = false;
        self.pending_cr = false;
    }

    fn end_line(&mut self, out: &mut Vec<Piece>) {
        let text = std::mem::take(&mut self.part);
        if !text.is_empty() || !self.shown {
            out.push((text, self.shown));
        }
        self.shown = false;
    }

    fn end_version(&mut self, out: &mut Vec<Piece>) {
        let text = std::mem::take(&mut self.part);
        if !text.is_empty() {
            out.push((text, self.shown));
            self.shown = true;
        }
    }
}

/// Decodes UTF-8 that arrives in pieces: a character split between two
/// pieces is carried over, never broken; invalid bytes become U+FFFD.
#[derive(Debug, Default)]
pub(crate) struct Utf8Decoder {
    carry: Vec<u8>,
}

impl Utf8Decoder {
    pub(crate) fn push(&mut self, bytes: &[u8]) -> String {
        self.carry.extend_from_slice(bytes);
        let mut out = String::new();
        let mut rest: &[u8] = &self.carry;
        let keep = loop {
            match std::str::from_utf8(rest) {
                Ok(text) => {
                    out.push_str(text);
                    break Vec::new();
                }
                Err(e) => {
                    let (valid, after) = rest.split_at(e.valid_up_to());
                    out.push_str(std::str::from_utf8(valid).expect("valid up to here"));
                    match e.error_len() {
                        // A character cut at the end: the next piece completes it.
                        None => break after.to_vec(),
                        // One U+FFFD per maximal invalid sequence, as from_utf8_lossy.
                        Some(len) => {
                            out.push('\u{fffd}');
                            rest = &after[len..];
                        }
                    }
                }
            }
        };
        self.carry = keep;
        out
    }

    /// The end: an incomplete character left becomes U+FFFD.
    pub(crate) fn finish(&mut self) -> String {
        let text = String::from_utf8_lossy(&self.carry).into_owned();
        self.carry.clear();
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(rewrites: bool, chunks: &[&str]) -> Vec<(String, bool)> {
        let mut s = LineSplitter::new(rewrites);
        let mut out = Vec::new();
        for c in chunks {
            s.push(c.as_bytes(), &mut out);
        }
        s.end(&mut out);
        out.into_iter()
            .map(|(b, r)| (String::from_utf8(b).unwrap(), r))
            .collect()
    }

    fn plain(lines: &[&str]) -> Vec<(String, bool)> {
        lines.iter().map(|l| (l.to_string(), false)).collect()
    }

    #[test]
    fn lines_without_rewrites() {
        assert_eq!(
            split(false, &["a\r\nb", "c\n", "\r10%\r50%\n", "tail\r"]),
            plain(&["a", "bc", "\r10%\r50%", "tail"])
        );
        assert_eq!(split(false, &["\n\n"]), plain(&["", ""]));
    }

    #[test]
    fn lines_with_rewrites_deliver_every_version() {
        let got = split(true, &["start\n\r10%\r50%\r100%\ndone\n"]);
        let want = [
            ("start", false),
            ("10%", false),
            ("50%", true),
            ("100%", true),
            ("done", false),
        ];
        assert_eq!(got, want.map(|(l, r)| (l.to_string(), r)));
        // The same, cut anywhere, and with "\r\n" split across chunks.
        let text = "start\r\n\r10%\r50%\r100%\r\ndone\n";
        for cut in 0..text.len() {
            let got = split(true, &[&text[..cut], &text[cut..]]);
            assert_eq!(got, want.map(|(l, r)| (l.to_string(), r)), "cut at {cut}");
        }
        assert_eq!(
            split(true, &["\n"]),
            plain(&[""]),
            "a blank line is delivered"
        );
    }

    #[test]
    fn utf8_is_carried_across_pieces() {
        let text = "héllo ✓ 😀".as_bytes();
        for cut in 0..text.len() {
            let mut d = Utf8Decoder::default();
            let joined = d.push(&text[..cut]) + &d.push(&text[cut..]) + &d.finish();
            assert_eq!(joined, "héllo ✓ 😀", "cut at {cut}");
        }
        let mut d = Utf8Decoder::default();
        assert_eq!(d.push(b"a\xffb\xe2\x9c"), "a\u{fffd}b");
        assert_eq!(d.finish(), "\u{fffd}");
    }
}
