"""Newline framing of the gateway's stdout, bounded, tolerant of any chunking.

The wire format (docs/protocol.md, "Framing") is one JSON value per line,
terminated by ``\\n``. :class:`LineFramer` turns arbitrary byte chunks into
complete lines. It is modelled on tokio-util's ``LinesCodec``: its state is
the unread tail, the index where the newline search resumes (so a partial
line is never rescanned), and whether it is discarding an over-long line.

Rules:

- only ``b"\\n"`` ends a line. U+2028/U+2029 (and ``\\r`` inside a line) are
  ordinary bytes; never use ``str.splitlines`` on this protocol, it splits on
  both;
- one trailing ``\\r`` is stripped and blank lines are skipped (the gateway
  sends neither, but a backend behind a bridge might);
- a line longer than ``max_frame_bytes`` is reported once as
  :class:`Oversize`, then discarded up to its newline; framing resumes after
  it, and memory stays bounded by the limit plus one read;
- a fragment without ``\\n`` at EOF is a truncated frame, reported by
  :meth:`LineFramer.finish` as :class:`Truncated`, never handed out as a line.
"""

from __future__ import annotations

from typing import List, Union

__all__ = ["DEFAULT_MAX_FRAME_BYTES", "LineFramer", "Oversize", "Truncated", "FramerItem"]

#: Longest line the client accepts. Four times the gateway's default
#: ``--max-frame-bytes`` (16 MiB): anything the gateway or a backend behind it
#: may legitimately send fits, while a runaway line cannot take more than this
#: much of the UI's memory.
DEFAULT_MAX_FRAME_BYTES = 64 * 1024 * 1024


class Oversize:
    """A line longer than the limit; its bytes were discarded.

    ``length`` is the number of bytes seen when the line was given up on (the
    whole line when its newline was already in the buffer, otherwise at least
    that many).
    """

    __slots__ = ("length", "limit")

    def __init__(self, length: int, limit: int) -> None:
        self.length = length
        self.limit = limit

    def __repr__(self) -> str:
        return f"Oversize(length={self.length}, limit={self.limit})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Oversize) and (self.length, self.limit) == (other.length, other.limit)

    def __hash__(self) -> int:
        return hash((self.length, self.limit))


class Truncated:
    """Bytes left without a terminating newline when the stream ended."""

    __slots__ = ("data",)

    def __init__(self, data: bytes) -> None:
        self.data = data

    def __repr__(self) -> str:
        return f"Truncated({self.data[:40]!r}{'...' if len(self.data) > 40 else ''}, {len(self.data)} bytes)"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Truncated) and self.data == other.data

    def __hash__(self) -> int:
        return hash(self.data)


FramerItem = Union[bytes, Oversize]

_ASCII_SPACE = b" \t\r\n\x0b\x0c"


class LineFramer:
    """Split a byte stream into lines, bounded by ``max_frame_bytes``."""

    def __init__(self, max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES) -> None:
        if max_frame_bytes < 1:
            raise ValueError("max_frame_bytes must be positive")
        self.max_frame_bytes = max_frame_bytes
        self._buf = bytearray()
        # Where the newline search resumes: everything before it in _buf is
        # known to hold no newline.
        self._next_index = 0
        # True while skipping the rest of an over-long line.
        self._discarding = False
        #: Lines ended so far: every ``\n`` seen, whether its line was
        #: returned, reported as over-long or skipped as blank. A session's
        #: cursor is this count (docs/sessions.md).
        self.lines = 0
        #: For each item the last :meth:`feed` returned, :attr:`lines` once
        #: its line ended (a session client counts what it delivered).
        self.item_lines: List[int] = []

    @property
    def buffered(self) -> int:
        """Bytes held for an incomplete line (for tests and stats)."""
        return len(self._buf)

    def feed(self, data: bytes) -> List[FramerItem]:
        """Add ``data``; return every line it completes, in order.

        Lines are returned without their ``\\n`` (and without one trailing
        ``\\r``); blank lines are skipped; over-long lines become one
        :class:`Oversize` each.
        """
        buf = self._buf
        buf += data
        out: List[FramerItem] = []
        item_lines: List[int] = []
        self.item_lines = item_lines
        start = 0  # start of the current line within buf
        search = self._next_index
        limit = self.max_frame_bytes
        while True:
            nl = buf.find(b"\n", search)
            if nl < 0:
                if self._discarding:
                    # Still inside an over-long line: drop what arrived.
                    start = len(buf)
                elif len(buf) - start > limit:
                    # The line already passed the limit without a newline:
                    # report it now (once) and discard until its newline.
                    out.append(Oversize(len(buf) - start, limit))
                    item_lines.append(self.lines + 1)  # it counts once its newline comes
                    self._discarding = True
                    start = len(buf)
                search = len(buf)
                break
            self.lines += 1
            if self._discarding:
                # The newline ending an over-long line: resume after it.
                self._discarding = False
            else:
                end = nl
                if end > start and buf[end - 1] == 0x0D:
                    end -= 1  # one trailing \r (CRLF senders)
                length = end - start
                if length > limit:
                    # A complete over-long line within one buffer.
                    out.append(Oversize(length, limit))
                    item_lines.append(self.lines)
                elif length > 0 and not (buf[start] in _ASCII_SPACE and not buf[start:end].strip()):
                    out.append(bytes(buf[start:end]))
                    item_lines.append(self.lines)
                # else: a blank line (empty or only ASCII whitespace), skipped.
            start = nl + 1
            search = start
        if start:
            del buf[:start]
        self._next_index = search - start
        return out

    def finish(self) -> List[Truncated]:
        """Signal EOF: report a non-empty unterminated tail as truncated."""
        tail = bytes(self._buf)
        discarding = self._discarding
        self._buf = bytearray()
        self._next_index = 0
        self._discarding = False
        if discarding or not tail.strip():
            return []
        return [Truncated(tail)]
