#!/usr/bin/env python3
"""A fixture backend for the bridge tests: newline-delimited JSON-RPC 2.0 on
stdio, standard library only, behaviour chosen by flags and methods.

It answers with the bytes it was sent wherever that matters: ids and params
are cut out of the request line as raw text and echoed unchanged, so the
tests can tell whether the gateway in between changed a single byte.

Flags:
  --no-ready          never send gateway.ready
  --ready-delay S     send it after S seconds
  --no-read           never read stdin (after the ready)
  --ignore-term       ignore SIGTERM
  --no-batches        answer a batch with one -32600 error, as some backends do
  --junk-at-start     print a junk line before the ready
  --exit-at-start N   exit with code N before the ready

Methods:
  echo                result: the params, as raw bytes
  process.list        result: {"from": "backend"}
  events              params {count, session_id, type, unit}: count streaming
                      events, then message.complete, then the answer
  ask_client          sends the client a request and answers with its result
  crash               exits with code 3 at once (params {code} to choose)
  slow                sleeps params {ms}, then answers
  junk                writes junk, a 20 MiB line and a non-object JSON line,
                      then one event, then answers
  spawn_grandchild    forks a grandchild that sleeps, holding stdout; answers its pid
  stderr              writes params {lines} lines to stderr
  notify              sends params {count} notifications, in order
  cwd                 result: its working directory
  hold                never answers (the request stays pending)
  handled             result: how many messages it has handled, this one included
  later               answers only when release is called
  release             answers every held "later" request in one write, then itself
  blob                result: a string of params {bytes} x's
"""

import json
import os
import signal
import subprocess
import sys
import time

OUT = sys.stdout.buffer
ARGS = sys.argv[1:]


def flag(name):
    return name in ARGS


def value(name, default):
    if name in ARGS:
        return ARGS[ARGS.index(name) + 1]
    return default


def write(line):
    if isinstance(line, str):
        line = line.encode()
    OUT.write(line + b"\n")
    OUT.flush()


def skip_value(text, i):
    """Index just past the JSON value starting at text[i]."""
    depth = 0
    in_string = False
    while i < len(text):
        c = text[i]
        if in_string:
            if c == "\\":
                i += 1
            elif c == '"':
                in_string = False
                if depth == 0:
                    return i + 1
        elif c == '"':
            in_string = True
        elif c in "[{":
            depth += 1
        elif c in "]}":
            if depth == 0:
                return i  # the end of a number or literal before a closing bracket
            depth -= 1
            if depth == 0:
                return i + 1
        elif depth == 0 and c == ",":
            return i
        i += 1
    return i


def raw_fields(text):
    """The top-level members of a JSON object, as raw text: {key: raw}."""
    fields = {}
    i = text.index("{") + 1
    while True:
        while text[i] in " \t\r\n,":
            i += 1
        if text[i] == "}":
            return fields
        end = skip_value(text, i)
        key = json.loads(text[i:end])
        i = end
        while text[i] in " \t\r\n:":
            i += 1
        end = skip_value(text, i)
        fields[key] = text[i:end].strip()
        i = end


def result(raw_id, raw_result):
    return '{"jsonrpc":"2.0","id":%s,"result":%s}' % (raw_id, raw_result)


def error(raw_id, code, message):
    return '{"jsonrpc":"2.0","id":%s,"error":{"code":%d,"message":%s}}' % (
        raw_id, code, json.dumps(message))


def event(event_type, payload, extra=""):
    return '{"jsonrpc":"2.0","method":"event","params":{"type":%s%s,"payload":%s}}' % (
        json.dumps(event_type), extra, json.dumps(payload, separators=(",", ":")))


HANDLED = 0
LATER = []


def handle(text, replies):
    """Handles one message; appends its answer (if any) to replies."""
    global HANDLED
    HANDLED += 1
    msg = json.loads(text)
    raw = raw_fields(text)
    method = msg.get("method")
    raw_id = raw.get("id")
    params = msg.get("params") or {}
    if method is None:
        # A response from the client: only ask_client waits for one, inline.
        return
    if method == "echo":
        answer = result(raw_id, raw.get("params", "null"))
    elif method == "process.list":
        answer = result(raw_id, '{"from":"backend"}')
    elif method == "events":
        extra = ',"session_id":%s' % json.dumps(params.get("session_id", "s1"))
        unit = params.get("unit", "x")
        for _ in range(params.get("count", 1)):
            write(event(params.get("type", "message.delta"), {"text": unit}, extra))
        write(event("message.complete", {"done": True}, extra))
        answer = result(raw_id, '{"sent":%d}' % params.get("count", 1))
    elif method == "ask_client":
        write('{"jsonrpc":"2.0","id":"srv-1","method":"client.confirm","params":{"q":"ok?"}}')
        line = sys.stdin.readline()
        reply = raw_fields(line)
        answer = result(raw_id, '{"client_said":%s}' % reply.get("result", "null"))
    elif method == "crash":
        os._exit(params.get("code", 3))
    elif method == "slow":
        time.sleep(params.get("ms", 100) / 1000)
        answer = result(raw_id, '{"slept":%d}' % params.get("ms", 100))
    elif method == "junk":
        write("this is not json")
        OUT.write(b"x" * (20 * 1024 * 1024) + b"\n")
        write("[1,2,3]")
        write("42")
        write(event("after.junk", {"ok": True}))
        answer = result(raw_id, '{"junk":true}')
    elif method == "spawn_grandchild":
        child = subprocess.Popen(
            ["sleep", "1000"], stdout=OUT.fileno(), start_new_session=params.get("new_session", False))
        answer = result(raw_id, '{"pid":%d}' % child.pid)
    elif method == "stderr":
        for i in range(params.get("lines", 1)):
            sys.stderr.write("backend stderr line %d\n" % i)
        sys.stderr.flush()
        answer = result(raw_id, "true")
    elif method == "cwd":
        answer = result(raw_id, json.dumps(os.getcwd()))
    elif method == "hold":
        return
    elif method == "later":
        LATER.append(raw_id)
        return
    elif method == "release":
        OUT.write(b"".join((result(i, '"released"') + "\n").encode() for i in LATER))
        OUT.flush()
        LATER.clear()
        answer = result(raw_id, "true")
    elif method == "blob":
        answer = result(raw_id, '"' + "x" * params.get("bytes", 1) + '"')
    elif method == "handled":
        answer = result(raw_id, str(HANDLED))
    elif method == "notify":
        for i in range(params.get("count", 1)):
            write('{"jsonrpc":"2.0","method":"note","params":{"n":%d}}' % i)
        answer = result(raw_id, "true")
    else:
        answer = error(raw_id, -32601, "no method " + str(method))
    if raw_id is not None:
        replies.append(answer)


def main():
    if flag("--ignore-term"):
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    if flag("--junk-at-start"):
        write("starting up...")
    if flag("--exit-at-start"):
        sys.stderr.write("fixture: failing at start\n")
        sys.exit(int(value("--exit-at-start", "1")))
    if not flag("--no-ready"):
        time.sleep(float(value("--ready-delay", "0")))
        write('{"jsonrpc":"2.0","method":"event","params":{"type":"gateway.ready","payload":{"backend":"fixture","skin":{"z":1,"a":2}}}}')
    if flag("--no-read"):
        while True:
            time.sleep(1000)
    for line in sys.stdin:
        text = line.strip()
        if not text:
            continue
        if text.startswith("["):
            if flag("--no-batches"):
                write(error("null", -32600, "batches are not supported"))
                continue
            replies = []
            members = json.loads(text)
            # Cut each member's raw text out of the array.
            i, inner = 1, []
            for _ in members:
                while text[i] in " \t,":
                    i += 1
                end = skip_value(text, i)
                inner.append(text[i:end])
                i = end
            for member in inner:
                handle(member, replies)
            if replies:
                write("[" + ",".join(replies) + "]")
            continue
        replies = []
        handle(text, replies)
        for r in replies:
            write(r)


if __name__ == "__main__":
    main()
