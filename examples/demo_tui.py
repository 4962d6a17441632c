#!/usr/bin/env python3
"""A small shell-like terminal UI on tui-gateway (curses + asyncio, standard library only).

Type a command at the prompt and press Enter: it runs through the gateway
(``process.spawn`` of ``["sh", "-c", line]``) and its output scrolls above
the prompt, with its colours (SGR escapes such as ``\\033[31m``; other
escapes are stripped).

Keys:
    Enter           run the command (while one runs: send the line to its stdin)
    Ctrl+C          interrupt the running command (SIGINT to its process group);
                    the demo itself never gets SIGINT (the terminal is in raw mode)
    Ctrl+D          quit when idle with an empty prompt; while a command runs,
                    close its stdin (EOF)
    q               quit, on an empty prompt while no command runs
    PgUp / PgDn     scroll the output

Quitting closes the gateway, which stops anything still running: nothing is
left behind.

Run it from the repository root::

    TUI_GATEWAY_BIN=target/debug/tui-gateway python3 examples/demo_tui.py

The client comes from ``clients/python/src`` unless ``tui_gateway_client`` is
installed. When the gateway lists ``process.resize`` in its ready payload (PTY
support), commands run in a PTY of the output area's size and follow terminal
resizes; otherwise they run with pipes.

``TUI_GATEWAY_DEMO_PIDFILE``: if set, the demo writes ``{"demo": pid,
"gateway": pid, "commands": [pid, ...]}`` there (used by the tmux test).
"""

from __future__ import annotations

import asyncio
import collections
import curses
import json
import os
import re
import sys
from typing import Any, Deque, Dict, List, Optional, Tuple

try:
    import tui_gateway_client  # noqa: F401
except ImportError:  # not installed: use the copy in this repository
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "clients", "python", "src"))

from tui_gateway_client import ExitPayload, Gateway, GatewayError, ProcessHandle, RestartPayload, RpcError  # noqa: E402

#: Output lines kept for scrolling back; older ones are dropped.
SCROLLBACK_LINES = 5000
#: How often the key loop looks for input when idle. Short enough that typing
#: feels immediate, long enough to cost nothing.
KEY_POLL_S = 0.01
#: An escape sequence split across output chunks is held at most this long
#: (in characters) before it is treated as text.
MAX_PENDING_ESCAPE = 64
PROMPT = "demo$ "
STDIN_PROMPT = "stdin> "

# -- colours and the SGR subset ------------------------------------------------

Style = Tuple[int, int, bool, bool, bool, bool]  # fg, bg (-1 default, 0-15), bold, dim, underline, reverse
DEFAULT_STYLE: Style = (-1, -1, False, False, False, False)
ECHO_STYLE: Style = (-1, -1, True, False, False, False)
OK_STYLE: Style = (2, -1, False, True, False, False)
FAIL_STYLE: Style = (1, -1, True, False, False, False)
INFO_STYLE: Style = (6, -1, False, True, False, False)

# CSI (ESC [ params intermediates final), OSC (ESC ] ... BEL or ESC \),
# any other escape (ESC, optional intermediates, final), or one C0 control.
TOKEN = re.compile(r"\x1b\[([0-?]*)[ -/]*([@-~])|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[ -/]*[0-~]|[\x00-\x1f\x7f]")


def apply_sgr(style: Style, params: str) -> Style:
    """Apply one SGR sequence's parameters (``"1;31"``) to a style."""
    fg, bg, bold, dim, underline, reverse = style
    codes = [int(p) if p.isdigit() else 0 for p in params.split(";")] if params else [0]
    i = 0
    while i < len(codes):
        c = codes[i]
        if c == 0:
            fg, bg, bold, dim, underline, reverse = DEFAULT_STYLE
        elif c == 1:
            bold = True
        elif c == 2:
            dim = True
        elif c == 4:
            underline = True
        elif c == 7:
            reverse = True
        elif c == 22:
            bold = dim = False
        elif c == 24:
            underline = False
        elif c == 27:
            reverse = False
        elif 30 <= c <= 37:
            fg = c - 30
        elif c == 39:
            fg = -1
        elif 40 <= c <= 47:
            bg = c - 40
        elif c == 49:
            bg = -1
        elif 90 <= c <= 97:
            fg = c - 90 + 8
        elif 100 <= c <= 107:
            bg = c - 100 + 8
        elif c in (38, 48):
            # 38;5;n / 38;2;r;g;b: keep the 16 basic colours, ignore the rest.
            if i + 2 < len(codes) and codes[i + 1] == 5:
                n = codes[i + 2]
                if n < 16:
                    if c == 38:
                        fg = n
                    else:
                        bg = n
                i += 2
            elif i + 4 < len(codes) and codes[i + 1] == 2:
                i += 4
        i += 1
    return (fg, bg, bold, dim, underline, reverse)


class Terminal:
    """The output model: finished lines plus the line being written, as styled segments."""

    def __init__(self) -> None:
        self.lines: Deque[List[Tuple[str, Style]]] = collections.deque(maxlen=SCROLLBACK_LINES)
        self.current: List[Tuple[str, Style]] = []
        self.style: Style = DEFAULT_STYLE
        self.pending: Dict[str, str] = {}  # per stream: an escape cut at a chunk's end
        self.carriage_return = False

    def feed(self, text: str, stream: str = "stdout") -> None:
        text = self.pending.pop(stream, "") + text
        # Hold back an escape sequence that the chunk cut in two.
        esc = text.rfind("\x1b")
        if esc >= 0 and len(text) - esc < MAX_PENDING_ESCAPE and not TOKEN.match(text, esc):
            self.pending[stream] = text[esc:]
            text = text[:esc]
        pos = 0
        for m in TOKEN.finditer(text):
            if m.start() > pos:
                self._text(text[pos : m.start()])
            pos = m.end()
            token = m.group(0)
            if token.startswith("\x1b["):
                if m.group(2) == "m":
                    self.style = apply_sgr(self.style, m.group(1))
                # every other CSI (cursor moves, erase, ...) is stripped
            elif token == "\n":
                self.newline()
            elif token == "\r":
                self.carriage_return = True
            elif token == "\t":
                width = sum(len(t) for t, _ in self.current)
                self._text(" " * (8 - width % 8))
            elif token in ("\b", "\x7f"):
                self._backspace()
            # other escapes and control characters are stripped
        if pos < len(text):
            self._text(text[pos:])

    def _text(self, text: str) -> None:
        if self.carriage_return:
            # A bare \r (progress bars): the next text rewrites the line.
            self.current = []
            self.carriage_return = False
        if self.current and self.current[-1][1] == self.style:
            self.current[-1] = (self.current[-1][0] + text, self.style)
        else:
            self.current.append((text, self.style))

    def _backspace(self) -> None:
        if self.current:
            text, style = self.current[-1]
            self.current[-1] = (text[:-1], style)
            if not self.current[-1][0]:
                self.current.pop()

    def newline(self) -> None:
        self.carriage_return = False
        self.lines.append(self.current)
        self.current = []

    def finish_line(self) -> None:
        """End a last line that had no newline (at a command's exit)."""
        for stream in list(self.pending):
            self._text(self.pending.pop(stream).replace("\x1b", ""))
        if self.current:
            self.newline()

    def message(self, text: str, style: Style) -> None:
        self.finish_line()
        self.lines.append([(text, style)])


# -- the application --------------------------------------------------------


class Demo:
    def __init__(self, stdscr: "curses.window", gw: Gateway) -> None:
        self.scr = stdscr
        self.gw = gw
        self.term = Terminal()
        self.input = ""
        self.running: Optional[ProcessHandle[str]] = None
        self.running_line = ""
        self.pump: Optional["asyncio.Task[None]"] = None
        self.quit = False
        self.scroll = 0  # rows scrolled back from the bottom
        self.dirty = True
        self.pairs: Dict[Tuple[int, int], int] = {}
        self.colors = False
        self.pidfile = os.environ.get("TUI_GATEWAY_DEMO_PIDFILE")
        self.command_pids: List[int] = []
        self.use_pty = gw.supports("process.resize")
        self.tasks: "set[asyncio.Task[Any]]" = set()

    # -- setup --------------------------------------------------------------

    def setup(self) -> None:
        curses.raw()  # Ctrl+C and Ctrl+D arrive as keys, never as signals
        curses.noecho()
        self.scr.keypad(True)
        self.scr.nodelay(True)
        if curses.has_colors():
            curses.start_color()
            try:
                curses.use_default_colors()
            except curses.error:
                pass
            self.colors = True
        ready = self.gw.ready
        mode = "a PTY" if self.use_pty else "pipes"
        self.term.message(f"tui-gateway {ready['version']} ready (pid {ready['pid']}); commands run with {mode}.", INFO_STYLE)
        self.term.message("Type a command and press Enter. Ctrl+C interrupts it; q or Ctrl+D quits.", INFO_STYLE)
        self.gw.on("exit", self.on_gateway_exit)
        self.gw.on("restart", self.on_gateway_restart)
        self.write_pidfile()

    def write_pidfile(self) -> None:
        if not self.pidfile:
            return
        tmp = self.pidfile + ".tmp"
        with open(tmp, "w") as f:
            json.dump({"demo": os.getpid(), "gateway": self.gw.pid, "commands": self.command_pids}, f)
        os.replace(tmp, self.pidfile)

    def on_gateway_exit(self, payload: ExitPayload) -> None:
        what = "restarting it" if payload["restarting"] else "no restart"
        self.term.message(f"[gateway exited: {payload['reason']}; {what}]", FAIL_STYLE)
        self.dirty = True

    def on_gateway_restart(self, payload: RestartPayload) -> None:
        self.term.message(f"[gateway restarted: pid {payload['pid']}]", INFO_STYLE)
        self.write_pidfile()
        self.dirty = True

    # -- geometry -------------------------------------------------------------

    def output_rows(self) -> int:
        rows, _ = self.scr.getmaxyx()
        return max(1, rows - 2)

    def cols(self) -> int:
        return max(1, self.scr.getmaxyx()[1])

    # -- the loop ---------------------------------------------------------------

    async def run(self) -> None:
        self.setup()
        while not self.quit:
            while self.read_key():
                pass
            if self.dirty:
                self.render()
            await asyncio.sleep(KEY_POLL_S)
        await self.shutdown()

    def read_key(self) -> bool:
        try:
            key = self.scr.get_wch()
        except curses.error:
            return False
        self.on_key(key)
        self.dirty = True
        return True

    def on_key(self, key: Any) -> None:
        if key == curses.KEY_RESIZE:
            self.on_resize()
        elif key == curses.KEY_PPAGE:
            self.scroll += max(1, self.output_rows() - 1)
        elif key == curses.KEY_NPAGE:
            self.scroll = max(0, self.scroll - max(1, self.output_rows() - 1))
        elif key in ("\n", "\r", curses.KEY_ENTER):
            line, self.input = self.input, ""
            self.scroll = 0
            self.submit(line)
        elif key == "\x03":  # Ctrl+C
            if self.running is not None:
                self.spawn(self.interrupt())
            else:
                self.input = ""
        elif key == "\x04":  # Ctrl+D
            if self.running is not None:
                self.spawn(self.eof())
            elif not self.input:
                self.quit = True
        elif key in (curses.KEY_BACKSPACE, "\x7f", "\x08"):
            self.input = self.input[:-1]
        elif key == "\x15":  # Ctrl+U
            self.input = ""
        elif key == "q" and not self.input and self.running is None:
            self.quit = True
        elif isinstance(key, str) and key.isprintable():
            self.input += key

    def on_resize(self) -> None:
        curses.update_lines_cols()
        if self.running is not None and self.use_pty:
            self.spawn(self.running.resize({"cols": self.cols(), "rows": self.output_rows()}))

    def spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self.tasks.add(task)
        task.add_done_callback(self.task_done)

    def task_done(self, task: "asyncio.Task[Any]") -> None:
        self.tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            exc = task.exception()
            if not isinstance(exc, GatewayError):  # those are shown through the exit event
                self.term.message(f"[error: {exc}]", FAIL_STYLE)
            self.dirty = True

    # -- commands -------------------------------------------------------------

    def submit(self, line: str) -> None:
        if self.running is not None:
            self.spawn(self.running.write(line + "\n"))
            if not self.use_pty:  # a terminal echoes what it is sent by itself
                self.term.message(line, ECHO_STYLE)
            return
        if not line.strip():
            return
        self.term.message(f"$ {line}", ECHO_STYLE)
        self.running_line = line
        self.pump = asyncio.ensure_future(self.run_command(line))

    async def run_command(self, line: str) -> None:
        try:
            if self.use_pty:
                handle = await self.gw.spawn_process(["sh", "-c", line], pty={"rows": self.output_rows(), "cols": self.cols()})
            else:
                handle = await self.gw.spawn_process(["sh", "-c", line])
        except (RpcError, GatewayError) as exc:
            self.term.message(f"[cannot run: {exc}]", FAIL_STYLE)
            self.dirty = True
            return
        self.running = handle
        self.command_pids.append(handle.pid)
        self.write_pidfile()
        self.dirty = True
        try:
            async for chunk in handle.chunks():
                self.term.feed(chunk.data, chunk.stream)
                self.dirty = True
            status = await handle.wait()
            if status.signal is not None:
                self.term.message(f"[killed by {status.signal}]", FAIL_STYLE)
            elif status.code == 0:
                self.term.message("[exit 0]", OK_STYLE)
            else:
                self.term.message(f"[exit {status.code}]", FAIL_STYLE)
        except GatewayError as exc:
            self.term.message(f"[lost: {str(exc).splitlines()[0]}]", FAIL_STYLE)
        finally:
            self.running = None
            self.dirty = True

    async def interrupt(self) -> None:
        if self.running is not None:
            self.term.message("^C", FAIL_STYLE)
            await self.running.signal("SIGINT")

    async def eof(self) -> None:
        if self.running is not None:
            await self.running.close_stdin()

    async def shutdown(self) -> None:
        self.term.message("[closing the gateway...]", INFO_STYLE)
        self.render()
        await self.gw.close(shutdown=True)  # running commands get SIGTERM at once
        if self.pump is not None:
            try:
                await asyncio.wait_for(self.pump, 5)
            except (asyncio.TimeoutError, GatewayError):
                pass

    # -- drawing ----------------------------------------------------------------

    def attr(self, style: Style) -> int:
        fg, bg, bold, dim, underline, reverse = style
        a = curses.A_NORMAL
        if self.colors and (fg >= 0 or bg >= 0):
            ncolors = curses.COLORS
            if fg >= 8 and ncolors < 16:
                fg, bold = fg - 8, True
            if bg >= 8 and ncolors < 16:
                bg -= 8
            key = (fg, bg)
            pair = self.pairs.get(key)
            if pair is None and len(self.pairs) + 1 < curses.COLOR_PAIRS:
                pair = len(self.pairs) + 1
                try:
                    curses.init_pair(pair, fg, bg)
                    self.pairs[key] = pair
                except curses.error:
                    pair = None
            if pair is not None:
                a |= curses.color_pair(pair)
        if bold:
            a |= curses.A_BOLD
        if dim:
            a |= curses.A_DIM
        if underline:
            a |= curses.A_UNDERLINE
        if reverse:
            a |= curses.A_REVERSE
        return a

    def wrapped_rows(self, needed: int, width: int) -> List[List[Tuple[str, Style]]]:
        """The last ``needed`` screen rows of output, lines wrapped at ``width``."""
        rows: List[List[Tuple[str, Style]]] = []
        sources = list(self.term.lines)
        if self.term.current:
            sources.append(self.term.current)
        for line in reversed(sources):
            line_rows: List[List[Tuple[str, Style]]] = [[]]
            used = 0
            for text, style in line:
                while text:
                    room = width - used
                    if room == 0:
                        line_rows.append([])
                        used, room = 0, width
                    piece, text = text[:room], text[room:]
                    line_rows[-1].append((piece, style))
                    used += len(piece)
            rows[:0] = line_rows
            if len(rows) >= needed:
                break
        return rows[-needed:] if needed else []

    def render(self) -> None:
        self.dirty = False
        height, width = self.scr.getmaxyx()
        if height < 3 or width < 10:
            return
        out_rows = height - 2
        rows = self.wrapped_rows(out_rows + self.scroll, width)
        self.scroll = max(0, min(self.scroll, len(rows) - out_rows))
        visible = rows[: len(rows) - self.scroll] if self.scroll else rows
        visible = visible[-out_rows:]
        self.scr.erase()
        top = out_rows - len(visible)
        for y, row in enumerate(visible, start=top):
            x = 0
            for text, style in row:
                try:
                    self.scr.addstr(y, x, text, self.attr(style))
                except curses.error:
                    pass
                x += len(text)
        # Status line.
        if self.running is not None:
            status = f" running: {self.running_line}  (pid {self.running.pid})  Ctrl+C interrupt · Ctrl+D EOF"
        else:
            status = f" tui-gateway pid {self.gw.pid}  ·  Enter run · q / Ctrl+D quit · PgUp/PgDn scroll"
        if self.scroll:
            status += f"  [scrolled {self.scroll}]"
        try:
            self.scr.addnstr(height - 2, 0, status.ljust(width), width, curses.A_REVERSE)
        except curses.error:
            pass
        prompt = STDIN_PROMPT if self.running is not None else PROMPT
        text = prompt + self.input
        visible_input = text[-(width - 1) :]
        try:
            self.scr.addnstr(height - 1, 0, visible_input, width - 1)
            self.scr.move(height - 1, len(visible_input))
        except curses.error:
            pass
        self.scr.refresh()


async def main() -> int:
    try:
        gw = await Gateway.start(restart="on-failure")
    except GatewayError as exc:
        print(f"demo_tui: {exc}", file=sys.stderr)
        return 1
    os.environ.setdefault("ESCDELAY", "25")
    stdscr = curses.initscr()
    try:
        demo = Demo(stdscr, gw)
        await demo.run()
    finally:
        curses.noraw()
        curses.echo()
        stdscr.keypad(False)
        curses.endwin()
        await gw.close()
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
