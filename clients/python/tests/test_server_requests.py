"""7. Server-to-client requests (against tests/fixtures/s2c_backend.py), unknown events, bad lines."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from typing import Any, List

import _util
from _util import GatewayTestCase, report
from tui_gateway_client import GatewayExited, RpcError

FIXTURE = os.path.join(_util.FIXTURES, "s2c_backend.py")


class ServerRequestsTest(GatewayTestCase):
    async def start_fixture(self, **kwargs: Any) -> Any:
        return await self.start(command=sys.executable, args=[FIXTURE], **kwargs)

    async def test_handled_unhandled_and_failing_handlers(self) -> None:
        gw = await self.start_fixture()
        self.assertEqual(gw.ready["version"], "fixture")
        seen: List[Any] = []

        def confirm(params: Any) -> Any:
            seen.append(params)
            return {"confirmed": params["question"].upper()}

        async def pick(params: Any) -> Any:
            await asyncio.sleep(0.01)
            return params["options"][-1]

        def broken(params: Any) -> Any:
            raise ValueError("disk on fire")

        def refuse(params: Any) -> Any:
            raise RpcError(4001, "user said no", {"why": "test"})

        gw.on_request("ui.confirm", confirm)
        gw.on_request("ui.pick", pick)
        gw.on_request("ui.broken", broken)
        gw.on_request("ui.refuse", refuse)
        unregister = gw.on_request("ui.gone", lambda p: "never")
        unregister()

        result = await gw.request(
            "fixture.call",
            {
                "requests": [
                    {"method": "ui.confirm", "params": {"question": "delete?"}},
                    {"method": "ui.pick", "params": {"options": ["a", "b"]}},
                    {"method": "ui.unknown"},
                    {"method": "ui.broken"},
                    {"method": "ui.refuse"},
                    {"method": "ui.gone"},
                ]
            },
            timeout=_util.DEADLINE_S,
        )
        r = result["responses"]
        self.assertEqual([x["id"] for x in r], ["gw-1", "gw-2", "gw-3", "gw-4", "gw-5", "gw-6"])
        self.assertEqual(r[0]["result"], {"confirmed": "DELETE?"})
        self.assertEqual(seen, [{"question": "delete?"}])
        self.assertEqual(r[1]["result"], "b")
        self.assertEqual(r[2]["error"]["code"], -32601)
        self.assertIn("ui.unknown", r[2]["error"]["message"])
        self.assertEqual(r[3]["error"]["code"], -32000)
        self.assertIn("disk on fire", r[3]["error"]["message"])
        self.assertEqual(r[4]["error"], {"code": 4001, "message": "user said no", "data": {"why": "test"}})
        self.assertEqual(r[5]["error"]["code"], -32601)
        for x in r:
            self.assertEqual(x["jsonrpc"], "2.0")
            self.assertEqual(len([k for k in ("result", "error") if k in x]), 1)
        report("7 server-to-client", requests=len(r), handled=2, unhandled=2, raised=2)

    async def test_unknown_events_pass_through_and_bad_lines_become_events(self) -> None:
        gw = await self.start_fixture()
        stream = gw.events()
        custom: List[Any] = []
        gw.on("backend.custom", custom.append)
        exited: List[Any] = []
        gw.on("backend.exited", exited.append)
        text = "line\u2028separator\u2029paragraph"
        lines = [
            json.dumps({"jsonrpc": "2.0", "method": "event", "params": {"type": "backend.custom", "payload": {"text": text}}}, ensure_ascii=False),
            "this is not json",
            '{"jsonrpc":"2.0","id":"x-1","result":1}',
            json.dumps({"jsonrpc": "2.0", "method": "event", "params": {"type": "backend.exited", "payload": {"code": 1, "signal": None, "restarting": True}}}),
        ]
        self.assertEqual(await gw.request("fixture.emit", {"lines": lines}), {"ok": True})
        got = []
        while len(got) < 4:
            ev = await stream.next(_util.DEADLINE_S)
            if ev.type != "stderr":
                got.append(ev)
        self.assertEqual([e.type for e in got], ["backend.custom", "malformed", "protocol_error", "backend.exited"])
        self.assertEqual(got[0].payload, {"text": text})
        self.assertEqual(custom, [{"text": text}])
        self.assertIn("invalid JSON", got[1].payload["reason"])
        self.assertEqual(got[1].payload["preview"], "this is not json")
        self.assertEqual(exited, [{"code": 1, "signal": None, "restarting": True}])
        # The client goes on working after all that.
        self.assertTrue(await gw.ping())

    async def test_exit_code_69_is_named(self) -> None:
        gw = await self.start_fixture()
        exits: List[Any] = []
        gw.on("exit", exits.append)
        stderr_lines: List[str] = []
        gw.on("stderr", lambda p: stderr_lines.append(p["line"]))
        never = asyncio.Event()

        async def stuck(params: Any) -> Any:
            await never.wait()  # the fixture waits for this answer, so its call stays pending

        gw.on_request("ui.stuck", stuck)
        pending = asyncio.ensure_future(gw.request("fixture.call", {"requests": [{"method": "ui.stuck"}]}))
        await _util.poll(lambda: gw.client_stats()["pending"] == 1, "a pending call")
        self.assertEqual(await gw.request("fixture.exit", {"code": 69, "stderr": "backend: cannot connect\n"}, timeout=_util.DEADLINE_S), {"ok": True})
        with self.assertRaises(GatewayExited) as cm:
            await asyncio.wait_for(pending, _util.DEADLINE_S)
        e = cm.exception
        self.assertEqual((e.code, e.signal), (69, None))
        self.assertEqual(e.reason, "backend unavailable")
        self.assertEqual(e.exit_reason, "fixture exit")
        self.assertIn("backend: cannot connect", e.stderr_tail)
        self.assertIn("backend unavailable", str(e))
        await _util.poll(lambda: len(exits) == 1, "the exit event")
        # stderr lines were observable as events before the exit event.
        self.assertEqual(stderr_lines[-2:], ["backend: cannot connect", "[gateway-exit] fixture exit"])
        self.assertEqual(exits[0]["stderr_tail"][-2:], stderr_lines[-2:])
        self.assertEqual(exits[0]["code"], 69)
        self.assertFalse(exits[0]["restarting"])
        self.assertTrue(gw.closed)
        with self.assertRaises(GatewayExited):
            await gw.ping()
