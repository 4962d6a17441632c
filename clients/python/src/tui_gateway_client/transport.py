"""Reading and writing JSON-RPC messages over the gateway's pipes.

Two small types, framing kept apart from dispatch so tests can drive them
with an in-memory ``asyncio.StreamReader``:

- :class:`MessageReader` reads chunks (never ``readline``: asyncio's line
  limit defaults to 64 KiB and frames can be megabytes), frames them with
  :class:`~tui_gateway_client.framing.LineFramer` and decodes each line. A
  line that is not JSON is returned as :class:`Malformed`, never raised.
- :class:`MessageWriter` encodes one message per line and writes it whole,
  then ``await drain()``: while the pipe is full the caller waits, so a UI
  that sends a lot never buffers without bound. A lock keeps frames whole
  and in order.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any, List, NamedTuple, Optional, Union

from .framing import DEFAULT_MAX_FRAME_BYTES, LineFramer, Oversize, Truncated

__all__ = ["READ_SIZE", "Parsed", "Malformed", "Incoming", "decode_line", "encode_message", "MessageReader", "MessageWriter"]

#: Bytes asked for per read of the gateway's stdout: four of its largest
#: events (60 KiB each), so a busy stream takes few loop iterations, small
#: enough that one read never holds the loop for long.
READ_SIZE = 256 * 1024

#: Characters of an unparsable line kept in its report: enough to recognise
#: it, small enough to show in a status line.
PREVIEW_CHARS = 200


class Parsed(NamedTuple):
    """A decoded JSON value from one line."""

    value: Any


class Malformed(NamedTuple):
    """A line that could not be used; ``reason`` says why."""

    reason: str
    length: int
    preview: str


Incoming = Union[Parsed, Malformed]


def _preview(data: bytes) -> str:
    return data[: PREVIEW_CHARS * 4].decode("utf-8", errors="replace")[:PREVIEW_CHARS]


def decode_line(line: bytes) -> Incoming:
    """Decode one framed line (without its newline) as UTF-8 JSON."""
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError as exc:
        return Malformed(f"invalid UTF-8 at byte {exc.start}", len(line), _preview(line))
    try:
        return Parsed(json.loads(text))
    except RecursionError:
        return Malformed("invalid JSON: nested too deeply", len(line), _preview(line))
    except ValueError as exc:
        return Malformed(f"invalid JSON: {exc}", len(line), _preview(line))


# One encoder for all frames: ``json.dumps`` with options builds a new
# encoder per call, which dominated the cost of a request.
_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def encode_message(message: Any) -> bytes:
    """Compact JSON plus ``\\n``; raises ``ValueError``/``TypeError`` for values JSON cannot carry."""
    return _ENCODER.encode(message).encode("utf-8") + b"\n"


class MessageReader:
    """Messages from a byte stream: one list per read, ``None`` at the end."""

    def __init__(self, stream: asyncio.StreamReader, *, max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES, read_size: int = READ_SIZE) -> None:
        self._stream = stream
        self._framer = LineFramer(max_frame_bytes)
        self._read_size = read_size
        self._eof = False
        self.bytes_read = 0
        #: For each item the last :meth:`read` returned, the lines read once it ended.
        self.last_lines: List[int] = []
        #: Lines whose messages were dispatched (kept by the connection); a
        #: session client's cursor counts these, not what was only read.
        self.delivered = 0

    @property
    def lines(self) -> int:
        """Lines read so far (every ``\\n``, see :attr:`LineFramer.lines`)."""
        return self._framer.lines

    async def read(self) -> Optional[List[Incoming]]:
        """Wait for the next chunk and return the messages it completes (possibly none).

        At EOF an unterminated tail is returned once as a ``Malformed``
        truncated frame; after that, ``None``.
        """
        if self._eof:
            return None
        chunk = await self._stream.read(self._read_size)
        if not chunk:
            self._eof = True
            tail = self._framer.finish()
            self.last_lines = [self._framer.lines] * len(tail)
            return [_report(item) for item in tail]
        self.bytes_read += len(chunk)
        out: List[Incoming] = []
        for item in self._framer.feed(chunk):
            if isinstance(item, bytes):
                out.append(decode_line(item))
            else:
                out.append(_report(item))
        self.last_lines = self._framer.item_lines
        return out


def _report(item: Union[Oversize, Truncated]) -> Malformed:
    if isinstance(item, Oversize):
        return Malformed(f"frame too large: {item.length} bytes or more, limit {item.limit}; discarded", item.length, "")
    return Malformed("truncated frame: no newline before the end of the stream", len(item.data), _preview(item.data))


class MessageWriter:
    """Writes messages as lines, honouring the pipe's backpressure.

    One flush task does all the writing, so frames go out whole and in the
    order they were sent: it takes every frame queued so far, writes them
    with one ``write`` and ``await drain()``, and repeats while more
    arrived meanwhile. ``send`` returns once the pipe took the caller's
    frame, so a caller never runs ahead of a full pipe: memory stays
    bounded by the frames of callers that are still waiting.

    Coalescing is not only an optimisation: 10,000 requests started at once
    would otherwise make 10,000 ``write`` calls in one turn of the event
    loop, keeping the reader from the gateway's stdout for that long; the
    gateway gives up on a reader that stalls its stdout for 10 s.
    """

    def __init__(self, stream: asyncio.StreamWriter) -> None:
        self._stream = stream
        self._queue: List[bytes] = []
        self._batch: Optional["asyncio.Future[None]"] = None
        self._task: Optional["asyncio.Task[None]"] = None
        self._error: Optional[BaseException] = None
        self.bytes_written = 0
        self.writes = 0

    async def send(self, message: Any) -> None:
        """Encode and write one message; returns once the pipe took it (``drain``)."""
        await self.send_bytes(encode_message(message))

    async def send_bytes(self, frame: bytes) -> None:
        """Write one already-encoded frame (ending in ``\\n``).

        Cancelling the caller does not unsend a queued frame: it goes out
        with its batch, whole.
        """
        if self._error is not None or self._stream.is_closing():
            raise ConnectionResetError("the gateway's stdin is closed")
        loop = asyncio.get_running_loop()
        self._queue.append(frame)
        batch = self._batch
        if batch is None:
            batch = self._batch = loop.create_future()
            batch.add_done_callback(_retrieve)
        if self._task is None:
            self._task = loop.create_task(self._flush())
        await asyncio.shield(batch)

    async def _flush(self) -> None:
        try:
            while self._queue:
                frames, self._queue = self._queue, []
                batch, self._batch = self._batch, None
                assert batch is not None
                data = b"".join(frames)
                try:
                    if self._stream.is_closing():
                        raise ConnectionResetError("the gateway's stdin is closed")
                    self._stream.write(data)
                    self.bytes_written += len(data)
                    self.writes += 1
                    await self._stream.drain()
                except (ConnectionError, OSError) as exc:
                    self._fail(batch, exc)
                    return
                except asyncio.CancelledError:
                    self._fail(batch, ConnectionResetError("the writer was cancelled (event loop shutting down)"))
                    raise
                batch.set_result(None)
        finally:
            self._task = None

    def _fail(self, batch: "asyncio.Future[None]", exc: BaseException) -> None:
        self._error = exc
        for future in (batch, self._batch):
            if future is not None and not future.done():
                future.set_exception(ConnectionResetError(f"writing to the gateway failed: {exc}"))
        self._queue = []
        self._batch = None

    def is_closing(self) -> bool:
        return self._error is not None or self._stream.is_closing()

    def close(self) -> None:
        """Close the pipe once what is queued was handed over (the gateway then sees stdin EOF)."""
        if self._stream.is_closing():
            return
        if self._task is None:
            self._stream.close()
            return
        task = self._task
        task.add_done_callback(lambda _: self._stream.close())


def _retrieve(future: "asyncio.Future[None]") -> None:
    # Senders may all have been cancelled: mark a failure as seen so asyncio
    # does not log "exception was never retrieved".
    if not future.cancelled():
        future.exception()
