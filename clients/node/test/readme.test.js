// The README's ten-line example runs as written against the real gateway.

import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { promisify } from "node:util";
import { test } from "node:test";
import { PACKAGE_DIR, gatewayBin } from "../test-support/harness.js";

const BIN = gatewayBin();

test("the README's ten-line example runs and prints what it promises", async () => {
  const readme = readFileSync(path.join(PACKAGE_DIR, "README.md"), "utf8");
  const section = readme.slice(readme.indexOf("## Ten lines"));
  const code = section.slice(section.indexOf("```js\n") + 6, section.indexOf("```\n", section.indexOf("```js\n") + 6));
  assert.ok(code.trim().split("\n").length <= 10, "ten lines at most");
  const dir = mkdtempSync(path.join(tmpdir(), "tgw-node-readme-"));
  try {
    const file = path.join(dir, "example.mjs");
    const index = pathToFileURL(path.join(PACKAGE_DIR, "index.js")).href;
    writeFileSync(file, code.replace('"tui-gateway-client"', JSON.stringify(index)));
    const { stdout, stderr } = await promisify(execFile)(process.execPath, [file], {
      env: { ...process.env, TUI_GATEWAY_BIN: BIN },
      timeout: 30_000,
    });
    const lines = stdout.trim().split("\n");
    assert.deepEqual(lines.slice(0, 2).sort(), ["[stderr] oops", "[stdout] hello"]);
    assert.equal(lines[2], "exited with 3");
    assert.match(stderr, /gateway gone: orderly shutdown/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
