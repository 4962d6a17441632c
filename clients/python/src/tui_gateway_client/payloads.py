"""Typed shapes of what the gateway sends, as documented in docs/protocol.md and docs/process.md.

These are ``TypedDict``s: at run time every payload is the plain ``dict``
decoded from JSON, so fields the gateway adds later simply appear; the
types only tell a type checker what the documents promise. Members that are
not always present are declared in ``total=False`` classes.

Two families:

- gateway events (``gateway.ready``, ``process.output``, ``process.exit``,
  ``backend.ready``, ``backend.exited``) and method results;
- the client's own lifecycle events (``exit``, ``restart``, ``stderr``,
  ``malformed``, ``protocol_error``): their types have no dot, so they can
  never collide with a gateway event type, which always has one.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Dict, List, Literal, Optional, TypedDict

if TYPE_CHECKING:
    from .errors import GatewayExited

__all__ = [
    "Limits",
    "ReadyPayload",
    "ProcessOutputPayload",
    "ProcessExitPayload",
    "BackendReadyPayload",
    "BackendExitedPayload",
    "GatewayInfo",
    "GatewayStats",
    "PingResult",
    "SpawnResult",
    "WriteResult",
    "CloseStdinResult",
    "SignalResult",
    "ProcessInfo",
    "PtySize",
    "ResizeResult",
    "CancelResult",
    "ExitCause",
    "OutputLimit",
    "OutputLimitPolicy",
    "ProcessLimits",
    "ResourceUsage",
    "ExitPayload",
    "RestartPayload",
    "SessionName",
    "GatewayAttachedPayload",
    "SessionInfo",
    "AckResult",
    "DetachedPayload",
    "ReattachedPayload",
    "StderrPayload",
    "MalformedPayload",
    "ProtocolErrorPayload",
    "StreamName",
]

StreamName = Literal["stdout", "stderr", "pty"]

#: Why a process ended (``cause`` of ``process.exit``, docs/process.md "Exit
#: causes"): its ``timeout_ms`` passed, a stream passed its ``output_limit``
#: with ``"kill"``, the client called ``process.cancel``, the gateway was
#: shutting down, the kernel killed it for one of its ``limits``, a signal the
#: gateway did not send, or it exited on its own.
ExitCause = Literal["timeout", "output_limit", "cancel", "shutdown", "limit", "signal", "exit"]

#: What happens to a stream past ``output_limit.bytes``: cancel the process
#: (``"kill"``), forward nothing more (``"truncate"``), or forward the first
#: half and, at the end, the last half (``"tail"``).
OutputLimitPolicy = Literal["kill", "truncate", "tail"]


class OutputLimit(TypedDict):
    """``process.spawn``'s ``output_limit``: per stream, in raw bytes (1 to 2**48; at most 16 MiB for ``"tail"``)."""

    bytes: int
    policy: OutputLimitPolicy


class ProcessLimits(TypedDict, total=False):
    """``process.spawn``'s ``limits``: rlimits set in the child before exec (each at least 1), per process of the tree.

    ``processes`` (``RLIMIT_NPROC``) counts every process of the user,
    machine-wide, and does not apply to root.
    """

    memory_bytes: int
    cpu_seconds: int
    open_files: int
    processes: int
    file_size_bytes: int


class ResourceUsage(TypedDict):
    """``usage`` of ``process.exit`` (with ``limits``): from the kernel's ``wait4``."""

    max_rss_bytes: int
    user_ms: int
    system_ms: int
    oom_killed: bool


class Limits(TypedDict, total=False):
    """Every bound in force (``limits`` of ``gateway.ready`` and ``gateway.info``)."""

    max_frame_bytes: int
    outbound_soft_limit_bytes: int
    outbound_soft_limit_s: float
    outbound_hard_limit_bytes: int
    outbound_high_water_bytes: int
    outbound_low_water_bytes: int
    stall_timeout_s: float
    coalesce_cap_bytes: int
    shutdown_grace_s: float
    max_processes: int
    child_stdin_limit_bytes: int


class SessionName(TypedDict):
    """The session a gateway serves (docs/sessions.md), as ``gateway.ready`` and
    ``gateway.info`` name it: ``epoch`` says which run of it (a cursor belongs to one)."""

    name: str
    epoch: str


class _ReadyOptional(TypedDict, total=False):
    session: SessionName


class ReadyPayload(_ReadyOptional):
    """``gateway.ready``: always the first line the gateway writes (``session`` in a
    session; with a backend, in the ``gateway`` member)."""

    version: str
    pid: int
    protocol: int
    methods: List[str]
    limits: Limits


class GatewayAttachedPayload(TypedDict):
    """``gateway.attached``: the first line a relay given a cursor (a count, or
    ``latest`` for a client without one yet) writes, before the stream (not
    part of it, not counted): the stream goes on at frame ``frames_from``
    (the cursor's base); ``frames_total`` frames had been written; ``pid`` is
    the session's. The client gives every relay it starts one of the two."""

    session: str
    epoch: str
    pid: int
    frames_from: int
    frames_total: int


class SessionInfo(TypedDict, total=False):
    """Result of ``gateway.session`` (one entry of ``tui-gateway sessions --json``)."""

    name: str
    epoch: str
    pid: int
    started: Any
    attached: bool
    processes: int
    journal_bytes: int
    frames_total: int
    first_held: int
    refused_peers: int


class AckResult(TypedDict):
    """Result of ``gateway.ack``: the oldest frame the journal still holds."""

    first_held: int


class _ProcessOutputOptional(TypedDict, total=False):
    truncated: bool
    skipped: int


class ProcessOutputPayload(_ProcessOutputOptional):
    """``process.output`` (streaming-class): ``data`` is text, or base64 with ``encoding: "base64"``;
    ``stream`` is ``"pty"`` for a process on a terminal (stdout and stderr together).

    With an ``output_limit``: ``truncated: true`` (``data`` empty) once the
    stream passed its limit and nothing more of it is forwarded; ``skipped``
    (policy ``"tail"``) on the first event after the gap, the bytes left out.
    """

    proc: int
    stream: StreamName
    data: str


class _ProcessExitOptional(TypedDict, total=False):
    discarded: Dict[str, int]
    limit: str
    usage: ResourceUsage


class ProcessExitPayload(_ProcessExitOptional):
    """``process.exit``: exactly one per process, after all of its output.

    ``cause`` says why it ended; ``duration_ms`` from spawn to reaping;
    ``output_bytes`` the raw bytes written per stream, forwarded or not;
    ``discarded`` (with ``output_limit``) the bytes not forwarded per stream;
    ``limit`` (with cause ``"limit"``) which limit, ``"cpu_seconds"`` or
    ``"file_size_bytes"``; ``usage`` (with ``limits``) what it used.
    """

    proc: int
    code: Optional[int]
    signal: Optional[str]
    cause: ExitCause
    duration_ms: int
    output_bytes: Dict[str, int]


#: ``backend.ready`` (with a backend, ``docs/bridge.md``): the backend's own
#: ``gateway.ready`` payload, as it sent it, when it came after the client's
#: ready (a late or restarted backend). Its fields are the backend's.
BackendReadyPayload = Dict[str, Any]


class BackendExitedPayload(TypedDict):
    """``backend.exited`` (with the bridge): the backend ended; ``restarting`` says if the gateway restarts it."""

    code: Optional[int]
    signal: Optional[str]
    restarting: bool


class _GatewayInfoOptional(TypedDict, total=False):
    process_tree: Dict[str, Any]
    session: SessionName


class GatewayInfo(_GatewayInfoOptional):
    """Result of ``gateway.info`` (``process_tree``: how descendants are held and killed at exit)."""

    version: str
    pid: int
    protocol: int
    uptime_s: float
    methods: List[str]
    services: List[str]
    config: Dict[str, Any]
    client: Any
    limits: Limits


class PingResult(TypedDict):
    """Result of ``gateway.ping``: ``{"ok": True}`` (the Node client's ``ping()`` gives the same)."""

    ok: bool


class GatewayStats(TypedDict, total=False):
    """Result of ``gateway.stats`` (counters; see docs/protocol.md)."""

    frames_in: int
    bytes_in: int
    frames_out: int
    bytes_out: int
    parse_errors: int
    invalid_requests: int
    oversize_frames: int
    truncated_frames: int
    responses_unmatched: int
    outbound_queue_bytes: int
    outbound_high_water_mark: int
    deltas_coalesced: int
    frames_dropped: int
    write_stalls: int
    signals: Dict[str, int]
    stderr_lines_written: int
    stderr_lines_dropped: int
    stderr_bytes_dropped: int
    children_alive: int
    children_spawned: int
    children_reaped: int
    frames_refused: int
    orphans_reaped: int
    ptys_open: int


class SpawnResult(TypedDict):
    """Result of ``process.spawn``."""

    proc: int
    pid: int


class WriteResult(TypedDict):
    """Result of ``process.write``: bytes accepted by this call, bytes still waiting for the child."""

    queued: int
    pending: int


class CloseStdinResult(TypedDict):
    """Result of ``process.close_stdin``."""

    ok: bool
    pending: int


class SignalResult(TypedDict):
    """Result of ``process.signal``."""

    ok: bool
    signal: str


class PtySize(TypedDict):
    """A terminal size: ``process.spawn``'s ``pty`` parameter, ``process.list``'s ``pty`` member."""

    rows: int
    cols: int


class ResizeResult(TypedDict):
    """Result of ``process.resize``."""

    ok: bool
    rows: int
    cols: int


class CancelResult(TypedDict):
    """Result of ``process.cancel``, sent once nothing of the process tree is left: ``step``
    is the index of the last ladder step sent and ``signal`` its name; ``code`` and
    ``exit_signal`` are the process's own exit, as in its ``process.exit``."""

    proc: int
    step: int
    signal: str
    code: Optional[int]
    exit_signal: Optional[str]


class _ProcessInfoOptional(TypedDict, total=False):
    pty: PtySize
    timeout_ms: int
    output_limit: OutputLimit
    limits: ProcessLimits
    cancelling: bool


class ProcessInfo(_ProcessInfoOptional):
    """One entry of ``process.list`` (``pty``, the terminal's size, for a process on a terminal;
    ``timeout_ms``, ``output_limit`` and ``limits`` when given at spawn; ``cancelling``
    while its cancel ladder runs)."""

    proc: int
    pid: int
    argv: List[str]
    tag: Any
    started_at: float
    running: bool
    elapsed_ms: int


# -- the client's own lifecycle events ---------------------------------------


class ExitPayload(TypedDict):
    """``exit``: a gateway child ended (once per child); also what ``close()`` returns.

    ``reason`` is the documented meaning of the code, ``exit_reason`` the
    gateway's own ``[gateway-exit]`` line (a session relay's
    ``[gateway-attach]`` line), ``orphans_killed`` the process groups the
    client killed because the gateway died by a signal and could not,
    ``detached`` whether this client went while its session runs on
    (``close()``, ``detach()``; always ``False`` without a session), ``error``
    the :class:`~tui_gateway_client.errors.GatewayExited` that pending calls
    got, or ``None`` for a clean exit (code 0) or a detach asked for. The
    Node client's ``ExitInfo`` has the same members in camelCase.
    """

    generation: int
    pid: Optional[int]
    code: Optional[int]
    signal: Optional[str]
    reason: str
    exit_reason: Optional[str]
    stderr_tail: List[str]
    restarting: bool
    orphans_killed: List[int]
    detached: bool
    error: Optional["GatewayExited"]


class RestartPayload(TypedDict):
    """``restart``: a new gateway child is ready (its ``gateway.ready`` was delivered just before)."""

    generation: int
    pid: int
    attempt: int
    ready: ReadyPayload


class DetachedPayload(TypedDict):
    """``detached``: a session gateway lost its process (a relay killed, a pipe
    broken) and attaches again with ``frames_received`` as its cursor;
    pending calls and process handles wait."""

    generation: int
    reason: str
    frames_received: int


class ReattachedPayload(TypedDict):
    """``reattached``: attached again after ``detached``; the stream goes on at
    frame ``frames_from`` (``frames_total`` had been written): nothing was lost."""

    generation: int
    frames_from: int
    frames_total: Optional[int]


class StderrPayload(TypedDict):
    """``stderr``: one line the gateway wrote to stderr (diagnostics, ``[gateway-exit]``)."""

    generation: int
    line: str


class MalformedPayload(TypedDict):
    """``malformed``: a stdout line that is not a JSON-RPC message; it was skipped."""

    generation: int
    reason: str
    length: int
    preview: str


class ProtocolErrorPayload(TypedDict):
    """``protocol_error``: a well-formed message the client cannot place (an error
    response with ``id: null``, a response to an id it never sent)."""

    generation: int
    reason: str
    message: Any
