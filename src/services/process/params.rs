//! Reading the params of the `process.*` methods, with `-32602` messages
//! that name the parameter, what was expected and what arrived.
//!
//! Params are an object. Unknown members are refused (a typo such as `args`
//! for `argv` should fail loudly, not be ignored); an optional member that is
//! `null` counts as absent.

use std::path::PathBuf;

use serde_json::{Map, Value};

use super::decode::{base64_decode, Encoding};
use super::ladder::Ladder;
use super::limiter::OutputLimit;
use crate::engine::host::{PtySize, ResourceLimits, SignalScope, SpawnSpec, StderrMode, StdinMode};
use crate::engine::wire::RpcError;
use crate::signal_name;

/// A checked `process.spawn` request.
#[derive(Debug, Clone)]
pub(crate) struct Spawn {
    /// What the host starts.
    pub(crate) spec: SpawnSpec,
    /// How output travels on the wire.
    pub(crate) encoding: Encoding,
    /// The client's label, echoed by `process.list` (`null` when absent).
    pub(crate) tag: Value,
    /// Cancel this long after the spawn.
    pub(crate) timeout_ms: Option<u64>,
    /// What may be forwarded of each stream.
    pub(crate) output_limit: Option<OutputLimit>,
    /// How it is cancelled (`cancel`, else the default ladder).
    pub(crate) ladder: Ladder,
}

/// A checked `process.cancel` request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Cancel {
    /// The target.
    pub(crate) proc: u64,
    /// The ladder given with the call, if any.
    pub(crate) ladder: Option<Ladder>,
}

/// A checked `process.write` request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Write {
    /// The target.
    pub(crate) proc: u64,
    /// The bytes to queue for its stdin.
    pub(crate) data: Vec<u8>,
}

/// A checked `process.signal` request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Signal {
    /// The target.
    pub(crate) proc: u64,
    /// The signal number.
    pub(crate) signal: i32,
    /// Its group (default), or its whole tree (`"tree": true`).
    pub(crate) scope: SignalScope,
}

/// A checked `process.resize` request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Resize {
    /// The target.
    pub(crate) proc: u64,
    /// The new size.
    pub(crate) size: PtySize,
}

/// Largest terminal side, in cells.
pub(crate) const MAX_PTY_SIDE: u64 = 10_000;

const SPAWN_KEYS: &[&str] = &[
    "argv",
    "cwd",
    "env",
    "clear_env",
    "stdin",
    "stderr",
    "encoding",
    "tag",
    "pty",
    "timeout_ms",
    "output_limit",
    "limits",
    "cancel",
];

/// Largest `timeout_ms`: the largest positive 32-bit integer (24.8 days),
/// the bound JavaScript's `setTimeout` has too.
pub(crate) const MAX_TIMEOUT_MS: u64 = i32::MAX as u64;

/// Largest value of a member of `limits` (2^62).
pub(crate) const MAX_LIMIT: u64 = 1 << 62;

/// The members of `limits`, in the order `ResourceLimits` holds them.
const LIMIT_KEYS: &[&str] = &[
    "memory_bytes",
    "cpu_seconds",
    "open_files",
    "processes",
    "file_size_bytes",
];

/// Largest `tag`, as compact JSON: a label, kept per process until its
/// exit, so 64 processes cannot hold more than 256 KiB of tags.
pub(crate) const MAX_TAG_BYTES: usize = 4096;

/// `process.spawn {argv, cwd?, env?, clear_env?, stdin?, stderr?, encoding?, tag?}`
pub(crate) fn spawn(params: Option<Value>) -> Result<Spawn, RpcError> {
    let mut p = object("process.spawn", params, SPAWN_KEYS)?;
    let argv = match p.remove("argv") {
        None | Some(Value::Null) => {
            return Err(bad("process.spawn needs argv: [program, args...]"))
        }
        Some(Value::Array(items)) => items,
        Some(other) => {
            return Err(bad(format!(
                "argv must be an array of strings, got {}",
                kind(&other)
            )))
        }
    };
    if argv.is_empty() {
        return Err(bad("argv must not be empty: it names the program to run"));
    }
    let argv = argv
        .into_iter()
        .enumerate()
        .map(|(i, item)| match item {
            Value::String(s) => no_nul(&format!("argv[{i}]"), s),
            other => Err(bad(format!(
                "argv[{i}] must be a string, got {}",
                kind(&other)
            ))),
        })
        .collect::<Result<Vec<String>, RpcError>>()?;
    if argv[0].is_empty() {
        return Err(bad("argv[0] must name a program, got an empty string"));
    }
    let cwd = match optional_string(&mut p, "cwd")? {
        Some(c) if c.is_empty() => return Err(bad("cwd must not be empty")),
        other => other.map(PathBuf::from),
    };
    let env = match p.remove("env") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Object(vars)) => vars
            .into_iter()
            .map(|(name, value)| env_var(name, value))
            .collect::<Result<_, _>>()?,
        Some(other) => {
            return Err(bad(format!(
                "env must be an object of NAME: string or null, got {}",
                kind(&other)
            )))
        }
    };
    let clear_env = match p.remove("clear_env") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => b,
        Some(other) => {
            return Err(bad(format!(
                "clear_env must be true or false, got {}",
                kind(&other)
            )))
        }
    };
    let stdin_choice = choice(&mut p, "stdin", &["pipe", "null"])?;
    let stderr_choice = choice(&mut p, "stderr", &["pipe", "merge", "null"])?;
    let pty = match p.remove("pty") {
        None | Some(Value::Null) => None,
        Some(Value::Object(mut size)) => {
            if let Some(unknown) = size.keys().find(|k| *k != "rows" && *k != "cols") {
                return Err(bad(format!(
                    "pty: unknown parameter {unknown:?} (expected rows, cols)"
                )));
            }
            Some(PtySize {
                rows: side(&mut size, "pty.rows")?,
                cols: side(&mut size, "pty.cols")?,
            })
        }
        Some(other) => {
            return Err(bad(format!(
                "pty must be an object {{rows, cols}}, got {}",
                kind(&other)
            )))
        }
    };
    if pty.is_some() {
        // The terminal is the child's stdin, stdout and stderr.
        if let Some(mode) = stdin_choice.filter(|m| *m != "pipe") {
            return Err(bad(format!(
                "stdin {mode:?} cannot apply with pty: the terminal is the child's stdin"
            )));
        }
        if let Some(mode) = stderr_choice.filter(|m| *m != "pipe") {
            return Err(bad(format!(
                "stderr {mode:?} cannot apply with pty: the terminal is the child's stderr"
            )));
        }
    }
    let stdin = match stdin_choice {
        Some("null") => StdinMode::Null,
        _ => StdinMode::Pipe,
    };
    let stderr = match stderr_choice {
        Some("merge") => StderrMode::Merge,
        Some("null") => StderrMode::Null,
        _ => StderrMode::Pipe,
    };
    let encoding = encoding(&mut p)?;
    let tag = p.remove("tag").unwrap_or(Value::Null);
    let tag_bytes = serde_json::to_vec(&tag).map_or(0, |v| v.len());
    if tag_bytes > MAX_TAG_BYTES {
        return Err(bad(format!(
            "tag is {tag_bytes} bytes of JSON; at most {MAX_TAG_BYTES} (it is kept for as long as the process is listed)"
        )));
    }
    let timeout_ms = match p.remove("timeout_ms") {
        None | Some(Value::Null) => None,
        Some(v) => Some(integer("timeout_ms", &v, 1, MAX_TIMEOUT_MS)?),
    };
    let output_limit = match p.remove("output_limit") {
        None | Some(Value::Null) => None,
        Some(v) => Some(OutputLimit::from_param(v)?),
    };
    let limits = match p.remove("limits") {
        None | Some(Value::Null) => ResourceLimits::default(),
        Some(v) => limits(v)?,
    };
    let ladder = match p.remove("cancel") {
        None | Some(Value::Null) => Ladder::default(),
        Some(v) => Ladder::from_param("cancel", v)?,
    };
    Ok(Spawn {
        spec: SpawnSpec {
            argv,
            cwd,
            clear_env,
            env,
            stdin,
            stderr,
            pty,
            limits,
        },
        encoding,
        tag,
        timeout_ms,
        output_limit,
        ladder,
    })
}

/// One side of a terminal: an integer from 1 to [`MAX_PTY_SIDE`].
fn side(p: &mut Map<String, Value>, name: &str) -> Result<u16, RpcError> {
    let key = name.rsplit('.').next().unwrap_or(name);
    match p.remove(key) {
        Some(Value::Number(n)) => match n.as_u64() {
            Some(v) if (1..=MAX_PTY_SIDE).contains(&v) => Ok(v as u16),
            _ => Err(bad(format!(
                "{name} must be an integer from 1 to {MAX_PTY_SIDE}, got {n}"
            ))),
        },
        None | Some(Value::Null) => Err(bad(format!(
            "{name} is missing: an integer from 1 to {MAX_PTY_SIDE}"
        ))),
        Some(other) => Err(bad(format!(
            "{name} must be an integer from 1 to {MAX_PTY_SIDE}, got {}",
            kind(&other)
        ))),
    }
}

/// `process.resize {proc, rows, cols}`
pub(crate) fn resize(params: Option<Value>) -> Result<Resize, RpcError> {
    let mut p = object("process.resize", params, &["proc", "rows", "cols"])?;
    let proc = proc_id(&mut p)?;
    let size = PtySize {
        rows: side(&mut p, "rows")?,
        cols: side(&mut p, "cols")?,
    };
    Ok(Resize { proc, size })
}

/// `process.write {proc, data, encoding?}`
pub(crate) fn write(params: Option<Value>) -> Result<Write, RpcError> {
    let mut p = object("process.write", params, &["proc", "data", "encoding"])?;
    let proc = proc_id(&mut p)?;
    let data = match p.remove("data") {
        Some(Value::String(s)) => s,
        None | Some(Value::Null) => return Err(bad("process.write needs data: a string")),
        Some(other) => return Err(bad(format!("data must be a string, got {}", kind(&other)))),
    };
    let data = match encoding(&mut p)? {
        Encoding::Utf8 => data.into_bytes(),
        Encoding::Base64 => base64_decode(&data).map_err(|e| bad(format!("data: {e}")))?,
    };
    Ok(Write { proc, data })
}

/// `process.close_stdin {proc}` (and any method taking only a proc).
pub(crate) fn proc_only(method: &str, params: Option<Value>) -> Result<u64, RpcError> {
    let mut p = object(method, params, &["proc"])?;
    proc_id(&mut p)
}

/// `process.signal {proc, signal}`: a name from the table or a number.
pub(crate) fn signal(params: Option<Value>) -> Result<Signal, RpcError> {
    let mut p = object("process.signal", params, &["proc", "signal", "tree"])?;
    let proc = proc_id(&mut p)?;
    let scope = match p.remove("tree") {
        None | Some(Value::Null) | Some(Value::Bool(false)) => SignalScope::Group,
        Some(Value::Bool(true)) => SignalScope::Tree,
        Some(other) => {
            return Err(bad(format!(
                "tree must be true or false, got {}",
                kind(&other)
            )))
        }
    };
    let expected = "a name such as \"SIGTERM\" or a number";
    let signal = match p.remove("signal") {
        Some(Value::String(name)) => signal_name::number(&name).ok_or_else(|| {
            bad(format!(
                "signal {name:?} is not a known signal name; use {expected}"
            ))
        })?,
        Some(Value::Number(n)) => match n.as_i64() {
            Some(v) if (1..=i64::from(signal_name::MAX_SIGNAL)).contains(&v) => v as i32,
            _ => {
                return Err(bad(format!(
                    "signal {n} is out of range: expected 1 to {}",
                    signal_name::MAX_SIGNAL
                )))
            }
        },
        None | Some(Value::Null) => {
            return Err(bad(format!("process.signal needs signal: {expected}")))
        }
        Some(other) => {
            return Err(bad(format!(
                "signal must be {expected}, got {}",
                kind(&other)
            )))
        }
    };
    Ok(Signal {
        proc,
        signal,
        scope,
    })
}

/// `process.cancel {proc, ladder?}`
pub(crate) fn cancel(params: Option<Value>) -> Result<Cancel, RpcError> {
    let mut p = object("process.cancel", params, &["proc", "ladder"])?;
    let proc = proc_id(&mut p)?;
    let ladder = match p.remove("ladder") {
        None | Some(Value::Null) => None,
        Some(v) => Some(Ladder::from_param("ladder", v)?),
    };
    Ok(Cancel { proc, ladder })
}

/// `limits {memory_bytes?, cpu_seconds?, open_files?, processes?, file_size_bytes?}`
fn limits(value: Value) -> Result<ResourceLimits, RpcError> {
    let map = match value {
        Value::Object(map) => map,
        other => {
            return Err(bad(format!(
                "limits must be an object {{{}}}, got {}",
                LIMIT_KEYS.join(", "),
                kind(&other)
            )))
        }
    };
    let mut out = ResourceLimits::default();
    for (name, value) in map {
        let slot = match name.as_str() {
            "memory_bytes" => &mut out.memory_bytes,
            "cpu_seconds" => &mut out.cpu_seconds,
            "open_files" => &mut out.open_files,
            "processes" => &mut out.processes,
            "file_size_bytes" => &mut out.file_size_bytes,
            _ => {
                return Err(bad(format!(
                    "limits: unknown limit {name:?} (expected {})",
                    LIMIT_KEYS.join(", ")
                )))
            }
        };
        if !value.is_null() {
            *slot = Some(integer(&format!("limits.{name}"), &value, 1, MAX_LIMIT)?);
        }
    }
    Ok(out)
}

/// An integer from `min` to `max`, or a `-32602` naming `name`.
pub(super) fn integer(name: &str, value: &Value, min: u64, max: u64) -> Result<u64, RpcError> {
    match value.as_u64() {
        Some(v) if (min..=max).contains(&v) => Ok(v),
        _ => {
            let got = match value {
                Value::Number(n) => n.to_string(),
                other => kind(other).to_owned(),
            };
            Err(bad(format!(
                "{name} must be an integer from {min} to {max}, got {got}"
            )))
        }
    }
}

/// A signal: a name from the table or a number from 1 to 64.
pub(super) fn signal_number(name: &str, value: &Value) -> Result<i32, RpcError> {
    let expected = "a name such as \"SIGTERM\" or a number";
    match value {
        Value::String(s) => signal_name::number(s).ok_or_else(|| {
            bad(format!(
                "{name}: {s:?} is not a known signal name; use {expected}"
            ))
        }),
        Value::Number(n) => match n.as_i64() {
            Some(v) if (1..=i64::from(signal_name::MAX_SIGNAL)).contains(&v) => Ok(v as i32),
            _ => Err(bad(format!(
                "{name}: signal {n} is out of range: expected 1 to {}",
                signal_name::MAX_SIGNAL
            ))),
        },
        other => Err(bad(format!(
            "{name} must be {expected}, got {}",
            kind(other)
        ))),
    }
}

/// `process.list`: no params, `{}` or `[]`.
pub(crate) fn none(method: &str, params: Option<Value>) -> Result<(), RpcError> {
    match params {
        None | Some(Value::Null) => Ok(()),
        Some(Value::Array(a)) if a.is_empty() => Ok(()),
        Some(Value::Object(o)) if o.is_empty() => Ok(()),
        Some(_) => Err(bad(format!("{method} takes no params"))),
    }
}

pub(super) fn bad(message: impl Into<String>) -> RpcError {
    RpcError::invalid_params(message)
}

/// The JSON type of a value, for messages.
pub(super) fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// The params object, with every member checked against `allowed`.
fn object(
    method: &str,
    params: Option<Value>,
    allowed: &[&str],
) -> Result<Map<String, Value>, RpcError> {
    let map = match params {
        Some(Value::Object(map)) => map,
        None => {
            return Err(bad(format!(
                "{method} needs params: an object with {}",
                allowed[0]
            )))
        }
        Some(other) => {
            return Err(bad(format!(
                "{method} takes its params as an object, got {}",
                kind(&other)
            )))
        }
    };
    if let Some(unknown) = map.keys().find(|k| !allowed.contains(&k.as_str())) {
        return Err(bad(format!(
            "{method}: unknown parameter {unknown:?} (expected {})",
            allowed.join(", ")
        )));
    }
    Ok(map)
}

fn proc_id(p: &mut Map<String, Value>) -> Result<u64, RpcError> {
    match p.remove("proc") {
        Some(Value::Number(n)) if n.as_u64().is_some() => Ok(n.as_u64().unwrap_or_default()),
        None | Some(Value::Null) => Err(bad("proc is missing: pass the id process.spawn returned")),
        Some(other) => Err(bad(format!(
            "proc must be the integer id process.spawn returned, got {other}"
        ))),
    }
}

fn optional_string(p: &mut Map<String, Value>, name: &str) -> Result<Option<String>, RpcError> {
    match p.remove(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => no_nul(name, s).map(Some),
        Some(other) => Err(bad(format!(
            "{name} must be a string, got {}",
            kind(&other)
        ))),
    }
}

/// One of `options`, or `None` when absent.
fn choice(
    p: &mut Map<String, Value>,
    name: &str,
    options: &[&'static str],
) -> Result<Option<&'static str>, RpcError> {
    let expected = || {
        options
            .iter()
            .map(|o| format!("{o:?}"))
            .collect::<Vec<_>>()
            .join(" or ")
    };
    match p.remove(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => match options.iter().find(|o| **o == s) {
            Some(o) => Ok(Some(*o)),
            None => Err(bad(format!("{name} must be {}, got {s:?}", expected()))),
        },
        Some(other) => Err(bad(format!(
            "{name} must be {}, got {}",
            expected(),
            kind(&other)
        ))),
    }
}

fn encoding(p: &mut Map<String, Value>) -> Result<Encoding, RpcError> {
    Ok(match choice(p, "encoding", &["utf8", "base64"])? {
        Some("base64") => Encoding::Base64,
        _ => Encoding::Utf8,
    })
}

fn no_nul(name: &str, s: String) -> Result<String, RpcError> {
    if s.contains('\0') {
        return Err(bad(format!("{name} contains a NUL byte")));
    }
    Ok(s)
}

fn env_var(name: String, value: Value) -> Result<(String, Option<String>), RpcError> {
    if name.is_empty() || name.contains('=') || name.contains('\0') {
        return Err(bad(format!(
            "env name {name:?} is not a valid variable name (empty, or contains '=' or NUL)"
        )));
    }
    match value {
        Value::Null => Ok((name, None)),
        Value::String(v) => {
            let v = no_nul(&format!("env[{name:?}]"), v)?;
            Ok((name, Some(v)))
        }
        other => Err(bad(format!(
            "env[{name:?}] must be a string (set) or null (remove), got {}",
            kind(&other)
        ))),
    }
}

#[cfg(test)]
#[path = "params_tests.rs"]
mod tests;
