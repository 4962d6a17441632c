"""The gateway as an OS process: finding the binary, its stderr, and never leaving it behind.

Process hygiene, in the order things can go wrong:

- ``Gateway.close()`` is the orderly path (see ``gateway.py``).
- If the UI's event loop shuts down with the gateway still running (for
  example ``asyncio.run(main())`` returns without ``close()``), the
  gateway's supervisor task is cancelled by ``asyncio.run``; it then calls
  :func:`terminate_sync`: SIGTERM to the gateway, which starts its drain at
  once (its children get SIGTERM immediately and SIGKILL at 850 ms with the
  default 1 s grace, see docs/process.md "Shutdown"), and a wait of at most
  its shutdown grace plus :data:`TERMINATE_MARGIN_S`, after which the gateway
  gets SIGKILL and the process groups of its children the client knows of
  get SIGKILL too.
- An ``atexit`` hook does the same for every gateway still registered when
  the interpreter exits (event loop never shut down cleanly, ``sys.exit``
  from a thread, ...).
- If the UI dies without running either (``os._exit``, SIGKILL, a crash),
  the gateway notices by itself: its stdin reaches EOF and its parent is
  gone, and it drains and exits, killing its children.

SIGTERM rather than SIGKILL is deliberate: SIGKILL would stop the gateway
before it could kill its own children, which would then be orphaned.
"""

from __future__ import annotations

import atexit
import collections
import os
import shutil
import signal
import threading
import time
from typing import Callable, Deque, Dict, List, Optional, Set

from .errors import GatewayNotFound

__all__ = [
    "BINARY_NAME",
    "BINARY_ENV",
    "STDERR_TAIL_LINES",
    "STDERR_LINE_CHARS",
    "TERMINATE_MARGIN_S",
    "find_binary",
    "StderrTail",
    "ChildRecord",
    "terminate_sync",
    "process_exited",
]

BINARY_NAME = "tui-gateway"
BINARY_ENV = "TUI_GATEWAY_BIN"

#: Stderr lines kept for error messages: enough for a panic message and the
#: ``[gateway-exit]`` line, short enough to show in a UI.
STDERR_TAIL_LINES = 40
#: A stderr line is cut to this many characters (a runaway log line must not
#: grow the tail without bound).
STDERR_LINE_CHARS = 2000
#: Time on top of the gateway's own shutdown grace that emergency
#: termination waits before SIGKILL: the gateway's drain is bounded by its
#: grace, this covers scheduling delays on a loaded machine.
TERMINATE_MARGIN_S = 0.5
#: Poll interval while waiting synchronously for an exit (no event loop).
_POLL_S = 0.01


def find_binary(command: Optional[str] = None) -> str:
    """The gateway binary: ``command`` (a path, or a name looked up in ``PATH``),
    else ``$TUI_GATEWAY_BIN``, else ``tui-gateway`` on ``PATH``.

    Raises :class:`GatewayNotFound` naming every place it looked. An explicit
    path or ``TUI_GATEWAY_BIN`` that does not exist is an error, not a reason
    to fall back to ``PATH``: a silently different binary is worse.
    """
    if command:
        return _resolve(command, f"the command given ({command!r})")
    from_env = os.environ.get(BINARY_ENV)
    if from_env:
        return _resolve(from_env, f"${BINARY_ENV} ({from_env!r})")
    found = shutil.which(BINARY_NAME)
    if found:
        return found
    raise GatewayNotFound(
        f"cannot find the {BINARY_NAME} binary: no command given, ${BINARY_ENV} is not set, "
        f"and {BINARY_NAME!r} is not on PATH. Install it with `cargo install --locked --path .` "
        f"in the tui-gateway repository (it lands in ~/.cargo/bin, which must be on PATH), "
        f"or set ${BINARY_ENV} to the binary, or pass command=."
    )


def _resolve(command: str, what: str) -> str:
    if os.sep in command or (os.altsep and os.altsep in command):
        if not os.path.exists(command):
            raise GatewayNotFound(f"cannot start tui-gateway: {what} does not exist")
        if os.path.isdir(command) or not os.access(command, os.X_OK):
            raise GatewayNotFound(f"cannot start tui-gateway: {what} is not an executable file")
        return os.path.abspath(command)
    found = shutil.which(command)
    if not found:
        raise GatewayNotFound(f"cannot start tui-gateway: {what} is not on PATH")
    return found


class StderrTail:
    """A bounded ring of the last stderr lines, fed with raw chunks."""

    def __init__(self, max_lines: int = STDERR_TAIL_LINES, max_chars: int = STDERR_LINE_CHARS) -> None:
        self.lines: Deque[str] = collections.deque(maxlen=max_lines)
        self._max_chars = max_chars
        self._partial = bytearray()

    def feed(self, chunk: bytes) -> List[str]:
        """Add bytes; return the complete lines they finish (cut to ``max_chars``)."""
        self._partial += chunk
        out: List[str] = []
        while True:
            nl = self._partial.find(b"\n")
            if nl < 0:
                break
            out.append(self._take(nl, 1))
        # A line that never ends is cut, so the partial buffer stays bounded.
        while len(self._partial) > self._max_chars * 4:
            out.append(self._take(self._max_chars * 4, 0))
        return out

    def finish(self) -> List[str]:
        """At EOF: the unterminated last line, if any."""
        if not self._partial:
            return []
        return [self._take(len(self._partial), 0)]

    def _take(self, end: int, skip: int) -> str:
        raw = bytes(self._partial[:end])
        del self._partial[: end + skip]
        line = raw.decode("utf-8", errors="replace").rstrip("\r")[: self._max_chars]
        self.lines.append(line)
        return line


def process_exited(pid: int) -> bool:
    """Whether ``pid`` is gone or a zombie (exited, not yet reaped)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except FileNotFoundError:
        return True
    except OSError:
        stat = b""
    if stat:
        # The state is the first field after the parenthesised command name.
        state = stat[stat.rfind(b")") + 2 : stat.rfind(b")") + 3]
        return state in (b"Z", b"X", b"x")
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


class ChildRecord:
    """What emergency termination needs to know about one gateway process."""

    def __init__(self, pid: int, grace_s: float) -> None:
        self.pid = pid
        self.grace_s = grace_s
        #: Process groups of children started through process handles and not
        #: known to have exited (their pid is their pgid).
        self.groups: Set[int] = set()
        self.done = False


_registry: Dict[int, ChildRecord] = {}
_registry_lock = threading.Lock()
_atexit_installed = False


def register(record: ChildRecord) -> None:
    global _atexit_installed
    with _registry_lock:
        _registry[record.pid] = record
        if not _atexit_installed:
            atexit.register(_terminate_all_at_exit)
            _atexit_installed = True


def unregister(record: ChildRecord) -> None:
    with _registry_lock:
        if _registry.get(record.pid) is record:
            del _registry[record.pid]


def live_records() -> List[ChildRecord]:
    with _registry_lock:
        return list(_registry.values())


def kill_groups(groups: Set[int], sig: int = signal.SIGKILL) -> List[int]:
    """Signal each process group; groups already gone are ignored. Returns the groups signalled."""
    killed: List[int] = []
    for pgid in sorted(groups):
        try:
            os.killpg(pgid, sig)
        except (ProcessLookupError, PermissionError):
            continue
        killed.append(pgid)
    return killed


def terminate_sync(record: ChildRecord, *, clock: Callable[[], float] = time.monotonic) -> None:
    """Stop a gateway without an event loop; see the module docs. Blocks at most
    its grace plus :data:`TERMINATE_MARGIN_S` (plus a short SIGKILL wait)."""
    if record.done:
        return
    record.done = True
    unregister(record)
    pid = record.pid
    if process_exited(pid):
        # Already gone without our knowing how: its children may be orphans.
        kill_groups(record.groups)
        return
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        kill_groups(record.groups)
        return
    deadline = clock() + record.grace_s + TERMINATE_MARGIN_S
    while clock() < deadline:
        if process_exited(pid):
            return  # its drain killed its children
        time.sleep(_POLL_S)
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    kill_groups(record.groups)
    deadline = clock() + 1.0
    while clock() < deadline and not process_exited(pid):
        time.sleep(_POLL_S)


def _terminate_all_at_exit() -> None:
    for record in live_records():
        try:
            terminate_sync(record)
        except Exception:  # never let cleanup raise at interpreter exit
            pass
