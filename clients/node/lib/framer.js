// The reader half of the wire: bytes in, whole lines out.
//
// Modelled on tokio-util's LinesCodec, with the JSON-RPC twist that an
// unterminated tail at EOF is a truncated frame, not a line:
// - split on "\n" only (never on U+2028/U+2029 or "\r": Node's `readline`
//   splits on more than "\n", which is why it is not used here);
// - a line longer than `maxLineBytes` is reported once and its bytes are
//   discarded up to the next "\n", then framing resumes, so a broken peer
//   costs at most `maxLineBytes` of memory, never more;
// - partial lines are kept as a list of chunks and joined once, when their
//   newline arrives, so a long line is never rescanned or recopied per read.

/**
 * Longest line accepted from the gateway, in bytes, without its "\n".
 * The gateway's own events stay below 64 KiB (`--coalesce-cap`) and its
 * responses are bounded by what the client asked for; 64 MiB is far above
 * anything legitimate while still bounding memory against a broken peer.
 */
export const DEFAULT_MAX_LINE_BYTES = 64 * 1024 * 1024;

/** How much of a bad line is kept to show in a report. */
export const PREVIEW_BYTES = 1024;

const NEWLINE = 0x0a;

function preview(parts, max = PREVIEW_BYTES) {
  const head = [];
  let n = 0;
  for (const p of parts) {
    if (n >= max) break;
    const take = p.subarray(0, max - n);
    head.push(take);
    n += take.length;
  }
  return Buffer.concat(head, n).toString("utf8");
}

export class LineFramer {
  #maxLineBytes;
  #onLine;
  #onOversize;
  #onTruncated;
  /** Chunks of the current, still unterminated line. */
  #parts = [];
  #partsBytes = 0;
  /** True while skipping the rest of an over-long line. */
  #discarding = false;
  /** Lines ended so far ("\n" seen), delivered or not. */
  #lines = 0;

  /**
   * @param {{
   *   maxLineBytes?: number,
   *   onLine: (line: Buffer) => void,
   *   onOversize?: (info: {limit: number, preview: string}) => void,
   *   onTruncated?: (info: {bytes: number, preview: string}) => void,
   * }} options  `onLine` gets a view into the pushed chunk: decode or copy it
   *   before returning.
   */
  constructor({ maxLineBytes = DEFAULT_MAX_LINE_BYTES, onLine, onOversize = () => {}, onTruncated = () => {} }) {
    if (!(Number.isInteger(maxLineBytes) && maxLineBytes > 0)) {
      throw new RangeError(`maxLineBytes must be a positive integer, got ${maxLineBytes}`);
    }
    this.#maxLineBytes = maxLineBytes;
    this.#onLine = onLine;
    this.#onOversize = onOversize;
    this.#onTruncated = onTruncated;
  }

  /** Bytes held for the current unterminated line. */
  get bufferedBytes() {
    return this.#partsBytes;
  }

  /**
   * How many lines ended so far: every "\n" seen, whether its line was
   * delivered, reported as over-long, or blank. It already counts a line
   * when `onLine` gets it. A session's cursor is this count (docs/sessions.md).
   */
  get lines() {
    return this.#lines;
  }

  /** Feeds one chunk; calls `onLine` for every line it completes. */
  push(chunk) {
    let start = 0;
    for (;;) {
      const nl = chunk.indexOf(NEWLINE, start);
      if (nl === -1) break;
      const piece = chunk.subarray(start, nl);
      start = nl + 1;
      this.#lines++;
      if (this.#discarding) {
        // The newline that ends an over-long line: resume framing after it.
        this.#discarding = false;
        continue;
      }
      const bytes = this.#partsBytes + piece.length;
      if (bytes > this.#maxLineBytes) {
        // Over-long, but its end is already here: report it, drop it.
        this.#reportOversize(piece);
        continue;
      }
      // A whole line: join the held chunks with this piece, once.
      const line = this.#parts.length === 0 ? piece : Buffer.concat([...this.#parts, piece], bytes);
      this.#parts = [];
      this.#partsBytes = 0;
      this.#onLine(line);
    }
    const rest = chunk.subarray(start);
    if (rest.length === 0 || this.#discarding) return; // nothing to keep, or skipping
    if (this.#partsBytes + rest.length > this.#maxLineBytes) {
      // Over-long and unfinished: report now, skip up to the next newline.
      this.#reportOversize(rest);
      this.#discarding = true;
      return;
    }
    // An unfinished line: keep a copy (the caller may reuse its chunk).
    this.#parts.push(Buffer.from(rest));
    this.#partsBytes += rest.length;
  }

  /** The input ended: an unterminated tail is a truncated frame, reported, never a line. */
  end() {
    if (this.#partsBytes > 0) {
      const info = { bytes: this.#partsBytes, preview: preview(this.#parts) };
      this.#parts = [];
      this.#partsBytes = 0;
      this.#onTruncated(info);
    }
    this.#discarding = false;
  }

  #reportOversize(lastPiece) {
    const info = { limit: this.#maxLineBytes, preview: preview([...this.#parts, lastPiece]) };
    this.#parts = [];
    this.#partsBytes = 0;
    this.#onOversize(info);
  }
}
