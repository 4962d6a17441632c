"""3. Streaming: 50 MB in order then the exit; base64 round trips; lines(); no lost exits."""

from __future__ import annotations

import asyncio
import hashlib
import os
import sys
import tempfile
import time

import _util
from _util import GatewayTestCase, report
from tui_gateway_client import RpcError

LINE_BYTES = 100
LINES = 524_288  # 100 bytes x 524,288 = 50 MiB
FILL = b"abcdefghijklmnopqrstuvwxyz0123456789" * 3

# The child writes numbered 100-byte lines as fast as the pipe takes them.
GENERATOR = f"""
import sys
out = sys.stdout.buffer
fill = {FILL!r}
buf = []
for i in range({LINES}):
    buf.append(b"%09d " % i + fill[: {LINE_BYTES} - 11] + b"\\n")
    if len(buf) == 1000:
        out.write(b"".join(buf)); buf = []
out.write(b"".join(buf))
"""


def expected_digest() -> "hashlib._Hash":
    h = hashlib.sha256()
    fill = FILL[: LINE_BYTES - 11]
    for i in range(LINES):
        h.update(b"%09d " % i + fill + b"\n")
    return h


class StreamingTest(GatewayTestCase):
    loop_debug = False

    async def test_50_mb_arrive_in_order_then_the_exit(self) -> None:
        gw = await self.start()
        expected = expected_digest().hexdigest()
        t0 = time.monotonic()
        proc = await gw.spawn_process([sys.executable, "-c", GENERATOR])
        h = hashlib.sha256()
        total = 0
        chunks = 0
        largest = 0
        async for data in proc:
            raw = data.encode()
            h.update(raw)
            total += len(raw)
            chunks += 1
            largest = max(largest, len(raw))
            # The exit cannot be seen before the last byte was delivered.
            if total < LINES * LINE_BYTES:
                self.assertTrue(proc.exit_status is None or proc.buffered() > 0)
        status = await proc.wait()
        elapsed = time.monotonic() - t0
        self.assertEqual(total, LINES * LINE_BYTES)
        self.assertEqual(h.hexdigest(), expected, "the bytes arrived altered or out of order")
        self.assertEqual((status.code, status.signal), (0, None))
        stats = await gw.stats()
        report(
            "3 stream 50 MiB",
            bytes=total,
            seconds=round(elapsed, 2),
            mib_per_s=round(total / 2**20 / elapsed, 1),
            chunks=chunks,
            largest_chunk=largest,
            gateway_queue_high_water_kib=stats["outbound_high_water_mark"] // 1024,
            write_stalls=stats["write_stalls"],
            coalesced=stats["deltas_coalesced"],
        )

    async def test_base64_round_trips_random_bytes(self) -> None:
        gw = await self.start()
        payload = os.urandom(300 * 1024)
        with tempfile.NamedTemporaryFile(delete=False) as f:
            f.write(payload)
        try:
            # Bytes from a file, through base64 events, decoded by the handle.
            cat_file = await gw.spawn_process(["cat", f.name], encoding="base64")
            got = await cat_file.read()
            self.assertIsInstance(got, bytes)
            self.assertEqual(len(got), len(payload))
            self.assertEqual(got, payload)
            self.assertEqual((await cat_file.wait()).code, 0)
        finally:
            os.unlink(f.name)
        # Bytes in through process.write (base64 on the wire) and back out.
        cat = await gw.spawn_process(["cat"], encoding="base64")
        reader = asyncio.ensure_future(cat.read())
        written = await cat.write_all(payload)
        await cat.close_stdin()
        echoed = await asyncio.wait_for(reader, _util.DEADLINE_S)
        self.assertEqual(written["queued"], len(payload))
        self.assertEqual(echoed, payload)
        self.assertEqual((await cat.wait()).code, 0)
        report("3 base64", bytes_via_file=len(payload), bytes_via_stdin=len(echoed), identical=True)

    async def test_lines_join_chunks_and_keep_the_last_partial_line(self) -> None:
        gw = await self.start()
        # The child's own pauses split its output across several events.
        script = "printf 'one\\ntw'; sleep 0.2; printf 'o\\n\\nthr'; sleep 0.2; printf 'ee'; printf 'err\\n' >&2"
        proc = await gw.spawn_process(["sh", "-c", script])
        lines = [item.line async for item in proc.lines(stream="stdout")]
        self.assertEqual(lines, ["one", "two", "", "three"])
        self.assertEqual((await proc.wait()).code, 0)
        chunks = await gw.spawn_process(["sh", "-c", "echo out; echo err >&2; exit 3"])
        seen = [(c.stream, c.data) async for c in chunks.chunks()]
        self.assertEqual(sorted(seen), [("stderr", "err\n"), ("stdout", "out\n")])
        self.assertEqual(tuple(await chunks.wait()), (3, None))

    async def test_no_exit_is_lost_when_events_follow_the_response_in_one_read(self) -> None:
        gw = await self.start()
        t0 = time.monotonic()
        for _ in range(50):
            status = await (await gw.spawn_process(["true"])).wait(timeout=_util.DEADLINE_S)
            self.assertEqual(status.code, 0)
        handles = await asyncio.gather(*(gw.spawn_process(["echo", str(i)]) for i in range(50)))
        outputs = await asyncio.wait_for(asyncio.gather(*(h.read() for h in handles)), _util.DEADLINE_S)
        self.assertEqual(outputs, [f"{i}\n" for i in range(50)])
        for h in handles:
            self.assertEqual((await h.wait()).code, 0)
        report("3 no lost exits", spawns=100, exits_seen=100, seconds=round(time.monotonic() - t0, 2))

    async def test_wait_returns_only_after_the_consumer_took_the_last_chunk(self) -> None:
        gw = await self.start()
        proc = await gw.spawn_process(["sh", "-c", "for i in 1 2 3 4 5; do echo $i; done"])
        order = []

        async def consume() -> None:
            async for item in proc.lines():
                order.append(item.line)
                await asyncio.sleep(0.01)  # a slow renderer
            order.append("end")

        consumer = asyncio.ensure_future(consume())
        await _util.poll(lambda: order[:1] == ["1"], "the consumer to be iterating")
        await _util.poll(lambda: proc.exit_status is not None, "the exit event")
        await proc.wait()
        order.append("waited")
        await consumer
        self.assertEqual(order[:5], ["1", "2", "3", "4", "5"])
        self.assertEqual(order.index("waited") > order.index("5"), True)

    async def test_process_methods(self) -> None:
        gw = await self.start()
        proc = await gw.spawn_process(["sh", "-c", "read name; echo \"hi $name\"; exec sleep 1000"], tag={"pane": 1})
        listed = await gw.list_processes()
        self.assertEqual([(p["proc"], p["pid"], p["tag"]) for p in listed], [(proc.proc, proc.pid, {"pane": 1})])
        result = await proc.write("Ada\n")
        self.assertEqual(result["queued"], 4)
        lines = proc.lines()
        self.assertEqual((await asyncio.wait_for(lines.__anext__(), _util.DEADLINE_S)).line, "hi Ada")
        self.assertIs(await proc.signal("SIGINT"), True)
        status = await proc.wait(timeout=_util.DEADLINE_S)
        self.assertEqual(tuple(status), (None, "SIGINT"))
        self.assertEqual(proc.returncode, -2)
        self.assertIs(await proc.signal("SIGINT"), False, "its exit was seen: False, not an error")
        with self.assertRaises(RpcError) as cm:
            await proc.write("late")
        self.assertEqual(cm.exception.code, -32602)
        with self.assertRaises(RpcError) as cm:
            await gw.spawn_process(["/no/such/program"])
        self.assertEqual(cm.exception.code, -32000)
        self.assertEqual(cm.exception.data["code"], "ENOENT")
        with self.assertRaises(RpcError) as cm:
            await proc.resize(cols=80, rows=24)  # no such method, or (with PTYs) an unknown proc
        self.assertEqual(cm.exception.code, -32602 if gw.supports("process.resize") else -32601)
        self.assertEqual(gw.client_stats()["processes"], 0)

    async def test_pty_and_resize_or_their_refusal(self) -> None:
        gw = await self.start()
        if not gw.supports("process.resize"):
            # A gateway without PTY support: the method and the member are refused.
            with self.assertRaises(RpcError) as cm:
                await gw.spawn_process(["true"], pty={"rows": 24, "cols": 80})
            self.assertEqual(cm.exception.code, -32602)
            self.assertIn("pty", cm.exception.message)
            report("3 pty", supported=False, refused_with=cm.exception.code)
            return
        script = "stty size; test -t 1 && echo on-a-tty; read x; stty size; printf '\\033[31mred\\033[0m\\n'"
        proc = await gw.spawn_process(["sh", "-c", script], pty={"rows": 24, "cols": 80})
        lines = proc.lines()
        self.assertEqual((await asyncio.wait_for(lines.__anext__(), _util.DEADLINE_S)).line, "24 80")
        self.assertEqual((await asyncio.wait_for(lines.__anext__(), _util.DEADLINE_S)).line, "on-a-tty")
        listed = await gw.list_processes()
        self.assertEqual(listed[0].get("pty"), {"rows": 24, "cols": 80})
        self.assertEqual(await proc.resize({"cols": 120, "rows": 40}), {"ok": True, "rows": 40, "cols": 120})
        self.assertEqual((await gw.list_processes())[0].get("pty"), {"rows": 40, "cols": 120})
        await proc.write("\n")
        rest = [item.line async for item in lines]
        self.assertIn("40 120", rest)
        self.assertIn("\x1b[31mred\x1b[0m", rest)  # a terminal keeps colours; no stray \r
        self.assertEqual((await proc.wait()).code, 0)
        # tree=True reaches a descendant that left the group.
        tree = await gw.spawn_process(["sh", "-c", "setsid sleep 1000 & echo $!; wait"])
        tree_lines = tree.lines()
        daemon = int((await asyncio.wait_for(tree_lines.__anext__(), _util.DEADLINE_S)).line)
        self.assertTrue(_util.pid_alive(daemon))
        self.assertIs(await tree.signal("SIGTERM", tree=True), True)
        await tree.wait(timeout=_util.DEADLINE_S)
        await _util.poll(lambda: not _util.pid_alive(daemon), "the setsid sleep to be gone")
        report("3 pty", supported=True, first_size="24x80", resized_to="40x120", tree_signal="ok")
