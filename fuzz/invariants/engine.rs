//! `engine`: arbitrary bytes fed to the whole in-memory engine (framer,
//! classifier, built-in dispatch, outbound queue, lifecycle) in arbitrary
//! reads, with a fake clock that advances between them and a reader that
//! takes the output in partial writes.
//!
//! Input: byte 0 seeds the schedule (read sizes, clock steps, write sizes),
//! byte 1 picks the max frame size ([`MAX_FRAMES`], modulo 4), the rest is
//! what the client sends on stdin.
//!
//! Asserted:
//! * nothing panics, and the queue never holds more than its hard limit;
//! * the output is valid NDJSON: every line non-blank, compact JSON, U+2028
//!   and U+2029 escaped, the last one `\n`-terminated, the first one the
//!   `gateway.ready` event;
//! * after it, the output is exactly one answer per frame that needs one, in
//!   frame order (the framing comes from the line model of the `frame`
//!   target, the classification from `classify`, which the `message` target
//!   checks): a `-32600` with the limit for an over-long line, the error for
//!   a malformed frame or element, a response with the exact id for every
//!   request (`{"ok":true}` for `gateway.ping`, `-32601` for an unknown
//!   method), one array for a batch holding one response per request or
//!   invalid element (any order), nothing for notifications and client
//!   responses; frames after a `gateway.shutdown` are not served;
//! * at EOF (or after `gateway.shutdown`) the engine drains and exits 0 with
//!   the matching reason; a truncated last line is not dispatched.

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tui_gateway::engine::framer::Decoded;
use tui_gateway::engine::lifecycle::Phase;
use tui_gateway::engine::wire::{classify, Incoming, Message, Reject};
use tui_gateway::engine::NoHost;
use tui_gateway::{Config, Engine};

use super::frame;
use super::input::{next_chunk, Reader, Rng};
use super::wire::{check_response, split_lines};

/// The max frame sizes byte 1 selects: the default and a few small ones.
pub const MAX_FRAMES: [usize; 4] = [tui_gateway::config::DEFAULT_MAX_FRAME_BYTES, 32, 256, 4096];

/// Longest clock step between two reads: well under the default stall
/// timeout (10 s), so a reader that keeps taking bytes is never declared
/// gone and every answer must arrive.
const MAX_STEP_MS: u64 = 3000;

/// The fuzz entry point.
pub fn check(data: &[u8]) {
    let mut input = Reader::new(data);
    let seed = u64::from(input.u8());
    let max = MAX_FRAMES[usize::from(input.u8()) % MAX_FRAMES.len()];
    run(input.rest(), max, seed);
}

/// Feeds `stream` to an engine with the default configuration and this max
/// frame size, then checks everything it wrote.
pub fn run(stream: &[u8], max_frame: usize, seed: u64) {
    let mut config = Config::default().engine();
    config.max_frame_bytes = max_frame;
    let hard = config.outbound.hard_bytes;
    let mut now = Instant::now();
    let mut engine = Engine::new(config, Vec::new(), now).expect("no services, no clash");
    let methods = engine.methods();
    let mut rng = Rng::new(seed);
    let mut out = Vec::new();
    let mut rest = stream;
    while !rest.is_empty() {
        now += Duration::from_millis(rng.below(MAX_STEP_MS + 1));
        engine.tick(&mut NoHost, now);
        // Input is read only when the engine asks for it: the backlog (and
        // a batch in progress) first, paced by the queue.
        pump(&mut engine, &mut rng, now, &mut out);
        let (chunk, tail) = rest.split_at(next_chunk(&mut rng, rest.len()));
        rest = tail;
        engine.on_input(chunk, &mut NoHost, now);
        assert!(engine.outbound().queued_bytes() <= hard);
        if matches!(engine.phase(), Phase::Running) {
            write_some(&mut engine, &mut rng, now, &mut out);
        } else {
            // Shutting down: the reader keeps up, so the drain finishes.
            drain(&mut engine, &mut rng, now, &mut out);
        }
    }
    pump(&mut engine, &mut rng, now, &mut out);
    engine.on_input_eof(&mut NoHost, now);
    pump(&mut engine, &mut rng, now, &mut out);
    drain(&mut engine, &mut rng, now, &mut out);
    engine.tick(&mut NoHost, now);
    let exit = engine.exit().cloned().expect("a drained engine has exited");
    assert_eq!(exit.code, 0, "{exit:?}");

    let (expected, shut_down) = expected_answers(stream, max_frame, &methods);
    let reason = if shut_down {
        "gateway.shutdown request"
    } else {
        "stdin EOF"
    };
    assert_eq!(exit.reason, reason);
    let (lines, partial) = split_lines(&out);
    assert!(partial.is_empty(), "the output does not end with a newline");
    let mut lines = lines.into_iter().map(|(_, v)| v);
    let ready = lines.next().expect("the first line is gateway.ready");
    check_ready(&ready, max_frame, &methods);
    let answers: Vec<Value> = lines.collect();
    assert_eq!(
        answers.len(),
        expected.len(),
        "one answer per frame that needs one: got {answers:?}, expected {expected:?}"
    );
    for (got, want) in answers.iter().zip(&expected) {
        match want {
            Answer::Single(want) => want.check(got),
            Answer::Batch(wants) => check_batch(got, wants),
        }
    }
}

/// One write of a seeded size (at least one byte when any is queued).
fn write_some(engine: &mut Engine, rng: &mut Rng, now: Instant, out: &mut Vec<u8>) {
    let size = match rng.below(10) {
        0..=4 => 1 + rng.below(64) as usize,
        5..=7 => 1 + rng.below(4096) as usize,
        _ => usize::MAX,
    };
    let queued = engine.outbound().queued_bytes();
    let n = engine
        .outbound()
        .write_with(now, |slices| {
            let mut left = size;
            for slice in slices {
                let take = left.min(slice.len());
                out.extend_from_slice(&slice[..take]);
                left -= take;
            }
            Ok::<usize, ()>(size - left)
        })
        .expect("the writer never fails here");
    assert!(n > 0 || queued == 0, "a write made no progress");
}

/// Serves the backlog as the shell does: dispatch while the queue has room,
/// otherwise let the reader take some bytes.
fn pump(engine: &mut Engine, rng: &mut Rng, now: Instant, out: &mut Vec<u8>) {
    while engine.has_input_backlog() {
        if engine.can_dispatch() {
            engine.pump_input(&mut NoHost, now);
        } else {
            write_some(engine, rng, now, out);
        }
        assert!(engine.outbound().queued_bytes() <= engine.outbound().limits().hard_bytes);
    }
}

fn drain(engine: &mut Engine, rng: &mut Rng, now: Instant, out: &mut Vec<u8>) {
    while !engine.outbound_is_empty() {
        write_some(engine, rng, now, out);
    }
}

/// What an answer must be.
#[derive(Debug)]
enum Outcome {
    /// `-32600` with `data: {"reason": "frame too large", "limit": N}`.
    TooLarge(usize),
    /// An error with this code.
    Error(i64),
    /// `{"ok": true}`.
    Pong,
    /// Any result.
    Result,
    /// A result or an error (a built-in that may refuse its params).
    Any,
}

/// One expected response: its id and outcome.
#[derive(Debug)]
struct Want {
    id: Value,
    outcome: Outcome,
}

impl Want {
    fn matches(&self, got: &Value) -> bool {
        let code = check_response(got);
        if got["id"] != self.id {
            return false;
        }
        match (&self.outcome, code) {
            (Outcome::TooLarge(limit), Some(-32600)) => {
                got["error"]["data"] == json!({"reason": "frame too large", "limit": limit})
            }
            (Outcome::Error(want), Some(code)) => *want == code,
            (Outcome::Pong, None) => got["result"] == json!({"ok": true}),
            (Outcome::Result, None) | (Outcome::Any, _) => true,
            _ => false,
        }
    }

    fn check(&self, got: &Value) {
        assert!(self.matches(got), "expected {self:?}, got {got}");
    }
}

/// The answer one frame needs.
#[derive(Debug)]
enum Answer {
    Single(Want),
    Batch(Vec<Want>),
}

/// The answers `stream` needs, in order, and whether it asked for a
/// shutdown (after which no frame is served).
fn expected_answers(stream: &[u8], max: usize, methods: &[&str]) -> (Vec<Answer>, bool) {
    let mut answers = Vec::new();
    for item in frame::model(stream, max).items {
        let frame = match item {
            Decoded::TooLarge { limit } => {
                answers.push(Answer::Single(Want {
                    id: Value::Null,
                    outcome: Outcome::TooLarge(limit),
                }));
                continue;
            }
            Decoded::Frame(frame) => frame,
        };
        let mut shutdown = false;
        match classify(&frame) {
            Incoming::Single(item) => {
                shutdown |= asks_shutdown(&item);
                answers.extend(want(&item, methods).map(Answer::Single));
            }
            Incoming::Batch(items) => {
                // Members after a shutdown request do not run: requests get
                // -32000, notifications nothing, malformed members their error.
                let mut wants = Vec::new();
                for item in &items {
                    match item {
                        Ok(Message::Request { id, .. }) if shutdown => wants.push(Want {
                            id: id.to_value(),
                            outcome: Outcome::Error(-32000),
                        }),
                        Ok(_) if shutdown => {}
                        _ => {
                            wants.extend(want(item, methods));
                            shutdown |= asks_shutdown(item);
                        }
                    }
                }
                if !wants.is_empty() {
                    answers.push(Answer::Batch(wants));
                }
            }
        }
        if shutdown {
            return (answers, true);
        }
    }
    (answers, false)
}

fn asks_shutdown(item: &Result<Message, Reject>) -> bool {
    matches!(item,
        Ok(Message::Request { method, .. } | Message::Notification { method, .. })
            if method == "gateway.shutdown")
}

fn want(item: &Result<Message, Reject>, methods: &[&str]) -> Option<Want> {
    match item {
        Err(reject) => Some(Want {
            id: reject.id.to_value(),
            outcome: Outcome::Error(reject.error.code.code()),
        }),
        Ok(Message::Request { id, method, .. }) => Some(Want {
            id: id.to_value(),
            outcome: match method.as_str() {
                "gateway.ping" => Outcome::Pong,
                "client.capabilities" => Outcome::Any,
                m if methods.contains(&m) => Outcome::Result,
                _ => Outcome::Error(-32601),
            },
        }),
        Ok(_) => None,
    }
}

/// A batch answer holds one response per want, in any order.
fn check_batch(got: &Value, wants: &[Want]) {
    let array = got
        .as_array()
        .unwrap_or_else(|| panic!("a batch answer is not an array: {got}"));
    assert_eq!(array.len(), wants.len(), "batch answer {got} for {wants:?}");
    // The most specific wants pick first, so a greedy matching is enough.
    let mut order: Vec<&Want> = wants.iter().collect();
    order.sort_by_key(|w| match w.outcome {
        Outcome::Result => 1,
        Outcome::Any => 2,
        _ => 0,
    });
    let mut used = vec![false; array.len()];
    for want in order {
        let slot = (0..array.len())
            .find(|&i| !used[i] && want.matches(&array[i]))
            .unwrap_or_else(|| panic!("no response for {want:?} in {got}"));
        used[slot] = true;
    }
}

/// The first line: the `gateway.ready` event with the documented payload.
fn check_ready(v: &Value, max_frame: usize, methods: &[&str]) {
    assert_eq!(v["jsonrpc"], "2.0", "{v}");
    assert_eq!(v["method"], "event", "{v}");
    assert!(v.get("id").is_none(), "an event has no id: {v}");
    assert_eq!(v["params"]["type"], "gateway.ready", "{v}");
    let payload = &v["params"]["payload"];
    assert!(payload["version"].is_string(), "{v}");
    assert_eq!(payload["pid"], json!(std::process::id()), "{v}");
    assert_eq!(payload["protocol"], json!(1), "{v}");
    assert_eq!(payload["methods"], json!(methods), "{v}");
    assert_eq!(
        payload["limits"]["max_frame_bytes"],
        json!(max_frame),
        "{v}"
    );
}
