// Issue 10, test 2: 10,000 concurrent requests all resolve with the right
// results (ids matched, none lost), and the client's memory stays flat.

import assert from "node:assert/strict";
import { test } from "node:test";
import v8 from "node:v8";
import vm from "node:vm";
import { Gateway, RpcError } from "../index.js";
import { gatewayBin, mib } from "../test-support/harness.js";

const BIN = gatewayBin();
const N = 10_000;
const ROUNDS = 5;
/** Heap growth allowed between the first round and the last, after GC.
 *  Measured without a leak, heapUsed after GC wanders between about 4.5 and
 *  8.5 MiB from round to round (20 rounds), with no trend. A leak of one
 *  pending entry (closure, promise, timer, frame: several hundred bytes) per
 *  request would add 40,000 of them over the 4 later rounds: 8 MiB catches
 *  any leak above about 200 bytes per request without flaking on the noise. */
const HEAP_GROWTH_LIMIT = 8 * 1024 * 1024;

v8.setFlagsFromString("--expose-gc");
const gc = vm.runInNewContext("gc");

/**
 * One round: N requests in flight at once, of three kinds whose answers
 * differ per request, so a mismatched id would be caught:
 * - gateway.ping -> {ok: true}
 * - an unknown method "probe.<i>" -> -32601 naming that method
 * - process.signal for proc 1000000+i -> -32602 naming that proc
 */
async function round(gw) {
  const calls = [];
  for (let i = 0; i < N; i++) {
    switch (i % 3) {
      case 0:
        calls.push(gw.request("gateway.ping").then((r) => assert.deepEqual(r, { ok: true })));
        break;
      case 1:
        calls.push(
          gw.request(`probe.${i}`).then(
            () => assert.fail(`probe.${i} resolved`),
            (e) => {
              assert.ok(e instanceof RpcError, String(e));
              assert.equal(e.code, -32601);
              assert.equal(e.message, `Method not found: probe.${i}`);
            },
          ),
        );
        break;
      default:
        calls.push(
          gw.request("process.signal", { proc: 1_000_000 + i, signal: "SIGTERM" }).then(
            () => assert.fail(`signal ${i} resolved`),
            (e) => {
              assert.equal(e.code, -32602);
              assert.match(e.message, new RegExp(`unknown proc ${1_000_000 + i}\\b`));
            },
          ),
        );
    }
  }
  assert.equal(gw.pendingCount, N, "every request is pending at once");
  await Promise.all(calls);
  assert.equal(gw.pendingCount, 0, "no pending entry left behind");
}

test("10,000 concurrent requests resolve with their own results; memory stays flat", async (t) => {
  const gw = await Gateway.start({ command: BIN });
  try {
    const times = [];
    const heaps = [];
    for (let r = 0; r < ROUNDS; r++) {
      const t0 = performance.now();
      await round(gw);
      times.push(performance.now() - t0);
      gc();
      gc();
      heaps.push(process.memoryUsage().heapUsed);
    }
    const stats = await gw.stats();
    assert.equal(stats.parse_errors + stats.invalid_requests, 0);
    assert.ok(stats.frames_in >= N * ROUNDS);
    const growth = heaps.at(-1) - heaps[0];
    t.diagnostic(
      `rounds of ${N}: ${times.map((x) => x.toFixed(0)).join(", ")} ms; ` +
        `heapUsed after GC per round: ${heaps.map((h) => mib(h)).join(", ")} MiB; ` +
        `growth first->last ${(growth / 1024).toFixed(0)} KiB; rss ${mib(process.memoryUsage().rss)} MiB; ` +
        `gateway outbound high-water ${stats.outbound_high_water_mark} B`,
    );
    assert.ok(growth < HEAP_GROWTH_LIMIT, `heap grew ${growth} bytes over ${ROUNDS - 1} rounds`);
  } finally {
    await gw.close();
  }
});
