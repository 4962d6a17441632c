// Misuse that must NOT type-check: each line below carries @ts-expect-error,
// so `npm run typecheck` fails if the types ever stop rejecting it.
import { Gateway, type ProcessHandle } from "tui-gateway-client";

export async function misuse(gw: Gateway): Promise<void> {
  // @ts-expect-error the constructor is private: use Gateway.start()
  new Gateway();
  // @ts-expect-error readyTimeout is a number of milliseconds
  await Gateway.start({ readyTimeout: "5s" });
  // @ts-expect-error unknown restart policy
  await Gateway.start({ restart: { policy: "always" } });

  const info = await gw.info();
  // @ts-expect-error uptime_s is a number
  const s: string = info.uptime_s;

  gw.on("process.output", (p) => {
    // @ts-expect-error process.output has no `code`
    console.log(p.code);
  });
  gw.on("process.exit", (p) => {
    // @ts-expect-error code may be null
    const n: number = p.code;
    console.log(n);
  });

  const text = await gw.spawnProcess(["echo"]);
  for await (const c of text) {
    // @ts-expect-error utf8 chunks carry strings, not Buffers
    const b: Buffer = c.data;
    console.log(b);
  }
  const bytes: ProcessHandle<Buffer> = await gw.spawnProcess(["cat"], { encoding: "base64" });
  // @ts-expect-error stdin is "pipe" or "null"
  await gw.spawnProcess(["cat"], { stdin: "inherit" });
  // @ts-expect-error write takes a string or bytes
  await bytes.write(42);
  // @ts-expect-error the output limit policy is "kill", "truncate" or "tail"
  await gw.spawnProcess(["yes"], { outputLimit: { bytes: 10, policy: "drop" } });
  // @ts-expect-error limits are camelCase in the options (memoryBytes)
  await gw.spawnProcess(["yes"], { limits: { memory_bytes: 1 << 20 } });
  // @ts-expect-error a ladder step's wait is a number of milliseconds
  await text.cancel([["SIGTERM", "2s"], ["SIGKILL"]]);
  // @ts-expect-error resize takes {cols, rows}, not positional numbers
  await text.resize(30, 100);
  // @ts-expect-error the AbortSignal option is abortSignal: "signal" names a POSIX signal
  await text.signal("SIGINT", { signal: AbortSignal.timeout(10) });
  // @ts-expect-error nor in any other call
  await gw.ping({ signal: AbortSignal.timeout(10) });
  // @ts-expect-error signal() resolves to a boolean
  const r: { ok: true } = await text.signal("SIGTERM");
  console.log(r);
  const end = await text.exited;
  // @ts-expect-error not an exit cause
  if (end.cause === "killed") console.log(end);
  console.log(s);

  // @ts-expect-error a session is named by a string
  await Gateway.start({ session: 7 });
  // @ts-expect-error attach(name) takes no args: the session keeps its settings
  await Gateway.attach("work", { args: ["--sigint", "shutdown"] });
  // @ts-expect-error the cursor is a number of frames
  await Gateway.attach("work", { framesReceived: "120" });
  // @ts-expect-error the session cursor may be null (no session)
  const frames: number = gw.session.framesReceived;
  // @ts-expect-error adoptProcess takes a proc id, not a pid list entry
  await gw.adoptProcess((await gw.listProcesses())[0]);
  gw.on("reattached", (info) => {
    // @ts-expect-error reattached carries framesFrom, not frames_from
    console.log(info.frames_from);
  });
  console.log(frames);
}
