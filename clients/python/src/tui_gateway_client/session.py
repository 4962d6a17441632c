"""One gateway child process: spawned with pipes, read, ready, reaped.

A :class:`Session` is what a :class:`~tui_gateway_client.gateway.Gateway`
runs underneath, one per child (generation 1, then 2, 3, ... after
restarts). It owns the OS process, its pipes, the
:class:`~tui_gateway_client.connection.Connection` over them (pending calls,
ids), the stderr tail, the process handles started on it, and the record
that emergency termination uses. It knows nothing of restarts or of the
UI's subscriptions: it reports through the callbacks it is given.

(Not to be confused with a gateway *session*, docs/sessions.md, which
outlives its client: a :class:`Session` started with ``--session NAME`` or
``attach NAME`` has a :class:`SessionLink` saying which one, how it counts
the frames of the session's stream, and whether its process is the session
itself or a relay to it. A reattach makes a new :class:`Session` that takes
over the connection, the pending calls and the process handles of the one
it replaces.)
"""

from __future__ import annotations

import asyncio
import logging
import signal
import subprocess
import threading
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Literal, Mapping, Optional, Set, Tuple, Union

from . import child
from .child import ChildRecord, StderrTail, kill_groups
from .connection import Connection, RequestHandler
from .errors import GatewayExited, GatewayStartError, last_line_with, signal_name
from .payloads import ReadyPayload
from .process import ProcessHandle
from .transport import Malformed, MessageReader, MessageWriter

__all__ = [
    "Session",
    "SessionLink",
    "PipeProcess",
    "spawn_session",
    "STREAM_LIMIT",
    "STDERR_DRAIN_S",
    "EXIT_WAIT_S",
    "ASSUMED_GATEWAY_GRACE_S",
    "SESSION_EXIT_WAIT_S",
]

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
#: A session's own process closed its stdout: if it does not exit within
#: this long, it let this client go (a detach, a takeover) and runs on. A
#: session that ends exits right after closing its stdout.
SESSION_EXIT_WAIT_S = 0.5


@dataclass
class SessionLink:
    """What a gateway process of a session client is (docs/sessions.md).

    ``role``: ``"session"`` when the process is the session itself,
    ``"relay"`` when it relays to one, ``"unknown"`` until the first line
    says which (``--session NAME`` starts one or attaches): the session's
    ``gateway.ready``, or a relay's ``gateway.attached``. Every relay is
    given ``--frames-received`` (a saved count, or ``latest``), so a relay
    never sends a ready: ``gateway.attached`` makes it ready, and
    ``previous_ready`` stands for the ready (that of the process it
    replaces, on a reattach). The cursor is ``base`` (0 for the session
    itself, a relay's ``frames_from``; ``None`` until known) plus the lines
    read, without the first when ``skip_first`` (``gateway.attached``, which
    is not part of the stream).
    """

    name: str
    role: Literal["unknown", "session", "relay"]
    base: Optional[int]
    skip_first: bool
    previous_ready: Optional[ReadyPayload] = None
    attached: Optional[Dict[str, Any]] = None


class PipeProcess:
    """A gateway process of a session client: pipes on the event loop, and
    nothing that kills it behind the client's back.

    asyncio's own subprocess transport SIGKILLs a child still running when
    it is closed or garbage-collected, which would end a session that is
    meant to outlive this client. This runs the child with
    :class:`subprocess.Popen`, connects its pipes to the loop, and reaps it
    in a daemon thread (the loop learns the exit through a future). Same
    members as ``asyncio.subprocess.Process`` as far as :class:`Session`
    uses them.
    """

    def __init__(
        self,
        popen: "subprocess.Popen[bytes]",
        stdin: asyncio.StreamWriter,
        stdout: asyncio.StreamReader,
        stderr: asyncio.StreamReader,
        transports: List[asyncio.BaseTransport],
    ) -> None:
        loop = asyncio.get_running_loop()
        self._popen = popen
        self.pid = popen.pid
        self.stdin: Optional[asyncio.StreamWriter] = stdin
        self.stdout: Optional[asyncio.StreamReader] = stdout
        self.stderr: Optional[asyncio.StreamReader] = stderr
        self._transports = transports
        self._exited: "asyncio.Future[int]" = loop.create_future()
        threading.Thread(target=_reap_in_thread, args=(popen, loop, self._exited), name=f"tui-gateway-reap-{popen.pid}", daemon=True).start()

    @property
    def returncode(self) -> Optional[int]:
        return self._exited.result() if self._exited.done() else None

    async def wait(self) -> int:
        return await asyncio.shield(self._exited)

    def send_signal(self, sig: int) -> None:
        if self.returncode is not None:
            raise ProcessLookupError(self.pid)
        self._popen.send_signal(sig)

    def close_pipes(self) -> None:
        """Let go of the pipes (the process, if it runs on, sees EOF and EPIPE)."""
        for transport in self._transports:
            transport.close()


def _reap_in_thread(popen: "subprocess.Popen[bytes]", loop: asyncio.AbstractEventLoop, exited: "asyncio.Future[int]") -> None:
    rc = popen.wait()

    def settle() -> None:
        if not exited.done():
            exited.set_result(rc)

    try:
        loop.call_soon_threadsafe(settle)
    except RuntimeError:
        pass  # the loop is closed: nobody waits for it any more


async def _spawn_pipe_process(command: List[str], env: Optional[Dict[str, str]], cwd: Optional[str]) -> PipeProcess:
    loop = asyncio.get_running_loop()
    popen = subprocess.Popen(
        command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=cwd, bufsize=0
    )
    assert popen.stdin is not None and popen.stdout is not None and popen.stderr is not None
    try:
        stdout = asyncio.StreamReader(limit=STREAM_LIMIT)
        out_transport, _ = await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(stdout), popen.stdout)
        stderr = asyncio.StreamReader(limit=STREAM_LIMIT)
        err_transport, _ = await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(stderr), popen.stderr)
        in_transport, in_protocol = await loop.connect_write_pipe(
            lambda: asyncio.StreamReaderProtocol(asyncio.StreamReader()), popen.stdin
        )
    except BaseException:
        popen.kill()
        for pipe in (popen.stdin, popen.stdout, popen.stderr):
            pipe.close()
        raise
    stdin = asyncio.StreamWriter(in_transport, in_protocol, None, loop)
    return PipeProcess(popen, stdin, stdout, stderr, [in_transport, out_transport, err_transport])


#: A gateway child: asyncio's process, or a :class:`PipeProcess` in a session.
GatewayProcess = Union["asyncio.subprocess.Process", PipeProcess]


class Session:
    """One gateway child process and its connection; see the module docs."""

    def __init__(
        self,
        generation: int,
        process: GatewayProcess,
        command: List[str],
        *,
        max_frame_bytes: int,
        handlers: Mapping[str, RequestHandler],
        on_event: Callable[["Session", str, Any], None],
        on_malformed: Callable[["Session", Malformed], None],
        on_protocol_error: Callable[["Session", str, Any], None],
        on_stderr: Callable[["Session", str], None],
        link: Optional[SessionLink] = None,
        replaces: Optional["Session"] = None,
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
        self.reader = MessageReader(process.stdout, max_frame_bytes=max_frame_bytes)
        callbacks: Dict[str, Any] = dict(
            on_event=lambda type, payload: on_event(self, type, payload),
            on_malformed=lambda item: on_malformed(self, item),
            on_protocol_error=lambda reason, msg: on_protocol_error(self, reason, msg),
        )
        self.procs: Dict[int, ProcessHandle[Any]]
        self.conn: Connection
        if replaces is not None:
            # A reattach: carry on with the connection (pending calls, ids)
            # and the process handles of the process this one replaces.
            self.conn = replaces.conn
            self.conn.rebind(self.reader, self.writer, **callbacks)
            self.procs = replaces.procs
        else:
            self.conn = Connection(self.reader, self.writer, handlers=handlers, **callbacks)
            self.procs = {}
        self._on_stderr = on_stderr
        self.ready: Optional[ReadyPayload] = None
        self.ready_future: asyncio.Future[ReadyPayload] = loop.create_future()
        self.exit: Optional[GatewayExited] = None
        self.ended = asyncio.Event()
        self.reader_task: Optional[asyncio.Task[None]] = None
        self.stderr_task: Optional[asyncio.Task[None]] = None
        #: In a session (docs/sessions.md): which, and how the cursor counts; else ``None``.
        self.link = link
        #: The process is the session itself (not a relay): see :meth:`reap`.
        self.session_itself = False
        #: The client asked the session to let it go (detach, close).
        self.expect_detach = False
        #: The session itself let this client go and runs on (set by :meth:`reap`).
        self.detached = False

    @property
    def frames_received(self) -> Optional[int]:
        """The session cursor: frames of the session's stream read through this process (``None`` without a session)."""
        link = self.link
        if link is None:
            return None
        # What was delivered: the lines before the first one held for listeners.
        first_held = self.conn.first_held_line if self.conn.reader is self.reader else None
        n = first_held - 1 if first_held is not None else self.reader.delivered
        return (link.base or 0) + (n - 1 if link.skip_first and n > 0 else n)

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
        return GatewayExited(e.code, e.signal, e.stderr_tail, pid=e.pid, generation=e.generation, reason=e.reason)

    def mark_ready(self, payload: ReadyPayload, *, replace: bool = False) -> None:
        if self.ready is not None and not replace:
            return
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
            # A relay that exits 69 was refused by the session (or found none): its stderr says why.
            refused = last_line_with(list(self.tail.lines), "[gateway-attach] ") if self.link is not None and code == 69 else None
            raise GatewayStartError(
                f"cannot attach to session {self.link.name}" if refused is not None and self.link is not None else "tui-gateway exited before it was ready",
                code=code,
                signal=sig,
                stderr_tail=list(self.tail.lines),
                pid=self.pid,
                command=self.command,
                reason=refused,
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
        """After stdout EOF: collect stderr's last lines and the exit status (code, signal name).

        The session itself may close its stdout and run on (it let this
        client go): then this returns ``(None, None)`` with :attr:`detached`
        set, having let go of its pipes, and never signals it.
        """
        if self.session_itself and self.process.returncode is None:
            try:
                await asyncio.wait_for(self.process.wait(), 0 if self.expect_detach else SESSION_EXIT_WAIT_S)
            except asyncio.TimeoutError:
                self.detached = True
                if self.stderr_task is not None:
                    self.stderr_task.cancel()
                self.writer.close()
                close_transport(self.process)
                return None, None
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
    link: Optional[SessionLink] = None,
    **session_args: Any,
) -> Session:
    """Start the gateway process with pipes; the session is not started (see :meth:`Session.start`).

    With a ``link`` (a session client) the process is a :class:`PipeProcess`
    and is left out of emergency termination: a session outlives its client.
    """
    process: GatewayProcess
    try:
        if link is not None:
            process = await _spawn_pipe_process(command, env, cwd)
        else:
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
    session = Session(generation, process, command, link=link, **session_args)
    if link is None:
        child.register(session.record)
    return session


def signal_process(process: GatewayProcess, sig: int) -> None:
    """Signal a child that has not been reaped; a vanished one is ignored."""
    if process.returncode is None:
        try:
            process.send_signal(sig)
        except ProcessLookupError:
            pass


def kill_process(process: GatewayProcess) -> None:
    signal_process(process, signal.SIGKILL)


def close_transport(process: GatewayProcess) -> None:
    """Close an exited child's pipes now rather than when the loop is gone
    (a :class:`PipeProcess`: its pipes, whether it exited or runs on).

    asyncio closes a subprocess transport once every pipe reached EOF; a
    process that inherited a pipe (a shell's ``sleep`` behind a fake
    gateway) can delay that past the loop's end, which makes asyncio
    complain from ``__del__``. There is no public API for this, hence the
    guarded private attribute.
    """
    if isinstance(process, PipeProcess):
        process.close_pipes()
        return
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
