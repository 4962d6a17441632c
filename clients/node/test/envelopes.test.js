// Command envelopes (docs/process.md, "Command envelopes"): the spawn options
// timeoutMs, outputLimit, limits and cancel, ProcessHandle.cancel(), the exit's
// cause / duration_ms / output_bytes / discarded, and the output markers
// (truncated, skipped). First the wire mapping against a scripted peer, then
// the behaviour against the real gateway.

import assert from "node:assert/strict";
import { PassThrough } from "node:stream";
import { after, before, describe, test } from "node:test";
import { Gateway, LineFramer, RequestTimeoutError } from "../index.js";
import { collect, gatewayBin, isRunning } from "../test-support/harness.js";

const READY = {
  jsonrpc: "2.0",
  method: "event",
  params: { type: "gateway.ready", payload: { version: "mem", pid: 1, protocol: 1, methods: [], limits: { shutdown_grace_s: 0.2 } } },
};
const ev = (type, payload) => ({ jsonrpc: "2.0", method: "event", params: { type, payload } });

/** A scripted gateway over PassThrough streams: `next()` is the client's next frame. */
async function attached(options = {}) {
  const toClient = new PassThrough();
  const fromClient = new PassThrough();
  const inbox = [];
  let waiting = null;
  const framer = new LineFramer({
    onLine: (l) => {
      const msg = JSON.parse(l.toString("utf8"));
      if (waiting) {
        const w = waiting;
        waiting = null;
        w(msg);
      } else inbox.push(msg);
    },
  });
  fromClient.on("data", (c) => framer.push(c));
  const peer = {
    next: () => (inbox.length ? Promise.resolve(inbox.shift()) : new Promise((r) => (waiting = r))),
    send: (items) => toClient.write(items.map((m) => JSON.stringify(m) + "\n").join("")),
    end: () => toClient.end(),
  };
  peer.send([READY]);
  const gw = await Gateway.attach({ readable: toClient, writable: fromClient, ...options });
  return { gw, peer };
}

/** Spawns through the scripted peer; returns the handle and the spawn params the client sent. */
async function spawnVia(gw, peer, argv, options) {
  const spawning = gw.spawnProcess(argv, options);
  const req = await peer.next();
  assert.equal(req.method, "process.spawn");
  peer.send([{ jsonrpc: "2.0", id: req.id, result: { proc: 1, pid: 4242 } }]);
  return { handle: await spawning, params: req.params };
}

describe("command envelopes on the wire (scripted peer)", () => {
  test("spawn options map to timeout_ms, output_limit, limits (snake_case) and cancel", async () => {
    const { gw, peer } = await attached();
    const { params } = await spawnVia(gw, peer, ["make"], {
      timeoutMs: 300,
      outputLimit: { bytes: 1000, policy: "truncate" },
      limits: { memoryBytes: 1 << 30, cpuSeconds: 60, openFiles: 256, processes: 100, fileSizeBytes: 1 << 20 },
      cancel: [["SIGINT", 100], ["SIGTERM", 200], ["SIGKILL"]],
    });
    assert.deepEqual(params, {
      argv: ["make"],
      timeout_ms: 300,
      output_limit: { bytes: 1000, policy: "truncate" },
      limits: { memory_bytes: 1 << 30, cpu_seconds: 60, open_files: 256, processes: 100, file_size_bytes: 1 << 20 },
      cancel: [["SIGINT", 100], ["SIGTERM", 200], ["SIGKILL"]],
    });
    // Members left undefined are not sent; a step's undefined wait is dropped, not sent as null.
    const { params: sparse } = await spawnVia(gw, peer, ["x"], {
      limits: { cpuSeconds: 5, memoryBytes: undefined },
      cancel: [["SIGTERM", 0], [9, undefined]],
    });
    assert.deepEqual(sparse, { argv: ["x"], limits: { cpu_seconds: 5 }, cancel: [["SIGTERM", 0], [9]] });
    await assert.rejects(gw.spawnProcess(["x"], { cancel: "SIGKILL" }), TypeError);
    peer.end();
    await gw.close();
  });

  test("cancel() sends process.cancel with its ladder and resolves with the answer", async () => {
    const { gw, peer } = await attached();
    const { handle } = await spawnVia(gw, peer, ["x"], {});
    const cancelling = handle.cancel([["SIGTERM", 100], ["SIGKILL"]]);
    const req = await peer.next();
    assert.equal(req.method, "process.cancel");
    assert.deepEqual(req.params, { proc: 1, ladder: [["SIGTERM", 100], ["SIGKILL"]] });
    const answer = { proc: 1, step: 1, signal: "SIGKILL", code: null, exit_signal: "SIGKILL" };
    peer.send([
      ev("process.exit", { proc: 1, code: null, signal: "SIGKILL", cause: "cancel", duration_ms: 120, output_bytes: { stdout: 0, stderr: 0 } }),
      { jsonrpc: "2.0", id: req.id, result: answer },
    ]);
    assert.deepEqual(await cancelling, answer);
    assert.deepEqual(await handle.exited, {
      code: null, signal: "SIGKILL", cause: "cancel", duration_ms: 120, output_bytes: { stdout: 0, stderr: 0 },
    });

    const { handle: other } = await spawnVia(gw, peer, ["y"], {});
    other.cancel().catch(() => {});
    assert.deepEqual((await peer.next()).params, { proc: 1 }, "no ladder: the spawn's, or the default");
    peer.end();
    await gw.close();
  });

  test("a Gateway requestTimeout does not fail a cancel whose ladder is longer", async () => {
    const { gw, peer } = await attached({ requestTimeout: 50 });
    const { handle } = await spawnVia(gw, peer, ["x"], { cancel: [["SIGINT", 100], ["SIGKILL"]] });
    const cancelling = handle.cancel([["SIGTERM", 1000], ["SIGKILL"]]);
    const req = await peer.next();
    // Another call with the same default timeout gives up meanwhile...
    await assert.rejects(gw.ping(), RequestTimeoutError);
    // ...while the cancel (ladder waits + margin) still waits for its answer.
    const answer = { proc: 1, step: 1, signal: "SIGKILL", code: null, exit_signal: "SIGKILL" };
    peer.send([{ jsonrpc: "2.0", id: req.id, result: answer }]);
    assert.deepEqual(await cancelling, answer);
    // An explicit timeout is the caller's choice.
    await assert.rejects(handle.cancel(undefined, { timeout: 20 }), RequestTimeoutError);
    peer.end();
    await gw.close();
  });

  test("exit members, truncated and skipped markers; lines() adds no empty line and never joins across a gap", async () => {
    const { gw, peer } = await attached();
    const { handle } = await spawnVia(gw, peer, ["x"], { outputLimit: { bytes: 8, policy: "tail" } });
    const out = (stream, data, extra = {}) => ev("process.output", { proc: 1, stream, data, ...extra });
    peer.send([
      out("stdout", "one\ntw"),
      out("stderr", "abcdefgh"),
      out("stderr", "", { truncated: true }),
      out("stdout", "ee\nsix\n", { skipped: 11 }),
      ev("process.exit", {
        proc: 1, code: 0, signal: null, cause: "exit", duration_ms: 5,
        output_bytes: { stdout: 24, stderr: 20 }, discarded: { stdout: 11, stderr: 12 },
        usage: { max_rss_bytes: 1024, user_ms: 1, system_ms: 2 },
      }),
    ]);
    assert.deepEqual(await collect(handle.lines()), [
      { stream: "stdout", line: "one" },
      { stream: "stdout", line: "tw" },
      { stream: "stdout", line: "ee", skipped: 11 },
      { stream: "stdout", line: "six" },
      { stream: "stderr", line: "abcdefgh" },
    ]);
    assert.deepEqual(await handle.exited, {
      code: 0, signal: null, cause: "exit", duration_ms: 5,
      output_bytes: { stdout: 24, stderr: 20 }, discarded: { stdout: 11, stderr: 12 },
      usage: { max_rss_bytes: 1024, user_ms: 1, system_ms: 2 },
    });

    const { handle: chunked } = await spawnVia(gw, peer, ["y"], { encoding: "base64" });
    peer.send([
      out("stdout", Buffer.from("ab").toString("base64")),
      out("stdout", "", { truncated: true }),
      ev("process.exit", { proc: 1, code: 0, signal: null }),
    ]);
    const chunks = await collect(chunked);
    assert.deepEqual(chunks.map((c) => [c.data.toString(), c.truncated]), [["ab", undefined], ["", true]]);
    assert.deepEqual(await chunked.exited, { code: 0, signal: null }, "an older gateway's exit: only code and signal");
    peer.end();
    await gw.close();
  });
});

describe("command envelopes against the real gateway", () => {
  const BIN = gatewayBin();
  let gw;
  before(async () => {
    gw = await Gateway.start({ command: BIN });
  });
  after(async () => {
    await gw?.close();
  });

  test("a plain command: cause exit, duration_ms and output_bytes per stream", async () => {
    const h = await gw.spawnProcess(["sh", "-c", "printf hello; printf oops >&2"]);
    const text = (await collect(h)).map((c) => `${c.stream}:${c.data}`).sort();
    assert.deepEqual(text, ["stderr:oops", "stdout:hello"]);
    const exit = await h.exited;
    assert.equal(exit.code, 0);
    assert.equal(exit.signal, null);
    assert.equal(exit.cause, "exit");
    assert.ok(Number.isInteger(exit.duration_ms) && exit.duration_ms >= 0, `duration_ms ${exit.duration_ms}`);
    assert.deepEqual(exit.output_bytes, { stdout: 5, stderr: 4 });
    assert.equal(exit.discarded, undefined, "no output_limit, no discarded");
    assert.equal(exit.usage, undefined, "no limits, no usage");
  });

  test("timeoutMs 300 on sleep 100: cause timeout", async (t) => {
    const t0 = performance.now();
    const h = await gw.spawnProcess(["sleep", "100"], { timeoutMs: 300, output: "ignore" });
    const exit = await h.exited;
    const ms = performance.now() - t0;
    assert.equal(exit.cause, "timeout");
    assert.equal(exit.code, null);
    assert.equal(exit.signal, "SIGINT", "the default ladder's first step ends a sleep");
    assert.ok(exit.duration_ms >= 300, `duration_ms ${exit.duration_ms}`);
    assert.ok(!isRunning(h.pid));
    t.diagnostic(`exit ${JSON.stringify(exit)} seen ${ms.toFixed(0)} ms after the spawn call`);
  });

  test("cancel() with a short ladder on a shell that ignores INT and TERM ends with SIGKILL", async (t) => {
    const h = await gw.spawnProcess(["bash", "-c", 'trap "" INT TERM; sleep 999 & echo $!; wait']);
    const lines = h.lines();
    const sleeper = Number((await lines.next()).value.line); // the trap is set and the child runs
    assert.ok(isRunning(sleeper));
    const t0 = performance.now();
    const result = await h.cancel([["SIGINT", 100], ["SIGTERM", 100], ["SIGKILL"]]);
    const ms = performance.now() - t0;
    assert.deepEqual(result, { proc: h.proc, step: 2, signal: "SIGKILL", code: null, exit_signal: "SIGKILL" });
    assert.ok(ms >= 200, `the ladder's waits were kept (${ms.toFixed(0)} ms)`);
    assert.ok(!isRunning(h.pid) && !isRunning(sleeper), "nothing of the tree is left when cancel() resolves");
    assert.equal((await lines.next()).done, true);
    const exit = await h.exited;
    assert.equal(exit.cause, "cancel");
    assert.equal(exit.signal, "SIGKILL");
    t.diagnostic(`cancel() resolved after ${ms.toFixed(0)} ms with ${JSON.stringify(result)}`);
  });

  test("a requestTimeout shorter than the ladder does not fail cancel()", async () => {
    const short = await Gateway.start({ command: BIN, requestTimeout: 1000 });
    try {
      const h = await short.spawnProcess(["bash", "-c", 'trap "" INT TERM; echo ready; sleep 999 & wait']);
      const lines = h.lines();
      assert.equal((await lines.next()).value.line, "ready");
      const result = await h.cancel([["SIGINT", 800], ["SIGTERM", 800], ["SIGKILL"]]);
      assert.equal(result.signal, "SIGKILL");
      assert.equal((await h.exited).cause, "cancel");
    } finally {
      await short.close();
    }
  });

  test("outputLimit truncate: exactly the first bytes, a truncated marker, no spurious line, discarded counted", async () => {
    const LIMIT = 1000;
    const full = Array.from({ length: 20000 }, (_, i) => `${i + 1}\n`).join(""); // what `seq 1 20000` prints
    const h = await gw.spawnProcess(["seq", "1", "20000"], { outputLimit: { bytes: LIMIT, policy: "truncate" } });
    const chunks = await collect(h);
    const data = chunks.map((c) => c.data).join("");
    assert.equal(data, full.slice(0, LIMIT));
    const markers = chunks.filter((c) => c.truncated);
    assert.equal(markers.length, 1);
    assert.equal(markers[0].data, "");
    assert.equal(chunks.at(-1), markers[0], "nothing after the marker");
    const exit = await h.exited;
    assert.equal(exit.cause, "exit");
    assert.equal(exit.code, 0);
    assert.equal(exit.output_bytes.stdout, full.length);
    assert.equal(exit.discarded.stdout, full.length - LIMIT);

    const again = await gw.spawnProcess(["seq", "1", "20000"], { outputLimit: { bytes: LIMIT, policy: "truncate" } });
    const lines = (await collect(again.lines())).map((l) => l.line);
    assert.deepEqual(lines, full.slice(0, LIMIT).replace(/\n$/, "").split("\n"));
    assert.equal((await again.exited).discarded.stdout, full.length - LIMIT);
  });

  test("outputLimit tail: the head, skipped, then the last bytes; lines() marks the gap", async () => {
    const LIMIT = 1000;
    const full = Array.from({ length: 20000 }, (_, i) => `${i + 1}\n`).join("");
    const h = await gw.spawnProcess(["seq", "1", "20000"], { outputLimit: { bytes: LIMIT, policy: "tail" } });
    const chunks = await collect(h);
    const gapAt = chunks.findIndex((c) => c.skipped !== undefined);
    assert.ok(gapAt > 0, "a chunk carries skipped");
    const head = chunks.slice(0, gapAt).map((c) => c.data).join("");
    const tail = chunks.slice(gapAt).map((c) => c.data).join("");
    assert.equal(head, full.slice(0, LIMIT / 2));
    assert.equal(tail, full.slice(full.length - LIMIT / 2));
    assert.equal(head.length + chunks[gapAt].skipped + tail.length, full.length);
    const exit = await h.exited;
    assert.equal(exit.output_bytes.stdout, full.length);
    assert.equal(exit.discarded.stdout, chunks[gapAt].skipped);

    const again = await gw.spawnProcess(["seq", "1", "20000"], { outputLimit: { bytes: LIMIT, policy: "tail" } });
    const lines = await collect(again.lines());
    const marked = lines.filter((l) => l.skipped !== undefined);
    assert.equal(marked.length, 1);
    assert.equal(marked[0].skipped, full.length - LIMIT);
    assert.equal(lines.at(-1).line, "20000");
    await again.exited;
  });
});
