// The calls waiting for a response, by id (lsp-server's ReqQueue,
// vscode-jsonrpc's pending map): each entry settles exactly once, by its
// response, its timeout, its AbortSignal (`abortSignal`), or the exit of the gateway it was
// sent to, and is removed from the map when it does.

import { RequestTimeoutError } from "./errors.js";

export class PendingCalls {
  #nextId = 1;
  /** id -> {link, method, resolve, reject, transform, timer, signal, onAbort} */
  #entries = new Map();
  /** ids of process.spawn calls given up on (timeout, abort) -> their link */
  #abandonedSpawns = new Map();

  /** Calls waiting now. */
  get size() {
    return this.#entries.size;
  }

  /** A fresh id: integers from 1, never reused by this client. */
  nextId() {
    return this.#nextId++;
  }

  /**
   * Registers call `id` sent on `link`; the promise settles with its result.
   * @param {{timeout?: number, abortSignal?: AbortSignal, transform?: (result: any) => any, spawn?: boolean}} options
   *   `transform` runs synchronously when the response is read (the process
   *   handle is made there, before any later frame is dispatched).
   */
  add(id, link, method, { timeout, abortSignal: signal, transform, spawn = false }) {
    return new Promise((resolve, reject) => {
      const entry = { link, method, resolve, reject, transform, timer: null, signal: null, onAbort: null };
      const giveUp = (err) => {
        if (this.#entries.get(id) !== entry) return;
        this.#forget(id, entry);
        if (spawn) this.#abandonedSpawns.set(id, link);
        reject(err);
      };
      if (timeout !== undefined && timeout !== null && Number.isFinite(timeout)) {
        entry.timer = setTimeout(() => giveUp(new RequestTimeoutError(method, timeout)), timeout);
      }
      if (signal) {
        entry.signal = signal;
        entry.onAbort = () => giveUp(signal.reason);
        signal.addEventListener("abort", entry.onAbort, { once: true });
      }
      this.#entries.set(id, entry);
    });
  }

  /** Whether call `id` sent on `link` is waiting for its answer. */
  has(id, link) {
    return this.#entries.get(id)?.link === link;
  }

  /** Removes and returns the entry a response from `link` answers, or null. */
  take(id, link) {
    const entry = this.#entries.get(id);
    if (!entry || entry.link !== link) return null;
    this.#forget(id, entry);
    return entry;
  }

  /** Whether `id` was a process.spawn given up on (forgotten once asked). */
  takeAbandonedSpawn(id, link) {
    if (this.#abandonedSpawns.get(id) !== link) return false;
    this.#abandonedSpawns.delete(id);
    return true;
  }

  /** Rejects every call sent on `link` with `error`. */
  rejectLink(link, error) {
    for (const [id, entry] of this.#entries) {
      if (entry.link !== link) continue;
      this.#forget(id, entry);
      entry.reject(error);
    }
    for (const [id, l] of this.#abandonedSpawns) if (l === link) this.#abandonedSpawns.delete(id);
  }

  #forget(id, entry) {
    this.#entries.delete(id);
    clearTimeout(entry.timer);
    if (entry.signal) entry.signal.removeEventListener("abort", entry.onAbort);
  }
}
