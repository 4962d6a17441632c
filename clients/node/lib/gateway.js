// The connection object: one Gateway per tui-gateway the UI runs.
//
// It sends calls and dispatches what comes back: responses to the pending
// calls (pending.js), requests to their handlers (handlers.js), events to
// listeners and process handles (process.js). It also owns the lifecycle:
// start, restart under a policy (restart.js), close. The wire itself (pipes,
// framing, writing, stderr, the exit) is one Link per gateway process
// (link.js); every frame carries its Link, and frames from a Link that is
// no longer current are dropped: the generation guard.
//
// In a session (docs/sessions.md, session.js) the process may be a relay
// to the session, and losing it loses nothing: the Gateway attaches again
// with its cursor (the frames it read) and the new Link carries on with
// the same key, so the calls and process handles bound to that key never
// notice (a reattach, not a restart: the generation stays).

import { spawn } from "node:child_process";
import { Emitter } from "./emitter.js";
import { GatewayClosed, GatewayExited, GatewayStartError, RpcError, attachLine } from "./errors.js";
import { answer } from "./handlers.js";
import { callOptions } from "./options.js";
import { Link, killOrphanGroups } from "./link.js";
import { resolveCommand } from "./locate.js";
import { PendingCalls } from "./pending.js";
import { ProcessHandle, ladderParam } from "./process.js";
import { RestartPolicy } from "./restart.js";
import {
  attachRefused,
  checkFrames,
  checkSessionName,
  checkSessionArgs,
  gatewayPart,
  reattachPolicy,
  sessionOf,
} from "./session.js";
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
/** JSON-RPC invalid params: what the gateway answers for a proc it does not know. */
const INVALID_PARAMS = -32602;

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

/** Why a session link was lost, in words (the `detached` event's `reason`). */
function lostReason(link, info) {
  const name = link.session.name;
  if (info.detached) return `session ${name} let this client go (another client took over, or its pipes were lost)`;
  const what = link.sessionItself ? `session ${name} (pid ${link.pid})` : `the relay to session ${name} (pid ${link.pid})`;
  const how = info.signal ? `was killed by ${info.signal}` : `exited with code ${info.code}`;
  const said = attachLine(info.stderrTail);
  return `${what} ${how}${said ? `: ${said}` : ""}`;
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
  /** In a session: `{name, epoch}` (the epoch once the session said it); else null. */
  #sess = null;
  /** The reattach policy ({tries, initialDelay, maxDelay}), or null: none, or not a session. */
  #reattach = null;
  /** The session link whose cursor is this client's (the current one, or the last one lost). */
  #cursorLink = null;
  /** The key of the links being replaced by a reattach under way, else null. */
  #reattachKey = null;
  /** Wakes a reattach waiting between attempts (close() does). */
  #wakeReattach = null;
  /** detach() asked the session to let this client go: no reattach. */
  #detaching = false;

  /** @private use Gateway.start() or Gateway.attach() */
  constructor(options, token) {
    if (token !== INTERNAL) throw new TypeError("use Gateway.start(options) or Gateway.attach(name | streams)");
    super();
    this.#options = options;
    this.#restart = new RestartPolicy(options.restart);
    const name = options.session ?? options.attachTo?.name;
    if (name !== undefined) {
      this.#sess = { name, epoch: options.attachTo?.epoch ?? null };
      this.#reattach = reattachPolicy(options.reattach);
    }
    this.closed = new Promise((resolve) => {
      this.#resolveClosed = resolve;
    });
  }

  /**
   * Finds the binary, spawns it, waits for `gateway.ready`. With `session`,
   * spawns `tui-gateway --session NAME --frames-received latest [args]`: it
   * is the session (it resolves on its `gateway.ready`, frame 0), or a relay
   * to the running one (it resolves on the relay's `gateway.attached`, whose
   * `frames_from` is the cursor; `readyPayload` is then `gateway.info`'s
   * answer). docs/sessions.md.
   * @throws {GatewayStartError}
   */
  static async start(options = {}) {
    if (options.session !== undefined) {
      checkSessionName(options.session);
      checkSessionArgs(options.args);
    }
    const bridged = (options.args ?? []).includes("--");
    const readyTimeout = bridged ? BRIDGE_READY_TIMEOUT_MS : DEFAULT_READY_TIMEOUT_MS;
    const gw = new Gateway({ args: [], readyTimeout, ...options }, INTERNAL);
    await gw.#startLink();
    return gw;
  }

  /**
   * `Gateway.attach(name, {framesReceived?, epoch?, takeover?, ...})`:
   * attaches to the running session `name` through a relay (`tui-gateway
   * attach NAME --frames-received N|latest`). With `framesReceived` (the
   * cursor a client saved) the stream goes on at that frame; without, it
   * starts at the first frame not yet written (`latest`). Either way the
   * promise resolves on the relay's `gateway.attached`, whose `frames_from`
   * is the cursor, and `readyPayload` is `gateway.info`'s answer (the
   * session's ready is not sent again). A refused attach is a
   * GatewayStartError with the relay's reason.
   *
   * `Gateway.attach({readable, writable, stderr?})` speaks the protocol over
   * existing streams instead of a spawned binary (tests, custom
   * transports). No restart; close() ends `writable`.
   */
  static async attach(target, options = {}) {
    if (typeof target === "string") return Gateway.#attachSession(target, options ?? {});
    const { readable, writable, stderr = null, readyTimeout = DEFAULT_READY_TIMEOUT_MS, maxLineBytes, requestTimeout } = target ?? {};
    const gw = new Gateway({ readyTimeout, maxLineBytes, requestTimeout, attach: { readable, writable, stderr } }, INTERNAL);
    await gw.#startLink();
    return gw;
  }

  static async #attachSession(name, options) {
    checkSessionName(name);
    // `name` may come along when a saved cursor ({name, epoch, framesReceived}) is the options.
    const { framesReceived, epoch, takeover = false, name: cursorName, ...rest } = options;
    if (cursorName !== undefined && cursorName !== name) throw new TypeError(`the cursor is session ${JSON.stringify(cursorName)}'s, not ${JSON.stringify(name)}'s`);
    if (rest.args !== undefined) throw new TypeError("attach() takes no args: the session's own settings stay as they are");
    if (rest.session !== undefined) throw new TypeError("attach(name, options) names the session once, as its first argument");
    if (rest.restart !== undefined) throw new TypeError("attach() takes no restart policy (reattach is its own: the `reattach` option)");
    if (framesReceived !== undefined && framesReceived !== null) checkFrames("framesReceived", framesReceived);
    if (epoch !== undefined && epoch !== null && typeof epoch !== "string") throw new TypeError(`epoch must be a string, got ${typeof epoch}`);
    const attachTo = { name, framesReceived: framesReceived ?? undefined, epoch: epoch ?? undefined, takeover: Boolean(takeover) };
    const gw = new Gateway({ readyTimeout: DEFAULT_READY_TIMEOUT_MS, ...rest, args: [], attachTo }, INTERNAL);
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

  /**
   * In a session: `{name, epoch, framesReceived}`, the cursor to save and
   * give to `Gateway.attach(name, {framesReceived, epoch})` later (it stays
   * readable after close() and detach()); null without a session.
   */
  get session() {
    const s = this.#sess;
    if (!s) return null;
    return { name: s.name, epoch: s.epoch, framesReceived: this.#cursorLink?.framesReceived ?? 0 };
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
      const settled = this.#pending.add(id, link.key, c.method, this.#callOptions(options)).then(
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

  // ---- sessions (docs/sessions.md) ----------------------------------------------

  /**
   * `gateway.detach`: the session lets this client go and runs on. The
   * Gateway is then closed (no reattach); resolves with the cursor to
   * attach again with (`gw.session`). Without a session: RpcError -32601.
   */
  async detach(options) {
    if (this.#closing) throw this.#closedError();
    this.#detaching = true;
    try {
      await this.request("gateway.detach", undefined, options);
    } catch (err) {
      this.#detaching = false;
      throw err;
    }
    // The session lets this client go once its answer is written; close()
    // then ends the input and waits for the link to be over.
    if (this.#link) this.#link.expectDetach = true;
    await this.close();
    return this.session;
  }

  /**
   * Ends the session (`gateway.end`: its commands and backend stop, as on
   * `gateway.shutdown`) and closes the Gateway: `close({end: true})`.
   * Without a session it is `close({shutdown: true})`.
   */
  end(options = {}) {
    return this.close({ ...options, end: true });
  }

  /**
   * `gateway.ack`: the session may drop the frames before `frames` (default:
   * every frame this client has, `session.framesReceived`) from its journal.
   * Resolves with `{first_held}`.
   */
  ack(frames, options) {
    try {
      if (frames === undefined || frames === null) {
        const s = this.session;
        if (!s) throw new TypeError("ack() without a frame count needs a session (Gateway.start({session}) or Gateway.attach(name))");
        frames = s.framesReceived;
      }
      checkFrames("frames", frames);
    } catch (err) {
      return Promise.reject(err);
    }
    return this.request("gateway.ack", { frames }, options);
  }

  /** `gateway.session`: the session's state (name, epoch, pid, attached, processes, journal and frame counts). */
  sessionInfo(options) {
    return this.request("gateway.session", undefined, options);
  }

  /**
   * A handle for a process this client did not spawn, or no longer has a
   * handle for (a UI that restarted and attached to its session): it gets
   * every later event of the process (its output, its exit), as the handle
   * `spawnProcess` returns. `proc` is its id in `listProcesses()`; `encoding`
   * must be the one it was spawned with (default "utf8"). RpcError -32602
   * when no such process runs. A process this client already has a handle
   * for gets that handle.
   */
  async adoptProcess(proc, options) {
    options = callOptions(options);
    if (!Number.isSafeInteger(proc)) throw new TypeError(`adoptProcess() takes a proc id (an integer from listProcesses()), not ${JSON.stringify(proc)}`);
    const encoding = options.encoding ?? "utf8";
    if (encoding !== "utf8" && encoding !== "base64") throw new TypeError(`encoding must be "utf8" or "base64", not ${JSON.stringify(encoding)}`);
    if (this.#closing) throw this.#closedError();
    const link = this.#usableLink() ?? (await this.#waitLink(options.abortSignal));
    return this.#call(link, "process.list", undefined, {
      timeout: options.timeout,
      abortSignal: options.abortSignal,
      // Registered when the list is read, before any later frame: every
      // event of the process after the list reaches the handle.
      transform: (list) => {
        const known = link.procs.get(proc);
        if (known) return known;
        const entry = Array.isArray(list) ? list.find((p) => p?.proc === proc) : undefined;
        if (!entry) throw new RpcError(INVALID_PARAMS, `unknown proc ${proc}: process.list does not show it running`, { proc });
        const handle = new ProcessHandle((method, p, opts) => this.#callOn(link, method, p, opts ?? {}), {
          proc,
          pid: entry.pid,
          argv: entry.argv,
          encoding,
          generation: link.generation,
          discard: options.output === "ignore",
          cancelLadder: entry.cancel,
        });
        link.procs.adopt(handle);
        return handle;
      },
    });
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
          const call = (method, p, opts) => this.#callOn(link, method, p, opts ?? {});
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
   *
   * In a session, ending stdin **detaches**: the session runs on (its
   * commands too) and the exit details say `detached: true`; the session
   * process itself is never signalled then (a relay may be). `end: true`
   * ends the session instead (`gateway.end`, answered before it shuts
   * down), as `shutdown: true` does.
   */
  close({ grace, shutdown = false, end = false } = {}) {
    if (this.#closePromise) return this.#closePromise;
    this.#closing = true;
    clearTimeout(this.#restartTimer);
    this.#restartTimer = null;
    this.#wakeReattach?.();
    this.#closePromise = this.#closeNow(grace, shutdown, end);
    return this.#closePromise;
  }

  #closedError() {
    return new GatewayClosed(undefined, this.#lastExit);
  }

  async #closeNow(grace, shutdown, end) {
    if (this.#starting) {
      try {
        await this.#starting;
      } catch {
        // a failed restart leaves nothing to close
      }
    }
    const link = this.#link;
    if (link && !link.over) {
      const gatewayGraceMs = this.#graceMs(link);
      const waitMs = grace ?? gatewayGraceMs + CLOSE_MARGIN_MS;
      const ending = shutdown || end || !link.session;
      if (link.session && end && !shutdown && link.ready) {
        // gateway.end answers before the session shuts down: once the answer
        // is here, the session ends whatever happens to this client's pipes.
        await this.#call(link, "gateway.end", undefined, { timeout: waitMs }).catch(() => {});
      } else if ((shutdown || end) && link.ready) {
        link.writer.write(JSON.stringify({ jsonrpc: "2.0", method: "gateway.shutdown" })).catch(() => {});
      }
      if (!ending) link.expectDetach = true;
      link.endInput();
      if (!(await link.waitOver(waitMs))) {
        if (!ending && link.sessionItself) {
          // Never signal the session itself to detach: that would end it.
          link.forceDetach();
          await link.waitOver();
        } else {
          link.kill("SIGTERM");
          if (!(await link.waitOver(gatewayGraceMs + CLOSE_MARGIN_MS))) {
            link.kill("SIGKILL");
            await link.waitOver();
          }
        }
      }
    }
    this.#finish(this.#closedError());
    return this.#lastExit;
  }

  /** The gateway's shutdown grace, ms, as its ready payload says (with a backend, in its `gateway` field). */
  #graceMs(link) {
    const limits = link.ready?.limits ?? link.ready?.gateway?.limits;
    return (limits?.shutdown_grace_s ?? DEFAULT_SHUTDOWN_GRACE_S) * 1000;
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
    let args = o.args ?? [];
    let command = o.command;
    let link;
    if (o.attach) {
      const { readable, writable, stderr } = o.attach;
      link = this.#makeLink({ generation, stdin: writable, stdout: readable, stderr });
    } else {
      const env = buildEnv(o.env);
      command = resolveCommand({ command: o.command, env, cwd: o.cwd }).path;
      let session = null;
      if (this.#sess) ({ args, session } = this.#planSession());
      link = this.#spawnLink({ command, args, env, generation, session, key: session ? { exitError: null } : undefined });
      if (session) this.#cursorLink = link;
    }
    this.#link = link;
    const ms = o.readyTimeout ?? DEFAULT_READY_TIMEOUT_MS;
    await this.#waitReady(link, command, args, ms);
    if (link.session && link.session.base === null) {
      // Neither the session's own ready nor a gateway.attached with its frames_from: no exact cursor.
      link.kill("SIGKILL");
      await link.waitOver(READY_KILL_WAIT_MS);
      throw new GatewayStartError(`session ${link.session.name}: the first line did not say where the stream starts (no gateway.attached with frames_from)`, {
        command, args, pid: link.pid, stderrTail: link.stderrTail(),
      });
    }
    if (link.session?.attached && !link.session.previousReady) {
      // Attached through a relay: no gateway.ready comes, so ask for what it says.
      try {
        link.ready = await this.#call(link, "gateway.info", undefined, { timeout: ms });
      } catch (err) {
        link.kill("SIGKILL");
        throw new GatewayStartError(`attached to session ${link.session.name}, but gateway.info failed: ${err.message}`, {
          command, args, pid: link.pid, stderrTail: link.stderrTail(), cause: err,
        });
      }
    }
    this.readyPayload = link.ready;
    this.#releaseHeld(link);
    return link;
  }

  /** Spawns the binary with pipes: one Link (not yet current). */
  #spawnLink({ command, args, env, generation, session = null, key, procs }) {
    let child;
    try {
      child = spawn(command, args, { stdio: ["pipe", "pipe", "pipe"], env, cwd: this.#options.cwd });
    } catch (err) {
      throw new GatewayStartError(`cannot start the gateway: spawn ${command}: ${err.message}`, { command, args, cause: err });
    }
    return this.#makeLink({ generation, child, stdin: child.stdin, stdout: child.stdout, stderr: child.stderr, session, key, procs });
  }

  /** Waits for the link's `gateway.ready` (or, through a relay, `gateway.attached`); kills it after `ms`. */
  #waitReady(link, command, args, ms) {
    const role = link.session?.role;
    const what = role === "relay" ? "gateway.attached" : role === "unknown" ? "gateway.ready or gateway.attached" : "gateway.ready";
    return new Promise((resolve, reject) => {
      // Settled by gateway.ready (#onEventFrame), an early exit (#onLinkExit) or the timer.
      link.readyWaiter = { resolve, reject, command, args, timer: null };
      link.readyWaiter.timer = setTimeout(async () => {
        if (!link.readyWaiter) return;
        link.readyWaiter = null;
        link.kill("SIGKILL");
        await link.waitOver(READY_KILL_WAIT_MS);
        reject(
          new GatewayStartError(`the gateway (${[command, ...args].join(" ")}) sent no ${what} within ${ms} ms; it was killed`, {
            command, args, pid: link.pid, stderrTail: link.stderrTail(), timedOut: true,
          }),
        );
      }, ms);
    });
  }

  /**
   * The command line of a session start or attach, and how its cursor
   * counts (docs/sessions.md). A relay is always given a cursor: the one the
   * client saved, or `latest` (the first frame not yet written), so that it
   * writes `gateway.attached` with `frames_from`, the cursor's base, and the
   * session sends nothing again (no ready that is not part of the stream).
   * `--session NAME` takes `--frames-received latest` too, used only if it
   * turns out to be a relay: the session itself ignores it and sends its
   * ready, frame 0. `base` is null until the first line says it.
   */
  #planSession() {
    const o = this.#options;
    const name = this.#sess.name;
    const at = o.attachTo;
    const session = (role, base) => ({ name, role, base, skipFirst: role === "relay", previousReady: null, attached: null });
    if (!at) {
      return { args: ["--session", name, "--frames-received", "latest", ...(o.args ?? [])], session: session("unknown", null) };
    }
    const cursor = at.framesReceived !== undefined;
    const args = ["attach", name, "--frames-received", cursor ? String(at.framesReceived) : "latest"];
    if (at.epoch !== undefined) args.push("--epoch", at.epoch);
    if (at.takeover) args.push("--takeover");
    return { args, session: session("relay", cursor ? at.framesReceived : null) };
  }

  #makeLink(streams) {
    return new Link({
      ...streams,
      maxLineBytes: this.#options.maxLineBytes,
      onMessage: (link, msg) => this.#onMessage(link, msg),
      onMalformed: (link, info) => {
        if (link !== this.#link) return;
        if (link.held) link.held.push({ malformed: info, line: link.linesRead });
        else this.emit("malformed", { ...info, ...this.#meta(link) });
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
      // A relay that exits 69 was refused by the session (or found none): its stderr says why.
      const refused = link.session && info.code === 69 ? attachLine(info.stderrTail) : null;
      const what = info.startError
        ? `cannot start the gateway: spawn ${w.command}: ${info.startError.message}`
        : refused
          ? `cannot attach to session ${link.session.name}` // the reason follows: "(exit code 69: <the relay's reason>)"
          : `the gateway (${[w.command, ...w.args].join(" ")}) exited before sending gateway.ready`;
      w.reject(
        new GatewayStartError(what, {
          command: w.command, args: w.args, pid: link.pid, stderrTail: info.stderrTail,
          ...(info.startError ? { cause: info.startError } : { code: info.code, signal: info.signal }),
          ...(refused ? { reason: refused } : {}),
        }),
      );
    }
    if (this.#link === link) this.#link = null;
    if (!link.ready) return; // a failed start: the caller of start() has the error
    if (this.#wantsReattach(link, info)) {
      const p = this.#reattachLoop(link, info).finally(() => {
        if (this.#starting === p) this.#starting = null;
      });
      this.#starting = p;
      return;
    }
    this.#linkFailed(link, info);
  }

  /** The link is over for good (no reattach): reject what waits on it, report the exit, restart or finish. */
  #linkFailed(link, info) {
    const s = link.session;
    // Asked to detach (detach(), close()), and the session runs on.
    const detached = Boolean(s) && (Boolean(info.detached) || (link.expectDetach && info.code === 0 && !info.signal));
    let reason = info.reason;
    if (reason === undefined && info.detached) {
      reason = link.expectDetach
        ? `detached from session ${s.name}; it runs on`
        : `session ${s.name} let this client go (another client took over, or its pipes were lost); it runs on`;
    } else if (reason === undefined && detached) {
      reason = `detached from session ${s.name}; it runs on`;
    }
    const error = new GatewayExited(reason === undefined ? info : { ...info, reason });
    link.exitError = error;
    link.key.exitError = error;
    this.#pending.rejectLink(link.key, error);
    const running = link.procs.failAll(error);
    // Only a gateway killed by a signal leaves its children behind; a
    // relay's are the session's, which runs on.
    const orphansKilled = info.signal && (!s || link.sessionItself) ? killOrphanGroups(running) : [];
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
      detached,
      // A clean exit (code 0), or a detach asked for, is not an error: nothing to report.
      error: (info.code === 0 && !info.signal) || (detached && link.expectDetach) ? null : error,
    };
    this.emit("exit", this.#lastExit);
    if (restarting) this.#scheduleRestart(error);
    else this.#finish(error);
  }

  // ---- internals: reattaching to a session ---------------------------------------------

  /** Whether losing this link is a reason to attach to its session again. */
  #wantsReattach(link, info) {
    if (!link.session || !this.#reattach || this.#closing || this.#detaching || link.expectDetach) return false;
    // The session itself exited: it is over, there is nothing to attach to.
    if (link.sessionItself && !info.detached) return false;
    return true;
  }

  /**
   * Attaches to the session again with the cursor of the lost link, up to
   * `tries` times with backoff; on success the new link takes the old one's
   * place (same key, same process table, same generation) and the stream
   * goes on at the next frame. A refused attach (exit 69: the session is
   * gone, is another one, or another client holds it) is not retried.
   */
  async #reattachLoop(lost, info) {
    const policy = this.#reattach;
    const from = lost.framesReceived;
    // The process died (a signal, a failure): the session may not have
    // seen its connection end yet, so it is taken over (it was this
    // client's). A relay that exited 0, or a session that let this client
    // go, ended the attachment on the session's side: no takeover then.
    const takeover = info.signal !== null || (info.code !== null && info.code !== 0);
    this.#reattachKey = lost.key;
    this.emit("detached", { reason: lostReason(lost, info), framesReceived: from });
    let failure = null;
    let delay = policy.initialDelay;
    for (let attempt = 1; attempt <= policy.tries && !this.#closing; attempt++) {
      if (attempt > 1) {
        await this.#pause(delay);
        delay = Math.min(delay * 2, policy.maxDelay);
        if (this.#closing) break;
      }
      try {
        const link = await this.#attachAgain(lost, from, takeover);
        this.#reattachKey = null;
        if (this.#closing) return; // close() detaches it
        const attached = link.session.attached;
        this.emit("reattached", { framesFrom: link.session.base, framesTotal: Number.isSafeInteger(attached.frames_total) ? attached.frames_total : null });
        this.#releaseLinkWaiters(link, null);
        return;
      } catch (err) {
        failure = err;
        if (err instanceof GatewayStartError && attachRefused(err.code)) break;
      }
    }
    this.#reattachKey = null;
    if (failure instanceof GatewayStartError && attachRefused(failure.code)) {
      // The session is gone (or is not ours any more): report that, not the lost relay.
      this.#linkFailed(lost, {
        code: failure.code, signal: failure.signal, pid: failure.pid, stderrTail: failure.stderrTail,
        generation: lost.generation, reason: failure.reason ?? failure.message,
      });
    } else {
      this.#linkFailed(lost, info);
    }
  }

  /** One attach with the cursor `from`: resolves with the new, current link once `gateway.attached` came. */
  async #attachAgain(lost, from, takeover) {
    const o = this.#options;
    const env = buildEnv(o.env);
    const command = resolveCommand({ command: o.command, env, cwd: o.cwd }).path;
    const { name, epoch } = this.#sess;
    const args = ["attach", name, "--frames-received", String(from)];
    if (epoch) args.push("--epoch", epoch);
    if (takeover) args.push("--takeover");
    const session = { name, role: "relay", base: from, skipFirst: true, previousReady: lost.ready, attached: null };
    const link = this.#spawnLink({ command, args, env, generation: lost.generation, session, key: lost.key, procs: lost.procs });
    this.#link = link;
    await this.#waitReady(link, command, args, o.readyTimeout ?? DEFAULT_READY_TIMEOUT_MS);
    return link;
  }

  /** Waits `ms`, or less if close() begins. */
  #pause(ms) {
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      function done() {
        clearTimeout(timer);
        resolve();
      }
      this.#wakeReattach = done;
    }).finally(() => {
      this.#wakeReattach = null;
    });
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

  /**
   * The first `gateway.ready` of a session link, which only the session
   * itself sends (it has the pid we spawned; a relay, always given
   * `--frames-received`, writes `gateway.attached` instead): that ready is
   * frame 0 of the session's stream. Also the session's epoch.
   */
  #sessionReady(link, payload) {
    const s = link.session;
    if (s.role === "unknown" && gatewayPart(payload).pid === link.pid) {
      s.role = "session";
      s.base = 0;
      s.skipFirst = false;
      link.markSessionItself();
    }
    // Else a relay sent a ready: s.base stays null, and #startLink refuses the link (no exact cursor).
    const named = sessionOf(payload);
    if (named?.epoch) this.#sess.epoch = named.epoch;
    this.#cursorLink = link;
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

  /**
   * A call for something bound to `link` (a process handle): sent on the
   * current link if it carries on from `link` (a reattach), after the
   * reattach under way if there is one; else it fails as `link` did.
   */
  #callOn(link, method, params, options) {
    const current = this.#link;
    if (current && current.key === link.key && current.ready && !current.over) return this.#call(current, method, params, options);
    if (this.#reattachKey === link.key && !this.#closing) {
      return this.#waitLink(options.abortSignal).then(() => this.#callOn(link, method, params, options));
    }
    return this.#call(link, method, params, options);
  }

  #call(link, method, params, options) {
    if (options.abortSignal?.aborted) return Promise.reject(options.abortSignal.reason);
    if (link.over || link !== this.#link) {
      return Promise.reject(link.exitError ?? link.key.exitError ?? this.#final ?? new GatewayExited({ code: null, signal: null }));
    }
    const id = this.#pending.nextId();
    const frame = params === undefined ? { jsonrpc: "2.0", id, method } : { jsonrpc: "2.0", id, method, params };
    let text;
    try {
      text = JSON.stringify(frame);
    } catch (err) {
      return Promise.reject(new TypeError(`the params of ${method} cannot be sent as JSON: ${err.message}`));
    }
    const promise = this.#pending.add(id, link.key, method, this.#callOptions(options));
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
    if (link.held && !this.#answersPendingCall(link, msg)) {
      link.held.push({ msg, line: link.linesRead });
      return;
    }
    this.#dispatch(link, msg);
  }

  /** Whether `msg` is the answer to a call waiting now (never held: start() may be waiting for it). */
  #answersPendingCall(link, msg) {
    return !Array.isArray(msg) && typeof msg.method !== "string" && "id" in msg && this.#pending.has(msg.id, link.key);
  }

  /**
   * In a session, the frames that follow the first ready (the replay, what
   * the session queued while no client was attached) would reach no
   * listener: start() and attach() have not resolved yet. They are held and
   * delivered on the next turn of the event loop, once the caller had the
   * chance to subscribe (right after its await, before the next one). The
   * cursor counts only what was delivered.
   */
  #releaseHeld(link) {
    if (!link.held) return;
    setImmediate(() => {
      const held = link.held;
      if (!held) return;
      while (held.length > 0) {
        const item = held.shift();
        if (link !== this.#link) continue;
        if (item.malformed) this.emit("malformed", { ...item.malformed, ...this.#meta(link) });
        else this.#dispatch(link, item.msg);
      }
      link.held = null;
    });
  }

  #dispatch(link, msg) {
    if (Array.isArray(msg)) {
      // A batch answer: one message per element.
      for (const m of msg) {
        if (m !== null && typeof m === "object" && !Array.isArray(m)) this.#dispatch(link, m);
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
    const entry = this.#pending.take(msg.id, link.key);
    if (!entry) {
      if (this.#pending.takeAbandonedSpawn(msg.id, link.key) && Number.isInteger(msg.result?.proc)) {
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
    answer(this.#handlers.get(method), method, params, { id, method, generation: link.generation }).then(async (body) => {
      // The answer goes to the link that carries on from this one (a
      // reattach), once there is one; that gateway gone, nobody to answer.
      let target = this.#link;
      if ((!target || target.key !== link.key || !target.ready) && this.#reattachKey === link.key) {
        target = await this.#waitLink().catch(() => null);
      }
      if (!target || target.key !== link.key || target.over) return;
      try {
        send(target, { jsonrpc: "2.0", id, ...body });
      } catch (err) {
        send(target, { jsonrpc: "2.0", id, error: { code: -32603, message: `the handler's result cannot be sent as JSON: ${err.message}` } });
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
      if (link.session) {
        this.#sessionReady(link, payload);
        link.held = [];
      }
      link.ready = payload ?? {};
      link.readyAt = performance.now();
      this.readyPayload = link.ready;
      const w = link.readyWaiter;
      if (w) {
        link.readyWaiter = null;
        clearTimeout(w.timer);
        w.resolve();
      }
    } else if (type === "gateway.attached" && !link.ready && link.session && link.session.role !== "session" && link.linesRead === 1) {
      // A relay attached (with a cursor, or `latest`): this event (not
      // counted) stands for the ready, which does not come again; the
      // stream follows, from frame `frames_from`: the cursor's base.
      const s = link.session;
      s.role = "relay";
      s.skipFirst = true;
      s.attached = payload ?? {};
      if (Number.isSafeInteger(payload?.frames_from) && payload.frames_from >= 0) s.base = payload.frames_from;
      if (typeof payload?.epoch === "string") this.#sess.epoch = payload.epoch;
      link.ready = link.session.previousReady ?? { ...payload };
      link.readyAt = performance.now();
      this.#cursorLink = link;
      // A reattach carries on with the listeners there are; a new client holds the replay.
      if (!link.session.previousReady) link.held = [];
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
