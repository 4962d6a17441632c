"""Handles for processes started with ``Gateway.spawn_process`` (docs/process.md).

A :class:`ProcessHandle` receives its process's ``process.output`` and
``process.exit`` events from the reader and buffers them until the UI
consumes them, through exactly one of:

- ``async for data in handle`` (``str``, or ``bytes`` for
  ``encoding="base64"``, decoded), both streams interleaved as they came;
- ``handle.chunks()``: :class:`OutputChunk` with the ``stream`` name;
- ``handle.lines()``: lines without their ``\\n``, chunks joined per stream,
  a final partial line kept until the exit;
- ``await handle.read()``: everything until the exit, joined.

With an ``output_limit`` (docs/process.md, "Command envelopes") the gateway
marks where it stopped forwarding: :class:`OutputChunk` has ``truncated``
(an empty chunk after the first N bytes of a stream) and ``skipped`` (the
bytes a ``"tail"`` limit left out before this chunk). ``async for``,
``read()`` and ``lines()`` never yield an empty item for a marker;
``lines()`` never joins the text before a ``"tail"`` gap with the text after
it (the line in progress at the gap is yielded as it is).

Output is delivered once: two consumers of one handle split it between
them. Iteration ends after the exit event. ``await handle.wait()`` returns
:class:`ExitStatus` once the exit event arrived and, while an iterator is
consuming, once that iterator took the last chunk: a UI that renders in one
task and awaits the exit in another prints "exited" after the last output.

The handle talks to the gateway child that started the process. If that
gateway exits (crash, restart), the handle's iterators and ``wait()`` raise
:class:`~tui_gateway_client.errors.GatewayExited` after the buffered output,
and its methods raise it too: a ``proc`` id of a dead gateway never reaches
the new one, where the same number means another process.
"""

from __future__ import annotations

import asyncio
import base64
import collections
import signal as _signal
from typing import Any, AnyStr, AsyncIterator, Callable, Deque, Dict, Generic, List, Mapping, NamedTuple, Optional, Sequence, Union, cast

from .errors import OVERLOADED, GatewayExited, RpcError
from .payloads import CancelResult, CloseStdinResult, ExitCause, ResizeResult, ResourceUsage, SignalResult, WriteResult

__all__ = [
    "ProcessHandle",
    "OutputChunk",
    "ExitStatus",
    "Caller",
    "WRITE_PIECE_BYTES",
    "CancelLadder",
    "CancelStep",
    "SignalSpec",
    "ladder_param",
]

#: ``write_all`` sends at most this much per ``process.write``: well below the
#: gateway's default per-child stdin limit (1 MiB), so a piece is never
#: refused for its size alone.
WRITE_PIECE_BYTES = 64 * 1024
#: Backoff while ``write_all`` waits for the child to read (the protocol has
#: no "drained" event; ``pending`` is polled through the write results).
_WRITE_RETRY_MIN_S = 0.005
_WRITE_RETRY_MAX_S = 0.2

Caller = Callable[..., Any]

#: A signal in a cancel ladder: a name (``"SIGTERM"``), a number, or a :class:`signal.Signals`.
SignalSpec = Union[str, int, _signal.Signals]
#: One ladder step: ``(signal, wait_ms)``, or ``(signal,)`` for the last one
#: (lists work too): send ``signal`` to the whole process tree, then wait up
#: to ``wait_ms`` (0 to 3600000) for it to end before the next step.
CancelStep = Sequence[SignalSpec]
#: A cancel ladder: 1 to 8 steps, every one but the last with its wait; end it
#: with SIGKILL (after the last step the gateway waits for the tree however long
#: it takes). The default is ``[("SIGINT", 2000), ("SIGTERM", 3000), ("SIGKILL",)]``.
CancelLadder = Sequence[CancelStep]


def ladder_param(ladder: CancelLadder) -> List[List[Union[str, int]]]:
    """A cancel ladder as the wire wants it: ``[[signal, wait_ms], ..., [signal]]``.

    Signals given as :class:`signal.Signals` are sent by name. The gateway
    checks the rest (step count, waits, names) and answers ``-32602``.
    """
    if isinstance(ladder, (str, bytes)) or not isinstance(ladder, Sequence):
        raise TypeError(f"a cancel ladder is a sequence of (signal, wait_ms) steps, e.g. [('SIGTERM', 2000), ('SIGKILL',)], not {ladder!r}")
    steps: List[List[Union[str, int]]] = []
    for step in ladder:
        if isinstance(step, (str, bytes)) or not isinstance(step, Sequence):
            raise TypeError(f"a cancel ladder step is (signal, wait_ms) or (signal,), not {step!r} (a 1-tuple needs its comma)")
        steps.append([item.name if isinstance(item, _signal.Signals) else item for item in step])
    return steps


class ExitStatus(NamedTuple):
    """How a process ended: ``code`` (``None`` if killed) and ``signal`` (``"SIGINT"``, or ``None``)."""

    code: Optional[int]
    signal: Optional[str]

    @property
    def ok(self) -> bool:
        return self.code == 0


class ProcessExit(ExitStatus):
    """What :meth:`ProcessHandle.wait` returns: an :class:`ExitStatus` (still the
    tuple ``(code, signal)``, equal to one) with what ``process.exit`` says
    about the command envelope, ``None`` when the gateway did not send it:

    - ``cause``: why it ended (:data:`~tui_gateway_client.payloads.ExitCause`:
      ``"exit"``, ``"signal"``, ``"cancel"``, ``"timeout"``, ``"output_limit"``,
      ``"limit"``, ``"shutdown"``);
    - ``duration_ms``: from its spawn to its reaping;
    - ``output_bytes``: raw bytes written per stream, forwarded or not;
    - ``discarded``: with ``output_limit``, the bytes not forwarded per stream;
    - ``limit``: with cause ``"limit"``, which one (``"cpu_seconds"``, ``"file_size_bytes"``);
    - ``usage``: with ``limits``, ``{"max_rss_bytes", "user_ms", "system_ms", "oom_killed"}``.
    """

    # Class-level defaults: an instance made by a tuple method (``_replace``,
    # ``_make``) has none of its own.
    cause: Optional[ExitCause] = None
    duration_ms: Optional[int] = None
    output_bytes: Optional[Dict[str, int]] = None
    discarded: Optional[Dict[str, int]] = None
    limit: Optional[str] = None
    usage: Optional[ResourceUsage] = None

    def __new__(
        cls,
        code: Optional[int],
        signal: Optional[str],
        *,
        cause: Optional[ExitCause] = None,
        duration_ms: Optional[int] = None,
        output_bytes: Optional[Dict[str, int]] = None,
        discarded: Optional[Dict[str, int]] = None,
        limit: Optional[str] = None,
        usage: Optional[ResourceUsage] = None,
    ) -> "ProcessExit":
        self = super().__new__(cls, code, signal)
        self.cause = cause
        self.duration_ms = duration_ms
        self.output_bytes = output_bytes
        self.discarded = discarded
        self.limit = limit
        self.usage = usage
        return self

    @classmethod
    def from_payload(cls, payload: Mapping[str, Any]) -> "ProcessExit":
        """From a ``process.exit`` payload; members of the wrong type are taken as absent."""

        def member(name: str, kind: type) -> Any:
            value = payload.get(name)
            return value if isinstance(value, kind) and not isinstance(value, bool) else None

        code = member("code", int)
        sig = member("signal", str)
        return cls(
            code,
            sig,
            cause=cast(Optional[ExitCause], member("cause", str)),
            duration_ms=member("duration_ms", int),
            output_bytes=member("output_bytes", dict),
            discarded=member("discarded", dict),
            limit=member("limit", str),
            usage=member("usage", dict),
        )

    def __repr__(self) -> str:
        extra = "".join(
            f", {name}={getattr(self, name)!r}"
            for name in ("cause", "duration_ms", "output_bytes", "discarded", "limit", "usage")
            if getattr(self, name) is not None
        )
        return f"ProcessExit(code={self.code!r}, signal={self.signal!r}{extra})"


class OutputChunk(Generic[AnyStr]):
    """One piece of output: ``stream`` is ``"stdout"``, ``"stderr"`` or ``"pty"``.

    With an ``output_limit``: ``truncated`` is true on the (empty) chunk
    that says the stream passed its limit and nothing more of it is
    forwarded; ``skipped`` is the number of bytes a ``"tail"`` limit left
    out just before this chunk (``None`` otherwise).
    """

    __slots__ = ("stream", "data", "truncated", "skipped")

    stream: str
    data: AnyStr
    truncated: bool
    skipped: Optional[int]

    def __init__(self, stream: str, data: AnyStr, truncated: bool = False, skipped: Optional[int] = None) -> None:
        self.stream = stream  # "stdout", "stderr", or "pty" for a process on a terminal
        self.data = data
        self.truncated = truncated
        self.skipped = skipped

    def __repr__(self) -> str:
        flags = (", truncated=True" if self.truncated else "") + (f", skipped={self.skipped}" if self.skipped is not None else "")
        return f"OutputChunk({self.stream!r}, {self.data[:60]!r}{'...' if len(self.data) > 60 else ''}{flags})"


def decode_text(data: str) -> str:
    return data


def decode_base64(data: str) -> bytes:
    return base64.b64decode(data, validate=True)


class ProcessHandle(Generic[AnyStr]):
    """A process running under the gateway; see the module docs."""

    def __init__(
        self,
        call: Callable[..., Any],
        *,
        proc: int,
        pid: int,
        argv: List[str],
        encoding: str,
        generation: int,
        decode: Callable[[str], AnyStr],
        newline: AnyStr,
        carriage_return: AnyStr,
    ) -> None:
        self._call = call
        self.proc = proc
        self.pid = pid
        self.argv = list(argv)
        self.encoding = encoding
        self.generation = generation
        self._decode: Callable[[str], AnyStr] = decode
        self._newline: AnyStr = newline
        self._empty: AnyStr = newline[:0]
        self._carriage_return: AnyStr = carriage_return
        self._chunks: Deque[OutputChunk[AnyStr]] = collections.deque()
        self._exit: Optional[ProcessExit] = None
        self._lost: Optional[GatewayExited] = None
        self._waiters: List["asyncio.Future[None]"] = []
        self._consumers = 0
        self._held = 0  # items a lines() consumer split off but did not yield yet
        self._discard = False
        self.bytes_received = 0

    def __repr__(self) -> str:
        state = "running" if self._exit is None else f"exited {self._exit!r}"
        return f"<ProcessHandle proc={self.proc} pid={self.pid} argv={self.argv!r} {state}>"

    # -- fed by the reader ---------------------------------------------------

    def _on_output(self, payload: Dict[str, Any]) -> None:
        if self._discard:
            return
        data = payload.get("data")
        if not isinstance(data, str):
            data = ""
        truncated = payload.get("truncated") is True
        skipped = payload.get("skipped")
        if not isinstance(skipped, int) or isinstance(skipped, bool):
            skipped = None
        if not data and not truncated and skipped is None:
            return
        decoded = self._decode(data)
        self.bytes_received += len(decoded)
        self._chunks.append(OutputChunk(str(payload.get("stream", "stdout")), decoded, truncated, skipped))
        self._wake()

    def _on_exit(self, payload: Dict[str, Any]) -> None:
        self._exit = ProcessExit.from_payload(payload)
        self._wake()

    def _on_lost(self, exc: GatewayExited) -> None:
        if self._exit is None:
            self._lost = exc
            self._wake()

    def _wake(self) -> None:
        waiters, self._waiters = self._waiters, []
        for w in waiters:
            if not w.done():
                w.set_result(None)

    async def _changed(self) -> None:
        w: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(w)
        await w

    # -- state ---------------------------------------------------------------

    @property
    def exit_status(self) -> Optional[ProcessExit]:
        """The exit, once its event arrived (output may still be buffered)."""
        return self._exit

    @property
    def running(self) -> bool:
        return self._exit is None and self._lost is None

    def buffered(self) -> int:
        """Chunks received and not consumed yet."""
        return len(self._chunks)

    # -- consuming output ----------------------------------------------------

    async def _next_chunk(self) -> Optional[OutputChunk[AnyStr]]:
        while True:
            if self._chunks:
                chunk = self._chunks.popleft()
                if not self._chunks and not self._held:
                    self._wake()  # a wait() may be waiting for the last delivery
                return chunk
            if self._exit is not None:
                return None
            if self._lost is not None:
                raise self._lost
            await self._changed()

    async def _iter_chunks(self) -> AsyncIterator[OutputChunk[AnyStr]]:
        while True:
            chunk = await self._next_chunk()
            if chunk is None:
                return
            yield chunk

    async def chunks(self) -> AsyncIterator[OutputChunk[AnyStr]]:
        """Output chunks with their stream, until the exit."""
        self._consumers += 1
        try:
            async for chunk in self._iter_chunks():
                yield chunk
        finally:
            self._consumers -= 1
            self._wake()

    async def _data(self) -> AsyncIterator[AnyStr]:
        async for chunk in self.chunks():
            if chunk.data:  # an output limit's marker carries no data
                yield chunk.data

    def __aiter__(self) -> AsyncIterator[AnyStr]:
        return self._data()

    async def lines(self, stream: Optional[str] = None) -> AsyncIterator[AnyStr]:
        """Lines without their ``\\n``, chunks joined per stream (``stream``
        selects one; the other's output is consumed and dropped). A last line
        without a newline is yielded at the exit. On a terminal (stream
        ``"pty"``) the line discipline's ``\\r\\n`` is taken as one newline.
        An output limit's ``truncated`` marker adds no line; at a ``"tail"``
        gap (a chunk with ``skipped``) the line in progress is yielded as it
        is, never joined with the text after the gap."""
        partial: Dict[str, List[AnyStr]] = {}
        nl = self._newline
        cr = self._carriage_return
        self._consumers += 1
        try:
            async for chunk in self._iter_chunks():
                if stream is not None and chunk.stream != stream:
                    continue
                if chunk.skipped is not None:
                    cut = partial.pop(chunk.stream, None)
                    fragment = self._empty.join(cut) if cut else self._empty
                    if fragment:
                        self._held = len(partial) + (1 if chunk.data else 0)
                        if not self._held:
                            self._wake()
                        yield fragment
                if not chunk.data:
                    continue
                parts = chunk.data.split(nl)
                if len(parts) == 1:
                    partial.setdefault(chunk.stream, []).append(parts[0])
                    self._held = 1
                    continue
                held = partial.pop(chunk.stream, None)
                complete = [self._empty.join(held + [parts[0]]) if held else parts[0]]
                complete.extend(parts[1:-1])
                if chunk.stream == "pty":
                    complete = [line[:-1] if line.endswith(cr) else line for line in complete]
                if parts[-1]:
                    partial[chunk.stream] = [parts[-1]]
                for i, line in enumerate(complete):
                    # Lines split off a chunk but not yet handed over count
                    # as undelivered for wait().
                    self._held = len(complete) - i - 1 + len(partial)
                    if not self._held:
                        self._wake()
                    yield line
            tails = [self._empty.join(held) for held in partial.values()]
            partial.clear()
            for i, tail in enumerate(tails):
                self._held = len(tails) - i - 1
                if not self._held:
                    self._wake()
                if tail:
                    yield tail
        finally:
            self._held = 0
            self._consumers -= 1
            self._wake()

    async def read(self) -> AnyStr:
        """All output (both streams, as they came) until the exit."""
        parts: List[AnyStr] = []
        async for data in self:
            parts.append(data)
        return self._empty.join(parts)

    async def wait(self, timeout: Optional[float] = None) -> ProcessExit:
        """The exit status, after all output was delivered (see the module docs):
        a :class:`ProcessExit`, the ``(code, signal)`` tuple with ``cause``,
        ``duration_ms``, ``output_bytes``, ... of the command envelope."""
        if timeout is not None:
            return await asyncio.wait_for(self.wait(), timeout)
        while self._exit is None:
            if self._lost is not None:
                raise self._lost
            await self._changed()
        while self._consumers > 0 and (self._chunks or self._held):
            await self._changed()
        return self._exit

    # -- acting on the process -------------------------------------------------

    async def write(self, data: Union[str, bytes], *, timeout: Optional[float] = None) -> WriteResult:
        """``process.write``: ``str`` as UTF-8, ``bytes`` as base64 on the wire.

        Accepted whole or refused whole: ``RpcError`` ``-32001`` when the
        child's queue would pass its limit (see :meth:`write_all`).
        """
        params: Dict[str, Any] = {"proc": self.proc}
        if isinstance(data, (bytes, bytearray, memoryview)):
            params["data"] = base64.b64encode(bytes(data)).decode("ascii")
            params["encoding"] = "base64"
        else:
            params["data"] = data
        return cast(WriteResult, await self._call("process.write", params, timeout=timeout))

    async def write_all(self, data: Union[str, bytes], *, piece_bytes: int = WRITE_PIECE_BYTES) -> int:
        """Write ``data`` of any size in pieces, waiting while the child's stdin
        queue is full (``-32001``). Returns the bytes written."""
        raw = data.encode("utf-8") if isinstance(data, str) else bytes(data)
        sent = 0
        delay = _WRITE_RETRY_MIN_S
        while sent < len(raw):
            piece = raw[sent : sent + piece_bytes]
            try:
                # bytes go base64; a str piece could split a UTF-8 character.
                await self.write(piece)
            except RpcError as exc:
                if exc.code != OVERLOADED:
                    raise
                await asyncio.sleep(delay)
                delay = min(delay * 2, _WRITE_RETRY_MAX_S)
                continue
            delay = _WRITE_RETRY_MIN_S
            sent += len(piece)
        return sent

    async def close_stdin(self) -> CloseStdinResult:
        """``process.close_stdin``: the child sees EOF after what is queued."""
        return cast(CloseStdinResult, await self._call("process.close_stdin", {"proc": self.proc}))

    async def signal(self, sig: Union[str, int, _signal.Signals] = "SIGTERM", *, tree: bool = False) -> str:
        """``process.signal`` to the process's whole group; returns the signal's name.

        ``tree=True`` signals the process and every descendant, whatever
        group or session they moved to (a job-control shell's jobs, a daemon
        it started); it needs a gateway that documents ``tree``.
        """
        value: Union[str, int] = sig.name if isinstance(sig, _signal.Signals) else sig
        params: Dict[str, Any] = {"proc": self.proc, "signal": value}
        if tree:
            params["tree"] = True
        result = cast(SignalResult, await self._call("process.signal", params))
        return result["signal"]

    async def kill(self) -> str:
        """SIGKILL to the process group."""
        return await self.signal("SIGKILL")

    async def cancel(self, ladder: Optional[CancelLadder] = None, *, timeout: Optional[float] = None) -> CancelResult:
        """``process.cancel``: end the process and everything below it with a cancel ladder.

        ``ladder`` (else the spawn's ``cancel``, else the gateway's default
        ``[("SIGINT", 2000), ("SIGTERM", 3000), ("SIGKILL",)]``) is run over the
        whole tree; the call returns only once nothing of it is left, with
        ``{"proc", "step", "signal", "code", "exit_signal"}``: the last step
        sent and the process's own exit (its ``process.exit`` comes first,
        and its cause is ``"cancel"`` unless a timeout or an output limit
        started the ladder). That can take as long as the ladder's waits and
        more, so there is no timeout unless ``timeout`` (seconds) is given; a
        timeout only stops waiting, the ladder goes on. A cancel of a process
        already being cancelled joins it (its ``ladder`` is ignored). After
        the process's exit event, ``RpcError`` ``-32602`` (unknown proc).
        """
        params: Dict[str, Any] = {"proc": self.proc}
        if ladder is not None:
            params["ladder"] = ladder_param(ladder)
        return cast(CancelResult, await self._call("process.cancel", params, timeout=timeout))

    async def resize(self, rows: int, cols: int) -> ResizeResult:
        """``process.resize``: set the size of the process's terminal (the
        kernel sends SIGWINCH to its foreground process group).

        Needs a gateway with PTY support (``gateway.supports("process.resize")``)
        and a process spawned with ``pty={"rows": r, "cols": c}``; otherwise
        the gateway answers ``RpcError`` ``-32601`` (no such method) or
        ``-32602`` (not on a terminal, or a size outside 1 to 10000).
        """
        return cast(ResizeResult, await self._call("process.resize", {"proc": self.proc, "rows": rows, "cols": cols}))
