// The conformance scenarios: the same scenarios, by the same names, as the
// Python suite's tests/test_conformance.py. Each is declared with the
// conformance helper below and shows as "conformance: <name>";
// clients/conformance.py fails if one suite has a name the other lacks. The
// naming table they check is clients/README.md. Against the real binary.

import assert from "node:assert/strict";
import { EventEmitter } from "node:events";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import {
  Gateway,
  GatewayClosed,
  GatewayError,
  GatewayExited,
  GatewayNotFound,
  GatewayStartError,
  RequestTimeoutError,
  RpcError,
} from "../index.js";
import { FIXTURES, collect, gatewayBin, procState, waitFor } from "../test-support/harness.js";

const BIN = gatewayBin();
const S2C = path.join(FIXTURES, "s2c_backend.py");

/** A conformance scenario: shows as "conformance: <name>", checked by clients/conformance.py. */
function conformance(name, fn) {
  return test(`conformance: ${name}`, fn);
}

/** The size process.list reports for a process on a terminal, as {rows, cols}. */
async function ptySize(gw, proc) {
  const pty = (await gw.listProcesses()).find((p) => p.proc === proc)?.pty;
  return pty && { rows: pty.rows, cols: pty.cols };
}

/** Whether the process's terminal has that size now. */
async function hasSize(gw, proc, rows, cols) {
  const size = await ptySize(gw, proc);
  return size?.rows === rows && size?.cols === cols;
}

describe("conformance (shared with the Python client)", () => {
  let gw;
  before(async () => {
    gw = await Gateway.start({ command: BIN });
  });
  after(async () => {
    await gw?.close();
  });

  // ---- the gateway -----------------------------------------------------------

  conformance("ping returns ok true", async () => {
    assert.deepEqual(await gw.ping(), { ok: true });
  });

  conformance("an error answer is an RpcError and a GatewayError", async () => {
    const err = await gw.request("no.such.method", { x: 1 }).then(() => assert.fail("resolved"), (e) => e);
    assert.ok(err instanceof RpcError);
    assert.ok(err instanceof GatewayError);
    assert.equal(err.code, -32601);
    assert.equal(err.method, "no.such.method");
    assert.match(err.message, /no\.such\.method/);
  });

  conformance("a request timeout is a RequestTimeoutError and a GatewayError", async () => {
    const own = await Gateway.start({ command: BIN });
    try {
      process.kill(own.pid, "SIGSTOP"); // it answers nothing for now
      let err;
      try {
        err = await own.request("gateway.ping", undefined, { timeout: 100 }).then(() => assert.fail("resolved"), (e) => e);
      } finally {
        process.kill(own.pid, "SIGCONT");
      }
      assert.ok(err instanceof RequestTimeoutError);
      assert.ok(err instanceof GatewayError);
      assert.equal(err.method, "gateway.ping");
      assert.equal(own.pendingCount, 0, "the call is forgotten");
      assert.deepEqual(await own.ping(), { ok: true }, "the late answer was dropped, the next call matched");
    } finally {
      await own.close();
    }
  });

  conformance("cancelling a call stops only the local wait", async () => {
    const own = await Gateway.start({ command: BIN });
    const unmatched = [];
    own.on("unmatched", (m) => unmatched.push(m));
    try {
      process.kill(own.pid, "SIGSTOP");
      const ac = new AbortController();
      const call = own.request("gateway.ping", undefined, { abortSignal: ac.signal });
      assert.equal(own.pendingCount, 1);
      ac.abort(new Error("the user pressed Esc"));
      await assert.rejects(call, /the user pressed Esc/);
      assert.equal(own.pendingCount, 0);
      process.kill(own.pid, "SIGCONT");
      // The request was sent and ran: its answer comes, to nobody.
      await waitFor(() => unmatched.length === 1, { what: "the late answer" });
      assert.deepEqual(unmatched[0].result, { ok: true });
    } finally {
      if (procState(own.pid) === "T") process.kill(own.pid, "SIGCONT");
      await own.close();
    }
  });

  conformance("notify returns true once written", async () => {
    assert.equal(await gw.notify("gateway.ping"), true);
    assert.equal(await gw.notify("no.such.method"), true, "a notification gets no answer, not even an error");
    assert.deepEqual(await gw.ping(), { ok: true });
  });

  conformance("batch returns one entry per call", async () => {
    const [ok, failed, note] = await gw.batch([
      { method: "gateway.ping" },
      { method: "no.such.method" },
      { method: "gateway.ping", notify: true },
    ]);
    assert.deepEqual(ok, { ok: true, result: { ok: true } });
    assert.equal(failed.ok, false);
    assert.ok(failed.error instanceof RpcError);
    assert.equal(failed.error.code, -32601);
    assert.equal(note, null);
  });

  conformance("on returns a function that unsubscribes", async () => {
    const seen = [];
    const off = gw.on("process.exit", (p) => seen.push(p.proc));
    assert.equal(typeof off, "function");
    const first = await gw.spawnProcess(["true"]);
    await first.wait();
    off();
    off(); // again: nothing
    const second = await gw.spawnProcess(["true"]);
    await second.wait();
    assert.deepEqual(seen, [first.proc], "nothing after unsubscribing");
    const once = [];
    const offOnce = gw.once("process.exit", (p) => once.push(p.proc));
    assert.equal(typeof offOnce, "function");
    const third = await gw.spawnProcess(["true"]);
    await third.wait();
    const fourth = await gw.spawnProcess(["true"]);
    await fourth.wait();
    assert.deepEqual(once, [third.proc]);
  });

  conformance("on request returns a function that removes the handler", async () => {
    const fixture = await Gateway.start({ command: "python3", args: [S2C] });
    try {
      const kept = fixture.onRequest("ui.kept", () => ({ answered: true }));
      const removed = fixture.onRequest("ui.removed", () => ({ answered: true }));
      assert.equal(typeof kept, "function");
      removed();
      await fixture.request("fixture.start", { requests: [{ method: "ui.kept" }, { method: "ui.removed" }] });
      const { responses } = await fixture.request("fixture.report");
      assert.deepEqual(responses["gw-1"].result, { answered: true });
      assert.equal(responses["gw-2"].error.code, -32601, "no handler any more: Method not found");
    } finally {
      await fixture.close();
    }
  });

  // ---- processes: output -----------------------------------------------------------

  conformance("spawn returns a handle with proc and pid", async () => {
    const h = await gw.spawnProcess(["sh", "-c", "exit 0"], { stdin: "null" });
    assert.ok(Number.isInteger(h.proc) && h.proc >= 1);
    assert.ok(Number.isInteger(h.pid) && h.pid > 1);
    assert.deepEqual(h.argv, ["sh", "-c", "exit 0"]);
    assert.equal(h.encoding, "utf8");
    assert.equal((await h.wait()).code, 0);
    assert.equal(h.running, false);
  });

  conformance("chunks carry stream and data", async () => {
    const h = await gw.spawnProcess(["sh", "-c", "echo out; echo err >&2"]);
    const chunks = (await collect(h)).map(({ stream, data }) => [stream, data]);
    assert.deepEqual(chunks.sort(), [["stderr", "err\n"], ["stdout", "out\n"]]);
  });

  conformance("lines yield stream and line", async () => {
    const h = await gw.spawnProcess(["sh", "-c", "printf 'a\\nb\\r\\nc'; echo e >&2"]);
    const lines = await collect(h.lines());
    assert.deepEqual(lines.filter((l) => l.stream === "stdout"), [
      { stream: "stdout", line: "a" },
      { stream: "stdout", line: "b" },
      { stream: "stdout", line: "c" },
    ]);
    assert.deepEqual(lines.filter((l) => l.stream === "stderr"), [{ stream: "stderr", line: "e" }]);
    const only = await gw.spawnProcess(["sh", "-c", "echo out; echo err >&2"]);
    assert.deepEqual(await collect(only.lines({ stream: "stderr" })), [{ stream: "stderr", line: "err" }]);
  });

  conformance("lines with rewrites yield each carriage-return version", async () => {
    const script = "printf 'start\\n\\r10%%\\r50%%\\r100%%\\ndone\\n'";
    const h = await gw.spawnProcess(["sh", "-c", script]);
    assert.deepEqual(await collect(h.lines({ rewrites: true })), [
      { stream: "stdout", line: "start" },
      { stream: "stdout", line: "10%" },
      { stream: "stdout", line: "50%", rewrite: true },
      { stream: "stdout", line: "100%", rewrite: true },
      { stream: "stdout", line: "done" },
    ]);
    const plain = await gw.spawnProcess(["sh", "-c", script]);
    assert.deepEqual((await collect(plain.lines())).map((l) => l.line), ["start", "\r10%\r50%\r100%", "done"], "without the option a \\r stays in the line");
  });

  conformance("text yields partial lines as they come", async () => {
    const h = await gw.spawnProcess(["sh", "-c", "printf 'Password: '; read pw; echo \"got $pw\""]);
    const seen = [];
    for await (const { stream, text } of h.text()) {
      assert.equal(stream, "stdout");
      seen.push(text);
      // The prompt has no newline: it comes as it is, and only then we answer.
      if (seen.join("") === "Password: ") await h.write("x\n");
    }
    assert.equal(seen.join(""), "Password: got x\n");
    assert.equal(seen[0], "Password: ");
  });

  conformance("read returns all the output", async () => {
    const both = await gw.spawnProcess(["sh", "-c", "echo out; echo err >&2"]);
    assert.deepEqual((await both.read()).split("\n").sort(), ["", "err", "out"]);
    const one = await gw.spawnProcess(["sh", "-c", "echo out; echo err >&2"]);
    assert.equal(await one.read({ stream: "stdout" }), "out\n");
    const bytes = await gw.spawnProcess(["printf", "\\000\\001\\377"], { encoding: "base64" });
    assert.deepEqual([...(await bytes.read())], [0, 1, 255]);
  });

  conformance("wait returns the exit after the last output", async () => {
    const h = await gw.spawnProcess(["sh", "-c", "echo hi; exit 3"]);
    const seen = [];
    let seenWhenExited = null;
    h.wait().then(() => (seenWhenExited = seen.join("")));
    for await (const { data } of h) seen.push(data);
    const exit = await h.wait();
    assert.equal(seen.join(""), "hi\n");
    assert.equal(seenWhenExited, "hi\n", "settled only after the last chunk was read");
    assert.equal(exit.code, 3);
    assert.equal(exit.signal, null);
    assert.equal(exit.cause, "exit");
    assert.equal(typeof exit.duration_ms, "number");
    assert.equal(exit.output_bytes.stdout, 3);
    assert.deepEqual(h.exitStatus, exit);
    assert.deepEqual(await h.exited, exit);
  });

  conformance("a pty process gets a terminal", async () => {
    const h = await gw.spawnProcess(["sh", "-c", "test -t 0 && test -t 1 && echo tty; stty size"], { pty: { rows: 24, cols: 80 } });
    assert.deepEqual(await collect(h.lines()), [
      { stream: "pty", line: "tty" },
      { stream: "pty", line: "24 80" },
    ]);
    assert.equal((await h.wait()).code, 0);
  });

  // ---- processes: input --------------------------------------------------------------

  conformance("write is accepted whole or refused whole", async () => {
    const h = await gw.spawnProcess(["sleep", "100"]); // never reads its stdin
    try {
      const piece = Buffer.alloc(600 * 1024, 0x61);
      const first = await h.write(piece);
      assert.equal(first.queued, piece.length, "accepted whole");
      const err = await h.write(piece).then(() => assert.fail("accepted past the limit"), (e) => e);
      assert.ok(err instanceof RpcError && err instanceof GatewayError);
      assert.equal(err.code, -32001, "refused whole: the queue would pass --child-stdin-limit");
      assert.equal(typeof err.data.limit, "number");
      const small = await h.write("x");
      assert.equal(small.queued, 1, "nothing of the refused write was queued, so 1 byte still fits");
    } finally {
      await h.kill();
    }
  });

  conformance("write all waits for room", async () => {
    // The shell stops itself before reading: 3 MiB cannot fit in its pipe and
    // the gateway's 1 MiB stdin queue until it is continued.
    const h = await gw.spawnProcess(["sh", "-c", "kill -STOP $$; exec wc -c"]);
    await waitFor(() => procState(h.pid) === "T", { what: "the shell to stop itself" });
    const size = 3 * 1024 * 1024;
    let done = false;
    const writing = h.writeAll(Buffer.alloc(size, 0x62)).then((r) => {
      done = true;
      return r;
    });
    await gw.ping();
    assert.equal(done, false, "3 MiB cannot have been accepted while the child is stopped");
    assert.equal(await h.signal("SIGCONT"), true);
    const result = await writing;
    assert.equal(result.queued, size);
    await h.closeStdin();
    assert.equal((await h.read()).trim(), String(size));
  });

  conformance("close stdin ends the input", async () => {
    const h = await gw.spawnProcess(["cat"]);
    assert.deepEqual(await h.write("abc"), { queued: 3, pending: 0 });
    const closed = await h.closeStdin();
    assert.equal(closed.ok, true);
    assert.equal(typeof closed.pending, "number");
    assert.equal(await h.read(), "abc");
    assert.equal((await h.wait()).code, 0);
  });

  // ---- processes: signals, size, cancel ------------------------------------------------

  conformance("signal returns true while the process runs", async () => {
    const h = await gw.spawnProcess(["sleep", "100"], { stdin: "null" });
    assert.equal(await h.signal("SIGTERM"), true);
    const exit = await h.wait();
    assert.equal(exit.signal, "SIGTERM");
    assert.equal(exit.code, null);
  });

  conformance("signalling an exited process returns false", async () => {
    const h = await gw.spawnProcess(["true"]);
    await h.wait();
    assert.equal(await h.signal("SIGINT"), false);
    assert.equal(await h.kill(), false);
    assert.equal(await h.terminate(), false);
    // The gateway's own answer for it is -32602 "unknown proc":
    await assert.rejects(gw.request("process.signal", { proc: h.proc, signal: "SIGINT" }), (e) => e instanceof RpcError && e.code === -32602 && /unknown proc/.test(e.message));
  });

  conformance("kill sends SIGKILL and terminate SIGTERM", async () => {
    const a = await gw.spawnProcess(["sleep", "100"], { stdin: "null" });
    assert.equal(await a.kill(), true);
    assert.equal((await a.wait()).signal, "SIGKILL");
    const b = await gw.spawnProcess(["sleep", "100"], { stdin: "null" });
    assert.equal(await b.terminate(), true);
    assert.equal((await b.wait()).signal, "SIGTERM");
    const c = await gw.spawnProcess(["sleep", "100"], { stdin: "null" });
    assert.equal(await c.kill("SIGINT"), true, "kill takes a signal too");
    assert.equal((await c.wait()).signal, "SIGINT");
  });

  conformance("resize takes cols and rows", async () => {
    const h = await gw.spawnProcess(["sh", "-c", "stty size; read x; stty size"], { pty: { rows: 24, cols: 80 } });
    const lines = h.lines();
    assert.equal((await lines.next()).value.line, "24 80");
    assert.deepEqual(await h.resize({ cols: 100, rows: 30 }), { ok: true, rows: 30, cols: 100 });
    assert.deepEqual(await ptySize(gw, h.proc), { rows: 30, cols: 100 });
    await h.write("\n");
    const rest = (await collect(lines)).map((l) => l.line);
    assert.ok(rest.includes("30 100"), JSON.stringify(rest));
  });

  conformance("resize refuses positional numbers", async () => {
    const h = await gw.spawnProcess(["sleep", "100"], { stdin: "null" });
    try {
      await assert.rejects(h.resize(30, 100), TypeError);
      await assert.rejects(h.resize({ cols: 100, rows: 30 }), (e) => e instanceof RpcError && e.code === -32602, "not on a terminal");
    } finally {
      await h.kill();
    }
  });

  conformance("follow terminal size forwards the terminal's size", async () => {
    const h = await gw.spawnProcess(["sh", "-c", "read x"], { pty: { rows: 24, cols: 80 } });
    const reading = h.read(); // the terminal's echo
    // A stand-in for process.stdout: Node emits 'resize' on SIGWINCH with new columns and rows.
    const tty = Object.assign(new EventEmitter(), { columns: 100, rows: 30 });
    const stop = h.followTerminalSize({ stdout: tty });
    assert.equal(typeof stop, "function");
    await waitFor(() => hasSize(gw, h.proc, 30, 100), { what: "the first resize" });
    tty.columns = 120;
    tty.rows = 40;
    tty.emit("resize");
    await waitFor(() => hasSize(gw, h.proc, 40, 120), { what: "the resize after SIGWINCH" });
    stop();
    assert.equal(tty.listenerCount("resize"), 0, "stopped: no handler left");
    const shown = h.followTerminalSize({ stdout: tty, adjust: ({ cols, rows }) => ({ cols, rows: rows - 2 }) });
    await waitFor(() => hasSize(gw, h.proc, 38, 120), { what: "the adjusted size" });
    await h.write("\n");
    await reading;
    await h.wait();
    assert.equal(tty.listenerCount("resize"), 0, "following stops when the process ends");
    shown();
  });

  conformance("cancel runs the ladder and answers once the tree is gone", async () => {
    const h = await gw.spawnProcess(["sleep", "100"], { stdin: "null" });
    const result = await h.cancel([["SIGTERM", 5000], ["SIGKILL"]]);
    assert.deepEqual(result, { proc: h.proc, step: 0, signal: "SIGTERM", code: null, exit_signal: "SIGTERM" });
    const exit = await h.wait();
    assert.equal(exit.cause, "cancel");
    assert.equal(exit.signal, "SIGTERM");
  });

  conformance("a missing program is RpcError -32000", async () => {
    const err = await gw.spawnProcess(["/no/such/program"]).then(() => assert.fail("spawned"), (e) => e);
    assert.ok(err instanceof RpcError && err instanceof GatewayError);
    assert.equal(err.code, -32000);
    assert.equal(err.data.code, "ENOENT");
  });
});

describe("conformance: the gateway's life", () => {
  conformance("a spawn given up on is killed when its answer comes", async () => {
    const gw = await Gateway.start({ command: BIN });
    const exits = [];
    gw.on("process.exit", (p) => exits.push(p));
    try {
      process.kill(gw.pid, "SIGSTOP"); // the answer cannot come in time
      try {
        await assert.rejects(gw.spawnProcess(["sleep", "1000"], { timeout: 50 }), RequestTimeoutError);
      } finally {
        process.kill(gw.pid, "SIGCONT");
      }
      await waitFor(() => exits.length === 1, { what: "the abandoned process's exit" });
      assert.equal(exits[0].signal, "SIGKILL");
      assert.equal(exits[0].proc, 1);
    } finally {
      await gw.close();
    }
  });

  conformance("a missing binary is GatewayNotFound, a GatewayStartError", async () => {
    const err = await Gateway.start({ command: "/nonexistent/tui-gateway" }).then(() => assert.fail("started"), (e) => e);
    assert.ok(err instanceof GatewayNotFound);
    assert.ok(err instanceof GatewayStartError);
    assert.ok(err instanceof GatewayError);
    assert.match(err.message, /\/nonexistent\/tui-gateway/);
  });

  conformance("close returns the exit details, without error when clean", async () => {
    const gw = await Gateway.start({ command: BIN });
    const events = [];
    gw.on("exit", (e) => events.push(e));
    const pid = gw.pid;
    const exit = await gw.close();
    assert.equal(exit.code, 0);
    assert.equal(exit.signal, null);
    assert.equal(exit.error, null, "a clean exit carries no error");
    assert.equal(exit.exitReason, "stdin EOF", "close() ends the gateway's stdin; no gateway.shutdown by default");
    assert.equal(typeof exit.reason, "string");
    assert.equal(exit.pid, pid);
    assert.equal(exit.generation, 1);
    assert.equal(exit.restarting, false);
    assert.deepEqual(exit.orphansKilled, []);
    assert.ok(Array.isArray(exit.stderrTail));
    assert.deepEqual(events, [exit], "the exit event has the same details");
    assert.equal(await gw.close(), exit, "idempotent: the same result");
  });

  conformance("close with shutdown sends gateway.shutdown first", async () => {
    const gw = await Gateway.start({ command: BIN });
    const sleeper = await gw.spawnProcess(["sleep", "100"], { stdin: "null" });
    const exit = await gw.close({ shutdown: true });
    assert.equal(exit.code, 0);
    assert.equal(exit.exitReason, "gateway.shutdown request");
    const gone = await sleeper.wait();
    assert.equal(gone.signal, "SIGTERM");
    assert.equal(gone.cause, "shutdown");
  });

  conformance("calls after close raise GatewayClosed", async () => {
    const gw = await Gateway.start({ command: BIN });
    await gw.close();
    const err = await gw.ping().then(() => assert.fail("resolved"), (e) => e);
    assert.ok(err instanceof GatewayClosed);
    assert.ok(err instanceof GatewayError);
    assert.equal(err.exit.code, 0);
    await assert.rejects(gw.spawnProcess(["true"]), GatewayClosed);
    assert.equal(await gw.notify("gateway.ping"), false, "notify never throws: false");
  });

  conformance("a gateway that dies rejects pending calls with GatewayExited", async () => {
    const gw = await Gateway.start({ command: BIN });
    const h = await gw.spawnProcess(["sleep", "100"], { stdin: "null" });
    const exits = [];
    gw.on("exit", (e) => exits.push(e));
    process.kill(gw.pid, "SIGSTOP");
    const pending = gw.ping();
    process.kill(gw.pid, "SIGKILL");
    const err = await pending.then(() => assert.fail("resolved"), (e) => e);
    assert.ok(err instanceof GatewayExited && err instanceof GatewayError);
    assert.equal(err.signal, "SIGKILL");
    assert.equal(err.code, null);
    await assert.rejects(h.wait(), GatewayExited);
    await assert.rejects(gw.ping(), GatewayExited, "later calls too: it ended for good");
    assert.equal(exits.length, 1);
    assert.ok(exits[0].error instanceof GatewayExited);
    const closed = await gw.close();
    assert.equal(closed.signal, "SIGKILL");
  });
});
