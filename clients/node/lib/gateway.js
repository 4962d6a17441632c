// The connection object: one Gateway per tui-gateway the UI runs.
//
// It sends calls and dispatches what comes back: responses to the pending
// calls (pending.js), requests to their handlers (handlers.js), events to
// listeners and process handles (process.js). It also owns the lifecycle:
// start, restart under a policy (restart.js), close. The wire itself (pipes,
// framing, writing, stderr, the exit) is one Link per gateway process
// (link.js); every frame carries its Link, and frames from a Link that is
// no longer current are dropped: the generation guard.

import { spawn } from "node:child_process";
import { Emitter } from "./emitter.js";
import { GatewayClosed, GatewayExited, GatewayStartError, RpcError } from "./errors.js";
import { answer } from "./handlers.js";
import { callOptions } from "./options.js";
import { Link, killOrphanGroups } from "./link.js";
import { resolveCommand } from "./locate.js";
import { PendingCalls } from "./pending.js";
import { ProcessHandle, ladderParam } from "./process.js";
import { RestartPolicy } from "./restart.js";
import { WRITTEN } from "./writer.js";

/** How long start() waits for `gateway.ready`. The gateway sends it within a
 *  few milliseconds of exec; 10 s leaves room for a loaded machine. */
export const DEFAULT_READY_TIMEOUT_MS = 10_000;
/** With a backend (`args` holding `--`), the gateway holds its ready until
 *  the backend's, up to its --backend-ready-timeout (15 s by default). */
export const BRIDGE_READY_TIMEOUT_MS = 20_000;
/** The gateway's default `--shutdown-grace`, used when its ready payload says nothing. */
const DEFAULT_SHUTDOWN_GRACE_S = 1.0;
/** Added to the gateway's own grace before close() escalates: room for its final flush and our read. */
const CLOSE_MARGIN_MS = 1000;
/** After a SIGKILL for a missed ready, how long to wait for the pipes before reporting. */
const READY_KILL_WAIT_MS = 2000;

const INTERNAL = Symbol("internal");

function buildEnv(extra) {
  const env = { ...process.env };
  for (const [k, v] of Object.entries(extra ?? {})) {
    if (v === null || v === undefined) delete env[k];
    else env[k] = String(v);
  }
  return env;
}

function spawnParams(argv, o) {
  const params = { argv };
  if (o.cwd !== undefined) params.cwd = o.cwd;
  if (o.env !== undefined) params.env = o.env;
  if (o.clearEnv !== undefined) params.clear_env = o.clearEnv;
  if (o.stdin !== undefined) params.stdin = o.stdin;
  if (o.stderr !== undefined) params.stderr = o.stderr;
  if (o.encoding !== undefined) params.encoding = o.encoding;
  if (o.tag !== undefined) params.tag = o.tag;
  if (o.pty !== undefined) params.pty = { rows: o.pty.rows, cols: o.pty.cols };
  // Command envelopes (docs/process.md): camelCase here, snake_case on the wire.
  if (o.timeoutMs !== undefined) params.timeout_ms = o.timeoutMs;
  if (o.outputLimit !== undefined) params.output_limit = { bytes: o.outputLimit.bytes, policy: o.outputLimit.policy };
  if (o.limits !== undefined) params.limits = limitsParam(o.limits);
  if (o.cancel !== undefined) params.cancel = ladderParam(o.cancel);
  return o.extraParams ? { ...params, ...o.extraParams } : params;
}

/** `limits` spawn option -> wire member names; members left undefined are not sent. */
const LIMIT_NAMES = {
  memoryBytes: "memory_bytes",
  cpuSeconds: "cpu_seconds",
  openFiles: "open_files",
  processes: "processes",
  fileSizeBytes: "file_size_bytes",
};

function limitsParam(limits) {
  const out = {};
  for (const [key, value] of Object.entries(limits ?? {})) {
    if (value === undefined) continue;
    const name = LIMIT_NAMES[key];
    // An unknown member goes as it is: the gateway refuses it (-32602), naming it.
    out[name ?? key] = value;
  }
  return out;
}

/** Sends one frame on a link; a failed write is reported by the exit, which rejects what waits. */
function send(link, frame) {
  const written = link.writer.write(JSON.stringify(frame));
  if (written !== WRITTEN) written.catch(() => {});
}

export class Gateway extends Emitter {
  /** The payload of the current gateway's `gateway.ready`. */
  readyPayload = null;
  /** Settles with the final exit (no restart follows) once the gateway is over for good. */
  closed;

  #options;
  #restart;
  /** @type {Link | null} the current gateway; null while restarting and at the end */
  #link = null;
  #generation = 0;
  #pending = new PendingCalls();
  #handlers = new Map();
  /** Calls waiting for a restart: {resolve, reject, signal, onAbort} */
  #linkWaiters = [];
  #starting = null;
  #restartTimer = null;
  #closing = false;
  #closePromise = null;
  /** The final GatewayExited, once no restart will follow. */
  #final = null;
  #lastExit = null;
  #resolveClosed;

  /** @private use Gateway.start() or Gateway.attach() */
  constructor(options, token) {
    if (token !== INTERNAL) throw new TypeError("use Gateway.start(options) or Gateway.attach(streams)");
    super();
    this.#options = options;
    this.#restart = new RestartPolicy(options.restart);
    this.closed = new Promise((resolve) => {
      this.#resolveClosed = resolve;
    });
  }

  /**
   * Finds the binary, spawns it, waits for `gateway.ready`.
   * @throws {GatewayStartError}
   */
  static async start(options = {}) {
    const bridged = (options.args ?? []).includes("--");
    const readyTimeout = bridged ? BRIDGE_READY_TIMEOUT_MS : DEFAULT_READY_TIMEOUT_MS;
    const gw = new Gateway({ args: [], readyTimeout, ...options }, INTERNAL);
    await gw.#startLink();
    return gw;
  }

  /**
   * Speaks the protocol over existing streams instead of a spawned binary
   * (tests, custom transports). No restart; close() ends `writable`.
   */
  static async attach({ readable, writable, stderr = null, readyTimeout = DEFAULT_READY_TIMEOUT_MS, maxLineBytes, requestTimeout }) {
    const gw = new Gateway({ readyTimeout, maxLineBytes, requestTimeout, attach: { readable, writable, stderr } }, INTERNAL);
    await gw.#startLink();
    return gw;
  }

  // ---- state ------------------------------------------------------------------

  /** The current gateway's pid (undefined while restarting, after the end, or when attached). */
  get pid() {
    return this.#link?.pid;
  }

  /** 1 for the first gateway, +1 per restart. */
  get generation() {
    return this.#generation;
  }

  /** Whether a gateway is up and ready now. */
  get running() {
    const link = this.#link;
    return Boolean(link && link.ready && !link.exited);
  }

  /** Requests waiting for their response. */
  get pendingCount() {
    return this.#pending.size;
  }

  /** The last lines the current (or last) gateway wrote to stderr. */
  stderrTail() {
    return this.#link?.stderrTail() ?? this.#lastExit?.stderrTail ?? [];
  }

  // ---- calls ------------------------------------------------------------------

  /**
   * Sends a request; resolves with its `result`, rejects with RpcError (an
   * error response), RequestTimeoutError, the `abortSignal`'s reason,
   * GatewayExited, or GatewayClosed (after close()). While a restart is under
   * way the call waits for the new gateway. Aborting (or a timeout) stops
   * only the local wait: the request was sent and runs; its late answer is
   * reported as `unmatched`.
   */
  request(method, params, options) {
    try {
      options = callOptions(options);
    } catch (err) {
      return Promise.reject(err);
    }
    if (this.#closing) return Promise.reject(this.#closedError());
    const link = this.#usableLink();
    if (link) return this.#call(link, method, params, options);
    return this.#waitLink(options.abortSignal).then((l) => this.#call(l, method, params, options));
  }

  /**
   * Sends a notification (no response). Resolves true once the frame was
   * handed to the pipe, false if there is no gateway to send to; never rejects.
   */
  notify(method, params) {
    if (this.#closing) return Promise.resolve(false);
    const link = this.#usableLink();
    if (!link || link.over) return Promise.resolve(false);
    const frame = params === undefined ? { jsonrpc: "2.0", method } : { jsonrpc: "2.0", method, params };
    return link.writer.write(JSON.stringify(frame)).then(() => true, () => false);
  }

  /**
   * Sends several calls as one JSON-RPC batch frame. Resolves with one entry
   * per call, in order: `{ok: true, result}` or `{ok: false, error}` for a
   * request, `null` for a notification (`notify: true`). Rejects only when
   * the gateway exited first (or on timeout/abort).
   */
  async batch(calls, options) {
    options = callOptions(options);
    if (!Array.isArray(calls) || calls.length === 0) throw new TypeError("batch() needs a non-empty array of calls");
    if (this.#closing) throw this.#closedError();
    const link = this.#usableLink() ?? (await this.#waitLink(options.abortSignal));
    if (options.abortSignal?.aborted) throw options.abortSignal.reason;
    const frames = [];
    const results = [];
    for (const c of calls) {
      const frame = { jsonrpc: "2.0", method: c.method };
      if (c.params !== undefined) frame.params = c.params;
      if (c.notify) {
        frames.push(frame);
        results.push(null);
        continue;
      }
      const id = this.#pending.nextId();
      frames.push({ jsonrpc: "2.0", id, ...frame });
      const settled = this.#pending.add(id, link, c.method, this.#callOptions(options)).then(
        (result) => ({ ok: true, result }),
        (error) => {
          if (error instanceof RpcError) return { ok: false, error };
          throw error;
        },
      );
      results.push(settled);
    }
    send(link, frames);
    return Promise.all(results);
  }

  /** `gateway.ping` */
  ping(options) {
    return this.request("gateway.ping", undefined, options);
  }

  /** `gateway.info`: version, pid, protocol, uptime, methods, services, config, client, limits. */
  info(options) {
    return this.request("gateway.info", undefined, options);
  }

  /** `gateway.stats`: the gateway's counters. */
  stats(options) {
    return this.request("gateway.stats", undefined, options);
  }

  /** `client.capabilities`: tells the gateway about this client. */
  capabilities(client, options) {
    return this.request("client.capabilities", client, options);
  }

  /** `process.list` */
  listProcesses(options) {
    return this.request("process.list", undefined, options);
  }

  // ---- requests from the gateway ----------------------------------------------

  /**
   * Answers requests the gateway (or a backend behind it) sends with this
   * method. The handler's return value (or resolved promise) is the result;
   * a thrown RpcError is sent with its code, any other error as -32000 with
   * its message. Methods without a handler get -32601. Returns a function
   * that removes this handler (a no-op once another replaced it).
   */
  onRequest(method, handler) {
    if (typeof handler !== "function") throw new TypeError(`handler for ${method} must be a function`);
    this.#handlers.set(method, handler);
    return () => {
      if (this.#handlers.get(method) === handler) this.#handlers.delete(method);
    };
  }

  offRequest(method) {
    this.#handlers.delete(method);
    return this;
  }

  // ---- events -------------------------------------------------------------------

  /** Calls `fn` for every event of `type`; returns a function that unsubscribes it. */
  on(type, fn) {
    super.on(type, fn);
    return () => this.off(type, fn);
  }

  /** Calls `fn` for the next event of `type` only; returns a function that unsubscribes it. */
  once(type, fn) {
    super.once(type, fn);
    return () => this.off(type, fn);
  }

  // ---- processes ----------------------------------------------------------------

  /**
   * `process.spawn`, with a handle that receives every event of the process,
   * including those read in the same chunk as the spawn response.
   */
  async spawnProcess(argv, options) {
    options = callOptions(options);
    const params = spawnParams(argv, options);
    if (this.#closing) throw this.#closedError();
    const link = this.#usableLink() ?? (await this.#waitLink(options.abortSignal));
    const encoding = params.encoding ?? "utf8";
    link.procs.beginSpawn();
    try {
      return await this.#call(link, "process.spawn", params, {
        timeout: options.timeout,
        abortSignal: options.abortSignal,
        spawn: true,
        // Runs when the response is read, before any later frame: the
        // handle exists before the process's first event is dispatched.
        transform: (result) => {
          const call = (method, p, opts) => this.#call(link, method, p, opts ?? {});
          const handle = new ProcessHandle(call, {
            proc: result.proc,
            pid: result.pid,
            argv,
            encoding,
            generation: link.generation,
            discard: options.output === "ignore",
            cancelLadder: params.cancel,
          });
          link.procs.adopt(handle);
          return handle;
        },
      });
    } finally {
      link.procs.endSpawn();
    }
  }

  // ---- shutdown -----------------------------------------------------------------

  /**
   * Ends the gateway's stdin (it drains and exits 0), waits `grace` ms
   * (default: its shutdown grace + 1 s), then SIGTERM and the same wait again,
   * then SIGKILL. With `shutdown: true`, a `gateway.shutdown` notification
   * goes first, so running commands get SIGTERM at once instead of after
   * 70% of the gateway's grace. Disables restarts. Idempotent: every call
   * returns the same promise, which resolves with the exit details (the
   * `exit` event's ExitInfo; its `error` is null for a clean exit 0), or
   * null if no gateway ever ran. Calls made after it reject with GatewayClosed.
   */
  close({ grace, shutdown = false } = {}) {
    if (this.#closePromise) return this.#closePromise;
    this.#closing = true;
    clearTimeout(this.#restartTimer);
    this.#restartTimer = null;
    this.#closePromise = this.#closeNow(grace, shutdown);
    return this.#closePromise;
  }

  #closedError() {
    return new GatewayClosed(undefined, this.#lastExit);
  }

  async #closeNow(grace, shutdown) {
    if (this.#starting) {
      try {
        await this.#starting;
      } catch {
        // a failed restart leaves nothing to close
      }
    }
    const link = this.#link;
    if (link && !link.over) {
      // With a backend, the gateway's own ready payload is the `gateway` field.
      const limits = link.ready?.limits ?? link.ready?.gateway?.limits;
      const gatewayGraceMs = (limits?.shutdown_grace_s ?? DEFAULT_SHUTDOWN_GRACE_S) * 1000;
      if (shutdown && link.ready) {
        link.writer.write(JSON.stringify({ jsonrpc: "2.0", method: "gateway.shutdown" })).catch(() => {});
      }
      link.endInput();
      if (!(await link.waitOver(grace ?? gatewayGraceMs + CLOSE_MARGIN_MS))) {
        link.kill("SIGTERM");
        if (!(await link.waitOver(gatewayGraceMs + CLOSE_MARGIN_MS))) {
          link.kill("SIGKILL");
          await link.waitOver();
        }
      }
    }
    this.#finish(this.#closedError());
    return this.#lastExit;
  }

  // ---- internals: the current link ----------------------------------------------

  #usableLink() {
    const link = this.#link;
    return link && link.ready ? link : null;
  }

  #waitLink(signal) {
    if (this.#closing) return Promise.reject(this.#closedError());
    if (this.#final) return Promise.reject(this.#final);
    if (signal?.aborted) return Promise.reject(signal.reason);
    return new Promise((resolve, reject) => {
      const waiter = { resolve, reject, signal, onAbort: null };
      if (signal) {
        waiter.onAbort = () => {
          const i = this.#linkWaiters.indexOf(waiter);
          if (i !== -1) this.#linkWaiters.splice(i, 1);
          reject(signal.reason);
        };
        signal.addEventListener("abort", waiter.onAbort, { once: true });
      }
      this.#linkWaiters.push(waiter);
    });
  }

  #releaseLinkWaiters(link, error) {
    const waiters = this.#linkWaiters;
    this.#linkWaiters = [];
    for (const w of waiters) {
      w.signal?.removeEventListener("abort", w.onAbort);
      if (error) w.reject(error);
      else w.resolve(link);
    }
  }

  async #startLink() {
    const o = this.#options;
    const generation = ++this.#generation;
    const args = o.args ?? [];
    let command = o.command;
    let link;
    if (o.attach) {
      const { readable, writable, stderr } = o.attach;
      link = this.#makeLink({ generation, stdin: writable, stdout: readable, stderr });
    } else {
      const env = buildEnv(o.env);
      command = resolveCommand({ command: o.command, env, cwd: o.cwd }).path;
      let child;
      try {
        child = spawn(command, args, { stdio: ["pipe", "pipe", "pipe"], env, cwd: o.cwd });
      } catch (err) {
        throw new GatewayStartError(`cannot start the gateway: spawn ${command}: ${err.message}`, { command, args, cause: err });
      }
      link = this.#makeLink({ generation, child, stdin: child.stdin, stdout: child.stdout, stderr: child.stderr });
    }
    this.#link = link;
    const ms = o.readyTimeout ?? DEFAULT_READY_TIMEOUT_MS;
    await new Promise((resolve, reject) => {
      // Settled by gateway.ready (#onEventFrame), an early exit (#onLinkExit) or the timer.
      link.readyWaiter = { resolve, reject, command, args, timer: null };
      link.readyWaiter.timer = setTimeout(async () => {
        if (!link.readyWaiter) return;
        link.readyWaiter = null;
        link.kill("SIGKILL");
        await link.waitOver(READY_KILL_WAIT_MS);
        reject(
          new GatewayStartError(`the gateway (${[command, ...args].join(" ")}) sent no gateway.ready within ${ms} ms; it was killed`, {
            command, args, pid: link.pid, stderrTail: link.stderrTail(), timedOut: true,
          }),
        );
      }, ms);
    });
    this.readyPayload = link.ready;
    return link;
  }

  #makeLink(streams) {
    return new Link({
      ...streams,
      maxLineBytes: this.#options.maxLineBytes,
      onMessage: (link, msg) => this.#onMessage(link, msg),
      onMalformed: (link, info) => {
        if (link === this.#link) this.emit("malformed", { ...info, ...this.#meta(link) });
      },
      onStderr: (link, line) => {
        if (link === this.#link) this.emit("stderr", line, this.#meta(link));
      },
      onExit: (link, info) => this.#onLinkExit(link, info),
    });
  }

  #onLinkExit(link, info) {
    if (link.readyWaiter) {
      // Over before gateway.ready: start() fails with what we know.
      const w = link.readyWaiter;
      link.readyWaiter = null;
      clearTimeout(w.timer);
      const what = info.startError
        ? `cannot start the gateway: spawn ${w.command}: ${info.startError.message}`
        : `the gateway (${[w.command, ...w.args].join(" ")}) exited before sending gateway.ready`;
      w.reject(
        new GatewayStartError(what, {
          command: w.command, args: w.args, pid: link.pid, stderrTail: info.stderrTail,
          ...(info.startError ? { cause: info.startError } : { code: info.code, signal: info.signal }),
        }),
      );
    }
    if (this.#link === link) this.#link = null;
    if (!link.ready) return; // a failed start: the caller of start() has the error

    const error = new GatewayExited(info);
    link.exitError = error;
    this.#pending.rejectLink(link, error);
    const running = link.procs.failAll(error);
    // Only a gateway killed by a signal leaves its children behind.
    const orphansKilled = info.signal ? killOrphanGroups(running) : [];
    const restarting = !this.#closing &&
      this.#restart.wantsRestart(info.code, info.signal, performance.now() - (link.readyAt ?? link.startedAt));

    this.#lastExit = {
      code: info.code,
      signal: info.signal,
      reason: error.reason,
      exitReason: error.exitReason,
      stderrTail: info.stderrTail,
      pid: info.pid,
      generation: info.generation,
      restarting,
      orphansKilled,
      // A clean exit (code 0) is not an error: nothing to report.
      error: info.code === 0 && !info.signal ? null : error,
    };
    this.emit("exit", this.#lastExit);
    if (restarting) this.#scheduleRestart(error);
    else this.#finish(error);
  }

  #scheduleRestart(lastError) {
    const wait = this.#closing ? null : this.#restart.nextDelay();
    if (wait === null) return this.#finish(lastError);
    this.#restartTimer = setTimeout(() => this.#restartNow(lastError), wait);
  }

  async #restartNow(lastError) {
    this.#restartTimer = null;
    if (this.#closing) return this.#finish(lastError);
    let link;
    try {
      this.#starting = this.#startLink();
      link = await this.#starting;
    } catch (err) {
      this.#starting = null;
      this.emit("restartFailed", err);
      this.#scheduleRestart(lastError);
      return;
    }
    this.#starting = null;
    if (this.#closing) return; // close() takes this new gateway down
    this.emit("restart", { generation: link.generation, pid: link.pid, ready: link.ready, previous: lastError });
    this.#releaseLinkWaiters(link, null);
  }

  #finish(error) {
    if (this.#final) return;
    this.#final = error;
    this.#releaseLinkWaiters(null, error);
    this.#resolveClosed(this.#lastExit);
  }

  // ---- internals: calls ------------------------------------------------------------

  /**
   * The options a call is registered with: its own `timeout`, else the
   * Gateway's `requestTimeout`. `minTimeout` (process.cancel, which answers
   * only once the process tree is gone) raises the `requestTimeout` default
   * so that it never fails a call that is still within its expected time.
   */
  #callOptions(options) {
    let timeout = options.timeout ?? this.#options.requestTimeout;
    if (options.timeout == null && timeout != null && options.minTimeout != null) {
      timeout = Math.max(timeout, options.minTimeout);
    }
    return { ...options, timeout };
  }

  #call(link, method, params, options) {
    if (options.abortSignal?.aborted) return Promise.reject(options.abortSignal.reason);
    if (link.over || link !== this.#link) {
      return Promise.reject(link.exitError ?? this.#final ?? new GatewayExited({ code: null, signal: null }));
    }
    const id = this.#pending.nextId();
    const frame = params === undefined ? { jsonrpc: "2.0", id, method } : { jsonrpc: "2.0", id, method, params };
    let text;
    try {
      text = JSON.stringify(frame);
    } catch (err) {
      return Promise.reject(new TypeError(`the params of ${method} cannot be sent as JSON: ${err.message}`));
    }
    const promise = this.#pending.add(id, link, method, this.#callOptions(options));
    const written = link.writer.write(text);
    if (written !== WRITTEN) written.catch(() => {}); // the exit rejects the call
    return promise;
  }

  // ---- internals: dispatch ----------------------------------------------------------

  #meta(link) {
    return { generation: link.generation, pid: link.pid };
  }

  #onMessage(link, msg) {
    if (link !== this.#link) return; // the generation guard: an old gateway's frames are never delivered
    if (Array.isArray(msg)) {
      // A batch answer: one message per element.
      for (const m of msg) {
        if (m !== null && typeof m === "object" && !Array.isArray(m)) this.#onMessage(link, m);
        else this.#malformedMessage(link, m, "batch element is not an object");
      }
      return;
    }
    if (typeof msg.method === "string") {
      if ("id" in msg) this.#onServerRequest(link, msg);
      else if (msg.method === "event") this.#onEventFrame(link, msg);
      else this.emit("notification", msg.method, msg.params, this.#meta(link));
    } else if ("id" in msg && ("result" in msg || "error" in msg)) {
      this.#onResponse(link, msg);
    } else {
      this.#malformedMessage(link, msg, "neither a request, a notification nor a response");
    }
  }

  #malformedMessage(link, msg, reason) {
    let line;
    try {
      line = JSON.stringify(msg).slice(0, 1024);
    } catch {
      line = String(msg);
    }
    this.emit("malformed", { reason, line, ...this.#meta(link) });
  }

  #onResponse(link, msg) {
    const entry = this.#pending.take(msg.id, link);
    if (!entry) {
      if (this.#pending.takeAbandonedSpawn(msg.id, link) && Number.isInteger(msg.result?.proc)) {
        // A spawn we gave up on did start: do not leave it running.
        this.#call(link, "process.signal", { proc: msg.result.proc, signal: "SIGKILL" }, {}).catch(() => {});
      }
      this.emit("unmatched", msg, this.#meta(link));
      return;
    }
    if (msg.error !== undefined && msg.error !== null) {
      entry.reject(RpcError.fromResponse(msg.error, entry.method));
      return;
    }
    let result = msg.result;
    if (entry.transform) {
      try {
        result = entry.transform(result);
      } catch (err) {
        entry.reject(err);
        return;
      }
    }
    entry.resolve(result);
  }

  #onServerRequest(link, msg) {
    const { id, method, params } = msg;
    answer(this.#handlers.get(method), method, params, { id, method, generation: link.generation }).then((body) => {
      if (link !== this.#link || link.over) return; // that gateway is gone: nobody to answer
      try {
        send(link, { jsonrpc: "2.0", id, ...body });
      } catch (err) {
        send(link, { jsonrpc: "2.0", id, error: { code: -32603, message: `the handler's result cannot be sent as JSON: ${err.message}` } });
      }
    });
  }

  #onEventFrame(link, msg) {
    const type = msg.params?.type;
    if (typeof type !== "string") {
      this.#malformedMessage(link, msg, "event without a string params.type");
      return;
    }
    const payload = msg.params.payload;
    if (type === "gateway.ready" && !link.ready) {
      link.ready = payload ?? {};
      link.readyAt = performance.now();
      this.readyPayload = link.ready;
      const w = link.readyWaiter;
      if (w) {
        link.readyWaiter = null;
        clearTimeout(w.timer);
        w.resolve();
      }
    }
    if (type === "process.output" || type === "process.exit") link.procs.route(type, payload);
    const meta = this.#meta(link);
    this.emit(type, payload, meta);
    this.emit("event", type, payload, meta);
  }
}
