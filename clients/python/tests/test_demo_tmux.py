"""8. The demo (examples/demo_tui.py) in a real terminal: tmux at 100x30."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest
import uuid
from typing import Any, Dict, List, Set

import _util
from _util import report

DEMO = os.path.abspath(os.path.join(_util.ROOT, "..", "..", "examples", "demo_tui.py"))


class DemoInTmuxTest(unittest.TestCase):
    def setUp(self) -> None:
        self.bin = _util.gateway_bin()
        if shutil.which("tmux") is None:
            self.fail("tmux is not installed; the demo test needs it (apt-get install tmux)")
        self.assertTrue(os.path.isfile(DEMO), DEMO)
        self.socket = f"tgw-demo-test-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self.tmp = tempfile.mkdtemp(prefix="tgw-demo-")
        self.pidfile = os.path.join(self.tmp, "pids.json")
        self.seen_pids: Set[int] = set()
        self.addCleanup(self.cleanup)

    def cleanup(self) -> None:
        subprocess.run(["tmux", "-L", self.socket, "kill-server"], capture_output=True)
        # kill-server leaves the socket file behind.
        socket_dir = os.path.join(os.environ.get("TMUX_TMPDIR", "/tmp"), f"tmux-{os.getuid()}")
        try:
            os.unlink(os.path.join(socket_dir, self.socket))
        except OSError:
            pass
        for pid in self.seen_pids:  # never leave anything behind, even on failure
            if _util.pid_alive(pid):
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        shutil.rmtree(self.tmp, ignore_errors=True)

    def tmux(self, *args: str) -> str:
        done = subprocess.run(["tmux", "-L", self.socket, *args], capture_output=True, text=True, timeout=_util.DEADLINE_S)
        if done.returncode != 0:
            raise AssertionError(f"tmux {' '.join(args)} failed: {done.stderr.strip()}")
        return done.stdout

    def screen(self, escapes: bool = False) -> List[str]:
        args = ["capture-pane", "-p", "-t", "demo"] + (["-e"] if escapes else [])
        return self.tmux(*args).splitlines()

    def wait_screen(self, pred: Any, what: str) -> List[str]:
        last: List[List[str]] = [[]]

        def check() -> bool:
            last[0] = self.screen()
            return bool(pred(last[0]))

        try:
            _util.wait_until(check, what, interval=0.05)
        except AssertionError as exc:
            raise AssertionError(f"{exc}; the screen was:\n" + "\n".join(last[0])) from None
        return last[0]

    def pids(self) -> Dict[str, Any]:
        with open(self.pidfile) as f:
            data: Dict[str, Any] = json.load(f)
        self.seen_pids |= {data["demo"], data["gateway"], *data["commands"]}
        return data

    def type_line(self, text: str) -> None:
        self.tmux("send-keys", "-t", "demo", "-l", text)
        self.tmux("send-keys", "-t", "demo", "Enter")

    def test_demo_runs_colours_interrupts_and_quits_cleanly(self) -> None:
        command = "exec env " + " ".join(
            shlex.quote(a)
            for a in (f"TUI_GATEWAY_BIN={self.bin}", f"TUI_GATEWAY_DEMO_PIDFILE={self.pidfile}", sys.executable, DEMO)
        )
        t0 = time.monotonic()
        self.tmux("-f", "/dev/null", "new-session", "-d", "-x", "100", "-y", "30", "-s", "demo", command)
        self.assertEqual(self.tmux("display-message", "-p", "-t", "demo", "#{window_width}x#{window_height}").strip(), "100x30")
        self.wait_screen(lambda s: s and s[-1].startswith("demo$"), "the prompt")
        _util.wait_until(lambda: os.path.exists(self.pidfile), "the demo's pid file")
        started_s = time.monotonic() - t0
        pids = self.pids()
        demo_pid, gateway_pid = pids["demo"], pids["gateway"]
        self.assertIn(gateway_pid, _util.descendants(demo_pid))

        # Coloured output.
        self.type_line(r"printf 'hello\033[31mred\033[0m\n'")
        self.wait_screen(lambda s: any(line.rstrip() == "hellored" for line in s) and "[exit 0]" in "\n".join(s), "hellored and its exit")
        coloured = [line for line in self.screen(escapes=True) if "hello" in line and "printf" not in line]
        self.assertEqual(len(coloured), 1, coloured)
        self.assertIn("\x1b[31mred", coloured[0], "'red' is not drawn in red")
        self.assertNotIn("\x1b[31mhello", coloured[0])

        # A long-running command, then Ctrl+C: the command dies, the demo does not.
        self.type_line("sleep 1000")
        self.wait_screen(lambda s: any("running: sleep 1000" in line for line in s), "the running status")
        _util.wait_until(lambda: len(self.pids()["commands"]) == 2, "the sleep's pid")
        sh_pid = self.pids()["commands"][1]
        _util.wait_until(lambda: any("sleep" in _util.cmdline(p) for p in _util.descendants(sh_pid) | {sh_pid}), "the sleep process")
        command_tree = {sh_pid} | _util.descendants(sh_pid)
        self.seen_pids |= command_tree
        t_int = time.monotonic()
        self.tmux("send-keys", "-t", "demo", "C-c")
        screen = self.wait_screen(lambda s: s[-1].startswith("demo$") and "[killed by SIGINT]" in "\n".join(s), "the prompt back after Ctrl+C")
        interrupted_s = time.monotonic() - t_int
        _util.wait_until(lambda: _util.all_gone(command_tree), "the interrupted command to be gone")
        self.assertTrue(_util.pid_alive(demo_pid), "Ctrl+C must not stop the demo")
        self.assertTrue(_util.pid_alive(gateway_pid))
        self.assertIn("tui-gateway pid", screen[-2])

        # Quit: nothing may be left.
        everything = {demo_pid, gateway_pid} | _util.descendants(demo_pid) | self.seen_pids
        t_quit = time.monotonic()
        self.tmux("send-keys", "-t", "demo", "q")
        gone_s = _util.wait_until(lambda: _util.all_gone(everything), "the demo, its gateway and their children to be gone")
        leftovers = [p for p in _util.all_pids() if self.bin in " ".join(_util.cmdline(p)) and _util.ppid_of(p) in everything]
        self.assertEqual(leftovers, [])
        report(
            "8 demo in tmux",
            size="100x30",
            prompt_after_s=round(started_s, 2),
            ctrl_c_to_prompt_s=round(interrupted_s, 2),
            quit_to_all_gone_s=round(time.monotonic() - t_quit, 2),
            pids_checked=len(everything),
        )
        del gone_s
