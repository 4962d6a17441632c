// Issue 10, test 3: a process streaming 50 MB delivers every byte in order
// through the iterator, then its exit; base64 round-trips random bytes both
// ways. Also: no exit is ever lost, lines(), stdin writes and signals.

import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import { Gateway, RequestTimeoutError, RpcError } from "../index.js";
import { codeSignal, collect, gatewayBin, isRunning, mib, waitFor } from "../test-support/harness.js";

const BIN = gatewayBin();

describe("processes against the real gateway", () => {
  let gw;
  let dir;
  before(async () => {
    gw = await Gateway.start({ command: BIN });
    dir = mkdtempSync(path.join(tmpdir(), "tgw-node-"));
  });
  after(async () => {
    await gw?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test("50 MB of output: every byte arrives in order through the iterator, then the exit", async (t) => {
    // `seq 1 6500000` writes 50,888,896 bytes of numbered lines: order and
    // completeness are checked line by line while streaming, without storing it.
    const LAST = 6_500_000;
    let expectedBytes = 0;
    for (let digits = 1, lo = 1; lo <= LAST; digits++, lo *= 10) {
      expectedBytes += (Math.min(LAST, lo * 10 - 1) - lo + 1) * (digits + 1);
    }
    const t0 = performance.now();
    const h = await gw.spawnProcess(["seq", "1", String(LAST)]);
    let bytes = 0;
    let bytesReadWhenExited = -1;
    h.exited.then(() => (bytesReadWhenExited = bytes));
    let chunks = 0;
    let next = 1;
    let partial = "";
    let maxChunk = 0;
    for await (const { stream, data } of h) {
      assert.equal(stream, "stdout");
      chunks++;
      bytes += data.length;
      maxChunk = Math.max(maxChunk, data.length);
      const text = partial + data;
      let start = 0;
      let nl;
      while ((nl = text.indexOf("\n", start)) !== -1) {
        const n = Number(text.slice(start, nl));
        if (n !== next) assert.fail(`line ${next} expected, got ${JSON.stringify(text.slice(start, nl))} at byte ${bytes}`);
        next++;
        start = nl + 1;
      }
      partial = text.slice(start);
    }
    const exit = await h.exited;
    const ms = performance.now() - t0;
    assert.equal(bytesReadWhenExited, expectedBytes, "exited settled only after the iterator had handed out every byte");
    assert.equal(partial, "");
    assert.equal(next - 1, LAST, "every line arrived");
    assert.equal(bytes, expectedBytes);
    assert.deepEqual(codeSignal(exit), { code: 0, signal: null });
    t.diagnostic(
      `${bytes} bytes in ${chunks} chunks (largest ${maxChunk}) in ${ms.toFixed(0)} ms = ` +
        `${(bytes / 1e6 / (ms / 1000)).toFixed(0)} MB/s; client rss ${mib(process.memoryUsage().rss)} MiB`,
    );
  });

  test("base64: 300 KB of random bytes from a file arrive exactly", async (t) => {
    const bytes = randomBytes(300_000);
    const file = path.join(dir, "random.bin");
    writeFileSync(file, bytes);
    const h = await gw.spawnProcess(["cat", file], { encoding: "base64" });
    const chunks = await collect(h);
    assert.ok(chunks.every((c) => Buffer.isBuffer(c.data) && c.stream === "stdout"));
    const got = Buffer.concat(chunks.map((c) => c.data));
    assert.equal(got.length, bytes.length);
    assert.ok(got.equals(bytes), "bytes differ");
    assert.deepEqual(codeSignal(await h.exited), { code: 0, signal: null });
    t.diagnostic(`${got.length} bytes in ${chunks.length} chunks`);
  });

  test("base64 both ways: 600 KB of random bytes written to cat come back exactly", async () => {
    const bytes = randomBytes(600_000); // many writeAll pieces of 64 KiB
    const h = await gw.spawnProcess(["cat"], { encoding: "base64" });
    const reading = collect(h);
    const w = await h.writeAll(bytes);
    assert.equal(w.queued, bytes.length);
    await h.closeStdin();
    const got = Buffer.concat((await reading).map((c) => c.data));
    assert.ok(got.equals(bytes), `got ${got.length} bytes, want ${bytes.length}`);
    assert.deepEqual(codeSignal(await h.exited), { code: 0, signal: null });
  });

  test("writeAll of more than the child's stdin limit is split and paced, not refused", async () => {
    // cat reads slowly through a pipe; 3 MiB is three times --child-stdin-limit.
    const text = "0123456789abcdef\n".repeat(3 * 1024 * 1024 / 17);
    const h = await gw.spawnProcess(["cat"]);
    const reading = collect(h);
    const w = await h.writeAll(text);
    assert.equal(w.queued, Buffer.byteLength(text));
    await h.closeStdin();
    const got = (await reading).map((c) => c.data).join("");
    assert.equal(got.length, text.length);
    assert.ok(got === text);
  });

  test("no exit is lost: 100 spawns of `true`, 50 of them at once", async (t) => {
    const t0 = performance.now();
    for (let i = 0; i < 50; i++) {
      const h = await gw.spawnProcess(["true"]);
      assert.deepEqual(codeSignal(await h.exited), { code: 0, signal: null }, `spawn ${i}`);
    }
    const handles = await Promise.all(Array.from({ length: 50 }, (_, i) => gw.spawnProcess(["sh", "-c", `echo ${i}; exit ${i % 7}`])));
    const results = await Promise.all(handles.map(async (h) => [await collect(h.lines()), await h.exited]));
    results.forEach(([lines, exit], i) => {
      assert.deepEqual(lines, [{ stream: "stdout", line: String(i) }]);
      assert.deepEqual(codeSignal(exit), { code: i % 7, signal: null });
    });
    t.diagnostic(`100 spawns and exits in ${(performance.now() - t0).toFixed(0)} ms`);
  });

  test("lines() per stream, a last line without newline, and output: ignore", async () => {
    const h = await gw.spawnProcess(["sh", "-c", "printf 'a\\nb\\r\\nc'; echo err >&2"]);
    assert.deepEqual(await collect(h.lines({ stream: "stdout" })), [
      { stream: "stdout", line: "a" },
      { stream: "stdout", line: "b" },
      { stream: "stdout", line: "c" },
    ]);
    const quiet = await gw.spawnProcess(["sh", "-c", "seq 1 1000; exit 4"], { output: "ignore" });
    assert.deepEqual(codeSignal(await quiet.exited), { code: 4, signal: null });
    assert.throws(() => quiet[Symbol.asyncIterator](), /discarded/);
    assert.equal(quiet.bufferedChunks, 0);
  });

  test("stdin, signals and errors of a live process", async () => {
    const h = await gw.spawnProcess(["sh", "-c", "read name; echo \"hi $name\"; exec sleep 1000"]);
    assert.ok(isRunning(h.pid));
    await h.write("Ada\n");
    const it = h.lines();
    assert.deepEqual((await it.next()).value, { stream: "stdout", line: "hi Ada" });
    assert.equal(await h.signal("SIGTERM"), true);
    assert.equal((await it.next()).done, true);
    assert.deepEqual(codeSignal(await h.exited), { code: null, signal: "SIGTERM" });
    assert.equal(await h.signal("SIGTERM"), false, "its exit was seen: false, not an error");
    await assert.rejects(h.write("late"), (e) => e instanceof RpcError && e.code === -32602);
    await assert.rejects(gw.spawnProcess(["/no/such/program"]), (e) => e instanceof RpcError && e.code === -32000 && e.data.code === "ENOENT");
  });

  test("a spawn given up on (timeout) is killed when its late answer arrives", async () => {
    const unmatched = [];
    const exits = [];
    const onUnmatched = (m) => unmatched.push(m);
    const onExit = (p) => exits.push(p);
    gw.on("unmatched", onUnmatched);
    gw.on("process.exit", onExit);
    try {
      process.kill(gw.pid, "SIGSTOP"); // the answer cannot come in time
      try {
        await assert.rejects(gw.spawnProcess(["sleep", "1000"], { timeout: 50 }), RequestTimeoutError);
      } finally {
        process.kill(gw.pid, "SIGCONT");
      }
      const late = await waitFor(() => unmatched.find((m) => m.result?.proc), { what: "the late spawn answer" });
      const { proc, pid } = late.result;
      await waitFor(() => exits.some((e) => e.proc === proc), { what: "the abandoned process's exit" });
      const abandoned = exits.find((e) => e.proc === proc);
      assert.deepEqual({ proc: abandoned.proc, ...codeSignal(abandoned) }, { proc, code: null, signal: "SIGKILL" });
      assert.ok(!isRunning(pid));
    } finally {
      gw.off("unmatched", onUnmatched);
      gw.off("process.exit", onExit);
    }
  });

  test("a pty process has a terminal and resize reaches it; resize on a pipe is -32602", async () => {
    const h = await gw.spawnProcess(["sleep", "1000"], { stdin: "null" });
    await assert.rejects(h.resize({ cols: 100, rows: 30 }), (err) => err instanceof RpcError && err.code === -32602);
    await h.signal("SIGKILL");
    assert.deepEqual(codeSignal(await h.exited), { code: null, signal: "SIGKILL" });

    const script = "stty size; trap 'stty size; exit 0' WINCH; echo ready; while :; do sleep 10 & wait $!; done";
    const t = await gw.spawnProcess(["sh", "-c", script], { pty: { rows: 30, cols: 100 } });
    const seen = [];
    for await (const { stream, line } of t.lines()) {
      assert.equal(stream, "pty");
      seen.push(line.replace(/\r$/, ""));
      if (line.startsWith("ready")) assert.deepEqual(await t.resize({ cols: 120, rows: 40 }), { ok: true, rows: 40, cols: 120 });
    }
    assert.deepEqual(seen, ["30 100", "ready", "40 120"]);
    assert.deepEqual(codeSignal(await t.exited), { code: 0, signal: null });
  });

  test("signal with tree reaches a job a shell moved out of its group", async () => {
    const sh = await gw.spawnProcess(["sh", "-c", "setsid sleep 1000 & echo $!; wait"]);
    const lines = sh.lines();
    const { value } = await lines.next();
    const job = Number(value.line);
    assert.ok(isRunning(job));
    await sh.signal("SIGKILL", { tree: true });
    assert.deepEqual(codeSignal(await sh.exited), { code: null, signal: "SIGKILL" });
    await waitFor(() => !isRunning(job), { what: "the setsid job's end" });
  });
});
