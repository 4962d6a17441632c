//! Temporary files and the crash log: unique paths under the temp dir, a
//! `TempFile` that removes itself when dropped, and parsing the crash log's
//! `=== gateway exit · <UTC timestamp> · reason=<reason> ===` entries.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// A fresh path under the temp dir, unique per process and call.
pub fn temp_path(tag: &str) -> PathBuf {
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    std::env::temp_dir().join(format!(
        "tui-gateway-test-{}-{}-{}-{tag}",
        std::process::id(),
        nanos,
        N.fetch_add(1, Ordering::Relaxed)
    ))
}

/// Removes the file when dropped.
#[derive(Debug)]
pub struct TempFile(pub PathBuf);

impl TempFile {
    /// A unique path (the file is not created).
    pub fn new(tag: &str) -> TempFile {
        TempFile(temp_path(tag))
    }

    /// The path.
    pub fn path(&self) -> &Path {
        &self.0
    }

    /// The file's contents as text ("" if it does not exist).
    pub fn read(&self) -> String {
        std::fs::read(&self.0)
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default()
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// The exit entries of a crash log: (timestamp, reason) for every
/// `=== gateway exit · <UTC timestamp> · reason=<reason> ===` line.
pub fn crash_log_exits(text: &str) -> Vec<(String, String)> {
    text.lines()
        .filter_map(|l| {
            let body = l
                .strip_prefix("=== gateway exit · ")?
                .strip_suffix(" ===")?;
            let (ts, reason) = body.split_once(" · reason=")?;
            Some((ts.to_owned(), reason.to_owned()))
        })
        .collect()
}

/// Asserts the crash log holds exactly one exit entry, well-formed, and returns its reason.
pub fn crash_log_exit_reason(log: &TempFile) -> String {
    let text = log.read();
    let exits = crash_log_exits(&text);
    assert_eq!(
        exits.len(),
        1,
        "expected exactly one `=== gateway exit · <ts> · reason=<r> ===` entry in the crash log, got:\n{text}"
    );
    let (ts, reason) = exits.into_iter().next().unwrap();
    assert!(
        ts.chars().any(|c| c.is_ascii_digit()),
        "crash log timestamp {ts:?} has no digits:\n{text}"
    );
    reason
}
