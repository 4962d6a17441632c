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
from typing import Any, AnyStr, AsyncIterator, Callable, Deque, Dict, Generic, List, NamedTuple, Optional, Union, cast

from .errors import OVERLOADED, GatewayExited, RpcError
from .payloads import CloseStdinResult, ResizeResult, SignalResult, WriteResult

__all__ = ["ProcessHandle", "OutputChunk", "ExitStatus", "Caller", "WRITE_PIECE_BYTES"]

#: ``write_all`` sends at most this much per ``process.write``: well below the
#: gateway's default per-child stdin limit (1 MiB), so a piece is never
#: refused for its size alone.
WRITE_PIECE_BYTES = 64 * 1024
#: Backoff while ``write_all`` waits for the child to read (the protocol has
#: no "drained" event; ``pending`` is polled through the write results).
_WRITE_RETRY_MIN_S = 0.005
_WRITE_RETRY_MAX_S = 0.2

Caller = Callable[..., Any]


class ExitStatus(NamedTuple):
    """How a process ended: ``code`` (``None`` if killed) and ``signal`` (``"SIGINT"``, or ``None``)."""

    code: Optional[int]
    signal: Optional[str]

    @property
    def ok(self) -> bool:
        return self.code == 0


class OutputChunk(Generic[AnyStr]):
    """One piece of output: ``stream`` is ``"stdout"`` or ``"stderr"``."""

    __slots__ = ("stream", "data")

    stream: str
    data: AnyStr

    def __init__(self, stream: str, data: AnyStr) -> None:
        self.stream = stream  # "stdout", "stderr", or "pty" for a process on a terminal
        self.data = data

    def __repr__(self) -> str:
        return f"OutputChunk({self.stream!r}, {self.data[:60]!r}{'...' if len(self.data) > 60 else ''})"


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
        self._exit: Optional[ExitStatus] = None
        self._lost: Optional[GatewayExited] = None
        self._waiters: List["asyncio.Future[None]"] = []
        self._consumers = 0
        self._held = 0  # items a lines() consumer split off but did not yield yet
        self._discard = False
        self.bytes_received = 0

    def __repr__(self) -> str:
        state = "running" if self._exit is None else f"exited {self._exit}"
        return f"<ProcessHandle proc={self.proc} pid={self.pid} argv={self.argv!r} {state}>"

    # -- fed by the reader ---------------------------------------------------

    def _on_output(self, payload: Dict[str, Any]) -> None:
        if self._discard:
            return
        data = payload.get("data")
        if not isinstance(data, str) or not data:
            return
        decoded = self._decode(data)
        self.bytes_received += len(decoded)
        self._chunks.append(OutputChunk(str(payload.get("stream", "stdout")), decoded))
        self._wake()

    def _on_exit(self, payload: Dict[str, Any]) -> None:
        code = payload.get("code")
        sig = payload.get("signal")
        self._exit = ExitStatus(code if isinstance(code, int) else None, sig if isinstance(sig, str) else None)
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
    def exit_status(self) -> Optional[ExitStatus]:
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
            yield chunk.data

    def __aiter__(self) -> AsyncIterator[AnyStr]:
        return self._data()

    async def lines(self, stream: Optional[str] = None) -> AsyncIterator[AnyStr]:
        """Lines without their ``\\n``, chunks joined per stream (``stream``
        selects one; the other's output is consumed and dropped). A last line
        without a newline is yielded at the exit. On a terminal (stream
        ``"pty"``) the line discipline's ``\\r\\n`` is taken as one newline."""
        partial: Dict[str, List[AnyStr]] = {}
        nl = self._newline
        cr = self._carriage_return
        self._consumers += 1
        try:
            async for chunk in self._iter_chunks():
                if stream is not None and chunk.stream != stream:
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

    async def wait(self, timeout: Optional[float] = None) -> ExitStatus:
        """The exit status, after all output was delivered (see the module docs)."""
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

    async def resize(self, rows: int, cols: int) -> ResizeResult:
        """``process.resize``: set the size of the process's terminal (the
        kernel sends SIGWINCH to its foreground process group).

        Needs a gateway with PTY support (``gateway.supports("process.resize")``)
        and a process spawned with ``pty={"rows": r, "cols": c}``; otherwise
        the gateway answers ``RpcError`` ``-32601`` (no such method) or
        ``-32602`` (not on a terminal, or a size outside 1 to 10000).
        """
        return cast(ResizeResult, await self._call("process.resize", {"proc": self.proc, "rows": rows, "cols": cols}))
