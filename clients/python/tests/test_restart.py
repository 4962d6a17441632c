"""4. Gateway killed with SIGKILL mid-call: GatewayExited; restart on failure; no stale events."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from typing import Any, List

import _util
from _util import GatewayTestCase, report
from tui_gateway_client import GatewayExited, RestartPolicy

TICKER = ["sh", "-c", "while :; do echo tick; sleep 0.02; done"]


class RestartTest(GatewayTestCase):
    async def kill_mid_call(self, gw: Any) -> "asyncio.Future[Any]":
        """SIGSTOP the gateway, start a call it cannot answer, then SIGKILL it."""
        pid = gw.pid
        os.kill(pid, signal.SIGSTOP)
        call = asyncio.ensure_future(gw.request("gateway.ping"))
        await _util.poll(lambda: gw.client_stats()["pending"] == 1, "the call to be pending")
        os.kill(pid, signal.SIGKILL)
        return call

    async def test_sigkill_mid_call_without_restart(self) -> None:
        gw = await self.start()
        exits: List[Any] = []
        gw.on("exit", exits.append)
        pid = gw.pid
        call = await self.kill_mid_call(gw)
        with self.assertRaises(GatewayExited) as cm:
            await asyncio.wait_for(call, _util.DEADLINE_S)
        e = cm.exception
        self.assertEqual((e.code, e.signal, e.pid), (None, "SIGKILL", pid))
        self.assertIn("SIGKILL", str(e))
        await _util.poll(lambda: gw.closed, "the gateway to be marked ended")
        with self.assertRaises(GatewayExited):
            await gw.ping()
        self.assertEqual(len(exits), 1)
        self.assertEqual((exits[0]["signal"], exits[0]["restarting"]), ("SIGKILL", False))

    async def test_sigkill_mid_call_with_on_failure_restart(self) -> None:
        gw = await self.start(restart=RestartPolicy(initial_delay_s=0.05))
        stream = gw.events()
        exits: List[Any] = []
        gw.on("exit", exits.append)
        old_pid, old_generation = gw.pid, gw.generation
        ticker = await gw.spawn_process(TICKER)
        # Let ticks pile up unread in the stream: they belong to the old gateway.
        await _util.poll(lambda: stream.pending() >= 5, "ticks from the old gateway")
        call = await self.kill_mid_call(gw)
        t_kill = time.monotonic()
        with self.assertRaises(GatewayExited) as cm:
            await asyncio.wait_for(call, _util.DEADLINE_S)
        self.assertEqual(cm.exception.signal, "SIGKILL")
        with self.assertRaises(GatewayExited):
            await ticker.wait(timeout=_util.DEADLINE_S)

        # The next call waits for the new gateway and succeeds there.
        self.assertEqual(await gw.request("gateway.ping", timeout=_util.DEADLINE_S), {"ok": True})
        restart_s = time.monotonic() - t_kill
        self.assertNotEqual(gw.pid, old_pid)
        self.assertEqual(gw.generation, old_generation + 1)
        self.assertEqual(gw.ready["pid"], gw.pid)
        self.assertEqual((await gw.info())["pid"], gw.pid)
        # The old gateway's child was an orphan: the client killed its group.
        await _util.poll(lambda: not _util.pid_alive(ticker.pid), "the old ticker to be gone")

        fresh = await gw.spawn_process(["echo", "fresh"])
        self.assertEqual(await fresh.read(), "fresh\n")
        await fresh.wait()

        # Now read the stream: nothing from the old gateway may come out of
        # it any more, though ticks were buffered before the restart.
        seen = []
        while True:
            ev = await stream.next(_util.DEADLINE_S)
            seen.append(ev)
            if ev.type == "process.exit" and ev.payload["proc"] == fresh.proc:
                break
        stale = [ev for ev in seen if ev.generation != gw.generation and ev.type != "exit"]
        self.assertEqual(stale, [])
        types = [ev.type for ev in seen]
        self.assertEqual(types[:3], ["exit", "gateway.ready", "restart"], types)
        self.assertNotIn("tick\n", [ev.payload.get("data") for ev in seen if ev.type == "process.output"])
        self.assertEqual(len(exits), 1)
        self.assertEqual((exits[0]["signal"], exits[0]["restarting"], exits[0]["generation"]), ("SIGKILL", True, old_generation))
        dropped = gw.client_stats()["stale_events_dropped"]
        self.assertGreater(dropped, 0)
        report("4 sigkill + restart", old_pid=old_pid, new_pid=gw.pid, restart_to_answer_s=round(restart_s, 3), stale_events_dropped=dropped)

    async def test_restart_gives_up_after_max_attempts(self) -> None:
        gw = await self.start(restart=RestartPolicy(initial_delay_s=0.01, max_attempts=2))
        # Break the binary path for the restarts: every restart attempt fails.
        gw._binary = "/nonexistent/tui-gateway"
        os.kill(gw.pid, signal.SIGKILL)
        await asyncio.wait_for(gw.wait_closed(), _util.DEADLINE_S)
        from tui_gateway_client import GatewayClosed

        with self.assertRaises(GatewayClosed) as cm:
            await gw.ping()
        self.assertIn("gave up restarting", str(cm.exception))
