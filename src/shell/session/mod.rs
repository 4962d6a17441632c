//! Sessions (`docs/sessions.md`): a gateway whose client may go and come
//! back. The engine does not know whether its client is stdio, a socket or
//! gone; this module keeps the rest:
//!
//! * `place`: the runtime directory, checked, and a session's socket and
//!   lock (the lock decides who starts a session and who attaches);
//! * `journal`: every byte written, kept so a client that comes back gets
//!   the rest from a frame on;
//! * [`Server`]: the listening socket, connections that have not said what
//!   they want yet (each checked with `SO_PEERCRED` before a byte is read),
//!   and which client is attached;
//! * `relay`: `tui-gateway attach NAME`, a stdio relay to a session;
//! * `list`: `tui-gateway sessions`.

modules_public_for_testing! {
    journal;
}
pub(crate) mod list;
pub(crate) mod place;
pub(crate) mod relay;

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, Instant};

use mio::net::{UnixListener, UnixStream};
use mio::{Interest, Registry, Token};
use serde_json::{json, Value};
use slab::Slab;

use self::journal::{Journal, Refusal};
use self::place::Place;
use super::sys::socket;
use crate::config::Cursor;
use crate::engine::session::{self as engine_session, SessionInfo, SessionState};
use crate::engine::wire::{ErrorCode, RpcError};

/// Connections that have not sent their first line yet, at most.
pub(crate) const MAX_PENDING: usize = 8;
/// The longest first line a connection may send.
const MAX_FIRST_LINE: usize = 64 * 1024;

/// What a connection asked for in its first line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct AttachRequest {
    /// The id to answer under (its JSON text).
    pub(crate) id: Value,
    pub(crate) epoch: Option<String>,
    pub(crate) frames_received: Option<Cursor>,
    pub(crate) takeover: bool,
}

/// A connection that asked to attach, with the bytes it sent after its
/// first line (the start of its stream).
#[derive(Debug)]
pub(crate) struct Knock {
    pub(crate) stream: UnixStream,
    pub(crate) request: AttachRequest,
    pub(crate) rest: Vec<u8>,
}

/// A connection that has not said what it wants yet.
#[derive(Debug)]
struct Pending {
    stream: UnixStream,
    buf: Vec<u8>,
}

/// Who the session's client is.
#[derive(Debug)]
pub(crate) enum Client {
    /// The process that started the session, on the gateway's stdio.
    Stdio,
    /// A relay or a client on the socket.
    Socket(UnixStream),
    /// Nobody: detached.
    Gone,
}

/// A running session's socket side. See the module's contract.
#[derive(Debug)]
pub(crate) struct Server {
    place: Place,
    /// Held for the session's life: nobody else starts a session of this name.
    _lock: File,
    listener: UnixListener,
    pub(crate) info: SessionInfo,
    pub(crate) journal: Journal,
    pending: Slab<Pending>,
    first_pending_token: usize,
    pub(crate) client: Client,
    /// Bytes owed to a new client before its replay: the attach answer
    /// and, without a cursor, the session's `gateway.ready`.
    pub(crate) preamble: Vec<u8>,
    /// `gateway.detach` asked: detach once this many frames are written.
    pub(crate) detach_at: Option<u64>,
    linger: Duration,
    /// Since when nobody is attached and nothing runs.
    idle_since: Option<Instant>,
    /// Connections from another user, refused unread.
    pub(crate) refused_peers: u64,
}

impl Server {
    /// Starts session `place` (its lock held): replaces a stale socket,
    /// listens with mode 0600, registers the listener under `token` and
    /// pending connections from `first_pending_token` on.
    pub(crate) fn start(
        place: Place,
        lock: File,
        registry: &Registry,
        token: Token,
        first_pending_token: usize,
        journal_bytes: usize,
        linger: Duration,
    ) -> io::Result<Server> {
        // The lock is ours: whatever socket is there is a dead session's.
        match std::fs::remove_file(&place.socket) {
            Ok(()) => log::info!("replaced a stale socket at {}", place.socket.display()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        let mut listener = UnixListener::bind(&place.socket)?;
        std::fs::set_permissions(&place.socket, std::fs::Permissions::from_mode(0o600))?;
        registry.register(&mut listener, token, Interest::READABLE)?;
        let info = SessionInfo {
            name: place.name.clone(),
            epoch: new_epoch(),
            started_unix_s: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0.0, |d| d.as_secs_f64()),
        };
        Ok(Server {
            place,
            _lock: lock,
            listener,
            info,
            journal: Journal::new(journal_bytes),
            pending: Slab::new(),
            first_pending_token,
            client: Client::Stdio,
            preamble: Vec::new(),
            detach_at: None,
            linger,
            idle_since: None,
            refused_peers: 0,
        })
    }

    /// The session's state, for `gateway.session`.
    pub(crate) fn state(&self, processes: usize) -> SessionState {
        SessionState {
            attached: !matches!(self.client, Client::Gone),
            processes,
            journal_bytes: self.journal.bytes_held(),
            frames_total: self.journal.frames_total(),
            first_held: self.journal.first_held(),
            refused_peers: self.refused_peers,
        }
    }

    /// True for a token of a pending connection.
    pub(crate) fn is_pending_token(&self, token: Token) -> bool {
        (self.first_pending_token..self.first_pending_token + MAX_PENDING).contains(&token.0)
    }

    /// Accepts every waiting connection: another user's is closed before a
    /// byte is read; the rest wait for their first line.
    pub(crate) fn accept(&mut self, registry: &Registry) {
        loop {
            let (mut stream, _) = match self.listener.accept() {
                Ok(accepted) => accepted,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    log::warn!("accepting a session connection failed: {e}");
                    return;
                }
            };
            let me = socket::uid();
            match socket::peer_uid(stream.as_raw_fd()) {
                Ok(uid) if uid == me => {}
                Ok(uid) => {
                    self.refused_peers += 1;
                    super::stderr::line(&format!(
                        "[gateway-session] refused a connection from uid {uid} (the session is uid {me}'s)"
                    ));
                    continue;
                }
                Err(e) => {
                    self.refused_peers += 1;
                    log::warn!("refused a session connection whose peer is unknown: {e}");
                    continue;
                }
            }
            if self.pending.len() >= MAX_PENDING {
                log::warn!("refused a session connection: {MAX_PENDING} are already waiting to say what they want");
                continue;
            }
            let entry = self.pending.vacant_entry();
            let token = Token(self.first_pending_token + entry.key());
            if let Err(e) = registry.register(&mut stream, token, Interest::READABLE) {
                log::warn!("cannot watch a session connection: {e}");
                continue;
            }
            entry.insert(Pending {
                stream,
                buf: Vec::new(),
            });
        }
    }

    /// Reads a pending connection. Answers a `gateway.session` question
    /// and closes; refuses anything but `gateway.attach`; returns an
    /// attach request for the loop to decide.
    pub(crate) fn on_pending(
        &mut self,
        token: Token,
        registry: &Registry,
        processes: usize,
    ) -> Option<Knock> {
        let key = token.0 - self.first_pending_token;
        let pending = self.pending.get_mut(key)?;
        let mut chunk = [0u8; 4096];
        let line_end = loop {
            if let Some(end) = memchr::memchr(b'\n', &pending.buf) {
                break Some(end);
            }
            if pending.buf.len() >= MAX_FIRST_LINE {
                break None;
            }
            match pending.stream.read(&mut chunk) {
                Ok(0) => break None,
                Ok(n) => pending.buf.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return None,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => break None,
            }
        };
        let mut pending = self.pending.remove(key);
        let _ = registry.deregister(&mut pending.stream);
        let end = line_end?;
        let rest = pending.buf.split_off(end + 1);
        let line = &pending.buf[..end];
        match first_message(line) {
            Ok(First::Status(id)) => {
                let status = engine_session::status(&self.info, &self.state(processes));
                answer(&mut pending.stream, &id, Ok(status));
                None
            }
            Ok(First::Attach(request)) => Some(Knock {
                stream: pending.stream,
                request,
                rest,
            }),
            Err((id, error)) => {
                answer(&mut pending.stream, &id, Err(error));
                None
            }
        }
    }

    /// Decides an attach: `Ok` with the answer's result and where its
    /// replay starts in the journal, or the error to refuse it with.
    /// Nothing changes until the loop acts on it.
    pub(crate) fn admit(&self, request: &AttachRequest) -> Result<(Value, usize), RpcError> {
        if !matches!(self.client, Client::Gone) && !request.takeover {
            return Err(RpcError::new(
                ErrorCode::SessionBusy,
                format!(
                    "session {} has a client attached; attach with --takeover (\"takeover\": true) to detach it",
                    self.info.name
                ),
            )
            .with_data(json!({"session": self.info.name})));
        }
        if let Some(epoch) = request.epoch.as_ref().filter(|e| **e != self.info.epoch) {
            return Err(RpcError::new(
                ErrorCode::SessionEpoch,
                format!(
                    "session {} is another start (epoch {}) than the one the cursor belongs to (epoch {epoch}): that session ended",
                    self.info.name, self.info.epoch
                ),
            )
            .with_data(json!({"epoch": self.info.epoch})));
        }
        let (from, at) = self
            .journal
            .locate(match request.frames_received {
                Some(Cursor::At(n)) => Some(n),
                Some(Cursor::Latest) | None => None,
            })
            .map_err(|refusal| match refusal {
                Refusal::Gone {
                    first_held,
                    frames_total,
                } => RpcError::new(
                    ErrorCode::FramesGone,
                    format!(
                        "frames before {first_held} are no longer held (the journal is bounded by --session-journal); {frames_total} were written"
                    ),
                )
                .with_data(json!({"first_held": first_held, "frames_total": frames_total})),
                Refusal::Future {
                    asked,
                    frames_total,
                } => RpcError::invalid_params(format!(
                    "frames_received {asked} is more than the {frames_total} frames the session has written"
                )),
            })?;
        let result = json!({
            "session": self.info.name,
            "epoch": self.info.epoch,
            "pid": std::process::id(),
            "frames_from": from,
            "frames_total": self.journal.frames_total(),
        });
        Ok((result, at))
    }

    /// Refuses an attach: the error, then the connection closes.
    pub(crate) fn refuse(&mut self, mut knock: Knock, error: RpcError) {
        answer(&mut knock.stream, &knock.request.id, Err(error));
    }

    /// The bytes owed to a client just admitted with `result`: the answer,
    /// then the session's `gateway.ready` for a client without a cursor.
    pub(crate) fn greet(&mut self, request: &AttachRequest, result: Value) {
        self.preamble = response_line(&request.id, Ok(result));
        if request.frames_received.is_none() {
            if let Some(ready) = self.journal.ready() {
                self.preamble.extend_from_slice(ready);
            }
        }
    }

    /// Notes whether the session is idle (no client, nothing running) and
    /// returns when its linger ends it: `None` while someone is attached
    /// or something runs.
    pub(crate) fn linger_deadline(&mut self, processes: usize, now: Instant) -> Option<Instant> {
        if matches!(self.client, Client::Gone) && processes == 0 {
            Some(*self.idle_since.get_or_insert(now) + self.linger)
        } else {
            self.idle_since = None;
            None
        }
    }

    /// When the linger ends the session, as last noted.
    pub(crate) fn linger_at(&self) -> Option<Instant> {
        self.idle_since.map(|since| since + self.linger)
    }

    /// Why the session ends when its linger passed.
    pub(crate) fn linger_reason(&self) -> String {
        format!(
            "session {} was detached with nothing running for {}s (--session-linger)",
            self.info.name,
            self.linger.as_secs_f64()
        )
    }

    /// The session is over: its socket and lock file go (the lock is
    /// still held, so nobody takes them meanwhile).
    pub(crate) fn remove_files(&self) {
        self.place.remove();
    }
}

/// What a connection's first line is.
enum First {
    /// `gateway.session`: the state, then close.
    Status(Value),
    /// `gateway.attach`.
    Attach(AttachRequest),
}

/// Reads a connection's first line; an error carries the id to answer under.
fn first_message(line: &[u8]) -> Result<First, (Value, RpcError)> {
    let message: Value = serde_json::from_slice(line).map_err(|e| {
        (
            Value::Null,
            RpcError::new(ErrorCode::ParseError, format!("Parse error: {e}")),
        )
    })?;
    let id = message.get("id").cloned().unwrap_or(Value::Null);
    let refuse = |error: RpcError| Err((id.clone(), error));
    match message.get("method").and_then(Value::as_str) {
        Some("gateway.session") => Ok(First::Status(id)),
        Some("gateway.attach") => {
            let params = message.get("params").cloned().unwrap_or(json!({}));
            let epoch = match params.get("epoch") {
                None | Some(Value::Null) => None,
                Some(Value::String(e)) => Some(e.clone()),
                Some(_) => return refuse(RpcError::invalid_params("epoch is a string")),
            };
            let frames_received = match params.get("frames_received") {
                None | Some(Value::Null) => None,
                Some(Value::String(word)) if word == "latest" => Some(Cursor::Latest),
                Some(n) => match n.as_u64() {
                    Some(n) => Some(Cursor::At(n)),
                    None => {
                        return refuse(RpcError::invalid_params(
                            "frames_received is a count of frames, or \"latest\"",
                        ))
                    }
                },
            };
            let takeover = match params.get("takeover") {
                None | Some(Value::Null) => false,
                Some(Value::Bool(b)) => *b,
                Some(_) => return refuse(RpcError::invalid_params("takeover is true or false")),
            };
            Ok(First::Attach(AttachRequest {
                id,
                epoch,
                frames_received,
                takeover,
            }))
        }
        _ => refuse(RpcError::new(
            ErrorCode::InvalidRequest,
            "the first message on a session's socket is gateway.attach or gateway.session",
        )),
    }
}

/// One response line (with its `\n`).
fn response_line(id: &Value, outcome: Result<Value, RpcError>) -> Vec<u8> {
    let message = match outcome {
        Ok(result) => json!({"jsonrpc": "2.0", "id": id, "result": result}),
        Err(error) => json!({"jsonrpc": "2.0", "id": id, "error": error.to_value()}),
    };
    let mut line = serde_json::to_vec(&message).expect("a JSON value serializes");
    line.push(b'\n');
    line
}

/// Answers a connection that is then closed. The line is small and the
/// socket's buffer empty, so it fits; if it does not, the closing says
/// enough.
fn answer(stream: &mut UnixStream, id: &Value, outcome: Result<Value, RpcError>) {
    if let Err(e) = stream.write_all(&response_line(id, outcome)) {
        log::debug!("could not answer a session connection: {e}");
    }
}

/// 16 hexadecimal digits from the kernel's random source; the clock and
/// the pid if it cannot be read.
fn new_epoch() -> String {
    let mut bytes = [0u8; 8];
    let random = File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut bytes));
    let n = match random {
        Ok(()) => u64::from_le_bytes(bytes),
        Err(_) => {
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos() as u64);
            nanos ^ (u64::from(std::process::id()) << 32)
        }
    };
    format!("{n:016x}")
}
