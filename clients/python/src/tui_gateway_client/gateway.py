"""The :class:`Gateway`: start, call, listen, run processes, restart, close.

One ``Gateway`` is one logical connection to ``tui-gateway`` for the life of
the UI. Underneath, each gateway child process is a *session* (generation
1, then 2, 3, ... after restarts) with its own pipes, its own
:class:`~tui_gateway_client.connection.Connection` (pending calls, ids) and
its own process handles. Calls always go to the current session; handles
and pending calls stay bound to the session they started on.

Lifecycle of a session:

1. spawned with pipes; its stderr is read all along into a bounded tail
   and ``stderr`` events; its stdout by the connection's reader;
2. ready when ``gateway.ready`` arrives (within ``ready_timeout``, else the
   child is killed and :class:`GatewayStartError` raised with the tail);
3. ended when its stdout reaches EOF and the process is reaped: pending
   calls raise :class:`GatewayExited`; process handles of the session end
   with it (and, if the gateway died by a signal and could not clean up,
   their process groups get SIGKILL); ``exit`` fires once;
4. restarted, if the policy says so, after a backoff.

With ``session=NAME`` (or :meth:`Gateway.attach`) the gateway is a
*session* (docs/sessions.md) that outlives this client: the child is the
session itself, or a relay to it. The client counts the frames of the
session's stream (its cursor), and when it loses its child without having
asked to (a relay killed, a pipe broken) it attaches again with that cursor
(a *reattach*, under :class:`ReattachPolicy`): the new child takes over the
connection, the pending calls and the process handles, and nothing is lost.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import signal
from dataclasses import dataclass
from typing import (
    Any,
    Awaitable,
    Callable,
    Dict,
    Generator,
    List,
    Literal,
    Mapping,
    NamedTuple,
    Optional,
    Sequence,
    Set,
    Tuple,
    Union,
    cast,
    overload,
)

from . import child
from .child import find_binary, kill_groups, terminate_sync
from .connection import BatchCall, BatchEntry, RequestHandler
from .errors import (
    EXIT_CODE_MEANINGS,
    INVALID_PARAMS,
    GatewayClosed,
    GatewayError,
    GatewayExited,
    GatewayStartError,
    RequestTimeoutError,
    RpcError,
    last_line_with,
)
from .events import Event, EventBus, EventStream, Unsubscribe
from .framing import DEFAULT_MAX_FRAME_BYTES
from .payloads import (
    AckResult,
    BackendExitedPayload,
    BackendReadyPayload,
    DetachedPayload,
    ExitPayload,
    GatewayAttachedPayload,
    GatewayInfo,
    GatewayStats,
    MalformedPayload,
    OutputLimit,
    PingResult,
    ProcessExitPayload,
    ProcessInfo,
    ProcessLimits,
    ProcessOutputPayload,
    ProtocolErrorPayload,
    ReadyPayload,
    ReattachedPayload,
    RestartPayload,
    SessionInfo,
    StderrPayload,
)
from .process import CancelLadder, ProcessHandle, decode_base64, decode_text, ladder_param
from .session import (
    EXIT_WAIT_S,
    STDERR_DRAIN_S,
    Session,
    SessionLink,
    close_transport,
    kill_process,
    signal_process,
    spawn_session,
    wait_event,
)
from .transport import Malformed

__all__ = [
    "Gateway",
    "GatewayStarter",
    "RestartPolicy",
    "ReattachPolicy",
    "SessionCursor",
    "DEFAULT_READY_TIMEOUT_S",
    "BRIDGE_READY_TIMEOUT_S",
]

log = logging.getLogger("tui_gateway_client")

#: How long ``start`` waits for ``gateway.ready``. The gateway writes it
#: within milliseconds of exec; 10 s leaves room for a cold disk and a
#: loaded machine while still telling a user about a hung binary promptly.
DEFAULT_READY_TIMEOUT_S = 10.0
#: With a backend (``args`` holding ``--``) the gateway holds its ready until
#: the backend's, up to its ``--backend-ready-timeout`` (15 s by default).
BRIDGE_READY_TIMEOUT_S = 20.0
#: Default ``close()`` grace on top of the gateway's own shutdown grace.
CLOSE_MARGIN_S = 1.0


@dataclass(frozen=True)
class RestartPolicy:
    """When and how a gateway that exited is started again.

    ``mode``: ``"never"`` or ``"on-failure"`` (exit code other than 0, or a
    signal; never after ``close()``). Delays grow from ``initial_delay_s`` by
    ``factor`` up to ``max_delay_s``. After ``max_attempts`` consecutive
    failures (crashes or failed starts) the client gives up; a child that ran
    ``stable_after_s`` resets the count.
    """

    mode: Literal["never", "on-failure"] = "on-failure"
    max_attempts: int = 5
    initial_delay_s: float = 0.1
    max_delay_s: float = 5.0
    factor: float = 2.0
    stable_after_s: float = 10.0

    def should_restart(self, code: Optional[int], signal: Optional[str]) -> bool:
        return self.mode == "on-failure" and (signal is not None or code != 0)

    def delay(self, failures: int) -> float:
        return float(min(self.max_delay_s, self.initial_delay_s * self.factor ** max(0, failures - 1)))

    @classmethod
    def parse(cls, value: Union[None, str, "RestartPolicy"]) -> "RestartPolicy":
        if value is None or value == "never":
            return cls(mode="never")
        if value == "on-failure":
            return cls(mode="on-failure")
        if isinstance(value, RestartPolicy):
            return value
        raise ValueError(f"restart must be None, 'never', 'on-failure' or a RestartPolicy, not {value!r}")


@dataclass(frozen=True)
class ReattachPolicy:
    """How a session gateway attaches again after losing its child (docs/sessions.md).

    ``tries`` attempts, the first at once, then after ``initial_delay_s``,
    doubled each time up to ``max_delay_s``. An attach the session refuses
    (the relay exits 69: the session is gone, is another start, or another
    client holds it) is not retried.
    """

    tries: int = 3
    initial_delay_s: float = 0.1
    max_delay_s: float = 1.0

    @classmethod
    def parse(cls, value: Union[bool, "ReattachPolicy"]) -> Optional["ReattachPolicy"]:
        if value is True:
            return cls()
        if value is False:
            return None
        if isinstance(value, ReattachPolicy):
            if value.tries < 1:
                raise ValueError(f"ReattachPolicy.tries must be at least 1, not {value.tries}")
            return value
        raise ValueError(f"reattach must be True, False or a ReattachPolicy, not {value!r}")


class SessionCursor(NamedTuple):
    """A session client's place in the session's stream (``gw.session``): save
    it and give it to :meth:`Gateway.attach` to come back without losing a
    frame. The Node client's ``gw.session`` is ``{name, epoch, framesReceived}``."""

    name: str
    #: Which start of the session the cursor belongs to (``None`` only before the session said it).
    epoch: Optional[str]
    #: Frames (lines) of the session's stream this client has read.
    frames_received: int


_SESSION_NAME = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]{0,63}")
#: A relay's exit for an attach the session refused, or no such session; 64: a bad command line.
_ATTACH_REFUSED = (69, 64)


def _check_session_name(name: object) -> str:
    if not isinstance(name, str) or not _SESSION_NAME.fullmatch(name):
        raise ValueError(f'a session name is 1 to 64 characters of A-Z a-z 0-9 . _ - not starting with ".", got {name!r}')
    return name


def _check_session_args(args: Sequence[str]) -> None:
    """``start(session=...)`` passes ``--frames-received latest`` itself (its
    cursor must be the one the relay uses): refuse ``args`` that give it (a
    saved cursor goes to :meth:`Gateway.attach`). Flags after ``--`` are the backend's."""
    own = list(args)
    if "--" in own:
        own = own[: own.index("--")]
    for arg in own:
        if arg == "--frames-received" or arg.startswith("--frames-received="):
            raise ValueError(
                "start(session=...) passes --frames-received latest itself; to come back with a saved cursor "
                "use Gateway.attach(name, frames_received, epoch)"
            )


def _gateway_part(ready: Mapping[str, Any]) -> Mapping[str, Any]:
    """The gateway's own part of a ready payload: itself, or with a backend its ``gateway`` member."""
    g = ready.get("gateway")
    if "session" not in ready and isinstance(g, dict):
        return g
    return ready


@dataclass(frozen=True)
class _AttachTo:
    name: str
    frames_received: Optional[int]
    epoch: Optional[str]
    takeover: bool


class GatewayStarter:
    """What ``Gateway.start(...)`` returns: ``await`` it, or use it as ``async with``."""

    def __init__(self, factory: Callable[[], Awaitable["Gateway"]]) -> None:
        self._factory = factory
        self._gateway: Optional[Gateway] = None

    def __await__(self) -> Generator[Any, None, "Gateway"]:
        return self._factory().__await__()

    async def __aenter__(self) -> "Gateway":
        self._gateway = await self._factory()
        return self._gateway

    async def __aexit__(self, *exc: object) -> None:
        if self._gateway is not None:
            await self._gateway.close()


class Gateway:
    """A running ``tui-gateway``; create it with ``await Gateway.start(...)``."""

    def __init__(
        self,
        binary: str,
        args: Sequence[str],
        env: Optional[Dict[str, str]],
        cwd: Optional[str],
        ready_timeout: float,
        restart: RestartPolicy,
        max_frame_bytes: int,
        *,
        session: Optional[str] = None,
        attach_to: Optional[_AttachTo] = None,
        reattach: Optional[ReattachPolicy] = None,
    ) -> None:
        self._binary = binary
        self._args = list(args)
        self._env = env
        self._cwd = cwd
        self._ready_timeout = ready_timeout
        self._policy = restart
        self._max_frame_bytes = max_frame_bytes
        self._bus = EventBus()
        self._handlers: Dict[str, RequestHandler] = {}
        self._session: Optional[Session] = None
        self._last_ready: Optional[ReadyPayload] = None
        self._last_exit: Optional[ExitPayload] = None
        self._generation = 0
        self._closing = False
        self._closed = False
        self._close_requested = asyncio.Event()
        self._close_task: Optional[asyncio.Task[None]] = None
        self._dead: Optional[Callable[[], GatewayError]] = None
        self._state_waiters: List[asyncio.Future[None]] = []
        self._supervisors: Set[asyncio.Task[None]] = set()
        self._failures = 0
        self.restarts = 0
        self._malformed = 0
        self._protocol_errors = 0
        # Sessions (docs/sessions.md): the name, the epoch once the session
        # said it, the child whose cursor is this client's, the reattach policy.
        self._attach_to = attach_to
        self._session_name: Optional[str] = session if session is not None else (attach_to.name if attach_to else None)
        self._epoch: Optional[str] = attach_to.epoch if attach_to else None
        self._cursor_session: Optional[Session] = None
        self._reattach = reattach if self._session_name is not None else None
        self._reattaching = False
        self._detaching = False

    # -- starting --------------------------------------------------------------

    @classmethod
    def start(
        cls,
        command: Optional[str] = None,
        args: Sequence[str] = (),
        env: Optional[Mapping[str, Optional[str]]] = None,
        cwd: Optional[str] = None,
        ready_timeout: Optional[float] = None,
        restart: Union[None, str, RestartPolicy] = None,
        *,
        max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES,
        session: Optional[str] = None,
        reattach: Union[bool, ReattachPolicy] = True,
    ) -> GatewayStarter:
        """Find the binary, spawn it with pipes, wait for ``gateway.ready``.

        ``command``: path or name of the binary (else ``$TUI_GATEWAY_BIN``,
        else ``tui-gateway`` on ``PATH``); ``args``: its flags; ``env``:
        variables to set (``str``) or remove (``None``) on top of this
        process's environment; ``restart``: ``None``/``"never"``,
        ``"on-failure"`` or a :class:`RestartPolicy`.

        ``session=NAME`` runs ``tui-gateway --session NAME --frames-received
        latest [args]``: the session NAME starts (this child is it, and its
        ``gateway.ready`` is frame 0), or, if it runs, this child attaches to
        it as a relay (docs/sessions.md) at the first frame not yet written,
        and returns on the relay's ``gateway.attached`` (whose
        ``frames_from`` is the cursor; ``gw.ready`` is then
        ``gateway.info``'s answer). ``args`` must not give
        ``--frames-received``. The session outlives this client:
        ``close()`` detaches, ``gw.session`` is the cursor to attach again
        with, and a lost child is replaced by attaching again (``reattach``:
        ``True``, ``False`` or a :class:`ReattachPolicy`).

        Raises :class:`GatewayNotFound`, or :class:`GatewayStartError` with the
        exit code, its meaning and the stderr tail.
        """
        policy = RestartPolicy.parse(restart)
        if session is not None:
            _check_session_name(session)
            _check_session_args(args)
        reattach_policy = ReattachPolicy.parse(reattach)
        if ready_timeout is None:
            bridged = "--" in args
            ready_timeout = BRIDGE_READY_TIMEOUT_S if bridged else DEFAULT_READY_TIMEOUT_S
        timeout = ready_timeout

        async def factory() -> Gateway:
            binary = find_binary(command)
            gateway = cls(
                binary, args, _merge_env(env), cwd, timeout, policy, max_frame_bytes, session=session, reattach=reattach_policy
            )
            child_session = await gateway._spawn()
            gateway._watch_session(child_session)
            return gateway

        return GatewayStarter(factory)

    @classmethod
    def attach(
        cls,
        name: str,
        frames_received: Optional[int] = None,
        epoch: Optional[str] = None,
        takeover: bool = False,
        *,
        command: Optional[str] = None,
        env: Optional[Mapping[str, Optional[str]]] = None,
        cwd: Optional[str] = None,
        ready_timeout: Optional[float] = None,
        reattach: Union[bool, ReattachPolicy] = True,
        max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES,
    ) -> GatewayStarter:
        """Attach to the running session ``name`` (``tui-gateway attach NAME``, docs/sessions.md).

        With ``frames_received`` (a saved ``gw.session.frames_received``, and
        its ``epoch``) the stream goes on at that frame; without, it starts
        at the first frame not yet written (``--frames-received latest``).
        Either way this returns on the relay's ``gateway.attached``, whose
        ``frames_from`` is the cursor (no ready comes; ``gw.ready`` is then
        ``gateway.info``'s answer). ``takeover`` detaches the
        client attached now, if any. A refused attach (the relay exits 69)
        raises :class:`GatewayStartError` with the relay's reason in
        ``reason`` and ``stderr_tail``.
        """
        _check_session_name(name)
        if frames_received is not None and (isinstance(frames_received, bool) or not isinstance(frames_received, int) or frames_received < 0):
            raise ValueError(f"frames_received must be an integer >= 0 (a count of frames), not {frames_received!r}")
        if epoch is not None and not isinstance(epoch, str):
            raise TypeError(f"epoch must be a string, not {type(epoch).__name__}")
        reattach_policy = ReattachPolicy.parse(reattach)
        attach_to = _AttachTo(name, frames_received, epoch, bool(takeover))
        timeout = DEFAULT_READY_TIMEOUT_S if ready_timeout is None else ready_timeout

        async def factory() -> Gateway:
            binary = find_binary(command)
            gateway = cls(
                binary, (), _merge_env(env), cwd, timeout, RestartPolicy(mode="never"), max_frame_bytes,
                attach_to=attach_to, reattach=reattach_policy,
            )
            child_session = await gateway._spawn()
            gateway._watch_session(child_session)
            return gateway

        return GatewayStarter(factory)

    async def _spawn(self) -> Session:
        self._generation += 1
        command = [self._binary, *self._args]
        link: Optional[SessionLink] = None
        if self._session_name is not None:
            command, link = self._plan_session()
        session = await spawn_session(
            self._generation,
            command,
            env=self._env,
            cwd=self._cwd,
            link=link,
            **self._session_callbacks(),
        )
        await self._make_current(session)
        if link is not None and link.base is None:
            # Neither the session's own ready nor a gateway.attached with its frames_from: no exact cursor.
            if self._session is session:
                self._session = None
            await session.discard()
            raise GatewayStartError(
                f"session {link.name}: the first line did not say where the stream starts (no gateway.attached with frames_from)",
                stderr_tail=list(session.tail.lines), pid=session.pid, command=command,
            )
        if link is not None and link.attached is not None and link.previous_ready is None:
            # Attached through a relay: no gateway.ready comes; ask for what it says.
            try:
                info = await session.conn.call("gateway.info", timeout=self._ready_timeout)
            except BaseException as exc:
                if self._session is session:
                    self._session = None
                await session.discard()
                if isinstance(exc, (GatewayError, asyncio.TimeoutError)):
                    raise GatewayStartError(
                        f"attached to session {link.name}, but gateway.info failed: {exc}",
                        stderr_tail=list(session.tail.lines), pid=session.pid, command=command,
                    ) from exc
                raise
            session.mark_ready(cast(ReadyPayload, info), replace=True)
        if link is not None:
            # The frames that follow the first ready (a replay, what the
            # session queued while no client was attached) would reach no
            # listener: start() and attach() have not returned yet. They are
            # held and dispatched on the next turn of the event loop, once the
            # caller had the chance to subscribe (right after its await,
            # before the next one). The cursor counts only what was dispatched.
            asyncio.get_running_loop().call_soon(session.conn.resume_dispatch)
        return session

    def _session_callbacks(self) -> Dict[str, Any]:
        return dict(
            max_frame_bytes=self._max_frame_bytes,
            handlers=self._handlers,
            on_event=self._on_event,
            on_malformed=self._on_malformed,
            on_protocol_error=self._on_protocol_error,
            on_stderr=self._on_stderr,
        )

    async def _make_current(self, session: Session) -> None:
        """Make ``session`` current, read it, wait for its ready (or ``gateway.attached``)."""
        # Current before its reader runs: the generation guard drops
        # anything from a session that is not.
        self._session = session
        self._bus.generation = session.generation
        session.start()
        try:
            await session.wait_ready(self._ready_timeout)
        except BaseException:
            if self._session is session:
                self._session = None
            await session.discard()
            raise

    def _plan_session(self) -> Tuple[List[str], SessionLink]:
        """The command line of a session start or attach, and how its cursor counts (docs/sessions.md).

        A relay is always given a cursor: the one the client saved, or
        ``latest`` (the first frame not yet written), so that it writes
        ``gateway.attached`` with ``frames_from``, the cursor's base, and the
        session sends nothing again (no ready that is not part of the
        stream). ``--session NAME`` takes ``--frames-received latest`` too,
        used only if it turns out to be a relay: the session itself ignores
        it and sends its ready, frame 0. ``base`` is ``None`` until the first
        line says it.
        """
        name = self._session_name
        assert name is not None
        at = self._attach_to
        if at is None:
            command = [self._binary, "--session", name, "--frames-received", "latest", *self._args]
            return command, SessionLink(name, "unknown", None, False)
        cursor = at.frames_received
        command = [self._binary, "attach", name, "--frames-received", "latest" if cursor is None else str(cursor)]
        if at.epoch is not None:
            command += ["--epoch", at.epoch]
        if at.takeover:
            command.append("--takeover")
        return command, SessionLink(name, "relay", cursor, True)

    # -- watching, restarting --------------------------------------------------

    def _watch_session(self, session: Session) -> None:
        self._last_ready = session.ready
        if session.link is not None:
            self._cursor_session = session
        task = asyncio.get_running_loop().create_task(self._watch(session))
        self._supervisors.add(task)
        task.add_done_callback(self._supervisors.discard)
        self._notify_state()

    async def _watch(self, session: Session) -> None:
        assert session.reader_task is not None
        try:
            try:
                await session.reader_task
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("tui-gateway client: the reader failed; stopping the gateway")
                kill_process(session.process)
            code, sig = await session.reap()
        except asyncio.CancelledError:
            # The event loop is shutting down (asyncio.run cancels every
            # remaining task) and close() was not called: stop the gateway
            # now, synchronously, so that nothing outlives the UI. A session
            # is meant to outlive it: letting go of the pipes detaches.
            if session.link is None:
                terminate_sync(session.record)  # a no-op if it already ended
            else:
                close_transport(session.process)
            raise
        if self._wants_reattach(session, code, sig):
            await self._reattach_loop(session, code, sig)
            return
        restarting = self._end_session(session, code, sig)
        if restarting:
            await self._restart()
        else:
            self._give_up(session.exited)

    def _end_session(
        self,
        session: Session,
        code: Optional[int],
        sig: Optional[str],
        refused: Optional[GatewayStartError] = None,
    ) -> bool:
        """The child is over for good (no reattach): fail what waits on it, report the exit, say if a restart follows.

        ``refused``: a reattach was refused (the session is gone, or is not
        this client's any more): the exit reported is that relay's.
        """
        link = session.link
        # Asked to detach (detach(), close()), and the session runs on.
        detached = link is not None and (session.detached or (session.expect_detach and code == 0 and sig is None))
        reason: Optional[str] = None
        tail = list(session.tail.lines)
        pid: Optional[int] = session.pid
        if refused is not None:
            code, sig, tail, pid = refused.code, refused.signal, list(refused.stderr_tail), refused.pid
            reason = refused.reason
        elif link is not None and session.detached:
            reason = (
                f"detached from session {link.name}; it runs on"
                if session.expect_detach
                else f"session {link.name} let this client go (another client took over, or its pipes were lost); it runs on"
            )
        elif detached and link is not None:
            reason = f"detached from session {link.name}; it runs on"
        exc = GatewayExited(code, sig, tail, pid=pid, generation=session.generation, reason=reason)
        session.exit = exc
        session.record.done = True
        child.unregister(session.record)
        leftovers = {h.pid for h in session.procs.values()}
        orphans_killed: List[int] = []
        # A relay's processes are the session's, which runs on (as a session
        # that let this client go runs on with them).
        owns = link is None or (session.session_itself and not session.detached)
        if owns and refused is None and (sig is not None or code not in EXIT_CODE_MEANINGS):
            # The gateway could not run its own cleanup: its children are
            # orphans now. Their pids are their process groups.
            orphans_killed = kill_groups(leftovers)
        session.conn.fail_pending(session.exited)
        for handle in session.procs.values():
            handle._on_lost(exc)
        session.procs.clear()
        ran = asyncio.get_running_loop().time() - session.started_at
        if ran >= self._policy.stable_after_s:
            self._failures = 0
        restarting = (
            not self._closing
            and self._policy.should_restart(code, sig)
            and self._failures < self._policy.max_attempts
        )
        self._last_exit = ExitPayload(
            generation=session.generation,
            pid=pid,
            code=code,
            signal=sig,
            reason=exc.reason,
            exit_reason=exc.exit_reason,
            stderr_tail=list(exc.stderr_tail),
            restarting=restarting,
            orphans_killed=orphans_killed,
            detached=detached,
            # A clean exit (code 0), or a detach asked for, is not an error: nothing to report.
            error=None if (code == 0 and sig is None) or (detached and session.expect_detach) else exc,
        )
        self._bus.emit(Event("exit", self._last_exit, session.generation))
        session.ended.set()
        self._notify_state()
        return restarting

    # -- reattaching to a session ----------------------------------------------

    def _wants_reattach(self, session: Session, code: Optional[int], sig: Optional[str]) -> bool:
        """Whether losing this child is a reason to attach to its session again."""
        if session.link is None or self._reattach is None or self._closing or self._detaching or session.expect_detach:
            return False
        if session.ready is None:
            return False
        # The session itself exited: it is over, there is nothing to attach to.
        return not (session.session_itself and not session.detached)

    async def _reattach_loop(self, lost: Session, code: Optional[int], sig: Optional[str]) -> None:
        """Attach to the session again with the lost child's cursor, up to
        ``tries`` times with backoff; the new child takes over the
        connection, the pending calls and the process handles, and the stream
        goes on at the next frame. A refused attach (exit 69) is not retried."""
        policy = self._reattach
        link = lost.link
        assert policy is not None and link is not None
        frames = lost.frames_received
        assert frames is not None
        # The child died (a signal, a failure): the session may not have seen
        # its connection end yet, so it is taken over (it was this client's).
        # A relay that exited 0, or a session that let this client go, ended
        # the attachment on the session's side: no takeover then.
        takeover = sig is not None or (code is not None and code != 0)
        self._reattaching = True
        lost.conn.hold()
        if self._session is lost:
            self._session = None  # calls wait for the new child
        self._bus.emit(
            Event("detached", DetachedPayload(generation=lost.generation, reason=_lost_reason(lost, code, sig), frames_received=frames), lost.generation)
        )
        failure: Optional[GatewayStartError] = None
        delay = policy.initial_delay_s
        for attempt in range(1, policy.tries + 1):
            if attempt > 1:
                try:
                    await asyncio.wait_for(self._close_requested.wait(), delay)
                except asyncio.TimeoutError:
                    pass
                delay = min(delay * 2, policy.max_delay_s)
            if self._closing:
                break
            try:
                session = await self._attach_again(lost, frames, takeover)
            except GatewayStartError as exc:
                failure = exc
                log.warning("tui-gateway client: reattaching to session %s failed: %s", link.name, exc.reason)
                if exc.code in _ATTACH_REFUSED:
                    break
                continue
            self._reattaching = False
            lost.conn.release()
            attached = session.link.attached if session.link is not None else None
            frames_from = session.link.base if session.link is not None else None
            frames_total = attached.get("frames_total") if attached else None
            self._watch_session(session)
            if self._closing:
                # close() began while this child was attaching: let it go too.
                await self._shutdown_session(session, None, False, False)
                return
            self._bus.emit(
                Event(
                    "reattached",
                    ReattachedPayload(
                        generation=session.generation,
                        frames_from=frames_from if isinstance(frames_from, int) else frames,
                        frames_total=frames_total if isinstance(frames_total, int) else None,
                    ),
                    session.generation,
                )
            )
            return
        self._reattaching = False
        refused = failure if failure is not None and failure.code in _ATTACH_REFUSED else None
        restarting = self._end_session(lost, code, sig, refused)
        if restarting:
            await self._restart()
        else:
            self._give_up(lost.exited)

    async def _attach_again(self, lost: Session, frames: int, takeover: bool) -> Session:
        """One attach with the cursor ``frames``: the new, current child once ``gateway.attached`` came."""
        assert self._session_name is not None
        command = [self._binary, "attach", self._session_name, "--frames-received", str(frames)]
        if self._epoch is not None:
            command += ["--epoch", self._epoch]
        if takeover:
            command.append("--takeover")
        link = SessionLink(self._session_name, "relay", frames, True, previous_ready=lost.ready)
        session = await spawn_session(
            lost.generation, command, env=self._env, cwd=self._cwd, link=link, replaces=lost, **self._session_callbacks()
        )
        await self._make_current(session)
        return session

    async def _restart(self) -> None:
        while True:
            self._failures += 1
            delay = self._policy.delay(self._failures)
            try:
                await asyncio.wait_for(self._close_requested.wait(), delay)
            except asyncio.TimeoutError:
                pass
            if self._closing:
                self._give_up(self._closed_error)
                return
            try:
                session = await self._spawn()
            except GatewayStartError as exc:
                log.warning("tui-gateway client: restart attempt %d failed: %s", self._failures, exc)
                if self._failures >= self._policy.max_attempts or self._closing:
                    err = exc
                    self._give_up(lambda: GatewayClosed(f"gave up restarting tui-gateway after {self._failures} attempts: {err.message}"))
                    return
                continue
            self.restarts += 1
            if self._closing:
                # close() began while this child was starting: stop it too.
                self._watch_session(session)
                await self._shutdown_session(session, None, True)
                return
            self._bus.emit(
                Event(
                    "restart",
                    RestartPayload(generation=session.generation, pid=session.pid, attempt=self._failures, ready=cast(ReadyPayload, session.ready)),
                    session.generation,
                )
            )
            self._watch_session(session)
            return

    def _give_up(self, error: Callable[[], GatewayError]) -> None:
        if self._dead is None:
            self._dead = error
        self._bus.close()
        self._notify_state()

    def _notify_state(self) -> None:
        waiters, self._state_waiters = self._state_waiters, []
        for w in waiters:
            if not w.done():
                w.set_result(None)

    def _closed_error(self) -> GatewayClosed:
        return GatewayClosed(exit=self._last_exit)

    async def _live_session(self) -> Session:
        while True:
            if self._closing:
                raise self._closed_error()
            s = self._session
            if s is not None and s.live:
                return s
            if self._dead is not None:
                raise self._dead()
            w: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._state_waiters.append(w)
            await w

    async def _current(self, timeout: Optional[float], method: str) -> Tuple[Session, Optional[float]]:
        """The live session (waiting through a restart) and the time left of ``timeout``."""
        if timeout is None:
            return await self._live_session(), None
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        try:
            session = await asyncio.wait_for(self._live_session(), timeout)
        except asyncio.TimeoutError:
            raise RequestTimeoutError(method, timeout) from None
        return session, max(0.0, deadline - loop.time())

    # -- incoming --------------------------------------------------------------

    def _on_event(self, session: Session, type: str, payload: Any) -> None:
        if session is not self._session:
            return  # generation guard: a stale child
        if type == "process.output" or type == "process.exit":
            if isinstance(payload, dict):
                proc = payload.get("proc")
                handle = session.procs.get(proc) if isinstance(proc, int) else None
                if handle is not None:
                    if type == "process.output":
                        handle._on_output(payload)
                    else:
                        del session.procs[handle.proc]
                        session.record.groups.discard(handle.pid)
                        handle._on_exit(payload)
        elif type == "gateway.ready" and session.ready is None and isinstance(payload, dict):
            if session.link is not None:
                self._session_ready(session, payload)
                session.conn.hold_dispatch()
            session.mark_ready(cast(ReadyPayload, payload))
        elif (
            type == "gateway.attached"
            and session.ready is None
            and session.link is not None
            and session.link.role != "session"
            and session.reader.delivered == 1
            and isinstance(payload, dict)
        ):
            # A relay attached (with a cursor, or ``latest``): this event (not
            # counted) stands for the ready, which does not come again; the
            # stream follows, from frame ``frames_from``: the cursor's base.
            link = session.link
            link.role = "relay"
            link.skip_first = True
            link.attached = payload
            frames_from = payload.get("frames_from")
            if isinstance(frames_from, int) and not isinstance(frames_from, bool) and frames_from >= 0:
                link.base = frames_from
            epoch = payload.get("epoch")
            if isinstance(epoch, str):
                self._epoch = epoch
            self._cursor_session = session
            if session.link.previous_ready is None:
                # A reattach carries on with the listeners there are; a new client holds the replay.
                session.conn.hold_dispatch()
            session.mark_ready(session.link.previous_ready or cast(ReadyPayload, dict(payload)))
        self._bus.emit(Event(type, payload, session.generation))

    def _session_ready(self, session: Session, payload: Mapping[str, Any]) -> None:
        """The first ``gateway.ready`` of a session child, which only the
        session itself sends (it has the pid we spawned; a relay, always
        given ``--frames-received``, writes ``gateway.attached`` instead):
        that ready is frame 0 of the stream. Also the session's epoch."""
        link = session.link
        assert link is not None
        gateway = _gateway_part(payload)
        if link.role == "unknown" and gateway.get("pid") == session.pid:
            link.role = "session"
            link.base = 0
            link.skip_first = False
            session.session_itself = True
        # Else a relay sent a ready: link.base stays None, and _spawn refuses the child (no exact cursor).
        named = gateway.get("session")
        if isinstance(named, dict) and isinstance(named.get("epoch"), str):
            self._epoch = named["epoch"]
        self._cursor_session = session

    def _on_stderr(self, session: Session, line: str) -> None:
        self._emit_client(session, "stderr", StderrPayload(generation=session.generation, line=line))

    def _on_malformed(self, session: Session, item: Malformed) -> None:
        self._malformed += 1
        log.warning("tui-gateway client: skipped a line from the gateway: %s", item.reason)
        self._emit_client(
            session, "malformed", MalformedPayload(generation=session.generation, reason=item.reason, length=item.length, preview=item.preview)
        )

    def _on_protocol_error(self, session: Session, reason: str, msg: Any) -> None:
        self._protocol_errors += 1
        log.warning("tui-gateway client: %s", reason)
        self._emit_client(session, "protocol_error", ProtocolErrorPayload(generation=session.generation, reason=reason, message=msg))

    def _emit_client(self, session: Session, type: str, payload: Any) -> None:
        if session is self._session:
            self._bus.emit(Event(type, payload, session.generation))

    # -- state -----------------------------------------------------------------

    @property
    def ready(self) -> ReadyPayload:
        """The ``gateway.ready`` payload of the current (or last) child."""
        assert self._last_ready is not None
        return self._last_ready

    @property
    def ready_payload(self) -> ReadyPayload:
        """Same as :attr:`ready` (the Node client's ``readyPayload``)."""
        return self.ready

    @property
    def pid(self) -> Optional[int]:
        """The current child's pid (``None`` between a crash and its restart, or after close)."""
        s = self._session
        return s.pid if s is not None and s.exit is None else None

    @property
    def generation(self) -> int:
        """1 for the first child, +1 per restart attempt."""
        return self._generation

    @property
    def closed(self) -> bool:
        """``close()`` finished, or the gateway ended and will not restart."""
        return self._closed or self._dead is not None

    @property
    def methods(self) -> List[str]:
        return list(self.ready.get("methods", []))

    def supports(self, method: str) -> bool:
        """Whether the gateway listed ``method`` in ``gateway.ready`` (e.g. ``process.resize``)."""
        return method in self.ready.get("methods", [])

    @property
    def session(self) -> Optional[SessionCursor]:
        """In a session: its name, epoch and this client's cursor (``frames_received``),
        to save and give to :meth:`attach` later; readable after ``close()`` and
        ``detach()`` too. ``None`` without a session."""
        if self._session_name is None:
            return None
        s = self._cursor_session
        frames = s.frames_received if s is not None else None
        return SessionCursor(self._session_name, self._epoch, frames or 0)

    @property
    def stderr_tail(self) -> List[str]:
        """The last lines the current (or last) child wrote to stderr."""
        s = self._session
        return list(s.tail.lines) if s is not None else []

    def client_stats(self) -> Dict[str, Any]:
        """The client's own counters (the gateway's are in :meth:`stats`)."""
        s = self._session
        return {
            "generation": self._generation,
            "restarts": self.restarts,
            "pid": self.pid,
            "pending": s.conn.pending_count if s else 0,
            "late_responses": s.conn.late_responses if s else 0,
            "processes": len(s.procs) if s else 0,
            "bytes_read": s.conn._reader.bytes_read if s else 0,
            "bytes_written": s.writer.bytes_written if s else 0,
            "malformed_lines": self._malformed,
            "protocol_errors": self._protocol_errors,
            "stale_events_dropped": self._bus.dropped_stale,
        }

    # -- calls -----------------------------------------------------------------

    async def request(self, method: str, params: Any = None, *, timeout: Optional[float] = None) -> Any:
        """Call ``method``; return its ``result`` or raise :class:`RpcError`.

        ``timeout`` (seconds, default none) raises :class:`RequestTimeoutError`;
        cancelling the awaiting task stops waiting for the answer. Either way
        its pending entry is removed and a late response is dropped; the
        request itself was sent and runs in the gateway. While a restart is
        under way the call waits for the new gateway (within ``timeout``).
        Raises :class:`GatewayExited` if the gateway exits first,
        :class:`GatewayClosed` after ``close()``.
        """
        session = self._session
        if timeout is None and session is not None and session.live and not self._closing:
            return await session.conn.call(method, params)  # the common case, kept short
        session, left = await self._current(timeout, method)
        return await session.conn.call(method, params, timeout=left)

    async def notify(self, method: str, params: Any = None) -> bool:
        """Send a notification (no id, no response). Returns ``True`` once the
        frame was handed to the pipe, ``False`` if there is no gateway to send
        to (closed, exited, or restarting); never raises."""
        session = self._session
        if self._closing or session is None or not session.live:
            return False
        try:
            await session.conn.notify(method, params)
        except (GatewayError, ConnectionError, OSError):
            return False
        return True

    async def batch(self, calls: Sequence[BatchCall], *, timeout: Optional[float] = None) -> List[Optional[BatchEntry[Any]]]:
        """Send ``[(method, params), ...]`` as one JSON-RPC batch (a call may
        also be ``{"method": m, "params": p, "notify": True}``).

        Returns one entry per call, in order: a :class:`BatchEntry` (``ok``
        and ``result``, or not ``ok`` and ``error``, an :class:`RpcError`) for
        a request, ``None`` for a notification. Raises only when the gateway
        is gone (or on ``timeout``).
        """
        session, left = await self._current(timeout, "batch")
        return await session.conn.batch(calls, timeout=left)

    async def ping(self, *, timeout: Optional[float] = None) -> PingResult:
        """``gateway.ping``: ``{"ok": True}``."""
        return cast(PingResult, await self.request("gateway.ping", timeout=timeout))

    async def info(self, *, timeout: Optional[float] = None) -> GatewayInfo:
        """``gateway.info``: version, pid, uptime, methods, services, config, limits."""
        return cast(GatewayInfo, await self.request("gateway.info", timeout=timeout))

    async def stats(self, *, timeout: Optional[float] = None) -> GatewayStats:
        """``gateway.stats``: the gateway's counters."""
        return cast(GatewayStats, await self.request("gateway.stats", timeout=timeout))

    async def list_processes(self, *, timeout: Optional[float] = None) -> List[ProcessInfo]:
        """``process.list``."""
        return cast(List[ProcessInfo], await self.request("process.list", timeout=timeout))

    # -- sessions (docs/sessions.md) -------------------------------------------

    async def detach(self, *, timeout: Optional[float] = None) -> Optional[SessionCursor]:
        """``gateway.detach``: the session lets this client go and runs on; the
        gateway is then closed (no reattach). Returns the cursor to attach
        again with (:attr:`session`). Without a session: ``RpcError`` -32601."""
        if self._closing:
            raise self._closed_error()
        self._detaching = True
        try:
            await self.request("gateway.detach", timeout=timeout)
        except BaseException:
            self._detaching = False
            raise
        # The session lets this client go once its answer is written; close()
        # then closes the input and waits for the child to be over.
        session = self._session
        if session is not None:
            session.expect_detach = True
        await self.close()
        return self.session

    async def end(self, grace: Optional[float] = None) -> Optional[ExitPayload]:
        """End the session (``gateway.end``: its commands and backend stop, as on
        ``gateway.shutdown``) and close: ``close(grace, end=True)``. Without a
        session, ``close(grace, shutdown=True)``."""
        return await self.close(grace, end=True)

    async def ack(self, frames: Optional[int] = None, *, timeout: Optional[float] = None) -> AckResult:
        """``gateway.ack``: frames before ``frames`` (default: every frame this
        client has, ``session.frames_received``) may leave the session's journal."""
        if frames is None:
            cursor = self.session
            if cursor is None:
                raise ValueError("ack() without a frame count needs a session (Gateway.start(session=...) or Gateway.attach(name))")
            frames = cursor.frames_received
        if isinstance(frames, bool) or not isinstance(frames, int) or frames < 0:
            raise ValueError(f"frames must be an integer >= 0 (a count of frames), not {frames!r}")
        return cast(AckResult, await self.request("gateway.ack", {"frames": frames}, timeout=timeout))

    async def session_info(self, *, timeout: Optional[float] = None) -> SessionInfo:
        """``gateway.session``: the session's state (name, epoch, pid, attached, processes, journal and frame counts)."""
        return cast(SessionInfo, await self.request("gateway.session", timeout=timeout))

    @overload
    async def adopt_process(self, proc: int, *, encoding: Literal["utf8"] = "utf8", timeout: Optional[float] = None) -> ProcessHandle[str]: ...
    @overload
    async def adopt_process(self, proc: int, *, encoding: Literal["base64"], timeout: Optional[float] = None) -> ProcessHandle[bytes]: ...

    async def adopt_process(
        self, proc: int, *, encoding: Literal["utf8", "base64"] = "utf8", timeout: Optional[float] = None
    ) -> Union[ProcessHandle[str], ProcessHandle[bytes]]:
        """A handle for a process this client did not spawn, or no longer has a
        handle for (a UI that restarted and attached to its session): it gets
        every later event of the process (output, exit), as the handle
        :meth:`spawn_process` returns. ``proc`` is its id in
        :meth:`list_processes`; ``encoding`` must be the one it was spawned
        with. ``RpcError`` -32602 when no such process runs. A process this
        client already has a handle for gets that handle.
        """
        if isinstance(proc, bool) or not isinstance(proc, int):
            raise TypeError(f"adopt_process() takes a proc id (an int from list_processes()), not {proc!r}")
        if encoding not in ("utf8", "base64"):
            raise ValueError(f"encoding must be 'utf8' or 'base64', not {encoding!r}")
        session, left = await self._current(timeout, "process.list")

        def register(result: Any) -> ProcessHandle[Any]:
            # Runs when the list is read, before any later message: every
            # event of the process after the list reaches the handle.
            known = session.procs.get(proc)
            if known is not None:
                return known
            entry = next((p for p in result if isinstance(p, dict) and p.get("proc") == proc), None) if isinstance(result, list) else None
            if entry is None:
                raise RpcError(INVALID_PARAMS, f"unknown proc {proc}: process.list does not show it running", {"proc": proc}, method="process.list")
            handle: ProcessHandle[Any]
            argv = list(entry.get("argv") or [])
            if encoding == "base64":
                handle = ProcessHandle(
                    session.conn.call, proc=proc, pid=entry["pid"], argv=argv,
                    encoding=encoding, generation=session.generation, decode=decode_base64, newline=b"\n", carriage_return=b"\r",
                )
            else:
                handle = ProcessHandle(
                    session.conn.call, proc=proc, pid=entry["pid"], argv=argv,
                    encoding=encoding, generation=session.generation, decode=decode_text, newline="\n", carriage_return="\r",
                )
            session.procs[proc] = handle
            if session.link is None or session.session_itself:
                session.record.groups.add(handle.pid)
            return handle

        return cast(
            Union[ProcessHandle[str], ProcessHandle[bytes]],
            await session.conn.call("process.list", None, timeout=left, hook=register),
        )

    async def capabilities(self, client: Optional[Mapping[str, Any]] = None, *, timeout: Optional[float] = None) -> Dict[str, Any]:
        """``client.capabilities``: tell the gateway who is calling; returns what it supports."""
        from . import __version__

        description = dict(client) if client is not None else {"name": "tui-gateway-client-python", "version": __version__}
        return cast(Dict[str, Any], await self.request("client.capabilities", description, timeout=timeout))

    # -- events ----------------------------------------------------------------

    @overload
    def on(self, type: Literal["gateway.ready"], fn: Callable[[ReadyPayload], Any]) -> Unsubscribe: ...
    @overload
    def on(self, type: Literal["process.output"], fn: Callable[[ProcessOutputPayload], Any]) -> Unsubscribe: ...
    @overload
    def on(self, type: Literal["process.exit"], fn: Callable[[ProcessExitPayload], Any]) -> Unsubscribe: ...
    @overload
    def on(self, type: Literal["backend.ready"], fn: Callable[[BackendReadyPayload], Any]) -> Unsubscribe: ...
    @overload
    def on(self, type: Literal["backend.exited"], fn: Callable[[BackendExitedPayload], Any]) -> Unsubscribe: ...
    @overload
    def on(self, type: Literal["exit"], fn: Callable[[ExitPayload], Any]) -> Unsubscribe: ...
    @overload
    def on(self, type: Literal["restart"], fn: Callable[[RestartPayload], Any]) -> Unsubscribe: ...
    @overload
    def on(self, type: Literal["gateway.attached"], fn: Callable[[GatewayAttachedPayload], Any]) -> Unsubscribe: ...
    @overload
    def on(self, type: Literal["detached"], fn: Callable[[DetachedPayload], Any]) -> Unsubscribe: ...
    @overload
    def on(self, type: Literal["reattached"], fn: Callable[[ReattachedPayload], Any]) -> Unsubscribe: ...
    @overload
    def on(self, type: Literal["stderr"], fn: Callable[[StderrPayload], Any]) -> Unsubscribe: ...
    @overload
    def on(self, type: Literal["malformed"], fn: Callable[[MalformedPayload], Any]) -> Unsubscribe: ...
    @overload
    def on(self, type: Literal["protocol_error"], fn: Callable[[ProtocolErrorPayload], Any]) -> Unsubscribe: ...
    @overload
    def on(self, type: str, fn: Callable[[Any], Any]) -> Unsubscribe: ...

    def on(self, type: str, fn: Callable[[Any], Any]) -> Unsubscribe:
        """Call ``fn(payload)`` for every event of ``type``; returns a function that unsubscribes.

        ``fn`` runs in the reader task, in order: keep it short (an ``async
        def`` is scheduled as a task). Its exceptions are logged, never raised.
        """
        return self._bus.on(type, fn)

    def once(self, type: str, fn: Callable[[Any], Any]) -> Unsubscribe:
        """Call ``fn(payload)`` for the next event of ``type`` only; returns a function that unsubscribes."""
        return self._bus.once(type, fn)

    def on_any(self, fn: Callable[[Event[Any]], Any]) -> Unsubscribe:
        """Call ``fn(event)`` for every event, gateway and lifecycle alike."""
        return self._bus.on_any(fn)

    @overload
    def events(self, type: Literal["gateway.ready"]) -> EventStream[ReadyPayload]: ...
    @overload
    def events(self, type: Literal["process.output"]) -> EventStream[ProcessOutputPayload]: ...
    @overload
    def events(self, type: Literal["process.exit"]) -> EventStream[ProcessExitPayload]: ...
    @overload
    def events(self, type: Literal["backend.ready"]) -> EventStream[BackendReadyPayload]: ...
    @overload
    def events(self, type: Literal["backend.exited"]) -> EventStream[BackendExitedPayload]: ...
    @overload
    def events(self, type: Literal["exit"]) -> EventStream[ExitPayload]: ...
    @overload
    def events(self, type: Literal["restart"]) -> EventStream[RestartPayload]: ...
    @overload
    def events(self, type: Literal["gateway.attached"]) -> EventStream[GatewayAttachedPayload]: ...
    @overload
    def events(self, type: Literal["detached"]) -> EventStream[DetachedPayload]: ...
    @overload
    def events(self, type: Literal["reattached"]) -> EventStream[ReattachedPayload]: ...
    @overload
    def events(self, type: Literal["stderr"]) -> EventStream[StderrPayload]: ...
    @overload
    def events(self, type: Literal["malformed"]) -> EventStream[MalformedPayload]: ...
    @overload
    def events(self, type: Literal["protocol_error"]) -> EventStream[ProtocolErrorPayload]: ...
    @overload
    def events(self, type: Optional[str] = None) -> EventStream[Any]: ...

    def events(self, type: Optional[str] = None) -> EventStream[Any]:
        """An async iterator of events (all, or of one ``type``), subscribed from this call on."""
        return self._bus.stream(type)

    def on_request(self, method: str, handler: RequestHandler) -> Unsubscribe:
        """Answer requests the gateway sends for ``method`` with ``handler(params)``.

        The handler may be sync or ``async``; its return value is the
        ``result``; a raised :class:`RpcError` becomes that error; any other
        exception a ``-32000`` error naming it. Methods without a handler get
        ``-32601``. Handlers stay registered across restarts.
        """
        self._handlers[method] = handler

        def unregister() -> None:
            if self._handlers.get(method) is handler:
                del self._handlers[method]

        return unregister

    # -- processes -------------------------------------------------------------

    @overload
    async def spawn_process(
        self,
        argv: Sequence[str],
        *,
        encoding: Literal["utf8"] = "utf8",
        cwd: Optional[str] = None,
        env: Optional[Mapping[str, Optional[str]]] = None,
        clear_env: bool = False,
        stdin: Literal["pipe", "null"] = "pipe",
        stderr: Literal["pipe", "merge", "null"] = "pipe",
        tag: Any = None,
        pty: Optional[Mapping[str, int]] = None,
        timeout_ms: Optional[int] = None,
        output_limit: Optional[OutputLimit] = None,
        limits: Optional[ProcessLimits] = None,
        cancel: Optional[CancelLadder] = None,
        timeout: Optional[float] = None,
    ) -> ProcessHandle[str]: ...
    @overload
    async def spawn_process(
        self,
        argv: Sequence[str],
        *,
        encoding: Literal["base64"],
        cwd: Optional[str] = None,
        env: Optional[Mapping[str, Optional[str]]] = None,
        clear_env: bool = False,
        stdin: Literal["pipe", "null"] = "pipe",
        stderr: Literal["pipe", "merge", "null"] = "pipe",
        tag: Any = None,
        pty: Optional[Mapping[str, int]] = None,
        timeout_ms: Optional[int] = None,
        output_limit: Optional[OutputLimit] = None,
        limits: Optional[ProcessLimits] = None,
        cancel: Optional[CancelLadder] = None,
        timeout: Optional[float] = None,
    ) -> ProcessHandle[bytes]: ...

    async def spawn_process(
        self,
        argv: Sequence[str],
        *,
        encoding: Literal["utf8", "base64"] = "utf8",
        cwd: Optional[str] = None,
        env: Optional[Mapping[str, Optional[str]]] = None,
        clear_env: bool = False,
        stdin: Literal["pipe", "null"] = "pipe",
        stderr: Literal["pipe", "merge", "null"] = "pipe",
        tag: Any = None,
        pty: Optional[Mapping[str, int]] = None,
        timeout_ms: Optional[int] = None,
        output_limit: Optional[OutputLimit] = None,
        limits: Optional[ProcessLimits] = None,
        cancel: Optional[CancelLadder] = None,
        timeout: Optional[float] = None,
    ) -> Union[ProcessHandle[str], ProcessHandle[bytes]]:
        """``process.spawn`` (docs/process.md); returns a :class:`ProcessHandle`.

        The handle is registered the moment the response is read, before any
        event that follows it, so no output and no exit is ever missed.
        ``encoding="base64"`` gives a ``ProcessHandle[bytes]`` with decoded
        output. ``pty={"rows": r, "cols": c}`` runs it on a terminal of that
        size (output then comes as stream ``"pty"``; ``stdin``/``stderr`` must
        stay at their defaults); it needs a gateway with PTY support, see
        ``gateway.supports("process.resize")`` (an older one refuses the
        unknown member with ``-32602``).

        Command envelopes (docs/process.md): ``timeout_ms`` cancels the
        process that long after its spawn (exit cause ``"timeout"``; not to
        be confused with ``timeout``, the seconds this call may take);
        ``output_limit={"bytes": n, "policy": "kill" | "truncate" | "tail"}``
        bounds what is forwarded of each stream; ``limits`` sets rlimits in
        the child (``memory_bytes``, ``cpu_seconds``, ``open_files``,
        ``processes``, ``file_size_bytes``); ``cancel`` is the process's cancel
        ladder (``[("SIGINT", 1000), ("SIGKILL",)]``), used by
        :meth:`ProcessHandle.cancel`, the timeout and a ``"kill"`` limit.
        Cancelling the call kills a process that was already started.
        """
        if isinstance(argv, str):
            raise TypeError("argv must be a sequence of strings, not a string; e.g. ['sh', '-c', line]")
        params: Dict[str, Any] = {"argv": list(argv)}
        if cwd is not None:
            params["cwd"] = cwd
        if env is not None:
            params["env"] = dict(env)
        if clear_env:
            params["clear_env"] = True
        if stdin != "pipe":
            params["stdin"] = stdin
        if stderr != "pipe":
            params["stderr"] = stderr
        if encoding != "utf8":
            params["encoding"] = encoding
        if tag is not None:
            params["tag"] = tag
        if pty is not None:
            params["pty"] = dict(pty)
        if timeout_ms is not None:
            params["timeout_ms"] = timeout_ms
        if output_limit is not None:
            params["output_limit"] = dict(output_limit)
        if limits is not None:
            params["limits"] = dict(limits)
        if cancel is not None:
            params["cancel"] = ladder_param(cancel)
        session, left = await self._current(timeout, "process.spawn")
        created: List[ProcessHandle[Any]] = []

        def register(result: Any) -> ProcessHandle[Any]:
            handle: ProcessHandle[Any]
            if encoding == "base64":
                handle = ProcessHandle(
                    session.conn.call, proc=result["proc"], pid=result["pid"], argv=list(argv),
                    encoding=encoding, generation=session.generation, decode=decode_base64, newline=b"\n", carriage_return=b"\r",
                )
            else:
                handle = ProcessHandle(
                    session.conn.call, proc=result["proc"], pid=result["pid"], argv=list(argv),
                    encoding=encoding, generation=session.generation, decode=decode_text, newline="\n", carriage_return="\r",
                )
            session.procs[handle.proc] = handle
            if session.link is None or session.session_itself:
                # A relay's processes are the session's: never this client's to kill.
                session.record.groups.add(handle.pid)
            created.append(handle)
            return handle

        try:
            return cast(Union[ProcessHandle[str], ProcessHandle[bytes]], await session.conn.call("process.spawn", params, timeout=left, hook=register))
        except (asyncio.CancelledError, RequestTimeoutError):
            for handle in created:
                handle._discard = True
                handle.kill()  # a task: it runs on its own
            raise

    # -- closing ---------------------------------------------------------------

    async def close(self, grace: Optional[float] = None, *, shutdown: bool = False, end: bool = False) -> Optional[ExitPayload]:
        """Stop the gateway and everything it runs; idempotent.

        Closes the gateway's stdin: it stops reading, lets running commands
        finish for the first 70% of its shutdown grace, SIGTERMs them, then
        SIGKILLs what is left, and exits 0. With ``shutdown=True`` a
        ``gateway.shutdown`` notification goes first, so running commands get
        SIGTERM at once. If the gateway has not exited within ``grace``
        (default: its shutdown grace + 1 s) it gets SIGTERM and its grace +
        0.5 s more, then SIGKILL, as do the process groups of children still
        known. Pending calls raise :class:`GatewayExited`; later ones
        :class:`GatewayClosed`; event streams end.

        Returns the exit's details (the ``exit`` event's payload: ``code``,
        ``signal``, ``reason``, ``exit_reason``, ...; ``error`` is ``None``
        for a clean exit 0), or ``None`` if no gateway ran. Cancelling the
        awaiting task does not stop the close, which goes on.

        In a session, closing stdin **detaches**: the session runs on (its
        commands too), the details say ``detached: True``, and the session's
        own process is never signalled for it (a relay may be). ``end=True``
        ends the session instead (``gateway.end``, answered before it shuts
        down), as ``shutdown=True`` does.
        """
        if self._close_task is None:
            self._close_task = asyncio.get_running_loop().create_task(self._close(grace, shutdown, end))
        await asyncio.shield(self._close_task)
        return self._last_exit

    async def _close(self, grace: Optional[float], shutdown: bool, end: bool) -> None:
        self._closing = True
        self._close_requested.set()
        self._notify_state()
        session = self._session
        if session is not None and session.exit is None:
            await self._shutdown_session(session, grace, shutdown, end)
        while True:
            # A restart under way may add a supervisor while we wait.
            running = [task for task in self._supervisors if not task.done()]
            if not running:
                break
            await asyncio.gather(*running, return_exceptions=True)
        self._closed = True
        self._bus.close()
        self._notify_state()

    async def _shutdown_session(self, session: Session, grace: Optional[float], shutdown: bool, end: bool = False) -> None:
        loop = asyncio.get_running_loop()
        if grace is None:
            grace = session.grace_s + CLOSE_MARGIN_S
        deadline = loop.time() + grace
        ending = shutdown or end or session.link is None
        if session.link is not None and end and not shutdown and session.live and not session.writer.is_closing():
            # gateway.end answers before the session shuts down: once the
            # answer is here, it ends whatever happens to this client's pipes.
            try:
                await session.conn.call("gateway.end", timeout=max(0.0, grace / 2))
            except (GatewayError, ConnectionError, OSError, asyncio.TimeoutError):
                pass
        elif (shutdown or end) and session.live and not session.writer.is_closing():
            try:
                await asyncio.wait_for(session.conn.notify("gateway.shutdown"), max(0.0, grace / 2))
            except (GatewayError, ConnectionError, OSError, asyncio.TimeoutError):
                pass
        if not ending:
            session.expect_detach = True
        session.writer.close()
        if await wait_event(session.ended, deadline - loop.time()):
            return
        if not ending and session.session_itself:
            # Never signal the session itself to detach it: that would end it.
            log.warning("session %s did not let go of its pipes within %.1f s of close(); dropping them", self._session_name, grace)
            close_transport(session.process)
            await wait_event(session.ended, EXIT_WAIT_S + STDERR_DRAIN_S)
            return
        log.warning("tui-gateway pid %d did not exit within %.1f s of close(); sending SIGTERM", session.pid, grace)
        signal_process(session.process, signal.SIGTERM)
        if await wait_event(session.ended, session.grace_s + child.TERMINATE_MARGIN_S):
            return
        log.warning("tui-gateway pid %d ignored SIGTERM; sending SIGKILL", session.pid)
        kill_process(session.process)
        kill_groups(session.record.groups)
        await wait_event(session.ended, EXIT_WAIT_S + STDERR_DRAIN_S)

    async def wait_closed(self) -> None:
        """Wait until the gateway is closed or ended for good (no restart)."""
        while not self.closed:
            w: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._state_waiters.append(w)
            await w

    async def __aenter__(self) -> "Gateway":
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


def _lost_reason(session: Session, code: Optional[int], sig: Optional[str]) -> str:
    """Why a session child was lost, in words (the ``detached`` event's ``reason``)."""
    assert session.link is not None
    name = session.link.name
    if session.detached:
        return f"session {name} let this client go (another client took over, or its pipes were lost)"
    what = f"session {name} (pid {session.pid})" if session.session_itself else f"the relay to session {name} (pid {session.pid})"
    how = f"was killed by {sig}" if sig is not None else f"exited with code {code}"
    said = last_line_with(list(session.tail.lines), "[gateway-attach] ")
    return f"{what} {how}: {said}" if said else f"{what} {how}"


def _merge_env(env: Optional[Mapping[str, Optional[str]]]) -> Optional[Dict[str, str]]:
    if env is None:
        return None
    merged = dict(os.environ)
    for name, value in env.items():
        if value is None:
            merged.pop(name, None)
        else:
            merged[name] = value
    return merged

