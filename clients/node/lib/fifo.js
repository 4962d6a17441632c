/**
 * A first-in first-out queue over an array with a head index: `shift` is
 * O(1), and the consumed front is dropped once it is most of the array, so a
 * long-lived queue stays compact.
 * @template T
 */
export class Fifo {
  /** @type {(T | undefined)[]} */
  #items = [];
  #head = 0;

  /** Items waiting. */
  get length() {
    return this.#items.length - this.#head;
  }

  /** @param {T} item */
  push(item) {
    this.#items.push(item);
  }

  /** The oldest item, removed; `undefined` when empty. @returns {T | undefined} */
  shift() {
    if (this.#head === this.#items.length) return undefined;
    const item = this.#items[this.#head];
    this.#items[this.#head++] = undefined;
    if (this.#head === this.#items.length) {
      this.#items = [];
      this.#head = 0;
    } else if (this.#head > 1024 && this.#head * 2 > this.#items.length) {
      this.#items = this.#items.slice(this.#head);
      this.#head = 0;
    }
    return item;
  }

  /** Removes and returns every item, oldest first. @returns {T[]} */
  drain() {
    const items = /** @type {T[]} */ (this.#items.slice(this.#head));
    this.#items = [];
    this.#head = 0;
    return items;
  }
}
