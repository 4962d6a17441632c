"""Shared helpers for the client tests: the binary, polling, /proc, figures."""

from __future__ import annotations

import asyncio
import os
import sys
import time
import unittest
from typing import Any, Awaitable, Callable, Dict, Iterable, List, Optional, Set, TypeVar, Union

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
SRC = os.path.join(ROOT, "src")
FIXTURES = os.path.join(HERE, "fixtures")
if SRC not in sys.path:
    sys.path.insert(0, SRC)

#: Deadline for anything the tests wait for. Generous on purpose: the suite
#: must pass on a 2-core machine that is also compiling Rust.
DEADLINE_S = float(os.environ.get("TGW_TEST_DEADLINE_S", "30"))


F = TypeVar("F", bound=Callable[..., Any])


def conformance(name: str) -> Callable[[F], F]:
    """Marks a test as the conformance scenario ``name``, shared by name with
    the Node suite (clients/node/test/conformance.test.js); ``-v`` shows it
    as ``conformance: <name>``, and clients/conformance.py checks both lists."""

    def mark(fn: F) -> F:
        fn.__doc__ = f"conformance: {name}"
        setattr(fn, "conformance", name)
        return fn

    return mark


def gateway_bin() -> str:
    """The binary under test, from $TUI_GATEWAY_BIN; fails the test clearly if unusable."""
    path = os.environ.get("TUI_GATEWAY_BIN")
    if not path:
        raise AssertionError(
            "TUI_GATEWAY_BIN is not set: point it at a built tui-gateway, e.g. "
            "TUI_GATEWAY_BIN=$PWD/target/debug/tui-gateway python3 -m unittest discover -s tests -v"
        )
    if not (os.path.isfile(path) and os.access(path, os.X_OK)):
        raise AssertionError(f"TUI_GATEWAY_BIN={path!r} is not an executable file; build it with `cargo build` first")
    return path


def report(test: str, **figures: object) -> None:
    """Print a measured figure to stderr (kept in the test log)."""
    text = ", ".join(f"{k}={v}" for k, v in figures.items())
    print(f"\n[measured] {test}: {text}", file=sys.stderr, flush=True)


def proc_state(pid: int) -> Optional[str]:
    """The /proc state letter of ``pid``, or ``None`` if there is no such process."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except (FileNotFoundError, ProcessLookupError):
        return None
    end = stat.rfind(b")")
    return stat[end + 2 : end + 3].decode()


def pid_alive(pid: int) -> bool:
    """Running (a zombie counts as gone: it has exited and holds nothing)."""
    state = proc_state(pid)
    return state is not None and state not in ("Z", "X")


def ppid_of(pid: int) -> Optional[int]:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except OSError:
        return None
    end = stat.rfind(b")")
    return int(stat[end + 2 :].split()[1])


def cmdline(pid: int) -> List[str]:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return [a.decode(errors="replace") for a in f.read().split(b"\0") if a]
    except OSError:
        return []


def all_pids() -> List[int]:
    return [int(name) for name in os.listdir("/proc") if name.isdigit()]


def descendants(root: int) -> Set[int]:
    """Every live process below ``root`` (children, grandchildren, ...)."""
    parents: Dict[int, List[int]] = {}
    for pid in all_pids():
        ppid = ppid_of(pid)
        if ppid is not None:
            parents.setdefault(ppid, []).append(pid)
    out: Set[int] = set()
    todo = [root]
    while todo:
        for kid in parents.get(todo.pop(), []):
            if kid not in out:
                out.add(kid)
                todo.append(kid)
    return {p for p in out if pid_alive(p)}


def wait_until(pred: Callable[[], bool], what: str, timeout: float = DEADLINE_S, interval: float = 0.01) -> float:
    """Poll ``pred`` (synchronously) until true; returns the seconds it took."""
    start = time.monotonic()
    while not pred():
        if time.monotonic() - start > timeout:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(interval)
    return time.monotonic() - start


async def poll(pred: Callable[[], Union[bool, Awaitable[bool]]], what: str, timeout: float = DEADLINE_S, interval: float = 0.01) -> float:
    """Poll ``pred`` on the event loop until true; returns the seconds it took."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    while True:
        value = pred()
        if not isinstance(value, bool):
            value = await value
        if value:
            return loop.time() - start
        if loop.time() - start > timeout:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        await asyncio.sleep(interval)


def all_gone(pids: Iterable[int]) -> bool:
    return not any(pid_alive(p) for p in pids)


class GatewayTestCase(unittest.IsolatedAsyncioTestCase):
    """Base class: ``self.bin`` is the binary; gateways in ``self.gateways`` are closed after each test."""

    #: IsolatedAsyncioTestCase runs its loop in debug mode, which records a
    #: traceback for every task and future: right for most tests, but it
    #: makes the load tests measure asyncio's bookkeeping instead of the client.
    loop_debug = True

    def setUp(self) -> None:
        self.bin = gateway_bin()
        self.gateways: List[object] = []

    async def asyncSetUp(self) -> None:
        asyncio.get_running_loop().set_debug(self.loop_debug)

    async def asyncTearDown(self) -> None:
        for gw in self.gateways:
            close = getattr(gw, "close")
            try:
                await asyncio.wait_for(close(grace=5), DEADLINE_S)
            except Exception as exc:  # report, but do not mask the test's own failure
                print(f"teardown: close failed: {exc!r}", file=sys.stderr)

    async def start(self, **kwargs: object) -> "Gateway":
        from tui_gateway_client import Gateway

        kwargs.setdefault("command", self.bin)
        gw = await Gateway.start(**kwargs)  # type: ignore[arg-type]
        self.gateways.append(gw)
        return gw


if False:  # pragma: no cover  (for type checkers only)
    from tui_gateway_client import Gateway
