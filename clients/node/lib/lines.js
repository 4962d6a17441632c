// Splitting one stream's decoded output into lines (ProcessHandle.lines()).
//
// Two modes, the same in the Python client (clients/README.md):
//
// - default: a line ends at "\n"; one "\r" just before it is removed (the
//   "\r\n" of a terminal or of a Windows-style tool); any other "\r" stays in
//   the line;
// - `rewrites`: a "\r" that is not part of "\r\n" also ends a *version* of
//   the line, the way a terminal moves the cursor back to column 0. Every
//   version is delivered as it is completed (at its "\r", or at the "\n"
//   that ends the line), and each version after the first of a line has
//   `rewrite: true`: the UI replaces the line it showed last. So
//   "\r10%\r50%\r100%\n" gives "10%", then "50%" and "100%" as rewrites. A
//   version is the text written after the "\r"; it is not merged with the
//   longer text it overwrites, as a terminal would show it. Empty versions
//   are skipped, except an empty line that was never rewritten (a blank line).

const CR = 13;
const LF = 10;

export class LineAssembler {
  #rewrites;
  /** Text of the current version, since the last terminator. */
  #partial = "";
  /** Whether a version of the current line was delivered already (rewrites). */
  #shown = false;
  /** The last character was "\r": "\r\n" or a rewrite, decided by the next one (rewrites). */
  #pendingCR = false;

  constructor({ rewrites = false } = {}) {
    this.#rewrites = Boolean(rewrites);
  }

  /** Whether text is held for a line not ended yet. */
  get holding() {
    return this.#partial !== "" || this.#pendingCR;
  }

  /** Feeds decoded text; returns the lines (versions) it completes: [{line, rewrite}]. */
  push(text) {
    const out = [];
    if (text === "") return out;
    if (!this.#rewrites) {
      let start = 0;
      let nl;
      while ((nl = text.indexOf("\n", start)) !== -1) {
        let line = this.#partial === "" ? text.slice(start, nl) : this.#partial + text.slice(start, nl);
        this.#partial = "";
        if (line.endsWith("\r")) line = line.slice(0, -1);
        out.push({ line, rewrite: false });
        start = nl + 1;
      }
      if (start < text.length) this.#partial += text.slice(start);
      return out;
    }
    let i = 0;
    if (this.#pendingCR) {
      this.#pendingCR = false;
      if (text.charCodeAt(0) === LF) {
        this.#endLine(out);
        i = 1;
      } else {
        this.#endVersion(out);
      }
    }
    const n = text.length;
    while (i < n) {
      let j = i;
      while (j < n) {
        const c = text.charCodeAt(j);
        if (c === LF || c === CR) break;
        j++;
      }
      if (j > i) this.#partial += text.slice(i, j);
      if (j === n) break;
      if (text.charCodeAt(j) === LF) {
        this.#endLine(out);
        i = j + 1;
      } else if (j + 1 === n) {
        this.#pendingCR = true; // decided by the next text
        i = n;
      } else if (text.charCodeAt(j + 1) === LF) {
        this.#endLine(out);
        i = j + 2;
      } else {
        this.#endVersion(out);
        i = j + 1;
      }
    }
    return out;
  }

  /** A gap in the stream (an output limit's `skipped`): the line in progress as it is. */
  cut() {
    const out = [];
    if (this.#partial !== "") out.push({ line: this.#partial, rewrite: this.#rewrites && this.#shown });
    this.#partial = "";
    this.#shown = false;
    this.#pendingCR = false;
    return out;
  }

  /** The stream ended: a last line without "\n". */
  end() {
    const out = [];
    if (this.#rewrites) {
      this.#pendingCR = false;
      if (this.#partial !== "") out.push({ line: this.#partial, rewrite: this.#shown });
    } else if (this.#partial !== "") {
      const line = this.#partial.endsWith("\r") ? this.#partial.slice(0, -1) : this.#partial;
      if (line !== "") out.push({ line, rewrite: false });
    }
    this.#partial = "";
    this.#shown = false;
    return out;
  }

  #endLine(out) {
    if (this.#partial !== "" || !this.#shown) out.push({ line: this.#partial, rewrite: this.#shown });
    this.#partial = "";
    this.#shown = false;
  }

  #endVersion(out) {
    if (this.#partial !== "") {
      out.push({ line: this.#partial, rewrite: this.#shown });
      this.#shown = true;
    }
    this.#partial = "";
  }
}
