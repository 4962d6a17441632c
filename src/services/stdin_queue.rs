//! A child's stdin, bounded: bytes accepted for a child and not yet taken by
//! its pipe. Shared by `process.*` and the backend bridge.
//!
//! One ring buffer per child: a million one-byte writes cost a million
//! bytes, not a million allocations, so the limit bounds the memory itself
//! (capacity grows geometrically but never past the limit).

use std::collections::VecDeque;
use std::io;

use crate::engine::host::{ChildKey, Host};

/// A drained queue keeps at most this much capacity for the next burst.
const KEEP_CAPACITY: usize = 64 * 1024;

/// Bytes waiting for one child's stdin pipe.
#[derive(Debug, Default)]
pub struct StdinQueue {
    bytes: VecDeque<u8>,
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
        self.bytes.len()
    }

    /// True once a close was asked for.
    pub fn is_closing(&self) -> bool {
        self.close_when_empty
    }

    /// Queues `data` whole, or refuses it (returning the bytes already
    /// waiting) when that would pass `limit`.
    pub fn push(&mut self, data: &[u8], limit: usize) -> Result<(), usize> {
        if self.bytes.len().saturating_add(data.len()) > limit {
            return Err(self.bytes.len());
        }
        let needed = self.bytes.len() + data.len();
        if needed > self.bytes.capacity() {
            let target = (self.bytes.capacity() * 2)
                .max(needed)
                .min(limit.max(needed));
            self.bytes.reserve_exact(target - self.bytes.len());
        }
        self.bytes.extend(data.iter());
        Ok(())
    }

    /// Asks for the pipe to be closed once every waiting byte is written.
    pub fn close_when_empty(&mut self) {
        self.close_when_empty = true;
    }

    /// Writes waiting bytes until the pipe is full or the queue is empty;
    /// closes the pipe when asked to and the queue is empty. A broken pipe
    /// drops the queue.
    pub fn flush(&mut self, host: &mut dyn Host, key: ChildKey) -> Flushed {
        while !self.bytes.is_empty() {
            let (front, _) = self.bytes.as_slices();
            match host.write_stdin(key, front) {
                Ok(n) => {
                    self.bytes.drain(..n);
                    if self.bytes.is_empty() {
                        self.bytes.shrink_to(KEEP_CAPACITY);
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Flushed::Open,
                Err(e) => {
                    if e.kind() != io::ErrorKind::BrokenPipe {
                        log::debug!("writing the stdin of child {key:?}: {e}");
                    }
                    self.bytes = VecDeque::new();
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
    pub fn capacity(&self) -> usize {
        self.bytes.capacity()
    }
}
