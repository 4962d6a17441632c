// The writer half of the wire: frames out, in order, under the pipe's
// backpressure.
//
// `stream.write()` returning false means the pipe (and Node's buffer above
// it, `writableHighWaterMark`) is full. From then on frames wait in this
// writer's queue, and the promise `write()` returned settles only when the
// frame has been handed to the stream after a 'drain'. A caller that awaits
// its writes is therefore paced by the gateway's reading speed, and Node's
// own buffer never grows past one frame over its high-water mark.

import { Fifo } from "./fifo.js";

/** The promise returned for a frame the stream took at once. */
export const WRITTEN = Promise.resolve();

export class FrameWriter {
  #stream;
  /** Frames waiting for 'drain': {text, resolve, reject}. */
  #queue = new Fifo();
  #blocked = false;
  #ending = false;
  #error = null;

  /** @param {import("node:stream").Writable} stream */
  constructor(stream) {
    this.#stream = stream;
    stream.on("drain", () => this.#flush());
    // EPIPE and friends: the gateway is gone or closed its stdin. The exit
    // handling tells callers why; here the queue just stops.
    stream.on("error", (err) => this.fail(err));
    stream.on("close", () => this.fail(new Error("the gateway's stdin is closed")));
  }

  /** Frames waiting for the pipe. */
  get queued() {
    return this.#queue.length;
  }

  /** Whether the stream said "full" and no 'drain' came yet. */
  get blocked() {
    return this.#blocked;
  }

  /**
   * Sends one frame (`text` must be one line of JSON without "\n").
   * @returns {Promise<void>} `WRITTEN` if the stream took it at once;
   *   otherwise settles when it was handed over after a 'drain', or rejects
   *   if the stream failed first.
   */
  write(text) {
    if (this.#error) return Promise.reject(this.#error);
    if (this.#ending) return Promise.reject(new Error("the gateway's stdin is being closed"));
    if (!this.#blocked && this.queued === 0) {
      if (!this.#stream.write(text + "\n")) this.#blocked = true;
      return WRITTEN;
    }
    return new Promise((resolve, reject) => {
      this.#queue.push({ text, resolve, reject });
    });
  }

  /** Ends the stream after every queued frame has been handed over. */
  end() {
    if (this.#ending || this.#error) return;
    this.#ending = true;
    if (!this.#blocked && this.queued === 0) this.#stream.end();
  }

  /** The stream failed: every queued frame rejects; later writes reject at once. */
  fail(err) {
    if (this.#error) return;
    this.#error = err;
    for (const entry of this.#queue.drain()) entry.reject(err);
  }

  #flush() {
    this.#blocked = false;
    while (!this.#blocked && this.#queue.length > 0 && !this.#error) {
      const entry = this.#queue.shift();
      if (!this.#stream.write(entry.text + "\n")) this.#blocked = true;
      entry.resolve();
    }
    if (this.#ending && !this.#blocked && this.queued === 0 && !this.#error) this.#stream.end();
  }
}
