// The wire halves in memory: the line framer under any chunking, the frame
// writer under backpressure, the stderr ring. No gateway needed.

import assert from "node:assert/strict";
import { Writable } from "node:stream";
import { describe, test } from "node:test";
import { FrameWriter, LineFramer } from "../index.js";
import { StderrLines, STDERR_TAIL_LINES, STDERR_TAIL_CHARS } from "../lib/stderr.js";

/** Runs the framer over `input` cut at the given chunk sizes (cycled). */
function frame(input, sizes, options = {}) {
  const lines = [];
  const reports = [];
  const framer = new LineFramer({
    ...options,
    onLine: (l) => lines.push(l.toString("utf8")),
    onOversize: (info) => reports.push({ kind: "oversize", ...info }),
    onTruncated: (info) => reports.push({ kind: "truncated", ...info }),
  });
  const bytes = Buffer.from(input, "utf8");
  let i = 0;
  let k = 0;
  while (i < bytes.length) {
    const n = sizes[k++ % sizes.length];
    framer.push(bytes.subarray(i, i + n));
    i += n;
  }
  framer.end();
  return { lines, reports };
}

/** A seeded generator, so a failure is reproducible. */
function rng(seed) {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

describe("LineFramer", () => {
  const text =
    '{"a":1}\n{"b":"é ü 日本 🎉"}\n{"c":"line\u2028sep\u2029para"}\n\n{"d":"\\n escaped"}\r\n' +
    `{"long":"${"x".repeat(70_000)}"}\n{"e":5}\n`;
  const expected = text.split("\n").slice(0, -1);

  test("the same lines whatever the chunking: whole, byte by byte, odd sizes, random", () => {
    const cuts = [[text.length * 4], [1], [2], [3], [7], [64 * 1024], [1, 5, 3, 4096, 2]];
    const r = rng(42);
    for (let i = 0; i < 20; i++) cuts.push(Array.from({ length: 16 }, () => 1 + Math.floor(r() * 300)));
    for (const sizes of cuts) {
      const { lines, reports } = frame(text, sizes);
      assert.deepEqual(lines, expected, `chunk sizes ${sizes.join(",")}`);
      assert.deepEqual(reports, []);
    }
  });

  test("splits on \\n only: U+2028, U+2029 and \\r stay inside the line", () => {
    const { lines } = frame('{"s":"a\u2028b\u2029c"}\rd\n', [1]);
    assert.deepEqual(lines, ['{"s":"a\u2028b\u2029c"}\rd']);
    assert.deepEqual(JSON.parse(lines[0].slice(0, -2)), { s: "a\u2028b\u2029c" });
  });

  test("a multi-byte character cut between chunks is joined intact", () => {
    const input = '{"k":"🎉"}\n';
    const bytes = Buffer.from(input);
    for (let cut = 1; cut < bytes.length; cut++) {
      const lines = [];
      const f = new LineFramer({ onLine: (l) => lines.push(l.toString("utf8")) });
      f.push(bytes.subarray(0, cut));
      f.push(bytes.subarray(cut));
      assert.deepEqual(lines, ['{"k":"🎉"}'], `cut at ${cut}`);
    }
  });

  test("an over-long line is reported once, discarded to its newline, and framing resumes", () => {
    const input = `{"ok":1}\n${"y".repeat(1000)}\n{"ok":2}\n${"z".repeat(50)}\n{"ok":3}\n`;
    for (const sizes of [[1], [7], [100], [4096]]) {
      const { lines, reports } = frame(input, sizes, { maxLineBytes: 64 });
      assert.deepEqual(lines, ['{"ok":1}', '{"ok":2}', "z".repeat(50), '{"ok":3}'], `sizes ${sizes}`);
      assert.equal(reports.length, 1, `one report, sizes ${sizes}`);
      assert.equal(reports[0].kind, "oversize");
      assert.equal(reports[0].limit, 64);
      assert.ok(reports[0].preview.startsWith("yyyy"));
    }
  });

  test("a line of exactly the limit passes; one byte more does not", () => {
    const { lines, reports } = frame(`${"a".repeat(64)}\n${"b".repeat(65)}\n`, [10], { maxLineBytes: 64 });
    assert.deepEqual(lines, ["a".repeat(64)]);
    assert.equal(reports.length, 1);
  });

  test("memory stays bounded while an endless line streams in", () => {
    const f = new LineFramer({ maxLineBytes: 1024, onLine: () => assert.fail("no line expected") });
    const chunk = Buffer.alloc(4096, 0x41);
    let reports = 0;
    const g = new LineFramer({ maxLineBytes: 1024, onLine: () => {}, onOversize: () => reports++ });
    for (let i = 0; i < 1000; i++) {
      f.push(chunk.subarray(0, 100));
      g.push(chunk);
      assert.ok(g.bufferedBytes <= 1024);
    }
    assert.equal(reports, 1);
    assert.ok(f.bufferedBytes === 0, "f discards once past the limit");
  });

  test("an unterminated tail at EOF is a truncated frame, never a line", () => {
    const { lines, reports } = frame('{"a":1}\n{"b":', [3]);
    assert.deepEqual(lines, ['{"a":1}']);
    assert.deepEqual(reports, [{ kind: "truncated", bytes: 5, preview: '{"b":' }]);
  });

  test("the pushed chunk may be reused by the caller after push()", () => {
    const lines = [];
    const f = new LineFramer({ onLine: (l) => lines.push(l.toString()) });
    const buf = Buffer.from('{"a"');
    f.push(buf);
    buf.fill(0x20);
    f.push(Buffer.from(":1}\n"));
    assert.deepEqual(lines, ['{"a":1}']);
  });
});

describe("FrameWriter", () => {
  /** A Writable whose writes complete only when the test says so. */
  function slowSink(highWaterMark) {
    const received = [];
    const callbacks = [];
    const stream = new Writable({
      highWaterMark,
      decodeStrings: false,
      write(chunk, _enc, cb) {
        received.push(String(chunk));
        callbacks.push(cb);
      },
    });
    const release = () => {
      while (callbacks.length) callbacks.shift()();
    };
    return { stream, received, release };
  }

  test("stops writing when the stream is full, queues in order, resumes on drain", async () => {
    const { stream, received, release } = slowSink(64);
    const w = new FrameWriter(stream);
    const settled = [];
    const promises = [];
    for (let i = 0; i < 100; i++) {
      const p = w.write(JSON.stringify({ i }));
      p.then(() => settled.push(i));
      promises.push(p);
    }
    assert.ok(w.blocked, "the writer saw write() return false");
    assert.ok(w.queued > 80, `frames wait in the writer, not in the stream (queued ${w.queued})`);
    assert.ok(stream.writableLength <= 64 + 16, `the stream holds at most one frame past its mark (${stream.writableLength})`);
    let rounds = 0;
    while (w.queued > 0 || received.length < 100) {
      release();
      await new Promise((r) => setImmediate(r));
      assert.ok(stream.writableLength <= 64 + 16);
      if (++rounds > 10_000) assert.fail("writer never finished");
    }
    await Promise.all(promises);
    assert.deepEqual(received.map((s) => JSON.parse(s).i), Array.from({ length: 100 }, (_, i) => i));
    assert.ok(received.every((s) => s.endsWith("\n") && s.indexOf("\n") === s.length - 1));
    assert.deepEqual(settled, Array.from({ length: 100 }, (_, i) => i), "promises settle in order");
  });

  test("a failed stream rejects what waits and every later write", async () => {
    const { stream } = slowSink(8);
    const w = new FrameWriter(stream);
    w.write('{"first":true}');
    const waiting = w.write('{"second":true}');
    const err = new Error("EPIPE");
    stream.destroy(err);
    await assert.rejects(waiting, /EPIPE/);
    await assert.rejects(w.write("{}"), /EPIPE/);
  });

  test("end() ends the stream only after the queue is flushed", async () => {
    const { stream, received, release } = slowSink(8);
    const w = new FrameWriter(stream);
    for (let i = 0; i < 10; i++) w.write(`{"n":${i}}`);
    w.end();
    await assert.rejects(w.write("{}"), /being closed/);
    const finished = new Promise((r) => stream.on("finish", r));
    while (!stream.writableFinished) {
      release();
      await new Promise((r) => setImmediate(r));
    }
    await finished;
    assert.equal(received.length, 10);
  });
});

describe("StderrLines", () => {
  test("splits lines across chunks, keeps a bounded tail, cuts giant lines", () => {
    const seen = [];
    const s = new StderrLines((l) => seen.push(l));
    s.push(Buffer.from("one\ntw"));
    s.push(Buffer.from("o\r\nthr"));
    assert.deepEqual(seen, ["one", "two"]);
    assert.deepEqual(s.tail(), ["one", "two", "thr"]);
    s.end();
    assert.deepEqual(seen, ["one", "two", "thr"]);

    const t = new StderrLines(() => {});
    for (let i = 0; i < 500; i++) t.push(Buffer.from(`line ${i}\n`));
    assert.equal(t.tail().length, STDERR_TAIL_LINES);
    assert.equal(t.tail().at(-1), "line 499");
    t.push(Buffer.from("z".repeat(100_000) + "\n"));
    const joined = t.tail().join("\n");
    assert.ok(joined.length <= STDERR_TAIL_CHARS + 4096 + 16, `tail is bounded (${joined.length})`);
    assert.ok(t.tail().at(-1).endsWith("[…]"));
  });
});
