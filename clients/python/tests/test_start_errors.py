"""5. Start failures name the cause and show stderr: missing binary, bad flag (exit 64), silence."""

from __future__ import annotations

import os
import sys
import tempfile
import time
from unittest import mock

import _util
from _util import GatewayTestCase, report
from tui_gateway_client import Gateway, GatewayNotFound, GatewayStartError, find_binary


class StartErrorsTest(GatewayTestCase):
    async def test_missing_binary_explicit_path(self) -> None:
        with self.assertRaises(GatewayNotFound) as cm:
            await Gateway.start("/nonexistent/dir/tui-gateway")
        self.assertIn("/nonexistent/dir/tui-gateway", str(cm.exception))
        self.assertIn("does not exist", str(cm.exception))
        self.assertIsInstance(cm.exception, GatewayStartError)

    async def test_missing_binary_from_env_and_path(self) -> None:
        with mock.patch.dict(os.environ, {"TUI_GATEWAY_BIN": "/nonexistent/tgw"}):
            with self.assertRaises(GatewayNotFound) as cm:
                await Gateway.start()
            self.assertIn("TUI_GATEWAY_BIN", str(cm.exception))
            self.assertIn("/nonexistent/tgw", str(cm.exception))
        env = {k: v for k, v in os.environ.items() if k != "TUI_GATEWAY_BIN"}
        env["PATH"] = "/nonexistent"
        with mock.patch.dict(os.environ, env, clear=True):
            with self.assertRaises(GatewayNotFound) as cm:
                await Gateway.start()
            message = str(cm.exception)
            self.assertIn("PATH", message)
            self.assertIn("cargo install --locked --path .", message)
        # And the lookup order when everything is there: explicit, then env, then PATH.
        with mock.patch.dict(os.environ, {"TUI_GATEWAY_BIN": self.bin, "PATH": os.path.dirname(self.bin)}):
            self.assertEqual(find_binary(), self.bin)
            self.assertEqual(find_binary(sys.executable), sys.executable)
        # PATH is searched for the name tui-gateway, whatever the binary under
        # test is called: give it a directory holding exactly that name.
        with tempfile.TemporaryDirectory() as bindir:
            linked = os.path.join(bindir, "tui-gateway")
            os.symlink(self.bin, linked)
            with mock.patch.dict(os.environ, {"PATH": bindir}):
                os.environ.pop("TUI_GATEWAY_BIN", None)
                self.assertEqual(find_binary(), linked)

    async def test_bad_flag_exits_64_with_meaning_and_stderr(self) -> None:
        with self.assertRaises(GatewayStartError) as cm:
            await Gateway.start(self.bin, args=["--bogus"])
        e = cm.exception
        self.assertEqual((e.code, e.signal), (64, None))
        self.assertIn("bad command line", e.reason)
        self.assertTrue(any("--bogus" in line for line in e.stderr_tail), e.stderr_tail)
        text = str(e)
        for needle in ("exited before it was ready", "code 64", "bad command line", 'unknown argument "--bogus"', "--bogus"):
            self.assertIn(needle, text)
        report("5 bad flag", code=e.code, meaning=e.reason, stderr=list(e.stderr_tail))

    async def test_no_ready_within_timeout_kills_and_reports(self) -> None:
        t0 = time.monotonic()
        with self.assertRaises(GatewayStartError) as cm:
            await Gateway.start("/bin/sh", args=["-c", "echo warming up >&2; exec sleep 1000"], ready_timeout=1.0)
        elapsed = time.monotonic() - t0
        e = cm.exception
        self.assertIn("did not write gateway.ready within 1 s", str(e))
        self.assertIn("warming up", e.stderr_tail)
        self.assertIsNotNone(e.pid)
        self.assertFalse(_util.pid_alive(e.pid))  # killed and reaped
        self.assertLess(elapsed, _util.DEADLINE_S)
        report("5 ready timeout", timeout_s=1.0, raised_after_s=round(elapsed, 2))

    async def test_killed_before_ready(self) -> None:
        with self.assertRaises(GatewayStartError) as cm:
            await Gateway.start("/bin/sh", args=["-c", "echo dying >&2; kill -9 $$"])
        self.assertEqual((cm.exception.code, cm.exception.signal), (None, "SIGKILL"))
        self.assertIn("dying", str(cm.exception))

    async def test_not_executable(self) -> None:
        with self.assertRaises(GatewayNotFound) as cm:
            await Gateway.start(os.path.join(_util.FIXTURES, "s2c_backend.py") + ".nope")
        self.assertIn("does not exist", str(cm.exception))
        with self.assertRaises(GatewayNotFound) as cm:
            await Gateway.start(_util.FIXTURES)
        self.assertIn("not an executable file", str(cm.exception))
