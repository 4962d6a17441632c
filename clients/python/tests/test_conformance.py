"""The conformance scenarios, shared by name with the Node suite.

Each test is marked with the ``conformance`` decorator (``_util.py``) and
shows as ``conformance: <name>`` with ``-v``; the Node suite
(clients/node/test/conformance.test.js) has a scenario of the same name for
every one of them, and clients/conformance.py fails if a name is missing on
either side. The naming table they check is clients/README.md. Against the
real binary.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import signal
import struct
import sys
import termios
from typing import Any, List, Optional

import _util
from _util import GatewayTestCase, conformance
from tui_gateway_client import (
    BatchEntry,
    Gateway,
    GatewayClosed,
    GatewayError,
    GatewayExited,
    GatewayNotFound,
    GatewayStartError,
    OutputLine,
    OutputText,
    ProcessExit,
    RequestTimeoutError,
    RpcError,
)

S2C = os.path.join(_util.FIXTURES, "s2c_backend.py")


async def pty_size(gw: Any, proc: int) -> Optional[Any]:
    """The size ``process.list`` reports for a process on a terminal."""
    for entry in await gw.list_processes():
        if entry["proc"] == proc:
            return entry.get("pty")
    return None


def set_winsize(fd: int, rows: int, cols: int) -> None:
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))


class ConformanceTest(GatewayTestCase):
    # ---- the gateway -------------------------------------------------------

    @conformance("ping returns ok true")
    async def test_ping(self) -> None:
        gw = await self.start()
        self.assertEqual(await gw.ping(), {"ok": True})

    @conformance("an error answer is an RpcError and a GatewayError")
    async def test_rpc_error(self) -> None:
        gw = await self.start()
        with self.assertRaises(RpcError) as cm:
            await gw.request("no.such.method", {"x": 1})
        err = cm.exception
        self.assertIsInstance(err, GatewayError)
        self.assertEqual(err.code, -32601)
        self.assertEqual(err.method, "no.such.method")
        self.assertIn("no.such.method", err.message)

    @conformance("a request timeout is a RequestTimeoutError and a GatewayError")
    async def test_request_timeout(self) -> None:
        gw = await self.start()
        os.kill(gw.pid, signal.SIGSTOP)  # it answers nothing for now
        try:
            with self.assertRaises(RequestTimeoutError) as cm:
                await gw.request("gateway.ping", timeout=0.1)
        finally:
            os.kill(gw.pid, signal.SIGCONT)
        self.assertIsInstance(cm.exception, GatewayError)
        self.assertIsInstance(cm.exception, TimeoutError)
        self.assertEqual(cm.exception.method, "gateway.ping")
        self.assertEqual(gw.client_stats()["pending"], 0, "the call is forgotten")
        self.assertEqual(await gw.ping(), {"ok": True}, "the late answer was dropped, the next call matched")

    @conformance("cancelling a call stops only the local wait")
    async def test_cancel_a_call(self) -> None:
        gw = await self.start()
        os.kill(gw.pid, signal.SIGSTOP)
        try:
            call = asyncio.ensure_future(gw.request("gateway.ping"))
            await _util.poll(lambda: gw.client_stats()["pending"] == 1, "the call to be pending")
            call.cancel()
            with self.assertRaises(asyncio.CancelledError):
                await call
            self.assertEqual(gw.client_stats()["pending"], 0)
        finally:
            os.kill(gw.pid, signal.SIGCONT)
        # The request was sent and ran: its answer comes, to nobody.
        await _util.poll(lambda: gw.client_stats()["late_responses"] == 1, "the late answer")

    @conformance("notify returns true once written")
    async def test_notify(self) -> None:
        gw = await self.start()
        self.assertIs(await gw.notify("gateway.ping"), True)
        self.assertIs(await gw.notify("no.such.method"), True, "a notification gets no answer, not even an error")
        self.assertEqual(await gw.ping(), {"ok": True})

    @conformance("batch returns one entry per call")
    async def test_batch(self) -> None:
        gw = await self.start()
        ok, failed, note = await gw.batch(
            [("gateway.ping", None), ("no.such.method", None), {"method": "gateway.ping", "notify": True}]
        )
        self.assertEqual(ok, BatchEntry(True, {"ok": True}))
        assert failed is not None
        self.assertFalse(failed.ok)
        self.assertIsInstance(failed.error, RpcError)
        assert failed.error is not None
        self.assertEqual(failed.error.code, -32601)
        self.assertIsNone(note)

    @conformance("on returns a function that unsubscribes")
    async def test_on_unsubscribe(self) -> None:
        gw = await self.start()
        seen: List[int] = []
        off = gw.on("process.exit", lambda p: seen.append(p["proc"]))
        self.assertTrue(callable(off))
        first = await gw.spawn_process(["true"])
        await first.wait()
        off()
        off()  # again: nothing
        second = await gw.spawn_process(["true"])
        await second.wait()
        self.assertEqual(seen, [first.proc], "nothing after unsubscribing")
        once: List[int] = []
        off_once = gw.once("process.exit", lambda p: once.append(p["proc"]))
        self.assertTrue(callable(off_once))
        third = await gw.spawn_process(["true"])
        await third.wait()
        fourth = await gw.spawn_process(["true"])
        await fourth.wait()
        self.assertEqual(once, [third.proc])

    @conformance("on request returns a function that removes the handler")
    async def test_on_request_remove(self) -> None:
        gw = await self.start(command=sys.executable, args=[S2C])
        kept = gw.on_request("ui.kept", lambda params: {"answered": True})
        removed = gw.on_request("ui.removed", lambda params: {"answered": True})
        self.assertTrue(callable(kept))
        removed()
        result = await gw.request("fixture.call", {"requests": [{"method": "ui.kept"}, {"method": "ui.removed"}]}, timeout=_util.DEADLINE_S)
        responses = result["responses"]
        self.assertEqual(responses[0]["result"], {"answered": True})
        self.assertEqual(responses[1]["error"]["code"], -32601, "no handler any more: Method not found")

    # ---- processes: output -------------------------------------------------

    @conformance("spawn returns a handle with proc and pid")
    async def test_spawn(self) -> None:
        gw = await self.start()
        h = await gw.spawn_process(["sh", "-c", "exit 0"], stdin="null")
        self.assertIsInstance(h.proc, int)
        self.assertGreaterEqual(h.proc, 1)
        self.assertGreater(h.pid, 1)
        self.assertEqual(h.argv, ["sh", "-c", "exit 0"])
        self.assertEqual(h.encoding, "utf8")
        self.assertEqual((await h.wait()).code, 0)
        self.assertFalse(h.running)

    @conformance("chunks carry stream and data")
    async def test_chunks(self) -> None:
        gw = await self.start()
        h = await gw.spawn_process(["sh", "-c", "echo out; echo err >&2"])
        chunks = sorted([(c.stream, c.data) async for c in h.chunks()])
        self.assertEqual(chunks, [("stderr", "err\n"), ("stdout", "out\n")])

    @conformance("lines yield stream and line")
    async def test_lines(self) -> None:
        gw = await self.start()
        h = await gw.spawn_process(["sh", "-c", "printf 'a\\nb\\r\\nc'; echo e >&2"])
        lines = [item async for item in h.lines()]
        self.assertEqual(
            [item for item in lines if item.stream == "stdout"],
            [OutputLine("stdout", "a"), OutputLine("stdout", "b"), OutputLine("stdout", "c")],
        )
        self.assertEqual([item for item in lines if item.stream == "stderr"], [OutputLine("stderr", "e")])
        only = await gw.spawn_process(["sh", "-c", "echo out; echo err >&2"])
        self.assertEqual([item async for item in only.lines(stream="stderr")], [OutputLine("stderr", "err")])

    @conformance("lines with rewrites yield each carriage-return version")
    async def test_lines_rewrites(self) -> None:
        gw = await self.start()
        script = "printf 'start\\n\\r10%%\\r50%%\\r100%%\\ndone\\n'"
        h = await gw.spawn_process(["sh", "-c", script])
        self.assertEqual(
            [item async for item in h.lines(rewrites=True)],
            [
                OutputLine("stdout", "start"),
                OutputLine("stdout", "10%"),
                OutputLine("stdout", "50%", rewrite=True),
                OutputLine("stdout", "100%", rewrite=True),
                OutputLine("stdout", "done"),
            ],
        )
        plain = await gw.spawn_process(["sh", "-c", script])
        self.assertEqual(
            [item.line async for item in plain.lines()],
            ["start", "\r10%\r50%\r100%", "done"],
            "without the option a \\r stays in the line",
        )

    @conformance("text yields partial lines as they come")
    async def test_text(self) -> None:
        gw = await self.start()
        h = await gw.spawn_process(["sh", "-c", "printf 'Password: '; read pw; echo \"got $pw\""])
        seen: List[str] = []
        async for item in h.text():
            self.assertIsInstance(item, OutputText)
            self.assertEqual(item.stream, "stdout")
            seen.append(item.text)
            # The prompt has no newline: it comes as it is, and only then we answer.
            if "".join(seen) == "Password: ":
                await h.write("x\n")
        self.assertEqual("".join(seen), "Password: got x\n")
        self.assertEqual(seen[0], "Password: ")

    @conformance("read returns all the output")
    async def test_read(self) -> None:
        gw = await self.start()
        both = await gw.spawn_process(["sh", "-c", "echo out; echo err >&2"])
        self.assertEqual(sorted((await both.read()).split("\n")), ["", "err", "out"])
        one = await gw.spawn_process(["sh", "-c", "echo out; echo err >&2"])
        self.assertEqual(await one.read(stream="stdout"), "out\n")
        raw = await gw.spawn_process(["printf", "\\000\\001\\377"], encoding="base64")
        self.assertEqual(await raw.read(), b"\x00\x01\xff")

    @conformance("wait returns the exit after the last output")
    async def test_wait(self) -> None:
        gw = await self.start()
        h = await gw.spawn_process(["sh", "-c", "echo hi; exit 3"])
        seen: List[str] = []
        seen_when_exited: List[str] = []

        async def waiter() -> None:
            await h.wait()
            seen_when_exited.append("".join(seen))

        watching = asyncio.ensure_future(waiter())
        async for chunk in h.chunks():
            seen.append(chunk.data)
        exit = await h.wait()
        await watching
        self.assertEqual("".join(seen), "hi\n")
        self.assertEqual(seen_when_exited, ["hi\n"], "returned only after the last chunk was read")
        self.assertIsInstance(exit, ProcessExit)
        self.assertEqual(exit.code, 3)
        self.assertIsNone(exit.signal)
        self.assertEqual(exit.cause, "exit")
        self.assertIsInstance(exit.duration_ms, int)
        self.assertEqual((exit.output_bytes or {}).get("stdout"), 3)
        self.assertEqual(h.exit_status, exit)
        self.assertEqual(h.returncode, 3)

    @conformance("a pty process gets a terminal")
    async def test_pty(self) -> None:
        gw = await self.start()
        h = await gw.spawn_process(["sh", "-c", "test -t 0 && test -t 1 && echo tty; stty size"], pty={"rows": 24, "cols": 80})
        self.assertEqual([item async for item in h.lines()], [OutputLine("pty", "tty"), OutputLine("pty", "24 80")])
        self.assertEqual((await h.wait()).code, 0)

    # ---- processes: input --------------------------------------------------

    @conformance("write is accepted whole or refused whole")
    async def test_write(self) -> None:
        gw = await self.start()
        h = await gw.spawn_process(["sleep", "100"])  # never reads its stdin
        try:
            piece = b"a" * (600 * 1024)
            first = await h.write(piece)
            self.assertEqual(first["queued"], len(piece), "accepted whole")
            with self.assertRaises(RpcError) as cm:
                await h.write(piece)
            self.assertIsInstance(cm.exception, GatewayError)
            self.assertEqual(cm.exception.code, -32001, "refused whole: the queue would pass --child-stdin-limit")
            self.assertIsInstance(cm.exception.data["limit"], int)
            small = await h.write("x")
            self.assertEqual(small["queued"], 1, "nothing of the refused write was queued, so 1 byte still fits")
        finally:
            await h.kill()

    @conformance("write all waits for room")
    async def test_write_all(self) -> None:
        gw = await self.start()
        # The shell stops itself before reading: 3 MiB cannot fit in its pipe
        # and the gateway's 1 MiB stdin queue until it is continued.
        h = await gw.spawn_process(["sh", "-c", "kill -STOP $$; exec wc -c"])
        await _util.poll(lambda: _util.proc_state(h.pid) == "T", "the shell to stop itself")
        size = 3 * 1024 * 1024
        writing = asyncio.ensure_future(h.write_all(b"b" * size))
        await gw.ping()
        self.assertFalse(writing.done(), "3 MiB cannot have been accepted while the child is stopped")
        self.assertIs(await h.signal("SIGCONT"), True)
        result = await asyncio.wait_for(writing, _util.DEADLINE_S)
        self.assertEqual(result["queued"], size)
        await h.close_stdin()
        self.assertEqual((await h.read()).strip(), str(size))

    @conformance("close stdin ends the input")
    async def test_close_stdin(self) -> None:
        gw = await self.start()
        h = await gw.spawn_process(["cat"])
        self.assertEqual(await h.write("abc"), {"queued": 3, "pending": 0})
        closed = await h.close_stdin()
        self.assertIs(closed["ok"], True)
        self.assertIsInstance(closed["pending"], int)
        self.assertEqual(await h.read(), "abc")
        self.assertEqual((await h.wait()).code, 0)

    # ---- processes: signals, size, cancel ----------------------------------

    @conformance("signal returns true while the process runs")
    async def test_signal(self) -> None:
        gw = await self.start()
        h = await gw.spawn_process(["sleep", "100"], stdin="null")
        self.assertIs(await h.signal("SIGTERM"), True)
        exit = await h.wait()
        self.assertEqual(exit.signal, "SIGTERM")
        self.assertIsNone(exit.code)
        self.assertEqual(h.returncode, -signal.SIGTERM)

    @conformance("signalling an exited process returns false")
    async def test_signal_exited(self) -> None:
        gw = await self.start()
        h = await gw.spawn_process(["true"])
        await h.wait()
        self.assertIs(await h.signal("SIGINT"), False)
        self.assertIs(await h.kill(), False)
        self.assertIs(await h.terminate(), False)
        # The gateway's own answer for it is -32602 "unknown proc":
        with self.assertRaises(RpcError) as cm:
            await gw.request("process.signal", {"proc": h.proc, "signal": "SIGINT"})
        self.assertEqual(cm.exception.code, -32602)
        self.assertIn("unknown proc", cm.exception.message)

    @conformance("kill sends SIGKILL and terminate SIGTERM")
    async def test_kill_terminate(self) -> None:
        gw = await self.start()
        a = await gw.spawn_process(["sleep", "100"], stdin="null")
        self.assertIs(await a.kill(), True)
        self.assertEqual((await a.wait()).signal, "SIGKILL")
        b = await gw.spawn_process(["sleep", "100"], stdin="null")
        self.assertIs(await b.terminate(), True)
        self.assertEqual((await b.wait()).signal, "SIGTERM")
        c = await gw.spawn_process(["sleep", "100"], stdin="null")
        self.assertIs(await c.kill("SIGINT"), True, "kill takes a signal too")
        self.assertEqual((await c.wait()).signal, "SIGINT")
        # As on asyncio's Process, kill() acts without an await.
        d = await gw.spawn_process(["sleep", "100"], stdin="null")
        d.kill()
        self.assertEqual((await d.wait()).returncode, -signal.SIGKILL)

    @conformance("resize takes cols and rows")
    async def test_resize(self) -> None:
        gw = await self.start()
        h = await gw.spawn_process(["sh", "-c", "stty size; read x; stty size"], pty={"rows": 24, "cols": 80})
        lines = h.lines()
        self.assertEqual((await lines.__anext__()).line, "24 80")
        self.assertEqual(await h.resize({"cols": 100, "rows": 30}), {"ok": True, "rows": 30, "cols": 100})
        self.assertEqual(await pty_size(gw, h.proc), {"rows": 30, "cols": 100})
        self.assertEqual(await h.resize(cols=110, rows=35), {"ok": True, "rows": 35, "cols": 110}, "keywords work too")
        self.assertEqual(await h.resize(os.terminal_size((100, 30))), {"ok": True, "rows": 30, "cols": 100}, "and os.terminal_size")
        await h.write("\n")
        rest = [item.line async for item in lines]
        self.assertIn("30 100", rest)

    @conformance("resize refuses positional numbers")
    async def test_resize_positional(self) -> None:
        gw = await self.start()
        h = await gw.spawn_process(["sleep", "100"], stdin="null")
        try:
            with self.assertRaises(TypeError):
                await h.resize(30, 100)  # type: ignore[call-arg, arg-type]
            with self.assertRaises(TypeError):
                await h.resize(30)  # type: ignore[arg-type]
            with self.assertRaises(RpcError) as cm:
                await h.resize({"cols": 100, "rows": 30})
            self.assertEqual(cm.exception.code, -32602, "not on a terminal")
        finally:
            await h.kill()

    @conformance("follow terminal size forwards the terminal's size")
    async def test_follow_terminal_size(self) -> None:
        gw = await self.start()
        master, slave = os.openpty()  # a stand-in for the UI's terminal
        self.addCleanup(os.close, master)
        self.addCleanup(os.close, slave)
        set_winsize(slave, 30, 100)
        h = await gw.spawn_process(["sh", "-c", "read x"], pty={"rows": 24, "cols": 80})
        reading = asyncio.ensure_future(h.read())  # the terminal's echo
        stop = h.follow_terminal_size(slave)
        self.assertTrue(callable(stop))

        async def has_size(rows: int, cols: int) -> bool:
            return await pty_size(gw, h.proc) == {"rows": rows, "cols": cols}

        await _util.poll(lambda: has_size(30, 100), "the first resize")
        set_winsize(slave, 40, 120)
        os.kill(os.getpid(), signal.SIGWINCH)  # what the terminal sends on a resize
        await _util.poll(lambda: has_size(40, 120), "the resize after SIGWINCH")
        stop()
        self.assertEqual(signal.getsignal(signal.SIGWINCH), signal.SIG_DFL, "stopped: no handler left")
        shown = h.follow_terminal_size(slave, adjust=lambda size: {"cols": size["cols"], "rows": size["rows"] - 2})
        await _util.poll(lambda: has_size(38, 120), "the adjusted size")
        await h.write("\n")
        await asyncio.wait_for(reading, _util.DEADLINE_S)
        await h.wait()
        self.assertEqual(signal.getsignal(signal.SIGWINCH), signal.SIG_DFL, "following stops when the process ends")
        shown()

    @conformance("cancel runs the ladder and answers once the tree is gone")
    async def test_cancel(self) -> None:
        gw = await self.start()
        h = await gw.spawn_process(["sleep", "100"], stdin="null")
        result = await h.cancel([("SIGTERM", 5000), ("SIGKILL",)])
        self.assertEqual(result, {"proc": h.proc, "step": 0, "signal": "SIGTERM", "code": None, "exit_signal": "SIGTERM"})
        exit = await h.wait()
        self.assertEqual(exit.cause, "cancel")
        self.assertEqual(exit.signal, "SIGTERM")

    @conformance("a missing program is RpcError -32000")
    async def test_missing_program(self) -> None:
        gw = await self.start()
        with self.assertRaises(RpcError) as cm:
            await gw.spawn_process(["/no/such/program"])
        self.assertIsInstance(cm.exception, GatewayError)
        self.assertEqual(cm.exception.code, -32000)
        self.assertEqual(cm.exception.data["code"], "ENOENT")

    # ---- the gateway's life ------------------------------------------------

    @conformance("a spawn given up on is killed when its answer comes")
    async def test_abandoned_spawn(self) -> None:
        gw = await self.start()
        exits: List[Any] = []
        gw.on("process.exit", exits.append)
        os.kill(gw.pid, signal.SIGSTOP)  # the answer cannot come in time
        try:
            with self.assertRaises(RequestTimeoutError):
                await gw.spawn_process(["sleep", "1000"], timeout=0.05)
        finally:
            os.kill(gw.pid, signal.SIGCONT)
        await _util.poll(lambda: len(exits) == 1, "the abandoned process's exit")
        self.assertEqual(exits[0]["signal"], "SIGKILL")
        self.assertEqual(exits[0]["proc"], 1)

    @conformance("a missing binary is GatewayNotFound, a GatewayStartError")
    async def test_missing_binary(self) -> None:
        with self.assertRaises(GatewayNotFound) as cm:
            await Gateway.start(command="/nonexistent/tui-gateway")
        self.assertIsInstance(cm.exception, GatewayStartError)
        self.assertIsInstance(cm.exception, GatewayError)
        self.assertIn("/nonexistent/tui-gateway", str(cm.exception))

    @conformance("close returns the exit details, without error when clean")
    async def test_close_result(self) -> None:
        gw = await self.start()
        events: List[Any] = []
        gw.on("exit", events.append)
        pid = gw.pid
        exit = await gw.close()
        assert exit is not None
        self.assertEqual(exit["code"], 0)
        self.assertIsNone(exit["signal"])
        self.assertIsNone(exit["error"], "a clean exit carries no error")
        self.assertEqual(exit["exit_reason"], "stdin EOF", "close() ends the gateway's stdin; no gateway.shutdown by default")
        self.assertIsInstance(exit["reason"], str)
        self.assertEqual(exit["pid"], pid)
        self.assertEqual(exit["generation"], 1)
        self.assertIs(exit["restarting"], False)
        self.assertEqual(exit["orphans_killed"], [])
        self.assertIsInstance(exit["stderr_tail"], list)
        self.assertEqual(events, [exit], "the exit event has the same details")
        self.assertIs(await gw.close(), exit, "idempotent: the same result")

    @conformance("close with shutdown sends gateway.shutdown first")
    async def test_close_shutdown(self) -> None:
        gw = await self.start()
        sleeper = await gw.spawn_process(["sleep", "100"], stdin="null")
        exit = await gw.close(shutdown=True)
        assert exit is not None
        self.assertEqual(exit["code"], 0)
        self.assertEqual(exit["exit_reason"], "gateway.shutdown request")
        gone = await sleeper.wait()
        self.assertEqual(gone.signal, "SIGTERM")
        self.assertEqual(gone.cause, "shutdown")

    @conformance("calls after close raise GatewayClosed")
    async def test_after_close(self) -> None:
        gw = await self.start()
        await gw.close()
        with self.assertRaises(GatewayClosed) as cm:
            await gw.ping()
        self.assertIsInstance(cm.exception, GatewayError)
        assert cm.exception.exit is not None
        self.assertEqual(cm.exception.exit["code"], 0)
        with self.assertRaises(GatewayClosed):
            await gw.spawn_process(["true"])
        self.assertIs(await gw.notify("gateway.ping"), False, "notify never raises: False")

    @conformance("a gateway that dies rejects pending calls with GatewayExited")
    async def test_gateway_dies(self) -> None:
        gw = await self.start()
        h = await gw.spawn_process(["sleep", "100"], stdin="null")
        exits: List[Any] = []
        gw.on("exit", exits.append)
        pid = gw.pid
        os.kill(pid, signal.SIGSTOP)
        pending = asyncio.ensure_future(gw.ping())
        await _util.poll(lambda: gw.client_stats()["pending"] == 1, "the call to be pending")
        os.kill(pid, signal.SIGKILL)
        with self.assertRaises(GatewayExited) as cm:
            await asyncio.wait_for(pending, _util.DEADLINE_S)
        self.assertIsInstance(cm.exception, GatewayError)
        self.assertEqual(cm.exception.signal, "SIGKILL")
        self.assertIsNone(cm.exception.code)
        with self.assertRaises(GatewayExited):
            await h.wait(timeout=_util.DEADLINE_S)
        await _util.poll(lambda: gw.closed, "the gateway to be marked ended")
        with self.assertRaises(GatewayExited, msg="later calls too: it ended for good"):
            await gw.ping()
        self.assertEqual(len(exits), 1)
        self.assertIsInstance(exits[0]["error"], GatewayExited)
        closed = await gw.close()
        assert closed is not None
        self.assertEqual(closed["signal"], "SIGKILL")
