// Issue 10, test 5: start failures name their cause and show stderr: a
// missing binary, a binary that exits 64 on a bad flag, one that never sends
// gateway.ready. Also the lookup order: command, TUI_GATEWAY_BIN, PATH.

import assert from "node:assert/strict";
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import { Gateway, GatewayStartError, resolveCommand } from "../index.js";
import { gatewayBin, waitGone } from "../test-support/harness.js";

const BIN = gatewayBin();

describe("starting the gateway", () => {
  let dir;
  before(() => {
    dir = mkdtempSync(path.join(tmpdir(), "tgw-node-start-"));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  test("a missing binary: the error names the path and the cause", async () => {
    const missing = path.join(dir, "no-such-dir", "tui-gateway");
    await assert.rejects(Gateway.start({ command: missing }), (err) => {
      assert.ok(err instanceof GatewayStartError);
      assert.ok(err.message.includes(missing), err.message);
      assert.match(err.message, /no such file/);
      assert.match(err.message, /command option/);
      assert.equal(err.command, missing);
      return true;
    });
  });

  test("nothing configured and nothing on PATH: the error says where it looked and how to fix it", async () => {
    const env = { TUI_GATEWAY_BIN: null, PATH: path.join(dir, "empty-bin") };
    await assert.rejects(Gateway.start({ env }), (err) => {
      assert.ok(err instanceof GatewayStartError);
      assert.match(err.message, /"tui-gateway" \(from the default name\) was not found on PATH/);
      assert.ok(err.message.includes(env.PATH));
      assert.match(err.message, /TUI_GATEWAY_BIN is not set/);
      assert.match(err.message, /cargo install --locked --path \./);
      return true;
    });
  });

  test("a file that is not executable is refused before spawning", async () => {
    const file = path.join(dir, "not-executable");
    writeFileSync(file, "#!/bin/sh\n");
    chmodSync(file, 0o644);
    await assert.rejects(Gateway.start({ command: file }), /not executable/);
  });

  test("lookup order: command, then TUI_GATEWAY_BIN, then PATH", async () => {
    const binDir = path.dirname(BIN);
    const base = { PATH: binDir };
    assert.deepEqual(resolveCommand({ command: BIN, env: { TUI_GATEWAY_BIN: "/nope", ...base } }), { path: BIN, source: "command" });
    assert.deepEqual(resolveCommand({ env: { TUI_GATEWAY_BIN: BIN } }), { path: BIN, source: "TUI_GATEWAY_BIN" });
    if (path.basename(BIN) === "tui-gateway") {
      assert.deepEqual(resolveCommand({ env: base }), { path: BIN, source: "PATH" });
    }
    assert.throws(() => resolveCommand({ env: { TUI_GATEWAY_BIN: path.join(dir, "gone") } }), /from TUI_GATEWAY_BIN\): no such file/);
    // And through start(): TUI_GATEWAY_BIN from the env option.
    const gw = await Gateway.start({ env: { TUI_GATEWAY_BIN: BIN } });
    assert.deepEqual(await gw.ping(), { ok: true });
    await gw.close();
  });

  test("a bad flag: exit code 64, its meaning, and the gateway's stderr line", async () => {
    await assert.rejects(Gateway.start({ command: BIN, args: ["--bogus"] }), (err) => {
      assert.ok(err instanceof GatewayStartError);
      assert.equal(err.code, 64);
      assert.equal(err.signal, null);
      assert.match(err.reason, /bad command line/);
      assert.ok(err.stderrTail.some((l) => l.includes('unknown argument "--bogus"')), JSON.stringify(err.stderrTail));
      assert.match(err.message, /exited before sending gateway\.ready/);
      assert.match(err.message, /exit code 64: bad command line/);
      assert.match(err.message, /unknown argument "--bogus"/, "stderr is shown in the message");
      return true;
    });
  });

  test("no gateway.ready in time: killed, and the error shows what it wrote on stderr", async () => {
    const script = "import os,sys,time; print('booting pid', os.getpid(), file=sys.stderr, flush=True); time.sleep(1000)";
    let pid;
    await assert.rejects(Gateway.start({ command: "python3", args: ["-c", script], readyTimeout: 1500 }), (err) => {
      assert.ok(err instanceof GatewayStartError);
      assert.equal(err.timedOut, true);
      assert.match(err.message, /no gateway\.ready within 1500 ms/);
      assert.match(err.message, /booting pid/);
      pid = err.pid;
      return true;
    });
    assert.ok(pid > 0);
    await waitGone([pid], { what: "the timed-out process to be gone" });
  });
});
