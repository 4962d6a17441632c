//! A process-host client over the harness: requests matched to their
//! responses while every other frame read meanwhile is kept in `seen`, plus
//! helpers to read `process.*` events and inspect processes in `/proc`.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::*;

/// A gateway plus every frame read from it. Unlike the harness's `call`,
/// which skips events while it waits for a response, this keeps them: a
/// child's output may arrive while the test is waiting for any response.
#[derive(Debug)]
pub struct Client {
    /// The gateway.
    pub gw: Gateway,
    /// Every frame read and not taken as a response.
    pub seen: Vec<Value>,
    next_id: u64,
}

impl std::ops::Deref for Client {
    type Target = Gateway;
    fn deref(&self) -> &Gateway {
        &self.gw
    }
}

impl std::ops::DerefMut for Client {
    fn deref_mut(&mut self) -> &mut Gateway {
        &mut self.gw
    }
}

impl Client {
    /// A gateway spawned with `args`.
    pub fn new(args: &[&str]) -> Client {
        Client::around(Gateway::spawn(args))
    }

    /// A client for a gateway spawned otherwise.
    pub fn around(gw: Gateway) -> Client {
        Client {
            gw,
            seen: Vec::new(),
            next_id: 0,
        }
    }

    /// Reads one frame into `seen` and returns its index.
    pub fn read_one(&mut self, deadline: Instant) -> usize {
        let left = deadline.saturating_duration_since(Instant::now());
        let frame = self
            .gw
            .recv_frame(left)
            .unwrap_or_else(|| panic!("stdout closed; stderr:\n{}", self.gw.stderr_text()));
        self.seen.push(frame);
        self.seen.len() - 1
    }

    /// Sends a request (`Value::Null` params: none) and returns its response.
    pub fn request(&mut self, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = json!(format!("t-{}", self.next_id));
        self.request_with_id(id, method, params)
    }

    pub fn request_with_id(&mut self, id: Value, method: &str, params: Value) -> Value {
        let req = match params {
            Value::Null => rpc(id.clone(), method),
            p => rpc_with(id.clone(), method, p),
        };
        self.gw.send(&req);
        let deadline = Instant::now() + PATIENCE;
        loop {
            let i = self.read_one(deadline);
            if is_response(&self.seen[i]) && self.seen[i]["id"] == id {
                return self.seen.remove(i);
            }
        }
    }

    /// The `result` of a request; panics on an error response.
    pub fn call(&mut self, method: &str, params: Value) -> Value {
        let resp = self.request(method, params);
        match resp.get("result") {
            Some(r) => r.clone(),
            None => panic!("{method} failed: {resp}"),
        }
    }

    /// Spawns a process and returns `(proc, pid)`.
    pub fn spawn(&mut self, params: Value) -> (u64, u32) {
        let r = self.call("process.spawn", params);
        (as_u64(&r["proc"]), as_u64(&r["pid"]) as u32)
    }

    /// Reads new frames into `seen` until one satisfies `done`.
    pub fn read_until(&mut self, timeout: Duration, mut done: impl FnMut(&Value) -> bool) {
        let deadline = Instant::now() + timeout;
        loop {
            let i = self.read_one(deadline);
            if done(&self.seen[i]) {
                return;
            }
        }
    }

    /// Reads until `proc`'s exit event; returns every frame seen so far.
    pub fn until_exit(&mut self, proc: u64, timeout: Duration) -> Vec<Value> {
        if !self.seen.iter().any(|f| is_exit_of(f, proc)) {
            self.read_until(timeout, |f| is_exit_of(f, proc));
        }
        self.seen.clone()
    }
}

pub fn payload(frame: &Value) -> &Value {
    &frame["params"]["payload"]
}

pub fn is_exit_of(frame: &Value, proc: u64) -> bool {
    event_type(frame) == Some("process.exit") && payload(frame)["proc"] == json!(proc)
}

/// The concatenated `data` of `proc`'s output on `stream`.
pub fn output(frames: &[Value], proc: u64, stream: &str) -> String {
    frames
        .iter()
        .filter(|f| event_type(f) == Some("process.output"))
        .filter(|f| payload(f)["proc"] == json!(proc) && payload(f)["stream"] == stream)
        .map(|f| {
            payload(f)["data"]
                .as_str()
                .expect("data is a string")
                .to_owned()
        })
        .collect()
}

/// The one exit payload of `proc` (panics unless there is exactly one).
pub fn exit_payload(frames: &[Value], proc: u64) -> Value {
    let exits: Vec<&Value> = frames.iter().filter(|f| is_exit_of(f, proc)).collect();
    assert_eq!(
        exits.len(),
        1,
        "proc {proc}: expected one exit event in {frames:?}"
    );
    payload(exits[0]).clone()
}

/// How an exit ended: its `proc`, `code`, `signal` and `cause` (the rest
/// of the payload, durations and byte counts, varies from run to run).
pub fn status_of(exit: &Value) -> Value {
    json!({
        "proc": exit["proc"],
        "code": exit["code"],
        "signal": exit["signal"],
        "cause": exit["cause"],
    })
}

/// Asserts an error response with `code` whose message contains `needle`.
pub fn assert_error(resp: &Value, code: i64, needle: &str) {
    assert_eq!(error_code(resp), Some(code), "{resp}");
    let message = resp["error"]["message"].as_str().unwrap_or("");
    assert!(
        message.contains(needle),
        "message {message:?} lacks {needle:?}: {resp}"
    );
}

/// `(pid, ppid, state)` of every process, from `/proc/*/stat`.
pub fn all_processes() -> Vec<(u32, u32, char)> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/proc").expect("read /proc").flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // "pid (comm) S ppid ...": comm may hold spaces and parentheses.
        let Some(close) = stat.rfind(')') else {
            continue;
        };
        let mut fields = stat[close + 1..].split_whitespace();
        let state = fields.next().and_then(|s| s.chars().next()).unwrap_or('?');
        let ppid = fields.next().and_then(|s| s.parse().ok()).unwrap_or(0);
        out.push((pid, ppid, state));
    }
    out
}

/// Zombie children of `parent`.
pub fn zombie_children(parent: u32) -> Vec<u32> {
    all_processes()
        .into_iter()
        .filter(|&(_, ppid, state)| ppid == parent && state == 'Z')
        .map(|(pid, ..)| pid)
        .collect()
}

/// The process group of `pid`.
pub fn pgrp(pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let close = stat.rfind(')')?;
    stat[close + 1..].split_whitespace().nth(2)?.parse().ok()
}

pub fn fd_target(pid: u32, fd: u32) -> Option<String> {
    std::fs::read_link(format!("/proc/{pid}/fd/{fd}"))
        .ok()
        .map(|p| p.to_string_lossy().into_owned())
}

pub fn assert_gone(pids: &[u32], what: &str) {
    for &pid in pids {
        assert!(
            poll_until(PATIENCE, || process_gone(pid)),
            "{what}: pid {pid} is still alive (state {:?})",
            proc_state(pid)
        );
    }
}
