// A typed tour of the client, checked by `npm run typecheck` (tsc --noEmit,
// strict) against index.d.ts: documentation that cannot drift from the types.
import {
  Gateway,
  GatewayExited,
  GatewayStartError,
  RpcError,
  type CancelResult,
  type ExitCause,
  type ExitInfo,
  type GatewayReadyPayload,
  type OutputChunk,
  type ProcessExit,
  type ProcessHandle,
  type SessionCursor,
  type SessionInfo,
} from "tui-gateway-client";

export async function main(): Promise<void> {
  let gw: Gateway;
  try {
    gw = await Gateway.start({ readyTimeout: 5_000, restart: { policy: "on-failure", maxRestarts: 3 } });
  } catch (err) {
    if (err instanceof GatewayStartError) {
      console.error(`no gateway: ${err.message}`, err.code, err.reason, err.stderrTail.join("\n"));
    }
    throw err;
  }

  const ready: GatewayReadyPayload = gw.readyPayload;
  const grace: number = ready.limits.shutdown_grace_s;
  console.log(`gateway ${ready.version} pid ${ready.pid}, grace ${grace}s`);

  // Typed calls: the method name picks the result type.
  const pong = await gw.ping();
  const ok: true = pong.ok;
  const info = await gw.request("gateway.info");
  const uptime: number = info.uptime_s;
  const stats = await gw.stats({ timeout: 1_000 });
  const alive: number = stats.children_alive;
  console.log(ok, uptime, alive);

  // Untyped methods (a backend's) take a result type parameter.
  try {
    const answer = await gw.request<{ text: string }>("backend.ask", { q: "hi" }, { abortSignal: AbortSignal.timeout(500) });
    console.log(answer.text.toUpperCase());
  } catch (err) {
    if (err instanceof RpcError && err.code === -32601) console.log("no backend:", err.message);
  }

  const sent: boolean = await gw.notify("client.log", { level: "info" });
  const [first, second] = await gw.batch([{ method: "gateway.ping" }, { method: "gateway.stats" }, { method: "x", notify: true }]);
  if (first && first.ok) console.log(first.result);
  if (second && !second.ok) console.log(second.error.code);
  console.log(sent);

  // Events: typed payloads for the documented types, unknown ones untyped.
  gw.on("process.output", (p, meta) => {
    const text: string = p.data;
    console.log(p.proc, p.stream, text.length, meta.generation);
  });
  gw.on("process.exit", (p) => {
    const code: number | null = p.code;
    console.log(code, p.signal);
  });
  gw.on("backend.exited", (p) => {
    const restarting: boolean = p.restarting;
    console.log(p.code, p.signal, restarting);
  });
  const unsubscribe: () => void = gw.on("session.delta", (payload) => console.log(payload));
  unsubscribe();
  gw.on("exit", (e: ExitInfo) => console.log(e.code, e.signal, e.reason, e.restarting, e.error instanceof GatewayExited));
  gw.on("malformed", (m) => console.log(m.reason, m.line));
  gw.on("stderr", (line) => console.log(line));

  // Requests from the gateway (or a backend behind it).
  gw.onRequest<{ question: string }, { answer: boolean }>("ui.confirm", async (params, ctx) => {
    console.log(ctx.id, ctx.method);
    return { answer: params.question.length > 0 };
  });
  const stopRefusing = gw.onRequest("ui.refuse", () => {
    throw new RpcError(4001, "refused", { why: "demo" });
  });
  stopRefusing();

  // Processes: text chunks, lines, exit.
  const build: ProcessHandle<string> = await gw.spawnProcess(["sh", "-c", "echo building; echo warn >&2"], {
    tag: { pane: "build" },
  });
  for await (const { stream, line } of build.lines()) console.log(`[${stream}] ${line}`);
  const done: ProcessExit = await build.exited;
  console.log(done.code, done.signal);

  // Bytes: base64 on the wire, Buffers here.
  const raw = await gw.spawnProcess(["cat"], { encoding: "base64" });
  await raw.write(new Uint8Array([0, 1, 255]));
  await raw.closeStdin();
  const parts: Buffer[] = [];
  for await (const chunk of raw) {
    const c: OutputChunk<Buffer> = chunk;
    parts.push(c.data);
  }
  console.log(Buffer.concat(parts).length, (await raw.exited).code);

  // Interactive: write, signal, resize (resize needs a process on a terminal).
  const sleeper = await gw.spawnProcess(["sleep", "100"], { output: "ignore", stdin: "null" });
  const signalled: boolean = await sleeper.signal("SIGINT", { abortSignal: AbortSignal.timeout(1_000) });
  await sleeper.resize({ cols: 100, rows: 30 }).catch((err: unknown) => console.log(err instanceof RpcError ? err.code : err));
  console.log(signalled, await sleeper.wait(), await sleeper.kill()); // kill() after the exit: false

  // A shell on a terminal that follows the UI's own size; text as it comes.
  const shell = await gw.spawnProcess(["sh", "-i"], { pty: { rows: process.stdout.rows || 24, cols: process.stdout.columns || 80 } });
  const stopFollowing = shell.followTerminalSize({ stdout: process.stdout, adjust: ({ cols, rows }) => ({ cols, rows: Math.max(1, rows - 2) }) });
  await shell.writeAll("printf 'Password: '; read x; exit\n");
  for await (const { stream, text } of shell.text()) {
    process.stdout.write(`[${stream}] ${text}`);
    if (text.includes("Password: ")) await shell.write("secret\n");
  }
  stopFollowing();
  const progress = await gw.spawnProcess(["sh", "-c", "printf '10%%\\r50%%\\r100%%\\n'"]);
  for await (const { line, rewrite } of progress.lines({ rewrites: true })) console.log(rewrite ? `(replaces) ${line}` : line);

  // Command envelopes: a time limit, an output limit, resource limits and
  // how to cancel it; the exit says which one ended it.
  const job = await gw.spawnProcess(["make", "-j8"], {
    timeoutMs: 600_000,
    outputLimit: { bytes: 1 << 20, policy: "tail" },
    limits: { memoryBytes: 4 * 2 ** 30, cpuSeconds: 3_600 },
    cancel: [["SIGINT", 1_000], ["SIGTERM", 2_000], ["SIGKILL"]],
  });
  const onEscape = async (): Promise<void> => {
    // Resolves once the whole tree is gone.
    const r: CancelResult = await job.cancel([["SIGTERM", 500], ["SIGKILL"]]);
    console.log(`stopped at step ${r.step} (${r.signal}): ${r.code ?? r.exit_signal}`);
  };
  console.log(typeof onEscape);
  for await (const { stream, line, skipped } of job.lines()) {
    if (skipped !== undefined) console.log(`[... ${skipped} bytes skipped ...]`);
    console.log(`[${stream}] ${line}`);
  }
  const end: ProcessExit = await job.exited;
  const cause: ExitCause = end.cause;
  console.log(cause, end.duration_ms, end.output_bytes.stdout, end.discarded?.stdout, end.limit, end.usage?.max_rss_bytes);

  const exit = await gw.close({ grace: 2_000, shutdown: false });
  if (exit) console.log(exit.code, exit.reason, exit.error?.stderrTail);
}

// Sessions: work that outlives the UI (docs/sessions.md). Start "work" (or
// attach to it), save the cursor, come back later and lose nothing.
export async function sessions(saved: SessionCursor | null): Promise<SessionCursor | null> {
  const gw = saved
    ? await Gateway.attach(saved.name, saved)
    : await Gateway.start({ session: "work", reattach: { tries: 5, maxDelay: 2_000 } });
  gw.on("detached", ({ reason, framesReceived }) => console.log(`lost the gateway (${reason}); reattaching at ${framesReceived}`));
  gw.on("reattached", ({ framesFrom, framesTotal }) => console.log(`back at frame ${framesFrom} of ${framesTotal ?? "?"}`));
  gw.on("gateway.attached", (p) => console.log(p.session, p.epoch, p.frames_from));
  const here: SessionCursor | null = gw.session;
  if (here) console.log(here.name, here.epoch, here.framesReceived);
  const state: SessionInfo = await gw.sessionInfo();
  console.log(state.attached, state.processes, state.frames_total, (await gw.ack()).first_held);
  for (const p of await gw.listProcesses()) {
    const handle: ProcessHandle<string> = await gw.adoptProcess(p.proc);
    handle.lines({ stream: "stdout" });
  }
  const bytes: ProcessHandle<Buffer> = await gw.adoptProcess(1, { encoding: "base64" });
  console.log(bytes.encoding);
  if (saved) {
    const ended: ExitInfo | null = await gw.end();
    console.log(ended?.detached);
    return null;
  }
  return gw.detach(); // or close(): both let the session run on
}
