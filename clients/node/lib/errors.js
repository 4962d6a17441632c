// Error types of the client, and the gateway's documented exit codes.
//
// Every error a caller can see is one of these classes, all GatewayError
// subclasses, so a UI can tell "the gateway said no" (RpcError) from "the
// gateway is gone" (GatewayExited) from "it never came up"
// (GatewayStartError) with `instanceof`. The Python client has the same
// classes under the same names (clients/README.md, "Errors").

/**
 * The exit codes of tui-gateway and what they mean (README "Exit codes",
 * docs/protocol.md "Exit codes"). With a backend (`-- CMD`), a gateway
 * whose backend is gone for good exits with the backend's own status instead.
 */
export const EXIT_CODE_MEANINGS = Object.freeze({
  0: "orderly shutdown: everything drained in time (stdin EOF, gateway.shutdown, SIGTERM/SIGHUP, parent exited)",
  3: "stdout peer gone, stalled, or too slow",
  4: "the shutdown deadline forced the exit, or a second SIGTERM/SIGHUP arrived",
  64: "bad command line (unknown flag or bad value)",
  69: "backend unavailable",
  70: "internal error (a panic in the gateway)",
  74: "host I/O error writing stdout (ENOSPC, EIO, ...)",
});

/**
 * The documented meaning of an exit, in words.
 * @param {number|null} code
 * @param {string|null} signal
 * @returns {string}
 */
export function describeExit(code, signal) {
  if (signal) {
    return signal === "SIGKILL"
      ? "killed by SIGKILL (no shutdown ran, so it could not stop its children)"
      : `killed by ${signal}`;
  }
  if (code === null || code === undefined) return "exit status unknown";
  return EXIT_CODE_MEANINGS[code] ?? `undocumented exit code ${code}`;
}

/** The last line that starts with `prefix`, without it; null if there is none. */
function lastLineWith(stderrTail, prefix) {
  for (let i = stderrTail.length - 1; i >= 0; i--) {
    const line = stderrTail[i];
    if (line.startsWith(prefix)) return line.slice(prefix.length);
  }
  return null;
}

/**
 * What the gateway said about its end: its `[gateway-exit]` line, or, for a
 * session relay (`tui-gateway attach`), its `[gateway-attach]` line (why the
 * attach was refused or the connection ended; docs/sessions.md).
 */
function gatewayExitLine(stderrTail) {
  return lastLineWith(stderrTail, "[gateway-exit] ") ?? lastLineWith(stderrTail, "[gateway-attach] ");
}

/** A relay's `[gateway-attach]` line (why an attach was refused), or null. */
export function attachLine(stderrTail) {
  return lastLineWith(stderrTail ?? [], "[gateway-attach] ");
}

/** How many stderr lines an error message quotes (the property has them all). */
const STDERR_LINES_IN_MESSAGE = 10;

function quoteStderr(stderrTail) {
  if (stderrTail.length === 0) return "\n(stderr was empty)";
  const shown = stderrTail.slice(-STDERR_LINES_IN_MESSAGE);
  return `\nstderr (last ${shown.length} line${shown.length === 1 ? "" : "s"}):\n` +
    shown.map((l) => `  ${l}`).join("\n");
}

/**
 * Base class of every error the client raises on its own: an error answer
 * (RpcError), a timeout (RequestTimeoutError), a gateway that could not
 * start (GatewayStartError, GatewayNotFound), that exited (GatewayExited) or
 * that was closed (GatewayClosed). `err instanceof GatewayError` catches
 * them all. Not errors of the client: a bad argument (TypeError) and an
 * AbortSignal's reason, which a call rejects with as it is.
 */
export class GatewayError extends Error {
  constructor(message, options) {
    super(message, options);
    this.name = "GatewayError";
  }
}

/** A JSON-RPC error response: the gateway (or a backend) answered with `error`. */
export class RpcError extends GatewayError {
  /**
   * @param {number} code
   * @param {string} message
   * @param {unknown} [data]
   */
  constructor(code, message, data) {
    super(message);
    this.name = "RpcError";
    this.code = code;
    if (data !== undefined) this.data = data;
  }

  /** Builds an RpcError from the `error` member of a response. */
  static fromResponse(error, method) {
    const code = Number.isInteger(error?.code) ? error.code : -32603;
    const message = typeof error?.message === "string" ? error.message : "error response without a message";
    const err = new RpcError(code, message, error?.data);
    if (method !== undefined) err.method = method;
    return err;
  }

  /** The `error` member to send in a response. */
  toJSON() {
    const out = { code: this.code, message: this.message };
    if (this.data !== undefined) out.data = this.data;
    return out;
  }
}

/**
 * The gateway exited (or was killed) while something still waited on it:
 * pending calls, process handles, calls made after the exit.
 */
export class GatewayExited extends GatewayError {
  /**
   * @param {{code: number|null, signal: string|null, pid?: number, stderrTail?: string[], generation?: number, cause?: unknown, reason?: string}} info
   *   `reason` replaces the documented meaning of the code (a session relay's
   *   exit, whose 69 means "attach refused", not "backend unavailable").
   */
  constructor(info) {
    const stderrTail = info.stderrTail ?? [];
    const reason = info.reason ?? describeExit(info.code, info.signal);
    const said = gatewayExitLine(stderrTail);
    const how = info.signal ? "exited" : info.code === null ? "ended" : `exited with code ${info.code}`;
    const pid = info.pid ? ` (pid ${info.pid})` : "";
    super(`tui-gateway${pid} ${how}: ${reason}${said && said !== reason ? `; it said: ${said}` : ""}`,
      info.cause === undefined ? undefined : { cause: info.cause });
    this.name = "GatewayExited";
    this.code = info.code;
    this.signal = info.signal;
    this.reason = reason;
    this.exitReason = said;
    this.stderrTail = stderrTail;
    this.pid = info.pid;
    this.generation = info.generation;
  }
}

/**
 * The gateway could not be started: the binary was not found, could not be
 * executed, exited before `gateway.ready`, or did not send it in time.
 */
export class GatewayStartError extends GatewayError {
  /**
   * @param {string} what  what went wrong, one line
   * @param {{code?: number|null, signal?: string|null, stderrTail?: string[], command?: string, args?: string[], pid?: number, cause?: unknown, timedOut?: boolean, reason?: string}} [info]
   *   `reason` replaces the documented meaning of the code (a refused session attach).
   */
  constructor(what, info = {}) {
    const stderrTail = info.stderrTail ?? [];
    const exited = info.code !== undefined || info.signal !== undefined;
    const code = info.code ?? null;
    const signal = info.signal ?? null;
    const reason = info.reason ?? describeExit(code, signal);
    let message = what;
    if (exited && (code !== null || signal !== null)) {
      const how = signal ? `killed by ${signal}` : `exit code ${code}`;
      message += ` (${how}: ${reason})`;
    }
    if (info.pid !== undefined || exited || info.timedOut) message += quoteStderr(stderrTail);
    super(message, info.cause === undefined ? undefined : { cause: info.cause });
    this.name = "GatewayStartError";
    this.code = code;
    this.signal = signal;
    this.reason = exited ? reason : null;
    this.stderrTail = stderrTail;
    this.command = info.command;
    this.args = info.args;
    this.pid = info.pid;
    this.timedOut = Boolean(info.timedOut);
  }
}

/** A request got no response within its `timeout`. Its pending entry is gone. */
export class RequestTimeoutError extends GatewayError {
  constructor(method, timeout) {
    super(`no response to ${method} within ${timeout} ms`);
    this.name = "RequestTimeoutError";
    this.method = method;
    this.timeout = timeout;
  }
}

/** No gateway binary at the `command` option, `TUI_GATEWAY_BIN` or `PATH`. */
export class GatewayNotFound extends GatewayStartError {
  constructor(what, info = {}) {
    super(what, info);
    this.name = "GatewayNotFound";
  }
}

/**
 * The gateway was closed with close(): a call made after it (or waiting for
 * a restart when it began) fails with this. `exit` is the last exit, if any.
 */
export class GatewayClosed extends GatewayError {
  constructor(message = "the gateway is closed; start a new one", exit = null) {
    super(message);
    this.name = "GatewayClosed";
    this.exit = exit;
  }
}
