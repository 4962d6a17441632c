// Finding the gateway binary: the explicit `command`, then TUI_GATEWAY_BIN,
// then `tui-gateway` on PATH. The lookup is done here rather than left to
// spawn() so that a miss says which of the three was used and where it looked.

import { accessSync, constants, statSync } from "node:fs";
import path from "node:path";
import { GatewayNotFound } from "./errors.js";

/** The program name looked up on PATH when nothing else names the binary. */
export const DEFAULT_COMMAND = "tui-gateway";

function isExecutableFile(file) {
  try {
    if (!statSync(file).isFile()) return false;
    accessSync(file, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

function whyNot(file) {
  let st;
  try {
    st = statSync(file);
  } catch (err) {
    if (err.code === "ENOENT") return "no such file";
    if (err.code === "ENOTDIR") return "a parent is not a directory";
    return err.message;
  }
  if (!st.isFile()) return "not a regular file";
  return "not executable (no permission to execute it)";
}

/**
 * @param {{command?: string, env: Record<string, string|undefined>, cwd?: string}} options
 *   `env` is the environment the gateway will get (TUI_GATEWAY_BIN and PATH are read from it).
 * @returns {{path: string, source: "command" | "TUI_GATEWAY_BIN" | "PATH"}}
 * @throws {GatewayNotFound} (a GatewayStartError) naming the source, the name and where it looked
 */
export function resolveCommand({ command, env, cwd }) {
  let name;
  let source;
  if (command) {
    name = command;
    source = "command";
  } else if (env.TUI_GATEWAY_BIN) {
    name = env.TUI_GATEWAY_BIN;
    source = "TUI_GATEWAY_BIN";
  } else {
    name = DEFAULT_COMMAND;
    source = "PATH";
  }
  const from = source === "command" ? "the command option" : source === "TUI_GATEWAY_BIN" ? "TUI_GATEWAY_BIN" : "the default name";

  if (name.includes("/")) {
    const file = path.resolve(cwd ?? process.cwd(), name);
    if (isExecutableFile(file)) return { path: file, source };
    throw new GatewayNotFound(`cannot start the gateway: ${file} (from ${from}): ${whyNot(file)}`, {
      command: file,
    });
  }

  const dirs = (env.PATH ?? "").split(path.delimiter).filter(Boolean);
  for (const dir of dirs) {
    const file = path.resolve(cwd ?? process.cwd(), dir, name);
    if (isExecutableFile(file)) return { path: file, source };
  }
  const hint = source === "PATH"
    ? "; TUI_GATEWAY_BIN is not set and no command was given (install it with `cargo install --locked --path .`, " +
      "which puts it in ~/.cargo/bin, or pass {command: '/path/to/tui-gateway'})"
    : "";
  throw new GatewayNotFound(
    `cannot start the gateway: "${name}" (from ${from}) was not found on PATH ` +
      `(${dirs.length ? dirs.join(path.delimiter) : "PATH is empty"})${hint}`,
    { command: name },
  );
}
