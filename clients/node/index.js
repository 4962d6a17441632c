// tui-gateway client for Node: see README.md and index.d.ts.
export { Gateway, DEFAULT_READY_TIMEOUT_MS, BRIDGE_READY_TIMEOUT_MS } from "./lib/gateway.js";
export { ProcessHandle } from "./lib/process.js";
export {
  RpcError,
  GatewayError,
  GatewayClosed,
  GatewayExited,
  GatewayNotFound,
  GatewayStartError,
  RequestTimeoutError,
  EXIT_CODE_MEANINGS,
  describeExit,
} from "./lib/errors.js";
export { LineFramer, DEFAULT_MAX_LINE_BYTES } from "./lib/framer.js";
export { FrameWriter } from "./lib/writer.js";
export { resolveCommand } from "./lib/locate.js";
