//! What the engine knows of a session (`docs/sessions.md`): its name and
//! epoch (in `gateway.ready` and `gateway.info`), the journal's state as the
//! shell last reported it (for `gateway.session`), and what a client's
//! session methods ask of the shell (detach, let frames go). The journal,
//! the socket and the connections are the shell's; the engine only answers.

use serde_json::{json, Value};

/// A session's identity, fixed when it starts.
#[derive(Debug, Clone, PartialEq)]
pub struct SessionInfo {
    /// The session's name (validated by the shell).
    pub name: String,
    /// Random per session start: a client that knew another epoch knew
    /// another session.
    pub epoch: String,
    /// When it started, in seconds since the Unix epoch (the engine has no
    /// wall clock of its own).
    pub started_unix_s: f64,
}

/// The session's moving parts, as the shell reports them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SessionState {
    /// A client is attached.
    pub attached: bool,
    /// Processes the gateway runs (commands and the backend).
    pub processes: usize,
    /// Bytes the journal holds.
    pub journal_bytes: usize,
    /// Whole frames written so far: the cursor of a client that has read
    /// everything.
    pub frames_total: u64,
    /// The first frame the journal still holds.
    pub first_held: u64,
    /// Connections refused because their peer was another user.
    pub refused_peers: u64,
}

/// What a client's session method asks of the shell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionRequest {
    /// `gateway.detach`: detach the client once its answer is written.
    Detach,
    /// `gateway.ack`: the client has the first `n` frames; the journal may
    /// let them go.
    Ack(u64),
}

/// The engine's side of a session.
#[derive(Debug)]
pub(super) struct Session {
    pub(super) info: SessionInfo,
    pub(super) state: SessionState,
    pub(super) requests: Vec<SessionRequest>,
}

/// The `gateway.session` object: the session's identity and state.
pub fn status(info: &SessionInfo, state: &SessionState) -> Value {
    json!({
        "name": info.name,
        "epoch": info.epoch,
        "pid": std::process::id(),
        "started": info.started_unix_s,
        "attached": state.attached,
        "processes": state.processes,
        "journal_bytes": state.journal_bytes,
        "frames_total": state.frames_total,
        "first_held": state.first_held,
        "refused_peers": state.refused_peers,
    })
}

/// `{"name", "epoch"}`, for `gateway.ready` and `gateway.info`.
pub(super) fn identity(info: &SessionInfo) -> Value {
    json!({"name": info.name, "epoch": info.epoch})
}
