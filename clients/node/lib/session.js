// Sessions (the repository's docs/sessions.md): what the Gateway needs to
// start one, attach to one and reattach after losing its process: names,
// the reattach policy, and the session as a ready payload names it.

/** Defaults of the `reattach` option: 3 tries, backoff from 100 ms to 1 s. */
export const REATTACH_DEFAULTS = Object.freeze({
  /** Attach attempts after the gateway process was lost, the first one at once. */
  tries: 3,
  /** Delay before the second attempt, ms; doubled for each one after. */
  initialDelay: 100,
  /** Longest delay between attempts, ms. */
  maxDelay: 1000,
});

/** What a relay's exit code 69 means: the session refused the attach, or there is none (docs/sessions.md). */
export const ATTACH_REFUSED = 69;
/** A bad command line (a bad session name, for one): retrying cannot help. */
const USAGE = 64;

/** Whether a failed attach says the session cannot be had (gone, another one, taken, a bad cursor): no retry. */
export function attachRefused(code) {
  return code === ATTACH_REFUSED || code === USAGE;
}

const SESSION_NAME = /^[A-Za-z0-9_-][A-Za-z0-9._-]{0,63}$/;

/** Throws a TypeError unless `name` is a session name: 1 to 64 of `A-Z a-z 0-9 . _ -`, not starting with `.`. */
export function checkSessionName(name) {
  if (typeof name !== "string" || !SESSION_NAME.test(name)) {
    throw new TypeError(
      `a session name is 1 to 64 characters of A-Z a-z 0-9 . _ - not starting with ".", got ${JSON.stringify(name)}`,
    );
  }
  return name;
}

/**
 * The `reattach` option, resolved: null when off, else `{tries,
 * initialDelay, maxDelay}`. `true` and undefined are the defaults.
 */
export function reattachPolicy(option) {
  if (option === false || option === null) return null;
  if (option === undefined || option === true) return REATTACH_DEFAULTS;
  if (typeof option !== "object") {
    throw new TypeError(`reattach must be a boolean or {tries, initialDelay, maxDelay}, not ${JSON.stringify(option)}`);
  }
  const o = { ...REATTACH_DEFAULTS };
  for (const [key, value] of Object.entries(option)) {
    if (value === undefined) continue;
    if (!(key in REATTACH_DEFAULTS)) throw new TypeError(`unknown reattach option ${JSON.stringify(key)}`);
    o[key] = value;
  }
  if (!(Number.isInteger(o.tries) && o.tries >= 1)) throw new TypeError(`reattach.tries must be an integer >= 1, got ${o.tries}`);
  for (const key of ["initialDelay", "maxDelay"]) {
    if (!(Number.isFinite(o[key]) && o[key] >= 0)) throw new TypeError(`reattach.${key} must be a number of ms >= 0, got ${o[key]}`);
  }
  return Object.freeze(o);
}

/**
 * Throws a TypeError if the `args` of `Gateway.start({session})` give a
 * cursor flag: the client passes `--frames-received latest` itself (its
 * cursor must be the one the relay uses); a saved cursor goes to
 * `Gateway.attach(name, {framesReceived, epoch})`. Flags after `--` are the
 * backend's.
 */
export function checkSessionArgs(args) {
  const own = args ?? [];
  const end = own.indexOf("--");
  for (const arg of end === -1 ? own : own.slice(0, end)) {
    if (arg === "--frames-received" || (typeof arg === "string" && arg.startsWith("--frames-received="))) {
      throw new TypeError("start({session}) passes --frames-received latest itself; to come back with a saved cursor use Gateway.attach(name, {framesReceived, epoch})");
    }
  }
}

/** Throws a TypeError unless `n` is a frame count (an integer >= 0). */
export function checkFrames(what, n) {
  if (!(Number.isSafeInteger(n) && n >= 0)) throw new TypeError(`${what} must be an integer >= 0 (a count of frames), got ${n}`);
  return n;
}

/**
 * The gateway's own part of a `gateway.ready` payload: the payload, or with
 * a backend its `gateway` member (docs/bridge.md: the backend's ready, with
 * the gateway's in `gateway`).
 */
export function gatewayPart(ready) {
  if (ready && typeof ready === "object") {
    const g = ready.gateway;
    if (ready.session === undefined && g && typeof g === "object" && !Array.isArray(g)) return g;
    return ready;
  }
  return {};
}

/** `{name, epoch}` from a ready payload (or gateway.info), or null outside a session. */
export function sessionOf(ready) {
  const s = gatewayPart(ready).session;
  if (!s || typeof s !== "object") return null;
  return { name: typeof s.name === "string" ? s.name : null, epoch: typeof s.epoch === "string" ? s.epoch : null };
}
