//! The `process.*` errors that carry more than a message: OS errors with
//! their errno and symbolic code, failed spawns that say whether the program
//! or the cwd was wrong, and writes to a closed stdin.

use std::io;

use serde_json::{json, Value};

use super::state::StdinClosed;
use crate::engine::host::SpawnSpec;
use crate::engine::wire::{ErrorCode, RpcError};

/// A `-32000` error carrying the OS error: `data: {errno, code, error}`.
pub(crate) fn os_error(message: String, e: &io::Error) -> RpcError {
    let errno = e.raw_os_error();
    let text = e.to_string();
    let text = match text.find(" (os error") {
        Some(i) => text[..i].to_owned(),
        None => text,
    };
    RpcError::new(ErrorCode::HandlerFailed, message).with_data(json!({
        "errno": errno,
        "code": errno.map(errno_name),
        "error": text,
    }))
}

/// The message for a failed spawn: the program or the cwd, and the OS error.
pub(crate) fn spawn_error(spec: &SpawnSpec, e: &io::Error) -> RpcError {
    let program = &spec.argv[0];
    // The OS reports a bad cwd with the same errno as a missing program
    // (ENOENT): look at the cwd to say which one failed.
    let bad_cwd = spec.cwd.as_ref().filter(|cwd| !cwd.is_dir());
    // `setrlimit` in the child fails with EPERM (a hard limit above the
    // gateway's own, or open_files above the kernel's nr_open) or EINVAL;
    // exec itself reports neither for a program that exists.
    let refused_limit = !spec.limits.is_empty()
        && matches!(e.raw_os_error(), Some(libc::EPERM) | Some(libc::EINVAL));
    let message = match bad_cwd {
        Some(cwd) => format!("cannot spawn {program:?}: cwd {}: {e}", cwd.display()),
        None if refused_limit => format!(
            "cannot spawn {program:?}: the kernel refused one of its limits (setrlimit: {e}); nothing was run"
        ),
        None => format!("cannot spawn {program:?}: {e}"),
    };
    let mut err = os_error(message, e);
    if let Some(Value::Object(data)) = &mut err.data {
        data.insert("program".into(), json!(program));
        if let Some(cwd) = &spec.cwd {
            data.insert("cwd".into(), json!(cwd.to_string_lossy()));
        }
    }
    err
}

pub(crate) fn stdin_closed(proc: u64, why: StdinClosed) -> RpcError {
    match why {
        StdinClosed::Null => RpcError::invalid_params(format!(
            "proc {proc} was spawned with stdin \"null\": it has no stdin to write to"
        )),
        StdinClosed::ByClient => RpcError::new(
            ErrorCode::HandlerFailed,
            format!("stdin of proc {proc} is closed (process.close_stdin was called)"),
        ),
        StdinClosed::Gone => RpcError::new(
            ErrorCode::HandlerFailed,
            format!("stdin of proc {proc} is closed: the process closed it or exited"),
        ),
    }
}

/// Symbolic names of the errors a spawn or a signal can meet.
fn errno_name(errno: i32) -> String {
    let name = match errno {
        libc::ENOENT => "ENOENT",
        libc::EACCES => "EACCES",
        libc::EPERM => "EPERM",
        libc::ENOTDIR => "ENOTDIR",
        libc::EISDIR => "EISDIR",
        libc::ENOEXEC => "ENOEXEC",
        libc::ETXTBSY => "ETXTBSY",
        libc::ELOOP => "ELOOP",
        libc::ENAMETOOLONG => "ENAMETOOLONG",
        libc::E2BIG => "E2BIG",
        libc::ENOMEM => "ENOMEM",
        libc::EAGAIN => "EAGAIN",
        libc::EMFILE => "EMFILE",
        libc::ENFILE => "ENFILE",
        libc::EINVAL => "EINVAL",
        libc::ESRCH => "ESRCH",
        _ => return format!("E{errno}"),
    };
    name.to_owned()
}
