"""Command envelopes (docs/process.md): timeout_ms, output_limit, limits, cancel ladders,
ProcessHandle.cancel(), the exit's cause / duration_ms / output_bytes / discarded, and
the output markers (truncated, skipped). First a handle fed from memory, then the
real gateway."""

from __future__ import annotations

import asyncio
import signal
import time
import unittest
from typing import Any, Dict, List, Optional, Tuple

import _util
from _util import GatewayTestCase, report
from tui_gateway_client import ExitStatus, ProcessExit, ProcessHandle
from tui_gateway_client.process import decode_base64, decode_text, ladder_param

SEQ_20000 = "".join(f"{i}\n" for i in range(1, 20001))  # what `seq 1 20000` prints


class FakeCall:
    """Stands in for the connection: records calls, answers with ``result``."""

    def __init__(self, result: Any = None) -> None:
        self.calls: List[Tuple[str, Any, Optional[float]]] = []
        self.result = result

    async def __call__(self, method: str, params: Any = None, timeout: Optional[float] = None) -> Any:
        self.calls.append((method, params, timeout))
        return self.result


def text_handle(call: Any) -> "ProcessHandle[str]":
    return ProcessHandle(call, proc=1, pid=4242, argv=["x"], encoding="utf8", generation=1, decode=decode_text, newline="\n", carriage_return="\r")


def out(stream: str, data: str, **extra: Any) -> Dict[str, Any]:
    return {"proc": 1, "stream": stream, "data": data, **extra}


class InMemoryTest(unittest.IsolatedAsyncioTestCase):
    def test_ladder_param(self) -> None:
        self.assertEqual(
            ladder_param([("SIGINT", 100), [signal.SIGTERM, 200], (9,)]),
            [["SIGINT", 100], ["SIGTERM", 200], [9]],
        )
        with self.assertRaises(TypeError):
            ladder_param("SIGKILL")
        with self.assertRaises(TypeError):
            ladder_param([("SIGTERM", 100), ("SIGKILL")])  # a missing comma: a str, not a step

    async def test_cancel_sends_the_ladder_and_no_timeout(self) -> None:
        answer = {"proc": 1, "step": 2, "signal": "SIGKILL", "code": None, "exit_signal": "SIGKILL"}
        call = FakeCall(answer)
        h = text_handle(call)
        self.assertEqual(await h.cancel([("SIGINT", 100), ("SIGTERM", 100), ("SIGKILL",)]), answer)
        self.assertEqual(await h.cancel(), answer)
        self.assertEqual(await h.cancel(timeout=2.5), answer)
        self.assertEqual(
            call.calls,
            [
                ("process.cancel", {"proc": 1, "ladder": [["SIGINT", 100], ["SIGTERM", 100], ["SIGKILL"]]}, None),
                ("process.cancel", {"proc": 1}, None),
                ("process.cancel", {"proc": 1}, 2.5),
            ],
        )

    async def test_markers_exit_members_and_lines(self) -> None:
        h = text_handle(FakeCall())
        h._on_output(out("stdout", "one\ntw"))
        h._on_output(out("stderr", "abcdefgh"))
        h._on_output(out("stderr", "", truncated=True))
        h._on_output(out("stdout", "ee\nsix\n", skipped=11))
        h._on_exit({
            "proc": 1, "code": 0, "signal": None, "cause": "exit", "duration_ms": 5,
            "output_bytes": {"stdout": 24, "stderr": 20}, "discarded": {"stdout": 11, "stderr": 12},
            "usage": {"max_rss_bytes": 1024, "user_ms": 1, "system_ms": 2},
        })
        lines = [item async for item in h.lines()]
        # No empty line for the marker; "tw" is not joined with "ee" across the gap.
        self.assertEqual([item.line for item in lines], ["one", "tw", "ee", "six", "abcdefgh"])
        self.assertEqual([item.stream for item in lines], ["stdout", "stdout", "stdout", "stdout", "stderr"])
        self.assertEqual([item.skipped for item in lines], [None, None, 11, None, None], "the line after the gap has skipped")
        status = await h.wait()
        self.assertIsInstance(status, ProcessExit)
        self.assertIsInstance(status, ExitStatus)
        self.assertEqual(status, (0, None))
        self.assertEqual(tuple(status), (0, None))
        self.assertEqual(status.cause, "exit")
        self.assertEqual(status.duration_ms, 5)
        self.assertEqual(status.output_bytes, {"stdout": 24, "stderr": 20})
        self.assertEqual(status.discarded, {"stdout": 11, "stderr": 12})
        self.assertEqual(status.usage, {"max_rss_bytes": 1024, "user_ms": 1, "system_ms": 2})
        self.assertIsNone(status.limit)

    async def test_chunks_carry_the_markers_and_data_skips_them(self) -> None:
        h = text_handle(FakeCall())
        h._on_output(out("stdout", "ab"))
        h._on_output(out("stdout", "", truncated=True))
        h._on_output(out("stdout", ""))  # an empty chunk without a marker is still dropped
        h._on_exit({"proc": 1, "code": 0, "signal": None})
        chunks = [(c.stream, c.data, c.truncated, c.skipped) async for c in h.chunks()]
        self.assertEqual(chunks, [("stdout", "ab", False, None), ("stdout", "", True, None)])

        g = text_handle(FakeCall())
        g._on_output(out("stdout", "ab"))
        g._on_output(out("stdout", "", truncated=True))
        g._on_exit({"proc": 1, "code": 0, "signal": None})
        self.assertEqual([d async for d in g], ["ab"])
        status = await g.wait()
        self.assertEqual(status, (0, None))
        self.assertIsNone(status.cause, "an older gateway's exit: only code and signal")

        b: ProcessHandle[bytes] = ProcessHandle(
            FakeCall(), proc=1, pid=1, argv=["x"], encoding="base64", generation=1, decode=decode_base64, newline=b"\n", carriage_return=b"\r"
        )
        b._on_output(out("stdout", "YWI="))
        b._on_output(out("stdout", "", truncated=True))
        b._on_exit({"proc": 1, "code": 0, "signal": None})
        self.assertEqual(await b.read(), b"ab")


class EnvelopesTest(GatewayTestCase):
    async def test_plain_command_cause_exit_and_output_bytes(self) -> None:
        gw = await self.start()
        proc = await gw.spawn_process(["sh", "-c", "printf hello; printf oops >&2"])
        chunks = sorted([f"{c.stream}:{c.data}" async for c in proc.chunks()])
        self.assertEqual(chunks, ["stderr:oops", "stdout:hello"])
        status = await proc.wait()
        self.assertEqual(status, (0, None))
        self.assertEqual(status.cause, "exit")
        self.assertIsInstance(status.duration_ms, int)
        self.assertGreaterEqual(status.duration_ms or 0, 0)
        self.assertEqual(status.output_bytes, {"stdout": 5, "stderr": 4})
        self.assertIsNone(status.discarded, "no output_limit, no discarded")
        self.assertIsNone(status.usage, "no limits, no usage")

    async def test_timeout_ms_300_on_sleep_100_is_cause_timeout(self) -> None:
        gw = await self.start()
        t0 = time.monotonic()
        proc = await gw.spawn_process(["sleep", "100"], timeout_ms=300)
        status = await asyncio.wait_for(proc.wait(), _util.DEADLINE_S)
        seen = time.monotonic() - t0
        self.assertEqual(status.cause, "timeout")
        self.assertEqual(status.code, None)
        self.assertEqual(status.signal, "SIGINT", "the default ladder's first step ends a sleep")
        self.assertGreaterEqual(status.duration_ms or 0, 300)
        self.assertFalse(_util.pid_alive(proc.pid))
        report("envelopes timeout", exit=repr(status), seen_after_s=round(seen, 3))

    async def test_cancel_with_a_short_ladder_ends_with_sigkill(self) -> None:
        gw = await self.start()
        proc = await gw.spawn_process(["bash", "-c", 'trap "" INT TERM; sleep 999 & echo $!; wait'])
        lines = proc.lines()
        sleeper = int((await lines.__anext__()).line)  # the trap is set and its child runs
        self.assertTrue(_util.pid_alive(sleeper))
        t0 = time.monotonic()
        result = await asyncio.wait_for(proc.cancel([("SIGINT", 100), ("SIGTERM", 100), ("SIGKILL",)]), _util.DEADLINE_S)
        took = time.monotonic() - t0
        self.assertEqual(result, {"proc": proc.proc, "step": 2, "signal": "SIGKILL", "code": None, "exit_signal": "SIGKILL"})
        self.assertGreaterEqual(took, 0.2, "the ladder's waits were kept")
        self.assertFalse(_util.pid_alive(proc.pid) or _util.pid_alive(sleeper), "nothing of the tree is left when cancel() returns")
        self.assertEqual([item async for item in lines], [])
        status = await proc.wait()
        self.assertEqual(status.cause, "cancel")
        self.assertEqual(status.signal, "SIGKILL")
        report("envelopes cancel", result=result, took_s=round(took, 3))

    async def test_output_limit_truncate_reports_discarded(self) -> None:
        gw = await self.start()
        limit = 1000
        proc = await gw.spawn_process(["seq", "1", "20000"], output_limit={"bytes": limit, "policy": "truncate"})
        chunks = [c async for c in proc.chunks()]
        self.assertEqual("".join(c.data for c in chunks), SEQ_20000[:limit])
        markers = [c for c in chunks if c.truncated]
        self.assertEqual(len(markers), 1)
        self.assertEqual(markers[0].data, "")
        self.assertIs(chunks[-1], markers[0], "nothing after the marker")
        status = await proc.wait()
        self.assertEqual(status, (0, None))
        self.assertEqual(status.cause, "exit")
        self.assertEqual(status.output_bytes, {"stdout": len(SEQ_20000), "stderr": 0})
        self.assertEqual((status.discarded or {}).get("stdout"), len(SEQ_20000) - limit)

        again = await gw.spawn_process(["seq", "1", "20000"], output_limit={"bytes": limit, "policy": "truncate"})
        lines = [item.line async for item in again.lines()]
        self.assertEqual(lines, SEQ_20000[:limit].rstrip("\n").split("\n"), "no spurious empty line for the marker")
        await again.wait()

    async def test_output_limit_tail_skips_the_middle(self) -> None:
        gw = await self.start()
        limit = 1000
        proc = await gw.spawn_process(["seq", "1", "20000"], output_limit={"bytes": limit, "policy": "tail"})
        chunks = [c async for c in proc.chunks()]
        gap = next(i for i, c in enumerate(chunks) if c.skipped is not None)
        head = "".join(c.data for c in chunks[:gap])
        tail = "".join(c.data for c in chunks[gap:])
        self.assertEqual(head, SEQ_20000[: limit // 2])
        self.assertEqual(tail, SEQ_20000[-(limit - limit // 2):])
        skipped = chunks[gap].skipped or 0
        self.assertEqual(len(head) + skipped + len(tail), len(SEQ_20000))
        status = await proc.wait()
        self.assertEqual((status.discarded or {}).get("stdout"), skipped)

    async def test_envelope_params_reach_the_gateway(self) -> None:
        # process.list echoes what the spawn asked for: the wire names are right.
        gw = await self.start()
        proc = await gw.spawn_process(
            ["sleep", "100"],
            timeout_ms=60_000,
            output_limit={"bytes": 4096, "policy": "kill"},
            limits={"open_files": 64, "cpu_seconds": 100},
            cancel=[("SIGTERM", 100), (signal.SIGKILL,)],
        )
        [entry] = [p for p in await gw.list_processes() if p["proc"] == proc.proc]
        self.assertEqual(entry.get("timeout_ms"), 60_000)
        self.assertEqual(entry.get("output_limit"), {"bytes": 4096, "policy": "kill"})
        self.assertEqual(entry.get("limits"), {"open_files": 64, "cpu_seconds": 100})
        self.assertIsInstance(entry["elapsed_ms"], int)
        result = await asyncio.wait_for(proc.cancel(), _util.DEADLINE_S)  # the spawn's ladder: SIGTERM ends sleep
        self.assertEqual((result["step"], result["signal"], result["exit_signal"]), (0, "SIGTERM", "SIGTERM"))
        status = await proc.wait()
        self.assertEqual(status.cause, "cancel")
        self.assertIsNotNone(status.usage, "with limits, the exit has usage")

