// A small event emitter for the client's events.
//
// Unlike node:events, a listener that throws does not stop the dispatch of
// the message being handled nor of the messages after it: the exception is
// rethrown on the next tick (where it surfaces as an uncaught exception,
// exactly as a throwing EventEmitter listener would), and every other
// listener and every later frame is still delivered. There is no special
// 'error' event.

export class Emitter {
  /** type -> frozen array of listeners (copy-on-write, so emit never copies). */
  #listeners = new Map();

  /**
   * @param {string} type
   * @param {(...args: any[]) => void} fn
   */
  on(type, fn) {
    if (typeof fn !== "function") throw new TypeError(`listener for ${type} must be a function`);
    const list = this.#listeners.get(type) ?? [];
    this.#listeners.set(type, Object.freeze([...list, fn]));
    return this;
  }

  once(type, fn) {
    const wrapper = (...args) => {
      this.off(type, wrapper);
      fn(...args);
    };
    wrapper.listener = fn;
    return this.on(type, wrapper);
  }

  off(type, fn) {
    const list = this.#listeners.get(type);
    if (!list) return this;
    const i = list.findIndex((l) => l === fn || l.listener === fn);
    if (i === -1) return this;
    const next = [...list.slice(0, i), ...list.slice(i + 1)];
    if (next.length === 0) this.#listeners.delete(type);
    else this.#listeners.set(type, Object.freeze(next));
    return this;
  }

  listenerCount(type) {
    return this.#listeners.get(type)?.length ?? 0;
  }

  /** Calls every listener of `type`; returns whether there was one. */
  emit(type, ...args) {
    const list = this.#listeners.get(type);
    if (!list) return false;
    for (const fn of list) {
      try {
        fn(...args);
      } catch (err) {
        process.nextTick(() => {
          throw err;
        });
      }
    }
    return true;
  }
}
