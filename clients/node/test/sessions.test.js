// Sessions (the repository's docs/sessions.md) against the real binary: a
// session started by one client, left, attached to again with and without a
// cursor; a relay killed mid-stream and the automatic reattach that loses
// nothing; a stale epoch refused; end() ending it. Every test runs its
// gateways with XDG_RUNTIME_DIR in a fresh directory of its own (mode 0700),
// names its sessions with this process's pid and a counter, and ends every
// session it made before it returns (see sandbox()).
// The same scenarios, by name, are in the Python suite (tests/test_sessions.py).

import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { chmodSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { test } from "node:test";
import { Gateway, GatewayExited, GatewayStartError } from "../index.js";
import { collect, gatewayBin, isRunning, waitFor, waitGone } from "../test-support/harness.js";

const BIN = gatewayBin();

/** The longest any one call of these tests may take (a lost request would otherwise wait for the test's timeout). */
const CALL = { timeout: 20_000 };

/** A conformance scenario: shows as "conformance: <name>", checked by clients/conformance.py. */
function conformance(name, fn) {
  return test(`conformance: ${name}`, { timeout: 30_000 }, fn);
}

let counter = 0;
/** A session name no other test (or parallel run) uses. */
function uniqueName() {
  return `node-${process.pid}-${++counter}`;
}

/** The sessions `tui-gateway sessions --json` lists with this env. */
function listSessions(env) {
  return JSON.parse(execFileSync(BIN, ["sessions", "--json"], { env: { ...process.env, ...env }, encoding: "utf8" }));
}

/**
 * A fresh runtime directory for one test's sessions, and its cleanup: every
 * session still listed there is ended and gone before the directory is
 * removed. SIGTERM ends a session, except when it comes from the session's
 * parent (this process, for a session a Gateway started here): that only
 * detaches its client. So what SIGTERM left within 2 s gets SIGKILL (which
 * takes the session's commands along: parent-death signal).
 */
function sandbox(t) {
  const dir = mkdtempSync(path.join(tmpdir(), "tgw-node-sessions-"));
  chmodSync(dir, 0o700);
  const env = { XDG_RUNTIME_DIR: dir };
  t.after(async () => {
    let pids = [];
    try {
      pids = listSessions(env).map((s) => s.pid);
    } catch {
      // nothing listed
    }
    const signal = (sig) => {
      for (const pid of pids.filter(isRunning)) {
        try {
          process.kill(pid, sig);
        } catch {
          // already gone
        }
      }
    };
    signal("SIGTERM");
    try {
      await waitGone(pids, { timeout: 2000 });
    } catch {
      signal("SIGKILL");
      await waitGone(pids, { what: "the test's sessions to end" });
    }
    rmSync(dir, { recursive: true, force: true });
  });
  return env;
}

conformance("session: losing the relay mid-stream loses nothing", async (t) => {
  const env = sandbox(t);
  const name = uniqueName();
  // Client A starts the session (its process is the session itself) and
  // leaves: close() detaches, and the session runs on.
  const a = await Gateway.start({ command: BIN, env, session: name });
  assert.equal(a.readyPayload.pid, a.pid, "the first --session process is the session itself");
  assert.equal(a.readyPayload.session.name, name);
  const sessionPid = a.pid;
  const exitA = await a.close();
  assert.equal(exitA.detached, true);
  assert.equal(exitA.error, null);
  assert.ok(isRunning(sessionPid), "close() detached: the session runs on");
  const saved = a.session;
  assert.equal(saved.name, name);
  assert.match(saved.epoch, /\S/);
  assert.ok(saved.framesReceived >= 1, "the ready was frame 0");

  // Client B comes back with the saved cursor, through a relay.
  const b = await Gateway.attach(name, { command: BIN, env, framesReceived: saved.framesReceived, epoch: saved.epoch });
  try {
    assert.notEqual(b.pid, sessionPid, "B talks through a relay");
    assert.equal(b.readyPayload.session.name, name, "readyPayload comes from gateway.info");
    assert.equal(b.session.epoch, saved.epoch);
    const events = [];
    b.on("detached", (info) => events.push(["detached", info]));
    b.on("reattached", (info) => events.push(["reattached", info]));

    const proc = await b.spawnProcess(["seq", "1", "200000"]);
    // Kill the relay as the output arrives (at dispatch, not after the
    // consumer caught up), so that much of it is still in flight.
    let received = 0;
    let killed = null;
    b.on("process.output", (p) => {
      if (p.proc !== proc.proc) return;
      received += p.data.length;
      if (killed === null && received >= 64 * 1024) {
        killed = b.pid;
        process.kill(killed, "SIGKILL");
      }
    });
    const lines = (await collect(proc.lines())).map((l) => l.line);
    const exit = await proc.exited;
    assert.equal(exit.code, 0);
    assert.ok(killed, "the relay was killed mid-stream");
    const expected = Array.from({ length: 200_000 }, (_, i) => String(i + 1));
    assert.equal(lines.length, expected.length, "every line exactly once");
    assert.ok(lines.every((l, i) => l === expected[i]), "in order, nothing lost, nothing twice");

    assert.deepEqual(events.map(([type]) => type), ["detached", "reattached"]);
    const [, lost] = events[0];
    const [, back] = events[1];
    assert.match(lost.reason, /SIGKILL/);
    assert.equal(back.framesFrom, lost.framesReceived, "the stream went on at the cursor");
    assert.ok(back.framesTotal >= back.framesFrom);
    assert.notEqual(b.pid, killed, "a new relay");
    assert.ok(b.session.framesReceived > lost.framesReceived);
    assert.deepEqual(await b.ping(CALL), { ok: true });
  } finally {
    const ended = await b.end();
    assert.equal(ended.detached, false);
  }
  await waitGone([sessionPid], { what: "the session to end" });
  assert.deepEqual(listSessions(env), []);
});

conformance("session: an attach with a stale epoch is refused with the reason", async (t) => {
  const env = sandbox(t);
  const name = uniqueName();
  const a = await Gateway.start({ command: BIN, env, session: name });
  const cursor = await a.detach(CALL);
  assert.equal(cursor.name, name);
  const stale = cursor.epoch === "0000000000000000" ? "1111111111111111" : "0000000000000000";
  const err = await Gateway.attach(name, { command: BIN, env, framesReceived: cursor.framesReceived, epoch: stale }).then(
    () => assert.fail("the attach was accepted"),
    (e) => e,
  );
  assert.ok(err instanceof GatewayStartError, String(err));
  assert.equal(err.code, 69);
  const said = err.stderrTail.filter((l) => l.startsWith("[gateway-attach] "));
  assert.ok(said.length > 0, `the relay says why on stderr: ${JSON.stringify(err.stderrTail)}`);
  assert.equal(err.reason, said.at(-1).slice("[gateway-attach] ".length));
  assert.match(err.reason, /epoch/i);
  assert.ok(err.message.includes(err.reason), err.message);
  // The session is untouched: the right epoch attaches.
  const b = await Gateway.attach(name, { command: BIN, env, framesReceived: cursor.framesReceived, epoch: cursor.epoch });
  assert.deepEqual(await b.ping(CALL), { ok: true });
  await b.end();
});

conformance("session: attach without a cursor, list and adopt a running process", async (t) => {
  const env = sandbox(t);
  const name = uniqueName();
  const a = await Gateway.start({ command: BIN, env, session: name });
  const script = 'echo before; read line; echo "after $line"; exit 7';
  const started = await a.spawnProcess(["sh", "-c", script], { tag: "adopt-me" });
  const lines = started.lines();
  assert.equal((await lines.next()).value.line, "before");
  await a.detach(CALL);

  // A UI that restarted: no cursor, no handles.
  const b = await Gateway.attach(name, { command: BIN, env });
  try {
    assert.equal(b.readyPayload.session.name, name, "readyPayload comes from gateway.info (no ready is sent again)");
    const listed = await b.listProcesses(CALL);
    const entry = listed.find((p) => p.proc === started.proc);
    assert.ok(entry, JSON.stringify(listed));
    assert.deepEqual(entry.argv, ["sh", "-c", script]);
    assert.equal(entry.tag, "adopt-me");
    assert.equal(entry.running, true);
    const handle = await b.adoptProcess(started.proc, CALL);
    assert.equal(handle.pid, started.pid);
    assert.equal(handle.running, true);
    assert.equal(await b.adoptProcess(started.proc, CALL), handle, "one handle per process");

    // The cursor of an attach without one is exact too: lose the relay
    // now, and the output written after the reattach arrives once.
    const reattached = new Promise((resolve) => b.once("reattached", resolve));
    process.kill(b.pid, "SIGKILL");
    await reattached;
    await handle.write("hello\n", CALL);
    assert.deepEqual((await collect(handle.lines())).map((l) => l.line), ["after hello"]);
    const exit = await handle.exited;
    assert.equal(exit.code, 7);
    assert.deepEqual(await b.listProcesses(CALL), []);
  } finally {
    await b.end();
  }
});

conformance("session: a fresh attach without a cursor counts from latest and reattaches exactly", async (t) => {
  const env = sandbox(t);
  const name = uniqueName();
  // A starts the session, runs a command that writes a first part, waits
  // for a line, then writes a second part; A leaves while the first part
  // is still coming, so that the session wrote frames before B attaches
  // and queues the rest while nobody is attached.
  const a = await Gateway.start({ command: BIN, env, session: name });
  const sessionPid = a.pid;
  const proc = await a.spawnProcess(["sh", "-c", "seq 1 50000; read go; seq 50001 100000"], { output: "ignore" });
  await new Promise((resolve) => a.once("process.output", resolve));
  await a.close();
  const expected = Array.from({ length: 100_000 }, (_, i) => `${i + 1}\n`).join("");

  // B: a fresh UI, no cursor (`--frames-received latest`).
  const b = await Gateway.attach(name, { command: BIN, env });
  let bEnded = false;
  try {
    const from = b.session.framesReceived;
    assert.ok(from >= 2, `the session had written frames before B attached (the ready, the spawn's answer): cursor ${from}`);
    assert.notEqual(b.pid, sessionPid, "B talks through a relay");
    assert.equal(b.readyPayload.session.name, name, "readyPayload comes from gateway.info");
    const events = [];
    b.on("detached", (info) => events.push(["detached", info]));
    b.on("reattached", (info) => events.push(["reattached", info]));
    let text = "";
    let armed = false;
    let sinceArmed = 0;
    let killed = null;
    const exited = new Promise((resolve) => b.on("process.exit", (p) => p.proc === proc.proc && resolve(p)));
    b.on("process.output", (p) => {
      if (p.proc !== proc.proc) return;
      text += p.data;
      if (!armed) return;
      sinceArmed += p.data.length;
      if (killed === null && sinceArmed >= 64 * 1024) {
        killed = b.pid;
        process.kill(killed, "SIGKILL");
      }
    });
    const handle = await b.adoptProcess(proc.proc, CALL);
    await handle.write("go\n", CALL);
    armed = true;
    const exit = await exited;
    assert.equal(exit.code, 0);
    assert.ok(killed, "B's relay was killed mid-stream");
    assert.deepEqual(events.map(([type]) => type), ["detached", "reattached"]);
    assert.equal(events[1][1].framesFrom, events[0][1].framesReceived, "the stream went on at the cursor");
    // From its first frame on, B got the output with no gap and nothing twice:
    // a suffix of the whole, and all of the second part.
    assert.ok(text.length >= expected.length - expected.indexOf("50001\n"), `B got ${text.length} bytes`);
    assert.ok(expected.endsWith(text), "no gap, nothing twice");
    assert.deepEqual(await b.ping(CALL), { ok: true });
    const cursor = b.session;
    const exitB = await b.close();
    bEnded = true;
    assert.equal(exitB.detached, true);

    // C: start({session}) finds the session running and becomes a relay,
    // also with `latest`: the session was idle, so C starts where B stopped.
    const c = await Gateway.start({ command: BIN, env, session: name });
    try {
      assert.notEqual(c.pid, sessionPid, "C is a relay");
      assert.equal(c.readyPayload.session.name, name, "readyPayload comes from gateway.info");
      assert.equal(c.session.epoch, cursor.epoch);
      // C starts where B stopped; the one frame more is the answer to the gateway.info start() asked for.
      assert.equal(c.session.framesReceived, cursor.framesReceived + 1, "C's cursor is exact");
      const seq = await c.spawnProcess(["seq", "1", "100000"]);
      let received = 0;
      let killedC = null;
      c.on("process.output", (p) => {
        if (p.proc !== seq.proc) return;
        received += p.data.length;
        if (killedC === null && received >= 64 * 1024) {
          killedC = c.pid;
          process.kill(killedC, "SIGKILL");
        }
      });
      const reattached = new Promise((resolve) => c.once("reattached", resolve));
      const lines = (await collect(seq.lines())).map((l) => l.line);
      assert.equal((await seq.exited).code, 0);
      assert.ok(killedC, "C's relay was killed mid-stream");
      await reattached;
      assert.equal(lines.length, 100_000, "every line exactly once");
      assert.ok(lines.every((l, i) => l === String(i + 1)), "in order, nothing lost, nothing twice");
    } finally {
      await c.end();
    }
  } finally {
    if (!bEnded) await b.end();
  }
  await waitGone([sessionPid], { what: "the session to end" });
});

conformance("session: end ends it and a later attach is refused", async (t) => {
  const env = sandbox(t);
  const name = uniqueName();
  const a = await Gateway.start({ command: BIN, env, session: name });
  const sleeper = await a.spawnProcess(["sleep", "1000"], { stdin: "null", output: "ignore" });
  const exit = await a.end();
  assert.equal(exit.code, 0);
  assert.equal(exit.detached, false);
  assert.equal(exit.error, null);
  await waitGone([a.readyPayload.pid, sleeper.pid], { what: "the session and its command to end" });
  await waitFor(() => listSessions(env).length === 0, { what: "the session to leave the list" });
  const err = await Gateway.attach(name, { command: BIN, env }).then(
    () => assert.fail("attached to an ended session"),
    (e) => e,
  );
  assert.ok(err instanceof GatewayStartError);
  assert.equal(err.code, 69);
  assert.match(err.message, new RegExp(`cannot attach to session ${name}`));
});

conformance("session: a session that is gone ends the client with the reason", async (t) => {
  const env = sandbox(t);
  const name = uniqueName();
  const a = await Gateway.start({ command: BIN, env, session: name });
  const sessionPid = a.pid;
  await a.detach(CALL);
  const b = await Gateway.attach(name, { command: BIN, env });
  const events = [];
  b.on("detached", () => events.push("detached"));
  b.on("reattached", () => events.push("reattached"));
  const sleeper = await b.spawnProcess(["sleep", "1000"], { stdin: "null", output: "ignore" });
  // The session dies: the relay's connection ends, the attach that follows finds no session.
  process.kill(sessionPid, "SIGKILL");
  const exit = await b.closed;
  assert.deepEqual(events, ["detached"], "one attempt, no retry: the session is gone");
  assert.equal(exit.code, 69);
  assert.ok(exit.reason.includes(name), exit.reason);
  assert.equal(exit.reason, exit.exitReason, "the reason is the relay's [gateway-attach] line");
  assert.ok(exit.error instanceof GatewayExited);
  await assert.rejects(sleeper.exited, GatewayExited);
  await assert.rejects(b.ping(CALL), GatewayExited);
  await waitGone([sleeper.pid], { what: "the dead session's command to be gone (parent-death signal)" });
});
