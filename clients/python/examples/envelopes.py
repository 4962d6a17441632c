"""The README's command envelope example: a time limit, an output limit, resource limits and cancel()."""

import asyncio

from tui_gateway_client import Gateway, OutputChunk, ProcessHandle


async def show(proc: "ProcessHandle[str]") -> None:
    async for chunk in proc.chunks():
        render(chunk)


def render(chunk: "OutputChunk[str]") -> None:
    if chunk.skipped is not None:
        print(f"[... {chunk.skipped} bytes skipped ...]")
    if chunk.truncated:
        print(f"[... {chunk.stream} truncated ...]")
    print(chunk.data, end="")


async def main() -> None:
    async with Gateway.start() as gw:
        proc = await gw.spawn_process(
            ["sh", "-c", "seq 1 1000000; sleep 100"],
            timeout_ms=60_000,  # then cancelled: cause "timeout"
            output_limit={"bytes": 4096, "policy": "tail"},  # per stream: "kill" | "truncate" | "tail"
            limits={"memory_bytes": 1 << 30, "cpu_seconds": 60},  # also open_files, processes, file_size_bytes
            cancel=[("SIGINT", 2000), ("SIGTERM", 2000), ("SIGKILL",)],  # its cancel ladder
        )
        reader = asyncio.create_task(show(proc))
        await asyncio.sleep(1.0)  # the user presses Escape...
        result = await proc.cancel([("SIGTERM", 500), ("SIGKILL",)])  # returns once the process tree is gone
        print(f"\nstopped at step {result['step']} ({result['signal']})")
        await reader
        status = await proc.wait()  # ProcessExit(code=None, signal='SIGTERM', cause='cancel', ...)
        print(status.cause, status.duration_ms, status.output_bytes, status.discarded, status.usage)


asyncio.run(main())
