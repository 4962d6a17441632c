// The client in front of a bridged backend (tui-gateway -- CMD): the UI
// code is the same; the ready payload is the backend's plus `gateway`,
// every non-gateway.* method is the backend's, and close() leaves nothing.

import assert from "node:assert/strict";
import path from "node:path";
import { test } from "node:test";
import { BRIDGE_READY_TIMEOUT_MS, Gateway, RpcError } from "../index.js";
import { gatewayBin, PACKAGE_DIR, waitGone } from "../test-support/harness.js";

const BIN = gatewayBin();
const FIXTURE = path.join(PACKAGE_DIR, "..", "..", "tests", "backends", "fixture.py");

test("a bridged backend: merged ready, its methods, the gateway's own, and nothing left after close", async () => {
  assert.ok(BRIDGE_READY_TIMEOUT_MS > 15_000, "longer than the gateway's --backend-ready-timeout");
  const gw = await Gateway.start({ command: BIN, args: ["--shutdown-grace", "2", "--", "python3", FIXTURE] });
  let backendPid;
  try {
    const ready = gw.readyPayload;
    assert.equal(ready.backend, "fixture", "the backend's own payload");
    assert.equal(ready.gateway.pid, gw.pid, "the gateway's, in its `gateway` field");
    assert.equal(ready.gateway.limits.shutdown_grace_s, 2);
    assert.deepEqual(await gw.request("echo", { a: [1, "é\n"] }), { a: [1, "é\n"] });
    assert.deepEqual(await gw.request("process.list"), { from: "backend" });
    assert.deepEqual(await gw.ping(), { ok: true });
    await assert.rejects(gw.request("no.such.method"), (e) => e instanceof RpcError && e.code === -32601);
    const info = await gw.info();
    backendPid = info.backend.pid;
    assert.equal(info.backend.state, "running");
  } finally {
    await gw.close();
  }
  await waitGone([backendPid], { what: "the backend" });
});
