//! Every example of the JSON-RPC 2.0 specification (section 7), run against
//! the in-memory engine.
//!
//! The examples live in `tests/data/jsonrpc-2.0-examples.txt` (a copy of the
//! project's shared reference file): `-->` lines are sent, `<--` lines are
//! the answer, `<-- (nothing)` means no output at all. Several need the
//! spec's own methods (`subtract`, `sum`, `get_data`); a service defined in
//! this file registers them, so they exist in this test only and never in
//! the shipped binary. The examples that need no method also run against
//! the real binary over pipes, in `tests/transcripts/jsonrpc-spec.txt`.
//!
//! Comparison follows the file's own rules: parsed JSON, batch answers in
//! any order, and for errors the code and id must match while the message
//! text may differ (the gateway's say more than the spec's).

use std::time::Instant;

use serde_json::{json, Value};
use tui_gateway::engine::service::{Context, Reply, Service, Unit};
use tui_gateway::engine::wire::RpcError;
use tui_gateway::engine::NoHost;
use tui_gateway::{Config, Engine};

const EXAMPLES: &str = include_str!("data/jsonrpc-2.0-examples.txt");

/// The spec's example methods.
#[derive(Debug)]
struct SpecMethods;

impl SpecMethods {
    fn subtract(params: Option<&Value>) -> Reply {
        let number = |v: Option<&Value>, name: &str| {
            v.and_then(Value::as_i64)
                .ok_or_else(|| RpcError::invalid_params(format!("{name} must be an integer")))
        };
        let (minuend, subtrahend) = match params {
            Some(Value::Array(args)) if args.len() == 2 => (
                number(args.first(), "params[0]")?,
                number(args.get(1), "params[1]")?,
            ),
            Some(Value::Object(named)) => (
                number(named.get("minuend"), "minuend")?,
                number(named.get("subtrahend"), "subtrahend")?,
            ),
            _ => {
                return Err(RpcError::invalid_params(
                    "subtract takes [minuend, subtrahend] or {minuend, subtrahend}",
                ))
            }
        };
        Ok(json!(minuend - subtrahend))
    }

    fn sum(params: Option<&Value>) -> Reply {
        let Some(Value::Array(args)) = params else {
            return Err(RpcError::invalid_params("sum takes an array of integers"));
        };
        args.iter()
            .map(|v| {
                v.as_i64()
                    .ok_or_else(|| RpcError::invalid_params("sum takes integers"))
            })
            .sum::<Result<i64, RpcError>>()
            .map(|total| json!(total))
    }
}

impl Unit for SpecMethods {
    fn name(&self) -> &'static str {
        "spec-examples"
    }

    fn methods(&self) -> &'static [&'static str] {
        &["subtract", "sum", "get_data"]
    }
}

impl Service for SpecMethods {
    fn call(&mut self, _cx: &mut Context<'_>, method: &str, params: Option<Value>) -> Reply {
        match method {
            "subtract" => SpecMethods::subtract(params.as_ref()),
            "sum" => SpecMethods::sum(params.as_ref()),
            "get_data" => Ok(json!(["hello", 5])),
            other => Err(RpcError::method_not_found(other)),
        }
    }
}

/// One example: what is sent, what must come back (`None`: nothing).
#[derive(Debug)]
struct Example {
    line: usize,
    sent: String,
    expected: Option<Value>,
}

fn examples() -> Vec<Example> {
    let mut examples = Vec::new();
    let mut sent: Option<(usize, String)> = None;
    for (index, line) in EXAMPLES.lines().enumerate() {
        if let Some(frame) = line.strip_prefix("--> ") {
            assert!(sent.is_none(), "line {}: two --> in a row", index + 1);
            sent = Some((index + 1, frame.to_owned()));
        } else if let Some(answer) = line.strip_prefix("<-- ") {
            let (line, sent) = sent
                .take()
                .unwrap_or_else(|| panic!("line {}: <-- without -->", index + 1));
            let expected = (answer != "(nothing)").then(|| {
                serde_json::from_str(answer)
                    .unwrap_or_else(|e| panic!("line {}: not JSON: {e}", index + 1))
            });
            examples.push(Example {
                line,
                sent,
                expected,
            });
        }
    }
    assert!(sent.is_none(), "the last --> has no <--");
    examples
}

/// An engine with the spec methods; the `gateway.ready` line is consumed.
fn engine(now: Instant) -> Engine {
    let services: Vec<Box<dyn Service>> = vec![Box::new(SpecMethods)];
    let mut engine = Engine::new(Config::default().engine(), services, now).expect("no clash");
    let ready = take_output(&mut engine, now);
    assert_eq!(ready.len(), 1);
    assert_eq!(ready[0]["params"]["type"], "gateway.ready");
    engine
}

/// Everything the engine queued, as parsed lines.
fn take_output(engine: &mut Engine, now: Instant) -> Vec<Value> {
    let mut bytes = Vec::new();
    while !engine.outbound_is_empty() {
        engine
            .outbound()
            .write_with(now, |slices| {
                let before = bytes.len();
                for slice in slices {
                    bytes.extend_from_slice(slice);
                }
                Ok::<usize, ()>(bytes.len() - before)
            })
            .expect("writing to memory");
    }
    let text = String::from_utf8(bytes).expect("output is UTF-8");
    text.lines()
        .map(|line| serde_json::from_str(line).expect("every output line is JSON"))
        .collect()
}

/// One response as the spec example file compares them: same `jsonrpc`,
/// same id, same result, or an error with the same code.
fn response_matches(expected: &Value, got: &Value) -> bool {
    if got["jsonrpc"] != expected["jsonrpc"] || got["id"] != expected["id"] {
        return false;
    }
    match (expected.get("result"), expected.get("error")) {
        (Some(result), None) => got.get("result") == Some(result) && got.get("error").is_none(),
        (None, Some(error)) => {
            got.get("result").is_none()
                && got["error"]["code"] == error["code"]
                && got["error"]["message"].is_string()
        }
        _ => panic!("an expected response needs one of result or error: {expected}"),
    }
}

/// Single answers compare directly; a batch answer matches element for
/// element in any order.
fn answer_matches(expected: &Value, got: &Value) -> bool {
    match (expected, got) {
        (Value::Array(want), Value::Array(have)) => {
            if want.len() != have.len() {
                return false;
            }
            let mut used = vec![false; have.len()];
            want.iter().all(|w| {
                let slot = (0..have.len()).find(|&i| !used[i] && response_matches(w, &have[i]));
                slot.map(|i| used[i] = true).is_some()
            })
        }
        (Value::Array(_), _) | (_, Value::Array(_)) => false,
        _ => response_matches(expected, got),
    }
}

#[test]
fn every_specification_example_gives_the_specified_answer() {
    let examples = examples();
    // Section 7 has 15 requests; a parse that found fewer would test less.
    assert_eq!(examples.len(), 15, "examples parsed: {examples:#?}");
    let now = Instant::now();
    let mut failures = Vec::new();
    for example in &examples {
        // A fresh engine per example: no example can hide behind another.
        let mut engine = engine(now);
        engine.on_input(format!("{}\n", example.sent).as_bytes(), &mut NoHost, now);
        let got = take_output(&mut engine, now);
        let ok = match (&example.expected, &got[..]) {
            (None, []) => true,
            (Some(expected), [answer]) => answer_matches(expected, answer),
            _ => false,
        };
        if !ok {
            failures.push(format!(
                "line {}: sent {}\n  expected {:?}\n  got {:?}",
                example.line, example.sent, example.expected, got
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn all_examples_in_one_session_answer_in_order() {
    // The same examples back to back on one engine, as a client would send
    // them: every answer arrives, in order, and nothing else does.
    let examples = examples();
    let now = Instant::now();
    let mut engine = engine(now);
    let mut input = String::new();
    for example in &examples {
        input.push_str(&example.sent);
        input.push('\n');
    }
    engine.on_input(input.as_bytes(), &mut NoHost, now);
    let got = take_output(&mut engine, now);
    let expected: Vec<&Value> = examples
        .iter()
        .filter_map(|e| e.expected.as_ref())
        .collect();
    assert_eq!(got.len(), expected.len(), "answers: {got:#?}");
    for (want, have) in expected.iter().zip(&got) {
        assert!(answer_matches(want, have), "expected {want}\ngot {have}");
    }
}

#[test]
fn comparison_rules_are_not_vacuous() {
    // The matcher must refuse a wrong id, a wrong code and a wrong result.
    let want = json!({"jsonrpc": "2.0", "error": {"code": -32601, "message": "x"}, "id": "1"});
    let same_code_other_text = json!({"jsonrpc": "2.0", "error": {"code": -32601, "message": "Method not found: foobar"}, "id": "1"});
    assert!(answer_matches(&want, &same_code_other_text));
    let other_id = json!({"jsonrpc": "2.0", "error": {"code": -32601, "message": "x"}, "id": 1});
    assert!(!answer_matches(&want, &other_id));
    let other_code =
        json!({"jsonrpc": "2.0", "error": {"code": -32600, "message": "x"}, "id": "1"});
    assert!(!answer_matches(&want, &other_code));
    let result = json!({"jsonrpc": "2.0", "result": 19, "id": 1});
    assert!(!answer_matches(
        &result,
        &json!({"jsonrpc": "2.0", "result": -19, "id": 1})
    ));
    assert!(!answer_matches(&json!([result.clone()]), &result));
}
