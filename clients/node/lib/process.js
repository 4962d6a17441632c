// A process the gateway runs for us (`process.spawn`, docs/process.md).
//
// The handle owns the output of one `proc`: the Gateway pushes every
// `process.output` chunk into it as soon as the frame is read, and the one
// consumer (the async iterator, or `lines()` built on it) takes them in
// order. `exited` settles only when the end (the `process.exit` event, or
// the loss of the gateway) has arrived *and* no chunk is left waiting to be
// read, so a UI never shows an exit before the last output.

import { StringDecoder } from "node:string_decoder";
import { RpcError } from "./errors.js";
import { Fifo } from "./fifo.js";
import { LineAssembler } from "./lines.js";
import { callOptions } from "./options.js";

// Internal entry points, called by the Gateway only.
export const PUSH = Symbol("push");
export const EXIT = Symbol("exit");
export const FAIL = Symbol("fail");

/** Largest piece one `process.write` call of writeAll() carries, in bytes
 *  (the Python client's `WRITE_PIECE_BYTES` is the same): well below the
 *  gateway's default per-child stdin queue (`--child-stdin-limit`, 1 MiB), so
 *  a piece is never refused for its size alone. */
export const WRITE_PIECE_BYTES = 64 * 1024;
/** Backoff while writeAll() waits for room in the child's stdin queue (-32001): first and last delay. */
const WRITE_RETRY_FIRST_MS = 5;
const WRITE_RETRY_MAX_MS = 200;
/** JSON-RPC code for "overloaded: retry later" (docs/protocol.md). */
const OVERLOADED = -32001;

/** The gateway's cancel ladder when neither the spawn nor the cancel gives one
 *  (docs/process.md, "The cancel ladder"). */
export const DEFAULT_CANCEL_LADDER = Object.freeze([
  Object.freeze(["SIGINT", 2000]),
  Object.freeze(["SIGTERM", 3000]),
  Object.freeze(["SIGKILL"]),
]);
/** Added to a ladder's waits to bound a `process.cancel` call when the
 *  Gateway has a `requestTimeout`: the answer comes once the tree is gone,
 *  which after the last step (SIGKILL) is a matter of milliseconds. */
export const CANCEL_MARGIN_MS = 5000;
/** JSON-RPC code for invalid params: "unknown proc" once the process's exit event was sent. */
const INVALID_PARAMS = -32602;
/** JSON-RPC code for "the handler failed": ESRCH when nothing of the process is left to signal. */
const HANDLER_FAILED = -32000;

/**
 * Whether a `process.signal` error only says the process is gone: its exit
 * event was sent (-32602 "unknown proc"), or nothing of it is left to signal
 * (-32000 ESRCH). signal() then resolves false instead of throwing.
 */
function processGone(err) {
  if (!(err instanceof RpcError)) return false;
  if (err.code === INVALID_PARAMS) return /unknown proc/.test(err.message);
  return err.code === HANDLER_FAILED && err.data?.code === "ESRCH";
}

/** The params of one `process.write`: strings as UTF-8, bytes as base64. */
function writeParams(proc, data) {
  if (typeof data === "string") return { proc, data };
  if (data instanceof Uint8Array) {
    return { proc, data: Buffer.from(data.buffer, data.byteOffset, data.byteLength).toString("base64"), encoding: "base64" };
  }
  throw new TypeError(`write() takes a string or bytes (Uint8Array, Buffer), not ${data === null ? "null" : typeof data}`);
}

/** Members of a `process.exit` payload copied to the exit a handle settles with. */
const EXIT_MEMBERS = ["cause", "duration_ms", "output_bytes", "discarded", "limit", "usage"];

/**
 * A cancel ladder as the wire wants it: `[[signal, waitMs], ..., [signal]]`.
 * A step's missing (or undefined) wait is left out rather than sent as null.
 * The gateway checks the rest (1 to 8 steps, waits 0 to 3600000, signal names).
 */
export function ladderParam(ladder) {
  if (!Array.isArray(ladder)) throw new TypeError("a cancel ladder is an array of [signal, waitMs] steps, e.g. [[\"SIGTERM\", 2000], [\"SIGKILL\"]]");
  return ladder.map((step) => {
    if (!Array.isArray(step)) throw new TypeError(`a cancel ladder step is [signal, waitMs] or [signal], not ${JSON.stringify(step)}`);
    const [signal, waitMs] = step;
    return waitMs === undefined || waitMs === null ? [signal] : [signal, waitMs];
  });
}

/** The longest a ladder can take before its last step: the sum of its waits. */
function ladderWaitsMs(ladder) {
  let total = 0;
  for (const step of ladder ?? []) {
    const wait = Array.isArray(step) ? Number(step[1]) : NaN;
    if (Number.isFinite(wait) && wait > 0) total += wait;
  }
  return total;
}

function delay(ms, signal) {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

export class ProcessHandle {
  /** @type {number} the gateway's id for this process */
  proc;
  /** @type {number} the OS pid (also the process group id) */
  pid;
  /** @type {"utf8"|"base64"} */
  encoding;
  /** @type {string[]} */
  argv;
  /** @type {number} generation of the gateway that runs it */
  generation;
  /** Settles with {code, signal, cause, ...} after the exit and the last chunk was read. */
  exited;

  #call;
  #queue = new Fifo();
  /** The consumer waiting in next(): {resolve, reject} */
  #waiter = null;
  #consuming = false;
  #discard = false;
  /** The end: {exit: {code, signal}} or {error} */
  #end = null;
  #settled = false;
  #resolveExited;
  #rejectExited;
  /** The longest ladder wait (ms) a `process.cancel` of this process may be
   *  joined to: the spawn's ladder (a timeout or an output limit runs it),
   *  else the default, and every ladder a cancel() sent. */
  #cancelWaitsMs;
  /** Stop functions of followTerminalSize(), called when the process ends. */
  #followers = new Set();

  /**
   * @param {(method: string, params: object, options?: object) => Promise<any>} call
   *   sends a request to the gateway that runs this process (never to a later one)
   */
  constructor(call, { proc, pid, argv, encoding, generation, discard, cancelLadder }) {
    this.#call = call;
    this.#cancelWaitsMs = ladderWaitsMs(Array.isArray(cancelLadder) ? cancelLadder : DEFAULT_CANCEL_LADDER);
    this.proc = proc;
    this.pid = pid;
    this.argv = argv;
    this.encoding = encoding;
    this.generation = generation;
    this.#discard = Boolean(discard);
    this.exited = new Promise((resolve, reject) => {
      this.#resolveExited = resolve;
      this.#rejectExited = reject;
    });
    // A gateway loss rejects `exited`; that must not crash a UI that never awaited it.
    this.exited.catch(() => {});
  }

  /** Whether the process has not been reported as ended yet. */
  get running() {
    return this.#end === null;
  }

  /** The exit ({code, signal, cause, ...}) once its event arrived (output may still be unread), else null. */
  get exitStatus() {
    return this.#end?.exit ?? null;
  }

  /** Same as `exited`: settles after the exit and the last output chunk was read. */
  wait() {
    return this.exited;
  }

  /** Chunks received but not yet read. */
  get bufferedChunks() {
    return this.#queue.length;
  }

  // ---- input ---------------------------------------------------------------

  /**
   * One `process.write` (strings as UTF-8, bytes as base64): accepted whole
   * or refused whole, never retried. While the child's stdin queue cannot
   * take it the gateway refuses it with RpcError -32001 and nothing is
   * queued; writeAll() waits for room instead. Aborting stops only the local
   * wait: the write may still be accepted.
   * @returns {Promise<{queued: number, pending: number}>}
   */
  write(data, options) {
    try {
      return this.#call("process.write", writeParams(this.proc, data), callOptions(options));
    } catch (err) {
      return Promise.reject(err);
    }
  }

  /**
   * Writes data of any size: in pieces of `pieceBytes` (64 KiB), each sent
   * again after a short backoff while the child's stdin queue is full
   * (-32001), until all were accepted. Resolves with the total `queued` and
   * the last `pending`. `timeout` bounds each piece's call; aborting stops
   * between pieces (the pieces already accepted stay queued for the child).
   * @returns {Promise<{queued: number, pending: number}>}
   */
  async writeAll(data, options) {
    const { pieceBytes = WRITE_PIECE_BYTES, ...opts } = callOptions(options);
    if (!(Number.isInteger(pieceBytes) && pieceBytes > 0)) throw new RangeError(`pieceBytes must be a positive integer, got ${pieceBytes}`);
    let bytes;
    if (typeof data === "string") bytes = Buffer.from(data, "utf8");
    else if (data instanceof Uint8Array) bytes = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
    else throw new TypeError(`writeAll() takes a string or bytes (Uint8Array, Buffer), not ${data === null ? "null" : typeof data}`);
    let queued = 0;
    let pending = 0;
    let off = 0;
    do {
      // Pieces go as base64 of the bytes: a string piece could split a character.
      const piece = bytes.subarray(off, off + pieceBytes);
      const r = await this.#writePiece({ proc: this.proc, data: piece.toString("base64"), encoding: "base64" }, opts);
      queued += r.queued;
      pending = r.pending;
      off += piece.length;
    } while (off < bytes.length);
    return { queued, pending };
  }

  async #writePiece(params, opts) {
    let wait = WRITE_RETRY_FIRST_MS;
    for (;;) {
      try {
        return await this.#call("process.write", params, opts);
      } catch (err) {
        if (!(err instanceof RpcError && err.code === OVERLOADED) || !this.running) throw err;
      }
      await delay(wait, opts.abortSignal);
      wait = Math.min(wait * 2, WRITE_RETRY_MAX_MS);
    }
  }

  /** Closes the process's stdin (after what is queued); on a terminal, sends its EOF character. */
  closeStdin(options) {
    try {
      return this.#call("process.close_stdin", { proc: this.proc }, callOptions(options));
    } catch (err) {
      return Promise.reject(err);
    }
  }

  /**
   * Sends a signal (default SIGTERM) to the process's group, or with
   * `{tree: true}` to the process and every descendant of it, whatever
   * groups they moved to (a job-control shell and its jobs). Resolves true
   * once sent, false if the process had already exited (its exit event was
   * seen: no request is sent; or the gateway answered "unknown proc" or
   * ESRCH). The AbortSignal option is `abortSignal`.
   */
  async signal(name = "SIGTERM", options) {
    const { tree, ...callOpts } = callOptions(options);
    if (this.#end && !this.#end.error) return false;
    const params = { proc: this.proc, signal: name };
    if (tree) params.tree = true;
    try {
      await this.#call("process.signal", params, callOpts);
      return true;
    } catch (err) {
      if (processGone(err)) return false;
      throw err;
    }
  }

  /** signal(name), SIGKILL by default (as Python's asyncio `Process.kill()`). */
  kill(name = "SIGKILL", options) {
    return this.signal(name, options);
  }

  /** signal("SIGTERM") (as Python's asyncio `Process.terminate()`). */
  terminate(options) {
    return this.signal("SIGTERM", options);
  }

  /**
   * Sets the size of the process's terminal (`process.resize`; the kernel
   * sends SIGWINCH to its foreground group): `resize({cols, rows})`, columns
   * first as in node-pty and xterm.js. Only for a process spawned with `pty`
   * (others get RpcError -32602). Resolves with `{ok, rows, cols}`.
   */
  resize(size, options) {
    if (size === null || typeof size !== "object") {
      return Promise.reject(
        new TypeError("resize() takes {cols, rows}, e.g. resize({ cols: 120, rows: 40 }) (the positional resize(rows, cols) is gone)"),
      );
    }
    try {
      return this.#call("process.resize", { proc: this.proc, rows: size.rows, cols: size.cols }, callOptions(options));
    } catch (err) {
      return Promise.reject(err);
    }
  }

  /**
   * Keeps the process's terminal the size of the UI's own: resizes it now
   * and on every SIGWINCH of the UI's terminal (the 'resize' event of
   * `stdout`, default `process.stdout`, with its `columns` and `rows`).
   * `adjust({cols, rows})` may return another size (the pane the process is
   * shown in) or null to skip. Returns a function that stops following;
   * following also stops when the process ends. Resize errors are ignored
   * (the process may be ending).
   */
  followTerminalSize({ stdout = process.stdout, adjust } = {}) {
    if (!stdout || typeof stdout.on !== "function") throw new TypeError("followTerminalSize() needs a stdout with 'resize' events (a TTY stream)");
    let stopped = false;
    const sync = () => {
      if (stopped || !this.running) return;
      const cols = stdout.columns;
      const rows = stdout.rows;
      if (!Number.isInteger(cols) || !Number.isInteger(rows) || cols < 1 || rows < 1) return; // not a terminal
      const size = adjust ? adjust({ cols, rows }) : { cols, rows };
      if (!size) return;
      this.resize({ cols: size.cols, rows: size.rows }).catch(() => {});
    };
    const stop = () => {
      if (stopped) return;
      stopped = true;
      stdout.off?.("resize", sync);
      this.#followers.delete(stop);
    };
    if (!this.running) return stop;
    stdout.on("resize", sync);
    this.#followers.add(stop);
    sync();
    return stop;
  }

  /**
   * `process.cancel`: runs the cancel ladder (`ladder`, else the spawn's
   * `cancel`, else the gateway's default SIGINT, 2 s, SIGTERM, 3 s, SIGKILL)
   * over the process and every descendant, and resolves once nothing of the
   * tree is left, with `{proc, step, signal, code, exit_signal}`. That can be
   * seconds later: with a Gateway `requestTimeout`, the call's timeout is
   * raised to the ladder's waits + 5 s unless `options.timeout` is given
   * (without one there is no timeout). A cancel of a process already being
   * cancelled (a timeout, an output limit, an earlier cancel) joins it and
   * gets the same answer; its `ladder` is then ignored.
   */
  cancel(ladder, options) {
    options = callOptions(options);
    const params = { proc: this.proc };
    if (ladder !== undefined && ladder !== null) params.ladder = ladderParam(ladder);
    this.#cancelWaitsMs = Math.max(this.#cancelWaitsMs, ladderWaitsMs(params.ladder));
    return this.#call("process.cancel", params, { ...options, minTimeout: this.#cancelWaitsMs + CANCEL_MARGIN_MS });
  }

  // ---- output --------------------------------------------------------------

  /** The output chunks, in order: {stream, data} (data is a Buffer in base64 mode). */
  [Symbol.asyncIterator]() {
    if (this.#consuming) throw new Error(`the output of proc ${this.proc} is already being read`);
    if (this.#discard) throw new Error(`the output of proc ${this.proc} is discarded (output: "ignore", or a reader stopped early)`);
    this.#consuming = true;
    const iterator = {
      next: () => this.#next(),
      return: (value) => {
        // The reader stopped early: from now on output is dropped, so
        // `exited` can still settle.
        this.#stopReading();
        return Promise.resolve({ done: true, value });
      },
      [Symbol.asyncIterator]() {
        return iterator;
      },
    };
    return iterator;
  }

  /** Same as iterating the handle. */
  chunks() {
    return this[Symbol.asyncIterator]();
  }

  /**
   * The output as lines: chunks joined per stream and split on "\n" (the
   * "\n" and one "\r" before it removed); a last line without "\n" is
   * yielded when the process ends. With `stream`, only that stream's lines
   * (the other stream's output is read and dropped); otherwise both, each
   * assembled on its own. Bytes (base64 mode) are decoded as UTF-8.
   *
   * `rewrites: true` makes a "\r" that is not part of "\r\n" end a version
   * of the line, as it returns a terminal's cursor to column 0: each version
   * is yielded as it is completed, and those that replace the version
   * yielded before have `rewrite: true` ("\r10%\r50%\r100%\n" gives
   * "10%", then "50%" and "100%" as rewrites). See lib/lines.js.
   *
   * With an output limit: a `truncated` marker adds no line (its data is
   * empty). At a `tail` gap (a chunk with `skipped`) the line in progress
   * is yielded as it is, never joined with the text after the gap, and the
   * next line of that stream carries `skipped` (the bytes left out).
   * @returns {AsyncGenerator<{stream: "stdout"|"stderr"|"pty", line: string, skipped?: number, rewrite?: true}>}
   */
  async *lines({ stream, rewrites = false } = {}) {
    // Keyed by stream name, whatever streams the process has ("pty" for a
    // process on a terminal), in the order they first appear.
    const assemblers = Object.create(null);
    const decoders = Object.create(null);
    const gaps = Object.create(null);
    const line = (s, item) => {
      const out = { stream: s, line: item.line };
      if (gaps[s] !== undefined) {
        out.skipped = gaps[s];
        delete gaps[s];
      }
      if (item.rewrite) out.rewrite = true;
      return out;
    };
    for await (const chunk of this) {
      const s = chunk.stream;
      if (stream && s !== stream) continue;
      const asm = (assemblers[s] ??= new LineAssembler({ rewrites }));
      if (chunk.skipped !== undefined) {
        if (decoders[s]) for (const item of asm.push(decoders[s].end())) yield line(s, item);
        for (const item of asm.cut()) yield line(s, item);
        gaps[s] = (gaps[s] ?? 0) + chunk.skipped;
      }
      let text;
      if (typeof chunk.data === "string") {
        text = chunk.data;
      } else {
        decoders[s] ??= new StringDecoder("utf8");
        text = decoders[s].write(chunk.data);
      }
      for (const item of asm.push(text)) yield line(s, item);
    }
    for (const s of Object.keys(assemblers)) {
      if (decoders[s]) for (const item of assemblers[s].push(decoders[s].end())) yield line(s, item);
      for (const item of assemblers[s].end()) yield line(s, item);
    }
  }

  /**
   * The output as text, chunk by chunk as it comes, partial lines included
   * (a prompt such as "Password: " arrives without waiting for a newline):
   * `{stream, text, skipped?}`. Bytes (base64 mode) are decoded as UTF-8 per
   * stream, never splitting a character. With `stream`, only that stream.
   * An output limit's `truncated` marker yields nothing; the text after a
   * `tail` gap has `skipped`.
   * @returns {AsyncGenerator<{stream: "stdout"|"stderr"|"pty", text: string, skipped?: number}>}
   */
  async *text({ stream } = {}) {
    const decoders = Object.create(null);
    const gaps = Object.create(null);
    for await (const chunk of this) {
      const s = chunk.stream;
      if (stream && s !== stream) continue;
      if (chunk.skipped !== undefined) gaps[s] = (gaps[s] ?? 0) + chunk.skipped;
      let text;
      if (typeof chunk.data === "string") {
        text = chunk.data;
      } else {
        decoders[s] ??= new StringDecoder("utf8");
        text = decoders[s].write(chunk.data);
      }
      if (text === "") continue;
      const out = { stream: s, text };
      if (gaps[s] !== undefined) {
        out.skipped = gaps[s];
        delete gaps[s];
      }
      yield out;
    }
    for (const s of Object.keys(decoders)) {
      const rest = decoders[s].end();
      if (rest !== "") yield { stream: s, text: rest };
    }
  }

  /**
   * All the output until the process ends, both streams as they came (or
   * only `stream`): a string, or a Buffer in base64 mode.
   */
  async read({ stream } = {}) {
    const parts = [];
    for await (const chunk of this) {
      if (stream && chunk.stream !== stream) continue;
      parts.push(chunk.data);
    }
    return this.encoding === "base64" ? Buffer.concat(parts) : parts.join("");
  }

  // ---- fed by the Gateway ----------------------------------------------------

  /** A `process.output` payload: {stream, data, truncated?, skipped?}. */
  [PUSH](payload) {
    if (this.#end || this.#discard) return;
    const text = typeof payload.data === "string" ? payload.data : "";
    const chunk = { stream: payload.stream, data: this.encoding === "base64" ? Buffer.from(text, "base64") : text };
    // Output limits: the marker after the first N bytes, and the size of a tail's gap.
    if (payload.truncated === true) chunk.truncated = true;
    if (Number.isSafeInteger(payload.skipped)) chunk.skipped = payload.skipped;
    if (this.#waiter) {
      const { resolve } = this.#waiter;
      this.#waiter = null;
      resolve({ value: chunk, done: false });
      return;
    }
    this.#queue.push(chunk);
  }

  [EXIT](payload) {
    if (this.#end) return;
    const exit = { code: payload.code ?? null, signal: payload.signal ?? null };
    // Command envelopes: why it ended, how long it ran, what it wrote (and
    // what was not forwarded), and its resource usage; as the gateway sent them.
    for (const key of EXIT_MEMBERS) if (payload[key] !== undefined && payload[key] !== null) exit[key] = payload[key];
    this.#end = { exit };
    this.#stopFollowing();
    this.#maybeSettle();
  }

  [FAIL](error) {
    if (this.#end) return;
    this.#end = { error };
    this.#stopFollowing();
    this.#maybeSettle();
  }

  #stopFollowing() {
    for (const stop of [...this.#followers]) stop();
  }

  // ---- internals -------------------------------------------------------------

  #next() {
    if (this.#queue.length > 0) {
      return Promise.resolve({ value: this.#queue.shift(), done: false });
    }
    if (this.#end) {
      // Everything was read and the end is here: now `exited` may settle.
      this.#consuming = false;
      this.#maybeSettle();
      if (this.#end.error && !this.#end.errorThrown) {
        this.#end.errorThrown = true;
        return Promise.reject(this.#end.error);
      }
      return Promise.resolve({ value: undefined, done: true });
    }
    return new Promise((resolve, reject) => {
      this.#waiter = { resolve, reject };
    });
  }

  #stopReading() {
    this.#consuming = false;
    this.#discard = true;
    this.#queue.drain();
    this.#maybeSettle();
  }

  #maybeSettle() {
    if (!this.#end) return;
    if (this.#waiter) {
      // A reader is waiting on an empty queue: this is its last answer.
      const { resolve, reject } = this.#waiter;
      this.#waiter = null;
      this.#consuming = false;
      if (this.#end.error) {
        this.#end.errorThrown = true;
        reject(this.#end.error);
      } else {
        resolve({ value: undefined, done: true });
      }
    }
    if (this.#settled || this.#queue.length > 0) return; // output still unread
    this.#settled = true;
    if (this.#end.error) this.#rejectExited(this.#end.error);
    else this.#resolveExited(this.#end.exit);
  }
}

/** Events kept for procs whose spawn response is not read yet (only while a spawn is in flight). */
const EARLY_EVENTS_MAX = 10_000;

/**
 * The process handles of one gateway, by `proc`, and the routing of
 * `process.output` / `process.exit` to them. Proc ids restart at 1 in every
 * gateway, so each gateway (Link) has its own table; the links that follow
 * one another in a session (a reattach) share it.
 */
export class ProcessTable {
  #handles = new Map();
  /** proc -> [[type, payload]...] that came before their spawn response */
  #early = new Map();
  #earlyCount = 0;
  #spawning = 0;

  /** A process.spawn request is about to be sent. */
  beginSpawn() {
    this.#spawning++;
  }

  /** Its answer (or failure) was handled. */
  endSpawn() {
    if (--this.#spawning === 0) {
      this.#early.clear();
      this.#earlyCount = 0;
    }
  }

  /** The handle of `proc`, if this client has one and its exit event has not come. */
  get(proc) {
    return this.#handles.get(proc);
  }

  /** Registers a handle and hands it the events that came before it. */
  adopt(handle) {
    this.#handles.set(handle.proc, handle);
    const early = this.#early.get(handle.proc);
    if (early) {
      this.#early.delete(handle.proc);
      this.#earlyCount -= early.length;
      for (const [type, payload] of early) this.route(type, payload);
    }
  }

  /** Delivers a process.output or process.exit event to its handle. */
  route(type, payload) {
    const proc = payload?.proc;
    const handle = this.#handles.get(proc);
    if (handle) {
      if (type === "process.output") {
        handle[PUSH](payload);
      } else {
        this.#handles.delete(proc);
        handle[EXIT](payload);
      }
      return;
    }
    // The gateway always sends the spawn response before the process's
    // events, and the handle is made when that response is read; this only
    // keeps events for a peer that breaks the order, while a spawn is pending.
    if (this.#spawning > 0 && Number.isInteger(proc) && this.#earlyCount < EARLY_EVENTS_MAX) {
      const list = this.#early.get(proc) ?? [];
      list.push([type, payload]);
      this.#early.set(proc, list);
      this.#earlyCount++;
    }
  }

  /** The gateway is gone: every handle still running fails; returns their pids. */
  failAll(error) {
    const pids = [];
    for (const handle of this.#handles.values()) {
      pids.push(handle.pid);
      handle[FAIL](error);
    }
    this.#handles.clear();
    this.#early.clear();
    this.#earlyCount = 0;
    return pids;
  }
}
