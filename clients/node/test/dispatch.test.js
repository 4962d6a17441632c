// The connection object driven in memory by a scripted peer (Gateway.attach
// over PassThrough streams): routing, the no-lost-events guarantee under the
// worst chunking, reports of bad lines, cancellation.

import assert from "node:assert/strict";
import { PassThrough } from "node:stream";
import { describe, test } from "node:test";
import { Gateway, GatewayExited, LineFramer, RequestTimeoutError, RpcError } from "../index.js";
import { RestartPolicy } from "../lib/restart.js";
import { collect } from "../test-support/harness.js";

const READY = {
  jsonrpc: "2.0",
  method: "event",
  params: { type: "gateway.ready", payload: { version: "mem", pid: 1, protocol: 1, methods: [], limits: { shutdown_grace_s: 0.2 } } },
};

const ev = (type, payload) => ({ jsonrpc: "2.0", method: "event", params: { type, payload } });

/** A scripted gateway: reads what the client sends, writes what the test says. */
function fakePeer() {
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
  return {
    toClient,
    fromClient,
    /** The next frame the client sent. */
    next: () => (inbox.length ? Promise.resolve(inbox.shift()) : new Promise((r) => (waiting = r))),
    /** Writes lines (objects are JSON-encoded) as one chunk, or split at `cuts` bytes. */
    send(items, cut = 0) {
      const text = items.map((m) => (typeof m === "string" ? m : JSON.stringify(m)) + "\n").join("");
      const bytes = Buffer.from(text);
      if (!cut) return toClient.write(bytes);
      for (let i = 0; i < bytes.length; i += cut) toClient.write(bytes.subarray(i, i + cut));
    },
  };
}

async function attached(options = {}) {
  const peer = fakePeer();
  peer.send([READY]);
  const gw = await Gateway.attach({ readable: peer.toClient, writable: peer.fromClient, ...options });
  return { gw, peer };
}

describe("dispatch (in memory)", () => {
  test("events that arrive in the same chunk as the spawn response all reach the handle", async () => {
    for (const cut of [0, 1, 3, 17]) {
      const { gw, peer } = await attached();
      const spawning = gw.spawnProcess(["anything"]);
      const req = await peer.next();
      assert.equal(req.method, "process.spawn");
      assert.deepEqual(req.params, { argv: ["anything"] });
      peer.send(
        [
          { jsonrpc: "2.0", id: req.id, result: { proc: 7, pid: 4242 } },
          ev("process.output", { proc: 7, stream: "stdout", data: "one\n" }),
          ev("process.output", { proc: 7, stream: "stderr", data: "two\n" }),
          ev("process.exit", { proc: 7, code: 3, signal: null }),
        ],
        cut,
      );
      const handle = await spawning;
      assert.equal(handle.proc, 7);
      assert.equal(handle.pid, 4242);
      const chunks = await collect(handle);
      assert.deepEqual(chunks, [
        { stream: "stdout", data: "one\n" },
        { stream: "stderr", data: "two\n" },
      ], `cut ${cut}`);
      assert.deepEqual(await handle.exited, { code: 3, signal: null });
      peer.toClient.end();
      await gw.close();
    }
  });

  test("events a peer sends before the spawn response are kept for the handle", async () => {
    const { gw, peer } = await attached();
    const spawning = gw.spawnProcess(["x"], { encoding: "base64" });
    const req = await peer.next();
    peer.send([
      ev("process.output", { proc: 1, stream: "stdout", data: Buffer.from([0, 1, 2]).toString("base64") }),
      ev("process.exit", { proc: 1, code: null, signal: "SIGTERM" }),
      { jsonrpc: "2.0", id: req.id, result: { proc: 1, pid: 9 } },
    ]);
    const handle = await spawning;
    const chunks = await collect(handle);
    assert.deepEqual(chunks.map((c) => [...c.data]), [[0, 1, 2]]);
    assert.deepEqual(await handle.exited, { code: null, signal: "SIGTERM" });
    peer.toClient.end();
    await gw.close();
  });

  test("exited waits until the last chunk was read", async () => {
    const { gw, peer } = await attached();
    const spawning = gw.spawnProcess(["x"]);
    const req = await peer.next();
    peer.send([
      { jsonrpc: "2.0", id: req.id, result: { proc: 1, pid: 9 } },
      ev("process.output", { proc: 1, stream: "stdout", data: "a" }),
      ev("process.exit", { proc: 1, code: 0, signal: null }),
    ]);
    const handle = await spawning;
    let exitedSeen = false;
    handle.exited.then(() => (exitedSeen = true));
    await new Promise((r) => setImmediate(r));
    assert.equal(exitedSeen, false, "a chunk is still unread");
    const it = handle[Symbol.asyncIterator]();
    assert.deepEqual(await it.next(), { value: { stream: "stdout", data: "a" }, done: false });
    assert.deepEqual(await it.next(), { value: undefined, done: true });
    await handle.exited;
    peer.toClient.end();
    await gw.close();
  });

  test("lines() joins chunks per stream and keeps a last partial line until the end", async () => {
    const { gw, peer } = await attached();
    const spawning = gw.spawnProcess(["x"]);
    const req = await peer.next();
    const out = (stream, data) => ev("process.output", { proc: 1, stream, data });
    peer.send([
      { jsonrpc: "2.0", id: req.id, result: { proc: 1, pid: 9 } },
      out("stdout", "he"),
      out("stderr", "warn"),
      out("stdout", "llo\r\nwor"),
      out("stderr", "ing\n"),
      out("stdout", "ld\n\nlast"),
      ev("process.exit", { proc: 1, code: 0, signal: null }),
    ]);
    const handle = await spawning;
    assert.deepEqual(await collect(handle.lines()), [
      { stream: "stdout", line: "hello" },
      { stream: "stderr", line: "warning" },
      { stream: "stdout", line: "world" },
      { stream: "stdout", line: "" },
      { stream: "stdout", line: "last" },
    ]);
    peer.toClient.end();
    await gw.close();
  });

  test("bad lines are reported as `malformed`, never thrown, and dispatch goes on", async () => {
    const { gw, peer } = await attached({ maxLineBytes: 256 });
    const malformed = [];
    gw.on("malformed", (m) => malformed.push(m));
    const custom = [];
    gw.on("custom.thing", (p, meta) => custom.push([p, meta.generation]));
    const pinging = gw.request("gateway.ping");
    const req = await peer.next();
    peer.send([
      "this is not json",
      "42",
      `{"jsonrpc":"2.0","method":"event","params":{"type":"custom.thing","payload":{"s":"a\u2028b\u2029c"}}}`,
      JSON.stringify({ big: "q".repeat(1000) }),
      '{"jsonrpc":"2.0","method":"event","params":{}}',
      { jsonrpc: "2.0", id: req.id, result: { ok: true } },
    ], 5);
    assert.deepEqual(await pinging, { ok: true });
    assert.deepEqual(custom, [[{ s: "a\u2028b\u2029c" }, 1]]);
    assert.deepEqual(malformed.map((m) => m.reason.split(":")[0].split(";")[0]), [
      "invalid JSON",
      "not a JSON-RPC message (not an object or array)",
      "line longer than 256 bytes",
      "event without a string params.type",
    ]);
    assert.equal(malformed[0].line, "this is not json");
    peer.toClient.write('{"unterminated":');
    peer.toClient.end();
    await gw.close();
    assert.match(malformed.at(-1).reason, /truncated frame/);
  });

  test("timeouts and aborts forget the call; a late answer is `unmatched`", async () => {
    const { gw, peer } = await attached();
    const unmatched = [];
    gw.on("unmatched", (m) => unmatched.push(m));
    const t = gw.request("slow.method", { a: 1 }, { timeout: 20 });
    const first = await peer.next();
    await assert.rejects(t, (e) => e instanceof RequestTimeoutError && e.method === "slow.method");
    assert.equal(gw.pendingCount, 0);

    const ac = new AbortController();
    const a = gw.request("other", undefined, { abortSignal: ac.signal });
    const second = await peer.next();
    assert.equal("params" in second, false, "absent params are not sent");
    ac.abort(new Error("user pressed Esc"));
    await assert.rejects(a, /user pressed Esc/);
    assert.equal(gw.pendingCount, 0);
    await assert.rejects(gw.request("x", {}, { abortSignal: ac.signal }), /user pressed Esc/);
    await assert.rejects(gw.request("x", {}, { signal: ac.signal }), (e) => e instanceof TypeError && /abortSignal/.test(e.message));

    peer.send([{ jsonrpc: "2.0", id: first.id, result: 1 }, { jsonrpc: "2.0", id: null, error: { code: -32700, message: "Parse error" } }]);
    const p = gw.ping();
    const third = await peer.next();
    peer.send([{ jsonrpc: "2.0", id: third.id, error: { code: -32001, message: "busy", data: { limit: 3 } } }]);
    await assert.rejects(p, (e) => e instanceof RpcError && e.code === -32001 && e.data.limit === 3 && e.method === "gateway.ping");
    assert.deepEqual(unmatched.map((m) => m.id), [first.id, null]);
    peer.toClient.end();
    await gw.close();
  });

  test("batch: one frame out, answers matched by id whatever their order", async () => {
    const { gw, peer } = await attached();
    const b = gw.batch([{ method: "a" }, { method: "note", params: [1], notify: true }, { method: "b", params: { x: 1 } }]);
    const frame = await peer.next();
    assert.ok(Array.isArray(frame));
    assert.equal(frame.length, 3);
    assert.equal("id" in frame[1], false);
    peer.send([[
      { jsonrpc: "2.0", id: frame[2].id, error: { code: -32601, message: "Method not found: b" } },
      { jsonrpc: "2.0", id: frame[0].id, result: "A" },
    ]]);
    const [ra, rn, rb] = await b;
    assert.deepEqual(ra, { ok: true, result: "A" });
    assert.equal(rn, null);
    assert.equal(rb.ok, false);
    assert.equal(rb.error.code, -32601);
    peer.toClient.end();
    await gw.close();
  });

  test("the end of the stream rejects pending calls and process handles with GatewayExited", async () => {
    const { gw, peer } = await attached();
    const exits = [];
    gw.on("exit", (e) => exits.push(e));
    const spawning = gw.spawnProcess(["x"]);
    const req = await peer.next();
    peer.send([{ jsonrpc: "2.0", id: req.id, result: { proc: 1, pid: 2 } }, ev("process.output", { proc: 1, stream: "stdout", data: "partial" })]);
    const handle = await spawning;
    const pending = gw.ping();
    await peer.next();
    peer.toClient.end();
    await assert.rejects(pending, GatewayExited);
    const chunks = [];
    await assert.rejects(async () => {
      for await (const c of handle) chunks.push(c);
    }, GatewayExited);
    assert.deepEqual(chunks, [{ stream: "stdout", data: "partial" }], "output before the loss is still delivered");
    await assert.rejects(handle.exited, GatewayExited);
    await assert.rejects(gw.ping(), GatewayExited);
    assert.equal(await gw.notify("x"), false);
    assert.equal(exits.length, 1);
    await gw.close();
    assert.equal(exits.length, 1, "exit fires once");
  });
});

describe("RestartPolicy", () => {
  test("never restarts by default, nor after exit 0 or 64", () => {
    assert.equal(new RestartPolicy(undefined).wantsRestart(3, null, 0), false);
    const p = new RestartPolicy("on-failure");
    assert.equal(p.wantsRestart(0, null, 0), false);
    assert.equal(p.wantsRestart(64, null, 0), false);
    assert.equal(p.wantsRestart(null, "SIGKILL", 0), true);
    assert.equal(p.wantsRestart(70, null, 0), true);
    assert.throws(() => new RestartPolicy({ policy: "always" }), /restart.policy/);
  });

  test("backoff grows by factor up to maxDelay, gives up after maxRestarts, and a stable run resets it", () => {
    const p = new RestartPolicy({ policy: "on-failure", initialDelay: 100, factor: 3, maxDelay: 1000, maxRestarts: 4, stableAfter: 5000 });
    assert.deepEqual([p.nextDelay(), p.nextDelay(), p.nextDelay(), p.nextDelay(), p.nextDelay()], [100, 300, 900, 1000, null]);
    assert.equal(p.wantsRestart(1, null, 10), false, "out of attempts");
    assert.equal(p.wantsRestart(1, null, 5000), true, "a gateway that ran 5 s resets the count");
    assert.equal(p.nextDelay(), 100);
  });
});
