// A stand-in UI for test 6: starts a gateway, runs two children (one that
// ignores SIGTERM), prints their pids as one JSON line, then ends without
// close(): by process.exit() once a line arrives on its stdin (the client's
// 'exit' hook runs), or by waiting to be killed with SIGKILL (no hook can run).
//
// usage: node ui-exits.js exit|wait-for-kill   (TUI_GATEWAY_BIN names the binary)

import { Gateway } from "../index.js";

const mode = process.argv[2] ?? "exit";
const gw = await Gateway.start();
const sleeper = await gw.spawnProcess(["sleep", "1000"], { stdin: "null" });
const stubborn = await gw.spawnProcess(["sh", "-c", "trap '' TERM; sleep 1000; sleep 1000"], { stdin: "null" });
await gw.ping(); // both children are running
process.stdout.write(JSON.stringify({ gateway: gw.pid, children: [sleeper.pid, stubborn.pid] }) + "\n");
if (mode === "exit") process.stdin.once("data", () => process.exit(0));
else setInterval(() => {}, 1000); // wait for SIGKILL
