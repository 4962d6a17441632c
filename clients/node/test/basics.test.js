// Issue 10, test 1: start, ready payload, ping, info; an unknown method
// rejects with RpcError -32601. Against the real binary (TUI_GATEWAY_BIN).

import assert from "node:assert/strict";
import { test } from "node:test";
import { Gateway, RpcError } from "../index.js";
import { gatewayBin } from "../test-support/harness.js";

const BIN = gatewayBin();

test("start gives the ready payload; ping, info, stats answer; an unknown method is RpcError -32601", async (t) => {
  const t0 = performance.now();
  const gw = await Gateway.start({ command: BIN });
  const startMs = performance.now() - t0;
  try {
    const ready = gw.readyPayload;
    assert.equal(ready.protocol, 1);
    assert.equal(ready.pid, gw.pid, "the ready payload names the process we spawned");
    assert.equal(typeof ready.version, "string");
    for (const m of ["gateway.ping", "gateway.info", "gateway.stats", "process.spawn"]) assert.ok(ready.methods.includes(m), m);
    assert.equal(typeof ready.limits.shutdown_grace_s, "number");
    assert.equal(gw.generation, 1);
    assert.equal(gw.running, true);

    const t1 = performance.now();
    assert.deepEqual(await gw.ping(), { ok: true });
    const pingMs = performance.now() - t1;

    const info = await gw.info();
    assert.equal(info.pid, gw.pid);
    assert.equal(info.version, ready.version);
    assert.deepEqual(info.limits, ready.limits);
    assert.ok(info.services.includes("process"));
    assert.equal(typeof info.uptime_s, "number");

    const caps = await gw.capabilities({ name: "tui-gateway-client", lang: "node" });
    assert.equal(caps.protocol, 1);
    assert.deepEqual((await gw.info()).client, { name: "tui-gateway-client", lang: "node" });

    const stats = await gw.stats();
    assert.ok(stats.frames_in >= 4, `frames_in ${stats.frames_in}`);
    assert.equal(stats.parse_errors, 0, "the client never sent a bad frame");
    assert.equal(stats.invalid_requests, 0);

    await assert.rejects(gw.request("no.such.method", { x: 1 }), (err) => {
      assert.ok(err instanceof RpcError);
      assert.equal(err.code, -32601);
      assert.match(err.message, /no\.such\.method/);
      assert.equal(err.method, "no.such.method");
      return true;
    });
    await assert.rejects(gw.request("process.spawn", { args: ["oops"] }), (err) => err instanceof RpcError && err.code === -32602);
    assert.equal(await gw.notify("gateway.ping"), true);
    assert.deepEqual(await gw.ping(), { ok: true }, "a notification gets no answer, and the next call is still matched");
    assert.equal(gw.pendingCount, 0);
    t.diagnostic(`start to ready ${startMs.toFixed(1)} ms; first ping round trip ${pingMs.toFixed(2)} ms`);
  } finally {
    const exit = await gw.close();
    assert.equal(exit.code, 0);
    assert.equal(exit.exitReason, "stdin EOF");
  }
});
