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

from typing import Any, Dict, List, Literal, Optional, TypedDict

__all__ = [
    "Limits",
    "ReadyPayload",
    "ProcessOutputPayload",
    "ProcessExitPayload",
    "BackendReadyPayload",
    "BackendExitedPayload",
    "GatewayInfo",
    "GatewayStats",
    "SpawnResult",
    "WriteResult",
    "CloseStdinResult",
    "SignalResult",
    "ProcessInfo",
    "PtySize",
    "ResizeResult",
    "ExitPayload",
    "RestartPayload",
    "StderrPayload",
    "MalformedPayload",
    "ProtocolErrorPayload",
    "StreamName",
]

StreamName = Literal["stdout", "stderr", "pty"]


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


class ReadyPayload(TypedDict):
    """``gateway.ready``: always the first line the gateway writes."""

    version: str
    pid: int
    protocol: int
    methods: List[str]
    limits: Limits


class ProcessOutputPayload(TypedDict):
    """``process.output`` (streaming-class): ``data`` is text, or base64 with ``encoding: "base64"``;
    ``stream`` is ``"pty"`` for a process on a terminal (stdout and stderr together)."""

    proc: int
    stream: StreamName
    data: str


class ProcessExitPayload(TypedDict):
    """``process.exit``: exactly one per process, after all of its output."""

    proc: int
    code: Optional[int]
    signal: Optional[str]


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


class _ProcessInfoOptional(TypedDict, total=False):
    pty: PtySize


class ProcessInfo(_ProcessInfoOptional):
    """One entry of ``process.list`` (``pty``, the terminal's size, for a process on a terminal)."""

    proc: int
    pid: int
    argv: List[str]
    tag: Any
    started_at: float
    running: bool


# -- the client's own lifecycle events ---------------------------------------


class ExitPayload(TypedDict):
    """``exit``: a gateway child ended (once per child)."""

    generation: int
    pid: Optional[int]
    code: Optional[int]
    signal: Optional[str]
    reason: str
    gateway_reason: Optional[str]
    stderr_tail: List[str]
    restarting: bool


class RestartPayload(TypedDict):
    """``restart``: a new gateway child is ready (its ``gateway.ready`` was delivered just before)."""

    generation: int
    pid: int
    attempt: int
    ready: ReadyPayload


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
