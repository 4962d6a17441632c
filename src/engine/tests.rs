//! Engine scenarios driven in memory with a fake clock.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::lifecycle::{exit_code, Cause, Drain};
use super::service::{Context, FallbackContext, Reply, Service, Unit};
use super::wire::{Id, RpcError};
use super::{Engine, NoHost};
use crate::config::Config;

/// A test service: `echo.delta` emits a streaming delta, `echo.ask` sends a
/// request to the client, `echo.busy` keeps it busy until a client response.
#[derive(Default)]
struct Echo {
    answers: Vec<Result<Value, Value>>,
    busy: bool,
    drained: Option<Cause>,
}

impl Unit for Echo {
    fn name(&self) -> &'static str {
        "echo"
    }

    fn methods(&self) -> &'static [&'static str] {
        &["echo.delta", "echo.ask", "echo.busy"]
    }

    fn is_idle(&self) -> bool {
        !self.busy
    }

    fn busy_summary(&self) -> Option<String> {
        self.busy.then(|| "echo busy".to_owned())
    }
}

impl Service for Echo {
    fn call(&mut self, cx: &mut Context<'_>, method: &str, params: Option<Value>) -> Reply {
        match method {
            "echo.delta" => {
                let text = params
                    .and_then(|p| p[0].as_str().map(str::to_owned))
                    .unwrap_or_default();
                cx.emit("echo.delta", json!({"session_id": "s", "text": text}));
                Ok(json!(true))
            }
            "echo.ask" => Ok(cx
                .request_client("client.question", json!({"q": 1}))
                .to_value()),
            "echo.busy" => {
                self.busy = true;
                Ok(json!(true))
            }
            _ => Err(RpcError::method_not_found(method)),
        }
    }

    fn on_client_response(
        &mut self,
        _cx: &mut Context<'_>,
        _id: &Id,
        outcome: Result<Value, Value>,
    ) {
        self.answers.push(outcome);
        self.busy = false;
    }

    fn on_drain(&mut self, _cx: &mut Context<'_>, drain: &Drain) {
        self.drained = Some(drain.cause.clone());
    }
}

fn engine(t0: Instant) -> Engine {
    let config = Config {
        shutdown_grace: Duration::from_secs(1),
        ..Config::default()
    };
    let services: Vec<Box<dyn Service>> = vec![Box::new(Echo::default())];
    Engine::new(config.engine(), services, t0).unwrap()
}

/// Writes everything queued and returns the lines as JSON.
fn written(engine: &mut Engine, now: Instant) -> Vec<Value> {
    let mut bytes = Vec::new();
    while !engine.outbound_is_empty() {
        engine
            .outbound()
            .write_with(now, |slices| {
                let n: usize = slices.iter().map(|s| s.len()).sum();
                slices.iter().for_each(|s| bytes.extend_from_slice(s));
                Ok::<_, ()>(n)
            })
            .unwrap();
    }
    String::from_utf8(bytes)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn ready_comes_first_and_lists_service_methods() {
    let t0 = Instant::now();
    let mut e = engine(t0);
    let lines = written(&mut e, t0);
    assert_eq!(lines[0]["params"]["type"], "gateway.ready");
    let methods = &lines[0]["params"]["payload"]["methods"];
    assert!(methods.as_array().unwrap().contains(&json!("echo.ask")));
    assert!(methods.as_array().unwrap().contains(&json!("gateway.ping")));
}

#[test]
fn info_echoes_the_capabilities_the_client_declared() {
    let t0 = Instant::now();
    let mut e = engine(t0);
    e.on_input(
        b"{\"jsonrpc\":\"2.0\",\"method\":\"gateway.info\",\"id\":1}\n\
          {\"jsonrpc\":\"2.0\",\"method\":\"client.capabilities\",\"params\":{\"name\":\"ink\"},\"id\":2}\n\
          {\"jsonrpc\":\"2.0\",\"method\":\"gateway.info\",\"id\":3}\n",
        &mut NoHost,
        t0,
    );
    let lines = written(&mut e, t0);
    assert_eq!(lines[1]["result"]["client"], Value::Null);
    assert_eq!(lines[2]["result"]["protocol"], 1);
    assert_eq!(lines[3]["result"]["client"], json!({"name": "ink"}));
}

#[test]
fn stdin_eof_drains_then_exits_orderly() {
    let t0 = Instant::now();
    let mut e = engine(t0);
    e.on_input(
        br#"{"jsonrpc":"2.0","method":"gateway.ping","id":7}"#,
        &mut NoHost,
        t0,
    );
    e.on_input(
        b"\n{\"jsonrpc\":\"2.0\",\"method\":\"gateway.ping\",\"id\":8}",
        &mut NoHost,
        t0,
    );
    e.on_input_eof(&mut NoHost, t0);
    assert_eq!(
        e.stats_value(&NoHost)["truncated_frames"],
        1,
        "truncated tail counted"
    );
    assert!(e.exit().is_none(), "output still queued");
    let lines = written(&mut e, t0);
    assert_eq!(
        lines.len(),
        2,
        "ready + one response; the truncated frame is not dispatched"
    );
    assert_eq!(lines[1]["id"], 7);
    e.tick(&mut NoHost, t0);
    let exit = e.exit().unwrap();
    assert_eq!(
        (exit.code, exit.reason.as_str()),
        (exit_code::ORDERLY, "stdin EOF")
    );
}

#[test]
fn shutdown_request_is_answered_before_the_drain_and_stops_input() {
    let t0 = Instant::now();
    let mut e = engine(t0);
    e.on_input(
        b"{\"jsonrpc\":\"2.0\",\"method\":\"gateway.shutdown\",\"id\":1}\n{\"jsonrpc\":\"2.0\",\"method\":\"gateway.ping\",\"id\":2}\n",
        &mut NoHost,
        t0,
    );
    assert!(!e.wants_input());
    let lines = written(&mut e, t0);
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[1]["result"]["ok"], true);
    e.tick(&mut NoHost, t0);
    assert_eq!(e.exit().unwrap().reason, "gateway.shutdown request");
}

#[test]
fn busy_service_holds_the_drain_until_the_deadline_forces_it() {
    let t0 = Instant::now();
    let mut e = engine(t0);
    e.on_input(
        b"{\"jsonrpc\":\"2.0\",\"method\":\"echo.busy\",\"id\":1}\n",
        &mut NoHost,
        t0,
    );
    e.begin_shutdown(Cause::Signal("SIGTERM"), &mut NoHost, t0);
    written(&mut e, t0);
    e.tick(&mut NoHost, t0 + Duration::from_millis(999));
    assert!(e.exit().is_none());
    assert_eq!(e.next_deadline(), Some(t0 + Duration::from_secs(1)));
    e.tick(&mut NoHost, t0 + Duration::from_secs(1));
    let exit = e.exit().unwrap();
    assert_eq!(exit.code, exit_code::FORCED);
    assert!(
        exit.reason
            .starts_with("signal SIGTERM; grace of 1.000s expired with echo busy"),
        "{}",
        exit.reason
    );
}

#[test]
fn client_responses_reach_the_requesting_service_and_strays_are_dropped() {
    let t0 = Instant::now();
    let mut e = engine(t0);
    e.on_input(
        b"{\"jsonrpc\":\"2.0\",\"method\":\"echo.ask\",\"id\":1}\n",
        &mut NoHost,
        t0,
    );
    let lines = written(&mut e, t0);
    let request = &lines[1];
    assert_eq!(request["method"], "client.question");
    let gw_id = request["id"].as_str().unwrap().to_owned();
    assert_eq!(lines[2]["result"], json!(gw_id));
    let answer = format!("{{\"jsonrpc\":\"2.0\",\"result\":42,\"id\":\"{gw_id}\"}}\n");
    e.on_input(answer.as_bytes(), &mut NoHost, t0);
    e.on_input(answer.as_bytes(), &mut NoHost, t0); // a second answer: nobody waits for it
    assert!(
        written(&mut e, t0).is_empty(),
        "responses are never answered"
    );
    e.on_input(
        b"{\"jsonrpc\":\"2.0\",\"method\":\"gateway.stats\",\"id\":2}\n",
        &mut NoHost,
        t0,
    );
    assert_eq!(written(&mut e, t0)[0]["result"]["responses_unmatched"], 1);
}

#[test]
fn delta_events_coalesce_only_while_unwritten() {
    let t0 = Instant::now();
    let mut e = engine(t0);
    written(&mut e, t0);
    let frames = b"{\"jsonrpc\":\"2.0\",\"method\":\"echo.delta\",\"params\":[\"ab\"]}\n\
                   {\"jsonrpc\":\"2.0\",\"method\":\"echo.delta\",\"params\":[\"cd\"]}\n";
    e.on_input(frames, &mut NoHost, t0);
    let lines = written(&mut e, t0);
    assert_eq!(
        lines.len(),
        1,
        "two notifications, one merged event: {lines:?}"
    );
    assert_eq!(lines[0]["params"]["payload"]["text"], "abcd");
}

fn ping(id: u64) -> Vec<u8> {
    format!("{{\"jsonrpc\":\"2.0\",\"method\":\"gateway.ping\",\"id\":{id}}}\n").into_bytes()
}

/// An engine with a small queue: high water 2 KiB, low water 1 KiB, hard 4 KiB.
fn small_queue(t0: Instant) -> Engine {
    let config = Config {
        hard_limit_bytes: 4096,
        soft_limit_bytes: 4096,
        high_water_bytes: 2048,
        low_water_bytes: 1024,
        ..Config::default()
    };
    Engine::new(config.engine(), Vec::new(), t0).unwrap()
}

#[test]
fn dispatch_pauses_at_high_water_and_never_passes_the_hard_limit() {
    let t0 = Instant::now();
    let mut e = small_queue(t0);
    let burst: Vec<u8> = (0..200).flat_map(ping).collect();
    e.on_input(&burst, &mut NoHost, t0);
    assert!(e.outbound().queued_bytes() <= 4096);
    assert!(!e.can_dispatch() && !e.wants_input(), "paced at high water");
    assert!(e.has_input_backlog());
    e.pump_input(&mut NoHost, t0);
    assert!(
        e.outbound().queued_bytes() < 2048 + 100,
        "one answer past the mark"
    );
    // The reader takes everything: every request is answered, none lost.
    let mut ids = Vec::new();
    while e.has_input_backlog() || !e.outbound_is_empty() {
        for line in written(&mut e, t0) {
            if let Some(id) = line["id"].as_u64() {
                ids.push(id);
            }
        }
        e.pump_input(&mut NoHost, t0);
        assert!(e.outbound().queued_bytes() <= 4096);
    }
    assert_eq!(ids, (0..200).collect::<Vec<_>>());
    assert!(
        e.exit().is_none(),
        "reaching the mark never ends the gateway"
    );
}

#[test]
fn a_reader_that_stops_is_ended_by_the_stall_timeout_not_the_hard_limit() {
    let t0 = Instant::now();
    let mut e = small_queue(t0);
    let burst: Vec<u8> = (0..200).flat_map(ping).collect();
    e.on_input(&burst, &mut NoHost, t0);
    e.tick(&mut NoHost, t0 + Duration::from_secs(9));
    assert!(e.exit().is_none());
    e.tick(&mut NoHost, t0 + Duration::from_secs(10));
    let exit = e.exit().unwrap();
    assert_eq!(exit.code, exit_code::PEER_GONE);
    assert!(exit.reason.starts_with("stdout stalled"), "{}", exit.reason);
}

#[test]
fn a_batch_is_answered_member_by_member_in_one_array() {
    let t0 = Instant::now();
    let mut e = small_queue(t0);
    written(&mut e, t0);
    let members: Vec<String> = (0..100)
        .map(|i| format!("{{\"jsonrpc\":\"2.0\",\"method\":\"gateway.ping\",\"id\":{i}}}"))
        .collect();
    let frame = format!(
        "[{}, {{\"jsonrpc\":\"2.0\",\"method\":\"x\"}}]\n",
        members.join(" , ")
    );
    e.on_input(frame.as_bytes(), &mut NoHost, t0);
    assert!(
        e.outbound().queued_bytes() <= 2048 + 100,
        "paced inside the batch"
    );
    let mut bytes = Vec::new();
    while e.has_input_backlog() || !e.outbound_is_empty() {
        e.outbound()
            .write_with(t0, |s| {
                let n: usize = s.iter().map(|s| s.len()).sum();
                s.iter().for_each(|s| bytes.extend_from_slice(s));
                Ok::<_, ()>(n)
            })
            .unwrap();
        e.pump_input(&mut NoHost, t0);
    }
    let text = String::from_utf8(bytes).unwrap();
    assert_eq!(text.matches('\n').count(), 1, "one line: {text}");
    let answers: Vec<Value> = serde_json::from_str(text.trim_end()).unwrap();
    let ids: Vec<u64> = answers.iter().map(|a| a["id"].as_u64().unwrap()).collect();
    assert_eq!(
        ids,
        (0..100).collect::<Vec<_>>(),
        "the notification gets nothing"
    );
}

#[test]
fn members_after_a_shutdown_request_in_the_same_batch_do_not_run() {
    let t0 = Instant::now();
    let mut e = engine(t0);
    written(&mut e, t0);
    e.on_input(
        b"[{\"jsonrpc\":\"2.0\",\"method\":\"gateway.shutdown\",\"id\":1},\
          {\"jsonrpc\":\"2.0\",\"method\":\"echo.busy\",\"id\":2},\
          {\"jsonrpc\":\"2.0\",\"method\":\"gateway.ping\",\"id\":3}]\n",
        &mut NoHost,
        t0,
    );
    let lines = written(&mut e, t0);
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0][0]["result"]["ok"], true);
    for answer in &lines[0].as_array().unwrap()[1..] {
        assert_eq!(answer["error"]["code"], -32000, "{answer}");
    }
    e.tick(&mut NoHost, t0);
    let exit = e
        .exit()
        .expect("echo.busy never ran, so nothing holds the drain");
    assert_eq!(exit.reason, "gateway.shutdown request");
}

#[test]
fn eof_is_stamped_after_the_backlog_is_answered() {
    let t0 = Instant::now();
    let mut e = small_queue(t0);
    let burst: Vec<u8> = (0..200).flat_map(ping).collect();
    e.on_input(&burst, &mut NoHost, t0);
    e.on_input_eof(&mut NoHost, t0);
    assert!(
        e.lifecycle.drain().is_none(),
        "requests still wait to be answered"
    );
    // The reader comes back three seconds later: the grace starts then.
    let t3 = t0 + Duration::from_secs(3);
    let mut answered = 0;
    while e.has_input_backlog() || !e.outbound_is_empty() {
        answered += written(&mut e, t3).len();
        e.pump_input(&mut NoHost, t3);
    }
    e.tick(&mut NoHost, t3);
    assert_eq!(answered, 201, "ready and every answer");
    let exit = e.exit().unwrap();
    assert_eq!((exit.code, exit.reason.as_str()), (0, "stdin EOF"));
}

#[test]
fn an_answer_larger_than_the_room_is_refused_with_an_error() {
    let t0 = Instant::now();
    let mut e = small_queue(t0);
    written(&mut e, t0);
    let big = "x".repeat(8192);
    let frame = format!(
        "{{\"jsonrpc\":\"2.0\",\"method\":\"client.capabilities\",\"params\":{{\"blob\":\"{big}\"}},\"id\":1}}\n\
         {{\"jsonrpc\":\"2.0\",\"method\":\"gateway.info\",\"id\":2}}\n"
    );
    e.on_input(frame.as_bytes(), &mut NoHost, t0);
    let lines = written(&mut e, t0);
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[1]["id"], 2);
    assert_eq!(lines[1]["error"]["code"], -32001, "{}", lines[1]);
    assert!(e.exit().is_none());
}

#[test]
fn stall_timeout_declares_the_reader_gone() {
    let t0 = Instant::now();
    let config = Config {
        stall_timeout: Duration::from_millis(500),
        ..Config::default()
    };
    let mut e = Engine::new(config.engine(), Vec::new(), t0).unwrap();
    assert_eq!(e.next_deadline(), Some(t0 + Duration::from_millis(500)));
    e.tick(&mut NoHost, t0 + Duration::from_millis(500));
    // The drain starts with output lost, so it finishes at once.
    let exit = e.exit().unwrap();
    assert_eq!(exit.code, exit_code::PEER_GONE);
    assert!(exit.reason.starts_with("stdout stalled"), "{}", exit.reason);
}

/// A fallback that records what it is handed, as raw text, and answers its
/// requests on the next tick (a deferred reply), holding the ready until then.
#[derive(Default)]
struct Recorder {
    seen: std::rc::Rc<std::cell::RefCell<Vec<String>>>,
    owed: Vec<(Id, String)>,
    hold_ready: bool,
}

impl super::service::Fallback for Recorder {
    fn ready_hold(&self) -> super::service::ReadyHold {
        if self.hold_ready {
            super::service::ReadyHold::Hold
        } else {
            super::service::ReadyHold::Send
        }
    }
    fn forward(
        &mut self,
        _cx: &mut FallbackContext<'_>,
        message: super::service::Forward<'_>,
    ) -> super::service::Forwarded {
        self.seen
            .borrow_mut()
            .push(String::from_utf8(message.raw.to_vec()).expect("UTF-8"));
        if let super::service::ForwardKind::Request(id) = message.kind {
            self.owed.push((
                id.clone(),
                String::from_utf8(message.raw.to_vec()).expect("UTF-8"),
            ));
        }
        super::service::Forwarded::Sent
    }
}

impl Unit for Recorder {
    fn name(&self) -> &'static str {
        "fallback"
    }

    fn methods(&self) -> &'static [&'static str] {
        &[]
    }
}

impl Service<super::service::Bridged> for Recorder {
    fn tick(&mut self, cx: &mut FallbackContext<'_>) {
        if cx.held_ready().is_some() {
            cx.release_ready(b"{\"jsonrpc\":\"2.0\",\"method\":\"event\",\"params\":{\"type\":\"gateway.ready\",\"payload\":{\"merged\":true}}}\n".to_vec());
        }
        for (id, _) in std::mem::take(&mut self.owed) {
            let mut raw = b"{\"jsonrpc\":\"2.0\",\"id\":".to_vec();
            id.write(&mut raw);
            raw.extend_from_slice(b",\"result\":\"late\"}");
            cx.reply_line(&id, &raw).expect("a small answer fits");
        }
    }
}

fn bridged(
    t0: Instant,
    hold_ready: bool,
) -> (Engine, std::rc::Rc<std::cell::RefCell<Vec<String>>>) {
    let fallback = Recorder {
        hold_ready,
        ..Recorder::default()
    };
    let seen = fallback.seen.clone();
    let services = super::Services {
        services: vec![Box::new(Echo::default())],
        fallback: Some(Box::new(fallback)),
    };
    let e = Engine::new(Config::default().engine(), services, t0).unwrap();
    (e, seen)
}

#[test]
fn unclaimed_methods_and_stray_responses_go_to_the_fallback_as_their_bytes() {
    let t0 = Instant::now();
    let (mut e, seen) = bridged(t0, false);
    assert_eq!(written(&mut e, t0).len(), 1, "the ready");
    let lines: &[&str] = &[
        r#"{"jsonrpc":"2.0","id":1.50,"method":"app.do","params":{"b":1,"a":2}}"#,
        r#"{"jsonrpc":"2.0","id":2,"method":"client.capabilities","params":{}}"#,
        r#"{"jsonrpc":"2.0","id":3,"method":"gateway.ping"}"#,
        r#"{"jsonrpc":"2.0","id":4,"method":"echo.ask"}"#,
        r#"{"jsonrpc":"2.0","id":"srv-9","result":{"x":1}}"#,
    ];
    for line in lines {
        e.on_input(format!("{line}\n").as_bytes(), &mut NoHost, t0);
    }
    let out = written(&mut e, t0);
    // gateway.ping and echo.ask are answered here; echo.ask asked the client.
    assert_eq!(out.iter().filter(|v| v["id"] == 3).count(), 1);
    let ask = out
        .iter()
        .find(|v| v["method"] == "client.question")
        .unwrap();
    // The client's answer to the gateway's own request stays local.
    let answer = format!(r#"{{"jsonrpc":"2.0","id":{},"result":"yes"}}"#, ask["id"]);
    e.on_input(format!("{answer}\n").as_bytes(), &mut NoHost, t0);
    assert_eq!(
        *seen.borrow(),
        [lines[0], lines[1], lines[4]],
        "the fallback got the unclaimed ones, byte for byte"
    );
    // Its answers come later, as the bytes it wrote, ids untouched.
    e.tick(&mut NoHost, t0);
    let late = written(&mut e, t0);
    assert_eq!(late.len(), 2, "{late:?}");
    assert_eq!(e.stats_value(&NoHost)["responses_unmatched"], 0);
}

#[test]
fn a_held_ready_goes_out_first_with_everything_queued_behind_it() {
    let t0 = Instant::now();
    let (mut e, _) = bridged(t0, true);
    e.on_input(
        b"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"gateway.ping\"}\n",
        &mut NoHost,
        t0,
    );
    assert!(!e.has_writable_output(), "held behind the ready");
    e.tick(&mut NoHost, t0);
    let out = written(&mut e, t0);
    assert_eq!(out[0]["params"]["payload"], json!({"merged": true}));
    assert_eq!(out[1]["id"], 1);
}

#[test]
fn a_batch_joins_local_and_deferred_answers_into_one_array() {
    let t0 = Instant::now();
    let (mut e, seen) = bridged(t0, false);
    written(&mut e, t0);
    e.on_input(
        br#"[{"jsonrpc":"2.0","id":1,"method":"app.a"},{"jsonrpc":"2.0","id":2,"method":"gateway.ping"},{"jsonrpc":"2.0","id":1,"method":"app.b"},{"jsonrpc":"2.0","method":"app.note"}]
"#,
        &mut NoHost,
        t0,
    );
    let early = written(&mut e, t0);
    assert!(
        early.is_empty(),
        "waits for the forwarded answer: {early:?}"
    );
    assert_eq!(seen.borrow().len(), 2, "the duplicate id was not forwarded");
    e.tick(&mut NoHost, t0);
    let out = written(&mut e, t0);
    assert_eq!(out.len(), 1, "{out:?}");
    let members = out[0].as_array().unwrap();
    assert_eq!(members.len(), 3, "{out:?}");
    assert!(members
        .iter()
        .any(|m| m["id"] == 1 && m["result"] == "late"));
    assert!(members
        .iter()
        .any(|m| m["id"] == 2 && m["result"]["ok"] == true));
    assert!(members
        .iter()
        .any(|m| m["id"] == 1 && m["error"]["code"] == -32600));
}

/// A service whose `later.wait` answers only when `later.release` comes.
#[derive(Default)]
struct Later {
    held: Vec<super::service::Owed>,
    refused_in_batch: usize,
}

impl Unit for Later {
    fn name(&self) -> &'static str {
        "later"
    }

    fn methods(&self) -> &'static [&'static str] {
        &["later.wait", "later.release"]
    }

    fn on_exit(&mut self, _host: &mut dyn super::Host) {
        for owed in self.held.drain(..) {
            owed.abandon();
        }
    }
}

impl Service for Later {
    fn call(&mut self, cx: &mut Context<'_>, method: &str, _params: Option<Value>) -> Reply {
        use super::service::Deferral;
        match method {
            "later.wait" => match cx.defer() {
                Deferral::Owed(owed) => {
                    self.held.push(owed);
                    Ok(Value::Null)
                }
                Deferral::Notification => Ok(Value::Null),
                Deferral::Now => {
                    self.refused_in_batch += 1;
                    Err(RpcError::invalid_request("cannot wait in a batch"))
                }
            },
            _ => {
                let held = std::mem::take(&mut self.held);
                let n = held.len();
                for (i, owed) in held.into_iter().enumerate() {
                    cx.answer(owed, &Ok(json!({"released": i})));
                }
                Ok(json!(n))
            }
        }
    }
}

fn later_engine(t0: Instant) -> Engine {
    let config = Config {
        shutdown_grace: Duration::from_secs(1),
        ..Config::default()
    };
    let services: Vec<Box<dyn Service>> = vec![Box::new(Later::default())];
    Engine::new(config.engine(), services, t0).unwrap()
}

#[test]
fn a_deferred_request_is_answered_once_when_its_service_says_so() {
    let t0 = Instant::now();
    let mut e = later_engine(t0);
    e.on_input(
        b"{\"jsonrpc\":\"2.0\",\"method\":\"later.wait\",\"id\":1}\n\
          {\"jsonrpc\":\"2.0\",\"method\":\"later.wait\"}\n\
          [{\"jsonrpc\":\"2.0\",\"method\":\"later.wait\",\"id\":2}]\n\
          {\"jsonrpc\":\"2.0\",\"method\":\"gateway.ping\",\"id\":3}\n",
        &mut NoHost,
        t0,
    );
    let lines = written(&mut e, t0);
    assert_eq!(
        lines.len(),
        3,
        "ready, the batch's refusal, the ping: {lines:?}"
    );
    assert_eq!(lines[1][0]["id"], 2);
    assert_eq!(lines[1][0]["error"]["code"], -32600);
    assert_eq!(lines[2]["id"], 3, "a later request is answered first");
    e.on_input(
        b"{\"jsonrpc\":\"2.0\",\"method\":\"later.release\",\"id\":4}\n",
        &mut NoHost,
        t0,
    );
    let lines = written(&mut e, t0);
    assert_eq!(
        lines[0],
        json!({"jsonrpc": "2.0", "result": {"released": 0}, "id": 1})
    );
    assert_eq!(
        lines[1]["result"], 1,
        "one was owed (the notification owes nothing)"
    );
    assert_eq!(lines.len(), 2);
}

#[test]
fn a_drain_waits_for_an_owed_answer_and_names_it_when_forced() {
    let t0 = Instant::now();
    let mut e = later_engine(t0);
    e.on_input(
        b"{\"jsonrpc\":\"2.0\",\"method\":\"later.wait\",\"id\":1}\n",
        &mut NoHost,
        t0,
    );
    e.on_input_eof(&mut NoHost, t0);
    written(&mut e, t0);
    e.tick(&mut NoHost, t0 + Duration::from_millis(500));
    assert!(e.exit().is_none(), "an answer is owed: the drain waits");
    e.tick(&mut NoHost, t0 + Duration::from_secs(2));
    let exit = e.exit().expect("forced at the deadline");
    assert_eq!(exit.code, exit_code::FORCED, "{exit:?}");
    assert!(exit.reason.contains("1 answer(s) owed"), "{exit:?}");
    e.on_exit(&mut NoHost);
}
