"""The README's example: run a command through tui-gateway and print its output."""

import asyncio

from tui_gateway_client import Gateway


async def main() -> None:
    async with Gateway.start() as gw:  # $TUI_GATEWAY_BIN, else tui-gateway on PATH
        print("tui-gateway", gw.ready["version"], "pid", gw.pid)
        proc = await gw.spawn_process(["sh", "-c", "echo hello; echo oops >&2; exit 3"])
        async for item in proc.lines():  # OutputLine: .stream ("stdout", "stderr"), .line
            print(f"[{item.stream}] {item.line}")
        status = await proc.wait()  # after the last line: ProcessExit(code=3, signal=None, cause='exit', ...)
        print("exit", status.code, status.signal)


asyncio.run(main())
