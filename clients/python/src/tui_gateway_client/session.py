"""One gateway child process: spawned with pipes, read, ready, reaped.

A :class:`Session` is what a :class:`~tui_gateway_client.gateway.Gateway`
runs underneath, one per child (generation 1, then 2, 3, ... after
restarts). It owns the OS process, its pipes, the
:class:`~tui_gateway_client.connection.Connection` over them (pending calls,
ids), the stderr tail, the process handles started on it, and the record
that emergency termination uses. It knows nothing of restarts or of the
UI's subscriptions: it reports through the callbacks it is given.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from typing import Any, Callable, Dict, List, Mapping, Optional, Set, Tuple

from . import child
from .child import ChildRecord, StderrTail, kill_groups
from .connection import Connection, RequestHandler
from .errors import GatewayExited, GatewayStartError, signal_name
from .payloads import ReadyPayload
from .process import ProcessHandle
from .transport import Malformed, MessageReader, MessageWriter

__all__ = ["Session", "spawn_session", "STREAM_LIMIT", "STDERR_DRAIN_S", "EXIT_WAIT_S", "ASSUMED_GATEWAY_GRACE_S"]

log = logging.getLogger("tui_gateway_client")

#: asyncio's StreamReader buffer limit for the child's pipes. The client
#: reads chunks and frames them itself, so this is not a line limit; it
#: only sets when asyncio stops reading the pipe ahead of the client.
STREAM_LIMIT = 1024 * 1024
#: After stdout EOF, how long to wait for stderr EOF (the last lines, such
#: as ``[gateway-exit]``, are wanted in the exit report).
STDERR_DRAIN_S = 2.0
#: After stdout EOF, how long to wait for the process to be reaped before
#: it gets SIGKILL (a gateway exits right after closing stdout).
EXIT_WAIT_S = 5.0
#: Shutdown grace assumed before ``gateway.ready`` says the real one (the
#: gateway's default).
ASSUMED_GATEWAY_GRACE_S = 1.0


class Session:
    """One gateway child process and its connection; see the module docs."""

    def __init__(
        self,
        generation: int,
        process: "asyncio.subprocess.Process",
        command: List[str],
        *,
        max_frame_bytes: int,
        handlers: Mapping[str, RequestHandler],
        on_event: Callable[["Session", str, Any], None],
        on_malformed: Callable[["Session", Malformed], None],
        on_protocol_error: Callable[["Session", str, Any], None],
        on_stderr: Callable[["Session", str], None],
    ) -> None:
        loop = asyncio.get_running_loop()
        self.generation = generation
        self.process = process
        self.pid: int = process.pid
        self.command = command
        self.started_at = loop.time()
        self.tail = StderrTail()
        self.record = ChildRecord(process.pid, ASSUMED_GATEWAY_GRACE_S)
        assert process.stdin is not None and process.stdout is not None and process.stderr is not None
        self.writer = MessageWriter(process.stdin)
        self.conn = Connection(
            MessageReader(process.stdout, max_frame_bytes=max_frame_bytes),
            self.writer,
            handlers=handlers,
            on_event=lambda type, payload: on_event(self, type, payload),
            on_malformed=lambda item: on_malformed(self, item),
            on_protocol_error=lambda reason, msg: on_protocol_error(self, reason, msg),
        )
        self._on_stderr = on_stderr
        self.ready: Optional[ReadyPayload] = None
        self.ready_future: asyncio.Future[ReadyPayload] = loop.create_future()
        self.procs: Dict[int, ProcessHandle[Any]] = {}
        self.exit: Optional[GatewayExited] = None
        self.ended = asyncio.Event()
        self.reader_task: Optional[asyncio.Task[None]] = None
        self.stderr_task: Optional[asyncio.Task[None]] = None

    @property
    def live(self) -> bool:
        return self.ready is not None and self.exit is None

    @property
    def grace_s(self) -> float:
        if self.ready is not None:
            # With a backend, the gateway's own ready payload is the `gateway` field.
            ready: Mapping[str, Any] = self.ready
            gateway = ready.get("gateway")
            limits = ready.get("limits") or (gateway.get("limits") if isinstance(gateway, dict) else None) or {}
            value = limits.get("shutdown_grace_s")
            if isinstance(value, (int, float)):
                return float(value)
        return ASSUMED_GATEWAY_GRACE_S

    def exited(self) -> GatewayExited:
        """A fresh copy of the exit error (one per raise, so tracebacks do not pile up)."""
        e = self.exit
        assert e is not None
        return GatewayExited(e.code, e.signal, e.stderr_tail, pid=e.pid, generation=e.generation)

    def mark_ready(self, payload: ReadyPayload) -> None:
        self.ready = payload
        self.record.grace_s = self.grace_s
        if not self.ready_future.done():
            self.ready_future.set_result(payload)

    # -- running -----------------------------------------------------------------

    def start(self) -> None:
        """Start reading stdout and stderr (after the owner made this session current)."""
        loop = asyncio.get_running_loop()
        self.stderr_task = loop.create_task(self._pump_stderr())
        self.reader_task = loop.create_task(self.conn.run())

    async def _pump_stderr(self) -> None:
        stream = self.process.stderr
        assert stream is not None
        while True:
            chunk = await stream.read(64 * 1024)
            if not chunk:
                break
            for line in self.tail.feed(chunk):
                self._on_stderr(self, line)
        for line in self.tail.finish():
            self._on_stderr(self, line)

    async def wait_ready(self, timeout: float) -> None:
        """Wait for ``gateway.ready``; raise :class:`GatewayStartError` on an early exit or a timeout."""
        assert self.reader_task is not None
        waitables: Set["asyncio.Future[Any]"] = {self.ready_future, self.reader_task}
        done, _ = await asyncio.wait(waitables, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        if self.ready_future in done:
            return
        if self.reader_task in done:
            code, sig = await self.reap()
            raise GatewayStartError(
                "tui-gateway exited before it was ready",
                code=code,
                signal=sig,
                stderr_tail=list(self.tail.lines),
                pid=self.pid,
                command=self.command,
            )
        kill_process(self.process)
        await self.reap()
        raise GatewayStartError(
            f"tui-gateway did not write gateway.ready within {timeout:g} s, so it was killed",
            stderr_tail=list(self.tail.lines),
            pid=self.pid,
            command=self.command,
        )

    async def discard(self) -> None:
        """Clean up a session that never became ready (or whose start was cancelled)."""
        kill_process(self.process)
        self.writer.close()
        for task in (self.reader_task, self.stderr_task):
            if task is not None and not task.done():
                task.cancel()
        try:
            await asyncio.shield(self.process.wait())
        except asyncio.CancelledError:
            pass
        close_transport(self.process)
        self.record.done = True
        child.unregister(self.record)
        self.ended.set()

    async def reap(self) -> Tuple[Optional[int], Optional[str]]:
        """After stdout EOF: collect stderr's last lines and the exit status (code, signal name)."""
        if self.stderr_task is not None:
            try:
                await asyncio.wait_for(asyncio.shield(self.stderr_task), STDERR_DRAIN_S)
            except asyncio.TimeoutError:
                self.stderr_task.cancel()
            except Exception:
                log.exception("tui-gateway client: reading stderr failed")
        try:
            rc = await asyncio.wait_for(self.process.wait(), EXIT_WAIT_S)
        except asyncio.TimeoutError:
            log.warning("tui-gateway pid %d closed stdout but did not exit; killing it", self.pid)
            kill_process(self.process)
            kill_groups(self.record.groups)
            rc = await self.process.wait()
        # Release the pipes (a stray process may still hold stderr open).
        self.writer.close()
        close_transport(self.process)
        if rc < 0:
            return None, signal_name(-rc)
        return rc, None


async def spawn_session(
    generation: int,
    command: List[str],
    *,
    env: Optional[Dict[str, str]],
    cwd: Optional[str],
    **session_args: Any,
) -> Session:
    """Start the gateway process with pipes; the session is not started (see :meth:`Session.start`)."""
    try:
        process = await asyncio.create_subprocess_exec(
            *command,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=env,
            cwd=cwd,
            limit=STREAM_LIMIT,
        )
    except OSError as exc:
        raise GatewayStartError(f"cannot execute {command[0]}: {exc.strerror or exc}", command=command) from exc
    session = Session(generation, process, command, **session_args)
    child.register(session.record)
    return session


def signal_process(process: "asyncio.subprocess.Process", sig: int) -> None:
    """Signal a child that has not been reaped; a vanished one is ignored."""
    if process.returncode is None:
        try:
            process.send_signal(sig)
        except ProcessLookupError:
            pass


def kill_process(process: "asyncio.subprocess.Process") -> None:
    signal_process(process, signal.SIGKILL)


def close_transport(process: "asyncio.subprocess.Process") -> None:
    """Close an exited child's pipes now rather than when the loop is gone.

    asyncio closes a subprocess transport once every pipe reached EOF; a
    process that inherited a pipe (a shell's ``sleep`` behind a fake
    gateway) can delay that past the loop's end, which makes asyncio
    complain from ``__del__``. There is no public API for this, hence the
    guarded private attribute.
    """
    transport = getattr(process, "_transport", None)
    if transport is not None and process.returncode is not None:
        transport.close()


async def wait_event(event: asyncio.Event, timeout: float) -> bool:
    """Whether ``event`` got set within ``timeout`` seconds."""
    if event.is_set():
        return True
    try:
        await asyncio.wait_for(event.wait(), max(0.0, timeout))
    except asyncio.TimeoutError:
        return False
    return True
