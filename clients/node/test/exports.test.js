// The hand-written index.d.ts declares exactly what index.js exports, and
// package.json stays a zero-dependency ES module for Node 20+.

import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import path from "node:path";
import { test } from "node:test";
import * as api from "../index.js";
import { PACKAGE_DIR } from "../test-support/harness.js";

test("index.d.ts declares every runtime export, and nothing that is not exported", () => {
  const dts = readFileSync(path.join(PACKAGE_DIR, "index.d.ts"), "utf8");
  const declared = new Set([...dts.matchAll(/^export declare (?:class|function|const) (\w+)/gm)].map((m) => m[1]));
  assert.deepEqual([...Object.keys(api)].sort(), [...declared].sort());
});

test("package.json: ES module, Node >= 20, no runtime dependencies", () => {
  const pkg = JSON.parse(readFileSync(path.join(PACKAGE_DIR, "package.json"), "utf8"));
  assert.equal(pkg.type, "module");
  assert.equal(pkg.engines.node, ">=20");
  assert.equal(pkg.dependencies, undefined);
  assert.deepEqual(Object.keys(pkg.devDependencies).sort(), ["@types/node", "typescript"]);
  assert.equal(pkg.exports["."].types, "./index.d.ts");
});
