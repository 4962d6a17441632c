//! Where a session lives: the runtime directory (checked before any use),
//! the socket and the lock file, and the lock that decides whether this
//! process starts the session or attaches to it.
//!
//! The directory is `$XDG_RUNTIME_DIR/tui-gateway/`, or
//! `/tmp/tui-gateway-$UID/` when `XDG_RUNTIME_DIR` is unset. It is created
//! with mode 0700; an existing one must be a real directory (not a link)
//! owned by this user with no permission for group or others. A socket is
//! never connected to in a directory that failed the check.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::shell::sys::socket;

/// Why the runtime directory cannot be used.
#[derive(Debug)]
pub(crate) struct Unsafe(pub(crate) String);

impl std::fmt::Display for Unsafe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// The directory the sessions of this user live in, checked (and created
/// when missing). `runtime_dir` is `$XDG_RUNTIME_DIR`.
pub(crate) fn directory(runtime_dir: Option<&Path>) -> Result<PathBuf, Unsafe> {
    let uid = socket::uid();
    let dir = match runtime_dir.filter(|d| !d.as_os_str().is_empty()) {
        Some(base) => base.join("tui-gateway"),
        None => PathBuf::from(format!("/tmp/tui-gateway-{uid}")),
    };
    match std::fs::DirBuilder::new().mode(0o700).create(&dir) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(Unsafe(format!("cannot create {}: {e}", dir.display()))),
    }
    let meta = std::fs::symlink_metadata(&dir)
        .map_err(|e| Unsafe(format!("cannot inspect {}: {e}", dir.display())))?;
    if !meta.file_type().is_dir() {
        return Err(Unsafe(format!(
            "{} is not a directory (a link or a file put there?): refusing to use it",
            dir.display()
        )));
    }
    if meta.uid() != uid {
        return Err(Unsafe(format!(
            "{} belongs to uid {}, not to this user (uid {uid}): refusing to use it",
            dir.display(),
            meta.uid()
        )));
    }
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(Unsafe(format!(
            "{} has mode {mode:o}: other users could reach its sockets; it must be 700 (chmod 700 it)",
            dir.display()
        )));
    }
    Ok(dir)
}

/// One session's files.
#[derive(Debug, Clone)]
pub(crate) struct Place {
    pub(crate) name: String,
    pub(crate) socket: PathBuf,
    pub(crate) lock: PathBuf,
}

impl Place {
    /// The files of session `name` (already validated) in `dir`.
    pub(crate) fn new(dir: &Path, name: &str) -> Place {
        Place {
            name: name.to_owned(),
            socket: dir.join(format!("{name}.sock")),
            lock: dir.join(format!("{name}.lock")),
        }
    }

    /// Takes the session's lock: `Some` (held for as long as the file is
    /// open) when no session of this name runs, `None` when one does (or is
    /// starting). A lock file removed by a session that just ended is
    /// detected (the path names another file, or none) and taken afresh.
    pub(crate) fn try_own(&self) -> io::Result<Option<File>> {
        loop {
            let file = OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .mode(0o600)
                .open(&self.lock)?;
            if !socket::try_lock(&file)? {
                return Ok(None);
            }
            let held = file.metadata()?;
            match std::fs::metadata(&self.lock) {
                Ok(now) if now.ino() == held.ino() && now.dev() == held.dev() => {
                    return Ok(Some(file))
                }
                // The session that held it removed it as it ended: try the
                // file that is there now.
                _ => continue,
            }
        }
    }

    /// Removes the socket and the lock file, at the session's end, while
    /// the lock is still held.
    pub(crate) fn remove(&self) {
        for path in [&self.socket, &self.lock] {
            if let Err(e) = std::fs::remove_file(path) {
                if e.kind() != io::ErrorKind::NotFound {
                    log::warn!("cannot remove {}: {e}", path.display());
                }
            }
        }
    }
}

use std::os::unix::fs::OpenOptionsExt;
