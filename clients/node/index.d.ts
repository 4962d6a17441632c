// Types for tui-gateway-client (hand-written; the code is plain JavaScript in lib/).
// The wire protocol is docs/protocol.md and docs/process.md of tui-gateway.

/// <reference types="node" />

import type { Readable, Writable } from "node:stream";

// ---------------------------------------------------------------------------
// JSON

export type JsonPrimitive = string | number | boolean | null;
export type JsonValue = JsonPrimitive | JsonValue[] | { [key: string]: JsonValue };
/** Params of a request: an object or an array (JSON-RPC 2.0), or omitted. */
export type Params = { [key: string]: unknown } | unknown[];

// ---------------------------------------------------------------------------
// Payloads of the documented events

/** Every bound in force (docs/protocol.md, "Events"). */
export interface GatewayLimits {
  max_frame_bytes: number;
  outbound_soft_limit_bytes: number;
  outbound_soft_limit_s: number;
  outbound_hard_limit_bytes: number;
  outbound_high_water_bytes: number;
  outbound_low_water_bytes: number;
  stall_timeout_s: number;
  coalesce_cap_bytes: number;
  shutdown_grace_s: number;
  max_processes: number;
  child_stdin_limit_bytes: number;
  [other: string]: unknown;
}

/** `gateway.ready`: always the first line the gateway writes. */
export interface GatewayReadyPayload {
  version: string;
  pid: number;
  protocol: number;
  methods: string[];
  limits: GatewayLimits;
  /** In a session (with a backend: in the `gateway` member). */
  session?: SessionName;
  [other: string]: unknown;
}

/** The session a gateway serves, as `gateway.ready` and `gateway.info` name it. */
export interface SessionName {
  name: string;
  /** Which run of the session this is: a cursor belongs to one epoch. */
  epoch: string;
}

/**
 * `gateway.attached`: the first line a relay started with a cursor
 * (`--frames-received N`, or `latest` for a client without one yet) writes,
 * before the stream; not part of it (not counted). The client passes one of
 * the two to every relay it starts.
 */
export interface GatewayAttachedPayload {
  session: string;
  epoch: string;
  /** The session's pid. */
  pid: number;
  /** The stream goes on at this frame: the cursor's base (with `latest`, the first frame not yet written). */
  frames_from: number;
  /** Frames the session had written when this client attached. */
  frames_total: number;
}

export type OutputStream = "stdout" | "stderr" | "pty";

/** `process.output` (streaming-class: adjacent events may arrive merged). */
export interface ProcessOutputPayload {
  proc: number;
  stream: OutputStream;
  /** Text (encoding "utf8") or base64 of the exact bytes (encoding "base64"). */
  data: string;
  /** `output_limit` "kill" or "truncate": the stream passed its limit and nothing more of it is forwarded (data is ""). */
  truncated?: true;
  /** `output_limit` "tail": bytes left out between the head and this first event of the ring. */
  skipped?: number;
}

/** Why a process ended (docs/process.md, "Exit causes"): the first that applies. */
export type ExitCause =
  /** Its `timeout_ms` passed and the gateway cancelled it. */
  | "timeout"
  /** A stream passed its `output_limit` with policy "kill". */
  | "output_limit"
  /** The client called `process.cancel`. */
  | "cancel"
  /** The gateway was shutting down and signalled it. */
  | "shutdown"
  /** Killed by the kernel for one of its `limits` (`limit` names it). */
  | "limit"
  /** Killed by a signal the gateway did not send (a `process.signal` counts as the client's). */
  | "signal"
  /** It exited on its own. */
  | "exit";

/** Bytes per output stream ("stdout" and "stderr" for pipes, "pty" for a terminal). */
export type StreamBytes = { [stream in OutputStream]?: number };

/** Resource usage from the kernel's `wait4` (the process and the children it waited for). */
export interface ProcessUsage {
  max_rss_bytes: number;
  user_ms: number;
  system_ms: number;
  /** The command's own cgroup recorded an OOM kill (false without a cgroup). */
  oom_killed: boolean;
}

/** The exit members of the command envelopes, shared by the event payload and `ProcessExit`. */
export interface ProcessExitDetails {
  /** Why it ended. */
  cause: ExitCause;
  /** From its spawn to its reaping, ms (the gateway's monotonic clock). */
  duration_ms: number;
  /** Raw bytes it wrote per stream, forwarded or not. */
  output_bytes: StreamBytes;
  /** With `output_limit`: bytes not forwarded per stream (`output_bytes - discarded` were). */
  discarded?: StreamBytes;
  /** With cause "limit": which limit ended it. */
  limit?: "cpu_seconds" | "file_size_bytes" | (string & {});
  /** With `limits`: what it used. */
  usage?: ProcessUsage;
}

/** `process.exit`: exactly one per process, after all of its output. */
export interface ProcessExitPayload extends ProcessExitDetails {
  proc: number;
  /** The exit status, or null when killed by a signal. */
  code: number | null;
  /** The signal's name ("SIGTERM", "SIG34", ...) or null. */
  signal: string | null;
}

/**
 * `backend.ready`: the backend behind the bridge is up. Comes with the
 * backend bridge (not on every gateway yet); its members are the backend's.
 */
export interface BackendReadyPayload {
  [key: string]: unknown;
}

/** `backend.exited`: the backend behind the bridge exited (comes with the bridge). */
export interface BackendExitedPayload {
  code: number | null;
  signal: string | null;
  /** Whether the gateway restarts it. */
  restarting: boolean;
  [other: string]: unknown;
}

/** Event type -> payload, for the events the gateway documents. */
export interface GatewayEventMap {
  "gateway.ready": GatewayReadyPayload;
  "gateway.attached": GatewayAttachedPayload;
  "process.output": ProcessOutputPayload;
  "process.exit": ProcessExitPayload;
  "backend.ready": BackendReadyPayload;
  "backend.exited": BackendExitedPayload;
}

/** Which gateway an event came from (a restart makes a new generation). */
export interface EventMeta {
  generation: number;
  /** The gateway's pid (undefined when attached to streams). */
  pid: number | undefined;
}

// ---------------------------------------------------------------------------
// Results of the built-in methods

export interface PingResult {
  ok: true;
}

export interface GatewayInfo {
  version: string;
  pid: number;
  protocol: number;
  uptime_s: number;
  methods: string[];
  services: string[];
  /** Every setting in force, keyed by flag name ("shutdown-grace": 1.0, ...). */
  config: { [flag: string]: unknown };
  /** What the client last sent with client.capabilities, or null. */
  client: unknown;
  limits: GatewayLimits;
  /** In a session. */
  session?: SessionName;
  [other: string]: unknown;
}

/** `gateway.session`: the state of the session (also one entry of `tui-gateway sessions --json`). */
export interface SessionInfo {
  name: string;
  epoch: string;
  /** The session's pid. */
  pid: number;
  /** When it started. */
  started: unknown;
  /** Whether a client is attached. */
  attached: boolean;
  /** Processes running. */
  processes: number;
  /** Bytes of frames its journal holds. */
  journal_bytes: number;
  /** Frames written to clients so far. */
  frames_total: number;
  /** The oldest frame the journal still holds. */
  first_held: number;
  /** Connections refused for their uid. */
  refused_peers: number;
  [other: string]: unknown;
}

export interface GatewayStats {
  frames_in: number;
  bytes_in: number;
  frames_out: number;
  bytes_out: number;
  parse_errors: number;
  invalid_requests: number;
  oversize_frames: number;
  truncated_frames: number;
  responses_unmatched: number;
  outbound_queue_bytes: number;
  outbound_high_water_mark: number;
  deltas_coalesced: number;
  frames_dropped: number;
  write_stalls: number;
  signals: { [name: string]: number };
  stderr_lines_written: number;
  stderr_lines_dropped: number;
  stderr_bytes_dropped: number;
  children_alive: number;
  children_spawned: number;
  children_reaped: number;
  [other: string]: unknown;
}

export interface CapabilitiesResult {
  protocol: number;
  version: string;
  methods: string[];
  events: { envelope: string; coalescing: unknown; line_separators_escaped: boolean; [other: string]: unknown };
  batches: unknown;
  limits: GatewayLimits;
  [other: string]: unknown;
}

export interface SpawnResult {
  proc: number;
  pid: number;
}

export interface WriteResult {
  /** Bytes accepted. */
  queued: number;
  /** Bytes still waiting for the child. */
  pending: number;
}

export interface ProcessInfo {
  proc: number;
  pid: number;
  argv: string[];
  tag: unknown;
  started_at: number;
  running: boolean;
  /** ms since its spawn (the gateway's monotonic clock). */
  elapsed_ms: number;
  /** Its terminal's current size, for a process on a terminal. */
  pty?: PtySize;
  /** The envelope given at spawn, when given. */
  timeout_ms?: number;
  output_limit?: OutputLimit;
  limits?: LimitsParams;
  /** True while its cancel ladder runs. */
  cancelling?: true;
}

/** Result of `process.cancel`, sent once nothing of the process tree is left. */
export interface CancelResult {
  proc: number;
  /** Index of the last ladder step sent before the tree ended. */
  step: number;
  /** That step's signal name. */
  signal: string;
  /** The process's own exit, as in its `process.exit` (queued before this answer). */
  code: number | null;
  exit_signal: string | null;
}

/** Method -> params and result, for the methods the gateway documents. */
export interface GatewayMethodMap {
  "gateway.ping": { params: undefined; result: PingResult };
  "gateway.info": { params: undefined; result: GatewayInfo };
  "gateway.stats": { params: undefined; result: GatewayStats };
  "gateway.shutdown": { params: undefined; result: { ok: true; grace_s: number } };
  "client.capabilities": { params: { [key: string]: unknown }; result: CapabilitiesResult };
  "process.spawn": { params: SpawnParams; result: SpawnResult };
  "process.write": { params: { proc: number; data: string; encoding?: Encoding }; result: WriteResult };
  "process.close_stdin": { params: { proc: number }; result: { ok: true; pending: number } };
  "process.signal": { params: { proc: number; signal: SignalName | number; tree?: boolean }; result: { ok: true; signal: string } };
  "process.cancel": { params: { proc: number; ladder?: CancelLadder }; result: CancelResult };
  "process.list": { params: undefined; result: ProcessInfo[] };
  "process.resize": { params: { proc: number; rows: number; cols: number }; result: ResizeResult };
  "gateway.detach": { params: undefined; result: {} };
  "gateway.end": { params: undefined; result: {} };
  "gateway.ack": { params: { frames: number }; result: { first_held: number } };
  "gateway.session": { params: undefined; result: SessionInfo };
}

// ---------------------------------------------------------------------------
// Errors

/** The exit codes of tui-gateway and their documented meaning. */
export declare const EXIT_CODE_MEANINGS: Readonly<Record<number, string>>;
/** The documented meaning of an exit code (or of death by a signal). */
export declare function describeExit(code: number | null, signal: string | null): string;

/**
 * Base class of every error the client raises on its own (the same classes
 * as the Python client's). An AbortSignal's reason and a TypeError for a bad
 * argument are not wrapped.
 */
export declare class GatewayError extends Error {
  constructor(message?: string, options?: ErrorOptions);
}

/** An error response: the gateway (or a backend) answered with `error`. */
export declare class RpcError extends GatewayError {
  constructor(code: number, message: string, data?: unknown);
  readonly name: "RpcError";
  /** -32601 unknown method, -32602 bad params, -32000 the handler failed, -32001 overloaded, -32002 the backend exited (with -- CMD), ... */
  code: number;
  data?: unknown;
  /** The method of the request it answers. */
  method?: string;
  toJSON(): { code: number; message: string; data?: unknown };
}

/** The gateway exited while a call, a process handle or a new call needed it. */
export declare class GatewayExited extends GatewayError {
  readonly name: "GatewayExited";
  /** The exit code, or null when killed by a signal. */
  code: number | null;
  /** "SIGKILL", ... or null. */
  signal: string | null;
  /** The documented meaning of the code (README "Exit codes"). */
  reason: string;
  /** What the gateway wrote on its `[gateway-exit]` stderr line, if it did. */
  exitReason: string | null;
  /** The last lines of its stderr (at most 50 lines / 16 KiB). */
  stderrTail: string[];
  pid: number | undefined;
  generation: number | undefined;
}

/** The gateway could not be started. */
export declare class GatewayStartError extends GatewayError {
  readonly name: "GatewayStartError" | "GatewayNotFound";
  /** The exit code when it exited before gateway.ready, else null. */
  code: number | null;
  signal: string | null;
  /** The documented meaning of the code, when it exited. */
  reason: string | null;
  stderrTail: string[];
  /** The binary that was (or would have been) run. */
  command: string | undefined;
  args: string[] | undefined;
  pid: number | undefined;
  /** True when no gateway.ready came within readyTimeout. */
  timedOut: boolean;
}

/** No binary at the `command` option, `TUI_GATEWAY_BIN` or `PATH` (or not executable). */
export declare class GatewayNotFound extends GatewayStartError {
  readonly name: "GatewayNotFound";
}

/** A call made after close() (or waiting for a restart when close() began). */
export declare class GatewayClosed extends GatewayError {
  readonly name: "GatewayClosed";
  /** The last exit, if a gateway ran. */
  exit: ExitInfo | null;
}

/** No response within the call's `timeout`; its pending entry is gone. */
export declare class RequestTimeoutError extends GatewayError {
  readonly name: "RequestTimeoutError";
  method: string;
  /** The timeout, ms. */
  timeout: number;
}

// ---------------------------------------------------------------------------
// Gateway

export interface RestartOptions {
  /** "never" (default) or "on-failure": a non-zero exit or a signal starts a new gateway. */
  policy: "never" | "on-failure";
  /** First delay before restarting, ms (default 100). */
  initialDelay?: number;
  /** Longest delay, ms (default 5000). */
  maxDelay?: number;
  /** Delay multiplier per consecutive failure (default 2). */
  factor?: number;
  /** Consecutive failures before giving up (default 5). */
  maxRestarts?: number;
  /** A gateway that ran this long (ms) resets the failure count (default 10000). */
  stableAfter?: number;
}

export interface StartOptions {
  /** The binary; else TUI_GATEWAY_BIN; else `tui-gateway` on PATH. */
  command?: string;
  /** The gateway's flags; `["--", CMD, ...ARGS]` at the end bridges to a backend. */
  args?: string[];
  /** Merged over process.env; null or undefined removes a variable. */
  env?: { [name: string]: string | null | undefined };
  cwd?: string;
  /** ms to wait for gateway.ready (default 10000; 20000 when args hold "--",
   *  as the gateway then waits up to 15 s for the backend's ready). */
  readyTimeout?: number;
  restart?: RestartOptions | "never" | "on-failure";
  /** Longest line accepted from the gateway (default 64 MiB); longer ones are reported as `malformed`. */
  maxLineBytes?: number;
  /** Default timeout for every request, ms (default: none). */
  requestTimeout?: number;
  /**
   * Start the session NAME, or attach to it if it runs (`tui-gateway
   * --session NAME --frames-received latest [args]`; `args` must not give
   * `--frames-received`): it outlives this client, which can attach again
   * later with its cursor (`gw.session`). The repository's docs/sessions.md.
   */
  session?: string;
  /** In a session: attach again by itself when the process is lost (default true; see ReattachOptions). */
  reattach?: boolean | ReattachOptions;
}

/** How a session Gateway attaches again after losing its process (a relay killed, a pipe broken). */
export interface ReattachOptions {
  /** Attempts, the first one at once (default 3). */
  tries?: number;
  /** ms before the second attempt, doubled for each one after (default 100). */
  initialDelay?: number;
  /** Longest wait between attempts, ms (default 1000). */
  maxDelay?: number;
}

/** `Gateway.attach(name, options)`: the start options (no `args`: the session keeps its settings), and the cursor. */
export interface SessionAttachOptions extends Omit<StartOptions, "args" | "session" | "restart"> {
  /** The cursor: frames this client already has (a saved `gw.session.framesReceived`); the stream goes on at that frame. Without it: `latest`, the first frame not yet written. */
  framesReceived?: number;
  /** The session the cursor belongs to (a saved `gw.session.epoch`): refused if another one runs now. */
  epoch?: string | null;
  /** With a saved cursor as the options (`Gateway.attach(cursor.name, cursor)`): must be `name`. */
  name?: string;
  /** Detach the client attached now, if any, and attach this one. */
  takeover?: boolean;
  args?: never;
  restart?: never;
}

/** A session client's place in the stream: save it to attach again with it. */
export interface SessionCursor {
  name: string;
  /** Null only until the session said it (never once start() or attach() resolved). */
  epoch: string | null;
  /** Frames (lines) of the session's stream this client has read. */
  framesReceived: number;
}

/** The `detached` event: a session Gateway lost its process and attaches again. */
export interface DetachedInfo {
  reason: string;
  /** The cursor it attaches again with. */
  framesReceived: number;
}

/** The `reattached` event: attached again; the stream goes on at `framesFrom`. */
export interface ReattachedInfo {
  framesFrom: number;
  /** Frames the session had written when it attached again. */
  framesTotal: number | null;
}

export interface AttachOptions {
  readable: Readable;
  writable: Writable;
  stderr?: Readable | null;
  readyTimeout?: number;
  maxLineBytes?: number;
  requestTimeout?: number;
}

export interface CallOptions {
  /** ms; on expiry the call rejects with RequestTimeoutError and is forgotten (the request still runs in the gateway). */
  timeout?: number;
  /** On abort the call rejects with the signal's reason and is forgotten (the request still runs in the gateway). */
  abortSignal?: AbortSignal;
  /** Not an option: the AbortSignal is `abortSignal` ("signal" names a POSIX signal in this API). */
  signal?: never;
}

/** A function that undoes a subscription (on, once, onRequest, followTerminalSize); calling it again does nothing. */
export type Unsubscribe = () => void;

export type BatchCall =
  | { method: string; params?: Params; notify?: false }
  | { method: string; params?: Params; notify: true };

export type BatchEntry<T = unknown> = { ok: true; result: T } | { ok: false; error: RpcError } | null;

/** Passed to `exit` listeners and returned by close(). */
export interface ExitInfo {
  code: number | null;
  signal: string | null;
  /** The documented meaning of the code. */
  reason: string;
  exitReason: string | null;
  stderrTail: string[];
  pid: number | undefined;
  generation: number;
  /** Whether a restart follows. */
  restarting: boolean;
  /** Process groups the client killed because the gateway died by a signal and could not. */
  orphansKilled: number[];
  /** In a session: this client went, the session runs on (close(), detach()). Always false without a session. */
  detached: boolean;
  /** The error pending calls were rejected with; null for a clean exit (code 0) or a detach asked for. */
  error: GatewayExited | null;
}

export interface CloseOptions {
  /** ms to wait for the exit after ending stdin, before SIGTERM (default: the gateway's shutdown grace + 1 s). */
  grace?: number;
  /** Send `gateway.shutdown` before ending stdin: running commands get SIGTERM at once (default false). In a session, this ends it. */
  shutdown?: boolean;
  /** In a session: end it (`gateway.end`) rather than detach (default false). Without one, as `shutdown`. */
  end?: boolean;
}

export interface AdoptOptions extends CallOptions {
  /** The encoding the process was spawned with (default "utf8"). */
  encoding?: Encoding;
  /** "ignore": drop the output; `exited` settles at the exit. */
  output?: "read" | "ignore";
}

export interface RestartInfo {
  generation: number;
  pid: number | undefined;
  ready: GatewayReadyPayload;
  /** Why the previous gateway went away. */
  previous: GatewayExited;
}

/** A line the gateway wrote that is not a usable message. Reported, never thrown. */
export interface MalformedLine {
  reason: string;
  /** The start of the line (at most 1 KiB). */
  line: string;
  generation: number;
  pid: number | undefined;
}

export interface ServerRequestContext {
  id: string | number | null;
  method: string;
  generation: number;
}

export type RequestHandler<P = any, R = unknown> = (params: P, context: ServerRequestContext) => R | Promise<R>;

/** Lifecycle events of the client itself (no dot in their names, unlike the gateway's events). */
export interface LifecycleEventMap {
  /** The gateway exited: once per gateway process. */
  exit: [info: ExitInfo];
  /** A new gateway is up after a restart. */
  restart: [info: RestartInfo];
  /** A restart attempt failed (another may follow). */
  restartFailed: [error: GatewayStartError];
  /** In a session: the process was lost; the client attaches again (pending calls and process handles wait). */
  detached: [info: DetachedInfo];
  /** In a session: attached again after `detached`; nothing was lost. */
  reattached: [info: ReattachedInfo];
  /** A line of the gateway's stderr. */
  stderr: [line: string, meta: EventMeta];
  malformed: [info: MalformedLine];
  /** Every gateway event, typed or not. */
  event: [type: string, payload: unknown, meta: EventMeta];
  /** A notification other than `event`. */
  notification: [method: string, params: unknown, meta: EventMeta];
  /** A response that matches no pending call (late after a timeout, or `id: null`). */
  unmatched: [message: { id: unknown; result?: unknown; error?: unknown }, meta: EventMeta];
}

export type EventListener<T extends keyof GatewayEventMap> = (payload: GatewayEventMap[T], meta: EventMeta) => void;

export declare class Gateway {
  private constructor();

  /**
   * Finds the binary, spawns it with pipes, waits for gateway.ready. With
   * `session`, a process that turns out to be a relay (the session runs)
   * resolves on its `gateway.attached` instead, and `readyPayload` is
   * `gateway.info`'s answer.
   */
  static start(options?: StartOptions): Promise<Gateway>;
  /**
   * Attaches to the running session `name` (`tui-gateway attach NAME
   * --frames-received N|latest`): with `framesReceived`, the stream goes on
   * at that frame; without, at the first frame not yet written. Resolves on
   * the relay's `gateway.attached` (`readyPayload` is then `gateway.info`'s
   * answer). A refused attach rejects with GatewayStartError (the relay's reason).
   */
  static attach(name: string, options?: SessionAttachOptions): Promise<Gateway>;
  /** Speaks the protocol over existing streams (tests, custom transports). */
  static attach(options: AttachOptions): Promise<Gateway>;

  /** The current gateway's gateway.ready payload (through a session relay, which sends none: gateway.info's answer). */
  readonly readyPayload: GatewayReadyPayload;
  /** Settles with the final exit, once no restart follows. */
  readonly closed: Promise<ExitInfo | null>;
  readonly pid: number | undefined;
  readonly generation: number;
  readonly running: boolean;
  readonly pendingCount: number;
  stderrTail(): string[];
  /** In a session: its name, epoch and this client's cursor (readable after close() too); else null. */
  readonly session: SessionCursor | null;

  request<M extends keyof GatewayMethodMap>(
    method: M,
    params?: GatewayMethodMap[M]["params"],
    options?: CallOptions,
  ): Promise<GatewayMethodMap[M]["result"]>;
  request<T = unknown>(method: string, params?: Params, options?: CallOptions): Promise<T>;

  /** Resolves true once written, false if there was no gateway; never rejects. */
  notify(method: string, params?: Params): Promise<boolean>;
  batch(calls: BatchCall[], options?: CallOptions): Promise<BatchEntry[]>;

  ping(options?: CallOptions): Promise<PingResult>;
  info(options?: CallOptions): Promise<GatewayInfo>;
  stats(options?: CallOptions): Promise<GatewayStats>;
  capabilities(client: { [key: string]: unknown }, options?: CallOptions): Promise<CapabilitiesResult>;
  listProcesses(options?: CallOptions): Promise<ProcessInfo[]>;

  /** `gateway.detach`, then closed without ending the session (no reattach); resolves with the cursor. */
  detach(options?: CallOptions): Promise<SessionCursor | null>;
  /** Ends the session (`gateway.end`) and closes: `close({...options, end: true})`. */
  end(options?: Omit<CloseOptions, "end">): Promise<ExitInfo | null>;
  /** `gateway.ack`: frames before `frames` (default: `session.framesReceived`) may leave the journal. */
  ack(frames?: number, options?: CallOptions): Promise<{ first_held: number }>;
  /** `gateway.session`. */
  sessionInfo(options?: CallOptions): Promise<SessionInfo>;
  /** A handle for a running process this client has no handle for (after attaching): its later output and exit. */
  adoptProcess(proc: number, options: AdoptOptions & { encoding: "base64" }): Promise<ProcessHandle<Buffer>>;
  adoptProcess(proc: number, options?: AdoptOptions & { encoding?: "utf8" }): Promise<ProcessHandle<string>>;

  /** Returns a function that removes this handler. */
  onRequest<P = any, R = unknown>(method: string, handler: RequestHandler<P, R>): Unsubscribe;
  offRequest(method: string): this;

  spawnProcess(argv: string[], options: SpawnOptions & { encoding: "base64" }): Promise<ProcessHandle<Buffer>>;
  spawnProcess(argv: string[], options?: SpawnOptions & { encoding?: "utf8" }): Promise<ProcessHandle<string>>;

  /**
   * Ends stdin (with `shutdown: true`, sends `gateway.shutdown` first), waits
   * `grace` ms, then SIGTERM, then SIGKILL. Idempotent. Resolves with the
   * exit details (`error` null for a clean exit), or null if no gateway ran.
   * In a session it detaches (the session runs on) unless `end: true`.
   */
  close(options?: CloseOptions): Promise<ExitInfo | null>;

  /** Returns a function that unsubscribes the listener. */
  on<K extends keyof GatewayEventMap>(type: K, listener: EventListener<K>): Unsubscribe;
  on<K extends keyof LifecycleEventMap>(type: K, listener: (...args: LifecycleEventMap[K]) => void): Unsubscribe;
  /** Any other event type (from a backend behind the bridge): untyped. */
  on(type: string, listener: (payload: unknown, meta: EventMeta) => void): Unsubscribe;

  once<K extends keyof GatewayEventMap>(type: K, listener: EventListener<K>): Unsubscribe;
  once<K extends keyof LifecycleEventMap>(type: K, listener: (...args: LifecycleEventMap[K]) => void): Unsubscribe;
  once(type: string, listener: (payload: unknown, meta: EventMeta) => void): Unsubscribe;

  off(type: string, listener: (...args: any[]) => void): this;
  listenerCount(type: string): number;
}

// ---------------------------------------------------------------------------
// Processes

export type Encoding = "utf8" | "base64";

export type SignalName =
  | "SIGTERM" | "SIGINT" | "SIGKILL" | "SIGHUP" | "SIGQUIT" | "SIGUSR1" | "SIGUSR2"
  | "SIGSTOP" | "SIGCONT" | "SIGTSTP" | "SIGWINCH" | "SIGALRM" | "SIGPIPE"
  | (string & {});

export interface SpawnParams {
  argv: string[];
  cwd?: string;
  env?: { [name: string]: string | null };
  clear_env?: boolean;
  stdin?: "pipe" | "null";
  stderr?: "pipe" | "merge" | "null";
  encoding?: Encoding;
  tag?: unknown;
  pty?: PtySize;
  timeout_ms?: number;
  output_limit?: OutputLimit;
  limits?: LimitsParams;
  cancel?: CancelLadder;
  [other: string]: unknown;
}

/**
 * One step of a cancel ladder: send `signal` to the whole process tree,
 * then wait `waitMs` (0 to 3600000) for it to end before the next step.
 * Every step but the last needs its wait.
 */
export type CancelStep = readonly [signal: SignalName | number, waitMs?: number];
/** 1 to 8 steps; end it with SIGKILL (after the last step the gateway waits for the tree however long it takes). */
export type CancelLadder = readonly CancelStep[];

export type OutputLimitPolicy = "kill" | "truncate" | "tail";

/**
 * Bounds what is forwarded of each output stream, in raw bytes: "kill"
 * forwards the first `bytes` then cancels the process; "truncate" forwards
 * the first `bytes` and discards the rest while the process runs on;
 * "tail" forwards the first half and, at the end, the last half.
 */
export interface OutputLimit {
  /** 1 to 2^48 (at most 16 MiB for "tail"). */
  bytes: number;
  policy: OutputLimitPolicy;
}

/** Resource limits (rlimits set in the child before exec, per process of the tree), each at least 1. */
export interface ProcessLimits {
  /** RLIMIT_DATA: allocations fail past it. */
  memoryBytes?: number;
  /** RLIMIT_CPU: SIGXCPU at the limit (exit cause "limit"). */
  cpuSeconds?: number;
  /** RLIMIT_NOFILE. */
  openFiles?: number;
  /** RLIMIT_NPROC: counts every process of the user, machine-wide; not applied to root. */
  processes?: number;
  /** RLIMIT_FSIZE: SIGXFSZ past it (exit cause "limit"). */
  fileSizeBytes?: number;
}

/** `limits` as the gateway takes and reports it. */
export interface LimitsParams {
  memory_bytes?: number;
  cpu_seconds?: number;
  open_files?: number;
  processes?: number;
  file_size_bytes?: number;
}

/** A terminal's size in character cells (each 1 to 10000). */
export interface PtySize {
  rows: number;
  cols: number;
}

export interface SpawnOptions extends CallOptions {
  cwd?: string;
  /** Set (string) or remove (null) variables for the child. */
  env?: { [name: string]: string | null };
  /** Start from an empty environment (then apply env). */
  clearEnv?: boolean;
  stdin?: "pipe" | "null";
  stderr?: "pipe" | "merge" | "null";
  /** "base64": output chunks are Buffers of the exact bytes. */
  encoding?: Encoding;
  /** Your label, echoed by process.list. */
  tag?: unknown;
  /** Run on a pseudo-terminal of this size: output arrives on stream "pty", `resize` works. */
  pty?: PtySize;
  /** Cancel the process (with its ladder) this many ms after its spawn: exit cause "timeout". Not the call's `timeout`. */
  timeoutMs?: number;
  /** Bound what is forwarded of each stream (exit `discarded`; cause "output_limit" with policy "kill"). */
  outputLimit?: OutputLimit;
  /** Resource limits, set in the child before exec. */
  limits?: ProcessLimits;
  /** This process's cancel ladder (for cancel(), timeoutMs and outputLimit "kill"); default SIGINT, 2 s, SIGTERM, 3 s, SIGKILL. */
  cancel?: CancelLadder;
  /** "ignore": drop the output (still emitted as process.output events); `exited` settles at the exit. */
  output?: "read" | "ignore";
  /** More spawn params, passed as they are (e.g. PTY options on a gateway that has them). */
  extraParams?: { [key: string]: unknown };
}

export interface OutputChunk<D extends string | Buffer = string> {
  stream: OutputStream;
  /** Empty on a `truncated` marker. */
  data: D;
  /** The stream passed its output limit: nothing more of it is forwarded. */
  truncated?: true;
  /** Output limit "tail": bytes left out just before this chunk. */
  skipped?: number;
}

export interface OutputLine {
  stream: OutputStream;
  /** Without its "\n" (and one "\r" before it). */
  line: string;
  /** Output limit "tail": bytes left out before this line (the line before the gap was yielded as it was). */
  skipped?: number;
  /** With `lines({rewrites: true})`: this version replaces the line yielded before (a "\r" rewrote it). */
  rewrite?: true;
}

export interface LinesOptions {
  /** Only this stream's lines (the other's output is read and dropped). */
  stream?: OutputStream;
  /** A "\r" not followed by "\n" ends a version of the line: each version is yielded, later ones with `rewrite: true`. */
  rewrites?: boolean;
}

/** A piece of output as text, as it came (partial lines included). */
export interface OutputText {
  stream: OutputStream;
  text: string;
  /** Output limit "tail": bytes left out just before this text. */
  skipped?: number;
}

/** A terminal size in character cells, columns first (node-pty, xterm.js). */
export interface TerminalSize {
  cols: number;
  rows: number;
}

/** Result of `process.resize`. */
export interface ResizeResult {
  ok: true;
  rows: number;
  cols: number;
}

/** What followTerminalSize() reads: a TTY stream (process.stdout) or anything with the same members. */
export interface TerminalLike {
  readonly columns?: number;
  readonly rows?: number;
  on(event: "resize", listener: () => void): unknown;
  off(event: "resize", listener: () => void): unknown;
}

export interface FollowTerminalOptions {
  /** Default process.stdout: its 'resize' event (SIGWINCH), `columns` and `rows`. */
  stdout?: TerminalLike;
  /** Maps the terminal's size to the process's (e.g. the pane it is shown in); null skips. */
  adjust?: (size: TerminalSize) => TerminalSize | null | undefined;
}

export interface SignalOptions extends CallOptions {
  /** To the process and every descendant, whatever group or session they moved to. */
  tree?: boolean;
}

export interface WriteAllOptions extends CallOptions {
  /** Bytes per process.write (default 64 KiB). */
  pieceBytes?: number;
}

/**
 * How a process ended. `code` and `signal` always; the envelope members
 * (`cause`, `duration_ms`, `output_bytes`, and `discarded`, `limit`,
 * `usage` when they apply) as the gateway sent them, under their wire names.
 */
export interface ProcessExit extends ProcessExitDetails {
  code: number | null;
  signal: string | null;
}

export declare class ProcessHandle<D extends string | Buffer = string> implements AsyncIterable<OutputChunk<D>> {
  private constructor();
  readonly proc: number;
  readonly pid: number;
  readonly argv: string[];
  readonly encoding: Encoding;
  readonly generation: number;
  /**
   * Settles once the process ended and every output chunk was read (or
   * dropped with output: "ignore"); rejects with GatewayExited if the gateway
   * went away first. Read the output, or it waits for you.
   */
  readonly exited: Promise<ProcessExit>;
  readonly running: boolean;
  readonly bufferedChunks: number;
  /** The exit once its event arrived (output may still be unread), else null. */
  readonly exitStatus: ProcessExit | null;
  /** Same as `exited`. */
  wait(): Promise<ProcessExit>;

  /** One process.write: accepted whole, or RpcError -32001 when the child's stdin queue is full (nothing queued, no retry). */
  write(data: string | Uint8Array, options?: CallOptions): Promise<WriteResult>;
  /** Any size, in pieces, waiting for room while the child's stdin queue is full. */
  writeAll(data: string | Uint8Array, options?: WriteAllOptions): Promise<WriteResult>;
  closeStdin(options?: CallOptions): Promise<{ ok: true; pending: number }>;
  /**
   * To the process group (default SIGTERM); with `tree: true`, to the process
   * and every descendant. True once sent; false if the process had already exited.
   */
  signal(name?: SignalName | number, options?: SignalOptions): Promise<boolean>;
  /** signal(name), SIGKILL by default. */
  kill(name?: SignalName | number, options?: SignalOptions): Promise<boolean>;
  /** signal("SIGTERM"). */
  terminate(options?: SignalOptions): Promise<boolean>;
  /** `process.resize`, columns first: for a process spawned with `pty` (others get RpcError -32602). */
  resize(size: TerminalSize, options?: CallOptions): Promise<ResizeResult>;
  /** Resizes the process's terminal to the UI's now and on every SIGWINCH; returns a function that stops. */
  followTerminalSize(options?: FollowTerminalOptions): Unsubscribe;
  /**
   * `process.cancel`: runs `ladder` (else the spawn's `cancel`, else the
   * default) over the whole tree and resolves once nothing of it is left,
   * possibly seconds later. No timeout unless `options.timeout`; a Gateway
   * `requestTimeout` is raised to the ladder's waits + 5 s for this call.
   */
  cancel(ladder?: CancelLadder, options?: CallOptions): Promise<CancelResult>;

  [Symbol.asyncIterator](): AsyncIterator<OutputChunk<D>, undefined>;
  chunks(): AsyncIterableIterator<OutputChunk<D>>;
  lines(options?: LinesOptions): AsyncGenerator<OutputLine, void, undefined>;
  /** Decoded text as it comes, partial lines included. */
  text(options?: { stream?: OutputStream }): AsyncGenerator<OutputText, void, undefined>;
  /** Everything until the end: a string, or a Buffer in base64 mode. */
  read(options?: { stream?: OutputStream }): Promise<D>;
}

// ---------------------------------------------------------------------------
// Building blocks (exported for tests and custom transports)

export declare const DEFAULT_READY_TIMEOUT_MS: number;
/** The default readyTimeout when `args` hold "--" (a bridged backend). */
export declare const BRIDGE_READY_TIMEOUT_MS: number;
export declare const DEFAULT_MAX_LINE_BYTES: number;

export declare class LineFramer {
  constructor(options: {
    maxLineBytes?: number;
    /** A view into the pushed chunk: decode or copy it before returning. */
    onLine: (line: Buffer) => void;
    onOversize?: (info: { limit: number; preview: string }) => void;
    onTruncated?: (info: { bytes: number; preview: string }) => void;
  });
  readonly bufferedBytes: number;
  /** Lines ended so far (every "\n", delivered or not). */
  readonly lines: number;
  push(chunk: Buffer): void;
  end(): void;
}

export declare class FrameWriter {
  constructor(stream: Writable);
  readonly queued: number;
  readonly blocked: boolean;
  write(text: string): Promise<void>;
  end(): void;
  fail(error: Error): void;
}

export declare function resolveCommand(options: {
  command?: string;
  env: { [name: string]: string | undefined };
  cwd?: string;
}): { path: string; source: "command" | "TUI_GATEWAY_BIN" | "PATH" };
