"""A UI stand-in for the session tests: a client that streams one command's
output into a file and keeps its cursor beside it, so that the test can kill
it (or its relay) at any moment and a new client can carry on.

    session_client.py --bin B --name S --out OUT --state STATE start CMD...
    session_client.py --bin B --name S --out OUT --state STATE attach [--chain] [--reattach]

start   runs `B --session S` (the session itself), spawns CMD and streams its
        stdout into OUT.
attach  reads STATE, cuts OUT back to the length the cursor covers, and runs
        `B attach S --frames-received N --epoch E` (with --chain: between two
        `cat`s, as ssh would be); it asks process.list first, then streams
        until the command exits, and ends the session (gateway.end).
        --reattach: when the relay's stream ends first, attach again with the
        cursor it has (the test kills the relay).

Every line of the session's stream is counted; the `gateway.attached` event
the relay writes first is not. After each line STATE is replaced (write,
rename) with {frames, out_len, epoch, session_pid, proc, pid, listed,
reattached, done}; OUT is appended before, so a kill between the two leaves
OUT longer than out_len, never shorter.
"""

import argparse
import json
import os
import subprocess
import sys


def save(path, state):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(state, f)
    os.replace(tmp, path)


def send(proc, message):
    proc.stdin.write((json.dumps(message) + "\n").encode())
    proc.stdin.flush()


def relay_argv(args, state):
    return [args.bin, "attach", args.name,
            "--frames-received", str(state["frames"]), "--epoch", state["epoch"]]


class Chain:
    """`cat | RELAY | cat`, as an ssh session would stand between the client
    and the relay: this process holds only the first cat's stdin and the last
    cat's stdout, so the relay's death is an EOF here."""

    def __init__(self, argv):
        self.head = subprocess.Popen(["cat"], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        self.relay = subprocess.Popen(argv, stdin=self.head.stdout, stdout=subprocess.PIPE)
        self.tail = subprocess.Popen(["cat"], stdin=self.relay.stdout, stdout=subprocess.PIPE)
        self.head.stdout.close()
        self.relay.stdout.close()
        self.stdin = self.head.stdin
        self.stdout = self.tail.stdout

    def wait(self):
        for p in (self.head, self.relay, self.tail):
            p.wait()
        self.returncode = self.relay.returncode


def launch(args, argv):
    if args.mode == "attach" and args.chain:
        return Chain(argv)
    return subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE)


def stream(args, gw, state, out, attaching):
    """Reads the stream until the command exits (True) or the stream ends (False)."""
    while True:
        line = gw.stdout.readline()
        if not line.endswith(b"\n"):
            return False  # the stream ended (a half line is not a frame)
        message = json.loads(line)
        params = message.get("params") or {}
        if message.get("method") == "event" and params.get("type") == "gateway.attached":
            if attaching:
                send(gw, {"jsonrpc": "2.0", "id": "list", "method": "process.list"})
            continue
        state["frames"] += 1
        kind = params.get("type")
        payload = params.get("payload") or {}
        if kind == "gateway.ready" and state["epoch"] is None:
            state["epoch"] = payload["session"]["epoch"]
            state["session_pid"] = payload["pid"]
            send(gw, {"jsonrpc": "2.0", "id": "spawn", "method": "process.spawn",
                      "params": {"argv": args.command}})
        elif message.get("id") == "spawn":
            state["proc"] = message["result"]["proc"]
            state["pid"] = message["result"]["pid"]
        elif message.get("id") == "list":
            state["listed"] = [p["pid"] for p in message["result"]]
        elif kind == "process.output" and payload.get("proc") == state["proc"]:
            data = payload["data"].encode()
            out.write(data)
            out.flush()
            state["out_len"] += len(data)
        elif kind == "process.exit" and payload.get("proc") == state["proc"]:
            state["done"] = True
            save(args.state, state)
            return True
        save(args.state, state)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--bin", required=True)
    parser.add_argument("--name", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--state", required=True)
    sub = parser.add_subparsers(dest="mode", required=True)
    start = sub.add_parser("start")
    start.add_argument("command", nargs="+")
    attach = sub.add_parser("attach")
    attach.add_argument("--chain", action="store_true")
    attach.add_argument("--reattach", action="store_true")
    args = parser.parse_args()

    if args.mode == "start":
        state = {"frames": 0, "out_len": 0, "epoch": None, "session_pid": None,
                 "proc": None, "pid": None, "listed": None, "reattached": 0, "done": False}
        open(args.out, "wb").close()
        argv = [args.bin, "--session", args.name]
    else:
        args.command = None
        with open(args.state) as f:
            state = json.load(f)
        with open(args.out, "r+b") as f:
            f.truncate(state["out_len"])
        argv = relay_argv(args, state)

    with open(args.out, "ab") as out:
        while True:
            gw = launch(args, argv)
            done = stream(args, gw, state, out, args.mode == "attach")
            if done:
                if args.mode == "attach":
                    send(gw, {"jsonrpc": "2.0", "id": "end", "method": "gateway.end"})
                    while gw.stdout.readline():
                        pass
                gw.stdin.close()
                gw.wait()
                return 0
            gw.stdin.close()
            gw.wait()
            if args.mode == "attach" and args.reattach and state["reattached"] < 100:
                # The session may not have seen the old relay go yet (an
                # attach it refuses as busy ends at once): try again.
                state["reattached"] += 1
                save(args.state, state)
                argv = relay_argv(args, state)
                continue
            print(f"session_client: the stream ended before the command exited "
                  f"(relay exit {gw.returncode})", file=sys.stderr)
            return 1


if __name__ == "__main__":
    sys.exit(main())
