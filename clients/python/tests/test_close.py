"""6. close() with a running child, within the grace; a UI that exits without close() leaves nothing."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import unittest

import _util
from _util import GatewayTestCase, report

UI = os.path.join(_util.FIXTURES, "ui_without_close.py")


class CloseTest(GatewayTestCase):
    async def test_close_with_a_running_child_within_the_grace(self) -> None:
        gw = await self.start()
        child = await gw.spawn_process(["sleep", "1000"])
        grandchild = await gw.spawn_process(["sh", "-c", "sleep 1000 & wait"])
        gw_pid = gw.pid
        self.assertTrue(_util.pid_alive(child.pid))
        await _util.poll(lambda: len(_util.descendants(grandchild.pid)) == 1, "the background sleep")
        tree = {gw_pid} | _util.descendants(gw_pid)
        self.assertEqual(len(tree), 4)
        grace = 3.0
        t0 = time.monotonic()
        await gw.close(grace=grace)
        elapsed = time.monotonic() - t0
        self.assertLess(elapsed, grace)
        gone_after = _util.wait_until(lambda: _util.all_gone(tree), "gateway and children to be gone", timeout=grace)
        self.assertEqual((await child.wait()).signal, "SIGTERM")
        report("6 close()", grace_s=grace, close_returned_s=round(elapsed, 3), pids_checked=len(tree), all_gone_after_close_s=round(gone_after, 3))
        await gw.close()  # idempotent

    async def test_close_escalates_to_sigkill_when_the_gateway_hangs(self) -> None:
        gw = await self.start()
        child = await gw.spawn_process(["sleep", "1000"])
        pid = gw.pid
        os.kill(pid, signal.SIGSTOP)  # a gateway that answers nothing, not even signals
        t0 = time.monotonic()
        await gw.close(grace=0.5)
        elapsed = time.monotonic() - t0
        _util.wait_until(lambda: _util.all_gone([pid, child.pid]), "the hung gateway and its child to be gone", timeout=5)
        # grace 0.5, then SIGTERM (which a stopped process cannot act on) and
        # its grace 1.0 + 0.5, then SIGKILL to it and to the child's group.
        self.assertLess(elapsed, 0.5 + 1.5 + 2.0)
        report("6 close() of a hung gateway", returned_s=round(elapsed, 2))


class UiExitTest(unittest.TestCase):
    """The UI is a separate Python process; these tests block, so they are synchronous."""

    def setUp(self) -> None:
        self.bin = _util.gateway_bin()

    def run_ui(self, mode: str) -> float:
        env = dict(os.environ, TUI_GATEWAY_BIN=self.bin)
        ui = subprocess.Popen([sys.executable, UI, mode], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
        try:
            assert ui.stdout is not None
            line = ui.stdout.readline()
            if not line:
                ui.wait(timeout=_util.DEADLINE_S)
                self.fail(f"the UI printed nothing; stderr: {ui.stderr.read().decode() if ui.stderr else ''}")
            pids = json.loads(line)
            tree = {pids["gateway"], pids["child"]}
            if mode == "wait":
                self.assertTrue(all(_util.pid_alive(p) for p in tree))
            t0 = time.monotonic()
            if mode == "wait":
                ui.kill()
            ui.wait(timeout=_util.DEADLINE_S)
            ui_exit_s = time.monotonic() - t0
            gone = _util.wait_until(lambda: _util.all_gone(tree), f"gateway and child to be gone after the UI exited ({mode})")
            stderr = ui.stderr.read().decode() if ui.stderr else ""
            self.assertNotIn("Exception ignored", stderr)
            self.assertNotIn("Task was destroyed", stderr)
            return round(ui_exit_s + gone, 3)
        finally:
            if ui.poll() is None:
                ui.kill()
                ui.wait()
            for pipe in (ui.stdout, ui.stderr):
                if pipe is not None:
                    pipe.close()

    def test_ui_exiting_without_close_leaves_nothing_running(self) -> None:
        figures = {mode: self.run_ui(mode) for mode in ("return", "exception", "os_exit", "wait")}
        report("6 UI exits without close()", **{f"{m}_all_gone_s": v for m, v in figures.items()})
