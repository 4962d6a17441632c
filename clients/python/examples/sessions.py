"""The README's session example: work that outlives the UI.

Run it, kill it (Ctrl+C, SIGKILL, close the terminal) while it counts, run
it again: it attaches to the session "work" with the cursor it saved and
goes on where it stopped, with the lines written while no UI ran and none
twice (a line shown but not yet saved comes again). It ends the session
when the count is done.
"""

import asyncio
import json
import os

from tui_gateway_client import Gateway, ProcessOutputPayload

CURSOR = "work.cursor"


async def main() -> None:
    saved = None
    if os.path.exists(CURSOR):  # a UI that came back: where it was
        with open(CURSOR) as f:
            saved = json.load(f)
    gw = await (Gateway.attach("work", saved["frames_received"], saved["epoch"]) if saved else Gateway.start(session="work"))
    done = asyncio.Event()

    def show(payload: ProcessOutputPayload) -> None:
        print(payload["data"], end="", flush=True)
        with open(CURSOR + ".new", "w") as f:  # after each line shown: where to come back to,
            json.dump(gw.session._asdict() if gw.session else None, f)
        os.replace(CURSOR + ".new", CURSOR)  # replaced whole (the UI may die at any point)

    gw.on("process.output", show)
    gw.on("process.exit", lambda _: done.set())
    if not saved:
        await gw.spawn_process(["sh", "-c", "for i in $(seq 10); do echo $i; sleep 1; done"])
    await done.wait()
    await gw.end()  # the work is done: end the session (close() would leave it running)
    os.remove(CURSOR)


asyncio.run(main())
