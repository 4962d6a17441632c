// One running gateway: its pipes, its framer and writer, its stderr ring,
// and the moment it is over.
//
// A Gateway has one Link at a time; a restart makes a new one with the next
// generation number. Every callback a Link makes carries the Link itself, so
// the Gateway can drop anything that comes from a Link that is no longer
// current (the generation guard).

import { readFileSync } from "node:fs";
import { LineFramer } from "./framer.js";
import { FrameWriter } from "./writer.js";
import { ProcessTable } from "./process.js";
import { StderrLines } from "./stderr.js";

/**
 * After the child's exit, how long to wait for its stdout and stderr to
 * reach EOF before declaring it over anyway. The gateway gives its children
 * none of its fds, so its pipes close when it exits; this bound only
 * matters for another command (a test fixture) that leaked them to a
 * background child.
 */
export const PIPE_EOF_GRACE_MS = 500;

// ---- the exit hook ----------------------------------------------------------
//
// If the UI's Node process exits without close(), every gateway still
// running gets SIGTERM from a process.on('exit') hook. Only synchronous work
// is possible there, so SIGTERM (not a wait-then-SIGKILL sequence) is what
// can be done: the gateway then drains with its shutdown grace, SIGTERMs its
// children at once and SIGKILLs them at 850 ms (default 1 s grace), and
// exits. SIGKILL here would be worse: a SIGKILLed gateway cannot stop its
// children, which would be left running. Independently, the gateway also
// sees its stdin reach EOF and its parent go away, and shuts down by itself;
// that path also covers a UI killed by a signal, where no 'exit' hook runs.

const liveChildren = new Set();
let exitHookInstalled = false;

function exitHook() {
  for (const child of liveChildren) {
    try {
      child.kill("SIGTERM");
    } catch {
      // already gone
    }
  }
}

function trackChild(child) {
  liveChildren.add(child);
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    process.on("exit", exitHook);
  }
}

// ---- orphans ------------------------------------------------------------------

/** Reads (state, pgrp) of a pid from /proc, or null if it is gone. */
function procState(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "latin1");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return { state: fields[0], pgrp: Number(fields[2]) };
  } catch {
    return null;
  }
}

/**
 * A gateway that died by a signal (SIGKILL, a crash) ran no shutdown: its
 * children may keep running, reparented to init (a gateway that sets
 * PR_SET_PDEATHSIG takes its direct children with it, but not their
 * descendants). Each child the gateway spawned leads its own process group
 * (its pgid is its pid), so the client, which knows their pids, kills those
 * groups. A group is signalled only while its leader's pid still exists
 * (running, or a zombie not yet reaped) and still leads that group: the
 * kernel does not hand out a pid that is still in use, so the group is
 * provably the one the gateway made, never a stranger that reused the id.
 * Linux only (/proc); elsewhere it does nothing.
 * @param {number[]} pids
 * @returns {number[]} the groups that were signalled
 */
export function killOrphanGroups(pids) {
  const killed = [];
  for (const pid of pids) {
    if (!Number.isInteger(pid) || pid <= 1) continue;
    const st = procState(pid);
    if (!st || st.pgrp !== pid) continue;
    try {
      process.kill(-pid, "SIGKILL");
      killed.push(pid);
    } catch {
      // gone meanwhile
    }
  }
  return killed;
}

// ---- the link -------------------------------------------------------------------

export class Link {
  /** @type {number} */
  generation;
  /** @type {import("node:child_process").ChildProcess | null} */
  child;
  /** @type {number | undefined} */
  pid;
  /** @type {FrameWriter} */
  writer;
  /** The gateway.ready payload, once it came. */
  ready = null;
  /** The exit, once over: {code, signal, pid, stderrTail, generation, startError?} */
  exitInfo = null;
  /** When the link was created (ms, performance.now()). */
  startedAt = performance.now();
  /** Handles of the processes this gateway runs, by proc id. */
  procs = new ProcessTable();
  /** Set by the Gateway: the pending start() ({resolve, reject, ...}) until gateway.ready. */
  readyWaiter = null;
  /** When gateway.ready came (ms, performance.now()). */
  readyAt = null;
  /** The GatewayExited for this link, once over. */
  exitError = null;
  /**
   * What pending calls and process handles are bound to: the link itself,
   * or, in a session, an object shared by every link of one attachment (a
   * reattach replaces the link, not the calls waiting on it). Its
   * `exitError` is set when the last of them is over for good.
   */
  key;
  /**
   * In a session (docs/sessions.md), set by the Gateway:
   * `{name, role, base, skipFirst, previousReady, attached}`. `role` is
   * "session" when this process is the session itself, "relay" when it
   * relays to one, "unknown" until the first line says which (the session's
   * `gateway.ready`, or a relay's `gateway.attached`); the cursor is `base`
   * (0 for the session itself, a relay's `frames_from`; null until known)
   * plus the lines read, without the first one when `skipFirst` (a relay's
   * `gateway.attached`, which is not part of the stream). Null without a session.
   */
  session = null;
  /** Set by the Gateway once it asked the session to let this client go (detach, close). */
  expectDetach = false;
  /** Set by the Gateway: lines read and not delivered yet, `{msg | malformed, line}` (a session's first frames wait for listeners), or null. */
  held = null;

  #callbacks;
  #framer;
  #stderr;
  #stdout;
  #exitSeen = false;
  #stdoutEnded = false;
  #stderrEnded = false;
  #graceTimer = null;
  #exitWaiters = [];
  /** This process is the session itself: its stdout may end while it runs on (detached). */
  #sessionItself = false;
  #detachTimer = null;
  #detachGraceOver = false;

  /**
   * @param {{
   *   generation: number,
   *   child?: import("node:child_process").ChildProcess,
   *   stdin: import("node:stream").Writable,
   *   stdout: import("node:stream").Readable,
   *   stderr?: import("node:stream").Readable | null,
   *   maxLineBytes?: number,
   *   key?: object,
   *   procs?: ProcessTable,
   *   session?: object | null,
   *   onMessage: (link: Link, msg: any) => void,
   *   onMalformed: (link: Link, info: object) => void,
   *   onStderr: (link: Link, line: string) => void,
   *   onExit: (link: Link, info: object) => void,
   * }} options
   */
  constructor(options) {
    const { generation, child = null, stdin, stdout, stderr = null, maxLineBytes } = options;
    this.generation = generation;
    this.child = child;
    this.pid = child?.pid;
    this.key = options.key ?? this;
    if (options.procs) this.procs = options.procs;
    this.session = options.session ?? null;
    this.#callbacks = options;
    this.#stdout = stdout;
    this.writer = new FrameWriter(stdin);
    this.#framer = new LineFramer({
      maxLineBytes,
      onLine: (line) => this.#onLine(line),
      onOversize: ({ limit, preview }) =>
        this.#malformed({ reason: `line longer than ${limit} bytes; discarded up to the next newline`, line: preview }),
      onTruncated: ({ bytes, preview }) =>
        this.#malformed({ reason: `truncated frame: ${bytes} bytes without a final newline at EOF`, line: preview }),
    });
    this.#stderr = new StderrLines((line) => this.#callbacks.onStderr(this, line));

    stdout.on("data", (chunk) => this.#framer.push(chunk));
    stdout.on("end", () => {
      this.#framer.end();
      this.#stdoutEnded = true;
      this.#maybeOver();
    });
    stdout.on("error", () => {}); // 'close' follows; the exit tells why
    stdout.on("close", () => {
      if (!this.#stdoutEnded) {
        this.#stdoutEnded = true;
        this.#maybeOver();
      }
    });
    if (stderr) {
      stderr.on("data", (chunk) => this.#stderr.push(chunk));
      stderr.on("error", () => {});
      stderr.on("close", () => {
        if (!this.#stderrEnded) {
          this.#stderr.end();
          this.#stderrEnded = true;
          this.#maybeOver();
        }
      });
    } else {
      this.#stderrEnded = true;
    }

    if (child) {
      // A session outlives its client: the exit hook must not end it. A
      // relay needs no hook either (it exits when its stdin ends).
      if (!this.session) trackChild(child);
      child.on("exit", (code, signal) => this.#onChildExit(code, signal));
      child.on("error", (err) => {
        // Only a failed spawn has no pid; kill() errors on a live child are not exits.
        if (child.pid === undefined && !this.#exitSeen) {
          this.exitInfo = { code: null, signal: null, startError: err };
          this.#onChildExit(null, null);
        }
      });
    } else {
      // No process (attached streams): the end of stdout is the end.
      this.#exitSeen = true;
      this.exitInfo = { code: null, signal: null };
    }
  }

  /** Whether the link is over (exit seen and pipes done). */
  get over() {
    return this.#exitWaiters === null;
  }

  /** Whether the child process has exited (its pipes may still be draining). */
  get exited() {
    return this.#exitSeen;
  }

  /** The last stderr lines, oldest first. */
  stderrTail() {
    return this.#stderr.tail();
  }

  /** Lines read from stdout so far (every "\n"; docs/sessions.md counts frames so). */
  get linesRead() {
    return this.#framer.lines;
  }

  /**
   * The session cursor: how many frames of the session's stream this client
   * has (null without a session): the lines delivered (read, and not held
   * for listeners: those before the first line held), less the first one
   * when it is not part of the stream.
   */
  get framesReceived() {
    const s = this.session;
    if (!s) return null;
    const n = this.held?.length ? this.held[0].line - 1 : this.#framer.lines;
    return (s.base ?? 0) + (s.skipFirst && n > 0 ? n - 1 : n);
  }

  /**
   * This process turned out to be the session itself (not a relay): the
   * end of its stdout without its exit means it let this client go (a
   * detach, another client taking over) and runs on.
   */
  markSessionItself() {
    this.#sessionItself = true;
    this.#maybeOver();
  }

  /** Whether this process is the session itself. */
  get sessionItself() {
    return this.#sessionItself;
  }

  /**
   * The session itself did not let go of its pipes after a detach: drop
   * them (it sees EOF and EPIPE, which detach it) and call the link over.
   * Never signals the process: that would end the session.
   */
  forceDetach() {
    if (this.over) return;
    this.expectDetach = true;
    this.#stdout.destroy();
    this.writer.fail(new Error("detached"));
    this.child?.stdin?.destroy();
  }

  /** Closes the gateway's stdin after what is queued: the orderly shutdown. */
  endInput() {
    this.writer.end();
  }

  /** Sends a signal to the gateway; false if it is already gone. */
  kill(signal) {
    if (this.child) {
      if (this.#exitSeen) return false;
      try {
        return this.child.kill(signal);
      } catch {
        return false;
      }
    }
    // Attached streams: "killing" means dropping the streams.
    this.#stdout.destroy();
    return true;
  }

  /** Resolves true once the link is over, or false after `ms`. */
  waitOver(ms = Infinity) {
    if (this.over) return Promise.resolve(true);
    return new Promise((resolve) => {
      const entry = { resolve, timer: null };
      if (Number.isFinite(ms)) {
        entry.timer = setTimeout(() => {
          const i = this.#exitWaiters?.indexOf(entry) ?? -1;
          if (i !== -1) this.#exitWaiters.splice(i, 1);
          resolve(false);
        }, ms);
      }
      this.#exitWaiters.push(entry);
    });
  }

  #onLine(buf) {
    if (this.over) return;
    const text = buf.toString("utf8");
    let msg;
    try {
      msg = JSON.parse(text);
    } catch (err) {
      if (text.trim() === "") return; // a blank line: nothing to say
      this.#malformed({ reason: `invalid JSON: ${err.message}`, line: text.slice(0, 1024) });
      return;
    }
    if (msg === null || typeof msg !== "object") {
      this.#malformed({ reason: "not a JSON-RPC message (not an object or array)", line: text.slice(0, 1024) });
      return;
    }
    this.#callbacks.onMessage(this, msg, text);
  }

  #malformed(info) {
    if (this.over) return;
    this.#callbacks.onMalformed(this, info);
  }

  #onChildExit(code, signal) {
    if (this.#exitSeen) return;
    this.#exitSeen = true;
    liveChildren.delete(this.child);
    this.exitInfo = { ...(this.exitInfo ?? {}), code, signal };
    if (this.exitInfo.startError) {
      // Never ran: no pipe will produce anything.
      this.#stdoutEnded = true;
      this.#stderrEnded = true;
    }
    this.#maybeOver();
    if (!this.over) {
      this.#graceTimer = setTimeout(() => {
        // Someone else holds the pipes open: stop listening, it is over.
        this.#framer.end();
        if (!this.#stderrEnded) this.#stderr.end();
        this.#stdoutEnded = true;
        this.#stderrEnded = true;
        this.#maybeOver();
      }, PIPE_EOF_GRACE_MS);
    }
  }

  /**
   * Whether the session itself let this client go and runs on: its stdout
   * ended and it did not exit, at once when a detach was asked for, else
   * after PIPE_EOF_GRACE_MS (a session that is ending exits right after
   * closing its stdout).
   */
  #detachedSession() {
    if (!this.#sessionItself || this.#exitSeen || !this.#stdoutEnded) return false;
    if (this.expectDetach || this.#detachGraceOver) return true;
    if (!this.#detachTimer) {
      this.#detachTimer = setTimeout(() => {
        this.#detachGraceOver = true;
        this.#maybeOver();
      }, PIPE_EOF_GRACE_MS);
    }
    return false;
  }

  #maybeOver() {
    if (this.over) return;
    const detached = this.#detachedSession();
    if (!detached && (!this.#exitSeen || !this.#stdoutEnded || !this.#stderrEnded)) return;
    clearTimeout(this.#graceTimer);
    clearTimeout(this.#detachTimer);
    const waiters = this.#exitWaiters;
    this.#exitWaiters = null;
    this.exitInfo = {
      ...(detached ? { code: null, signal: null, detached: true } : this.exitInfo),
      pid: this.pid,
      generation: this.generation,
      stderrTail: this.#stderr.tail(),
    };
    this.writer.fail(new Error(detached ? "detached from the session" : "the gateway exited"));
    if (this.child) {
      this.child.stdin?.destroy();
      this.child.stdout?.destroy();
      // The session runs on: let go of its stderr too, and let this
      // process exit without waiting for it.
      this.child.stderr?.destroy();
      if (detached) this.child.unref();
    }
    this.#callbacks.onExit(this, this.exitInfo);
    for (const w of waiters) {
      clearTimeout(w.timer);
      w.resolve(true);
    }
  }
}
