"""Handles for processes started with ``Gateway.spawn_process`` (docs/process.md).

A :class:`ProcessHandle` receives its process's ``process.output`` and
``process.exit`` events from the reader and buffers them until the UI
consumes them, through exactly one of:

- ``async for data in handle`` (``str``, or ``bytes`` for
  ``encoding="base64"``, decoded), both streams interleaved as they came;
- ``handle.chunks()``: :class:`OutputChunk` with the ``stream`` name;
- ``handle.lines()``: :class:`OutputLine` (``stream``, ``line`` without its
  ``\\n``), chunks joined per stream, a final partial line kept until the
  exit; ``lines(rewrites=True)`` also ends a line's version at a ``\\r``;
- ``handle.text()``: :class:`OutputText` (``stream``, ``text``), decoded
  text as it comes, partial lines included;
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
import codecs
import collections
import logging
import os
import re
import signal as _signal
import weakref
from typing import (
    Any,
    AnyStr,
    AsyncIterator,
    Callable,
    Deque,
    Dict,
    Generic,
    List,
    Mapping,
    NamedTuple,
    Optional,
    Pattern,
    Sequence,
    Set,
    Tuple,
    Union,
    cast,
)

from .errors import HANDLER_FAILED, INVALID_PARAMS, OVERLOADED, GatewayExited, RpcError
from .payloads import CancelResult, CloseStdinResult, ExitCause, PtySize, ResizeResult, ResourceUsage, WriteResult

__all__ = [
    "ProcessHandle",
    "OutputChunk",
    "OutputLine",
    "OutputText",
    "ExitStatus",
    "Caller",
    "WRITE_PIECE_BYTES",
    "CancelLadder",
    "CancelStep",
    "SignalSpec",
    "ladder_param",
]

#: ``write_all`` sends at most this much per ``process.write`` (the Node
#: client's ``writeAll`` too): well below the gateway's default per-child
#: stdin limit (1 MiB), so a piece is never refused for its size alone.
WRITE_PIECE_BYTES = 64 * 1024
#: Backoff while ``write_all`` waits for the child to read (the protocol has
#: no "drained" event; ``pending`` is polled through the write results).
_WRITE_RETRY_MIN_S = 0.005
_WRITE_RETRY_MAX_S = 0.2

Caller = Callable[..., Any]

log = logging.getLogger("tui_gateway_client")

#: A terminal size for :meth:`ProcessHandle.resize`: ``{"cols": c, "rows": r}``
#: (a :class:`~tui_gateway_client.payloads.PtySize` has the same keys) or an
#: :class:`os.terminal_size` (``columns``, ``lines``).
TerminalSize = Union[PtySize, Mapping[str, int], os.terminal_size]

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

    @property
    def returncode(self) -> int:
        """As asyncio's ``Process.returncode``: the exit code, or ``-N`` when killed by signal ``N``."""
        if self.code is not None:
            return self.code
        if self.signal is not None:
            try:
                return -int(_signal.Signals[self.signal])
            except KeyError:
                if self.signal.startswith("SIG") and self.signal[3:].isdigit():
                    return -int(self.signal[3:])
        return -1


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


class OutputLine(Generic[AnyStr]):
    """One line of output from :meth:`ProcessHandle.lines`: ``stream`` and
    ``line`` (without its ``\\n``; ``bytes`` for an ``encoding="base64"``
    handle). ``skipped``: the bytes an output limit's ``"tail"`` left out
    just before it. ``rewrite``: with ``lines(rewrites=True)``, this version
    replaces the line yielded before (a ``\\r`` rewrote it). The Node
    client yields ``{stream, line, skipped?, rewrite?}``."""

    __slots__ = ("stream", "line", "skipped", "rewrite")

    stream: str
    line: AnyStr
    skipped: Optional[int]
    rewrite: bool

    def __init__(self, stream: str, line: AnyStr, skipped: Optional[int] = None, rewrite: bool = False) -> None:
        self.stream = stream
        self.line = line
        self.skipped = skipped
        self.rewrite = rewrite

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, OutputLine):
            return NotImplemented
        return (self.stream, self.line, self.skipped, self.rewrite) == (other.stream, other.line, other.skipped, other.rewrite)

    def __hash__(self) -> int:
        return hash((self.stream, self.line, self.skipped, self.rewrite))

    def __repr__(self) -> str:
        extra = (f", skipped={self.skipped}" if self.skipped is not None else "") + (", rewrite=True" if self.rewrite else "")
        return f"OutputLine({self.stream!r}, {self.line!r}{extra})"


class OutputText:
    """A piece of output as text from :meth:`ProcessHandle.text`, as it came
    (partial lines included): ``stream``, ``text``, and ``skipped`` after an
    output limit's ``"tail"`` gap. The Node client yields ``{stream, text, skipped?}``."""

    __slots__ = ("stream", "text", "skipped")

    def __init__(self, stream: str, text: str, skipped: Optional[int] = None) -> None:
        self.stream = stream
        self.text = text
        self.skipped = skipped

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, OutputText):
            return NotImplemented
        return (self.stream, self.text, self.skipped) == (other.stream, other.text, other.skipped)

    def __hash__(self) -> int:
        return hash((self.stream, self.text, self.skipped))

    def __repr__(self) -> str:
        extra = f", skipped={self.skipped}" if self.skipped is not None else ""
        return f"OutputText({self.stream!r}, {self.text!r}{extra})"


class _LineAssembler(Generic[AnyStr]):
    """Splits one stream's output into lines, as the Node client's lib/lines.js.

    Default: a line ends at ``\\n``; one ``\\r`` just before it is removed;
    any other ``\\r`` stays. With ``rewrites``: a ``\\r`` not part of
    ``\\r\\n`` also ends a *version* of the line (a terminal's cursor back
    to column 0); each version is delivered when completed, later ones of a
    line with ``rewrite`` set. A version is the text after the ``\\r``, not
    merged with what it overwrites. Empty versions are skipped, except a
    blank line that was never rewritten.
    """

    def __init__(self, empty: AnyStr, newline: AnyStr, carriage_return: AnyStr, rewrites: bool) -> None:
        self._empty: AnyStr = empty
        self._nl: AnyStr = newline
        self._cr: AnyStr = carriage_return
        self._rewrites = rewrites
        self._parts: List[AnyStr] = []
        self._shown = False
        self._pending_cr = False
        self._pattern: Pattern[AnyStr] = cast(Pattern[AnyStr], re.compile(b"[\r\n]" if isinstance(empty, bytes) else "[\r\n]"))

    @property
    def holding(self) -> bool:
        return bool(self._parts) or self._pending_cr

    def _take(self) -> AnyStr:
        text: AnyStr = self._empty.join(self._parts)
        self._parts = []
        return text

    def push(self, text: AnyStr) -> List[Tuple[AnyStr, bool]]:
        out: List[Tuple[AnyStr, bool]] = []
        if not text:
            return out
        nl, cr = self._nl, self._cr
        if not self._rewrites:
            pieces = text.split(nl)
            if len(pieces) == 1:
                self._parts.append(text)
                return out
            self._parts.append(pieces[0])
            complete = [self._take()] + pieces[1:-1]
            for line in complete:
                out.append((line[:-1] if line.endswith(cr) else line, False))
            if pieces[-1]:
                self._parts.append(pieces[-1])
            return out
        i, n = 0, len(text)
        if self._pending_cr:
            self._pending_cr = False
            if text[0:1] == nl:
                self._end_line(out)
                i = 1
            else:
                self._end_version(out)
        while i < n:
            m = self._pattern.search(text, i)
            if m is None:
                self._parts.append(text[i:])
                break
            j = m.start()
            if j > i:
                self._parts.append(text[i:j])
            if text[j : j + 1] == nl:
                self._end_line(out)
                i = j + 1
            elif j + 1 == n:
                self._pending_cr = True  # "\r\n" or a rewrite: the next text decides
                i = n
            elif text[j + 1 : j + 2] == nl:
                self._end_line(out)
                i = j + 2
            else:
                self._end_version(out)
                i = j + 1
        return out

    def cut(self) -> List[Tuple[AnyStr, bool]]:
        """A gap in the stream: the line in progress as it is."""
        text = self._take()
        out = [(text, self._rewrites and self._shown)] if text else []
        self._shown = False
        self._pending_cr = False
        return out

    def end(self) -> List[Tuple[AnyStr, bool]]:
        """The stream ended: a last line without a newline."""
        text = self._take()
        out: List[Tuple[AnyStr, bool]] = []
        if self._rewrites:
            if text:
                out.append((text, self._shown))
        else:
            if text.endswith(self._cr):
                text = text[:-1]
            if text:
                out.append((text, False))
        self._shown = False
        self._pending_cr = False
        return out

    def _end_line(self, out: List[Tuple[AnyStr, bool]]) -> None:
        text = self._take()
        if text or not self._shown:
            out.append((text, self._shown))
        self._shown = False

    def _end_version(self, out: List[Tuple[AnyStr, bool]]) -> None:
        text = self._take()
        if text:
            out.append((text, self._shown))
            self._shown = True


def _process_gone(exc: RpcError) -> bool:
    """Whether a ``process.signal`` error only says the process is gone: its
    exit event was sent (``-32602`` "unknown proc"), or nothing of it is left
    to signal (``-32000`` ESRCH)."""
    if exc.code == INVALID_PARAMS:
        return "unknown proc" in exc.message
    return exc.code == HANDLER_FAILED and isinstance(exc.data, dict) and exc.data.get("code") == "ESRCH"


class _WinchFanout:
    """One SIGWINCH handler per event loop (``loop.add_signal_handler``),
    shared by every :meth:`ProcessHandle.follow_terminal_size`; removed with
    the last follower, when the handler that was there before is put back."""

    _by_loop: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _WinchFanout]" = weakref.WeakKeyDictionary()

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.callbacks: List[Callable[[], None]] = []
        self.previous = _signal.getsignal(_signal.SIGWINCH)
        loop.add_signal_handler(_signal.SIGWINCH, self._fire)

    @classmethod
    def add(cls, loop: asyncio.AbstractEventLoop, callback: Callable[[], None]) -> None:
        fanout = cls._by_loop.get(loop)
        if fanout is None:
            fanout = cls(loop)
            cls._by_loop[loop] = fanout
        fanout.callbacks.append(callback)

    @classmethod
    def remove(cls, loop: asyncio.AbstractEventLoop, callback: Callable[[], None]) -> None:
        fanout = cls._by_loop.get(loop)
        if fanout is None or callback not in fanout.callbacks:
            return
        fanout.callbacks.remove(callback)
        if fanout.callbacks:
            return
        del cls._by_loop[loop]
        try:
            loop.remove_signal_handler(_signal.SIGWINCH)
            if fanout.previous is not None and fanout.previous is not _signal.SIG_DFL:
                _signal.signal(_signal.SIGWINCH, fanout.previous)
        except (RuntimeError, ValueError, OSError):  # a closed loop, another thread
            pass

    def _fire(self) -> None:
        for callback in list(self.callbacks):
            try:
                callback()
            except Exception:
                log.exception("tui-gateway client: following the terminal size failed")


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
        self._followers: List[Callable[[], None]] = []
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
        self._stop_following()
        self._wake()

    def _on_lost(self, exc: GatewayExited) -> None:
        if self._exit is None:
            self._lost = exc
            self._stop_following()
            self._wake()

    def _stop_following(self) -> None:
        for stop in list(self._followers):
            stop()

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

    @property
    def returncode(self) -> Optional[int]:
        """As asyncio's ``Process.returncode``: ``None`` until the exit event
        arrived, then the exit code, or ``-N`` when killed by signal ``N``."""
        return None if self._exit is None else self._exit.returncode

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

    async def lines(self, stream: Optional[str] = None, *, rewrites: bool = False) -> AsyncIterator[OutputLine[AnyStr]]:
        """:class:`OutputLine` items (``stream``, ``line`` without its
        ``\\n``, and one ``\\r`` before it removed), chunks joined per stream
        (``stream`` selects one; the other's output is consumed and dropped).
        A last line without a newline is yielded at the exit.

        ``rewrites=True``: a ``\\r`` not part of ``\\r\\n`` ends a version of
        the line, as it sends a terminal's cursor back to column 0; each
        version is yielded as it is completed, and those that replace the
        version yielded before have ``rewrite=True`` (``"\\r10%\\r50%\\r100%\\n"``
        gives ``"10%"``, then ``"50%"`` and ``"100%"`` as rewrites).

        An output limit's ``truncated`` marker adds no line; at a ``"tail"``
        gap (a chunk with ``skipped``) the line in progress is yielded as it
        is, never joined with the text after the gap, and the next line of
        that stream carries ``skipped``."""
        assemblers: Dict[str, _LineAssembler[AnyStr]] = {}
        gaps: Dict[str, int] = {}

        def make(name: str, item: Tuple[AnyStr, bool]) -> OutputLine[AnyStr]:
            return OutputLine(name, item[0], gaps.pop(name, None), item[1])

        def holding() -> int:
            return sum(1 for a in assemblers.values() if a.holding)

        self._consumers += 1
        try:
            async for chunk in self._iter_chunks():
                name = chunk.stream
                if stream is not None and name != stream:
                    continue
                asm = assemblers.get(name)
                if asm is None:
                    asm = assemblers[name] = _LineAssembler(self._empty, self._newline, self._carriage_return, rewrites)
                ready: List[OutputLine[AnyStr]] = []
                if chunk.skipped is not None:
                    ready.extend(make(name, item) for item in asm.cut())
                    gaps[name] = gaps.get(name, 0) + chunk.skipped
                if chunk.data:
                    ready.extend(make(name, item) for item in asm.push(chunk.data))
                if not ready:
                    self._held = holding()
                for i, line in enumerate(ready):
                    # Lines split off a chunk but not yet handed over count
                    # as undelivered for wait().
                    self._held = len(ready) - i - 1 + holding()
                    if not self._held:
                        self._wake()
                    yield line
            tails = [make(name, item) for name, asm in assemblers.items() for item in asm.end()]
            for i, tail in enumerate(tails):
                self._held = len(tails) - i - 1
                if not self._held:
                    self._wake()
                yield tail
        finally:
            self._held = 0
            self._consumers -= 1
            self._wake()

    async def text(self, stream: Optional[str] = None) -> AsyncIterator[OutputText]:
        """:class:`OutputText` items (``stream``, ``text``): the output decoded
        as it comes, partial lines included (a prompt such as ``"Password: "``
        arrives without waiting for a newline). ``bytes`` (``encoding="base64"``)
        are decoded as UTF-8 per stream, never splitting a character. An
        output limit's ``truncated`` marker yields nothing; the text after a
        ``"tail"`` gap has ``skipped``."""
        decoders: Dict[str, "codecs.IncrementalDecoder"] = {}
        gaps: Dict[str, int] = {}
        self._consumers += 1
        try:
            async for chunk in self._iter_chunks():
                name = chunk.stream
                if stream is not None and name != stream:
                    continue
                if chunk.skipped is not None:
                    gaps[name] = gaps.get(name, 0) + chunk.skipped
                data: Union[str, bytes] = chunk.data
                if isinstance(data, bytes):
                    decoder = decoders.get(name)
                    if decoder is None:
                        decoder = decoders[name] = codecs.getincrementaldecoder("utf-8")(errors="replace")
                    text = decoder.decode(data)
                else:
                    text = data
                if text:
                    self._held = 0
                    yield OutputText(name, text, gaps.pop(name, None))
            for name, decoder in decoders.items():
                rest = decoder.decode(b"", final=True)
                if rest:
                    yield OutputText(name, rest)
        finally:
            self._consumers -= 1
            self._wake()

    async def read(self, stream: Optional[str] = None) -> AnyStr:
        """All output until the exit: both streams as they came, or only ``stream``."""
        parts: List[AnyStr] = []
        async for chunk in self.chunks():
            if (stream is None or chunk.stream == stream) and chunk.data:
                parts.append(chunk.data)
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
        """One ``process.write``: ``str`` as UTF-8, ``bytes`` as base64 on the wire.

        Accepted whole or refused whole, never retried: ``RpcError``
        ``-32001`` when the child's stdin queue cannot take it (nothing is
        queued); :meth:`write_all` waits for room instead. Cancelling stops
        only the wait: the write may still be accepted.
        """
        params: Dict[str, Any] = {"proc": self.proc}
        if isinstance(data, (bytes, bytearray, memoryview)):
            params["data"] = base64.b64encode(bytes(data)).decode("ascii")
            params["encoding"] = "base64"
        elif isinstance(data, str):
            params["data"] = data
        else:
            raise TypeError(f"write() takes str or bytes, not {type(data).__name__}")
        return cast(WriteResult, await self._call("process.write", params, timeout=timeout))

    async def write_all(
        self, data: Union[str, bytes], *, piece_bytes: int = WRITE_PIECE_BYTES, timeout: Optional[float] = None
    ) -> WriteResult:
        """Write ``data`` of any size in pieces of ``piece_bytes``, each sent
        again after a short backoff while the child's stdin queue is full
        (``-32001``), until all were accepted. Returns the total ``queued``
        and the last ``pending``. ``timeout`` bounds each piece's call;
        cancelling stops between pieces (those accepted stay queued)."""
        if isinstance(data, str):
            raw = data.encode("utf-8")
        elif isinstance(data, (bytes, bytearray, memoryview)):
            raw = bytes(data)
        else:
            raise TypeError(f"write_all() takes str or bytes, not {type(data).__name__}")
        if piece_bytes < 1:
            raise ValueError(f"piece_bytes must be positive, not {piece_bytes}")
        sent = 0
        queued = 0
        pending = 0
        delay = _WRITE_RETRY_MIN_S
        while True:
            piece = raw[sent : sent + piece_bytes]
            try:
                # bytes go base64; a str piece could split a UTF-8 character.
                result = await self.write(piece, timeout=timeout)
            except RpcError as exc:
                if exc.code != OVERLOADED or not self.running:
                    raise
                await asyncio.sleep(delay)
                delay = min(delay * 2, _WRITE_RETRY_MAX_S)
                continue
            delay = _WRITE_RETRY_MIN_S
            sent += len(piece)
            queued += result["queued"]
            pending = result["pending"]
            if sent >= len(raw):
                return WriteResult(queued=queued, pending=pending)

    async def close_stdin(self, *, timeout: Optional[float] = None) -> CloseStdinResult:
        """``process.close_stdin``: the child sees EOF after what is queued (on a terminal, its EOF character)."""
        return cast(CloseStdinResult, await self._call("process.close_stdin", {"proc": self.proc}, timeout=timeout))

    async def signal(self, sig: Union[str, int, _signal.Signals] = "SIGTERM", *, tree: bool = False, timeout: Optional[float] = None) -> bool:
        """``process.signal`` to the process's whole group: ``True`` once sent,
        ``False`` if the process had already exited (its exit event was seen,
        so nothing is sent; or the gateway answered "unknown proc" or ESRCH).

        ``tree=True`` signals the process and every descendant, whatever
        group or session they moved to (a job-control shell's jobs, a daemon
        it started).
        """
        if self._exit is not None:
            return False
        value: Union[str, int] = sig.name if isinstance(sig, _signal.Signals) else sig
        params: Dict[str, Any] = {"proc": self.proc, "signal": value}
        if tree:
            params["tree"] = True
        try:
            await self._call("process.signal", params, timeout=timeout)
        except RpcError as exc:
            if _process_gone(exc):
                return False
            raise
        return True

    def kill(self, sig: Union[str, int, _signal.Signals] = "SIGKILL", *, tree: bool = False) -> "asyncio.Task[bool]":
        """:meth:`signal` with SIGKILL by default, as asyncio's ``Process.kill()``.

        Returns a task that is already running: ``proc.kill()`` sends the
        signal without an ``await`` (as on asyncio's ``Process``), and
        ``await proc.kill()`` gives :meth:`signal`'s ``True``/``False``.
        """
        return self._signal_task(sig, tree)

    def terminate(self, *, tree: bool = False) -> "asyncio.Task[bool]":
        """:meth:`signal` with SIGTERM, as asyncio's ``Process.terminate()``; a running task, as :meth:`kill`."""
        return self._signal_task("SIGTERM", tree)

    def _signal_task(self, sig: Union[str, int, _signal.Signals], tree: bool) -> "asyncio.Task[bool]":
        task = asyncio.get_running_loop().create_task(self.signal(sig, tree=tree))
        # Not awaited (the asyncio way): its failure is logged, never "never retrieved".
        task.add_done_callback(_log_failure)
        return task

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
        timeout (or cancelling the task) only stops waiting, the ladder goes
        on. A cancel of a process already being cancelled joins it (its
        ``ladder`` is ignored). After the process's exit event, ``RpcError``
        ``-32602`` (unknown proc).
        """
        params: Dict[str, Any] = {"proc": self.proc}
        if ladder is not None:
            params["ladder"] = ladder_param(ladder)
        return cast(CancelResult, await self._call("process.cancel", params, timeout=timeout))

    async def resize(
        self,
        size: Optional[TerminalSize] = None,
        *,
        cols: Optional[int] = None,
        rows: Optional[int] = None,
        timeout: Optional[float] = None,
    ) -> ResizeResult:
        """``process.resize``: set the size of the process's terminal (the
        kernel sends SIGWINCH to its foreground process group). Columns
        first, as node-pty and xterm.js: ``resize({"cols": 120, "rows": 40})``,
        ``resize(cols=120, rows=40)`` or ``resize(os.get_terminal_size())``.
        Returns ``{"ok": True, "rows": r, "cols": c}``.

        Only for a process spawned with ``pty={"rows": r, "cols": c}``; others
        get ``RpcError`` ``-32602`` (as does a size outside 1 to 10000).
        """
        if isinstance(size, os.terminal_size):
            cols, rows = size.columns, size.lines
        elif isinstance(size, Mapping):
            cols, rows = size.get("cols"), size.get("rows")
        elif size is not None:
            raise TypeError(
                "resize() takes {'cols': c, 'rows': r}, cols=, rows=, or an os.terminal_size "
                "(the positional resize(rows, cols) is gone)"
            )
        if cols is None or rows is None:
            raise TypeError("resize() needs both cols and rows")
        params = {"proc": self.proc, "rows": rows, "cols": cols}
        return cast(ResizeResult, await self._call("process.resize", params, timeout=timeout))

    def follow_terminal_size(
        self,
        fd: Optional[int] = None,
        *,
        adjust: Optional[Callable[[PtySize], Optional[PtySize]]] = None,
    ) -> Callable[[], None]:
        """Keep the process's terminal the size of the UI's own: resize it now
        and on every SIGWINCH (``os.get_terminal_size(fd)``, default the
        terminal of stdout). ``adjust({"cols", "rows"})`` may return another
        size (the pane the process is shown in) or ``None`` to skip. Returns a
        function that stops following; following also stops when the process
        ends. Resize errors are ignored (the process may be ending).

        The SIGWINCH handler is the event loop's (``loop.add_signal_handler``,
        so from the main thread): one per loop, shared by every follower and
        removed with the last one. An app that handles SIGWINCH itself
        (curses) should call :meth:`resize` from there instead.
        """
        loop = asyncio.get_running_loop()
        tasks: Set["asyncio.Task[Any]"] = set()
        stopped = False

        def sync() -> None:
            if stopped or not self.running:
                return
            try:
                current = os.get_terminal_size() if fd is None else os.get_terminal_size(fd)
            except OSError:
                return  # not a terminal
            size: Optional[PtySize] = PtySize(cols=current.columns, rows=current.lines)
            if adjust is not None:
                size = adjust(PtySize(cols=current.columns, rows=current.lines))
            if size is None:
                return
            task = loop.create_task(self.resize(cols=size["cols"], rows=size["rows"]))
            tasks.add(task)
            task.add_done_callback(_forget_quietly(tasks))

        def stop() -> None:
            nonlocal stopped
            if stopped:
                return
            stopped = True
            _WinchFanout.remove(loop, sync)
            if stop in self._followers:
                self._followers.remove(stop)

        if not self.running:
            stopped = True
            return stop
        _WinchFanout.add(loop, sync)
        self._followers.append(stop)
        sync()
        return stop


def _log_failure(task: "asyncio.Task[Any]") -> None:
    if not task.cancelled() and task.exception() is not None:
        log.debug("tui-gateway client: a signal task failed", exc_info=task.exception())


def _forget_quietly(tasks: Set["asyncio.Task[Any]"]) -> Callable[["asyncio.Task[Any]"], None]:
    def done(task: "asyncio.Task[Any]") -> None:
        tasks.discard(task)
        if not task.cancelled():
            task.exception()  # retrieved: a resize of an ending process may fail

    return done
