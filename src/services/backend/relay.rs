//! The backend's stderr, relayed to the gateway's line by line: a backend
//! line and a gateway log line never interleave mid-line, each line is at
//! most [`LINE_MAX`] bytes (one atomic pipe write), and nothing waits.

/// Longest relayed line, `\n` included: `PIPE_BUF`, so each line is one
/// atomic write that never mixes with another writer's.
pub(crate) const LINE_MAX: usize = 4096;

/// Splits stderr bytes into whole lines.
#[derive(Debug, Default)]
pub(crate) struct LineRelay {
    partial: Vec<u8>,
    /// The current line passed [`LINE_MAX`]: the rest of it is skipped.
    skipping: bool,
    /// Lines cut at [`LINE_MAX`].
    pub(crate) truncated: u64,
}

impl LineRelay {
    /// Feeds bytes; `emit` gets each complete line, `\n`-terminated.
    pub(crate) fn push(&mut self, mut bytes: &[u8], emit: &mut dyn FnMut(&[u8])) {
        while !bytes.is_empty() {
            let newline = bytes.iter().position(|&b| b == b'\n');
            let (chunk, rest, ends) = match newline {
                Some(i) => (&bytes[..i], &bytes[i + 1..], true),
                None => (bytes, &[][..], false),
            };
            bytes = rest;
            if !self.skipping {
                let room = LINE_MAX - 1 - self.partial.len();
                if chunk.len() > room {
                    self.partial.extend_from_slice(&chunk[..room]);
                    self.truncated += 1;
                    self.skipping = true;
                    self.partial.push(b'\n');
                    emit(&self.partial);
                    self.partial.clear();
                } else {
                    self.partial.extend_from_slice(chunk);
                }
            }
            if ends {
                if !self.skipping {
                    self.partial.push(b'\n');
                    emit(&self.partial);
                    self.partial.clear();
                }
                self.skipping = false;
            }
        }
    }

    /// The stream ended: a last line without `\n` is relayed too.
    pub(crate) fn finish(&mut self, emit: &mut dyn FnMut(&[u8])) {
        if !self.partial.is_empty() && !self.skipping {
            self.partial.push(b'\n');
            emit(&self.partial);
        }
        self.partial.clear();
        self.skipping = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_whole_capped_and_resynced() {
        let mut relay = LineRelay::default();
        let mut lines: Vec<Vec<u8>> = Vec::new();
        let mut emit = |l: &[u8]| lines.push(l.to_vec());
        relay.push(b"one\ntw", &mut emit);
        relay.push(b"o\n", &mut emit);
        let long = vec![b'x'; 10_000];
        relay.push(&long, &mut emit);
        relay.push(b"tail\nthree", &mut emit);
        relay.finish(&mut emit);
        assert_eq!(lines.len(), 4);
        assert_eq!(lines[0], b"one\n");
        assert_eq!(lines[1], b"two\n");
        assert_eq!(lines[2].len(), LINE_MAX);
        assert!(lines[2].ends_with(b"x\n"));
        assert_eq!(lines[3], b"three\n");
        assert_eq!(relay.truncated, 1);
    }
}
