// The restart policy: whether a gateway that exited gets a successor, and
// after how long.

/** Defaults of the `restart` option. */
export const RESTART_DEFAULTS = Object.freeze({
  policy: "never",
  /** First delay before a restart, ms; multiplied by `factor` per consecutive failure. */
  initialDelay: 100,
  maxDelay: 5_000,
  factor: 2,
  /** Consecutive failures (a failed start, or a gateway that died within `stableAfter`) before giving up. */
  maxRestarts: 5,
  /** A gateway that ran this long (ms) resets the failure count. */
  stableAfter: 10_000,
});

/** Exit codes after which a restart cannot help: 64 is a bad command line. */
const NOT_RESTARTABLE = new Set([64]);

export class RestartPolicy {
  #o;
  #failures = 0;

  /** @param {undefined | "never" | "on-failure" | Partial<typeof RESTART_DEFAULTS>} option */
  constructor(option) {
    const o = { ...RESTART_DEFAULTS, ...(typeof option === "string" ? { policy: option } : option ?? {}) };
    if (o.policy !== "never" && o.policy !== "on-failure") {
      throw new TypeError(`restart.policy must be "never" or "on-failure", got ${JSON.stringify(o.policy)}`);
    }
    this.#o = Object.freeze(o);
  }

  /**
   * Whether a gateway that exited with `code`/`signal` after `livedMs` of
   * being ready gets a successor.
   */
  wantsRestart(code, signal, livedMs) {
    if (livedMs >= this.#o.stableAfter) this.#failures = 0;
    const failed = code !== 0 || signal !== null;
    return this.#o.policy === "on-failure" && failed && !NOT_RESTARTABLE.has(code) && this.#failures < this.#o.maxRestarts;
  }

  /** The delay before the next attempt (counting it as a failure until one lasts), or null when out of attempts. */
  nextDelay() {
    if (this.#failures >= this.#o.maxRestarts) return null;
    const ms = Math.min(this.#o.maxDelay, this.#o.initialDelay * this.#o.factor ** this.#failures);
    this.#failures++;
    return ms;
  }
}
