"""1. Start, ready payload, ping, info; unknown method -> RpcError -32601; calls and their cleanup."""

from __future__ import annotations

import asyncio
import os
import time

import _util
from _util import GatewayTestCase, report
from tui_gateway_client import BatchEntry, GatewayClosed, RequestTimeoutError, RpcError


class BasicsTest(GatewayTestCase):
    async def test_start_ready_ping_info_and_unknown_method(self) -> None:
        t0 = time.monotonic()
        gw = await self.start()
        started = time.monotonic() - t0
        ready = gw.ready
        self.assertEqual(ready["protocol"], 1)
        self.assertIsInstance(ready["version"], str)
        self.assertEqual(ready["pid"], gw.pid)
        self.assertTrue(_util.pid_alive(ready["pid"]))
        self.assertIn("gateway.ping", ready["methods"])
        self.assertIn("process.spawn", ready["methods"])
        self.assertGreater(ready["limits"]["max_frame_bytes"], 0)
        self.assertTrue(gw.supports("process.spawn"))

        self.assertEqual(await gw.ping(), {"ok": True})
        self.assertEqual(await gw.request("gateway.ping"), {"ok": True})

        info = await gw.info()
        self.assertEqual(info["pid"], gw.pid)
        self.assertEqual(info["version"], ready["version"])
        self.assertIn("process", info["services"])
        self.assertEqual(info["limits"], ready["limits"])
        self.assertIsNone(info["client"])

        stats = await gw.stats()
        self.assertGreaterEqual(stats["frames_in"], 3)
        self.assertEqual(stats["children_alive"], 0)

        with self.assertRaises(RpcError) as cm:
            await gw.request("no.such.method", {"x": 1})
        self.assertEqual(cm.exception.code, -32601)
        self.assertIn("no.such.method", cm.exception.message)
        self.assertEqual(cm.exception.method, "no.such.method")

        with self.assertRaises(RpcError) as cm:
            await gw.request("process.spawn", {"args": ["true"]})
        self.assertEqual(cm.exception.code, -32602)

        caps = await gw.capabilities()
        self.assertEqual(caps["protocol"], 1)
        self.assertEqual((await gw.info())["client"]["name"], "tui-gateway-client-python")
        report("1 start", ready_s=round(started, 3), version=ready["version"], methods=len(ready["methods"]))

    async def test_batch_and_notify(self) -> None:
        gw = await self.start()
        results = await gw.batch([("gateway.ping", None), ("nope", None), ("process.list", None)])
        self.assertEqual(results[0], BatchEntry(True, {"ok": True}))
        second = results[1]
        assert second is not None
        self.assertFalse(second.ok)
        self.assertIsInstance(second.error, RpcError)
        assert second.error is not None
        self.assertEqual(second.error.code, -32601)
        self.assertEqual(results[2], BatchEntry(True, []))
        self.assertEqual(await gw.batch([]), [])
        # A notification gets no response, not even for an unknown method.
        self.assertTrue(await gw.notify("no.such.method"))
        self.assertTrue(await gw.notify("gateway.ping"))
        self.assertTrue(await gw.ping())
        stats = await gw.stats()
        self.assertEqual(stats["responses_unmatched"], 0)
        self.assertEqual(gw.client_stats()["protocol_errors"], 0)

    async def test_timeout_and_cancel_leave_no_pending_entry(self) -> None:
        gw = await self.start()
        os.kill(gw.pid, 19)  # SIGSTOP: the gateway answers nothing for now
        try:
            with self.assertRaises(RequestTimeoutError) as cm:
                await gw.request("gateway.ping", timeout=0.2)
            self.assertIsInstance(cm.exception, TimeoutError)
            call = asyncio.ensure_future(gw.request("gateway.ping"))
            await _util.poll(lambda: gw.client_stats()["pending"] == 1, "the call to be pending")
            call.cancel()
            with self.assertRaises(asyncio.CancelledError):
                await call
            self.assertEqual(gw.client_stats()["pending"], 0)
        finally:
            os.kill(gw.pid, 18)  # SIGCONT
        self.assertEqual(await gw.request("gateway.ping", timeout=_util.DEADLINE_S), {"ok": True})
        # The two abandoned calls were answered late and dropped quietly.
        await _util.poll(lambda: gw.client_stats()["late_responses"] == 2, "late responses counted")
        self.assertEqual(gw.client_stats()["protocol_errors"], 0)

    async def test_close_is_idempotent_and_later_calls_say_closed(self) -> None:
        gw = await self.start()
        pid = gw.pid
        await asyncio.gather(gw.close(), gw.close())
        await gw.close()
        self.assertFalse(_util.pid_alive(pid))
        self.assertTrue(gw.closed)
        with self.assertRaises(GatewayClosed):
            await gw.ping()

    async def test_async_with(self) -> None:
        from tui_gateway_client import Gateway

        async with Gateway.start(self.bin) as gw:
            pid = gw.pid
            self.assertTrue(await gw.ping())
        self.assertFalse(_util.pid_alive(pid))
