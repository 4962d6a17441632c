#!/usr/bin/env python3
"""A backend for the bridge soak (tests/soak/bridge_soak.py): newline-delimited
JSON-RPC on stdio, standard library only, behaving badly on purpose.

Every request it reads gets an answer (unless it dies first): at once, after a
random delay, or out of order, as a single line or gathered into an array.
It streams deltas, writes a junk line now and then, refuses batches when
CHAOS_REFUSE_BATCHES=1 (with one null-id error, as the hermes gateway does),
and dies after a random 10-40 s, by exit(1) or by SIGKILL on itself.
"""

import json
import os
import random
import select
import signal
import sys
import time

OUT = sys.stdout.buffer
REFUSE = os.environ.get("CHAOS_REFUSE_BATCHES") == "1"
rng = random.Random()
dies_at = time.monotonic() + rng.uniform(10, 40)
held = []  # (due, id) of answers not written yet


def write(obj):
    OUT.write(json.dumps(obj, separators=(",", ":")).encode() + b"\n")


def answer(msg_id):
    return {"jsonrpc": "2.0", "id": msg_id, "result": {"ok": True, "pad": "x" * rng.choice((0, 10, 1000, 50000))}}


def take(msg):
    if "method" not in msg or "id" not in msg:
        return
    roll = rng.random()
    if roll < 0.5:
        write(answer(msg["id"]))
    else:
        held.append((time.monotonic() + rng.uniform(0, 0.3), msg["id"]))


def flush_due(now):
    due = [h for h in held if h[0] <= now]
    if not due:
        return
    rng.shuffle(due)
    for h in due:
        held.remove(h)
    if not REFUSE and len(due) > 1 and rng.random() < 0.5:
        write([answer(i) for _, i in due])
    else:
        for _, i in due:
            write(answer(i))


def main():
    buf = b""
    fd = sys.stdin.fileno()
    while True:
        now = time.monotonic()
        if now >= dies_at:
            OUT.flush()
            if rng.random() < 0.5:
                os._exit(1)
            os.kill(os.getpid(), signal.SIGKILL)
        if rng.random() < 0.05:
            for _ in range(rng.randint(1, 50)):
                write({"jsonrpc": "2.0", "method": "event", "params": {"type": "message.delta", "payload": {"text": "tok "}}})
        if rng.random() < 0.001:
            OUT.write(b"a stray print from the backend\n")
        flush_due(now)
        OUT.flush()
        ready, _, _ = select.select([fd], [], [], 0.01)
        if not ready:
            continue
        chunk = os.read(fd, 65536)
        if not chunk:
            # EOF: answer what is held, then end.
            for _, i in held:
                write(answer(i))
            OUT.flush()
            return
        buf += chunk
        *lines, buf = buf.split(b"\n")
        for line in lines:
            if not line.strip():
                continue
            msg = json.loads(line)
            if isinstance(msg, list):
                if REFUSE:
                    write({"jsonrpc": "2.0", "id": None, "error": {"code": -32600, "message": "batches are not supported"}})
                    continue
                for m in msg:
                    take(m)
            else:
                take(msg)


if __name__ == "__main__":
    main()
