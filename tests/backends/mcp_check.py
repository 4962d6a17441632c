#!/usr/bin/env python3
"""Drive an MCP server with the official MCP Python SDK stdio client.

Usage:
    python mcp_check.py [--timeout SECONDS] -- COMMAND [ARGS...]

e.g. `python mcp_check.py -- python mcp_server.py`, or through the gateway:
`python mcp_check.py -- tui-gateway --transparent -- python mcp_server.py`.

Initializes, lists tools, calls every tool of mcp_server.py, reads its
resource, then prints ONE line of JSON (sorted keys, nothing run-dependent) so
a direct run and a gateway run can be compared byte for byte. Exits 1 with a
message on stderr on any failure. MCP_SERVER_PIDFILE, if set, is passed on to
the server (the SDK spawns servers with a filtered environment).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import string
import sys
from typing import Any

import anyio
import mcp.types as types
from mcp import ClientSession, StdioServerParameters, stdio_client

BIG_SIZE = 5_000_000
BIG_PATTERN = string.ascii_lowercase  # must match mcp_server.py
COUNT_N = 5


class CheckError(Exception):
    """A result that differs from what mcp_server.py must return."""


def expect(cond: bool, what: str) -> None:
    if not cond:
        raise CheckError(what)


def text_of(result: types.CallToolResult, tool: str) -> str:
    """The single text block of a successful tool result."""
    expect(not result.is_error, f"{tool}: tool returned an error: {result.content!r}"[:500])
    expect(len(result.content) == 1, f"{tool}: expected 1 content block, got {len(result.content)}")
    block = result.content[0]
    expect(isinstance(block, types.TextContent), f"{tool}: expected text content, got {type(block).__name__}")
    assert isinstance(block, types.TextContent)
    return block.text


async def run(command: str, args: list[str]) -> dict[str, Any]:
    env = {k: os.environ[k] for k in ("MCP_SERVER_PIDFILE",) if k in os.environ}
    params = StdioServerParameters(command=command, args=args, env=env or None)
    progress: list[list[Any]] = []

    async def on_progress(value: float, total: float | None, message: str | None) -> None:
        progress.append([value, total, message])

    async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
        init = await session.initialize()
        tools = await session.list_tools()
        names = sorted(t.name for t in tools.tools)
        expect(names == ["add", "big", "echo", "slow_count"], f"unexpected tool list {names}")

        echo = text_of(await session.call_tool("echo", {"text": "héllo wörld ✓"}), "echo")
        expect(echo == "héllo wörld ✓", f"echo returned {echo!r}")
        added = text_of(await session.call_tool("add", {"a": 2, "b": 40}), "add")
        expect(added == "42", f"add returned {added!r}")

        counted = text_of(
            await session.call_tool("slow_count", {"n": COUNT_N}, progress_callback=on_progress), "slow_count"
        )
        expect(counted == f"counted {COUNT_N}", f"slow_count returned {counted!r}")
        values = [p[0] for p in progress]
        expect(values == list(range(1, COUNT_N + 1)), f"progress values {values}, want 1..{COUNT_N} in order")

        big = text_of(await session.call_tool("big", {"size": BIG_SIZE}), "big").encode()
        want = (BIG_PATTERN * (BIG_SIZE // len(BIG_PATTERN) + 1))[:BIG_SIZE].encode()
        big_sha = hashlib.sha256(big).hexdigest()
        expect(len(big) == BIG_SIZE, f"big: got {len(big)} bytes, want {BIG_SIZE}")
        expect(big_sha == hashlib.sha256(want).hexdigest(), "big: content differs from the expected pattern")

        res = await session.read_resource("test://greeting")
        res_text = [c.text for c in res.contents if isinstance(c, types.TextResourceContents)]

    return {
        "server": {"name": init.server_info.name, "version": init.server_info.version},
        "protocol_version": init.protocol_version,
        "tools": names,
        "results": {"echo": echo, "add": added, "slow_count": counted},
        "progress": progress,
        "big": {"len": len(big), "sha256": big_sha},
        "resource": res_text,
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--timeout", type=float, default=60.0, help="overall limit in seconds [60]")
    ap.add_argument("server", nargs=argparse.REMAINDER, help="-- COMMAND [ARGS...]")
    ns = ap.parse_args()
    cmd = ns.server[1:] if ns.server[:1] == ["--"] else ns.server
    if not cmd:
        ap.error("missing server command after --")

    async def bounded() -> dict[str, Any]:
        with anyio.fail_after(ns.timeout):
            return await run(cmd[0], cmd[1:])

    try:
        summary = anyio.run(bounded)
    except BaseException as exc:  # noqa: BLE001 - report anything, including exception groups
        if isinstance(exc, (KeyboardInterrupt, SystemExit)):
            raise
        while isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
            exc = exc.exceptions[0]  # anyio task groups wrap the real error
        why = f"no finish within {ns.timeout:g} s" if isinstance(exc, TimeoutError) else str(exc)
        print(f"mcp_check: FAILED: {type(exc).__name__}: {why}", file=sys.stderr)
        return 1
    print(json.dumps(summary, sort_keys=True, ensure_ascii=True, separators=(",", ":")))
    return 0


if __name__ == "__main__":
    sys.exit(main())
