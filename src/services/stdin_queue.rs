//! A child's stdin, bounded: bytes accepted for a child and not yet taken by
//! its pipe. Shared by `process.*` and the backend bridge.
//!
//! One flat buffer per child, written from its front: a million one-byte
//! writes cost a million bytes, not a million allocations, so the limit
//! bounds the memory itself (capacity grows geometrically but never past
//! the limit), and a message is one copy in.

use std::io;

use crate::engine::host::{ChildKey, Host};

/// A drained queue keeps at most this much capacity for the next burst.
const KEEP_CAPACITY: usize = 64 * 1024;

/// Bytes waiting for one child's stdin pipe.
#[derive(Debug, Default)]
pub struct StdinQueue {
    /// Bytes from `start` on wait; those before it were written.
    bytes: Vec<u8>,
    start: usize,
    /// Close the pipe once the queue is written.
    close_when_empty: bool,
}

/// The pipe after a flush.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flushed {
    /// Open; bytes may still wait for it to drain.
    Open,
    /// Closed as asked, every byte written first.
    Closed,
    /// Broken: the child closed its end or exited; waiting bytes are lost.
    Broken,
}

impl StdinQueue {
    /// Bytes waiting.
    pub fn pending(&self) -> usize {
        self.bytes.len() - self.start
    }

    /// True once a close was asked for.
    pub fn is_closing(&self) -> bool {
        self.close_when_empty
    }

    /// Queues `data` whole, or refuses it (returning the bytes already
    /// waiting) when that would pass `limit`.
    pub fn push(&mut self, data: &[u8], limit: usize) -> Result<(), usize> {
        let pending = self.pending();
        if pending.saturating_add(data.len()) > limit {
            return Err(pending);
        }
        self.reserve(data.len(), limit);
        self.bytes.extend_from_slice(data);
        Ok(())
    }

    /// Queues `line` and a newline, with no limit (the caller checked it).
    pub fn push_line(&mut self, line: &[u8]) {
        self.reserve(line.len() + 1, usize::MAX);
        self.bytes.extend_from_slice(line);
        self.bytes.push(b'\n');
    }

    /// Room for `more` bytes: written bytes are dropped from the front
    /// first when that makes room, then capacity grows geometrically, never
    /// past what `limit` can need.
    fn reserve(&mut self, more: usize, limit: usize) {
        let pending = self.pending();
        let needed = pending + more;
        if self.bytes.len() + more <= self.bytes.capacity() {
            return;
        }
        if self.start > 0 {
            self.bytes.drain(..self.start);
            self.start = 0;
        }
        if needed > self.bytes.capacity() {
            let target = (self.bytes.capacity() * 2)
                .max(needed)
                .min(limit.max(needed));
            self.bytes.reserve_exact(target - self.bytes.len());
        }
    }

    /// Asks for the pipe to be closed once every waiting byte is written.
    pub fn close_when_empty(&mut self) {
        self.close_when_empty = true;
    }

    /// Writes waiting bytes until the pipe is full or the queue is empty;
    /// closes the pipe when asked to and the queue is empty. A broken pipe
    /// drops the queue.
    pub fn flush(&mut self, host: &mut dyn Host, key: ChildKey) -> Flushed {
        while self.pending() > 0 {
            match host.write_stdin(key, &self.bytes[self.start..]) {
                Ok(n) => {
                    self.start += n;
                    if self.pending() == 0 {
                        self.bytes.clear();
                        self.start = 0;
                        self.bytes.shrink_to(KEEP_CAPACITY);
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Flushed::Open,
                Err(e) => {
                    if e.kind() != io::ErrorKind::BrokenPipe {
                        log::debug!("writing the stdin of child {key:?}: {e}");
                    }
                    self.bytes = Vec::new();
                    self.start = 0;
                    host.close_stdin(key);
                    return Flushed::Broken;
                }
            }
        }
        if self.close_when_empty {
            host.close_stdin(key);
            return Flushed::Closed;
        }
        Flushed::Open
    }

    /// The queue's allocation, for tests of its bound.
    #[cfg(test)]
    pub fn capacity(&self) -> usize {
        self.bytes.capacity()
    }
}
