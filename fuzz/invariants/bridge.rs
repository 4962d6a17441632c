//! `bridge`: the engine with the real backend service (`-- CMD`) over an
//! in-memory host whose backend does what the fuzzer says: reads its stdin
//! or not, answers pending requests in any order (one by one or as an
//! array), refuses batches or takes them, writes events and junk, dies with
//! any status, and is restarted after a backoff; while the client sends
//! singles and batches mixing the backend's methods with the gateway's own,
//! and reads slowly.
//!
//! Input: byte 0 seeds the schedule; byte 1 picks the setup (bits 0-1: the
//! restart policy; bit 2: the backend refuses batches; bit 3: a small
//! `--backend-max-pending`; bit 4: small outbound limits); then each op is
//! one byte (`op % 8`) and its operands:
//!
//! | op | what | operands |
//! |----|------|----------|
//! | 0  | the client sends one request (the backend's or `gateway.ping`), or a notification | kind |
//! | 1  | the client sends a batch | size, kinds |
//! | 2  | the backend reads what waits on its stdin | room |
//! | 3  | the backend answers one pending request (any of them) | selector |
//! | 4  | the backend answers several at once, as an array when it takes batches | count |
//! | 5  | the backend writes an event, a delta or a junk line | kind |
//! | 6  | the backend dies (its output ends, it exits with a code or a signal) | status |
//! | 7  | the reader takes some output; the clock moves; a tick | step |
//!
//! Backend output is delivered only when the engine has room for it, as the
//! shell does. At the end stdin reaches EOF and the gateway drains: a live
//! backend ends when signalled, and the reader takes everything.
//!
//! Asserted: no panic (a push past the hard limit panics in these builds,
//! `outbound::paced`); the queue never passes its hard limit and refuses no
//! frame; the output is valid NDJSON; **every request the client sent gets
//! exactly one answer** (in a batch's array or on its own: the backend's,
//! `-32001`, `-32002` or `-32000`), and each batch exactly one array; the
//! gateway exits 0.

use std::collections::{HashMap, VecDeque};
use std::io;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tui_gateway::config::{ReadyPolicy, RestartPolicy};
use tui_gateway::engine::host::{
    ChildEvent, ChildKey, ExitStatus, Host, OutputStream, PtySize, SignalScope, SpawnSpec, Spawned,
};
use tui_gateway::engine::Engine;
use tui_gateway::{services, Config};

use super::input::{Reader, Rng};
use super::wire::{check_response, split_lines};

/// One simulated backend.
#[derive(Debug, Default)]
struct SimBackend {
    /// Bytes written to its stdin, not yet read by it.
    stdin: Vec<u8>,
    stdin_open: bool,
    /// Bytes its stdin pipe still takes.
    room: usize,
    /// Ids (as JSON) of requests it read and has not answered.
    owes: Vec<Value>,
    /// Lines it wrote that the gateway has not read yet.
    stdout: VecDeque<u8>,
    stdout_open: bool,
    exited: bool,
    /// Signalled to end (SIGTERM or SIGKILL): it exits at the next chance.
    ending: bool,
    released: bool,
}

#[derive(Debug, Default)]
struct SimHost {
    backends: Vec<SimBackend>,
    refuses_batches: bool,
}

impl Host for SimHost {
    fn spawn(&mut self, _spec: &SpawnSpec) -> io::Result<Spawned> {
        self.backends.push(SimBackend {
            stdin_open: true,
            stdout_open: true,
            room: 4096,
            ..SimBackend::default()
        });
        let key = self.backends.len() - 1;
        Ok(Spawned {
            key: ChildKey(key),
            pid: 2000 + key as u32,
        })
    }

    fn write_stdin(&mut self, key: ChildKey, data: &[u8]) -> io::Result<usize> {
        let b = &mut self.backends[key.0];
        if !b.stdin_open || b.exited {
            return Err(io::ErrorKind::BrokenPipe.into());
        }
        if b.room == 0 {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        let n = data.len().min(b.room);
        b.room -= n;
        b.stdin.extend_from_slice(&data[..n]);
        Ok(n)
    }

    fn close_stdin(&mut self, key: ChildKey) {
        self.backends[key.0].stdin_open = false;
    }

    fn signal(&mut self, key: ChildKey, _signal: i32, _scope: SignalScope) -> io::Result<()> {
        let b = &mut self.backends[key.0];
        if b.exited {
            return Err(io::ErrorKind::NotFound.into());
        }
        b.ending = true;
        Ok(())
    }

    fn signal_descendants(&mut self, _signal: i32) {}

    fn resize(&mut self, _key: ChildKey, _size: PtySize) -> io::Result<()> {
        Err(io::ErrorKind::Unsupported.into())
    }

    fn release(&mut self, key: ChildKey) {
        let b = &mut self.backends[key.0];
        assert!(b.exited, "a backend released before its exit");
        b.released = true;
    }
}

impl SimBackend {
    fn write_line(&mut self, line: &Value) {
        self.stdout
            .extend(serde_json::to_vec(line).expect("serializable"));
        self.stdout.push_back(b'\n');
    }

    /// Reads every complete line on its stdin, as the backend it plays.
    fn read(&mut self, refuses_batches: bool) {
        let Some(end) = self.stdin.iter().rposition(|&b| b == b'\n') else {
            return;
        };
        let bytes: Vec<u8> = self.stdin.drain(..=end).collect();
        for line in bytes.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
            let value: Value = serde_json::from_slice(line).expect("the gateway forwards JSON");
            match value {
                Value::Array(_) if refuses_batches => self.write_line(&json!({
                    "jsonrpc": "2.0", "id": null,
                    "error": {"code": -32600, "message": "batches are not supported"}
                })),
                Value::Array(members) => members.iter().for_each(|m| self.take(m)),
                single => self.take(&single),
            }
        }
    }

    fn take(&mut self, message: &Value) {
        if let (Some(id), Some(_)) = (message.get("id"), message.get("method")) {
            self.owes.push(id.clone());
        }
    }

    fn answer(&mut self, at: usize) -> Value {
        let id = self.owes.swap_remove(at);
        json!({"jsonrpc": "2.0", "id": id, "result": {"from": "backend"}})
    }
}

struct Run {
    engine: Engine,
    host: SimHost,
    now: Instant,
    rng: Rng,
    out: Vec<u8>,
    next_id: u64,
    /// Requests sent, and batches sent (ids of their requests).
    requests: u64,
    batches: Vec<Vec<u64>>,
    hard: usize,
}

impl Run {
    /// Sends one line, once the engine has dispatched everything before it
    /// (so every request sent is read: the gateway drains only at EOF here).
    fn send(&mut self, line: &Value) {
        let mut bytes = serde_json::to_vec(line).expect("serializable");
        bytes.push(b'\n');
        self.pump();
        self.engine.on_input(&bytes, &mut self.host, self.now);
        self.pump();
    }

    fn request(&mut self, kind: u8) -> Option<(Value, Option<u64>)> {
        let id = self.next_id;
        let (method, request) = match kind % 6 {
            0..=2 => ("app.work", true),
            3 => ("gateway.ping", true),
            4 => ("app.note", false),
            _ => ("gateway.info", true),
        };
        if !request {
            return Some((json!({"jsonrpc": "2.0", "method": method}), None));
        }
        self.next_id += 1;
        self.requests += 1;
        Some((
            json!({"jsonrpc": "2.0", "method": method, "id": id}),
            Some(id),
        ))
    }

    fn pump(&mut self) {
        for _ in 0..100_000 {
            if !self.engine.has_input_backlog() {
                break;
            }
            if self.engine.can_pump_input() {
                self.engine.pump_input(&mut self.host, self.now);
            } else {
                self.write(usize::MAX);
                self.deliver(0);
                self.engine.tick(&mut self.host, self.now);
            }
            self.check_bound();
        }
    }

    /// Hands the gateway what the live backend wrote, as much as it reads now.
    fn deliver(&mut self, key: usize) {
        let Some(b) = self.host.backends.get_mut(key) else {
            return;
        };
        if b.released || b.stdout.is_empty() {
            return;
        }
        let size = self.engine.child_read_size();
        if size == 0 {
            return;
        }
        let n = size.min(b.stdout.len());
        let data: Vec<u8> = b.stdout.drain(..n).collect();
        self.engine.on_child(
            ChildKey(key),
            ChildEvent::Output(OutputStream::Stdout, data),
            &mut self.host,
            self.now,
        );
        self.check_bound();
    }

    /// Backend `key` read its stdin: the gateway may write more, and reads
    /// what it wrote.
    fn stdin_taken(&mut self, key: usize) {
        self.engine.on_child(
            ChildKey(key),
            ChildEvent::StdinWritable,
            &mut self.host,
            self.now,
        );
        self.deliver(key);
    }

    /// The backend that is alive now, if any.
    fn live(&self) -> Option<usize> {
        self.host
            .backends
            .iter()
            .rposition(|b| !b.exited && !b.released)
    }

    /// The backend `key` ends: what it wrote is read first, then its
    /// stdout closes and it exits.
    fn die(&mut self, key: usize, status: ExitStatus) {
        for _ in 0..100_000 {
            if self.host.backends[key].stdout.is_empty() {
                break;
            }
            self.deliver(key);
            self.write(usize::MAX);
            self.engine.tick(&mut self.host, self.now);
        }
        let b = &mut self.host.backends[key];
        if b.stdout_open {
            b.stdout_open = false;
            for stream in [OutputStream::Stdout, OutputStream::Stderr] {
                self.engine.on_child(
                    ChildKey(key),
                    ChildEvent::Eof(stream),
                    &mut self.host,
                    self.now,
                );
            }
        }
        if !self.host.backends[key].exited {
            self.host.backends[key].exited = true;
            self.engine.on_child(
                ChildKey(key),
                ChildEvent::Exited(status, None),
                &mut self.host,
                self.now,
            );
        }
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

    fn check_bound(&mut self) {
        let queued = self.engine.outbound_queued_bytes();
        assert!(
            queued <= self.hard,
            "{queued} bytes queued, hard limit {}",
            self.hard
        );
        let refused = self.engine.outbound().counters().frames_refused;
        assert_eq!(refused, 0, "the queue refused a frame");
    }
}

/// The fuzz entry point.
pub fn check(data: &[u8]) {
    let mut input = Reader::new(data);
    let seed = u64::from(input.u8());
    let setup = input.u8();
    let mut config = Config::default();
    config.backend.argv = vec!["sim-backend".into()];
    config.backend.ready = ReadyPolicy::None;
    config.backend.keep_running = true;
    config.backend.restart = match setup % 4 {
        0 => RestartPolicy::Never,
        1 => RestartPolicy::OnFailure,
        _ => RestartPolicy::Always,
    };
    if setup & 8 != 0 {
        config.backend.max_pending = 3;
    }
    if setup & 16 != 0 {
        config.hard_limit_bytes = 2 << 20;
        config.high_water_bytes = 512 << 10;
        config.low_water_bytes = 128 << 10;
        config.soft_limit_bytes = 2 << 20;
        config.backend.stdin_limit_bytes = 2048;
    }
    // A slow reader is not the subject here: nothing ends it for slowness.
    config.soft_limit_duration = Duration::from_secs(1 << 20);
    config.stall_timeout = Duration::from_secs(1 << 20);
    let hard = config.hard_limit_bytes;
    let now = Instant::now();
    let mut engine =
        Engine::new(config.engine(), services::standard(&config), now).expect("no clash");
    let mut host = SimHost {
        refuses_batches: setup & 4 != 0,
        ..SimHost::default()
    };
    engine
        .start(&mut host, now)
        .expect("the sim backend starts");
    let mut run = Run {
        engine,
        host,
        now,
        rng: Rng::new(seed),
        out: Vec::new(),
        next_id: 0,
        requests: 0,
        batches: Vec::new(),
        hard,
    };
    while !input.is_empty() {
        match input.u8() % 8 {
            0 => {
                let kind = input.u8();
                if let Some((line, _)) = run.request(kind) {
                    run.send(&line);
                }
            }
            1 => {
                let size = 1 + usize::from(input.u8() % 6);
                let mut members = Vec::new();
                let mut ids = Vec::new();
                for _ in 0..size {
                    let kind = input.u8();
                    if let Some((member, id)) = run.request(kind) {
                        members.push(member);
                        ids.extend(id);
                    }
                }
                run.batches.push(ids);
                run.send(&Value::Array(members));
            }
            2 => {
                let room = usize::from(input.u8()) * 16;
                if let Some(key) = run.live() {
                    let refuses = run.host.refuses_batches;
                    let b = &mut run.host.backends[key];
                    b.read(refuses);
                    b.room += room;
                    run.stdin_taken(key);
                }
            }
            3 => {
                let selector = usize::from(input.u8());
                if let Some(key) = run.live() {
                    let b = &mut run.host.backends[key];
                    if !b.owes.is_empty() {
                        let answer = b.answer(selector % b.owes.len());
                        b.write_line(&answer);
                    }
                    run.deliver(key);
                }
            }
            4 => {
                let count = 1 + usize::from(input.u8() % 8);
                if let Some(key) = run.live() {
                    let refuses = run.host.refuses_batches;
                    let b = &mut run.host.backends[key];
                    let answers: Vec<Value> =
                        (0..count.min(b.owes.len())).map(|_| b.answer(0)).collect();
                    if refuses {
                        answers.iter().for_each(|a| b.write_line(a));
                    } else if !answers.is_empty() {
                        b.write_line(&Value::Array(answers));
                    }
                    run.deliver(key);
                }
            }
            5 => {
                let kind = input.u8();
                if let Some(key) = run.live() {
                    let b = &mut run.host.backends[key];
                    match kind % 3 {
                        0 => b.write_line(&json!({"jsonrpc": "2.0", "method": "event",
                            "params": {"type": "message.delta", "payload": {"text": "tok"}}})),
                        1 => b.write_line(&json!({"jsonrpc": "2.0", "method": "event",
                            "params": {"type": "status", "payload": {"n": kind}}})),
                        _ => b.stdout.extend(b"not json at all\n"),
                    }
                    run.deliver(key);
                }
            }
            6 => {
                let status = input.u8();
                if let Some(key) = run.live() {
                    let status = if status & 1 == 0 {
                        ExitStatus::Code(i32::from(status >> 1) % 4)
                    } else {
                        ExitStatus::Signal(9)
                    };
                    run.die(key, status);
                }
            }
            _ => {
                let step = input.u8();
                run.now += Duration::from_millis(u64::from(step) * 8);
                let size = 1 + run.rng.below(8192) as usize;
                run.write(size);
                run.engine.tick(&mut run.host, run.now);
                if let Some(key) = run.live() {
                    run.deliver(key);
                }
                run.pump();
            }
        }
        run.check_bound();
    }
    finish(&mut run);
    verify(&run);
}

/// Stdin EOF; a live backend reads what it was sent, then ends when
/// signalled (or when its stdin closes); the reader takes everything.
fn finish(run: &mut Run) {
    run.pump();
    run.engine.on_input_eof(&mut run.host, run.now);
    run.pump();
    for _ in 0..10_000 {
        if run.engine.exit().is_some() {
            break;
        }
        if let Some(key) = run.live() {
            let refuses = run.host.refuses_batches;
            let b = &mut run.host.backends[key];
            b.room += 1 << 16;
            b.read(refuses);
            if b.ending {
                run.die(key, ExitStatus::Signal(15));
            } else if !b.stdin_open {
                // A backend that sees EOF on its stdin ends well.
                run.die(key, ExitStatus::Code(0));
            } else {
                run.stdin_taken(key);
            }
        }
        run.write(usize::MAX);
        run.now += Duration::from_millis(10);
        run.engine.tick(&mut run.host, run.now);
        run.pump();
        run.check_bound();
    }
    run.write(usize::MAX);
    let exit = run
        .engine
        .exit()
        .expect("the gateway exits once its backend is gone");
    assert_eq!(exit.code, 0, "{exit:?}");
}

/// Every request answered exactly once, every batch by one array.
fn verify(run: &Run) {
    let (lines, partial) = split_lines(&run.out);
    assert!(partial.is_empty(), "the output does not end with a newline");
    let mut answers: HashMap<u64, usize> = HashMap::new();
    let mut arrays = Vec::new();
    for (_, v) in &lines {
        let members = match v {
            Value::Array(members) => {
                let mut ids: Vec<u64> = members.iter().filter_map(|m| m["id"].as_u64()).collect();
                ids.sort_unstable();
                arrays.push(ids);
                members.clone()
            }
            single if single.get("id").is_some() => vec![single.clone()],
            _ => continue,
        };
        for m in members {
            check_response(&m);
            let id = m["id"]
                .as_u64()
                .unwrap_or_else(|| panic!("an answer under an id the client never sent: {m}"));
            *answers.entry(id).or_default() += 1;
        }
    }
    for id in 0..run.next_id {
        assert_eq!(
            answers.get(&id).copied().unwrap_or(0),
            1,
            "request {id}: one answer, got {:?}",
            answers.get(&id)
        );
    }
    assert_eq!(answers.len() as u64, run.requests);
    let mut expected: Vec<Vec<u64>> = run
        .batches
        .iter()
        .filter(|ids| !ids.is_empty())
        .map(|ids| {
            let mut ids = ids.clone();
            ids.sort_unstable();
            ids
        })
        .collect();
    expected.sort();
    arrays.sort();
    assert_eq!(
        arrays, expected,
        "one array per batch, with its requests' ids"
    );
}
