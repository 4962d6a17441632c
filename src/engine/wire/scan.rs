//! The one pass over a frame: JSON syntax, string escapes, raw control
//! bytes and nesting depth checked together, and an object's envelope
//! fields (`jsonrpc`, `id`, `method`, `params`, `result`, `error`) found as
//! spans of the text, without building or copying anything.
//!
//! The input is `&str`, so UTF-8 was checked before (by std's validator,
//! word at a time); inside strings the scanner skips non-ASCII bytes as
//! they are, and outside strings any of them is a syntax error.
//!
//! The scanner only says yes or no. Its "yes" must be exactly the
//! reference verdict (serde_json's, in `reference.rs`, which the gateway
//! used before): the `scan` fuzz target compares the two on every input,
//! and the table in `tests.rs` pins the cases by name. On "no", the caller
//! asks the reference what is wrong, so every parse error keeps serde_json's
//! words.

use std::ops::Range;

use super::MAX_DEPTH;

/// What a lone surrogate (a `\u` escape of half a UTF-16 pair) in a string
/// does to the verdict: the lone-surrogate rule in docs/protocol.md.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Surrogates {
    /// Refused anywhere: the frame is read as text.
    Refuse,
    /// Allowed: the frame is forwarded as it came (a backend reads it); a
    /// field the gateway itself reads (`id`, `method`) is checked when read.
    Allow,
}

/// The envelope of one JSON object: where each field's value sits in the
/// text. A repeated field keeps its last value, as a JSON object would;
/// unknown fields are skipped.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Spans {
    /// `jsonrpc`.
    pub jsonrpc: Option<Member>,
    /// `id`.
    pub id: Option<Member>,
    /// `method`.
    pub method: Option<Member>,
    /// `params`.
    pub params: Option<Member>,
    /// `result`.
    pub result: Option<Member>,
    /// `error`.
    pub error: Option<Member>,
}

/// One envelope field's value. Offsets are `u32` so that the envelope
/// stays small to move (a frame is at most `--max-frame-bytes`, which is
/// below 4 GiB).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Member {
    start: u32,
    end: u32,
    values: u32,
    escaped: bool,
}

impl Member {
    /// A member at `span` holding at most `values` JSON values; `escaped`
    /// for a string with an escape.
    #[inline]
    pub fn new(span: Range<usize>, values: usize, escaped: bool) -> Member {
        // Every text scanned is a frame or a line, at most
        // --max-frame-bytes, which the configuration bounds below 4 GiB;
        // a value count is at most the text's length.
        debug_assert!(span.end <= u32::MAX as usize && values <= span.end);
        Member {
            start: span.start as u32,
            end: span.end as u32,
            values: values as u32,
            escaped,
        }
    }

    /// Where it sits in the text.
    pub fn span(&self) -> Range<usize> {
        self.start as usize..self.end as usize
    }

    /// An upper bound on the JSON values it holds, counted as
    /// `value_count` counts them (one, plus one per `,`, `:`, `[` and `{`
    /// outside strings), so a value can be refused for its size before
    /// anything parses it.
    pub fn values(&self) -> usize {
        self.values as usize
    }

    /// A string holding an escape (its text is not its value as it stands).
    pub fn escaped(&self) -> bool {
        self.escaped
    }
}

/// What a valid frame is, at its top level.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scanned {
    /// An object, with its envelope.
    Object(Spans),
    /// An array.
    Array,
    /// A string, number, `true`, `false` or `null`.
    Scalar,
}

/// Scans one JSON text: `None` if it is not valid JSON, nests past
/// [`MAX_DEPTH`], or (with [`Surrogates::Refuse`]) holds a lone surrogate.
pub fn scan(text: &str, surrogates: Surrogates) -> Option<Scanned> {
    Scanner::new(text, surrogates == Surrogates::Allow, MAX_DEPTH).top()
}

/// [`scan`] of a line from a backend, which the gateway forwards and never
/// parses: lone surrogates allowed and no depth limit (a backend may nest
/// deeper than a client may; only the gateway's own parses need the bound).
pub fn scan_line(text: &str) -> Option<Scanned> {
    Scanner::new(text, true, usize::MAX).top()
}

/// The members of the object at `object` in `text` (valid JSON): each
/// member's name as the envelope fields are named (`None` when it is not
/// short ASCII: see [`short_name`]) and its value's span.
pub fn members(
    text: &str,
    object: Range<usize>,
) -> impl Iterator<Item = (Option<ShortName>, Range<usize>)> + '_ {
    let mut s = Scanner::new(text, true, usize::MAX);
    s.i = object.start + 1;
    let mut done = false;
    std::iter::from_fn(move || {
        if done {
            return None;
        }
        s.ws();
        if s.peek()? != b'"' {
            done = true;
            return None;
        }
        let key_start = s.i + 1;
        let escaped = s.string()?;
        let name = short_name(&s.b[key_start..s.i - 1], escaped);
        s.expect(b':')?;
        s.ws();
        let value = s.item(&mut done)?;
        Some((name, value))
    })
}

/// The elements of the array at `array` in `text` (valid JSON), as spans.
pub fn elements(text: &str, array: Range<usize>) -> impl Iterator<Item = Range<usize>> + '_ {
    let mut s = Scanner::new(text, true, usize::MAX);
    s.i = array.start + 1;
    let mut done = false;
    std::iter::from_fn(move || {
        if done {
            return None;
        }
        s.ws();
        if s.peek()? == b']' {
            done = true;
            return None;
        }
        s.item(&mut done)
    })
}

/// A member name of at most 8 ASCII bytes, escapes decoded: enough for
/// every name the gateway looks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShortName {
    bytes: [u8; 8],
    len: usize,
}

impl ShortName {
    /// The name's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len]
    }
}

/// The name a raw (still escaped, when `escaped`) member name spells, when
/// it is short ASCII without control characters: `\u0069d` is `id`.
pub fn short_name(raw: &[u8], escaped: bool) -> Option<ShortName> {
    let mut name = ShortName {
        bytes: [0; 8],
        len: 0,
    };
    if !escaped {
        if raw.len() > name.bytes.len() {
            return None;
        }
        name.bytes[..raw.len()].copy_from_slice(raw);
        name.len = raw.len();
        return Some(name);
    }
    let mut i = 0;
    while i < raw.len() {
        let c = match raw[i] {
            b'\\' => {
                let (c, used) = match raw[i + 1] {
                    b'u' => (hex4(&raw[i + 2..i + 6]).unwrap_or(0x100), 6),
                    b'"' => (u32::from(b'"'), 2),
                    b'\\' => (u32::from(b'\\'), 2),
                    b'/' => (u32::from(b'/'), 2),
                    // \b \f \n \r \t: control characters, in no name we read.
                    _ => (0, 2),
                };
                i += used;
                c
            }
            c => {
                i += 1;
                u32::from(c)
            }
        };
        if !(0x20..=0x7f).contains(&c) || name.len == name.bytes.len() {
            return None;
        }
        name.bytes[name.len] = c as u8;
        name.len += 1;
    }
    Some(name)
}

impl<'a> Scanner<'a> {
    fn new(text: &'a str, allow_lone: bool, max_depth: usize) -> Scanner<'a> {
        Scanner {
            b: text.as_bytes(),
            i: 0,
            allow_lone,
            max_depth,
            spill: Vec::new(),
            structural: 0,
        }
    }

    /// The whole text: one value, whitespace around it.
    fn top(mut self) -> Option<Scanned> {
        let s = &mut self;
        s.ws();
        let scanned = match s.peek()? {
            b'{' => Scanned::Object(s.envelope()?),
            b'[' => {
                s.value()?;
                Scanned::Array
            }
            _ => {
                s.value()?;
                Scanned::Scalar
            }
        };
        s.ws();
        (s.i == s.b.len()).then_some(scanned)
    }
}

/// Where the first byte of `text` at or after `from` that is not JSON
/// whitespace sits (`text.len()` when there is none).
#[inline]
pub(super) fn skip_ws(text: &str, from: usize) -> usize {
    let b = text.as_bytes();
    let mut i = from;
    while let Some(b' ' | b'\t' | b'\n' | b'\r') = b.get(i) {
        i += 1;
    }
    i
}

/// The first byte of `text` that is not JSON whitespace.
#[inline]
pub(super) fn first_byte(text: &str) -> Option<u8> {
    text.as_bytes().get(skip_ws(text, 0)).copied()
}

/// The end of the JSON value that starts at `from` (whitespace before it
/// allowed), in text already known to be valid: a batch member's extent.
pub(super) fn value_end(text: &str, from: usize) -> Option<usize> {
    let mut s = Scanner::new(text, true, usize::MAX);
    s.i = from;
    s.ws();
    s.value()?;
    Some(s.i)
}

/// Byte classes inside a string.
const PLAIN: u8 = 0;
const QUOTE: u8 = 1;
const BACKSLASH: u8 = 2;
const CONTROL: u8 = 3;

/// The class of every byte inside a string: below U+0020 must be escaped,
/// `"` ends it, `\` starts an escape, anything else (non-ASCII included,
/// already valid UTF-8) is taken as it is.
const STRING_CLASS: [u8; 256] = {
    let mut table = [PLAIN; 256];
    let mut b = 0;
    while b < 0x20 {
        table[b] = CONTROL;
        b += 1;
    }
    table[b'"' as usize] = QUOTE;
    table[b'\\' as usize] = BACKSLASH;
    table
};

/// How many bytes at the start of `rest` need nothing inside a string (no
/// `"`, `\\` or control byte): eight at a time while they last, as a word
/// whose bytes are tested together, then one at a time.
#[inline]
fn plain_run(rest: &[u8]) -> usize {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    // A byte of `x` is zero exactly where this has its high bit set, for
    // the lowest such byte (higher ones may be false alarms; only the
    // lowest is used).
    let zero_bytes = |x: u64| x.wrapping_sub(ONES) & !x & HIGHS;
    let mut i = 0;
    while let Some(word) = rest.get(i..i + 8) {
        let v = u64::from_le_bytes(word.try_into().expect("eight bytes"));
        let quote = zero_bytes(v ^ (ONES * u64::from(b'"')));
        let backslash = zero_bytes(v ^ (ONES * u64::from(b'\\')));
        // Below 0x20: subtracting 0x20 borrows into the high bit, for a
        // byte that did not have it set already.
        let control = v.wrapping_sub(ONES * 0x20) & !v & HIGHS;
        let found = quote | backslash | control;
        if found != 0 {
            return i + (found.trailing_zeros() / 8) as usize;
        }
        i += 8;
    }
    i + rest[i..]
        .iter()
        .position(|&c| STRING_CLASS[usize::from(c)] != PLAIN)
        .unwrap_or(rest.len() - i)
}

/// A member name of at most eight bytes as one word (zero-padded), so the
/// envelope's names are told apart by integer comparisons; `0` for a longer
/// name. A name cannot hold a NUL byte, so padding never makes two equal.
#[inline]
fn name_word(name: &[u8]) -> u64 {
    if name.len() > 8 {
        return 0;
    }
    let mut word = [0u8; 8];
    word[..name.len()].copy_from_slice(name);
    u64::from_le_bytes(word)
}

const fn word(name: &[u8]) -> u64 {
    let mut bytes = [0u8; 8];
    let mut i = 0;
    while i < name.len() {
        bytes[i] = name[i];
        i += 1;
    }
    u64::from_le_bytes(bytes)
}

/// The low `bytes` bytes of a word.
const fn mask(bytes: u32) -> u64 {
    (1u64 << (bytes * 8)) - 1
}

const JSONRPC: u64 = word(b"jsonrpc");
const ID: u64 = word(b"id");
const METHOD: u64 = word(b"method");
const PARAMS: u64 = word(b"params");
const RESULT: u64 = word(b"result");
const ERROR: u64 = word(b"error");

/// Four hex digits' value.
fn hex4(digits: &[u8]) -> Option<u32> {
    let mut v = 0u32;
    for &d in digits {
        let n = match d {
            b'0'..=b'9' => d - b'0',
            b'a'..=b'f' => d - b'a' + 10,
            b'A'..=b'F' => d - b'A' + 10,
            _ => return None,
        };
        v = v << 4 | u32::from(n);
    }
    Some(v)
}

struct Scanner<'a> {
    b: &'a [u8],
    i: usize,
    allow_lone: bool,
    /// Deepest nesting allowed.
    max_depth: usize,
    /// The open containers past the 128 a `u128` holds (a backend line
    /// may nest without limit).
    spill: Vec<u8>,
    /// `,`, `:`, `[` and `{` seen outside strings (see [`Member::values`]).
    structural: usize,
}

impl Scanner<'_> {
    #[inline]
    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    #[inline]
    fn ws(&mut self) {
        // Compact JSON has none: one comparison says so.
        while let Some(&c) = self.b.get(self.i) {
            if c > b' ' || !matches!(c, b' ' | b'\t' | b'\n' | b'\r') {
                return;
            }
            self.i += 1;
        }
    }

    /// Consumes `byte` after optional whitespace.
    #[inline]
    fn expect(&mut self, byte: u8) -> Option<()> {
        self.ws();
        (self.peek()? == byte).then(|| self.i += 1)
    }

    /// The top-level object, its envelope fields recorded: `self.i` is at `{`.
    fn envelope(&mut self) -> Option<Spans> {
        let mut spans = Spans::default();
        self.i += 1;
        self.ws();
        if self.peek()? == b'}' {
            self.i += 1;
            return Some(spans);
        }
        loop {
            self.ws();
            if self.peek()? != b'"' {
                return None;
            }
            let name = match self.known_name() {
                Some(name) => name,
                None => {
                    let key_start = self.i + 1;
                    let escaped = self.string()?;
                    let key = &self.b[key_start..self.i - 1];
                    if escaped {
                        short_name(key, true).map_or(0, |name| name_word(name.as_bytes()))
                    } else {
                        name_word(key)
                    }
                }
            };
            self.expect(b':')?;
            self.ws();
            let (start, structural) = (self.i, self.structural);
            // Strings and numbers, the envelope's usual values, directly.
            let escaped = match self.peek()? {
                b'"' => self.string()?,
                b'-' | b'0'..=b'9' => {
                    self.number()?;
                    false
                }
                _ => {
                    self.value_at(1)?;
                    false
                }
            };
            let member = Member::new(start..self.i, 1 + self.structural - structural, escaped);
            let slot = match name {
                JSONRPC => &mut spans.jsonrpc,
                ID => &mut spans.id,
                METHOD => &mut spans.method,
                PARAMS => &mut spans.params,
                RESULT => &mut spans.result,
                ERROR => &mut spans.error,
                _ => &mut None,
            };
            *slot = Some(member);
            self.ws();
            match self.peek()? {
                b',' => self.i += 1,
                b'}' => {
                    self.i += 1;
                    return Some(spans);
                }
                _ => return None,
            }
        }
    }

    /// At a member name's opening quote: an envelope name written plainly
    /// (the usual case), told by one comparison of the word after the quote
    /// (the name and its closing quote), and skipped; `None` for any other
    /// name, which is then scanned as a string.
    #[inline]
    fn known_name(&mut self) -> Option<u64> {
        let bytes = self.b.get(self.i + 1..self.i + 9)?;
        let w = u64::from_le_bytes(bytes.try_into().expect("eight bytes"));
        let (name, len) = if w == word(b"jsonrpc\"") {
            (JSONRPC, 7)
        } else if w & mask(7) == word(b"method\"") {
            (METHOD, 6)
        } else if w & mask(3) == word(b"id\"") {
            (ID, 2)
        } else if w & mask(7) == word(b"params\"") {
            (PARAMS, 6)
        } else if w & mask(7) == word(b"result\"") {
            (RESULT, 6)
        } else if w & mask(6) == word(b"error\"") {
            (ERROR, 5)
        } else {
            return None;
        };
        self.i += len + 2;
        Some(name)
    }

    /// One member's value or one element of a container known to be valid:
    /// its span, with the `,` after it consumed; `done` once none follows.
    fn item(&mut self, done: &mut bool) -> Option<Range<usize>> {
        let start = self.i;
        self.value()?;
        let value = start..self.i;
        self.ws();
        if self.peek() == Some(b',') {
            self.i += 1;
        } else {
            *done = true;
        }
        Some(value)
    }

    /// One value at the top level.
    fn value(&mut self) -> Option<()> {
        self.value_at(0)
    }

    /// One value inside `depth` open containers, iteratively: a bit per
    /// open container (1 for an object) is the stack, the innermost 128 in
    /// a `u128` (enough for [`MAX_DEPTH`]), any deeper ones spilled.
    fn value_at(&mut self, depth: usize) -> Option<()> {
        const _: () = assert!(MAX_DEPTH < 128);
        let mut stack: u128 = 0;
        let mut open = 0usize;
        'value: loop {
            // A value starts here.
            match self.peek()? {
                b'"' => {
                    self.string()?;
                }
                c @ (b'{' | b'[') => {
                    if depth + open + 1 > self.max_depth {
                        return None;
                    }
                    self.i += 1;
                    self.structural += 1;
                    self.ws();
                    let object = c == b'{';
                    let close = if object { b'}' } else { b']' };
                    if self.peek()? == close {
                        self.i += 1;
                    } else {
                        if open >= 128 {
                            self.spill.push((stack >> 127) as u8);
                        }
                        stack = stack << 1 | u128::from(object);
                        open += 1;
                        if object {
                            self.key()?;
                        }
                        continue 'value;
                    }
                }
                b't' => self.literal(b"true")?,
                b'f' => self.literal(b"false")?,
                b'n' => self.literal(b"null")?,
                b'-' | b'0'..=b'9' => self.number()?,
                _ => return None,
            }
            // A value ended: close containers until one takes another value.
            loop {
                if open == 0 {
                    return Some(());
                }
                self.ws();
                let object = stack & 1 == 1;
                match self.peek()? {
                    b',' => {
                        self.i += 1;
                        self.structural += 1;
                        self.ws();
                        if object {
                            self.key()?;
                        }
                        continue 'value;
                    }
                    b'}' if object => {}
                    b']' if !object => {}
                    _ => return None,
                }
                self.i += 1;
                stack >>= 1;
                open -= 1;
                if open >= 128 {
                    stack |= u128::from(self.spill.pop().unwrap_or(0)) << 127;
                }
            }
        }
    }

    /// A member's key and its `:`, leaving `self.i` at the value: after `{`
    /// or `,` (whitespace skipped).
    #[inline]
    fn key(&mut self) -> Option<()> {
        if self.peek()? != b'"' {
            return None;
        }
        self.string()?;
        self.expect(b':')?;
        self.structural += 1;
        self.ws();
        Some(())
    }

    fn literal(&mut self, word: &[u8]) -> Option<()> {
        let end = self.i + word.len();
        (self.b.get(self.i..end)? == word).then(|| self.i = end)
    }

    /// `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`; what follows is
    /// checked by the caller (a delimiter or the end).
    fn number(&mut self) -> Option<()> {
        if self.peek() == Some(b'-') {
            self.i += 1;
        }
        match self.peek()? {
            b'0' => self.i += 1,
            b'1'..=b'9' => self.digits(),
            _ => return None,
        }
        if self.peek() == Some(b'.') {
            self.i += 1;
            self.some_digits()?;
        }
        if let Some(b'e' | b'E') = self.peek() {
            self.i += 1;
            if let Some(b'+' | b'-') = self.peek() {
                self.i += 1;
            }
            self.some_digits()?;
        }
        Some(())
    }

    #[inline]
    fn digits(&mut self) {
        while let Some(b'0'..=b'9') = self.b.get(self.i) {
            self.i += 1;
        }
    }

    fn some_digits(&mut self) -> Option<()> {
        let start = self.i;
        self.digits();
        (self.i > start).then_some(())
    }

    /// A string, `self.i` at its opening quote; leaves `self.i` after the
    /// closing one. Returns whether it held an escape.
    #[inline]
    fn string(&mut self) -> Option<bool> {
        self.i += 1;
        let mut escaped = false;
        loop {
            // The common run: bytes that need nothing, eight at a time.
            self.i += plain_run(self.b.get(self.i..)?);
            match STRING_CLASS[usize::from(*self.b.get(self.i)?)] {
                QUOTE => {
                    self.i += 1;
                    return Some(escaped);
                }
                BACKSLASH => {
                    escaped = true;
                    self.escape()?;
                }
                _ => return None,
            }
        }
    }

    /// One escape, `self.i` at its backslash.
    fn escape(&mut self) -> Option<()> {
        match *self.b.get(self.i + 1)? {
            b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => {
                self.i += 2;
                Some(())
            }
            b'u' => {
                let unit = hex4(self.b.get(self.i + 2..self.i + 6)?)?;
                self.i += 6;
                match unit {
                    0xD800..=0xDBFF => {
                        // A high surrogate pairs with a low one that follows.
                        let low = self
                            .b
                            .get(self.i..self.i + 6)
                            .filter(|e| e.starts_with(b"\\u"))
                            .and_then(|e| hex4(&e[2..]));
                        match low {
                            Some(0xDC00..=0xDFFF) => {
                                self.i += 6;
                                Some(())
                            }
                            _ => self.allow_lone.then_some(()),
                        }
                    }
                    0xDC00..=0xDFFF => self.allow_lone.then_some(()),
                    _ => Some(()),
                }
            }
            _ => None,
        }
    }
}
