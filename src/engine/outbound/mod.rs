//! The outbound queue: serialized frames waiting for stdout, counted in bytes.
//!
//! * Frames leave in the order they were pushed and whole: the writer may
//!   stop anywhere inside a frame (a partial write) and resumes at that byte.
//! * Streaming frames (text deltas, process output) merge with the tail of
//!   the queue while the reader is slow, so a slow reader costs fewer, larger
//!   frames instead of more memory. Merging never crosses another frame, never
//!   touches a frame whose first byte was already written, and only joins
//!   frames that are equal in everything but their text.
//! * Limits follow Redis's client-output-buffer model: a hard cap on queued
//!   bytes, a soft cap that may be exceeded only for a while, and a stall
//!   timer. The hard cap is never passed: a push that would pass it is
//!   refused, and producers are paced long before (below). Only the two
//!   time-based limits declare the reader gone; the queue then drops
//!   everything and the engine shuts down.
//! * High and low water marks pace every producer (dispatch, batch members,
//!   child pipes) with hysteresis: at the high-water mark they pause, and
//!   they resume when the reader has taken the queue down to the low-water
//!   mark. The distance from the high-water mark to the hard cap is headroom
//!   for one bounded step of any producer.
//! * One frame can be built in pieces (a batch answer, member by member):
//!   while it is open, every other frame is held behind it, so frames never
//!   interleave on the wire.
//!
//! This file holds the queue, its limits and its writes; `stream` holds the
//! merging of streaming frames.

use std::collections::VecDeque;
use std::io::IoSlice;
use std::time::{Duration, Instant};

use self::stream::OpenStream;

/// Most entries handed to one `writev`: well under Linux's `IOV_MAX` (1024),
/// and enough to move a full pipe buffer of small frames in one call.
const MAX_IOVECS: usize = 64;

/// Frames written in place ([`Outbound::push_frame_with`]) share an entry
/// of this capacity: one allocation and one iovec for many small answers.
const CHUNK_BYTES: usize = 4096;

/// A frame is written after the last one in its entry only while the entry
/// has this much spare capacity, so an entry is rarely reallocated (and
/// never copied as it grows, a chunk at a time).
const CHUNK_SPARE: usize = 512;

/// One run of queued bytes: a frame, a piece of a frame built in pieces,
/// or small frames written one after another ([`CHUNK_BYTES`]).
#[derive(Debug)]
struct Entry {
    bytes: Vec<u8>,
    /// The whole frames that end in it (a piece ends none).
    frames: u32,
}

impl Entry {
    fn frame(bytes: Vec<u8>) -> Entry {
        Entry { bytes, frames: 1 }
    }

    fn piece(bytes: Vec<u8>) -> Entry {
        let frames = u32::from(bytes.ends_with(b"\n"));
        Entry { bytes, frames }
    }
}

/// The bounds the queue enforces.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Queued bytes above this for `soft_duration` means the reader is gone.
    pub soft_bytes: usize,
    /// How long the queue may stay above `soft_bytes`.
    pub soft_duration: Duration,
    /// Queued bytes never exceed this; a push that would is refused.
    pub hard_bytes: usize,
    /// No byte written for this long while bytes are queued means the reader is gone.
    pub stall_timeout: Duration,
    /// The largest text a merged streaming frame may carry, in escaped bytes.
    pub coalesce_cap: usize,
    /// Producers pause when the queue reaches this many bytes (must leave
    /// [`HEADROOM`] below `hard_bytes`) ...
    pub high_water: usize,
    /// ... and resume when it falls to this many.
    pub low_water: usize,
}

/// Why the queue gave up on its reader.
#[derive(Debug, Clone, PartialEq)]
pub enum SlowReader {
    /// The queue stayed above the soft limit for too long.
    SoftLimit {
        /// The limit, in bytes.
        limit: usize,
        /// For how long, in seconds.
        seconds: f64,
    },
    /// Nothing was written for the stall timeout while bytes were queued.
    Stalled {
        /// The timeout, in seconds.
        seconds: f64,
    },
}

impl std::fmt::Display for SlowReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SlowReader::SoftLimit { limit, seconds } => write!(
                f,
                "stdout reader too slow: queue above the soft limit of {limit} bytes for {seconds}s"
            ),
            SlowReader::Stalled { seconds } => {
                write!(f, "stdout stalled: no byte written for {seconds}s")
            }
        }
    }
}

/// Counters kept by the queue, reported by `gateway.stats`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counters {
    /// Frames fully written.
    pub frames_out: u64,
    /// Bytes written.
    pub bytes_out: u64,
    /// Most bytes ever queued at once.
    pub high_water_mark: usize,
    /// Streaming frames merged into the one before them.
    pub deltas_coalesced: u64,
    /// Frames dropped because the reader was already gone.
    pub frames_dropped: u64,
    /// Frames refused because they would have passed the hard limit (a
    /// producer that did not ask for room first: a bug, logged).
    pub frames_refused: u64,
}

/// Room the hard limit keeps above the high-water mark: one bounded step of
/// any producer after the mark is reached (a 64 KiB child read escaped
/// six-fold is 384 KiB; exit events and small answers need far less).
pub const HEADROOM: usize = 1024 * 1024;

/// Why a push was refused. Every push returns one on refusal, and every
/// caller decides what it means ([`paced`] for the gateway's own paced
/// producers); none may drop it unread.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use = "a refused frame is lost unless the producer answers for it"]
pub enum Refused {
    /// The reader is gone: nothing is queued any more.
    Closed,
    /// The frame would pass the hard limit.
    Full,
}

/// The result of a push by a producer that asked for room first (it stops
/// at the high-water mark, and the hard limit keeps [`HEADROOM`] above it
/// for one step): accepted, or dropped because the reader is gone (counted
/// in `frames_dropped`). Passing the hard limit would be a pacing bug: it is
/// counted and logged by the queue, and stops debug builds (the tests and
/// the fuzz targets) at once.
pub fn paced(result: Result<(), Refused>) {
    match result {
        Ok(()) | Err(Refused::Closed) => {}
        Err(Refused::Full) => debug_assert!(false, "a paced producer passed the hard limit"),
    }
}

/// Where the queue's bytes can go.
#[derive(Debug, Clone, PartialEq)]
enum Sink {
    /// Held until the start-up frame ([`Outbound::open_gate`]): frames
    /// queue and pace producers, none is written.
    Gated,
    /// Written as the reader takes them.
    Open,
    /// Nothing will be written again ([`Outbound::close`]); `gone` says
    /// which limit declared the reader gone, if one did.
    Closed { gone: Option<SlowReader> },
}

/// Whether anyone reads the queue (a session's client may be detached).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reader {
    /// The client reads: the slow-reader limits count.
    Present,
    /// No client (a detached session): nothing is written and the
    /// slow-reader limits do not count; producers are paced as always.
    Absent,
}

/// A byte-counted queue of whole frames.
#[derive(Debug)]
pub struct Outbound {
    limits: Limits,
    frames: VecDeque<Entry>,
    /// Set while the tail frame is a streaming frame that may still grow.
    open: Option<OpenStream>,
    /// A frame is being built in pieces at the tail ([`Outbound::begin_pieces`]).
    building: bool,
    /// Whole frames pushed while a frame is being built: they follow it.
    held: Vec<Entry>,
    /// Bytes in `held` (included in `queued`).
    held_bytes: usize,
    /// Bytes of the front frame already written.
    head_offset: usize,
    /// Bytes queued and not yet written, held ones included.
    queued: usize,
    /// Since when the queue has been above the soft limit.
    over_soft_since: Option<Instant>,
    /// Since when bytes have been queued without any being written.
    waiting_since: Option<Instant>,
    paused: bool,
    /// Where the queue's bytes can go.
    sink: Sink,
    reader: Reader,
    /// A verdict not yet returned by [`Outbound::check`].
    unreported: Option<SlowReader>,
    counters: Counters,
}

impl Outbound {
    /// An empty queue with these limits.
    pub fn new(limits: Limits) -> Outbound {
        Outbound {
            limits,
            frames: VecDeque::new(),
            open: None,
            building: false,
            held: Vec::new(),
            held_bytes: 0,
            head_offset: 0,
            queued: 0,
            over_soft_since: None,
            waiting_since: None,
            paused: false,
            unreported: None,
            sink: Sink::Open,
            reader: Reader::Present,
            counters: Counters::default(),
        }
    }

    /// The limits in force.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Bytes queued and not yet written.
    pub fn queued_bytes(&self) -> usize {
        self.queued
    }

    /// Nothing left to write.
    pub fn is_empty(&self) -> bool {
        self.queued == 0
    }

    /// Bytes the writer can take now (held frames wait for the frame being built).
    pub fn has_writable(&self) -> bool {
        self.sink == Sink::Open && self.reader == Reader::Present && self.queued > self.held_bytes
    }

    /// Frame ends (`\n`) in the bytes queued and not yet written: how many
    /// more whole frames the reader gets once it has read everything queued.
    pub fn queued_frame_ends(&self) -> u64 {
        let front = self.frames.iter().enumerate().map(|(i, e)| {
            let from = if i == 0 { self.head_offset } else { 0 };
            &e.bytes[from..]
        });
        front
            .chain(self.held.iter().map(|e| &e.bytes[..]))
            .map(|bytes| memchr::memchr_iter(b'\n', bytes).count() as u64)
            .sum()
    }

    /// No one reads now (a session's client detached): frames wait, and the
    /// time without a reader does not count against the slow-reader limits.
    pub fn detach_reader(&mut self) {
        self.reader = Reader::Absent;
        self.waiting_since = None;
        self.over_soft_since = None;
    }

    /// A reader is back: the limits count again from `now`.
    pub fn attach_reader(&mut self, now: Instant) {
        self.reader = Reader::Present;
        self.waiting_since = self.has_writable().then_some(now);
        self.over_soft_since = (self.queued > self.limits.soft_bytes).then_some(now);
    }

    /// Bytes that may still be queued before the hard limit.
    pub fn room(&self) -> usize {
        self.limits.hard_bytes.saturating_sub(self.queued)
    }

    /// Bytes a producer may add before the high-water mark.
    pub fn room_below_high_water(&self) -> usize {
        self.limits.high_water.saturating_sub(self.queued)
    }

    /// The counters so far.
    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    /// Set once a limit declared the reader gone.
    pub fn slow_reader(&self) -> Option<&SlowReader> {
        match &self.sink {
            Sink::Closed { gone } => gone.as_ref(),
            Sink::Gated | Sink::Open => None,
        }
    }

    /// Producers should stop feeding the queue (above the high-water mark,
    /// until it falls to the low-water mark).
    pub fn is_paused(&self) -> bool {
        self.paused
    }

    /// The reader is gone (or was declared gone): drop what is queued and
    /// everything pushed from now on.
    pub fn close(&mut self) {
        if !self.is_closed() {
            self.sink = Sink::Closed { gone: None };
        }
        let frames = self
            .frames
            .iter()
            .chain(&self.held)
            .map(|e| u64::from(e.frames));
        self.counters.frames_dropped += frames.sum::<u64>();
        self.frames.clear();
        self.held.clear();
        self.held_bytes = 0;
        self.building = false;
        self.open = None;
        self.head_offset = 0;
        self.queued = 0;
        self.over_soft_since = None;
        self.waiting_since = None;
        self.paused = false;
    }

    /// True once [`Outbound::close`] ran: nothing will ever be written again.
    pub fn is_closed(&self) -> bool {
        matches!(self.sink, Sink::Closed { .. })
    }

    /// Queues one whole frame (`\n`-terminated). Never merged with anything.
    /// Refused (and counted) if it would pass the hard limit: producers ask
    /// for [`Outbound::room`] first, so this never happens to a paced one.
    pub fn push_frame(&mut self, frame: Vec<u8>, now: Instant) -> Result<(), Refused> {
        debug_assert!(frame.ends_with(b"\n"));
        self.admit(frame.len())?;
        self.open = None;
        self.queued += frame.len();
        if self.building {
            self.held_bytes += frame.len();
            self.held.push(Entry::frame(frame));
        } else {
            self.frames.push_back(Entry::frame(frame));
        }
        self.after_growth(now);
        Ok(())
    }

    /// Queues one whole frame that `write` appends to the buffer it is
    /// given (ending in `\n`), written in place: after the last small frame
    /// when its entry has room, so a run of answers costs one allocation per
    /// 4 KiB chunk, not one each. `write` must keep
    /// within [`Outbound::room`] (it is refused past the hard limit, as
    /// [`Outbound::push_frame`] is).
    pub fn push_frame_with(
        &mut self,
        now: Instant,
        write: impl FnOnce(&mut Vec<u8>),
    ) -> Result<(), Refused> {
        let appendable = !self.building
            && self.frames.back().is_some_and(|tail| {
                tail.frames > 0 && tail.bytes.capacity() - tail.bytes.len() >= CHUNK_SPARE
            });
        if !appendable {
            let mut frame = Vec::with_capacity(if self.building { 64 } else { CHUNK_BYTES });
            write(&mut frame);
            return self.push_frame(frame, now);
        }
        let tail = &mut self.frames.back_mut().expect("checked above").bytes;
        let start = tail.len();
        write(tail);
        let len = tail.len() - start;
        debug_assert!(tail.ends_with(b"\n"));
        if let Err(refused) = self.admit(len) {
            self.frames
                .back_mut()
                .expect("still there")
                .bytes
                .truncate(start);
            return Err(refused);
        }
        let tail = self.frames.back_mut().expect("still there");
        tail.frames += 1;
        self.open = None;
        self.queued += len;
        self.after_growth(now);
        Ok(())
    }

    /// Opens a frame that will be pushed in pieces ([`Outbound::push_piece`])
    /// and closed by [`Outbound::end_pieces`]. Until then, other frames are
    /// held behind it.
    pub fn begin_pieces(&mut self) {
        debug_assert!(!self.building, "one frame in pieces at a time");
        self.building = !self.is_closed();
        self.open = None;
    }

    /// Appends a piece of the frame being built.
    pub fn push_piece(&mut self, piece: Vec<u8>, now: Instant) -> Result<(), Refused> {
        debug_assert!(self.building || self.is_closed());
        self.admit(piece.len())?;
        self.queued += piece.len();
        self.frames.push_back(Entry::piece(piece));
        self.after_growth(now);
        Ok(())
    }

    /// Closes the frame being built with its last piece (which ends in
    /// `\n`, or is empty if nothing was pushed), and releases the frames
    /// held behind it.
    pub fn end_pieces(&mut self, last: Vec<u8>, now: Instant) {
        if !self.building {
            return;
        }
        if !last.is_empty() {
            // The closing piece is a few bytes; it belongs to a frame already
            // admitted, so it is never refused.
            self.queued += last.len();
            self.frames.push_back(Entry::piece(last));
        }
        self.building = false;
        self.held_bytes = 0;
        self.frames.extend(self.held.drain(..));
        self.after_growth(now);
    }

    /// Holds every frame until [`Outbound::open_gate`]: frames queue (and
    /// count, and pace producers) but none is written.
    pub fn close_gate(&mut self) {
        if self.sink == Sink::Open {
            self.sink = Sink::Gated;
        }
    }

    /// Writes `first` ahead of everything queued while the gate was closed,
    /// then lets the writer go. `first` is a few hundred bytes announced at
    /// start-up, so it is admitted whatever the queue holds.
    pub fn open_gate(&mut self, first: Option<Vec<u8>>, now: Instant) {
        if self.sink != Sink::Gated {
            // Never gated, or closed since: a closed queue writes nothing.
            return;
        }
        self.sink = Sink::Open;
        if let Some(frame) = first {
            self.queued += frame.len();
            if self.frames.is_empty() {
                self.open = None;
            }
            self.frames.push_front(Entry::frame(frame));
        }
        self.waiting_since = None;
        self.after_growth(now);
    }

    /// True while [`Outbound::close_gate`] holds the output.
    pub fn is_gated(&self) -> bool {
        self.sink == Sink::Gated
    }

    /// Hands the writer up to `MAX_IOVECS` slices of queued bytes, in order,
    /// starting inside the front frame if it was partly written. `write`
    /// returns how many bytes it took; the queue advances by exactly that.
    pub fn write_with<E>(
        &mut self,
        now: Instant,
        write: impl FnOnce(&[IoSlice<'_>]) -> Result<usize, E>,
    ) -> Result<usize, E> {
        if !self.has_writable() {
            return Ok(0);
        }
        let mut slices = [IoSlice::new(&[]); MAX_IOVECS];
        let mut n = 0;
        for (slot, entry) in slices.iter_mut().zip(&self.frames) {
            let from = if n == 0 { self.head_offset } else { 0 };
            *slot = IoSlice::new(&entry.bytes[from..]);
            n += 1;
        }
        let written = write(&slices[..n])?;
        self.consume(written, now);
        Ok(written)
    }

    fn consume(&mut self, mut n: usize, now: Instant) {
        debug_assert!(n <= self.queued);
        if n == 0 {
            return;
        }
        self.queued -= n;
        self.counters.bytes_out += n as u64;
        while n > 0 {
            let front_left = self.frames[0].bytes.len() - self.head_offset;
            if n >= front_left {
                n -= front_left;
                let entry = self.frames.pop_front().expect("bytes queued");
                self.head_offset = 0;
                self.counters.frames_out += u64::from(entry.frames);
            } else {
                self.head_offset += n;
                n = 0;
            }
        }
        if self.frames.is_empty() || (self.frames.len() == 1 && self.head_offset > 0) {
            // The tail has started (or gone): it can no longer grow.
            self.open = None;
        }
        self.waiting_since = self.has_writable().then_some(now);
        if self.queued <= self.limits.soft_bytes {
            self.over_soft_since = None;
        }
        if self.queued <= self.limits.low_water {
            self.paused = false;
        }
    }

    /// Checks the time-based limits. Returns a verdict once, when the reader
    /// is declared gone (by these or by the hard limit on a push); the queue
    /// is then closed.
    pub fn check(&mut self, now: Instant) -> Option<SlowReader> {
        if !self.is_closed() {
            let soft = self
                .over_soft_since
                .filter(|since| now.duration_since(*since) >= self.limits.soft_duration);
            let stall = self
                .waiting_since
                .filter(|since| now.duration_since(*since) >= self.limits.stall_timeout);
            let verdict = if soft.is_some() {
                Some(SlowReader::SoftLimit {
                    limit: self.limits.soft_bytes,
                    seconds: self.limits.soft_duration.as_secs_f64(),
                })
            } else {
                stall.map(|_| SlowReader::Stalled {
                    seconds: self.limits.stall_timeout.as_secs_f64(),
                })
            };
            if let Some(v) = verdict {
                self.declare_gone(v);
            }
        }
        self.unreported.take()
    }

    fn declare_gone(&mut self, verdict: SlowReader) {
        self.close();
        self.sink = Sink::Closed {
            gone: Some(verdict.clone()),
        };
        self.unreported = Some(verdict);
    }

    /// When [`Outbound::check`] next needs to run.
    pub fn next_deadline(&self) -> Option<Instant> {
        let soft = self.over_soft_since.map(|t| t + self.limits.soft_duration);
        let stall = self.waiting_since.map(|t| t + self.limits.stall_timeout);
        match (soft, stall) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Decides whether `len` more bytes may be queued.
    fn admit(&mut self, len: usize) -> Result<(), Refused> {
        if self.is_closed() {
            self.counters.frames_dropped += 1;
            return Err(Refused::Closed);
        }
        if self.queued + len > self.limits.hard_bytes {
            self.counters.frames_refused += 1;
            log::error!(
                "refused a {len}-byte frame: {} bytes queued, hard limit {} (a producer did not ask for room)",
                self.queued,
                self.limits.hard_bytes
            );
            return Err(Refused::Full);
        }
        Ok(())
    }

    fn after_growth(&mut self, now: Instant) {
        self.counters.high_water_mark = self.counters.high_water_mark.max(self.queued);
        if self.waiting_since.is_none() && self.has_writable() {
            self.waiting_since = Some(now);
        }
        if self.queued > self.limits.soft_bytes
            && self.over_soft_since.is_none()
            && self.reader == Reader::Present
        {
            self.over_soft_since = Some(now);
        }
        if self.queued >= self.limits.high_water {
            self.paused = true;
        }
    }
}

mod stream;
#[cfg(test)]
mod tests;
