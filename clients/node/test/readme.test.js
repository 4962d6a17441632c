// The README's examples run as written against the real gateway: the
// ten-line one, and the session one across a UI killed mid-count.

import assert from "node:assert/strict";
import { execFile, execFileSync, spawn } from "node:child_process";
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { promisify } from "node:util";
import { test } from "node:test";
import { PACKAGE_DIR, gatewayBin, waitGone } from "../test-support/harness.js";

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

/** The first ```js block after `heading` in the README, importing this package from its directory. */
function readmeExample(heading) {
  const readme = readFileSync(path.join(PACKAGE_DIR, "README.md"), "utf8");
  const section = readme.slice(readme.indexOf(heading));
  const start = section.indexOf("```js\n") + 6;
  const code = section.slice(start, section.indexOf("```\n", start));
  const index = pathToFileURL(path.join(PACKAGE_DIR, "index.js")).href;
  return code.replace('"tui-gateway-client"', JSON.stringify(index));
}

test("the README's session example: killed mid-count, run again, it goes on where it stopped", { timeout: 30_000 }, async (t) => {
  // Its own runtime directory (mode 0700) for the session "work"; every
  // session left there is ended (SIGTERM) before the directory goes.
  const dir = mkdtempSync(path.join(tmpdir(), "tgw-node-readme-session-"));
  const runtime = path.join(dir, "run");
  mkdirSync(runtime);
  chmodSync(runtime, 0o700);
  const env = { ...process.env, TUI_GATEWAY_BIN: BIN, XDG_RUNTIME_DIR: runtime };
  t.after(async () => {
    const listed = JSON.parse(execFileSync(BIN, ["sessions", "--json"], { env, encoding: "utf8" }));
    for (const s of listed) process.kill(s.pid, "SIGTERM");
    await waitGone(listed.map((s) => s.pid), { what: "the example's session to end" });
    rmSync(dir, { recursive: true, force: true });
  });
  const file = path.join(dir, "example.mjs");
  // A tenth of the README's pace: the test needs the count, not the seconds.
  writeFileSync(file, readmeExample("## Sessions").replace("sleep 1", "sleep 0.1"));

  // The first run: killed (SIGKILL, no cleanup of any kind) once it showed 3.
  const first = spawn(process.execPath, [file], { cwd: dir, env, stdio: ["ignore", "pipe", "inherit"] });
  let out1 = "";
  const exited = new Promise((resolve) => first.on("close", resolve)); // after the last of its output
  await new Promise((resolve, reject) => {
    first.stdout.on("data", (chunk) => {
      out1 += chunk;
      if (/^3$/m.test(out1)) resolve();
    });
    first.on("close", () => reject(new Error(`the first run ended before it showed 3: ${JSON.stringify(out1)}`)));
  });
  first.kill("SIGKILL");
  await exited;

  // The second run attaches with the saved cursor and finishes the count.
  const { stdout: out2 } = await promisify(execFile)(process.execPath, [file], { cwd: dir, env, timeout: 20_000 });
  const lines1 = out1.split("\n").filter(Boolean);
  let lines2 = out2.split("\n").filter(Boolean);
  // At least once: a line shown but not saved yet when the UI died comes again.
  if (lines2[0] === lines1.at(-1)) lines2 = lines2.slice(1);
  assert.deepEqual([...lines1, ...lines2], ["1", "2", "3", "4", "5", "6", "7", "8", "9", "10"]);
  assert.deepEqual(JSON.parse(execFileSync(BIN, ["sessions", "--json"], { env, encoding: "utf8" })), [], "the example ended its session");
});
