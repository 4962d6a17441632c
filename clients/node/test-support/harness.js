// Shared helpers for the tests (kept outside test/ so `node --test` does not
// run this file as a test).

import { accessSync, constants, readFileSync, statSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

export const PACKAGE_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
export const FIXTURES = path.join(PACKAGE_DIR, "test", "fixtures");

/**
 * The gateway binary under test, from TUI_GATEWAY_BIN. Throws a message
 * that says what to do when it is unset or unusable.
 */
export function gatewayBin() {
  const bin = process.env.TUI_GATEWAY_BIN;
  if (!bin) {
    throw new Error(
      "TUI_GATEWAY_BIN is not set: these tests run against the real gateway. " +
        "Build it (cargo build --release) and run e.g. TUI_GATEWAY_BIN=$PWD/target/release/tui-gateway node --test",
    );
  }
  try {
    if (!statSync(bin).isFile()) throw new Error("not a regular file");
    accessSync(bin, constants.X_OK);
  } catch (err) {
    throw new Error(`TUI_GATEWAY_BIN=${bin} is not an executable file (${err.message})`);
  }
  return bin;
}

/**
 * Polls `check` until it returns a truthy value (returned) or the deadline
 * passes (throws, naming `what`). Never a fixed sleep: the wait ends as soon
 * as the condition holds, and the deadline is generous for a loaded machine.
 */
export async function waitFor(check, { timeout = 15_000, interval = 10, what = "condition" } = {}) {
  const deadline = performance.now() + timeout;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (performance.now() > deadline) throw new Error(`timed out after ${timeout} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, interval));
  }
}

/** The state letter of /proc/<pid>/stat, or null if there is no such process. */
export function procState(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "latin1");
    return stat.slice(stat.lastIndexOf(")") + 2).split(" ")[0];
  } catch {
    return null;
  }
}

/** Whether a pid runs (a zombie counts as gone: it runs no code, only waits to be reaped). */
export function isRunning(pid) {
  const st = procState(pid);
  return st !== null && st !== "Z";
}

/** Waits until none of `pids` runs; returns the time it took, ms. */
export async function waitGone(pids, { timeout = 15_000, what } = {}) {
  const t0 = performance.now();
  await waitFor(() => pids.every((p) => !isRunning(p)), {
    timeout,
    what: what ?? `pids ${pids.join(", ")} to be gone (still running: ${pids.filter(isRunning).join(", ")})`,
  });
  return performance.now() - t0;
}

/** Collects an async iterable into an array. */
export async function collect(iterable) {
  const out = [];
  for await (const item of iterable) out.push(item);
  return out;
}

export function mib(bytes) {
  return (bytes / (1024 * 1024)).toFixed(1);
}

/**
 * The `code` and `signal` of an exit (a handle's `exited`, a process.exit
 * payload), without the envelope members (`cause`, `duration_ms`, ...),
 * for tests that compare only those two.
 */
export function codeSignal({ code, signal }) {
  return { code, signal };
}
