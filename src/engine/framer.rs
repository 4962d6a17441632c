//! A bounded newline framer for inbound bytes.
//!
//! Modelled on tokio-util's `LinesCodec`: the state is the buffered bytes,
//! `next_index` (where to resume the newline search, so a partial frame is
//! never rescanned), `max_frame` and `discarding`. Unlike `LinesCodec`, an
//! unterminated tail at EOF is not a frame: it is a truncated one, reported by
//! [`Framer::finish`] and never dispatched.
//!
//! Memory is bounded: the buffer never holds more than `max_frame` bytes plus
//! the last chunk pushed, whatever the peer sends, its capacity never grows
//! past that, and a large line is handed out as the buffer itself instead of
//! a copy. An unbounded line framer on untrusted input is a memory-exhaustion
//! risk.

/// A drained buffer keeps at most this much capacity for the next lines.
const KEEP_CAPACITY: usize = 256 * 1024;
/// Lines at least this long are handed out as the buffer itself rather than
/// copied, when they are most of it.
#[cfg(any(test, feature = "testing"))]
const HAND_OVER_MIN: usize = 64 * 1024;

/// One unit of framed input: a frame is its bytes ([`Framer::next_frame`])
/// or where they sit in the buffer ([`Framer::next_span`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decoded<F = Vec<u8>> {
    /// A complete line: no `\n`, trailing `\r` stripped, never blank.
    Frame(F),
    /// A line longer than the limit. Reported once; its bytes are discarded up
    /// to the next `\n` and framing resumes after it.
    TooLarge {
        /// The limit in force, in bytes.
        limit: usize,
    },
}

/// Splits a byte stream into `\n`-terminated frames of bounded size.
#[derive(Debug)]
pub struct Framer {
    buf: Vec<u8>,
    /// Start of the first unconsumed byte in `buf`.
    start: usize,
    /// Offset from `start` where the next newline search resumes.
    next_index: usize,
    max_frame: usize,
    /// Inside an over-long line that was already reported.
    discarding: bool,
    /// Lines are handed out as they came: a trailing `\r` kept, blank lines
    /// too (transparent forwarding reads nothing).
    verbatim: bool,
}

impl Framer {
    /// A framer that accepts lines of at most `max_frame` bytes (without the `\n`).
    pub fn new(max_frame: usize) -> Framer {
        Framer {
            buf: Vec::new(),
            start: 0,
            next_index: 0,
            max_frame,
            discarding: false,
            verbatim: false,
        }
    }

    /// A framer that hands out every line as it came (no `\r` stripped, no
    /// blank line skipped), for a peer whose bytes are only forwarded.
    pub fn verbatim(max_frame: usize) -> Framer {
        Framer {
            verbatim: true,
            ..Framer::new(max_frame)
        }
    }

    /// Appends bytes read from the peer. Call [`Framer::next_span`] (or
    /// [`Framer::next_frame`]) until it returns `None` before pushing
    /// again, so the bound holds.
    pub fn push(&mut self, bytes: &[u8]) {
        if self.start > 0 {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        if self.buf.is_empty() && self.buf.capacity() > KEEP_CAPACITY {
            // A large line (or a discarded one) is gone: give its memory back.
            self.buf = Vec::with_capacity(KEEP_CAPACITY);
        }
        // Grow geometrically, but never past what the bound can need (a
        // line at the limit plus this chunk), so a line at the limit costs
        // the limit, not the next power of two.
        let needed = self.buf.len() + bytes.len();
        if needed > self.buf.capacity() {
            let bound = needed.max(self.max_frame.saturating_add(bytes.len()).saturating_add(2));
            let target = self.buf.capacity().saturating_mul(2).max(needed).min(bound);
            self.buf.reserve_exact(target - self.buf.len());
        }
        self.buf.extend_from_slice(bytes);
    }

    /// Forgets the bytes after the last `\n` (a line the peer had half sent
    /// when it went), and an over-long line being skipped: the next peer
    /// starts at a line boundary. Whole lines still held stay.
    pub fn discard_partial(&mut self) {
        let held = &self.buf[self.start..];
        match memchr::memrchr(b'\n', held) {
            Some(last) => self.buf.truncate(self.start + last + 1),
            None => {
                self.buf.truncate(self.start);
                self.next_index = 0;
            }
        }
        self.discarding = false;
    }

    /// Bytes held that do not yet form a frame.
    pub fn buffered(&self) -> usize {
        self.buf.len() - self.start
    }

    /// The next frame or oversize report, or `None` when more bytes are
    /// needed: the frame as its own buffer. A large line is handed over as
    /// the buffer itself when it is most of it, so it is never held twice.
    #[cfg(any(test, feature = "testing"))]
    pub fn next_frame(&mut self) -> Option<Decoded> {
        let span = match self.next_span()? {
            Decoded::Frame(span) => span,
            Decoded::TooLarge { limit } => return Some(Decoded::TooLarge { limit }),
        };
        let rest = self.buf.len() - self.start;
        if span.len() < HAND_OVER_MIN || span.len() < rest {
            // Room for a `\n`: a forwarded line gets it back without a
            // reallocation.
            let mut frame = Vec::with_capacity(span.len() + 1);
            frame.extend_from_slice(&self.buf[span]);
            return Some(Decoded::Frame(frame));
        }
        let kept = self.buf[self.start..].to_vec();
        let mut frame = std::mem::replace(&mut self.buf, kept);
        frame.truncate(span.end);
        frame.drain(..span.start);
        self.start = 0;
        Some(Decoded::Frame(frame))
    }

    /// Lends out the buffer, so a span of it can be read while its owner
    /// is borrowed mutably; [`Framer::give_back`] it before anything else
    /// is asked of the framer.
    pub fn lend(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.buf)
    }

    /// Takes back the buffer [`Framer::lend`] lent.
    pub fn give_back(&mut self, buf: Vec<u8>) {
        debug_assert!(self.buf.is_empty(), "nothing pushed while lent");
        self.buf = buf;
    }

    /// [`Framer::next_frame`] without a copy: where the frame sits in the
    /// buffer, read from the buffer [`Framer::lend`] lends, before the next push.
    pub fn next_span(&mut self) -> Option<Decoded<std::ops::Range<usize>>> {
        loop {
            let from = self.start + self.next_index;
            match memchr::memchr(b'\n', &self.buf[from..]) {
                // The rest of a line already reported as too large: drop it
                // with its newline and resume framing after it.
                Some(offset) if self.discarding => {
                    self.start = from + offset + 1;
                    self.next_index = 0;
                    self.discarding = false;
                }
                // A complete line: hand it out unless it is too large or blank.
                Some(offset) => {
                    let mut end = from + offset;
                    let line_start = self.start;
                    self.start = end + 1;
                    self.next_index = 0;
                    if end - line_start > self.max_frame {
                        return Some(Decoded::TooLarge {
                            limit: self.max_frame,
                        });
                    }
                    if !self.verbatim {
                        if end > line_start && self.buf[end - 1] == b'\r' {
                            end -= 1;
                        }
                        // A line is blank only if its first byte is blank.
                        let line = &self.buf[line_start..end];
                        let starts_blank =
                            !matches!(line.first(), Some(b) if !b.is_ascii_whitespace());
                        if starts_blank && line.iter().all(u8::is_ascii_whitespace) {
                            continue;
                        }
                    }
                    return Some(Decoded::Frame(line_start..end));
                }
                // No newline yet, inside a discarded line: drop what arrived.
                None if self.discarding => {
                    self.start = self.buf.len();
                    self.next_index = 0;
                    return None;
                }
                // No newline yet: wait for more, unless the partial line has
                // already passed the limit, which is reported exactly once.
                None => {
                    let pending = self.buf.len() - self.start;
                    if pending > self.max_frame {
                        self.start = self.buf.len();
                        self.next_index = 0;
                        self.discarding = true;
                        return Some(Decoded::TooLarge {
                            limit: self.max_frame,
                        });
                    }
                    self.next_index = pending;
                    return None;
                }
            }
        }
    }

    /// At EOF: the number of bytes of an unterminated final fragment (a
    /// truncated frame that must not be dispatched), if there is one.
    pub fn finish(&mut self) -> Option<usize> {
        let pending = self.buffered();
        let truncated = &self.buf[self.start..];
        let blank = truncated.iter().all(u8::is_ascii_whitespace);
        self.buf.clear();
        self.start = 0;
        self.next_index = 0;
        let was_discarding = std::mem::replace(&mut self.discarding, false);
        (pending > 0 && !blank && !was_discarding).then_some(pending)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frames_with_chunks(input: &[u8], max: usize, chunk: usize) -> Vec<Decoded> {
        let mut framer = Framer::new(max);
        let mut out = Vec::new();
        for piece in input.chunks(chunk.max(1)) {
            framer.push(piece);
            while let Some(d) = framer.next_frame() {
                out.push(d);
            }
            assert!(framer.buffered() <= max + piece.len());
        }
        out
    }

    #[test]
    fn a_half_sent_line_is_discarded_and_whole_lines_stay() {
        let mut framer = Framer::new(64);
        framer.push(b"{\"a\":1}\n{\"b\":");
        framer.discard_partial();
        framer.push(b"{\"c\":3}\n");
        assert_eq!(framer.next_frame(), Some(Decoded::Frame(b"{\"a\":1}".to_vec())));
        assert_eq!(framer.next_frame(), Some(Decoded::Frame(b"{\"c\":3}".to_vec())));
        assert_eq!(framer.next_frame(), None);

        let mut skipping = Framer::new(4);
        skipping.push(b"0123456789");
        assert_eq!(skipping.next_frame(), Some(Decoded::TooLarge { limit: 4 }));
        skipping.discard_partial();
        skipping.push(b"ok\n");
        assert_eq!(skipping.next_frame(), Some(Decoded::Frame(b"ok".to_vec())));
    }

    #[test]
    fn a_verbatim_framer_keeps_carriage_returns_and_blank_lines() {
        let mut f = Framer::verbatim(64);
        f.push(b"a\r\n\n  \n\xff\n");
        let mut lines = Vec::new();
        while let Some(Decoded::Frame(line)) = f.next_frame() {
            lines.push(line);
        }
        assert_eq!(lines, [&b"a\r"[..], b"", b"  ", b"\xff"]);
    }

    #[test]
    fn same_frames_whatever_the_read_sizes() {
        let input = b"{\"a\":1}\r\n\n  \n{\"b\":2}\n0123456789ABCDEF-too-long\n{\"c\":3}\nxxxxxxxxxxxxxxxxxxxxxxxxx\n[1]\ntail";
        let expected = frames_with_chunks(input, 16, input.len());
        assert_eq!(
            expected,
            vec![
                Decoded::Frame(b"{\"a\":1}".to_vec()),
                Decoded::Frame(b"{\"b\":2}".to_vec()),
                Decoded::TooLarge { limit: 16 },
                Decoded::Frame(b"{\"c\":3}".to_vec()),
                Decoded::TooLarge { limit: 16 },
                Decoded::Frame(b"[1]".to_vec()),
            ]
        );
        for chunk in 1..input.len() {
            assert_eq!(
                frames_with_chunks(input, 16, chunk),
                expected,
                "chunk size {chunk}"
            );
        }
    }

    #[test]
    fn line_of_exactly_the_limit_is_accepted() {
        let mut input = vec![b'x'; 8];
        input.push(b'\n');
        for chunk in 1..=input.len() {
            assert_eq!(
                frames_with_chunks(&input, 8, chunk),
                vec![Decoded::Frame(vec![b'x'; 8])]
            );
        }
    }

    #[test]
    fn oversize_is_reported_once_and_memory_stays_bounded() {
        let mut framer = Framer::new(1024);
        let mut reports = 0;
        for _ in 0..1000 {
            framer.push(&[b'a'; 4096]);
            while let Some(d) = framer.next_frame() {
                assert_eq!(d, Decoded::TooLarge { limit: 1024 });
                reports += 1;
            }
            assert!(framer.buffered() <= 1024 + 4096);
        }
        framer.push(b"\n{}\n");
        assert_eq!(framer.next_frame(), Some(Decoded::Frame(b"{}".to_vec())));
        assert_eq!(reports, 1);
    }

    #[test]
    fn a_line_at_the_limit_is_handed_over_not_copied_and_the_rest_kept() {
        let max = 1 << 20;
        let mut framer = Framer::new(max);
        // The trailing CR counts toward the limit.
        let mut line = vec![b'x'; max - 1];
        line.extend_from_slice(b"\r\n{\"next\":1}\n{\"par");
        for chunk in line.chunks(64 * 1024) {
            framer.push(chunk);
            assert!(
                framer.buf.capacity() <= max + 64 * 1024 + 2,
                "{}",
                framer.buf.capacity()
            );
        }
        let Some(Decoded::Frame(frame)) = framer.next_frame() else {
            panic!("a frame")
        };
        assert_eq!(frame.len(), max - 1, "CR stripped");
        assert!(frame.iter().all(|&b| b == b'x'));
        assert_eq!(
            framer.next_frame(),
            Some(Decoded::Frame(b"{\"next\":1}".to_vec()))
        );
        assert_eq!(framer.next_frame(), None);
        framer.push(b"tial\":2}\n");
        assert_eq!(
            framer.next_frame(),
            Some(Decoded::Frame(b"{\"partial\":2}".to_vec()))
        );
        assert!(
            framer.buf.capacity() < max,
            "the big line's memory went with it"
        );
    }

    #[test]
    fn unterminated_tail_is_truncated_not_a_frame() {
        let mut framer = Framer::new(64);
        framer.push(b"{\"a\":1}\n{\"jsonrpc\":");
        assert_eq!(
            framer.next_frame(),
            Some(Decoded::Frame(b"{\"a\":1}".to_vec()))
        );
        assert_eq!(framer.next_frame(), None);
        assert_eq!(framer.finish(), Some(11));
        let mut framer = Framer::new(64);
        framer.push(b"{}\n  ");
        assert!(framer.next_frame().is_some());
        assert_eq!(framer.finish(), None);
    }
}
