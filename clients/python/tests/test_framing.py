"""In-memory tests of framing, decoding and dispatch: no gateway binary needed."""

from __future__ import annotations

import asyncio
import json
import random
import unittest
from typing import Any, List, Tuple

import _util  # noqa: F401  (puts src/ on sys.path)
from tui_gateway_client import Connection, LineFramer, Malformed, MessageReader, MessageWriter, Oversize, Parsed, RpcError, Truncated
from tui_gateway_client.transport import encode_message


def frames(framer: LineFramer, chunks: List[bytes]) -> List[Any]:
    out: List[Any] = []
    for chunk in chunks:
        out.extend(framer.feed(chunk))
    out.extend(framer.finish())
    return out


def split_randomly(data: bytes, rng: random.Random, max_piece: int) -> List[bytes]:
    pieces = []
    i = 0
    while i < len(data):
        n = rng.randint(1, max_piece)
        pieces.append(data[i : i + n])
        i += n
    return pieces


# Messages whose strings hold what trips naive line readers: U+2028/U+2029
# (JavaScript and str.splitlines split on them), CR, multi-byte characters.
TRICKY = [
    {"jsonrpc": "2.0", "method": "event", "params": {"type": "x.delta", "payload": {"text": "a\u2028b\u2029c"}}},
    {"jsonrpc": "2.0", "id": 1, "result": {"s": "carriage\rreturn", "emoji": "\U0001F600 é ü 漢字"}},
    {"jsonrpc": "2.0", "id": 2, "result": "x" * 70000},
    {"jsonrpc": "2.0", "id": 3, "result": [1, 2, {"nested": ["\u2028"]}]},
]
STREAM = b"".join(json.dumps(m, ensure_ascii=False).encode() + b"\n" for m in TRICKY)


class LineFramerTest(unittest.TestCase):
    def test_any_chunking_gives_the_same_lines(self) -> None:
        expected = [json.dumps(m, ensure_ascii=False).encode() for m in TRICKY]
        self.assertIn("\u2028".encode(), STREAM)
        self.assertEqual(frames(LineFramer(), [STREAM]), expected)
        self.assertEqual(frames(LineFramer(), [bytes([b]) for b in STREAM]), expected)
        rng = random.Random(10)
        for max_piece in (2, 3, 7, 64, 1000, 65536):
            for _ in range(5):
                self.assertEqual(frames(LineFramer(), split_randomly(STREAM, rng, max_piece)), expected, max_piece)

    def test_u2028_inside_a_string_does_not_split_the_line(self) -> None:
        line = '{"t":"one\u2028two\u2029three"}'.encode()
        # Split right inside the 3-byte encoding of U+2028.
        cut = line.index("\u2028".encode()) + 1
        self.assertEqual(frames(LineFramer(), [line[:cut], line[cut:] + b"\n"]), [line])
        self.assertEqual(json.loads(line)["t"].split("\u2028"), ["one", "two\u2029three"])

    def test_crlf_and_blank_lines(self) -> None:
        got = frames(LineFramer(), [b'{"a":1}\r\n\n  \r\n\t\n{"b":2}\n'])
        self.assertEqual(got, [b'{"a":1}', b'{"b":2}'])

    def test_oversize_line_is_reported_once_and_skipped(self) -> None:
        framer = LineFramer(max_frame_bytes=10)
        data = b'{"ok":1}\n' + b"x" * 25 + b'\n{"ok":2}\n'
        for chunks in ([data], [bytes([b]) for b in data], [data[:12], data[12:30], data[30:]]):
            got = frames(LineFramer(max_frame_bytes=10), chunks)
            self.assertEqual(got[0], b'{"ok":1}')
            self.assertEqual(got[-1], b'{"ok":2}')
            self.assertEqual(len(got), 3)
            self.assertIsInstance(got[1], Oversize)
        # Memory stays bounded while the long line streams in.
        framer.feed(b"y" * 5)
        for _ in range(1000):
            framer.feed(b"y" * 100)
            self.assertLessEqual(framer.buffered, 100 + 10)
        self.assertEqual(framer.feed(b'\n{"z":3}\n'), [b'{"z":3}'])

    def test_exactly_at_the_limit_is_accepted(self) -> None:
        self.assertEqual(frames(LineFramer(max_frame_bytes=5), [b"12345\n123456\n"]), [b"12345", Oversize(6, 5)])

    def test_unterminated_tail_at_eof_is_truncated_not_a_line(self) -> None:
        got = frames(LineFramer(), [b'{"a":1}\n{"b":', b"2}"])
        self.assertEqual(got, [b'{"a":1}', Truncated(b'{"b":2}')])
        self.assertEqual(frames(LineFramer(), [b'{"a":1}\n   ']), [b'{"a":1}'])


class MessageReaderTest(unittest.IsolatedAsyncioTestCase):
    async def test_reads_messages_and_reports_bad_lines(self) -> None:
        stream = asyncio.StreamReader()
        big = {"jsonrpc": "2.0", "id": 9, "result": "z" * (3 * 1024 * 1024)}  # far above readline's 64 KiB
        data = STREAM + b"not json\n" + b"\xff\xfe\n" + encode_message(big) + b'{"jsonrpc":"2.0","id":4,"res'
        for piece in split_randomly(data, random.Random(4), 100000):
            stream.feed_data(piece)
        stream.feed_eof()
        reader = MessageReader(stream)
        items: List[Any] = []
        while True:
            batch = await reader.read()
            if batch is None:
                break
            items.extend(batch)
        parsed = [i.value for i in items if isinstance(i, Parsed)]
        bad = [i for i in items if isinstance(i, Malformed)]
        self.assertEqual(parsed, TRICKY + [big])
        self.assertEqual([b.reason.split(":")[0] for b in bad], ["invalid JSON", "invalid UTF-8 at byte 0", "truncated frame"])
        self.assertEqual(reader.bytes_read, len(data))


class FakeStreamWriter:
    """Enough of asyncio.StreamWriter for MessageWriter, collecting what is written."""

    def __init__(self) -> None:
        self.data = bytearray()
        self.closed = False

    def write(self, data: bytes) -> None:
        self.data += data

    async def drain(self) -> None:
        await asyncio.sleep(0)

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True

    def messages(self) -> List[Any]:
        return [json.loads(line) for line in bytes(self.data).splitlines()]


class ConnectionTest(unittest.IsolatedAsyncioTestCase):
    def make(self, handlers: Any = None) -> Tuple[asyncio.StreamReader, FakeStreamWriter, Connection, List[Any]]:
        stream = asyncio.StreamReader()
        out = FakeStreamWriter()
        seen: List[Any] = []
        conn = Connection(
            MessageReader(stream),
            MessageWriter(out),  # type: ignore[arg-type]
            handlers=handlers or {},
            on_event=lambda t, p: seen.append(("event", t, p)),
            on_malformed=lambda m: seen.append(("malformed", m.reason)),
            on_protocol_error=lambda r, m: seen.append(("protocol_error", r)),
        )
        return stream, out, conn, seen

    async def test_responses_in_any_order_settle_the_right_calls(self) -> None:
        stream, out, conn, seen = self.make()
        run = asyncio.ensure_future(conn.run())
        calls = [asyncio.ensure_future(conn.call("m", {"i": i})) for i in range(5)]
        await _util.poll(lambda: len(out.messages()) == 5, "5 requests written")
        ids = [m["id"] for m in out.messages()]
        self.assertEqual(ids, [1, 2, 3, 4, 5])
        lines = [{"jsonrpc": "2.0", "id": rid, "result": rid * 10} for rid in reversed(ids[1:])]
        lines.append({"jsonrpc": "2.0", "id": ids[0], "error": {"code": -32601, "message": "Method not found: m", "data": [1]}})
        stream.feed_data(b"".join(encode_message(m) for m in lines))
        self.assertEqual(await asyncio.gather(*calls[1:]), [20, 30, 40, 50])
        with self.assertRaises(RpcError) as cm:
            await calls[0]
        self.assertEqual((cm.exception.code, cm.exception.data), (-32601, [1]))
        self.assertEqual(conn.pending_count, 0)
        stream.feed_eof()
        await run

    async def test_hook_runs_before_events_that_follow_in_the_same_read(self) -> None:
        stream, out, conn, seen = self.make()
        run = asyncio.ensure_future(conn.run())
        order: List[str] = []
        call = asyncio.ensure_future(conn.call("process.spawn", {}, hook=lambda r: order.append("hook") or r))
        await _util.poll(lambda: len(out.messages()) == 1, "request written")
        conn._on_event = lambda t, p: order.append(t)  # type: ignore[method-assign]
        stream.feed_data(
            b'{"jsonrpc":"2.0","result":{"proc":1,"pid":2},"id":1}\n'
            b'{"jsonrpc":"2.0","method":"event","params":{"type":"process.output","payload":{"proc":1,"stream":"stdout","data":"x"}}}\n'
            b'{"jsonrpc":"2.0","method":"event","params":{"type":"process.exit","payload":{"proc":1,"code":0,"signal":null}}}\n'
        )
        self.assertEqual(await call, {"proc": 1, "pid": 2})
        self.assertEqual(order, ["hook", "process.output", "process.exit"])
        stream.feed_eof()
        await run

    async def test_cancel_and_timeout_remove_the_pending_entry(self) -> None:
        stream, out, conn, seen = self.make()
        run = asyncio.ensure_future(conn.run())
        call = asyncio.ensure_future(conn.call("slow"))
        await _util.poll(lambda: conn.pending_count == 1, "registered")
        call.cancel()
        with self.assertRaises(asyncio.CancelledError):
            await call
        self.assertEqual(conn.pending_count, 0)
        with self.assertRaises(TimeoutError):
            await conn.call("slow", timeout=0.05)
        self.assertEqual(conn.pending_count, 0)
        # Late answers to both are dropped quietly, not reported as errors.
        stream.feed_data(b'{"jsonrpc":"2.0","id":1,"result":1}\n{"jsonrpc":"2.0","id":2,"result":2}\n')
        stream.feed_data(b'{"jsonrpc":"2.0","id":77,"result":1}\n')
        stream.feed_eof()
        await run
        self.assertEqual(conn.late_responses, 2)
        self.assertEqual(seen, [("protocol_error", "a response to an id this client never sent: 77")])

    async def test_server_requests_events_and_garbage(self) -> None:
        async def slow_add(params: Any) -> Any:
            await asyncio.sleep(0)
            return params["a"] + params["b"]

        def boom(params: Any) -> Any:
            raise ValueError("no good")

        def refuse(params: Any) -> Any:
            raise RpcError(4000, "refused", {"why": "test"})

        stream, out, conn, seen = self.make({"add": slow_add, "boom": boom, "refuse": refuse})
        run = asyncio.ensure_future(conn.run())
        stream.feed_data(
            b'{"jsonrpc":"2.0","id":"gw-1","method":"add","params":{"a":2,"b":3}}\n'
            b'{"jsonrpc":"2.0","id":"gw-2","method":"nope"}\n'
            b'{"jsonrpc":"2.0","id":"gw-3","method":"boom"}\n'
            b'{"jsonrpc":"2.0","id":"gw-4","method":"refuse"}\n'
            b'{"jsonrpc":"2.0","method":"event","params":{"type":"custom.thing","payload":{"t":"\xe2\x80\xa8"}}}\n'
            b'[1,2\n'
            b'{"jsonrpc":"2.0","error":{"code":-32700,"message":"Parse error"},"id":null}\n'
        )
        await _util.poll(lambda: len(out.messages()) == 4, "4 responses")
        by_id = {m["id"]: m for m in out.messages()}
        self.assertEqual(by_id["gw-1"]["result"], 5)
        self.assertEqual(by_id["gw-2"]["error"]["code"], -32601)
        self.assertEqual(by_id["gw-3"]["error"]["code"], -32000)
        self.assertIn("ValueError: no good", by_id["gw-3"]["error"]["message"])
        self.assertEqual(by_id["gw-4"]["error"], {"code": 4000, "message": "refused", "data": {"why": "test"}})
        stream.feed_eof()
        await run
        self.assertEqual(seen[0], ("event", "custom.thing", {"t": "\u2028"}))
        self.assertEqual(seen[1][0], "malformed")
        self.assertEqual(seen[2][0], "protocol_error")


if __name__ == "__main__":
    unittest.main()
