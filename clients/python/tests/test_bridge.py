"""The client in front of a bridged backend (``tui-gateway -- CMD``): the UI
code is the same; the ready payload is the backend's plus ``gateway``, every
non-gateway.* method is the backend's, and close() leaves nothing."""

from __future__ import annotations

import os
import sys
from typing import Any, Dict

import _util
from _util import GatewayTestCase
from tui_gateway_client import BRIDGE_READY_TIMEOUT_S, RpcError

FIXTURE = os.path.join(os.path.dirname(__file__), "..", "..", "..", "tests", "backends", "fixture.py")


class BridgeTest(GatewayTestCase):
    async def test_merged_ready_backend_methods_and_nothing_left_after_close(self) -> None:
        self.assertGreater(BRIDGE_READY_TIMEOUT_S, 15.0)
        gw = await self.start(args=["--shutdown-grace", "2", "--", sys.executable, FIXTURE])
        ready: Dict[str, Any] = dict(gw.ready)
        self.assertEqual(ready["backend"], "fixture")
        self.assertEqual(ready["gateway"]["pid"], gw.pid)
        self.assertEqual(ready["gateway"]["limits"]["shutdown_grace_s"], 2)
        self.assertEqual(await gw.request("echo", {"a": [1, "é\n"]}), {"a": [1, "é\n"]})
        self.assertEqual(await gw.request("process.list"), {"from": "backend"})
        self.assertTrue(await gw.ping())
        with self.assertRaises(RpcError) as cm:
            await gw.request("no.such.method")
        self.assertEqual(cm.exception.code, -32601)
        results = await gw.batch([("echo", [7]), ("gateway.ping", None)])
        self.assertEqual([r.result if r is not None else None for r in results], [[7], {"ok": True}])
        info = await gw.info()
        backend_pid = info["backend"]["pid"]  # type: ignore[typeddict-item]
        self.assertTrue(_util.pid_alive(backend_pid))
        await gw.close()
        await _util.poll(lambda: not _util.pid_alive(backend_pid), "the backend gone")
