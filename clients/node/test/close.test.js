// Issue 10, test 6: close() with running children leaves nothing behind,
// within the grace; and a UI process that exits without close() leaves
// nothing running either. Liveness is read from /proc/<pid> (a zombie counts
// as gone: it runs nothing and only waits for its parent to reap it).

import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import { Gateway } from "../index.js";
import { PACKAGE_DIR, codeSignal, gatewayBin, isRunning, waitFor, waitGone } from "../test-support/harness.js";

const BIN = gatewayBin();

/** Runs the stand-in UI; resolves with the pids it printed and its child process.
 *  The gateway it starts inherits TUI_GATEWAY_CRASH_LOG, so its exit reason
 *  and the signals it got can be read afterwards. */
function startUi(mode, crashLog) {
  const ui = spawn(process.execPath, [path.join(PACKAGE_DIR, "test-support", "ui-exits.js"), mode], {
    env: { ...process.env, TUI_GATEWAY_BIN: BIN, TUI_GATEWAY_CRASH_LOG: crashLog },
    stdio: ["pipe", "pipe", "pipe"],
  });
  let stderr = "";
  ui.stderr.on("data", (c) => (stderr += c));
  const exited = new Promise((resolve) => ui.on("exit", (code, signal) => resolve({ code, signal })));
  const pids = new Promise((resolve, reject) => {
    let out = "";
    ui.stdout.on("data", (c) => {
      out += c;
      if (out.includes("\n")) resolve(JSON.parse(out.slice(0, out.indexOf("\n"))));
    });
    exited.then((e) => reject(new Error(`the UI exited (${JSON.stringify(e)}) before printing its pids; stderr:\n${stderr}`)));
  });
  return { ui, pids, exited };
}

describe("nothing outlives the UI", () => {
  let dir;
  before(() => {
    dir = mkdtempSync(path.join(tmpdir(), "tgw-node-close-"));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  test("close() with running children: gateway and children gone, within the grace", async (t) => {
    const gw = await Gateway.start({ command: BIN });
    const sleeper = await gw.spawnProcess(["sleep", "1000"], { stdin: "null" });
    const stubborn = await gw.spawnProcess(["sh", "-c", "trap '' TERM; sleep 1000; sleep 1000"], { stdin: "null" });
    await gw.ping();
    const pids = [gw.pid, sleeper.pid, stubborn.pid];
    assert.ok(pids.every(isRunning));
    const graceS = gw.readyPayload.limits.shutdown_grace_s;

    const t0 = performance.now();
    const closing = gw.close();
    assert.equal(gw.close(), closing, "close() is idempotent: one shutdown, one promise");
    const exit = await closing;
    const ms = performance.now() - t0;

    assert.ok(pids.every((p) => !isRunning(p)), `still running after close(): ${pids.filter(isRunning)}`);
    assert.equal(exit.code, 0, "the gateway drained in time: no SIGTERM or SIGKILL from the client was needed");
    assert.equal(exit.exitReason, "stdin EOF");
    assert.ok(ms < graceS * 1000 + 500, `close() took ${ms.toFixed(0)} ms, grace ${graceS} s`);
    assert.deepEqual(codeSignal(await sleeper.exited), { code: null, signal: "SIGTERM" });
    assert.deepEqual(codeSignal(await stubborn.exited), { code: null, signal: "SIGKILL" });
    assert.equal(await gw.close(), exit);
    t.diagnostic(`close() took ${ms.toFixed(0)} ms (gateway grace ${graceS} s); sleep got SIGTERM, the TERM-ignoring shell SIGKILL`);
  });

  test("close({grace}) escalates when the gateway does not exit: SIGTERM, then SIGKILL", async (t) => {
    const gw = await Gateway.start({ command: BIN });
    const sleeper = await gw.spawnProcess(["sleep", "1000"], { stdin: "null" });
    // A stopped gateway cannot drain: ending stdin is not enough, nor is
    // SIGTERM (it stays pending while stopped); only SIGKILL ends it.
    process.kill(gw.pid, "SIGSTOP");
    const t0 = performance.now();
    const exit = await gw.close({ grace: 200 });
    const ms = performance.now() - t0;
    assert.equal(exit.signal, "SIGKILL");
    assert.ok(!isRunning(exit.pid));
    // The child dies with the gateway (PR_SET_PDEATHSIG) or by the client's hand (orphansKilled).
    assert.ok(exit.orphansKilled.every((p) => p === sleeper.pid), JSON.stringify(exit.orphansKilled));
    await waitGone([sleeper.pid], { what: "the SIGKILLed gateway's child to be gone" });
    t.diagnostic(`escalated to SIGKILL after ${ms.toFixed(0)} ms (grace 200 ms + the gateway's grace + 1 s after SIGTERM)`);
  });

  test("the UI process exits without close(): gateway and children are gone soon after", async (t) => {
    const crashLog = path.join(dir, "exit-hook.log");
    const { ui, pids, exited } = startUi("exit", crashLog);
    const { gateway, children } = await pids;
    assert.ok([gateway, ...children].every(isRunning), "all running before the UI exits");
    const t0 = performance.now();
    ui.stdin.write("exit now\n");
    assert.deepEqual(await exited, { code: 0, signal: null });
    const ms = await waitGone([gateway, ...children], { timeout: 10_000 });
    const log = await waitFor(() => (existsSync(crashLog) && /gateway exit/.test(readFileSync(crashLog, "utf8")) ? readFileSync(crashLog, "utf8") : null), { what: "the crash log's exit entry" });
    assert.match(log, /signal=SIGTERM/, "the client's exit hook sent SIGTERM");
    t.diagnostic(`UI exited (exit hook: SIGTERM to the gateway); gateway ${gateway} and children ${children} gone ${(performance.now() - t0).toFixed(0)} ms after (${ms.toFixed(0)} ms after the UI's exit was seen); crash log: ${log.trim().split("\n").filter((l) => l.startsWith("===")).join(" | ")}`);
  });

  test("the UI process is SIGKILLed (no exit hook): the gateway still takes its children down", async (t) => {
    const crashLog = path.join(dir, "ui-killed.log");
    const { ui, pids, exited } = startUi("wait-for-kill", crashLog);
    const { gateway, children } = await pids;
    assert.ok([gateway, ...children].every(isRunning));
    const t0 = performance.now();
    ui.kill("SIGKILL");
    assert.deepEqual(await exited, { code: null, signal: "SIGKILL" });
    await waitGone([gateway, ...children], { timeout: 10_000 });
    const ms = performance.now() - t0;
    const log = await waitFor(() => (existsSync(crashLog) && /gateway exit/.test(readFileSync(crashLog, "utf8")) ? readFileSync(crashLog, "utf8") : null), { what: "the crash log's exit entry" });
    assert.doesNotMatch(log, /signal=SIGTERM/, "no exit hook could run");
    t.diagnostic(`UI SIGKILLed; gateway and children gone ${ms.toFixed(0)} ms after; crash log: ${log.trim().split("\n").filter((l) => l.startsWith("===")).join(" | ")}`);
  });
});
