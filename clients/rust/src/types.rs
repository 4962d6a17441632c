//! Typed payloads and options: what the gateway sends (`gateway.ready`,
//! `gateway.info`, `process.output`, `process.exit`, ...) and what
//! `process.spawn` takes. Every payload keeps unknown members out of the way:
//! a newer gateway that adds a member never breaks an older client.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

use serde::Deserialize;
use serde_json::{Map, Value};

use crate::base64;

// -- gateway.ready / gateway.info ----------------------------------------------

/// The bounds in force in the gateway (`limits` of `gateway.ready`,
/// `gateway.info` and `client.capabilities`). Every member is optional: a
/// backend's merged ready (bridge mode) carries the backend's payload.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct GatewayLimits {
    pub max_frame_bytes: Option<u64>,
    pub outbound_soft_limit_bytes: Option<u64>,
    pub outbound_soft_limit_s: Option<f64>,
    pub outbound_hard_limit_bytes: Option<u64>,
    pub outbound_high_water_bytes: Option<u64>,
    pub outbound_low_water_bytes: Option<u64>,
    pub stall_timeout_s: Option<f64>,
    pub coalesce_cap_bytes: Option<u64>,
    pub shutdown_grace_s: Option<f64>,
    pub max_processes: Option<u64>,
    pub child_stdin_limit_bytes: Option<u64>,
}

/// The payload of `gateway.ready`, the first line the gateway writes.
///
/// With a backend (`tui-gateway -- CMD`) the payload is the backend's own,
/// with the gateway's in [`gateway`](Self::gateway); `raw` always holds the
/// whole payload as it came.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct ReadyPayload {
    /// The gateway's version, e.g. `"0.1.0"`.
    pub version: String,
    /// The gateway's OS process id.
    pub pid: u32,
    /// The protocol version (1).
    pub protocol: u32,
    /// Every method the gateway answers.
    pub methods: Vec<String>,
    pub limits: GatewayLimits,
    /// Bridge mode: the gateway's own ready payload.
    pub gateway: Option<Box<ReadyPayload>>,
    /// Bridge mode: whether the backend's own ready came in time.
    pub backend_ready: Option<bool>,
    /// The whole payload as received.
    #[serde(skip)]
    pub raw: Value,
}

impl ReadyPayload {
    pub(crate) fn from_value(raw: Value) -> ReadyPayload {
        let mut ready: ReadyPayload = serde_json::from_value(raw.clone()).unwrap_or_default();
        ready.raw = raw;
        ready
    }
}

/// The result of `gateway.info`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct GatewayInfo {
    pub version: String,
    pub pid: u32,
    pub protocol: u32,
    pub uptime_s: f64,
    pub methods: Vec<String>,
    /// Every setting in force, keyed by flag name (`"shutdown-grace": 1.0`).
    pub config: Map<String, Value>,
    /// What the client last sent with `client.capabilities` (`null` before).
    pub client: Value,
    pub limits: GatewayLimits,
    pub services: Value,
    /// How descendants are held and killed at exit.
    pub process_tree: Value,
    /// How `process.spawn`'s `limits` are applied (rlimits, cgroup).
    pub process_limits: Value,
    /// The whole result as received.
    #[serde(skip)]
    pub raw: Value,
}

/// One entry of `process.list`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct ProcessInfo {
    pub proc: u64,
    pub pid: u32,
    pub argv: Vec<String>,
    pub tag: Value,
    /// Wall-clock start, Unix seconds.
    pub started_at: f64,
    /// `false` once reaped while its exit event waits for its output to end.
    pub running: bool,
    pub pty: Option<PtySize>,
    pub elapsed_ms: Option<u64>,
    pub cancelling: bool,
}

// -- process events ---------------------------------------------------------

/// An output stream of a process: `stdout`, `stderr`, or `pty` (a process on a
/// pseudo-terminal has one stream, stdout and stderr together).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Stream {
    Stdout,
    Stderr,
    Pty,
    /// A stream name this client does not know.
    Other(String),
}

impl Stream {
    pub fn as_str(&self) -> &str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
            Stream::Pty => "pty",
            Stream::Other(s) => s,
        }
    }

    pub(crate) fn parse(s: &str) -> Stream {
        match s {
            "stdout" => Stream::Stdout,
            "stderr" => Stream::Stderr,
            "pty" => Stream::Pty,
            other => Stream::Other(other.to_string()),
        }
    }
}

impl fmt::Display for Stream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The data of one output chunk: text (`encoding: utf8`, the default: the
/// gateway decoded it, never splitting a character) or the exact bytes
/// (`encoding: base64`, decoded by the client).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OutputData {
    Text(String),
    Bytes(Vec<u8>),
}

impl OutputData {
    pub fn as_bytes(&self) -> &[u8] {
        match self {
            OutputData::Text(s) => s.as_bytes(),
            OutputData::Bytes(b) => b,
        }
    }

    /// The text (lossy for bytes that are not UTF-8).
    pub fn to_text(&self) -> std::borrow::Cow<'_, str> {
        match self {
            OutputData::Text(s) => std::borrow::Cow::Borrowed(s),
            OutputData::Bytes(b) => String::from_utf8_lossy(b),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.as_bytes().is_empty()
    }

    pub fn len(&self) -> usize {
        self.as_bytes().len()
    }
}

/// A `process.output` event: one chunk of a stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Output {
    pub proc: u64,
    pub stream: Stream,
    pub data: OutputData,
    /// An `output_limit` of `"kill"` or `"truncate"` stopped forwarding this
    /// stream here (the chunk is empty).
    pub truncated: bool,
    /// With `output_limit` `"tail"`: bytes left out before this chunk.
    pub skipped: Option<u64>,
}

impl Output {
    pub(crate) fn from_payload(payload: &Value, base64_data: bool) -> Option<Output> {
        let proc = payload.get("proc")?.as_u64()?;
        let stream = Stream::parse(payload.get("stream").and_then(Value::as_str).unwrap_or(""));
        let text = payload.get("data").and_then(Value::as_str).unwrap_or("");
        let data = if base64_data {
            OutputData::Bytes(base64::decode(text).unwrap_or_else(|| text.as_bytes().to_vec()))
        } else {
            OutputData::Text(text.to_string())
        };
        Some(Output {
            proc,
            stream,
            data,
            truncated: payload
                .get("truncated")
                .and_then(Value::as_bool)
                .unwrap_or(false),
            skipped: payload.get("skipped").and_then(Value::as_u64),
        })
    }
}

/// Why a process ended (`cause` of `process.exit`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(from = "String")]
pub enum ExitCause {
    /// It exited on its own.
    #[default]
    Exit,
    /// A signal the gateway did not send (including `process.signal`).
    Signal,
    /// `process.cancel`.
    Cancel,
    /// Its `timeout_ms` passed.
    Timeout,
    /// A stream passed its `output_limit` with policy `"kill"`.
    OutputLimit,
    /// The kernel killed it for a resource limit it was given (see `limit`).
    Limit,
    /// The gateway was shutting down.
    Shutdown,
    /// A cause this client does not know.
    Other(String),
}

impl From<String> for ExitCause {
    fn from(s: String) -> ExitCause {
        match s.as_str() {
            "exit" => ExitCause::Exit,
            "signal" => ExitCause::Signal,
            "cancel" => ExitCause::Cancel,
            "timeout" => ExitCause::Timeout,
            "output_limit" => ExitCause::OutputLimit,
            "limit" => ExitCause::Limit,
            "shutdown" => ExitCause::Shutdown,
            _ => ExitCause::Other(s),
        }
    }
}

impl ExitCause {
    pub fn as_str(&self) -> &str {
        match self {
            ExitCause::Exit => "exit",
            ExitCause::Signal => "signal",
            ExitCause::Cancel => "cancel",
            ExitCause::Timeout => "timeout",
            ExitCause::OutputLimit => "output_limit",
            ExitCause::Limit => "limit",
            ExitCause::Shutdown => "shutdown",
            ExitCause::Other(s) => s,
        }
    }
}

impl fmt::Display for ExitCause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Resource usage reported with `limits` (`usage` of `process.exit`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct Usage {
    pub max_rss_bytes: Option<u64>,
    pub user_ms: Option<u64>,
    pub system_ms: Option<u64>,
    pub oom_killed: Option<bool>,
}

/// A `process.exit` event: how a process ended. Exactly one per process, after
/// all its output.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct ProcessExit {
    pub proc: u64,
    /// The exit status, or `None` when killed by a signal.
    pub code: Option<i32>,
    /// The signal that killed it (`"SIGTERM"`, ...), if one did.
    pub signal: Option<String>,
    pub cause: ExitCause,
    /// From spawn to reaping, on the gateway's monotonic clock.
    pub duration_ms: u64,
    /// Raw bytes written per stream (`stdout`, `stderr` or `pty`), forwarded or not.
    pub output_bytes: BTreeMap<String, u64>,
    /// With `output_limit`: bytes not forwarded, per stream.
    pub discarded: Option<BTreeMap<String, u64>>,
    /// With cause `limit`: which one (`"cpu_seconds"`, `"memory_bytes"`, ...).
    pub limit: Option<String>,
    /// With `limits`: what the process used.
    pub usage: Option<Usage>,
    /// The whole payload as received.
    #[serde(skip)]
    pub raw: Value,
}

impl ProcessExit {
    pub(crate) fn from_payload(raw: Value) -> Option<ProcessExit> {
        let mut exit: ProcessExit = serde_json::from_value(raw.clone()).ok()?;
        exit.raw = raw;
        Some(exit)
    }

    /// Exited on its own with code 0.
    pub fn success(&self) -> bool {
        self.code == Some(0)
    }
}

impl fmt::Display for ProcessExit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.code, &self.signal) {
            (_, Some(sig)) => write!(f, "killed by {sig}")?,
            (Some(code), None) => write!(f, "exit {code}")?,
            (None, None) => f.write_str("ended")?,
        }
        if self.cause != ExitCause::Exit && self.cause != ExitCause::Signal {
            write!(f, " ({})", self.cause)?;
        }
        Ok(())
    }
}

/// One event of a process, in order: its output chunks, then its exit.
#[derive(Debug, Clone, PartialEq)]
pub enum ProcessEvent {
    Output(Output),
    Exit(ProcessExit),
}

/// One line of output (see [`Process::lines`](crate::Process::lines)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputLine {
    pub stream: Stream,
    /// The line without its `\n` (and without one `\r` before it).
    pub line: String,
    /// With `output_limit` `"tail"`: bytes left out before this line.
    pub skipped: Option<u64>,
    /// With [`LinesOptions::rewrites`](crate::LinesOptions): this version
    /// replaces the line delivered before it (a `\r` rewrote it).
    pub rewrite: bool,
}

/// Output as text as it comes, partial lines included (see
/// [`Process::text`](crate::Process::text)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputText {
    pub stream: Stream,
    pub text: String,
    /// With `output_limit` `"tail"`: bytes left out before this text.
    pub skipped: Option<u64>,
}

/// Options of [`Process::lines_with`](crate::Process::lines_with).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LinesOptions {
    /// Only this stream (the others' output is read and dropped).
    pub stream: Option<Stream>,
    /// A `\r` that is not part of `\r\n` also ends a version of the line, and
    /// every version is delivered as it comes, the later ones with `rewrite`:
    /// `"\r10%\r50%\r100%\n"` gives `10%`, `50%` (rewrite), `100%` (rewrite).
    pub rewrites: bool,
}

/// The answer of `gateway.ping`: `{"ok": true}`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct PingResult {
    pub ok: bool,
}

/// One call of [`Gateway::batch`](crate::Gateway::batch).
#[derive(Debug, Clone, PartialEq)]
pub struct BatchCall {
    pub method: String,
    /// `Value::Null` for none.
    pub params: Value,
    /// A notification: no answer (its entry is `None`).
    pub notify: bool,
}

impl BatchCall {
    pub fn request(method: impl Into<String>, params: Value) -> BatchCall {
        BatchCall {
            method: method.into(),
            params,
            notify: false,
        }
    }
    pub fn notify(method: impl Into<String>, params: Value) -> BatchCall {
        BatchCall {
            method: method.into(),
            params,
            notify: true,
        }
    }
}

/// The answer of `process.cancel`: sent once nothing of the tree is left.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct CancelResult {
    pub proc: u64,
    /// Index of the last ladder step sent.
    pub step: u32,
    /// That step's signal.
    pub signal: String,
    /// The process's own exit code, as in its `process.exit`.
    pub code: Option<i32>,
    /// The signal that ended the process, as in its `process.exit`.
    pub exit_signal: Option<String>,
}

/// The answer of `process.write` (and of `write_all`: all its bytes, and the
/// last answer's `pending`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct WriteResult {
    /// Bytes accepted by this call.
    pub queued: u64,
    /// Bytes still waiting for the child to read them.
    pub pending: u64,
}

/// The answer of `process.close_stdin`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct CloseStdinResult {
    pub ok: bool,
    /// Bytes still queued: stdin closes right after the last of them.
    pub pending: u64,
}

/// Everything a process wrote, and how it ended ([`Process::read_to_end`](crate::Process::read_to_end)).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Captured {
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    /// A process on a pseudo-terminal writes here only.
    pub pty: Vec<u8>,
    pub exit: ProcessExit,
}

impl Captured {
    pub fn stdout_text(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }
    pub fn stderr_text(&self) -> String {
        String::from_utf8_lossy(&self.stderr).into_owned()
    }
    pub fn pty_text(&self) -> String {
        String::from_utf8_lossy(&self.pty).into_owned()
    }
}

// -- spawn options ----------------------------------------------------------

/// A terminal size, columns first (as node-pty, xterm.js and crossterm have it).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Deserialize)]
pub struct PtySize {
    pub cols: u16,
    pub rows: u16,
}

impl PtySize {
    pub fn new(cols: u16, rows: u16) -> PtySize {
        PtySize { cols, rows }
    }

    pub(crate) fn to_json(self) -> Value {
        serde_json::json!({"rows": self.rows, "cols": self.cols})
    }
}

/// How output `data` is sent: text (the default) or base64 of the exact bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum Encoding {
    #[default]
    Utf8,
    Base64,
}

/// `stdin` of `process.spawn`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StdinMode {
    /// A pipe fed by `write` (the default).
    Pipe,
    /// `/dev/null`.
    Null,
}

/// `stderr` of `process.spawn`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StderrMode {
    /// Its own stream (the default).
    Pipe,
    /// Merged into stdout.
    Merge,
    /// `/dev/null`.
    Null,
}

/// What happens past an `output_limit`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OutputPolicy {
    /// Forward the first N bytes, then cancel the process (cause `output_limit`).
    Kill,
    /// Forward the first N bytes, drop the rest, let it run.
    Truncate,
    /// Forward the first N/2 bytes and the last N - N/2.
    Tail,
}

impl OutputPolicy {
    fn as_str(self) -> &'static str {
        match self {
            OutputPolicy::Kill => "kill",
            OutputPolicy::Truncate => "truncate",
            OutputPolicy::Tail => "tail",
        }
    }
}

/// `output_limit` of `process.spawn`: per stream, in raw bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct OutputLimit {
    pub bytes: u64,
    pub policy: OutputPolicy,
}

/// `limits` of `process.spawn`: set in the child before `exec`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct ResourceLimits {
    pub memory_bytes: Option<u64>,
    pub cpu_seconds: Option<u64>,
    pub open_files: Option<u64>,
    pub processes: Option<u64>,
    pub file_size_bytes: Option<u64>,
}

impl ResourceLimits {
    fn to_json(self) -> Value {
        let mut m = Map::new();
        for (k, v) in [
            ("memory_bytes", self.memory_bytes),
            ("cpu_seconds", self.cpu_seconds),
            ("open_files", self.open_files),
            ("processes", self.processes),
            ("file_size_bytes", self.file_size_bytes),
        ] {
            if let Some(v) = v {
                m.insert(k.into(), v.into());
            }
        }
        Value::Object(m)
    }
}

/// One step of a cancel ladder: send `signal` to the whole process tree, then
/// wait `wait_ms` for it to end before the next step (the last step needs no
/// wait).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct LadderStep {
    /// A signal name (`"SIGINT"`) or number (`"2"`).
    pub signal: String,
    pub wait_ms: Option<u64>,
}

impl LadderStep {
    /// A step followed by a wait.
    pub fn new(signal: impl Into<String>, wait_ms: u64) -> LadderStep {
        LadderStep {
            signal: signal.into(),
            wait_ms: Some(wait_ms),
        }
    }

    /// The last step: no wait after it.
    pub fn last(signal: impl Into<String>) -> LadderStep {
        LadderStep {
            signal: signal.into(),
            wait_ms: None,
        }
    }

    pub(crate) fn ladder_json(ladder: &[LadderStep]) -> Value {
        Value::Array(
            ladder
                .iter()
                .map(|step| {
                    let sig = match step.signal.parse::<u64>() {
                        Ok(n) => Value::from(n),
                        Err(_) => Value::from(step.signal.clone()),
                    };
                    match step.wait_ms {
                        Some(ms) => serde_json::json!([sig, ms]),
                        None => serde_json::json!([sig]),
                    }
                })
                .collect(),
        )
    }
}

/// The options of `process.spawn` (the repository's `docs/process.md`).
/// Everything is optional; build with the methods:
///
/// ```
/// use tui_gateway_client::{LadderStep, PtySize, SpawnOptions};
/// let opts = SpawnOptions::new()
///     .pty(PtySize::new(80, 24))
///     .env("LANG", "C.UTF-8")
///     .timeout_ms(60_000)
///     .cancel(vec![LadderStep::new("SIGINT", 1000), LadderStep::last("SIGKILL")]);
/// ```
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SpawnOptions {
    /// Working directory (default: the gateway's).
    pub cwd: Option<PathBuf>,
    /// Variables to set (`Some`) or remove (`None`).
    pub env: BTreeMap<String, Option<String>>,
    /// Start from an empty environment, then apply `env`.
    pub clear_env: bool,
    pub stdin: Option<StdinMode>,
    pub stderr: Option<StderrMode>,
    pub encoding: Encoding,
    /// The client's label, echoed by `process.list`.
    pub tag: Option<Value>,
    /// Run on a pseudo-terminal of this size.
    pub pty: Option<PtySize>,
    /// Cancel the process this long after its spawn (cause `timeout`).
    pub timeout_ms: Option<u64>,
    pub output_limit: Option<OutputLimit>,
    pub limits: Option<ResourceLimits>,
    /// Its cancel ladder (default SIGINT, 2 s, SIGTERM, 3 s, SIGKILL).
    pub cancel: Option<Vec<LadderStep>>,
    /// More `process.spawn` params, passed as they are.
    pub extra: Map<String, Value>,
}

impl SpawnOptions {
    pub fn new() -> SpawnOptions {
        SpawnOptions::default()
    }
    pub fn cwd(mut self, dir: impl Into<PathBuf>) -> Self {
        self.cwd = Some(dir.into());
        self
    }
    pub fn env(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.env.insert(name.into(), Some(value.into()));
        self
    }
    pub fn env_remove(mut self, name: impl Into<String>) -> Self {
        self.env.insert(name.into(), None);
        self
    }
    pub fn clear_env(mut self, clear: bool) -> Self {
        self.clear_env = clear;
        self
    }
    pub fn stdin(mut self, mode: StdinMode) -> Self {
        self.stdin = Some(mode);
        self
    }
    pub fn stderr(mut self, mode: StderrMode) -> Self {
        self.stderr = Some(mode);
        self
    }
    pub fn encoding(mut self, encoding: Encoding) -> Self {
        self.encoding = encoding;
        self
    }
    pub fn tag(mut self, tag: Value) -> Self {
        self.tag = Some(tag);
        self
    }
    pub fn pty(mut self, size: PtySize) -> Self {
        self.pty = Some(size);
        self
    }
    pub fn timeout_ms(mut self, ms: u64) -> Self {
        self.timeout_ms = Some(ms);
        self
    }
    pub fn output_limit(mut self, bytes: u64, policy: OutputPolicy) -> Self {
        self.output_limit = Some(OutputLimit { bytes, policy });
        self
    }
    pub fn limits(mut self, limits: ResourceLimits) -> Self {
        self.limits = Some(limits);
        self
    }
    pub fn cancel(mut self, ladder: Vec<LadderStep>) -> Self {
        self.cancel = Some(ladder);
        self
    }
    pub fn param(mut self, name: impl Into<String>, value: Value) -> Self {
        self.extra.insert(name.into(), value);
        self
    }

    /// The `process.spawn` params for `argv`.
    pub(crate) fn to_params(&self, argv: Vec<String>) -> crate::Result<Value> {
        let mut p = Map::new();
        p.insert("argv".into(), Value::from(argv));
        if let Some(cwd) = &self.cwd {
            let cwd = cwd.to_str().ok_or_else(|| {
                crate::Error::InvalidInput(format!("cwd {} is not UTF-8", cwd.display()))
            })?;
            p.insert("cwd".into(), cwd.into());
        }
        if !self.env.is_empty() {
            let env: Map<String, Value> = self
                .env
                .iter()
                .map(|(k, v)| (k.clone(), v.clone().map_or(Value::Null, Value::from)))
                .collect();
            p.insert("env".into(), Value::Object(env));
        }
        if self.clear_env {
            p.insert("clear_env".into(), true.into());
        }
        if let Some(mode) = self.stdin {
            let s = match mode {
                StdinMode::Pipe => "pipe",
                StdinMode::Null => "null",
            };
            p.insert("stdin".into(), s.into());
        }
        if let Some(mode) = self.stderr {
            let s = match mode {
                StderrMode::Pipe => "pipe",
                StderrMode::Merge => "merge",
                StderrMode::Null => "null",
            };
            p.insert("stderr".into(), s.into());
        }
        if self.encoding == Encoding::Base64 {
            p.insert("encoding".into(), "base64".into());
        }
        if let Some(tag) = &self.tag {
            p.insert("tag".into(), tag.clone());
        }
        if let Some(size) = self.pty {
            p.insert("pty".into(), size.to_json());
        }
        if let Some(ms) = self.timeout_ms {
            p.insert("timeout_ms".into(), ms.into());
        }
        if let Some(limit) = self.output_limit {
            p.insert(
                "output_limit".into(),
                serde_json::json!({"bytes": limit.bytes, "policy": limit.policy.as_str()}),
            );
        }
        if let Some(limits) = self.limits {
            p.insert("limits".into(), limits.to_json());
        }
        if let Some(ladder) = &self.cancel {
            p.insert("cancel".into(), LadderStep::ladder_json(ladder));
        }
        for (k, v) in &self.extra {
            p.insert(k.clone(), v.clone());
        }
        Ok(Value::Object(p))
    }
}

/// Everything the gateway says on its own, as [`Gateway::events`](crate::Gateway::events) delivers it.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Event {
    /// A `gateway.ready` after the first one (bridge mode, a backend restart).
    Ready(ReadyPayload),
    ProcessOutput(Output),
    ProcessExit(ProcessExit),
    /// Any other event type (`backend.exited`, `session.delta`, ...), untyped.
    Other {
        kind: String,
        payload: Value,
    },
    /// A notification whose method is not `event`.
    Notification {
        method: String,
        params: Value,
    },
    /// The gateway process ended; the last event of every subscription.
    Exited(crate::GatewayExit),
}
