//! A non-blocking, lossy, counted stderr writer, and the `log` backend on top of it.
//!
//! Stderr is a pipe the TUI may stop reading or close. A write here must
//! never block the loop and never kill the process: each line is written
//! with one `write(2)` on a non-blocking fd; what does not fit is dropped and
//! counted, and after `EPIPE` stderr is left alone for good.

use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

static DROPPED_LINES: AtomicU64 = AtomicU64::new(0);
static DROPPED_BYTES: AtomicU64 = AtomicU64::new(0);
static WRITTEN_LINES: AtomicU64 = AtomicU64::new(0);
static CLOSED: AtomicBool = AtomicBool::new(false);

/// Writes one line (a `\n` is appended) to stderr without blocking. Returns
/// false if any of it was dropped.
pub fn line(text: &str) -> bool {
    let mut buf = Vec::with_capacity(text.len() + 1);
    buf.extend_from_slice(text.as_bytes());
    buf.push(b'\n');
    write_bytes(&buf)
}

/// Writes raw bytes to stderr without allocating (never blocks; drops are counted).
pub fn write_bytes(buf: &[u8]) -> bool {
    if CLOSED.load(Ordering::Relaxed) {
        return drop_bytes(buf.len());
    }
    let mut written = 0;
    while written < buf.len() {
        let err = match super::sys::fd::write(libc::STDERR_FILENO, &buf[written..]) {
            Ok(n) if n > 0 => {
                written += n;
                continue;
            }
            Ok(_) => std::io::Error::from_raw_os_error(libc::EAGAIN),
            Err(e) => e,
        };
        match err.raw_os_error() {
            Some(libc::EINTR) => continue,
            Some(libc::EAGAIN) => {}
            // EPIPE, EBADF, EIO ...: stderr is unusable; stop trying.
            _ => CLOSED.store(true, Ordering::Relaxed),
        }
        return drop_bytes(buf.len() - written);
    }
    WRITTEN_LINES.fetch_add(1, Ordering::Relaxed);
    true
}

fn drop_bytes(n: usize) -> bool {
    DROPPED_LINES.fetch_add(1, Ordering::Relaxed);
    DROPPED_BYTES.fetch_add(n as u64, Ordering::Relaxed);
    false
}

/// Counters for `gateway.stats`: lines written, lines and bytes dropped.
pub fn counters() -> (u64, u64, u64) {
    (
        WRITTEN_LINES.load(Ordering::Relaxed),
        DROPPED_LINES.load(Ordering::Relaxed),
        DROPPED_BYTES.load(Ordering::Relaxed),
    )
}

/// Installs `env_logger` (level from `RUST_LOG`, default `warn`) writing
/// through [`line`].
pub fn init_logger() {
    let env = env_logger::Env::default().default_filter_or("warn");
    let _ = env_logger::Builder::from_env(env)
        .format(|buf, record| {
            writeln!(
                buf,
                "[gateway-log] {} {}: {}",
                record.level(),
                record.target(),
                record.args()
            )
        })
        .target(env_logger::Target::Pipe(Box::new(LossyStderr::default())))
        .try_init();
}

/// `io::Write` adapter for the logger: buffers one record, writes it whole
/// on `flush` or newline.
#[derive(Debug, Default)]
struct LossyStderr {
    pending: Vec<u8>,
}

impl Write for LossyStderr {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.pending.extend_from_slice(data);
        if self.pending.ends_with(b"\n") {
            self.flush()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        if !self.pending.is_empty() {
            write_bytes(&self.pending);
            self.pending.clear();
        }
        Ok(())
    }
}
