// Issue 10, test 7: requests from the gateway to the client. Until the
// bridge is on main, a fixture (test/fixtures/s2c_backend.py) speaks the
// protocol in the gateway's place, sends requests "gw-N", and reports back
// exactly what the client answered: handled, unhandled (-32601), a handler
// that throws (an error response), one that throws an RpcError (its code).

import assert from "node:assert/strict";
import path from "node:path";
import { test } from "node:test";
import { Gateway, RpcError } from "../index.js";
import { FIXTURES } from "../test-support/harness.js";

const FIXTURE = path.join(FIXTURES, "s2c_backend.py");

test("requests from the gateway: handled, unhandled, throwing", async () => {
  const gw = await Gateway.start({ command: "python3", args: [FIXTURE] });
  try {
    assert.equal(gw.readyPayload.version, "fixture");
    const seen = [];
    gw.onRequest("ui.confirm", async (params, ctx) => {
      seen.push([ctx.id, ctx.method, ctx.generation]);
      await new Promise((r) => setImmediate(r)); // an async handler
      return { confirmed: params.question === "proceed?" };
    });
    gw.onRequest("ui.fail", () => {
      throw new Error("the user said no");
    });
    gw.onRequest("ui.refuse", async () => {
      throw new RpcError(4001, "refused", { why: "test" });
    });
    gw.onRequest("ui.void", () => undefined);
    gw.onRequest("ui.removed", () => "never");
    gw.offRequest("ui.removed");

    const malformed = [];
    const custom = [];
    const notes = [];
    gw.on("malformed", (m) => malformed.push(m.line));
    gw.on("custom.thing", (p) => custom.push(p));
    gw.on("notification", (method, params) => notes.push([method, params]));

    const started = await gw.request("fixture.start", {
      noise: true,
      requests: [
        { method: "ui.confirm", params: { question: "proceed?" } },
        { method: "ui.unknown", params: [1, 2] },
        { method: "ui.fail" },
        { method: "ui.refuse" },
        { method: "ui.void" },
        { method: "ui.removed" },
      ],
    });
    assert.deepEqual(started, { sent: 6 });
    const { responses } = await gw.request("fixture.report", undefined, { timeout: 10_000 });

    assert.deepEqual(responses["gw-1"], { jsonrpc: "2.0", id: "gw-1", result: { confirmed: true } });
    assert.deepEqual(responses["gw-2"], { jsonrpc: "2.0", id: "gw-2", error: { code: -32601, message: "Method not found: ui.unknown" } });
    assert.deepEqual(responses["gw-3"], { jsonrpc: "2.0", id: "gw-3", error: { code: -32000, message: "the user said no", data: { name: "Error" } } });
    assert.deepEqual(responses["gw-4"], { jsonrpc: "2.0", id: "gw-4", error: { code: 4001, message: "refused", data: { why: "test" } } });
    assert.deepEqual(responses["gw-5"], { jsonrpc: "2.0", id: "gw-5", result: null });
    assert.equal(responses["gw-6"].error.code, -32601);
    assert.deepEqual(seen, [["gw-1", "ui.confirm", 1]]);

    assert.deepEqual(malformed, ["this line is not JSON"], "a bad line is reported, not thrown");
    assert.deepEqual(custom, [{ s: "a\u2028b\u2029c" }], "an unknown event type passes through untyped, U+2028 intact");
    assert.deepEqual(notes, [["backend.log", { level: "info" }]]);
    await assert.rejects(gw.request("fixture.nothing"), (e) => e instanceof RpcError && e.code === -32601);
  } finally {
    const exit = await gw.close();
    assert.equal(exit.code, 0);
  }
});
