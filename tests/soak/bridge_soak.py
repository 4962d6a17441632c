#!/usr/bin/env python3
"""The bridge soak: a long run against a backend that answers, delays,
reorders, refuses batches, crashes and restarts (chaos_backend.py), under a
client that sends random singles and batches and pauses reading. Not run by
CI (it takes as long as you ask); run it before changing the bridge:

    cargo build --release
    python3 tests/soak/bridge_soak.py --minutes 30 [--gateway target/release/tui-gateway]

It asserts, and reports: every request answered exactly once (the backend's
answer, -32001, -32002 or -32000), one array per batch, frames_refused 0,
the gateway's peak RSS under 32 MiB, exit 0. Each backend lives 10-40 s;
the gateway restarts it (--backend-restart always, at most 5 a minute, then
--keep-running answers -32002 until the next window), and half the runs'
backends refuse batches.
"""

import argparse
import json
import os
import random
import subprocess
import sys
import threading
import time
from collections import Counter

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))


def vm_hwm(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return 0
    return 0


def run(minutes, gateway, refuse, seed):
    rng = random.Random(seed)
    env = dict(os.environ, CHAOS_REFUSE_BATCHES="1" if refuse else "0")
    argv = [gateway, "--backend-ready", "none", "--backend-restart", "always", "--keep-running",
            "--outbound-hard-limit", "16MiB", "--", sys.executable, os.path.join(HERE, "chaos_backend.py")]
    gw = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env)
    lock = threading.Lock()
    sent = set()          # request ids sent
    batches = {}          # batch number -> sorted ids
    answers = Counter()   # id -> answers seen
    codes = Counter()     # error code (or "result") -> count
    arrays = []           # sorted ids of each array received
    stats_reply = {}
    done_reading = threading.Event()
    stop_sending = time.monotonic() + minutes * 60
    peak = [0]

    def reader():
        pause_until = 0.0
        for line in gw.stdout:
            now = time.monotonic()
            if now < pause_until:
                time.sleep(pause_until - now)
            if rng.random() < 0.0005:
                pause_until = time.monotonic() + rng.uniform(0.5, 3.0)  # a slow UI
            msg = json.loads(line)
            members = msg if isinstance(msg, list) else [msg]
            with lock:
                if isinstance(msg, list):
                    arrays.append(sorted(m["id"] for m in msg if isinstance(m.get("id"), int)))
                for m in members:
                    if m.get("id") == "stats":
                        stats_reply.update(m.get("result", {}))
                        continue
                    if "id" not in m or "method" in m:
                        continue
                    answers[m["id"]] += 1
                    codes[m["error"]["code"] if "error" in m else "result"] += 1
        done_reading.set()

    threading.Thread(target=reader, daemon=True).start()
    next_id = 0
    batch_no = 0
    while time.monotonic() < stop_sending:
        lines = []
        for _ in range(rng.randint(1, 50)):
            if rng.random() < 0.2:
                members, ids = [], []
                for _ in range(rng.randint(1, 8)):
                    method = rng.choice(("app.work", "app.work", "gateway.ping", "app.note"))
                    if method == "app.note":
                        members.append({"jsonrpc": "2.0", "method": method})
                        continue
                    members.append({"jsonrpc": "2.0", "id": next_id, "method": method})
                    ids.append(next_id)
                    next_id += 1
                with lock:
                    sent.update(ids)
                    if ids:
                        batches[batch_no] = sorted(ids)
                batch_no += 1
                lines.append(json.dumps(members))
            else:
                method = rng.choice(("app.work", "app.work", "app.work", "gateway.ping"))
                with lock:
                    sent.add(next_id)
                lines.append(json.dumps({"jsonrpc": "2.0", "id": next_id, "method": method}))
                next_id += 1
        gw.stdin.write(("\n".join(lines) + "\n").encode())
        gw.stdin.flush()
        peak[0] = max(peak[0], vm_hwm(gw.pid))
        time.sleep(rng.uniform(0, 0.02))
    # Every request answered before we look: wait (the backend may be restarting).
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        with lock:
            if all(answers[i] >= 1 for i in sent):
                break
        time.sleep(0.2)
    gw.stdin.write(b'{"jsonrpc":"2.0","id":"stats","method":"gateway.stats"}\n')
    gw.stdin.flush()
    deadline = time.monotonic() + 30
    while not stats_reply and time.monotonic() < deadline:
        time.sleep(0.05)
    peak[0] = max(peak[0], vm_hwm(gw.pid))
    gw.stdin.close()
    code = gw.wait(timeout=60)
    done_reading.wait(30)
    with lock:
        missing = [i for i in sent if answers[i] == 0]
        twice = [i for i in sent if answers[i] > 1]
        expected_arrays = sorted(batches.values())
        got_arrays = sorted(arrays)
    report = {
        "refuse_batches": refuse,
        "requests": len(sent),
        "batches": len(batches),
        "answers": dict(codes),
        "missing": len(missing),
        "answered_twice": len(twice),
        "arrays_match": expected_arrays == got_arrays,
        "frames_refused": stats_reply.get("frames_refused"),
        "restarts": stats_reply.get("backend", {}).get("restarts"),
        "junk_lines": stats_reply.get("backend", {}).get("junk_lines"),
        "peak_rss_bytes": peak[0],
        "exit": code,
    }
    print(json.dumps(report), flush=True)
    ok = (not missing and not twice and expected_arrays == got_arrays
          and stats_reply.get("frames_refused") == 0 and peak[0] < 32 * 1024 * 1024 and code == 0)
    return ok


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--minutes", type=float, default=30)
    p.add_argument("--gateway", default=os.path.join(ROOT, "target", "release", "tui-gateway"))
    p.add_argument("--seed", type=int, default=1)
    args = p.parse_args()
    # Half the time with a backend that takes batches, half with one that refuses them.
    half = args.minutes / 2
    results = [run(half, args.gateway, refuse, args.seed + i) for i, refuse in enumerate((False, True))]
    print("soak:", "passed" if all(results) else "FAILED")
    sys.exit(0 if all(results) else 1)


if __name__ == "__main__":
    main()
