"""Python asyncio client for ``tui-gateway``.

``tui-gateway`` is a child process a terminal UI spawns and talks to with
newline-delimited JSON-RPC 2.0 over its stdin and stdout (docs/protocol.md).
This package is the UI's half: it finds and starts the binary, frames and
matches messages, routes events, answers the gateway's own requests, runs
processes through it, notices when it exits and says why, restarts it if
asked, and shuts it down without leaving anything behind.

Quick start::

    import asyncio
    from tui_gateway_client import Gateway

    async def main() -> None:
        async with Gateway.start() as gw:           # TUI_GATEWAY_BIN or PATH
            print("gateway", gw.ready["version"], "pid", gw.pid)
            proc = await gw.spawn_process(["sh", "-c", "echo hello; echo oops >&2"])
            async for item in proc.lines():             # OutputLine: .stream, .line
                print(f"[{item.stream}] {item.line}")
            print(await proc.wait())                # ProcessExit(code=0, signal=None, cause='exit', ...)

    asyncio.run(main())

Map of the package (each module's docstring says more):

- ``gateway``: :class:`Gateway` (start, calls, events, processes, restart,
  sessions, close), :class:`RestartPolicy`, and for sessions
  (docs/sessions.md) :class:`ReattachPolicy` and :class:`SessionCursor`;
- ``process``: :class:`ProcessHandle`, :class:`ProcessExit` (an
  :class:`ExitStatus` with the command envelope's ``cause``, ``duration_ms``,
  ``output_bytes``, ...), :class:`OutputChunk`, :class:`OutputLine`,
  :class:`OutputText`, cancel ladders;
- ``events``: :class:`Event`, :class:`EventStream` (and the generation guard);
- ``payloads``: ``TypedDict``s of every documented payload and result;
- ``errors``: :class:`GatewayError` and its subclasses :class:`RpcError`,
  :class:`RequestTimeoutError`, :class:`GatewayExited`,
  :class:`GatewayStartError`, ... and the exit code meanings;

The Node client has the same API under camelCase names; the naming table is
``clients/README.md`` in the repository.
- ``session``: one gateway child process: spawn, ready, stderr, reap;
- ``connection``: JSON-RPC bookkeeping for one child (ids, pending calls,
  dispatch, server-to-client requests);
- ``transport`` and ``framing``: bytes to messages and back, tested in memory;
- ``child``: finding the binary, the stderr tail, emergency termination.

Lifecycle events the client adds to the gateway's own (their types have no
dot): ``exit`` (once per gateway child), ``restart``, ``stderr`` (one per
line), ``malformed`` (a stdout line that is not a message; it is skipped,
never raised), ``protocol_error``, and in a session ``detached`` (the child
was lost; the client attaches again) and ``reattached``.
"""

from __future__ import annotations

import logging as _logging

from .child import BINARY_ENV, BINARY_NAME, find_binary
from .connection import BatchCall, BatchEntry, Connection, RequestHandler
from .errors import (
    EXIT_CODE_MEANINGS,
    HANDLER_FAILED,
    INTERNAL_ERROR,
    INVALID_PARAMS,
    INVALID_REQUEST,
    METHOD_NOT_FOUND,
    OVERLOADED,
    BACKEND_EXITED,
    PARSE_ERROR,
    GatewayClosed,
    GatewayError,
    GatewayExited,
    GatewayNotFound,
    GatewayStartError,
    RequestTimeoutError,
    RpcError,
    describe_exit,
)
from .events import Event, EventStream, Unsubscribe
from .framing import DEFAULT_MAX_FRAME_BYTES, LineFramer, Oversize, Truncated
from .gateway import (
    BRIDGE_READY_TIMEOUT_S,
    DEFAULT_READY_TIMEOUT_S,
    Gateway,
    GatewayStarter,
    ReattachPolicy,
    RestartPolicy,
    SessionCursor,
)
from .payloads import (
    AckResult,
    BackendExitedPayload,
    BackendReadyPayload,
    CancelResult,
    CloseStdinResult,
    DetachedPayload,
    ExitCause,
    ExitPayload,
    GatewayAttachedPayload,
    GatewayInfo,
    GatewayStats,
    Limits,
    MalformedPayload,
    OutputLimit,
    OutputLimitPolicy,
    PingResult,
    ProcessExitPayload,
    ProcessInfo,
    ProcessLimits,
    ProcessOutputPayload,
    ProtocolErrorPayload,
    PtySize,
    ReadyPayload,
    ReattachedPayload,
    ResizeResult,
    ResourceUsage,
    RestartPayload,
    SessionInfo,
    SessionName,
    SignalResult,
    SpawnResult,
    StderrPayload,
    WriteResult,
)
from .process import (
    CancelLadder,
    CancelStep,
    ExitStatus,
    OutputChunk,
    OutputLine,
    OutputText,
    ProcessExit,
    ProcessHandle,
    SignalSpec,
    TerminalSize,
)
from .transport import Malformed, MessageReader, MessageWriter, Parsed

__version__ = "0.1.0"

# A library never prints on its own: without this, Python's last-resort
# handler would write warnings to stderr, over a curses screen.
_logging.getLogger("tui_gateway_client").addHandler(_logging.NullHandler())

__all__ = [
    "__version__",
    "Gateway",
    "GatewayStarter",
    "RestartPolicy",
    "ReattachPolicy",
    "SessionCursor",
    "BRIDGE_READY_TIMEOUT_S",
    "DEFAULT_READY_TIMEOUT_S",
    "ProcessHandle",
    "ExitStatus",
    "ProcessExit",
    "OutputChunk",
    "OutputLine",
    "OutputText",
    "TerminalSize",
    "BatchCall",
    "BatchEntry",
    "CancelLadder",
    "CancelStep",
    "SignalSpec",
    "Event",
    "EventStream",
    "Unsubscribe",
    "RequestHandler",
    "Connection",
    "MessageReader",
    "MessageWriter",
    "Parsed",
    "Malformed",
    "LineFramer",
    "Oversize",
    "Truncated",
    "DEFAULT_MAX_FRAME_BYTES",
    "find_binary",
    "BINARY_ENV",
    "BINARY_NAME",
    "GatewayError",
    "RpcError",
    "RequestTimeoutError",
    "GatewayStartError",
    "GatewayNotFound",
    "GatewayExited",
    "GatewayClosed",
    "EXIT_CODE_MEANINGS",
    "describe_exit",
    "PARSE_ERROR",
    "INVALID_REQUEST",
    "METHOD_NOT_FOUND",
    "INVALID_PARAMS",
    "INTERNAL_ERROR",
    "HANDLER_FAILED",
    "OVERLOADED",
    "BACKEND_EXITED",
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
    "ExitPayload",
    "RestartPayload",
    "StderrPayload",
    "MalformedPayload",
    "ProtocolErrorPayload",
    "PtySize",
    "ResizeResult",
    "CancelResult",
    "ExitCause",
    "OutputLimit",
    "OutputLimitPolicy",
    "ProcessLimits",
    "ResourceUsage",
    "SessionName",
    "SessionInfo",
    "GatewayAttachedPayload",
    "AckResult",
    "DetachedPayload",
    "ReattachedPayload",
]
