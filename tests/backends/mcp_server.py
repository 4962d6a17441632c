#!/usr/bin/env python3
"""A small MCP server over stdio, built on the official MCP Python SDK.

Used as a real backend for `tui-gateway --transparent`: run it directly or
behind the gateway and drive it with mcp_check.py; both runs must agree.

Tools: echo(text), add(a, b), slow_count(n) (n progress notifications),
big(size) (a deterministic text result of exactly `size` bytes).
Resource: test://greeting.

If MCP_SERVER_PIDFILE is set, the server appends its pid (one line) to that
file at start, so a test can check afterwards that no server is left running.
"""

from __future__ import annotations

import os
import string

try:  # mcp >= 2: FastMCP was renamed MCPServer
    from mcp.server.mcpserver import Context, MCPServer
except ImportError:  # mcp 1.x
    from mcp.server.fastmcp import Context, FastMCP as MCPServer  # type: ignore[no-redef]

SERVER_NAME = "tui-gateway-test-server"
SERVER_VERSION = "1.0.0"
# Pattern repeated by big(); the check script rebuilds it to verify the result.
BIG_PATTERN = string.ascii_lowercase

server = MCPServer(SERVER_NAME, version=SERVER_VERSION, log_level="WARNING")


@server.tool()
def echo(text: str) -> str:
    """Return `text` unchanged."""
    return text


@server.tool()
def add(a: int, b: int) -> int:
    """Return a + b."""
    return a + b


@server.tool()
async def slow_count(n: int, ctx: Context) -> str:
    """Report progress 1..n (total n), then return 'counted n'."""
    for i in range(1, n + 1):
        await ctx.report_progress(i, n, f"step {i}")
    return f"counted {n}"


@server.tool()
def big(size: int) -> str:
    """Return `size` bytes of the alphabet repeated (ASCII, so bytes == chars)."""
    reps = size // len(BIG_PATTERN) + 1
    return (BIG_PATTERN * reps)[:size]


@server.resource("test://greeting")
def greeting() -> str:
    """A fixed text resource."""
    return "hello from the test server"


def main() -> None:
    pidfile = os.environ.get("MCP_SERVER_PIDFILE")
    if pidfile:
        with open(pidfile, "a", encoding="utf-8") as f:
            f.write(f"{os.getpid()}\n")
    server.run("stdio")


if __name__ == "__main__":
    main()
