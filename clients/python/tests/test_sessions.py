"""Sessions (the repository's docs/sessions.md) against the real binary.

A session started by one client, left, attached to again with and without a
cursor; a relay killed mid-stream and the automatic reattach that loses
nothing; a stale epoch refused; ``end()`` ending it. Every test runs its
gateways with ``XDG_RUNTIME_DIR`` in a fresh directory of its own (mode
0700), names its sessions with this process's pid and a counter, and ends
every session it made before it returns (see ``asyncTearDown``). The same
scenarios, by name, are in the Node suite (test/sessions.test.js).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import shutil
import signal
import sys
import tempfile
from typing import Any, AsyncIterator, Dict, List, Tuple, TypeVar

from _util import ROOT, SRC, GatewayTestCase, all_gone, conformance, pid_alive, poll
from tui_gateway_client import Gateway, GatewayError, GatewayExited, GatewayStartError

_names = itertools.count(1)

#: The longest any one wait of these tests may take: a call, the output of a
#: process. A lost request would otherwise hang the suite.
WAIT_S = 20.0

T = TypeVar("T")


async def collect(items: AsyncIterator[T]) -> List[T]:
    """Every item, within WAIT_S."""

    async def run() -> List[T]:
        return [item async for item in items]

    return await asyncio.wait_for(run(), WAIT_S)


class SessionTest(GatewayTestCase):
    # 200,000 lines through lines(): asyncio's debug bookkeeping would be most of the time.
    loop_debug = False

    def setUp(self) -> None:
        super().setUp()
        self.dir = tempfile.mkdtemp(prefix="tgw-py-sessions-")
        os.chmod(self.dir, 0o700)
        self.env = {"XDG_RUNTIME_DIR": self.dir}

    async def asyncTearDown(self) -> None:
        await super().asyncTearDown()
        # End every session this test left, then drop the directory. SIGTERM
        # ends a session, except when it comes from the session's parent
        # (this process, for a session a Gateway started here): that only
        # detaches its client. So what SIGTERM left within 2 s gets SIGKILL
        # (which takes the session's commands along: parent-death signal).
        pids = [entry["pid"] for entry in await self.list_sessions()]

        def send(sig: int) -> None:
            for pid in pids:
                if pid_alive(pid):
                    try:
                        os.kill(pid, sig)
                    except ProcessLookupError:
                        pass

        send(signal.SIGTERM)
        try:
            await poll(lambda: all_gone(pids), "the test's sessions to end", timeout=2.0)
        except AssertionError:
            send(signal.SIGKILL)
            await poll(lambda: all_gone(pids), "the test's sessions to end")
        shutil.rmtree(self.dir, ignore_errors=True)

    def unique_name(self) -> str:
        """A session name no other test (or parallel run) uses."""
        return f"py-{os.getpid()}-{next(_names)}"

    async def list_sessions(self) -> List[Dict[str, Any]]:
        """What ``tui-gateway sessions --json`` lists with this test's runtime directory."""
        proc = await asyncio.create_subprocess_exec(
            self.bin, "sessions", "--json", stdout=asyncio.subprocess.PIPE, env={**os.environ, **self.env}
        )
        out, _ = await proc.communicate()
        self.assertEqual(proc.returncode, 0)
        listed: List[Dict[str, Any]] = json.loads(out)
        return listed

    @conformance("session: losing the relay mid-stream loses nothing")
    async def test_losing_the_relay_mid_stream_loses_nothing(self) -> None:
        name = self.unique_name()
        # Client A starts the session (its process is the session itself)
        # and leaves: close() detaches, and the session runs on.
        a = await Gateway.start(command=self.bin, env=self.env, session=name)
        self.assertEqual(a.ready["pid"], a.pid, "the first --session process is the session itself")
        self.assertEqual(a.ready.get("session", {}).get("name"), name)
        session_pid = a.pid
        assert session_pid is not None
        exit_a = await a.close()
        assert exit_a is not None
        self.assertTrue(exit_a["detached"])
        self.assertIsNone(exit_a["error"])
        self.assertTrue(pid_alive(session_pid), "close() detached: the session runs on")
        saved = a.session
        assert saved is not None
        self.assertEqual(saved.name, name)
        self.assertTrue(saved.epoch)
        self.assertGreaterEqual(saved.frames_received, 1, "the ready was frame 0")

        # Client B comes back with the saved cursor, through a relay.
        b = await Gateway.attach(name, saved.frames_received, saved.epoch, command=self.bin, env=self.env)
        try:
            self.assertNotEqual(b.pid, session_pid, "B talks through a relay")
            self.assertEqual(b.ready.get("session", {}).get("name"), name, "ready comes from gateway.info")
            self.assertEqual(b.session.epoch if b.session else None, saved.epoch)
            events: List[Tuple[str, Any]] = []
            b.on("detached", lambda p: events.append(("detached", p)))
            b.on("reattached", lambda p: events.append(("reattached", p)))

            proc = await b.spawn_process(["seq", "1", "200000"])
            # Kill the relay as the output arrives (when it is read, not when
            # the consumer caught up), so that much of it is still in flight.
            received = [0]
            killed: List[int] = []

            def on_output(payload: Any) -> None:
                if payload["proc"] != proc.proc:
                    return
                received[0] += len(payload["data"])
                if not killed and received[0] >= 64 * 1024 and b.pid is not None:
                    killed.append(b.pid)
                    os.kill(b.pid, signal.SIGKILL)

            b.on("process.output", on_output)
            lines = [item.line for item in await collect(proc.lines())]
            status = await proc.wait(timeout=WAIT_S)
            self.assertEqual(status.code, 0)
            self.assertTrue(killed, "the relay was killed mid-stream")
            expected = [str(i) for i in range(1, 200_001)]
            self.assertEqual(len(lines), len(expected), "every line exactly once")
            self.assertTrue(lines == expected, "in order, nothing lost, nothing twice")

            self.assertEqual([kind for kind, _ in events], ["detached", "reattached"])
            lost, back = events[0][1], events[1][1]
            self.assertIn("SIGKILL", lost["reason"])
            self.assertEqual(back["frames_from"], lost["frames_received"], "the stream went on at the cursor")
            self.assertGreaterEqual(back["frames_total"], back["frames_from"])
            self.assertNotEqual(b.pid, killed[0], "a new relay")
            assert b.session is not None
            self.assertGreater(b.session.frames_received, lost["frames_received"])
            self.assertEqual(await b.ping(timeout=WAIT_S), {"ok": True})
        finally:
            ended = await b.end()
        assert ended is not None
        self.assertFalse(ended["detached"])
        await poll(lambda: not pid_alive(session_pid), "the session to end")
        self.assertEqual(await self.list_sessions(), [])

    @conformance("session: an attach with a stale epoch is refused with the reason")
    async def test_an_attach_with_a_stale_epoch_is_refused(self) -> None:
        name = self.unique_name()
        a = await Gateway.start(command=self.bin, env=self.env, session=name)
        cursor = await a.detach(timeout=WAIT_S)
        assert cursor is not None and cursor.epoch is not None
        self.assertEqual(cursor.name, name)
        stale = "1111111111111111" if cursor.epoch == "0000000000000000" else "0000000000000000"
        with self.assertRaises(GatewayStartError) as caught:
            await Gateway.attach(name, cursor.frames_received, stale, command=self.bin, env=self.env)
        err = caught.exception
        self.assertEqual(err.code, 69)
        said = [line for line in err.stderr_tail if line.startswith("[gateway-attach] ")]
        self.assertTrue(said, f"the relay says why on stderr: {err.stderr_tail!r}")
        self.assertEqual(err.reason, said[-1][len("[gateway-attach] "):])
        self.assertRegex(err.reason, "(?i)epoch")
        self.assertIn(err.reason, str(err))
        # The session is untouched: the right epoch attaches.
        b = await Gateway.attach(name, cursor.frames_received, cursor.epoch, command=self.bin, env=self.env)
        self.assertEqual(await b.ping(timeout=WAIT_S), {"ok": True})
        await b.end()

    @conformance("session: attach without a cursor, list and adopt a running process")
    async def test_attach_without_a_cursor_and_adopt_a_process(self) -> None:
        name = self.unique_name()
        a = await Gateway.start(command=self.bin, env=self.env, session=name)
        script = 'echo before; read line; echo "after $line"; exit 7'
        started = await a.spawn_process(["sh", "-c", script], tag="adopt-me")
        lines = started.lines()
        self.assertEqual((await asyncio.wait_for(lines.__anext__(), WAIT_S)).line, "before")
        await lines.aclose()
        await a.detach(timeout=WAIT_S)

        # A UI that restarted: no cursor, no handles.
        b = await Gateway.attach(name, command=self.bin, env=self.env)
        try:
            self.assertEqual(b.ready.get("session", {}).get("name"), name, "ready comes from gateway.info (no ready is sent again)")
            listed = await b.list_processes(timeout=WAIT_S)
            entry = next((p for p in listed if p["proc"] == started.proc), None)
            assert entry is not None, listed
            self.assertEqual(entry["argv"], ["sh", "-c", script])
            self.assertEqual(entry["tag"], "adopt-me")
            self.assertTrue(entry["running"])
            handle = await b.adopt_process(started.proc, timeout=WAIT_S)
            self.assertEqual(handle.pid, started.pid)
            self.assertTrue(handle.running)
            self.assertIs(await b.adopt_process(started.proc, timeout=WAIT_S), handle, "one handle per process")

            # The cursor of an attach without one is exact too: lose the
            # relay now, and the output written after the reattach arrives once.
            reattached: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
            b.once("reattached", lambda p: reattached.done() or reattached.set_result(p))
            assert b.pid is not None
            os.kill(b.pid, signal.SIGKILL)
            await asyncio.wait_for(reattached, WAIT_S)
            await handle.write("hello\n", timeout=WAIT_S)
            self.assertEqual([item.line for item in await collect(handle.lines())], ["after hello"])
            status = await handle.wait(timeout=WAIT_S)
            self.assertEqual(status.code, 7)
            self.assertEqual(await b.list_processes(timeout=WAIT_S), [])
        finally:
            await b.end()

    @conformance("session: a fresh attach without a cursor counts from latest and reattaches exactly")
    async def test_a_fresh_attach_counts_from_latest(self) -> None:
        name = self.unique_name()
        # A starts the session, runs a command that writes a first part,
        # waits for a line, then writes a second part; A leaves while the
        # first part is still coming, so that the session wrote frames
        # before B attaches and queues the rest while nobody is attached.
        a = await Gateway.start(command=self.bin, env=self.env, session=name)
        session_pid = a.pid
        assert session_pid is not None
        first_output: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        a.once("process.output", lambda p: first_output.done() or first_output.set_result(p))
        proc = await a.spawn_process(["sh", "-c", "seq 1 50000; read go; seq 50001 100000"], timeout=WAIT_S)
        await asyncio.wait_for(first_output, WAIT_S)
        await a.close()
        expected = "".join(f"{i}\n" for i in range(1, 100_001))

        # B: a fresh UI, no cursor (--frames-received latest).
        b = await Gateway.attach(name, command=self.bin, env=self.env)
        b_closed = False
        try:
            assert b.session is not None
            start = b.session.frames_received
            self.assertGreaterEqual(start, 2, "the session had written frames before B attached (the ready, the spawn's answer)")
            self.assertNotEqual(b.pid, session_pid, "B talks through a relay")
            self.assertEqual(b.ready.get("session", {}).get("name"), name, "ready comes from gateway.info")
            events: List[Tuple[str, Any]] = []
            b.on("detached", lambda p: events.append(("detached", p)))
            b.on("reattached", lambda p: events.append(("reattached", p)))
            chunks: List[str] = []
            armed = [False]
            since_armed = [0]
            killed: List[int] = []
            exited: asyncio.Future[Any] = asyncio.get_running_loop().create_future()

            def on_output(payload: Any) -> None:
                if payload["proc"] != proc.proc:
                    return
                chunks.append(payload["data"])
                if not armed[0]:
                    return
                since_armed[0] += len(payload["data"])
                if not killed and since_armed[0] >= 64 * 1024 and b.pid is not None:
                    killed.append(b.pid)
                    os.kill(b.pid, signal.SIGKILL)

            def on_exit(payload: Any) -> None:
                if payload["proc"] == proc.proc and not exited.done():
                    exited.set_result(payload)

            b.on("process.output", on_output)
            b.on("process.exit", on_exit)
            handle = await b.adopt_process(proc.proc, timeout=WAIT_S)
            await handle.write("go\n", timeout=WAIT_S)
            armed[0] = True
            exit = await asyncio.wait_for(exited, WAIT_S)
            self.assertEqual(exit["code"], 0)
            self.assertTrue(killed, "B's relay was killed mid-stream")
            self.assertEqual([kind for kind, _ in events], ["detached", "reattached"])
            self.assertEqual(events[1][1]["frames_from"], events[0][1]["frames_received"], "the stream went on at the cursor")
            # From its first frame on, B got the output with no gap and
            # nothing twice: a suffix of the whole, and all of the second part.
            text = "".join(chunks)
            self.assertGreaterEqual(len(text), len(expected) - expected.index("50001\n"))
            self.assertTrue(expected.endswith(text), "no gap, nothing twice")
            self.assertEqual(await b.ping(timeout=WAIT_S), {"ok": True})
            cursor = b.session
            exit_b = await b.close()
            b_closed = True
            assert exit_b is not None
            self.assertTrue(exit_b["detached"])

            # C: start(session=...) finds the session running and becomes a
            # relay, also with latest: the session was idle, so C starts where B stopped.
            c = await Gateway.start(command=self.bin, env=self.env, session=name)
            try:
                self.assertNotEqual(c.pid, session_pid, "C is a relay")
                self.assertEqual(c.ready.get("session", {}).get("name"), name, "ready comes from gateway.info")
                assert c.session is not None
                self.assertEqual(c.session.epoch, cursor.epoch)
                # The one frame more is the answer to the gateway.info start() asked for.
                self.assertEqual(c.session.frames_received, cursor.frames_received + 1, "C's cursor is exact")
                seq = await c.spawn_process(["seq", "1", "100000"], timeout=WAIT_S)
                received = [0]
                killed_c: List[int] = []
                reattached: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
                c.once("reattached", lambda p: reattached.done() or reattached.set_result(p))

                def on_seq(payload: Any) -> None:
                    if payload["proc"] != seq.proc:
                        return
                    received[0] += len(payload["data"])
                    if not killed_c and received[0] >= 64 * 1024 and c.pid is not None:
                        killed_c.append(c.pid)
                        os.kill(c.pid, signal.SIGKILL)

                c.on("process.output", on_seq)
                lines = [item.line for item in await collect(seq.lines())]
                self.assertEqual((await seq.wait(timeout=WAIT_S)).code, 0)
                self.assertTrue(killed_c, "C's relay was killed mid-stream")
                await asyncio.wait_for(reattached, WAIT_S)
                self.assertEqual(len(lines), 100_000, "every line exactly once")
                self.assertTrue(lines == [str(i) for i in range(1, 100_001)], "in order, nothing lost, nothing twice")
            finally:
                await c.end()
        finally:
            if not b_closed:
                await b.end()
        await poll(lambda: not pid_alive(session_pid), "the session to end")

    @conformance("session: end ends it and a later attach is refused")
    async def test_end_ends_it(self) -> None:
        name = self.unique_name()
        a = await Gateway.start(command=self.bin, env=self.env, session=name)
        session_pid = a.ready["pid"]
        sleeper = await a.spawn_process(["sleep", "1000"], stdin="null", timeout=WAIT_S)
        status = await a.end()
        assert status is not None
        self.assertEqual(status["code"], 0)
        self.assertFalse(status["detached"])
        self.assertIsNone(status["error"])
        await poll(lambda: all_gone([session_pid, sleeper.pid]), "the session and its command to end")

        async def unlisted() -> bool:
            return await self.list_sessions() == []

        await poll(unlisted, "the session to leave the list")
        with self.assertRaises(GatewayStartError) as caught:
            await Gateway.attach(name, command=self.bin, env=self.env)
        self.assertEqual(caught.exception.code, 69)
        self.assertIn(f"cannot attach to session {name}", str(caught.exception))

    @conformance("session: a session that is gone ends the client with the reason")
    async def test_a_session_that_is_gone_ends_the_client(self) -> None:
        name = self.unique_name()
        a = await Gateway.start(command=self.bin, env=self.env, session=name)
        session_pid = a.pid
        assert session_pid is not None
        await a.detach(timeout=WAIT_S)
        b = await Gateway.attach(name, command=self.bin, env=self.env)
        events: List[str] = []
        exits: List[Any] = []
        b.on("detached", lambda _: events.append("detached"))
        b.on("reattached", lambda _: events.append("reattached"))
        b.on("exit", exits.append)
        sleeper = await b.spawn_process(["sleep", "1000"], stdin="null", timeout=WAIT_S)
        # The session dies: the relay's connection ends, the attach that follows finds no session.
        os.kill(session_pid, signal.SIGKILL)
        await asyncio.wait_for(b.wait_closed(), WAIT_S)
        self.assertEqual(events, ["detached"], "one attempt, no retry: the session is gone")
        self.assertEqual(len(exits), 1)
        exit = exits[0]
        self.assertEqual(exit["code"], 69)
        self.assertIn(name, exit["reason"])
        self.assertEqual(exit["reason"], exit["exit_reason"], "the reason is the relay's [gateway-attach] line")
        self.assertIsInstance(exit["error"], GatewayExited)
        with self.assertRaises(GatewayExited):
            await sleeper.wait(timeout=WAIT_S)
        with self.assertRaises(GatewayError):
            await b.ping(timeout=WAIT_S)
        await poll(lambda: not pid_alive(sleeper.pid), "the dead session's command to be gone (parent-death signal)")

    async def test_the_readme_session_example(self) -> None:
        """examples/sessions.py (the README's): killed mid-count, run again, it goes on where it stopped."""
        work = tempfile.mkdtemp(prefix="tgw-py-readme-session-")
        self.addCleanup(shutil.rmtree, work, True)
        with open(os.path.join(ROOT, "examples", "sessions.py")) as f:
            source = f.read()
        with open(os.path.join(ROOT, "README.md")) as f:
            readme = f.read()
        main = source[source.index("async def main()") : source.index("    os.remove(CURSOR)\n")]
        self.assertIn(main, readme, "the README shows the example's main() as it is")
        script = os.path.join(work, "example.py")
        with open(script, "w") as f:
            f.write(source.replace("sleep 1", "sleep 0.1"))  # the count, not the seconds
        env = {**os.environ, **self.env, "TUI_GATEWAY_BIN": self.bin, "PYTHONPATH": SRC}

        # The first run: killed (SIGKILL, no cleanup of any kind) once it showed 3.
        first = await asyncio.create_subprocess_exec(sys.executable, script, cwd=work, env=env, stdout=asyncio.subprocess.PIPE)
        assert first.stdout is not None
        out1 = b""
        while b"\n3\n" not in b"\n" + out1:
            chunk = await asyncio.wait_for(first.stdout.read(4096), WAIT_S)
            self.assertTrue(chunk, f"the first run ended before it showed 3: {out1!r}")
            out1 += chunk
        first.kill()
        out1 += await asyncio.wait_for(first.stdout.read(), WAIT_S)  # what it wrote before it died
        await first.wait()

        # The second run attaches with the saved cursor and finishes the count.
        second = await asyncio.create_subprocess_exec(sys.executable, script, cwd=work, env=env, stdout=asyncio.subprocess.PIPE)
        out2, _ = await asyncio.wait_for(second.communicate(), WAIT_S)
        self.assertEqual(second.returncode, 0)
        lines1, lines2 = out1.decode().split(), out2.decode().split()
        # At least once: a line shown but not saved yet when the UI died comes again.
        if lines1 and lines2 and lines2[0] == lines1[-1]:
            lines2 = lines2[1:]
        self.assertEqual(lines1 + lines2, [str(i) for i in range(1, 11)])
        self.assertEqual(await self.list_sessions(), [], "the example ended its session")
