// The gateway's stderr: always drained (so the child can never block on it),
// split into lines for the `stderr` event, and the last few kept in a
// bounded ring for error messages.

import { StringDecoder } from "node:string_decoder";

/** Lines kept for error messages: enough for a panic message and its context. */
export const STDERR_TAIL_LINES = 50;
/** Characters kept in the ring at most, whatever the line count. */
export const STDERR_TAIL_CHARS = 16 * 1024;
/** A longer stderr line is cut here (and marked) so one line cannot fill memory. */
export const STDERR_LINE_CHARS = 4096;

export class StderrLines {
  #decoder = new StringDecoder("utf8");
  #partial = "";
  #cut = false;
  #onLine;
  /** The ring: the last lines, oldest first. */
  #tail = [];
  #tailChars = 0;

  /** @param {(line: string) => void} onLine */
  constructor(onLine) {
    this.#onLine = onLine;
  }

  /** The last lines of stderr (a copy), oldest first. */
  tail() {
    const lines = [...this.#tail];
    if (this.#partial) lines.push(this.#partial);
    return lines;
  }

  push(chunk) {
    this.#take(this.#decoder.write(chunk));
  }

  /** Stderr ended: a last line without "\n" still counts. */
  end() {
    this.#take(this.#decoder.end());
    if (this.#partial || this.#cut) this.#line();
  }

  #take(text) {
    let start = 0;
    for (;;) {
      const nl = text.indexOf("\n", start);
      const piece = text.slice(start, nl === -1 ? text.length : nl);
      if (!this.#cut) {
        const room = STDERR_LINE_CHARS - this.#partial.length;
        if (piece.length > room) {
          this.#partial += piece.slice(0, room);
          this.#cut = true;
        } else {
          this.#partial += piece;
        }
      }
      if (nl === -1) return;
      this.#line();
      start = nl + 1;
    }
  }

  #line() {
    let line = this.#partial;
    if (line.endsWith("\r")) line = line.slice(0, -1);
    if (this.#cut) line += " […]";
    this.#partial = "";
    this.#cut = false;
    this.#tail.push(line);
    this.#tailChars += line.length;
    while (this.#tail.length > STDERR_TAIL_LINES || (this.#tailChars > STDERR_TAIL_CHARS && this.#tail.length > 1)) {
      this.#tailChars -= this.#tail.shift().length;
    }
    this.#onLine(line);
  }
}
