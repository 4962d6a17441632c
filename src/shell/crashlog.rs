//! The crash log: one appended entry per exit, signal and crash.
//!
//! Entries look like `=== gateway exit · 2026-11-28T07:23:35Z · reason=stdin EOF ===`.
//! The file is opened with `O_APPEND` for each entry, so several gateways
//! may share one log and a rotated file is picked up. A failure to write it
//! is reported on stderr and otherwise ignored: diagnostics never change how
//! the gateway exits.

use std::fmt::{self, Write as _};
use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};

static PATH: OnceLock<Option<PathBuf>> = OnceLock::new();

/// Sets the crash-log path for the life of the process (first call wins).
pub fn init(path: Option<PathBuf>) {
    let _ = PATH.set(path);
}

/// Appends `=== gateway <kind> · <UTC timestamp> · <detail> ===` plus any
/// extra lines, if a crash log is configured.
pub fn entry(kind: &str, detail: &str, extra: &[&str]) {
    let Some(Some(path)) = PATH.get() else { return };
    let mut text = format!("=== gateway {kind} · {} · {detail} ===\n", utc_now());
    for line in extra {
        text.push_str(line);
        text.push('\n');
    }
    if let Err(e) = append(path, text.as_bytes()) {
        super::stderr::line(&format!(
            "[gateway-log] cannot append to crash log {}: {e}",
            path.display()
        ));
    }
}

fn append(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?
        .write_all(bytes)
}

/// Appends an entry without allocating, for the out-of-memory path: the
/// text is formatted into a stack buffer (cut at its size) and written with
/// one `write` to a file opened by a NUL-terminated path on the stack.
pub fn entry_without_allocating(kind: &str, detail: fmt::Arguments<'_>) {
    let Some(Some(path)) = PATH.get() else { return };
    let mut c_path = StackText::<4096>::new();
    if c_path.write_bytes(path.as_os_str().as_bytes()).is_err()
        || c_path.write_bytes(b"\0").is_err()
    {
        return;
    }
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let mut text = StackText::<1024>::new();
    let _ = write!(text, "=== gateway {kind} · ");
    let _ = write_utc(&mut text, since.as_secs() as i64, since.subsec_millis());
    let _ = writeln!(text, " · {detail} ===");
    super::sys::fd::append_once(c_path.bytes(), 0o644, text.bytes());
}

/// A fixed-size text buffer on the stack: writes past its end are cut.
#[derive(Debug)]
pub struct StackText<const N: usize> {
    buf: [u8; N],
    len: usize,
}

impl<const N: usize> StackText<N> {
    /// An empty buffer.
    pub fn new() -> Self {
        StackText {
            buf: [0; N],
            len: 0,
        }
    }

    /// The bytes written so far.
    pub fn bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }

    fn write_bytes(&mut self, bytes: &[u8]) -> fmt::Result {
        let take = bytes.len().min(N - self.len);
        self.buf[self.len..self.len + take].copy_from_slice(&bytes[..take]);
        self.len += take;
        if take < bytes.len() {
            return Err(fmt::Error);
        }
        Ok(())
    }
}

impl<const N: usize> Default for StackText<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> fmt::Write for StackText<N> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.write_bytes(s.as_bytes())
    }
}

/// The current time as `YYYY-MM-DDTHH:MM:SS.mmmZ`.
pub fn utc_now() -> String {
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    format_utc(since.as_secs() as i64, since.subsec_millis())
}

/// `2026-11-28T07:23:35.999Z` for Unix seconds and milliseconds (UTC).
pub(crate) fn format_utc(secs: i64, millis: u32) -> String {
    let mut text = String::with_capacity(24);
    let _ = write_utc(&mut text, secs, millis);
    text
}

fn write_utc(out: &mut impl fmt::Write, secs: i64, millis: u32) -> fmt::Result {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    write!(
        out,
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{millis:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::format_utc;

    #[test]
    fn formats_known_instants() {
        assert_eq!(format_utc(0, 0), "1970-01-01T00:00:00.000Z");
        assert_eq!(format_utc(951_782_400, 5), "2000-02-29T00:00:00.005Z");
        assert_eq!(format_utc(1_795_850_615, 999), "2026-11-28T07:23:35.999Z");
    }
}
