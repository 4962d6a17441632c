// The options every call takes: `timeout` (ms) and `abortSignal`.

/**
 * The options of a call, checked: the AbortSignal is `abortSignal` (the
 * word "signal" means a POSIX signal in this API, as in proc.signal()).
 */
export function callOptions(options) {
  if (options === undefined || options === null) return {};
  if (typeof options !== "object") throw new TypeError(`call options must be an object, not ${typeof options}`);
  if (options.signal !== undefined && typeof AbortSignal !== "undefined" && options.signal instanceof AbortSignal) {
    throw new TypeError("the AbortSignal option is `abortSignal` (`signal` names a POSIX signal in this API)");
  }
  return options;
}

