// Requests the gateway (or a backend behind it) sends to the client: one
// handler per method; what it returns or throws becomes the response.

import { RpcError } from "./errors.js";

/** The `error` member for what a handler threw. */
export function errorMember(err) {
  if (err instanceof RpcError || (err?.name === "RpcError" && Number.isInteger(err.code) && typeof err.message === "string")) {
    // Its own code, message and data (also from another copy of this package).
    const out = { code: err.code, message: err.message };
    if (err.data !== undefined) out.data = err.data;
    return out;
  }
  // The handler ran and failed: -32000 (docs/protocol.md), with its message.
  const message = err instanceof Error ? err.message : String(err);
  return { code: -32000, message: message || "handler failed", data: { name: err?.name ?? typeof err } };
}

/**
 * Runs the handler for a request and resolves with the body of the
 * response: `{result}` (undefined becomes null) or `{error}`. Never rejects.
 * @param {((params: any, context: object) => any) | undefined} handler
 */
export function answer(handler, method, params, context) {
  if (!handler) return Promise.resolve({ error: { code: -32601, message: `Method not found: ${method}` } });
  let out;
  try {
    out = handler(params, context);
  } catch (err) {
    return Promise.resolve({ error: errorMember(err) });
  }
  return Promise.resolve(out).then(
    (result) => ({ result: result === undefined ? null : result }),
    (err) => ({ error: errorMember(err) }),
  );
}
