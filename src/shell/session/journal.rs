//! The journal: every byte the session wrote to its clients, in order, kept
//! so that a client that comes back gets what it has not read, from a frame
//! boundary, without a gap and without a duplicate.
//!
//! * The cursor is a count of frames (lines). Frame 0 is the first line
//!   the session wrote; `frames_total` counts the lines written whole.
//! * The journal holds the most recent written bytes that fit in the bound
//!   beside the outbound queue (`bound - queued`), always starting at a
//!   frame boundary. The oldest whole frames leave first; the half-written
//!   frame at the end (a write that stopped inside a line) always stays.
//! * A replay sends the journal's bytes from a frame on, then the queue
//!   takes over where the writer stopped: the bytes of the stream are the
//!   same whoever reads them. Bytes a replay has not sent yet never leave.

use std::collections::VecDeque;

use memchr::{memchr, memchr_iter};

/// Why an attach cannot start at the frame it asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Frames before `first_held` have left the journal.
    Gone {
        /// The first frame still held.
        first_held: u64,
        /// Frames written whole.
        frames_total: u64,
    },
    /// Frame `asked` was never written: only `frames_total` were.
    Future {
        /// The frame asked for.
        asked: u64,
        /// Frames written whole.
        frames_total: u64,
    },
}

/// See the module's contract.
#[derive(Debug)]
pub struct Journal {
    bytes: VecDeque<u8>,
    /// The frame that starts at `bytes[0]`.
    first_frame: u64,
    /// Frames written whole since the session started.
    frames_total: u64,
    /// Bytes the journal and the outbound queue may hold together.
    bound: usize,
    /// The first frame, when it was the session's `gateway.ready`: sent
    /// again to a client that attaches without a cursor.
    ready: Option<Vec<u8>>,
    /// Where a replay stands, as an index into `bytes`; `None` when live.
    replay: Option<usize>,
}

impl Journal {
    /// An empty journal bounded by `bound` bytes (with the queue).
    pub fn new(bound: usize) -> Journal {
        Journal {
            bytes: VecDeque::new(),
            first_frame: 0,
            frames_total: 0,
            bound,
            ready: None,
            replay: None,
        }
    }

    /// Bytes written to the client: kept and counted. Call
    /// [`Journal::trim`] once the write is done.
    pub fn append(&mut self, written: &[u8]) {
        let before = self.frames_total;
        self.bytes.extend(written);
        self.frames_total += memchr_iter(b'\n', written).count() as u64;
        if before == 0 && self.frames_total > 0 && self.first_frame == 0 {
            self.keep_ready();
        }
    }

    /// The oldest frames leave while the journal and the `queued` bytes of
    /// the outbound queue pass the bound.
    pub fn trim(&mut self, queued: usize) {
        self.evict(queued, 0);
    }

    fn keep_ready(&mut self) {
        let (a, b) = self.bytes.as_slices();
        let first: Vec<u8> = match memchr(b'\n', a) {
            Some(end) => a[..=end].to_vec(),
            None => {
                let end = memchr(b'\n', b).expect("a newline was counted");
                a.iter().chain(&b[..=end]).copied().collect()
            }
        };
        let is_ready = memchr::memmem::find(&first, b"\"type\":\"gateway.ready\"").is_some();
        self.ready = is_ready.then_some(first);
    }

    /// Lets the oldest whole frames go while the bound is passed (with
    /// `queued`), or while they come before frame `until`; never a byte a
    /// replay has not sent, never the half-written last frame.
    fn evict(&mut self, queued: usize, until: u64) {
        while self.bytes.len() + queued > self.bound || self.first_frame < until {
            let Some(end) = self.first_newline() else {
                return;
            };
            if self.replay.is_some_and(|at| at <= end) {
                return;
            }
            self.bytes.drain(..=end);
            self.first_frame += 1;
            if let Some(at) = &mut self.replay {
                *at -= end + 1;
            }
        }
    }

    fn first_newline(&self) -> Option<usize> {
        let (a, b) = self.bytes.as_slices();
        memchr(b'\n', a).or_else(|| memchr(b'\n', b).map(|i| a.len() + i))
    }

    /// The client has the first `frames` frames: they may leave now.
    pub fn ack(&mut self, frames: u64) {
        self.evict(0, frames.min(self.frames_total));
    }

    /// Where a replay from frame `from` starts (`None`: from the first
    /// frame not written whole, for a client without a cursor): the frame
    /// and its place in the journal, for [`Journal::replay_from`].
    pub fn locate(&self, from: Option<u64>) -> Result<(u64, usize), Refusal> {
        let from = from.unwrap_or(self.frames_total);
        if from < self.first_frame {
            return Err(Refusal::Gone {
                first_held: self.first_frame,
                frames_total: self.frames_total,
            });
        }
        if from > self.frames_total {
            return Err(Refusal::Future {
                asked: from,
                frames_total: self.frames_total,
            });
        }
        let skip = (from - self.first_frame) as usize;
        if skip == 0 {
            return Ok((from, 0));
        }
        let (a, b) = self.bytes.as_slices();
        let end = memchr_iter(b'\n', a)
            .chain(memchr_iter(b'\n', b).map(|i| a.len() + i))
            .nth(skip - 1)
            .expect("frames_total counts the newlines held");
        Ok((from, end + 1))
    }

    /// Starts a replay at `at` (from [`Journal::locate`], with nothing
    /// appended or let go since).
    pub fn replay_from(&mut self, at: usize) {
        self.replay = (at < self.bytes.len()).then_some(at);
    }

    /// The bytes a replay has still to send, in order.
    pub fn pending_replay(&self) -> (&[u8], &[u8]) {
        let Some(at) = self.replay else {
            return (&[], &[]);
        };
        let (a, b) = self.bytes.as_slices();
        if at < a.len() {
            (&a[at..], b)
        } else {
            (&b[at - a.len()..], &[])
        }
    }

    /// `n` replayed bytes reached the client.
    pub fn replayed(&mut self, n: usize) {
        if let Some(at) = &mut self.replay {
            *at += n;
            if *at >= self.bytes.len() {
                self.replay = None;
            }
        }
    }

    /// A replay is still sending: the queue waits behind it.
    pub fn is_replaying(&self) -> bool {
        self.replay.is_some()
    }

    /// Stops a replay (its client went).
    pub fn stop_replay(&mut self) {
        self.replay = None;
    }

    /// The session's `gateway.ready`, if the stream began with one.
    pub fn ready(&self) -> Option<&[u8]> {
        self.ready.as_deref()
    }

    /// Frames written whole so far.
    pub fn frames_total(&self) -> u64 {
        self.frames_total
    }

    /// The first frame still held.
    pub fn first_held(&self) -> u64 {
        self.first_frame
    }

    /// Bytes held.
    pub fn bytes_held(&self) -> usize {
        self.bytes.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    impl Journal {
        fn record(&mut self, written: &[u8], queued: usize) {
            self.append(written);
            self.trim(queued);
        }

        fn start_replay(&mut self, from: Option<u64>) -> Result<u64, Refusal> {
            let (frame, at) = self.locate(from)?;
            self.replay_from(at);
            Ok(frame)
        }
    }

    fn drain(j: &mut Journal, step: usize) -> Vec<u8> {
        let mut out = Vec::new();
        while j.is_replaying() {
            let (a, b) = j.pending_replay();
            let chunk: Vec<u8> = a.iter().chain(b).take(step).copied().collect();
            out.extend_from_slice(&chunk);
            j.replayed(chunk.len());
        }
        out
    }

    #[test]
    fn a_replay_starts_at_the_frame_asked_for_and_ends_where_the_writer_stopped() {
        let mut j = Journal::new(1 << 20);
        j.record(b"{\"type\":\"gateway.ready\"}\nB\nC", 0);
        j.record(b"C\nDD", 0);
        assert_eq!(j.frames_total(), 3);
        assert_eq!(j.ready(), Some(&b"{\"type\":\"gateway.ready\"}\n"[..]));
        assert_eq!(j.start_replay(Some(1)), Ok(1));
        assert_eq!(drain(&mut j, 3), b"B\nCC\nDD");
        // Without a cursor: from the first frame not written whole, its
        // written part included, so the queue's rest completes it.
        assert_eq!(j.start_replay(None), Ok(3));
        assert_eq!(drain(&mut j, 1), b"DD");
        assert_eq!(
            j.start_replay(Some(4)),
            Err(Refusal::Future {
                asked: 4,
                frames_total: 3
            })
        );
    }

    #[test]
    fn the_oldest_whole_frames_leave_at_the_bound_and_an_asked_for_gap_is_refused() {
        let mut j = Journal::new(10);
        j.record(b"aaa\nbbb\n", 0);
        j.record(b"ccc\n", 0);
        // 12 bytes held would pass 10: "aaa\n" left.
        assert_eq!((j.first_held(), j.bytes_held()), (1, 8));
        j.record(b"", 6);
        assert_eq!(
            (j.first_held(), j.bytes_held()),
            (2, 4),
            "the queue's bytes count too"
        );
        assert_eq!(
            j.start_replay(Some(0)),
            Err(Refusal::Gone {
                first_held: 2,
                frames_total: 3
            })
        );
        j.ack(3);
        assert_eq!((j.first_held(), j.bytes_held()), (3, 0));
    }

    #[test]
    fn bytes_a_replay_has_not_sent_never_leave() {
        let mut j = Journal::new(8);
        j.record(b"aaa\nbbb\n", 0);
        assert_eq!(j.start_replay(Some(0)), Ok(0));
        j.record(b"", 100);
        assert_eq!(j.first_held(), 0, "the replay holds its frames");
        let (a, b) = j.pending_replay();
        assert_eq!(a.len() + b.len(), 8);
        j.replayed(4);
        j.record(b"", 100);
        assert_eq!(j.first_held(), 1, "sent frames may go");
        assert_eq!(drain(&mut j, 64), b"bbb\n");
    }
}
