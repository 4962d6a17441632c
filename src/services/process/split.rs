//! Keeping every `process.output` line short.
//!
//! A pipe read can return 64 KiB, and JSON escaping can make text longer
//! still (a control byte becomes `\u0001`). Common line readers refuse lines
//! over 64 KiB (Python's asyncio `StreamReader` among them), so one read is
//! cut into events whose `data` is at most `--coalesce-cap` bytes *after*
//! escaping: the same bound merged events respect. Cuts fall on character
//! boundaries (UTF-8) or on whole base64 quads, so the pieces stay valid on
//! their own and concatenated.

/// An upper bound of the escaped size of the character starting with `lead`
/// (`text` is valid UTF-8, so the lead byte gives its length): control
/// characters become `\u00XX` (6), quote and backslash gain a backslash (2),
/// and a 3-byte character led by `0xE2` may be U+2028 or U+2029, written as
/// `\u2028` (6). Returns `(length, cost)`.
fn char_cost(lead: u8) -> (usize, usize) {
    match lead {
        0x00..=0x1f => (1, 6),
        b'"' | b'\\' => (1, 2),
        0x20..=0x7f => (1, 1),
        0xe2 => (3, 6),
        0xf0..=0xff => (4, 4),
        0xe0..=0xef => (3, 3),
        _ => (2, 2),
    }
}

/// Cuts `text` into pieces whose escaped size is at most `cap` (a piece
/// holds at least one character, whatever the cap).
pub(crate) fn utf8_pieces(text: String, cap: usize) -> Vec<String> {
    // Nothing can escape to more than six times its size.
    if text.len().saturating_mul(6) <= cap {
        return vec![text];
    }
    let bytes = text.as_bytes();
    let mut cuts = Vec::new();
    let mut start = 0;
    let mut cost = 0;
    let mut i = 0;
    while i < bytes.len() {
        let (len, c) = char_cost(bytes[i]);
        if i > start && cost + c > cap {
            cuts.push(i);
            start = i;
            cost = 0;
        }
        cost += c;
        i += len;
    }
    split_at(text, &cuts)
}

/// Splits `text` at the ascending byte offsets `cuts` (character
/// boundaries), copying only the tails: the first piece keeps the buffer.
fn split_at(mut text: String, cuts: &[usize]) -> Vec<String> {
    let mut pieces = Vec::with_capacity(cuts.len() + 1);
    for &cut in cuts.iter().rev() {
        pieces.push(text.split_off(cut));
    }
    pieces.push(text);
    pieces.reverse();
    pieces
}

/// Cuts base64 text into pieces of at most `cap` characters, each a whole
/// number of 4-character quads (at least one).
pub(crate) fn base64_pieces(text: String, cap: usize) -> Vec<String> {
    let step = (cap / 4 * 4).max(4);
    if text.len() <= step {
        return vec![text];
    }
    // Base64 is ASCII, so every index is a character boundary.
    let cuts: Vec<usize> = (step..text.len()).step_by(step).collect();
    split_at(text, &cuts)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The exact escaped size serde_json (plus U+2028/U+2029 escaping) gives.
    fn escaped_len(s: &str) -> usize {
        let json = serde_json::to_string(s).unwrap();
        json.len() - 2 + 3 * s.matches(['\u{2028}', '\u{2029}']).count()
    }

    #[test]
    fn utf8_pieces_respect_the_escaped_cap_and_join_back() {
        let text = "ab\"\\\n\u{1}€😀\u{2028}xyz".repeat(500);
        for cap in [1, 7, 12, 100, 4096] {
            let pieces = utf8_pieces(text.clone(), cap);
            assert_eq!(pieces.concat(), text, "cap {cap}");
            for p in &pieces {
                assert!(!p.is_empty());
                let single_char = p.chars().count() == 1;
                assert!(single_char || escaped_len(p) <= cap, "cap {cap}: {p:?}");
            }
        }
    }

    #[test]
    fn short_text_is_one_piece() {
        assert_eq!(utf8_pieces("hello".into(), 30), ["hello"]);
        assert_eq!(utf8_pieces("a".repeat(100), 100), ["a".repeat(100)]);
        assert_eq!(utf8_pieces("a".repeat(101), 100).len(), 2);
    }

    #[test]
    fn base64_pieces_are_whole_quads() {
        let text = "QUJD".repeat(100) + "RA==";
        let pieces = base64_pieces(text.clone(), 42);
        assert_eq!(pieces.concat(), text);
        for p in &pieces {
            assert!(p.len() % 4 == 0 && p.len() <= 40);
        }
        assert_eq!(base64_pieces("QUJD".into(), 2), ["QUJD"]);
    }
}
