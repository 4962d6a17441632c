// Issue 10, test 4: the gateway killed with SIGKILL mid-call. The pending
// call rejects with GatewayExited (signal SIGKILL); with the on-failure
// policy the next call succeeds on a new gateway, and no event of the old
// one is delivered after its exit.
//
// "Mid-call" is made deterministic with SIGSTOP: the stopped gateway cannot
// answer the request written to its pipe, then SIGKILL ends it.

import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { Gateway, GatewayClosed, GatewayExited } from "../index.js";
import { gatewayBin, isRunning, waitFor, waitGone } from "../test-support/harness.js";

const BIN = gatewayBin();

/** Stops the gateway, starts a call it cannot answer, then SIGKILLs it. */
function killMidCall(gw) {
  const pid = gw.pid;
  process.kill(pid, "SIGSTOP");
  const call = gw.request("gateway.info");
  assert.equal(gw.pendingCount >= 1, true);
  process.kill(pid, "SIGKILL");
  return call;
}

describe("gateway killed with SIGKILL", () => {
  test("the pending call and the process handles reject with GatewayExited; no child is left running", async (t) => {
    const gw = await Gateway.start({ command: BIN });
    const exits = [];
    gw.on("exit", (e) => exits.push(e));
    const sleeper = await gw.spawnProcess(["sleep", "1000"], { stdin: "null" });
    assert.ok(isRunning(sleeper.pid));
    const gatewayPid = gw.pid;

    const t0 = performance.now();
    const err = await killMidCall(gw).then(() => assert.fail("the call resolved"), (e) => e);
    const rejectMs = performance.now() - t0;
    assert.ok(err instanceof GatewayExited, String(err));
    assert.equal(err.signal, "SIGKILL");
    assert.equal(err.code, null);
    assert.equal(err.pid, gatewayPid);
    assert.match(err.reason, /SIGKILL/);
    assert.match(err.message, /killed by SIGKILL/);
    assert.equal(gw.pendingCount, 0);

    await assert.rejects(sleeper.exited, (e) => e === err);
    // A SIGKILLed gateway runs no shutdown. Either its children die with it
    // (a gateway that sets PR_SET_PDEATHSIG) or the client kills their
    // groups (orphansKilled); either way none is left running.
    const goneMs = await waitGone([sleeper.pid], { what: "the orphaned sleep to be gone" });
    await waitFor(() => exits.length === 1, { what: "the exit event" });
    assert.ok(exits[0].orphansKilled.every((p) => p === sleeper.pid), JSON.stringify(exits[0].orphansKilled));
    assert.equal(exits[0].restarting, false);

    await assert.rejects(gw.ping(), GatewayExited, "later calls fail at once");
    assert.equal((await gw.closed).signal, "SIGKILL");
    assert.equal((await gw.close()).signal, "SIGKILL", "close() after the end is harmless");
    assert.equal(exits.length, 1, "exit fired once");
    t.diagnostic(
      `pending call rejected ${rejectMs.toFixed(1)} ms after SIGKILL; orphan gone after ${goneMs.toFixed(0)} ms more ` +
        `(${exits[0].orphansKilled.length ? "killed by the client" : "already gone: died with the gateway"})`,
    );
  });

  test("on-failure: the next call succeeds on a new gateway; nothing from the old one arrives after its exit", async (t) => {
    const gw = await Gateway.start({ command: BIN, restart: { policy: "on-failure", initialDelay: 20 } });
    try {
      // One log of everything delivered, in order, tagged with its generation.
      const log = [];
      gw.on("event", (type, payload, meta) => log.push({ kind: "event", type, generation: meta.generation }));
      gw.on("stderr", (line, meta) => log.push({ kind: "stderr", generation: meta.generation }));
      gw.on("malformed", (m) => log.push({ kind: "malformed", generation: m.generation }));
      gw.on("exit", (e) => log.push({ kind: "exit", generation: e.generation, restarting: e.restarting, signal: e.signal }));
      const restarts = [];
      gw.on("restart", (r) => restarts.push(r));

      // A child that keeps the old gateway busy emitting events up to the kill.
      const ticker = await gw.spawnProcess(["sh", "-c", "while :; do echo tick; sleep 0.002; done"], { output: "ignore" });
      await waitFor(() => log.filter((e) => e.type === "process.output").length >= 5, { what: "ticks from the first gateway" });
      const oldPid = gw.pid;

      const t0 = performance.now();
      const err = await killMidCall(gw).then(() => assert.fail("the call resolved"), (e) => e);
      assert.ok(err instanceof GatewayExited);
      assert.equal(err.signal, "SIGKILL");

      // The next call waits for the restart and succeeds on the new gateway.
      assert.deepEqual(await gw.ping(), { ok: true });
      const restartMs = performance.now() - t0;
      assert.equal(gw.generation, 2);
      assert.notEqual(gw.pid, oldPid);
      assert.ok(!isRunning(oldPid));
      assert.equal(gw.readyPayload.pid, gw.pid);
      assert.equal(restarts.length, 1);
      assert.equal(restarts[0].previous, err);
      await assert.rejects(ticker.exited, GatewayExited);
      await waitGone([ticker.pid], { what: "the old gateway's orphaned child to be killed" });
      await assert.rejects(ticker.signal("SIGTERM"), GatewayExited, "an old handle never reaches the new gateway");

      // The new gateway works, and its events carry generation 2.
      const echo = await gw.spawnProcess(["echo", "second life"]);
      const lines = [];
      for await (const l of echo.lines()) lines.push(l.line);
      assert.deepEqual(lines, ["second life"]);
      assert.equal(echo.generation, 2);

      const exitAt = log.findIndex((e) => e.kind === "exit");
      assert.ok(exitAt > 0);
      assert.deepEqual(log[exitAt], { kind: "exit", generation: 1, restarting: true, signal: "SIGKILL" });
      const before = log.slice(0, exitAt);
      const afterExit = log.slice(exitAt + 1);
      assert.ok(before.every((e) => e.generation === 1), "before the exit: only the first gateway");
      assert.ok(afterExit.every((e) => e.generation === 2), `after the exit, only generation 2: ${JSON.stringify(afterExit.filter((e) => e.generation !== 2))}`);
      assert.ok(afterExit.some((e) => e.type === "process.exit"), "the new gateway's events are delivered");
      t.diagnostic(
        `${before.filter((e) => e.type === "process.output").length} output events from the old gateway before its exit; ` +
          `SIGKILL to first successful call on the new one: ${restartMs.toFixed(0)} ms`,
      );
    } finally {
      const exit = await gw.close();
      assert.equal(exit.code, 0);
      assert.equal(exit.generation, 2);
    }
  });

  test("close() during a restart's backoff ends it at once; calls waiting for the restart reject", async () => {
    const gw = await Gateway.start({ command: BIN, restart: { policy: "on-failure", initialDelay: 60_000 } });
    const oldPid = gw.pid;
    const exited = new Promise((r) => gw.once("exit", r));
    process.kill(oldPid, "SIGKILL");
    const exit = await exited;
    assert.equal(exit.restarting, true);
    const waiting = gw.ping(); // waits for a gateway that will never come
    const t0 = performance.now();
    const closed = await gw.close();
    assert.ok(performance.now() - t0 < 1000, "no wait for the backoff");
    assert.equal(closed.signal, "SIGKILL");
    await assert.rejects(waiting, (e) => e instanceof GatewayClosed && e.exit.signal === "SIGKILL");
    assert.equal(gw.generation, 1, "no new gateway was started");
  });

  test("on-failure gives up after maxRestarts when every start fails, and says why", async () => {
    // A "gateway" that becomes ready once, then exits 70 at the first request,
    // and on every later start exits before ready.
    const script = [
      "import json, os, sys",
      "flag = sys.argv[1]",
      "if os.path.exists(flag):",
      "    print('[gateway-crash] again', file=sys.stderr); sys.exit(70)",
      "open(flag, 'w').close()",
      "print(json.dumps({'jsonrpc':'2.0','method':'event','params':{'type':'gateway.ready','payload':{'pid':os.getpid(),'protocol':1,'methods':[],'limits':{}}}}), flush=True)",
      "sys.stdin.readline()",
      "print('[gateway-exit] internal error', file=sys.stderr); sys.exit(70)",
    ].join("\n");
    const flag = `/tmp/tgw-node-flag-${process.pid}-${Date.now()}`;
    const gw = await Gateway.start({
      command: "python3",
      args: ["-c", script, flag],
      restart: { policy: "on-failure", initialDelay: 1, maxDelay: 5, maxRestarts: 3 },
    });
    const failures = [];
    gw.on("restartFailed", (e) => failures.push(e));
    const err = await gw.ping().then(() => assert.fail("resolved"), (e) => e);
    assert.ok(err instanceof GatewayExited);
    assert.equal(err.code, 70);
    assert.match(err.reason, /internal error/);
    const final = await gw.closed;
    assert.equal(final.code, 70);
    assert.equal(failures.length, 3);
    assert.equal(failures[0].code, 70);
    assert.ok(failures[0].stderrTail.includes("[gateway-crash] again"));
    await assert.rejects(gw.ping(), GatewayExited);
    await gw.close();
    const { rmSync } = await import("node:fs");
    rmSync(flag, { force: true });
  });
});
