"""Errors: what went wrong, in types a UI can catch, with messages a person can act on.

Every error the client raises on its own is a :class:`GatewayError`, and the
Node client has the same classes under the same names (clients/README.md,
"Errors"): :class:`RpcError`, :class:`RequestTimeoutError`,
:class:`GatewayStartError` (and its :class:`GatewayNotFound`),
:class:`GatewayExited`, :class:`GatewayClosed`. Cancelling a task raises
``asyncio.CancelledError`` as asyncio does, and a bad argument ``TypeError``
or ``ValueError``: those are not wrapped.
"""

from __future__ import annotations

import signal as _signal
from typing import Any, Dict, Mapping, Optional, Sequence

__all__ = [
    "EXIT_CODE_MEANINGS",
    "describe_exit",
    "signal_name",
    "GatewayError",
    "RpcError",
    "RequestTimeoutError",
    "GatewayStartError",
    "GatewayNotFound",
    "GatewayExited",
    "GatewayClosed",
    "PARSE_ERROR",
    "INVALID_REQUEST",
    "METHOD_NOT_FOUND",
    "INVALID_PARAMS",
    "INTERNAL_ERROR",
    "HANDLER_FAILED",
    "OVERLOADED",
    "BACKEND_EXITED",
]

# JSON-RPC error codes the gateway uses (docs/protocol.md, "Error codes").
PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603
HANDLER_FAILED = -32000
OVERLOADED = -32001
#: With a backend (``-- CMD``): it exited before answering (docs/bridge.md).
BACKEND_EXITED = -32002

#: The gateway's documented exit codes (README.md, "Exit codes").
EXIT_CODE_MEANINGS: Dict[int, str] = {
    0: "orderly shutdown: everything drained in time (stdin EOF, gateway.shutdown, a shutdown signal, parent exited)",
    3: "stdout peer gone, stalled, or too slow",
    4: "the shutdown deadline forced the exit, or a second shutdown signal arrived",
    64: "bad command line (unknown flag, bad value, or bad environment variable)",
    69: "backend unavailable",
    70: "internal error (a panic, or out of memory)",
    74: "host I/O error writing stdout (ENOSPC, EIO, ...)",
}


def signal_name(signum: int) -> str:
    """``9`` -> ``"SIGKILL"``; unknown numbers -> ``"SIG<n>"``."""
    try:
        return _signal.Signals(signum).name
    except ValueError:
        return f"SIG{signum}"


def describe_exit(code: Optional[int], signal: Optional[str]) -> str:
    """The documented meaning of an exit, for messages."""
    if signal is not None:
        if signal == "SIGKILL":
            return "killed by SIGKILL (by the OS, the user, or a forced close)"
        return f"killed by {signal}"
    if code is None:
        return "exit status unknown"
    meaning = EXIT_CODE_MEANINGS.get(code)
    if meaning is None:
        return f"exit code {code} (undocumented: not a tui-gateway code; was the right binary started?)"
    return meaning


def _tail_text(lines: Sequence[str]) -> str:
    if not lines:
        return "  (stderr was empty)"
    return "\n".join("  | " + line for line in lines)


class GatewayError(Exception):
    """Base class of every error this library raises on its own."""


class RpcError(GatewayError):
    """The gateway (or a backend) answered a request with a JSON-RPC error."""

    def __init__(self, code: int, message: str, data: Any = None, *, method: Optional[str] = None) -> None:
        self.code = code
        self.message = message
        self.data = data
        self.method = method
        super().__init__(code, message, data)

    def __str__(self) -> str:
        where = f" ({self.method})" if self.method else ""
        text = f"RPC error {self.code}{where}: {self.message}"
        if self.data is not None:
            text += f" data={self.data!r}"
        return text

    def to_error_object(self) -> Dict[str, Any]:
        """The JSON-RPC ``error`` member for this error."""
        obj: Dict[str, Any] = {"code": self.code, "message": self.message}
        if self.data is not None:
            obj["data"] = self.data
        return obj


class RequestTimeoutError(GatewayError, TimeoutError):
    """A request got no response within its timeout (seconds); its pending entry was removed.

    Also a :class:`TimeoutError`. The request itself still runs in the gateway.
    """

    def __init__(self, method: str, timeout: float) -> None:
        self.method = method
        self.timeout = timeout
        super().__init__(f"no response to {method!r} within {timeout:g} s")


def last_line_with(stderr_tail: Sequence[str], prefix: str) -> Optional[str]:
    """The last line of ``stderr_tail`` that starts with ``prefix``, without it."""
    for line in reversed(stderr_tail):
        if line.startswith(prefix):
            return line[len(prefix):]
    return None


class _ExitDetails:
    """Shared fields of errors that describe how a gateway process ended."""

    code: Optional[int]
    signal: Optional[str]
    reason: str
    exit_reason: Optional[str]
    stderr_tail: Sequence[str]
    pid: Optional[int]

    def _init_exit(
        self,
        code: Optional[int],
        signal: Optional[str],
        stderr_tail: Sequence[str],
        pid: Optional[int],
        reason: Optional[str] = None,
    ) -> None:
        self.code = code
        self.signal = signal
        # ``reason`` replaces the documented meaning of the code: a session
        # relay's 69 means "the attach was refused", not "backend unavailable".
        self.reason = reason if reason is not None else describe_exit(code, signal)
        self.stderr_tail = tuple(stderr_tail)
        self.pid = pid
        # The gateway states its own reason on its last stderr line (a
        # session relay, why its attach was refused or its connection ended).
        self.exit_reason = last_line_with(self.stderr_tail, "[gateway-exit] ")
        if self.exit_reason is None:
            self.exit_reason = last_line_with(self.stderr_tail, "[gateway-attach] ")

    def _status_text(self) -> str:
        if self.signal is not None:
            status = f"was killed by {self.signal}"
        elif self.code is not None:
            status = f"exited with code {self.code}"
        else:
            status = "ended"
        pid = f" (pid {self.pid})" if self.pid is not None else ""
        text = f"tui-gateway{pid} {status}: {self.reason}"
        if self.exit_reason and self.exit_reason != self.reason:
            text += f"; gateway said: {self.exit_reason}"
        return text


class GatewayStartError(GatewayError, _ExitDetails):
    """The gateway did not become ready: not found, not startable, exited, or silent.

    ``code``/``signal`` are set when the process exited before
    ``gateway.ready``; both are ``None`` for a timeout (the process was then
    killed) or when it could not be spawned at all.
    """

    def __init__(
        self,
        message: str,
        *,
        code: Optional[int] = None,
        signal: Optional[str] = None,
        stderr_tail: Sequence[str] = (),
        pid: Optional[int] = None,
        command: Sequence[str] = (),
        reason: Optional[str] = None,
    ) -> None:
        self._init_exit(code, signal, stderr_tail, pid, reason)
        if code is None and signal is None:
            self.reason = message
        self.message = message
        self.command = tuple(command)
        super().__init__(message)

    def __str__(self) -> str:
        lines = [self.message]
        if self.command:
            lines.append("command: " + " ".join(self.command))
        if self.code is not None or self.signal is not None:
            lines.append(self._status_text())
        lines.append("last lines of stderr:")
        lines.append(_tail_text(self.stderr_tail))
        return "\n".join(lines)


class GatewayNotFound(GatewayStartError):
    """No gateway binary at the explicit path, ``TUI_GATEWAY_BIN`` or ``PATH``."""


class GatewayExited(GatewayError, _ExitDetails):
    """The gateway process ended while this call (or handle) needed it.

    ``code`` is the exit code (``None`` when killed by a signal), ``signal``
    the signal's name (``"SIGKILL"``), ``reason`` the documented meaning of
    the code, ``exit_reason`` the gateway's own ``[gateway-exit]`` line,
    ``stderr_tail`` the last lines of its stderr, ``generation`` which child
    it was (1 for the first, +1 per restart).
    """

    def __init__(
        self,
        code: Optional[int],
        signal: Optional[str],
        stderr_tail: Sequence[str] = (),
        *,
        pid: Optional[int] = None,
        generation: int = 0,
        reason: Optional[str] = None,
    ) -> None:
        self._init_exit(code, signal, stderr_tail, pid, reason)
        self.generation = generation
        super().__init__(code, signal, self.reason)

    def __str__(self) -> str:
        return self._status_text() + "\nlast lines of stderr:\n" + _tail_text(self.stderr_tail)


class GatewayClosed(GatewayError):
    """The gateway was closed with ``close()`` (or gave up restarting); no more calls.

    ``exit`` is the last exit's details (the ``exit`` event's payload), if a gateway ran.
    """

    def __init__(self, message: str = "the gateway is closed; start a new one", exit: Optional[Mapping[str, Any]] = None) -> None:
        self.exit = exit
        super().__init__(message)
