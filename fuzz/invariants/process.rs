//! `process`: the engine with the real `process.*` service over an in-memory
//! host whose children do what the fuzzer says: output chunks on any open
//! stream, end of output, exit (a code or a signal), stdin taking bytes or
//! not. Pipes and pseudo-terminals, both encodings.
//!
//! Input: byte 0 seeds the schedule (write sizes); then each op is one byte
//! (`op % 8`) and its operands:
//!
//! | op | what | operands |
//! |----|------|----------|
//! | 0  | `process.spawn` (pty, encoding, stdin, stderr from the bits; bit 5: an envelope; bit 6: the child leaves a straggler that only SIGKILL ends) | mode, and with bit 5: timeout, limit, ladder |
//! | 1  | `process.write` of some bytes | proc, length |
//! | 2  | `process.close_stdin` | proc |
//! | 3  | `process.signal` (tree or group), or `process.cancel` (alone, as a notification, or in a batch; a ladder of its own or not) | proc, how |
//! | 4  | `process.resize` (sides may be out of range) | proc, rows, cols |
//! | 5  | `process.list` | |
//! | 6  | a child event: output, end of a stream, exit, stdin room | child, kind, bytes |
//! | 7  | the reader takes some output; the clock moves; a tick | step |
//!
//! Child output is delivered only when the engine has room for it
//! (`child_read_size`), as the shell does. At the end stdin reaches EOF,
//! every child still running ends (its streams close, it exits), and the
//! reader takes everything.
//!
//! Asserted: no panic; the queue never passes its hard limit; the output is
//! valid NDJSON; every request gets exactly one valid response; per
//! process, no `process.output` after its `process.exit`, exactly one exit
//! for every process that was spawned, output only on the streams it has
//! (`pty` for a terminal, `stderr` only for its own pipe); the gateway
//! exits 0.

use std::collections::{HashMap, HashSet};
use std::io;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tui_gateway::engine::host::{
    ChildEvent, ChildKey, ExitStatus, Host, OutputStream, PtySize, SignalScope, SpawnSpec, Spawned,
    StderrMode,
};
use tui_gateway::engine::Engine;
use tui_gateway::{services, Config};

use super::input::{Reader, Rng};
use super::wire::{check_response, split_lines};

/// Bytes children print: text, escapes, control bytes, split UTF-8.
const OUTPUT: [&[u8]; 8] = [
    b"hello\n",
    b"\x1b[31mred\x1b[0m\r\n",
    b"\xe2\x82",
    b"\xac euro",
    b"\0\x01\x7f",
    b"\xff\xfe invalid",
    b"\"quoted\" \\ back",
    b"\xe2\x80\xa8 line separator",
];

/// Linux's numbers (the fuzz crate does not link `libc`).
const SIGKILL: i32 = 9;
const ESRCH: i32 = 3;

/// One simulated child.
#[derive(Debug)]
struct SimChild {
    pty: bool,
    /// `[stdout or pty, stderr]` still open.
    open: [bool; 2],
    stdin_open: bool,
    /// Bytes its stdin takes before it would block.
    room: usize,
    exited: bool,
    released: bool,
    /// A descendant left behind that only SIGKILL ends (its tree is not
    /// empty until then).
    straggler: bool,
    /// Raw bytes written per stream.
    written: [u64; 2],
    /// Spawned with a stderr pipe of its own.
    has_stderr: bool,
}

/// The in-memory host.
#[derive(Debug, Default)]
struct SimHost {
    children: Vec<SimChild>,
    fail_next_spawn: bool,
    /// The next spawned child leaves a straggler.
    next_straggler: bool,
}

impl Host for SimHost {
    fn spawn(&mut self, spec: &SpawnSpec) -> io::Result<Spawned> {
        if std::mem::take(&mut self.fail_next_spawn) {
            return Err(io::ErrorKind::NotFound.into());
        }
        let pty = spec.pty.is_some();
        self.children.push(SimChild {
            pty,
            open: [true, !pty && spec.stderr == StderrMode::Pipe],
            stdin_open: true,
            room: 0,
            exited: false,
            released: false,
            straggler: std::mem::take(&mut self.next_straggler),
            written: [0; 2],
            has_stderr: !pty && spec.stderr == StderrMode::Pipe,
        });
        let key = self.children.len() - 1;
        Ok(Spawned {
            key: ChildKey(key),
            pid: 1000 + key as u32,
        })
    }

    fn write_stdin(&mut self, key: ChildKey, data: &[u8]) -> io::Result<usize> {
        let child = &mut self.children[key.0];
        if !child.stdin_open || child.exited {
            return Err(io::ErrorKind::BrokenPipe.into());
        }
        if child.room == 0 {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        let n = data.len().min(child.room);
        child.room -= n;
        Ok(n)
    }

    fn close_stdin(&mut self, key: ChildKey) {
        self.children[key.0].stdin_open = false;
    }

    fn signal(&mut self, key: ChildKey, signal: i32, _scope: SignalScope) -> io::Result<()> {
        let child = &mut self.children[key.0];
        assert!(!child.released, "signalled after its release");
        if child.exited && !child.straggler {
            return Err(io::Error::from_raw_os_error(ESRCH));
        }
        if signal == SIGKILL {
            child.straggler = false;
        }
        Ok(())
    }

    fn signal_descendants(&mut self, signal: i32) {
        if signal == SIGKILL {
            for child in &mut self.children {
                child.straggler = false;
            }
        }
    }

    fn interrupt(&mut self, key: ChildKey) -> io::Result<()> {
        if self.children[key.0].pty {
            Ok(())
        } else {
            Err(io::ErrorKind::Unsupported.into())
        }
    }

    fn resize(&mut self, key: ChildKey, _size: PtySize) -> io::Result<()> {
        if self.children[key.0].pty {
            Ok(())
        } else {
            Err(io::ErrorKind::Unsupported.into())
        }
    }

    fn release(&mut self, key: ChildKey) {
        let child = &mut self.children[key.0];
        assert!(
            child.exited && !child.open.iter().any(|o| *o),
            "released before its exit and end of output"
        );
        child.released = true;
    }
}

struct Run {
    /// The `output_limit` of each spawn request, by request id.
    /// Each spawn's `output_limit`, and whether its output is base64.
    limits: HashMap<u64, Option<(Value, bool)>>,
    /// Ids of requests sent in a batch.
    batched: HashSet<u64>,
    engine: Engine,
    host: SimHost,
    now: Instant,
    rng: Rng,
    out: Vec<u8>,
    next_id: u64,
    hard: usize,
}

impl Run {
    /// Sends `method` as a request with the next id.
    fn send(&mut self, method: &str, params: Value) {
        let mut request = self.request(method, params);
        if request["params"].is_null() {
            request.as_object_mut().expect("an object").remove("params");
        }
        self.input(&request);
    }

    /// Sends `method` as a notification: nothing is answered.
    fn send_notification(&mut self, method: &str, params: Value) {
        self.input(&json!({"jsonrpc": "2.0", "method": method, "params": params}));
    }

    /// Sends `method` as a request in a batch of one.
    fn send_batch(&mut self, method: &str, params: Value) {
        let request = self.request(method, params);
        self.batched.insert(self.next_id - 1);
        self.input(&json!([request]));
    }

    /// A request for `method` under the next id.
    fn request(&mut self, method: &str, params: Value) -> Value {
        let id = self.next_id;
        self.next_id += 1;
        json!({"jsonrpc": "2.0", "method": method, "id": id, "params": params})
    }

    /// Writes one frame to the engine's stdin, read only when the engine
    /// asks for input, as the shell does.
    fn input(&mut self, frame: &Value) {
        let mut bytes = serde_json::to_vec(frame).expect("serializable");
        bytes.push(b'\n');
        self.pump();
        self.engine.on_input(&bytes, &mut self.host, self.now);
        self.check_bound();
    }

    fn pump(&mut self) {
        while self.engine.has_input_backlog() {
            if self.engine.can_dispatch() {
                self.engine.pump_input(&mut self.host, self.now);
            } else {
                self.write(usize::MAX);
            }
            self.check_bound();
        }
    }

    fn child(&mut self, key: usize, event: ChildEvent) {
        self.engine
            .on_child(ChildKey(key), event, &mut self.host, self.now);
        self.check_bound();
    }

    fn write(&mut self, size: usize) {
        let out = &mut self.out;
        self.engine
            .outbound()
            .write_with(self.now, |slices| {
                let mut left = size;
                for slice in slices {
                    let take = left.min(slice.len());
                    out.extend_from_slice(&slice[..take]);
                    left -= take;
                }
                Ok::<usize, ()>(size.min(slices.iter().map(|s| s.len()).sum()))
            })
            .expect("the writer never fails here");
    }

    fn check_bound(&self) {
        let queued = self.engine.outbound_queued_bytes();
        assert!(
            queued <= self.hard,
            "{queued} bytes queued, hard limit {}",
            self.hard
        );
    }

    /// A child the fuzzer picks among those still held (not released).
    fn pick(&self, selector: u8) -> Option<usize> {
        let live: Vec<usize> = (0..self.host.children.len())
            .filter(|&k| !self.host.children[k].released)
            .collect();
        (!live.is_empty()).then(|| live[usize::from(selector) % live.len()])
    }

    /// A `proc` id the fuzzer picks: mostly one that exists, sometimes not.
    fn proc_id(&self, selector: u8) -> u64 {
        let spawned = self.host.children.len() as u64;
        u64::from(selector) % (spawned + 2)
    }
}

/// The fuzz entry point.
pub fn check(data: &[u8]) {
    let mut input = Reader::new(data);
    let seed = u64::from(input.u8());
    let config = Config {
        // Small limits, so pacing and splitting are exercised.
        coalesce_cap_bytes: 64,
        max_processes: 4,
        child_stdin_limit_bytes: 256,
        ..Config::default()
    };
    let hard = config.hard_limit_bytes;
    let now = Instant::now();
    let engine = Engine::new(config.engine(), services::standard(&config), now).expect("no clash");
    let mut run = Run {
        limits: HashMap::new(),
        batched: HashSet::new(),
        engine,
        host: SimHost::default(),
        now,
        rng: Rng::new(seed),
        out: Vec::new(),
        next_id: 0,
        hard,
    };
    while !input.is_empty() {
        match input.u8() % 8 {
            0 => {
                let mode = input.u8();
                run.host.fail_next_spawn = mode & 0x80 != 0;
                let mut params = json!({"argv": ["sim"]});
                if mode & 1 != 0 {
                    params["pty"] = json!({"rows": 24, "cols": 80});
                }
                if mode & 2 != 0 {
                    params["encoding"] = json!("base64");
                }
                if mode & 4 != 0 {
                    params["stdin"] = json!("null");
                }
                match (mode >> 3) % 4 {
                    1 => params["stderr"] = json!("merge"),
                    2 => params["stderr"] = json!("null"),
                    _ => {}
                }
                if mode & 0x20 != 0 {
                    let (timeout, limit, ladder) = (input.u8(), input.u8(), input.u8());
                    if timeout != 0 {
                        params["timeout_ms"] = json!(u64::from(timeout) * 16);
                    }
                    if limit != 0 {
                        let policy = ["kill", "truncate", "tail"][usize::from(limit % 3)];
                        let bytes = u64::from(limit >> 2) + 1;
                        params["output_limit"] = json!({"bytes": bytes, "policy": policy});
                    }
                    if let Some(ladder) = ladder_of(ladder) {
                        params["cancel"] = ladder;
                    }
                }
                run.host.next_straggler = mode & 0x40 != 0 && !run.host.fail_next_spawn;
                let base64 = params["encoding"] == "base64";
                let limit = params.get("output_limit").cloned().map(|l| (l, base64));
                run.limits.insert(run.next_id, limit);
                run.send("process.spawn", params);
            }
            1 => {
                let proc = run.proc_id(input.u8());
                let len = usize::from(input.u8());
                run.send(
                    "process.write",
                    json!({"proc": proc, "data": "x".repeat(len)}),
                );
            }
            2 => {
                let proc = run.proc_id(input.u8());
                run.send("process.close_stdin", json!({"proc": proc}));
            }
            3 => {
                let proc = run.proc_id(input.u8());
                let how = input.u8();
                if how & 2 == 0 {
                    let tree = how & 1 == 1;
                    run.send(
                        "process.signal",
                        json!({"proc": proc, "signal": "SIGTERM", "tree": tree}),
                    );
                    continue;
                }
                let mut params = json!({"proc": proc});
                if let Some(ladder) = ladder_of(how >> 4) {
                    params["ladder"] = ladder;
                }
                match (how >> 2) % 4 {
                    0 => run.send_notification("process.cancel", params),
                    1 => run.send_batch("process.cancel", params),
                    _ => run.send("process.cancel", params),
                }
            }
            4 => {
                let proc = run.proc_id(input.u8());
                let (rows, cols) = (input.u8(), input.u8());
                run.send(
                    "process.resize",
                    json!({"proc": proc, "rows": rows, "cols": cols}),
                );
            }
            5 => run.send("process.list", Value::Null),
            6 => {
                let (selector, kind, bytes) = (input.u8(), input.u8(), input.u8());
                let Some(key) = run.pick(selector) else {
                    continue;
                };
                child_event(&mut run, key, kind, bytes);
            }
            _ => {
                let step = input.u8();
                run.now += Duration::from_millis(u64::from(step) * 4);
                let size = 1 + run.rng.below(4096) as usize;
                run.write(size);
                run.engine.tick(&mut run.host, run.now);
                run.pump();
            }
        }
    }
    finish(&mut run);
    verify(&run);
}

/// A ladder `selector` picks, or none (the spawn's, or the default).
fn ladder_of(selector: u8) -> Option<Value> {
    match selector % 4 {
        0 => None,
        1 => Some(json!([["SIGKILL"]])),
        2 => Some(json!([["SIGINT", 40], ["SIGKILL"]])),
        _ => Some(json!([["SIGTERM", 0], ["SIGUSR1", 100]])),
    }
}

/// Delivers the event `kind` picks to child `key`, if it can happen now.
fn child_event(run: &mut Run, key: usize, kind: u8, bytes: u8) {
    let child = &run.host.children[key];
    let stream_slot = usize::from(kind >> 4 & 1);
    let stream = match (child.pty, stream_slot) {
        (true, _) => OutputStream::Pty,
        (false, 0) => OutputStream::Stdout,
        (false, _) => OutputStream::Stderr,
    };
    let slot = if child.pty { 0 } else { stream_slot };
    match kind % 4 {
        0 | 1 if child.open[slot] => {
            // Read only what the engine has room for, as the shell does.
            let size = run.engine.child_read_size();
            if size == 0 {
                return;
            }
            let mut data = Vec::new();
            for i in 0..=usize::from(bytes % 8) {
                data.extend_from_slice(OUTPUT[(usize::from(bytes) + i) % OUTPUT.len()]);
            }
            data.truncate(size);
            run.host.children[key].written[slot] += data.len() as u64;
            run.child(key, ChildEvent::Output(stream, data));
        }
        2 if child.open[slot] => {
            run.host.children[key].open[slot] = false;
            run.child(key, ChildEvent::Eof(stream));
        }
        2 if !child.exited => {
            run.host.children[key].exited = true;
            let status = if bytes & 1 == 0 {
                ExitStatus::Code(i32::from(bytes >> 1))
            } else {
                ExitStatus::Signal(i32::from(bytes >> 1) % 64 + 1)
            };
            run.child(key, ChildEvent::Exited(status, None));
        }
        3 if child.stdin_open && !child.exited => {
            run.host.children[key].room += usize::from(bytes);
            run.child(key, ChildEvent::StdinWritable);
        }
        _ => {}
    }
}

/// Stdin EOF, every child ends, the reader takes everything, the clock runs
/// until the gateway has exited.
fn finish(run: &mut Run) {
    run.pump();
    run.engine.on_input_eof(&mut run.host, run.now);
    run.pump();
    for key in 0..run.host.children.len() {
        for slot in 0..2 {
            if run.host.children[key].open[slot] && !run.host.children[key].released {
                run.host.children[key].open[slot] = false;
                let stream = match (run.host.children[key].pty, slot) {
                    (true, _) => OutputStream::Pty,
                    (false, 0) => OutputStream::Stdout,
                    (false, _) => OutputStream::Stderr,
                };
                run.child(key, ChildEvent::Eof(stream));
            }
        }
        if !run.host.children[key].exited && !run.host.children[key].released {
            run.host.children[key].exited = true;
            run.child(key, ChildEvent::Exited(ExitStatus::Signal(15), None));
        }
    }
    for _ in 0..10_000 {
        if run.engine.exit().is_some() {
            break;
        }
        run.write(usize::MAX);
        run.now += Duration::from_millis(10);
        run.engine.tick(&mut run.host, run.now);
        run.pump();
    }
    run.write(usize::MAX);
    let exit = run
        .engine
        .exit()
        .expect("the gateway exits once everything ended");
    assert_eq!(exit.code, 0, "{exit:?}");
}

/// What one process's events showed, per stream slot.
#[derive(Debug, Default)]
struct Seen {
    /// A `truncated` marker came.
    truncated: [bool; 2],
    /// A ring came, with its `skipped` count.
    skipped: [bool; 2],
    exited: bool,
}

fn slot_of(stream: &str) -> usize {
    usize::from(stream == "stderr")
}

/// The output, line by line, against the rules.
fn verify(run: &Run) {
    let (lines, partial) = split_lines(&run.out);
    assert!(partial.is_empty(), "the output does not end with a newline");
    let mut answered = HashSet::new();
    // proc -> the id of the request that spawned it.
    let mut spawned: HashMap<u64, u64> = HashMap::new();
    let mut seen: HashMap<u64, Seen> = HashMap::new();
    let mut exits: HashMap<u64, Value> = HashMap::new();
    for (_, v) in lines.iter().skip(1) {
        if let Some(batch) = v.as_array() {
            for member in batch {
                check_response(member);
                let id = member["id"].as_u64().expect("our ids are integers");
                assert!(answered.insert(id), "request {id} answered twice");
                assert!(run.batched.contains(&id), "a batch answer for {id}");
                // Never run in a batch: refused, or its params are wrong.
                let code = member["error"]["code"].as_i64();
                assert!(
                    matches!(code, Some(-32600 | -32602)),
                    "cancel in a batch: {member}"
                );
            }
            continue;
        }
        if v.get("id").is_some() {
            check_response(v);
            let id = v["id"].as_u64().expect("our ids are integers");
            assert!(answered.insert(id), "request {id} answered twice");
            let result = &v["result"];
            if let (Some(proc), Some(_)) = (result["proc"].as_u64(), result.get("pid")) {
                spawned.insert(proc, id);
            }
            if let Some(step) = result.get("step") {
                // A cancel's answer: after its process's exit, which it echoes.
                let proc = result["proc"].as_u64().expect("a proc");
                let exit = exits
                    .get(&proc)
                    .expect("the exit event comes before the cancel's answer");
                assert_eq!(result["code"], exit["code"], "{v}");
                assert_eq!(result["exit_signal"], exit["signal"], "{v}");
                assert!(step.as_u64().is_some_and(|s| s < 8), "{v}");
                assert!(result["signal"].is_string(), "{v}");
            }
            continue;
        }
        let payload = &v["params"]["payload"];
        let proc = payload["proc"].as_u64().expect("a proc");
        let state = seen.entry(proc).or_default();
        match v["params"]["type"].as_str() {
            Some("process.output") => {
                assert!(!state.exited, "output of proc {proc} after its exit: {v}");
                assert!(
                    spawned.contains_key(&proc),
                    "output before the spawn response: {v}"
                );
                let key = (proc - 1) as usize;
                let child = &run.host.children[key];
                let stream = payload["stream"].as_str().expect("a stream");
                match stream {
                    "pty" => assert!(child.pty, "{v}"),
                    "stdout" => assert!(!child.pty, "{v}"),
                    "stderr" => assert!(!child.pty, "{v}"),
                    other => panic!("stream {other}"),
                }
                assert!(payload["data"].is_string(), "{v}");
                let slot = slot_of(stream);
                assert!(
                    !state.truncated[slot],
                    "output after the truncated marker: {v}"
                );
                if payload.get("truncated").is_some() {
                    assert_eq!(payload["truncated"], true, "{v}");
                    assert_eq!(payload["data"], "", "{v}");
                    state.truncated[slot] = true;
                }
                if payload.get("skipped").is_some() {
                    assert!(!state.skipped[slot], "two rings on one stream: {v}");
                    assert!(payload["skipped"].is_u64(), "{v}");
                    state.skipped[slot] = true;
                }
            }
            Some("process.exit") => {
                assert!(!state.exited, "two exits for proc {proc}");
                state.exited = true;
                let request = spawned.get(&proc).expect("exit after the spawn response");
                let limit = run.limits.get(request).cloned().flatten();
                check_exit(run, proc, payload, state, limit);
                exits.insert(proc, payload.clone());
            }
            other => panic!("unexpected event {other:?}: {v}"),
        }
    }
    assert_eq!(answered.len() as u64, run.next_id, "one answer per request");
    for proc in spawned.keys() {
        assert!(exits.contains_key(proc), "proc {proc} has no exit event");
    }
}

/// One exit event against what the simulated child did and its limit.
fn check_exit(run: &Run, proc: u64, exit: &Value, seen: &Seen, limit: Option<(Value, bool)>) {
    let key = (proc - 1) as usize;
    let child = &run.host.children[key];
    let streams: &[(&str, usize)] = match (child.pty, child.has_stderr) {
        (true, _) => &[("pty", 0)],
        (false, true) => &[("stdout", 0), ("stderr", 1)],
        (false, false) => &[("stdout", 0)],
    };
    for (name, slot) in streams {
        assert_eq!(
            exit["output_bytes"][*name], child.written[*slot],
            "output_bytes of {name}: {exit}"
        );
    }
    let cause = exit["cause"].as_str().expect("a cause");
    assert!(
        [
            "exit",
            "signal",
            "cancel",
            "timeout",
            "output_limit",
            "shutdown"
        ]
        .contains(&cause),
        "{exit}"
    );
    match &limit {
        Some((limit, base64)) => {
            let bytes = limit["bytes"].as_u64().expect("bytes");
            // A tail forwards its head as it comes: half the limit, in
            // base64 rounded down to whole 3-byte groups (docs/process.md).
            let head = if *base64 {
                bytes / 2 - bytes / 2 % 3
            } else {
                bytes / 2
            };
            for (name, slot) in streams {
                let discarded = exit["discarded"][*name].as_u64().expect("discarded");
                let written = child.written[*slot];
                assert!(discarded <= written, "{exit}");
                if limit["policy"] != "tail" {
                    assert!(
                        written - discarded <= bytes,
                        "forwarded past the limit: {exit}"
                    );
                    assert_eq!(seen.truncated[*slot], written > bytes, "marker: {exit}");
                } else {
                    assert_eq!(seen.skipped[*slot], written > head, "ring: {exit}");
                    assert!(written - discarded <= bytes, "{exit}");
                }
            }
            if cause == "output_limit" {
                assert_eq!(limit["policy"], "kill", "{exit}");
            }
        }
        None => {
            assert!(exit.get("discarded").is_none(), "{exit}");
            assert_ne!(cause, "output_limit", "{exit}");
        }
    }
}
