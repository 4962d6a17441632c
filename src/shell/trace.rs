//! `--trace FILE`: every frame in and out, one NDJSON record each, with a
//! timestamp and a direction, for a person following a request.
//!
//! A trace must never cost the gateway its promises, so it is bounded and
//! lossy: records wait in one buffer of at most [`TRACE_BUFFER`] bytes and go
//! to the file with at most one non-blocking `write` per loop turn; a record
//! that does not fit is dropped and counted, and a write that fails (a full
//! disk, a FIFO nobody reads) drops what waits, counts it, and is not tried
//! again for [`RETRY_AFTER`]. The counts are in `gateway.stats`.
//!
//! Records (`docs/protocol.md`, "Tracing"):
//!
//! ```text
//! {"t":1733500000.123456,"dir":"in","frame":{"jsonrpc":"2.0","method":"gateway.ping","id":1}}
//! {"t":1733500000.123502,"dir":"out","frame":{"jsonrpc":"2.0","result":{},"id":1}}
//! {"t":1733500000.2,"dir":"in","raw":"not json"}
//! ```
//!
//! A line that is JSON is embedded as `frame`, as it came; any other line
//! (a malformed frame, a line cut by a forced exit) as the string `raw`,
//! decoded lossily. A line longer than the buffer is not kept whole: its
//! record is `{"t":..,"dir":..,"dropped_bytes":N}`.

use std::fs::File;
use std::io::{self, Write};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Most bytes of records waiting for the file.
pub const TRACE_BUFFER: usize = 4 << 20;
/// Most bytes written to the file per loop turn.
const WRITE_PER_TURN: usize = 256 << 10;
/// After a failed write, how long the trace is left alone.
const RETRY_AFTER: Duration = Duration::from_secs(1);

static RECORDS_WRITTEN: AtomicU64 = AtomicU64::new(0);
static RECORDS_DROPPED: AtomicU64 = AtomicU64::new(0);
static BYTES_WRITTEN: AtomicU64 = AtomicU64::new(0);

/// `(records written, records dropped, bytes written)` so far.
pub fn counters() -> (u64, u64, u64) {
    (
        RECORDS_WRITTEN.load(Ordering::Relaxed),
        RECORDS_DROPPED.load(Ordering::Relaxed),
        BYTES_WRITTEN.load(Ordering::Relaxed),
    )
}

/// Which way a frame went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dir {
    /// Read from stdin.
    In,
    /// Written to stdout.
    Out,
}

impl Dir {
    fn as_str(self) -> &'static str {
        match self {
            Dir::In => "in",
            Dir::Out => "out",
        }
    }
}

/// One direction's line in progress.
#[derive(Debug, Default)]
struct Partial {
    bytes: Vec<u8>,
    /// Bytes of a line too long to keep, counted instead.
    overflow: usize,
}

/// The trace file and its buffer.
#[derive(Debug)]
pub struct Trace {
    file: File,
    /// Records not yet written; `written` of them are.
    pending: Vec<u8>,
    written: usize,
    /// End offsets in `pending` of the records not fully written.
    ends: std::collections::VecDeque<usize>,
    /// Where the first of those starts.
    first_start: usize,
    partial: [Partial; 2],
    resume_at: Option<Instant>,
}

impl Trace {
    /// Opens (creates, appends to) `path`, mode 0600, non-blocking.
    pub fn open(path: &Path) -> io::Result<Trace> {
        use std::os::unix::fs::OpenOptionsExt;
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
            .open(path)?;
        Ok(Trace {
            file,
            pending: Vec::new(),
            written: 0,
            ends: std::collections::VecDeque::new(),
            first_start: 0,
            partial: [Partial::default(), Partial::default()],
            resume_at: None,
        })
    }

    /// Bytes that went one way: every complete line becomes a record.
    pub fn bytes(&mut self, dir: Dir, mut bytes: &[u8]) {
        let slot = dir as usize;
        while let Some(nl) = memchr::memchr(b'\n', bytes) {
            let (line, rest) = (&bytes[..nl], &bytes[nl + 1..]);
            let partial = std::mem::take(&mut self.partial[slot]);
            if partial.overflow > 0 {
                self.record_dropped(dir, partial.overflow + line.len());
            } else if partial.bytes.is_empty() {
                self.record(dir, line);
            } else {
                let mut whole = partial.bytes;
                whole.extend_from_slice(line);
                self.record(dir, &whole);
            }
            bytes = rest;
        }
        let partial = &mut self.partial[slot];
        if partial.overflow > 0 || partial.bytes.len() + bytes.len() > TRACE_BUFFER {
            partial.overflow += partial.bytes.len() + bytes.len();
            partial.bytes = Vec::new();
        } else {
            partial.bytes.extend_from_slice(bytes);
        }
    }

    fn record(&mut self, dir: Dir, line: &[u8]) {
        let mut record = Vec::with_capacity(line.len() + 48);
        head(&mut record, dir);
        if serde_json::from_slice::<serde::de::IgnoredAny>(line).is_ok() {
            record.extend_from_slice(b",\"frame\":");
            record.extend_from_slice(line);
        } else {
            record.extend_from_slice(b",\"raw\":");
            let text = String::from_utf8_lossy(line);
            serde_json::to_writer(&mut record, &text).expect("a string serializes");
        }
        record.extend_from_slice(b"}\n");
        self.push(record);
    }

    fn record_dropped(&mut self, dir: Dir, bytes: usize) {
        let mut record = Vec::with_capacity(64);
        head(&mut record, dir);
        record.extend_from_slice(format!(",\"dropped_bytes\":{bytes}}}\n").as_bytes());
        self.push(record);
    }

    fn push(&mut self, record: Vec<u8>) {
        if self.pending.len() - self.written + record.len() > TRACE_BUFFER {
            RECORDS_DROPPED.fetch_add(1, Ordering::Relaxed);
            return;
        }
        self.pending.extend_from_slice(&record);
        self.ends.push_back(self.pending.len());
    }

    /// Writes what waits, once, without blocking.
    pub fn flush(&mut self, now: Instant) {
        if self.written == self.pending.len() || self.resume_at.is_some_and(|at| now < at) {
            return;
        }
        self.resume_at = None;
        let end = self.pending.len().min(self.written + WRITE_PER_TURN);
        match self.file.write(&self.pending[self.written..end]) {
            Ok(n) => {
                self.written += n;
                BYTES_WRITTEN.fetch_add(n as u64, Ordering::Relaxed);
                while let Some(&record_end) = self.ends.front() {
                    if record_end > self.written {
                        break;
                    }
                    self.ends.pop_front();
                    self.first_start = record_end;
                    RECORDS_WRITTEN.fetch_add(1, Ordering::Relaxed);
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => {
                // A full disk, a FIFO nobody reads: every record not begun
                // is lost, counted, and the file is left alone for a while.
                // A record already begun keeps its rest, so the file only
                // ever holds whole lines.
                log::debug!("trace write failed ({e}): dropping what waits");
                let begun = self.written > self.first_start;
                let keep = usize::from(begun).min(self.ends.len());
                let lost = self.ends.len() - keep;
                RECORDS_DROPPED.fetch_add(lost as u64, Ordering::Relaxed);
                self.ends.truncate(keep);
                self.pending
                    .truncate(self.ends.back().copied().unwrap_or(self.written));
                self.resume_at = Some(now + RETRY_AFTER);
            }
        }
        if self.written == self.pending.len() {
            self.pending.clear();
            self.ends.clear();
            self.written = 0;
            self.first_start = 0;
        }
    }
}

/// `{"t":<unix seconds>,"dir":"<dir>"`
fn head(record: &mut Vec<u8>, dir: Dir) {
    let t = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    record.extend_from_slice(
        format!(
            "{{\"t\":{}.{:06},\"dir\":\"{}\"",
            t.as_secs(),
            t.subsec_micros(),
            dir.as_str()
        )
        .as_bytes(),
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn temp(tag: &str) -> std::path::PathBuf {
        std::env::temp_dir().join(format!("tui-gateway-trace-{tag}-{}", std::process::id()))
    }

    fn records(path: &Path) -> Vec<Value> {
        std::fs::read_to_string(path)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    #[test]
    fn lines_split_across_reads_become_one_record_each() {
        let path = temp("split");
        let _fresh = std::fs::remove_file(&path);
        let mut trace = Trace::open(&path).unwrap();
        trace.bytes(Dir::In, b"{\"id\":1}\n{\"id\"");
        trace.bytes(Dir::Out, b"[{\"id\":1}]\n");
        trace.bytes(Dir::In, b":2}\nnot json\n");
        trace.flush(Instant::now());
        let got = records(&path);
        assert_eq!(got.len(), 4, "{got:?}");
        assert_eq!(
            (got[0]["dir"].as_str(), &got[0]["frame"]),
            (Some("in"), &serde_json::json!({"id": 1}))
        );
        assert_eq!(got[1]["dir"], "out");
        assert_eq!(got[1]["frame"], serde_json::json!([{"id": 1}]));
        assert_eq!(got[2]["frame"], serde_json::json!({"id": 2}));
        assert_eq!(got[3]["raw"], "not json");
        assert!(got[0]["t"].as_f64().unwrap() > 1.7e9);
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn a_line_longer_than_the_buffer_is_counted_not_kept() {
        let path = temp("long");
        let _fresh = std::fs::remove_file(&path);
        let mut trace = Trace::open(&path).unwrap();
        let chunk = vec![b'x'; 1 << 20];
        for _ in 0..5 {
            trace.bytes(Dir::In, &chunk);
        }
        trace.bytes(Dir::In, b"y\n{}\n");
        trace.flush(Instant::now());
        let got = records(&path);
        assert_eq!(got[0]["dropped_bytes"], (5 << 20) + 1);
        assert_eq!(got[1]["frame"], serde_json::json!({}));
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn a_full_disk_drops_and_counts_without_blocking() {
        let mut trace = Trace::open(Path::new("/dev/full")).unwrap();
        let before = counters().1;
        for i in 0..10 {
            trace.bytes(Dir::Out, format!("{{\"id\":{i}}}\n").as_bytes());
        }
        let now = Instant::now();
        trace.flush(now);
        assert!(counters().1 >= before + 10, "ten records dropped");
        assert!(
            trace.pending.is_empty(),
            "nothing is kept for a failed file"
        );
        // Left alone for a while, then tried again.
        trace.bytes(Dir::Out, b"{}\n");
        trace.flush(now);
        assert!(!trace.pending.is_empty(), "not tried again at once");
        let dropped = counters().1;
        trace.flush(now + RETRY_AFTER);
        assert!(trace.pending.is_empty());
        assert!(counters().1 > dropped);
    }
}
