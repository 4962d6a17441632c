//! Wire protocol over real pipes against the built binary (issue #2, tests 1-5):
//! the ready line, the built-in methods, the JSON-RPC 2.0 specification
//! examples that need no method, framing edge cases, and line-safe output.

mod util;

use serde_json::{json, Value};
use util::*;

/// Sends `input` (one line, `\n` added) followed by a ping barrier, checks
/// the answer against `expected` (a spec example; `None` = no output at all),
/// then checks the very next reply is the barrier's.
fn exchange(gw: &mut Gateway, input: &[u8], expected: Option<Value>) {
    let mut bytes = input.to_vec();
    bytes.push(b'\n');
    bytes.extend_from_slice(&line(&rpc("barrier", "gateway.ping")));
    gw.send_raw(&bytes);
    if let Some(expected) = expected {
        let got = gw.next_reply(PATIENCE);
        assert_rpc_eq(&got, &expected);
    }
    let next = gw.next_reply(PATIENCE);
    assert_eq!(
        next,
        json!({"jsonrpc":"2.0","result":{"ok":true},"id":"barrier"}),
        "after {:?} the next reply should be the barrier ping's (no other output)",
        String::from_utf8_lossy(input)
    );
}

fn spec_case(input: &str, expected: Option<&str>) {
    let mut gw = Gateway::spawn(&[]);
    let expected =
        expected.map(|e| serde_json::from_str::<Value>(e).expect("spec example is JSON"));
    exchange(&mut gw, input.as_bytes(), expected);
    gw.close_stdin();
    assert_eq!(gw.wait_code(PATIENCE), 0);
}

// ---------------------------------------------------------------------------
// 1. the ready line
// ---------------------------------------------------------------------------

#[test]
fn first_stdout_line_is_gateway_ready_with_documented_payload() {
    let mut gw = Gateway::spawn(&[]);
    let latency = gw.spawned_at.elapsed();
    eprintln!("spawn to gateway.ready: {latency:?}");
    // "Within a few milliseconds of exec": a loaded CI machine gets a wide margin.
    assert!(latency < PATIENCE / 5, "gateway.ready took {latency:?}");
    let ready = gw.ready.clone().unwrap();
    let mut envelope: Vec<&str> = ready
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    envelope.sort_unstable();
    assert_eq!(
        envelope,
        ["jsonrpc", "method", "params"],
        "event envelope: {ready}"
    );
    assert_eq!(ready["jsonrpc"], "2.0");
    assert_eq!(ready["method"], "event");
    let mut params: Vec<&str> = ready["params"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    params.sort_unstable();
    assert_eq!(params, ["payload", "type"], "event params: {ready}");
    assert_eq!(ready["params"]["type"], "gateway.ready");

    let p = gw.ready_payload().clone();
    assert_eq!(
        p["version"],
        env!("CARGO_PKG_VERSION"),
        "ready payload: {p}"
    );
    assert_eq!(
        as_u64(&p["pid"]),
        u64::from(gw.child.id()),
        "ready pid must be the gateway's own pid"
    );
    assert_eq!(as_u64(&p["protocol"]), 1);
    let methods: Vec<&str> = p["methods"]
        .as_array()
        .unwrap_or_else(|| panic!("methods must be an array: {p}"))
        .iter()
        .map(|m| m.as_str().expect("method names are strings"))
        .collect();
    for m in BUILTINS {
        assert!(methods.contains(m), "ready methods {methods:?} lack {m}");
    }
    assert!(
        p["limits"].is_object(),
        "ready limits must be an object: {p}"
    );
    assert_eq!(
        as_u64(&p["limits"]["max_frame_bytes"]),
        16 * 1024 * 1024,
        "default --max-frame-bytes"
    );

    // The ready line came before any request was sent, and the gateway then serves.
    assert_eq!(gw.call("gateway.ping", None), json!({"ok": true}));
    gw.close_stdin();
    assert_eq!(gw.wait_code(PATIENCE), 0);
}

#[test]
fn ready_limits_reflect_the_flags() {
    let mut gw = Gateway::spawn(&["--max-frame-bytes", "1KiB"]);
    assert_eq!(
        as_u64(&gw.ready_payload()["limits"]["max_frame_bytes"]),
        1024
    );
    gw.close_stdin();
    assert_eq!(gw.wait_code(PATIENCE), 0);
}

// ---------------------------------------------------------------------------
// 2. built-in methods, numeric and string ids
// ---------------------------------------------------------------------------

const IDS: &[&str] = &[
    "1",
    "0",
    "-7",
    "42",
    "\"1\"",
    "\"abc\"",
    "\"\"",
    "\"ä √ 😀\"",
];

#[test]
fn builtins_answer_under_numeric_and_string_ids() {
    let mut gw = Gateway::spawn(&[]);
    for method in [
        "gateway.ping",
        "gateway.info",
        "gateway.stats",
        "client.capabilities",
    ] {
        for id_text in IDS {
            let id: Value = serde_json::from_str(id_text).unwrap();
            let req = if method == "client.capabilities" {
                rpc_with(id.clone(), method, json!({"ui": "test", "streaming": true}))
            } else {
                rpc(id.clone(), method)
            };
            gw.send(&req);
            let resp = gw.next_reply(PATIENCE);
            assert_eq!(resp["jsonrpc"], "2.0", "{resp}");
            assert_eq!(resp["id"], id, "{method} with id {id_text}: {resp}");
            assert!(resp.get("error").is_none(), "{method} failed: {resp}");
            assert!(
                resp["result"].is_object(),
                "{method} result must be an object: {resp}"
            );
        }
    }
    gw.close_stdin();
    assert_eq!(gw.wait_code(PATIENCE), 0);
}

#[test]
fn ids_are_echoed_verbatim_including_big_and_fractional_numbers() {
    let mut gw = Gateway::spawn(&[]);
    for id_text in [
        "12345678901234567890123",
        "-98765432109876543210",
        "1.50",
        "\"007\"",
        // Every number form the JSON grammar allows comes back byte-exact.
        "1e400",
        "1.0E+2",
        "-0",
        "2.50",
        "1234567890123456789012345678901234567890",
        "6.02e-23",
        "0",
    ] {
        let req = format!(r#"{{"jsonrpc":"2.0","method":"gateway.ping","id":{id_text}}}"#);
        gw.send_raw(format!("{req}\n").as_bytes());
        let raw = gw.recv_line(PATIENCE).expect("a response");
        let text = String::from_utf8(raw.clone()).unwrap();
        parse_frame(&raw);
        assert!(
            text.ends_with(&format!(r#","id":{id_text}}}"#)),
            "id {id_text} not echoed verbatim: {text}"
        );
    }
    gw.close_stdin();
    assert_eq!(gw.wait_code(PATIENCE), 0);
}

#[test]
fn ping_answers_ok_true() {
    let mut gw = Gateway::spawn(&[]);
    gw.send(&rpc(7, "gateway.ping"));
    assert_eq!(
        gw.next_reply(PATIENCE),
        json!({"jsonrpc":"2.0","result":{"ok":true},"id":7})
    );
    gw.send(&rpc("seven", "gateway.ping"));
    assert_eq!(
        gw.next_reply(PATIENCE),
        json!({"jsonrpc":"2.0","result":{"ok":true},"id":"seven"})
    );
    gw.close_stdin();
    assert_eq!(gw.wait_code(PATIENCE), 0);
}

#[test]
fn info_reports_version_pid_protocol_uptime_methods_services_config_limits() {
    let mut gw = Gateway::spawn(&[]);
    let info = gw.call("gateway.info", None);
    for key in [
        "version", "pid", "protocol", "uptime_s", "methods", "services", "config", "limits",
    ] {
        assert!(info.get(key).is_some(), "gateway.info lacks {key}: {info}");
    }
    assert_eq!(info["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(as_u64(&info["pid"]), u64::from(gw.child.id()));
    assert_eq!(as_u64(&info["protocol"]), 1);
    assert!(as_f64(&info["uptime_s"]) >= 0.0);
    let methods = info["methods"].as_array().expect("methods array");
    for m in BUILTINS {
        assert!(methods.contains(&json!(m)), "info methods lack {m}: {info}");
    }
    assert!(info["services"].is_array(), "{info}");
    assert!(info["config"].is_object(), "{info}");
    assert!(info["limits"].is_object(), "{info}");
    gw.close_stdin();
    assert_eq!(gw.wait_code(PATIENCE), 0);
}

#[test]
fn stats_reports_every_documented_counter() {
    let mut gw = Gateway::spawn(&[]);
    let stats = gw.stats();
    for key in STATS_KEYS {
        assert!(
            stats.get(*key).is_some(),
            "gateway.stats lacks {key}: {stats}"
        );
    }
    for key in STATS_KEYS.iter().filter(|k| **k != "signals") {
        assert!(
            stats[*key].is_u64(),
            "{key} must be a non-negative integer: {stats}"
        );
    }
    assert!(
        stats["signals"].is_object(),
        "signals must be an object name->count: {stats}"
    );
    assert!(
        stats
            .as_object()
            .unwrap()
            .keys()
            .any(|k| k.contains("stderr")),
        "gateway.stats lacks the stderr counters: {stats}"
    );
    // The ready frame was written; our request was read.
    assert!(as_u64(&stats["frames_out"]) >= 1, "{stats}");
    assert!(as_u64(&stats["frames_in"]) >= 1, "{stats}");
    assert!(as_u64(&stats["bytes_in"]) >= 40, "{stats}");
    gw.close_stdin();
    assert_eq!(gw.wait_code(PATIENCE), 0);
}

#[test]
fn client_capabilities_accepts_an_object_and_answers_with_the_gateways() {
    let mut gw = Gateway::spawn(&[]);
    for id in [json!(3), json!("caps")] {
        gw.send(&rpc_with(
            id.clone(),
            "client.capabilities",
            json!({"name": "test-tui", "events": ["x.delta"]}),
        ));
        let resp = gw.next_reply(PATIENCE);
        assert_eq!(resp["id"], id, "{resp}");
        let r = &resp["result"];
        assert_eq!(as_u64(&r["protocol"]), 1, "{resp}");
        assert_eq!(r["version"], env!("CARGO_PKG_VERSION"), "{resp}");
        let methods = r["methods"]
            .as_array()
            .unwrap_or_else(|| panic!("methods array: {resp}"));
        for m in BUILTINS {
            assert!(
                methods.contains(&json!(m)),
                "capabilities methods lack {m}: {resp}"
            );
        }
    }
    gw.close_stdin();
    assert_eq!(gw.wait_code(PATIENCE), 0);
}

#[test]
fn notification_to_a_builtin_gets_no_response() {
    let mut gw = Gateway::spawn(&[]);
    exchange(
        &mut gw,
        &line(&notification("gateway.ping", None))[..],
        None,
    );
    exchange(
        &mut gw,
        &line(&notification("gateway.stats", Some(json!({}))))[..],
        None,
    );
    gw.close_stdin();
    assert_eq!(gw.wait_code(PATIENCE), 0);
}

#[test]
fn unknown_method_by_string_id_names_the_method() {
    let mut gw = Gateway::spawn(&[]);
    gw.send_raw(b"{\"jsonrpc\": \"2.0\", \"method\": \"foobar\", \"id\": \"1\"}\n");
    let resp = gw.next_reply(PATIENCE);
    assert_eq!(
        resp,
        json!({"jsonrpc":"2.0","error":{"code":-32601,"message":"Method not found: foobar"},"id":"1"})
    );
    gw.send(&rpc(2, "no.such.method"));
    let resp = gw.next_reply(PATIENCE);
    assert_eq!(error_code(&resp), Some(-32601), "{resp}");
    assert_eq!(resp["error"]["message"], "Method not found: no.such.method");
    assert_eq!(resp["id"], 2);
    gw.close_stdin();
    assert_eq!(gw.wait_code(PATIENCE), 0);
}

#[test]
fn client_response_nobody_asked_for_is_dropped_quietly() {
    let mut gw = Gateway::spawn(&[]);
    exchange(
        &mut gw,
        br#"{"jsonrpc":"2.0","result":{"x":1},"id":"gw-999"}"#,
        None,
    );
    exchange(
        &mut gw,
        br#"{"jsonrpc":"2.0","error":{"code":1,"message":"no"},"id":12}"#,
        None,
    );
    gw.close_stdin();
    assert_eq!(gw.wait_code(PATIENCE), 0);
}

// ---------------------------------------------------------------------------
// 3. JSON-RPC 2.0 specification examples that need no method
// ---------------------------------------------------------------------------

#[test]
fn spec_notifications_give_no_output() {
    spec_case(
        r#"{"jsonrpc": "2.0", "method": "update", "params": [1,2,3,4,5]}"#,
        None,
    );
    spec_case(r#"{"jsonrpc": "2.0", "method": "foobar"}"#, None);
}

#[test]
fn spec_non_existent_method() {
    spec_case(
        r#"{"jsonrpc": "2.0", "method": "foobar", "id": "1"}"#,
        Some(
            r#"{"jsonrpc": "2.0", "error": {"code": -32601, "message": "Method not found"}, "id": "1"}"#,
        ),
    );
}

#[test]
fn spec_invalid_json_gives_parse_error_with_null_id() {
    spec_case(
        r#"{"jsonrpc": "2.0", "method": "foobar, "params": "bar", "baz]"#,
        Some(
            r#"{"jsonrpc": "2.0", "error": {"code": -32700, "message": "Parse error"}, "id": null}"#,
        ),
    );
}

#[test]
fn spec_invalid_request_object_gives_invalid_request_with_null_id() {
    spec_case(
        r#"{"jsonrpc": "2.0", "method": 1, "params": "bar"}"#,
        Some(
            r#"{"jsonrpc": "2.0", "error": {"code": -32600, "message": "Invalid Request"}, "id": null}"#,
        ),
    );
}

#[test]
fn spec_batch_with_invalid_json_gives_one_parse_error() {
    spec_case(
        r#"[{"jsonrpc": "2.0", "method": "sum", "params": [1,2,4], "id": "1"}, {"jsonrpc": "2.0", "method"]"#,
        Some(
            r#"{"jsonrpc": "2.0", "error": {"code": -32700, "message": "Parse error"}, "id": null}"#,
        ),
    );
}

#[test]
fn spec_empty_batch_gives_one_invalid_request() {
    spec_case(
        "[]",
        Some(
            r#"{"jsonrpc": "2.0", "error": {"code": -32600, "message": "Invalid Request"}, "id": null}"#,
        ),
    );
}

#[test]
fn spec_batch_of_one_non_object_gives_array_of_one_error() {
    spec_case(
        "[1]",
        Some(
            r#"[{"jsonrpc": "2.0", "error": {"code": -32600, "message": "Invalid Request"}, "id": null}]"#,
        ),
    );
}

#[test]
fn spec_batch_of_three_non_objects_gives_three_errors() {
    spec_case(
        "[1,2,3]",
        Some(
            r#"[{"jsonrpc": "2.0", "error": {"code": -32600, "message": "Invalid Request"}, "id": null}, {"jsonrpc": "2.0", "error": {"code": -32600, "message": "Invalid Request"}, "id": null}, {"jsonrpc": "2.0", "error": {"code": -32600, "message": "Invalid Request"}, "id": null}]"#,
        ),
    );
}

#[test]
fn spec_all_notification_batch_gives_no_output() {
    spec_case(
        r#"[{"jsonrpc": "2.0", "method": "notify_sum", "params": [1,2,4]}, {"jsonrpc": "2.0", "method": "notify_hello", "params": [7]}]"#,
        None,
    );
}

#[test]
fn batch_of_builtin_notifications_gives_no_output() {
    let batch = json!([
        notification("gateway.ping", None),
        notification("gateway.stats", None)
    ]);
    let mut gw = Gateway::spawn(&[]);
    exchange(&mut gw, &serde_json::to_vec(&batch).unwrap(), None);
    gw.close_stdin();
    assert_eq!(gw.wait_code(PATIENCE), 0);
}

#[test]
fn batch_mixing_builtin_notification_invalid_and_unknown_method() {
    let mut gw = Gateway::spawn(&[]);
    let batch = r#"[{"jsonrpc": "2.0", "method": "gateway.ping", "id": 1}, {"jsonrpc": "2.0", "method": "notify_hello", "params": [7]}, {"foo": "boo"}, {"jsonrpc": "2.0", "method": "foo.get", "params": {"name": "myself"}, "id": "5"}]"#;
    gw.send_raw(format!("{batch}\n").as_bytes());
    let got = gw.next_reply(PATIENCE);
    assert_rpc_eq(
        &got,
        &json!([
            {"jsonrpc": "2.0", "result": {"ok": true}, "id": 1},
            {"jsonrpc": "2.0", "error": {"code": -32600, "message": "Invalid Request"}, "id": null},
            {"jsonrpc": "2.0", "error": {"code": -32601, "message": "Method not found"}, "id": "5"}
        ]),
    );
    let unknown = got
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == "5")
        .unwrap();
    assert_eq!(unknown["error"]["message"], "Method not found: foo.get");
    // Nothing else was produced for the batch.
    exchange(&mut gw, b"", None);
    gw.close_stdin();
    assert_eq!(gw.wait_code(PATIENCE), 0);
}

// ---------------------------------------------------------------------------
// 4. framing
// ---------------------------------------------------------------------------

fn frame_too_large(limit: u64) -> Value {
    json!({"jsonrpc":"2.0","error":{"code":-32600,"message":"Invalid Request","data":{"reason":"frame too large","limit":limit}},"id":null})
}

fn padded_ping(id: &str, total_len: usize) -> Vec<u8> {
    let head =
        format!(r#"{{"jsonrpc":"2.0","method":"gateway.ping","id":"{id}","params":{{"pad":""#);
    let tail = "\"}}";
    let pad = total_len.saturating_sub(head.len() + tail.len());
    let mut v = head.into_bytes();
    v.extend(std::iter::repeat(b'x').take(pad));
    v.extend_from_slice(tail.as_bytes());
    v
}

#[test]
fn oversized_line_gets_one_error_then_next_request_is_answered() {
    let mut gw = Gateway::spawn(&["--max-frame-bytes", "1KiB"]);
    // A line under the limit is served normally.
    let mut small = padded_ping("small", 900);
    small.push(b'\n');
    gw.send_raw(&small);
    let r = gw.next_reply(PATIENCE);
    assert_eq!(r["id"], "small", "{r}");

    // One oversized line, written in several pieces.
    let mut big = padded_ping("big", 5000);
    big.push(b'\n');
    for chunk in big.chunks(700) {
        gw.send_raw(chunk);
    }
    gw.send(&rpc(2, "gateway.ping"));
    assert_eq!(gw.next_reply(PATIENCE), frame_too_large(1024));
    assert_eq!(
        gw.next_reply(PATIENCE),
        json!({"jsonrpc":"2.0","result":{"ok":true},"id":2})
    );

    // Two oversized lines in a row: one error each, nothing else.
    let mut two = padded_ping("big2", 3000);
    two.push(b'\n');
    two.extend_from_slice(&two.clone());
    two.extend_from_slice(&line(&rpc(3, "gateway.ping")));
    gw.send_raw(&two);
    assert_eq!(gw.next_reply(PATIENCE), frame_too_large(1024));
    assert_eq!(gw.next_reply(PATIENCE), frame_too_large(1024));
    assert_eq!(
        gw.next_reply(PATIENCE),
        json!({"jsonrpc":"2.0","result":{"ok":true},"id":3})
    );
    gw.close_stdin();
    assert_eq!(gw.wait_code(PATIENCE), 0);
}

#[test]
fn oversized_line_of_64_mib_is_discarded_with_bounded_memory() {
    let mut gw = Gateway::spawn(&["--max-frame-bytes", "1KiB"]);
    let pid = gw.gateway_pid;
    let chunk = vec![b'x'; 1 << 20];
    gw.send_raw(
        b"{\"jsonrpc\":\"2.0\",\"method\":\"gateway.ping\",\"id\":\"huge\",\"params\":{\"pad\":\"",
    );
    for _ in 0..64 {
        gw.send_raw(&chunk);
    }
    gw.send_raw(b"\"}}\n");
    gw.send(&rpc("after", "gateway.ping"));
    assert_eq!(gw.next_reply(LONG), frame_too_large(1024));
    assert_eq!(
        gw.next_reply(PATIENCE),
        json!({"jsonrpc":"2.0","result":{"ok":true},"id":"after"})
    );
    let hwm = proc_mem_bytes(pid, "VmHWM").expect("VmHWM");
    assert!(
        hwm < 32 << 20,
        "peak RSS {} MiB while discarding a 64 MiB line with --max-frame-bytes 1KiB: memory is not bounded",
        hwm >> 20
    );
    gw.close_stdin();
    assert_eq!(gw.wait_code(PATIENCE), 0);
}

#[test]
fn invalid_utf8_gives_parse_error_and_the_loop_goes_on() {
    let mut gw = Gateway::spawn(&[]);
    let parse_error =
        json!({"jsonrpc":"2.0","error":{"code":-32700,"message":"Parse error"},"id":null});
    for bad in [
        &b"{\"jsonrpc\":\"2.0\",\"method\":\"gateway.ping\",\"id\":1,\"x\":\"\xff\"}"[..],
        &b"{\"jsonrpc\":\"2.0\",\"method\":\"gateway.\xc3\",\"id\":2}"[..],
        &b"\xfe\xff"[..],
    ] {
        exchange(&mut gw, bad, Some(parse_error.clone()));
    }
    gw.close_stdin();
    assert_eq!(gw.wait_code(PATIENCE), 0);
}

#[test]
fn crlf_lines_are_accepted() {
    let mut gw = Gateway::spawn(&[]);
    gw.send_raw(b"{\"jsonrpc\":\"2.0\",\"method\":\"gateway.ping\",\"id\":1}\r\n");
    assert_eq!(
        gw.next_reply(PATIENCE),
        json!({"jsonrpc":"2.0","result":{"ok":true},"id":1})
    );
    gw.send_raw(b"[{\"jsonrpc\":\"2.0\",\"method\":\"gateway.ping\",\"id\":2}]\r\n");
    assert_eq!(
        gw.next_reply(PATIENCE),
        json!([{"jsonrpc":"2.0","result":{"ok":true},"id":2}])
    );
    gw.send_raw(b"{\"jsonrpc\":\"2.0\",\"method\":\"gateway.ping\",\"id\":\"s\"}\r\n");
    assert_eq!(
        gw.next_reply(PATIENCE),
        json!({"jsonrpc":"2.0","result":{"ok":true},"id":"s"})
    );
    gw.close_stdin();
    assert_eq!(gw.wait_code(PATIENCE), 0);
}

#[test]
fn blank_lines_are_ignored() {
    let mut gw = Gateway::spawn(&[]);
    let before = gw.stats();
    exchange(&mut gw, b"\n\n\r\n\n", None);
    let after = gw.stats();
    assert_eq!(
        as_u64(&after["parse_errors"]),
        as_u64(&before["parse_errors"]),
        "blank lines must not count as parse errors: {after}"
    );
    gw.close_stdin();
    assert_eq!(gw.wait_code(PATIENCE), 0);
}

#[test]
fn frame_written_byte_by_byte_is_one_request() {
    let mut gw = Gateway::spawn(&[]);
    for b in line(&rpc("slow", "gateway.ping")) {
        gw.send_raw(&[b]);
    }
    assert_eq!(
        gw.next_reply(PATIENCE),
        json!({"jsonrpc":"2.0","result":{"ok":true},"id":"slow"})
    );
    gw.close_stdin();
    assert_eq!(gw.wait_code(PATIENCE), 0);
}

#[test]
fn truncated_final_fragment_is_not_dispatched() {
    let mut gw = Gateway::spawn(&[]);
    // A complete ping, then a gateway.shutdown without its newline, then EOF.
    let mut bytes = line(&rpc(1, "gateway.ping"));
    bytes.extend_from_slice(br#"{"jsonrpc":"2.0","method":"gateway.shutdown","id":2}"#);
    gw.send_raw(&bytes);
    gw.close_stdin();
    let (frames, rest) = gw.drain_stdout(PATIENCE);
    assert!(
        rest.is_empty(),
        "stdout ended inside a frame: {:?}",
        String::from_utf8_lossy(&rest)
    );
    let replies: Vec<&Value> = frames.iter().filter(|f| !is_event(f)).collect();
    assert_eq!(
        replies,
        [&json!({"jsonrpc":"2.0","result":{"ok":true},"id":1})],
        "only the complete frame may be answered"
    );
    assert_eq!(gw.wait_code(PATIENCE), 0);
    assert_eq!(
        gw.exit_reason(),
        "stdin EOF",
        "the fragment (a shutdown request) must not have been dispatched"
    );
}

// ---------------------------------------------------------------------------
// 5. line-safe output
// ---------------------------------------------------------------------------

fn has_escape(raw: &[u8], esc: &str) -> bool {
    contains(raw, esc.as_bytes())
}

#[test]
fn u2028_and_u2029_come_out_escaped_and_never_split_a_line() {
    let mut gw = Gateway::spawn(&[]);
    let method = "no\u{2028}such\u{2029}method";
    let id = "sep\u{2028}id\u{2029}";
    // Sent raw (serde_json does not escape them), so the inbound line holds the raw characters.
    let req = rpc(id, method);
    let bytes = line(&req);
    assert!(
        contains(&bytes, "\u{2028}".as_bytes()),
        "the request carries raw U+2028"
    );
    gw.send_raw(&bytes);
    let raw = gw.recv_line(PATIENCE).expect("a response");
    let resp = parse_frame(&raw); // also asserts no raw U+2028/U+2029
    assert!(
        has_escape(&raw, "\\u2028") && has_escape(&raw, "\\u2029"),
        "{:?}",
        String::from_utf8_lossy(&raw)
    );
    assert_eq!(resp["id"], id);
    assert_eq!(error_code(&resp), Some(-32601));
    assert_eq!(
        resp["error"]["message"],
        format!("Method not found: {method}")
    );

    // Sent escaped: same answer, still escaped.
    let escaped = br#"{"jsonrpc":"2.0","method":"x\u2028y\u2029z","id":"e\u2029"}"#;
    gw.send_raw(&[&escaped[..], b"\n"].concat());
    let raw = gw.recv_line(PATIENCE).expect("a response");
    let resp = parse_frame(&raw);
    assert!(
        has_escape(&raw, "\\u2028") && has_escape(&raw, "\\u2029"),
        "{:?}",
        String::from_utf8_lossy(&raw)
    );
    assert_eq!(
        resp["error"]["message"],
        "Method not found: x\u{2028}y\u{2029}z"
    );
    assert_eq!(resp["id"], "e\u{2029}");

    // Inside a batch too.
    let batch = Value::Array(vec![rpc("b\u{2028}", "gateway.ping"), rpc(1, "q\u{2029}")]);
    gw.send(&batch);
    let raw = gw.recv_line(PATIENCE).expect("a batch response");
    let resp = parse_frame(&raw);
    assert!(
        has_escape(&raw, "\\u2028") && has_escape(&raw, "\\u2029"),
        "{:?}",
        String::from_utf8_lossy(&raw)
    );
    assert_eq!(resp.as_array().map(Vec::len), Some(2), "{resp}");

    // The framing stayed intact.
    exchange(&mut gw, b"", None);
    gw.close_stdin();
    assert_eq!(gw.wait_code(PATIENCE), 0);
}

#[test]
fn no_blank_line_ever_appears_on_stdout() {
    let mut gw = Gateway::spawn(&["--max-frame-bytes", "1KiB"]);
    let mut input = Vec::new();
    input.extend_from_slice(b"\n\r\n");
    input.extend_from_slice(&line(&rpc(1, "gateway.ping")));
    input.extend_from_slice(b"{not json\n");
    input.extend_from_slice(b"[]\n[1,2]\n");
    input.extend_from_slice(&line(&notification("gateway.ping", None)));
    input.extend_from_slice(b"[{\"jsonrpc\":\"2.0\",\"method\":\"n\"}]\n");
    input.extend_from_slice(&padded_ping("big", 2000));
    input.extend_from_slice(b"\n\xff\n");
    input.extend_from_slice(&line(&rpc("u", "m\u{2028}")));
    input.extend_from_slice(&line(&rpc(2, "gateway.info")));
    input.extend_from_slice(&line(&rpc(3, "gateway.stats")));
    input.extend_from_slice(b"{\"jsonrpc\":\"2.0\",\"method\":\"gateway.ping\",\"id\":4}\r\n\n\n");
    gw.send_raw(&input);
    gw.close_stdin();
    let mut count = 1; // the ready line, already checked
    loop {
        match gw.read_line(PATIENCE) {
            Read1::Line(l) => {
                parse_frame(&l); // asserts not blank
                count += 1;
            }
            Read1::Eof(rest) => {
                assert!(
                    rest.is_empty(),
                    "stdout ended without a final newline: {:?}",
                    String::from_utf8_lossy(&rest)
                );
                break;
            }
            Read1::Timeout => panic!("stdout did not reach EOF"),
        }
    }
    // ready + ping + parse error + [] + [1,2] + too large + utf8 + unknown + info + stats + ping
    assert_eq!(count, 11, "unexpected number of output lines");
    assert_eq!(gw.wait_code(PATIENCE), 0);
}

#[test]
fn counters_count_parse_errors_invalid_requests_and_oversize_frames() {
    let mut gw = Gateway::spawn(&["--max-frame-bytes", "1KiB"]);
    let s0 = gw.stats();
    exchange(
        &mut gw,
        b"{oops",
        Some(json!({"jsonrpc":"2.0","error":{"code":-32700,"message":"Parse error"},"id":null})),
    );
    let s1 = gw.stats();
    assert_eq!(
        as_u64(&s1["parse_errors"]) - as_u64(&s0["parse_errors"]),
        1,
        "{s1}"
    );
    exchange(
        &mut gw,
        br#"{"jsonrpc":"2.0","method":1}"#,
        Some(
            json!({"jsonrpc":"2.0","error":{"code":-32600,"message":"Invalid Request"},"id":null}),
        ),
    );
    let s2 = gw.stats();
    assert_eq!(
        as_u64(&s2["invalid_requests"]) - as_u64(&s1["invalid_requests"]),
        1,
        "{s2}"
    );
    exchange(
        &mut gw,
        &padded_ping("big", 4000),
        Some(frame_too_large(1024)),
    );
    let s3 = gw.stats();
    assert_eq!(
        as_u64(&s3["oversize_frames"]) - as_u64(&s2["oversize_frames"]),
        1,
        "{s3}"
    );
    assert!(as_u64(&s3["frames_in"]) > as_u64(&s0["frames_in"]), "{s3}");
    assert!(as_u64(&s3["bytes_in"]) > as_u64(&s0["bytes_in"]), "{s3}");
    assert!(
        as_u64(&s3["frames_out"]) > as_u64(&s0["frames_out"]),
        "{s3}"
    );
    assert!(as_u64(&s3["bytes_out"]) > as_u64(&s0["bytes_out"]), "{s3}");
    gw.close_stdin();
    assert_eq!(gw.wait_code(PATIENCE), 0);
}

#[test]
fn thousand_pipelined_requests_are_all_answered() {
    let mut gw = Gateway::spawn(&[]);
    let reqs: Vec<Value> = (0..1000).map(|i| rpc(i, "gateway.ping")).collect();
    gw.send_raw(&lines(&reqs));
    let mut seen = vec![false; 1000];
    for _ in 0..1000 {
        let r = gw.next_reply(PATIENCE);
        let i = as_u64(&r["id"]) as usize;
        assert!(!seen[i], "id {i} answered twice");
        seen[i] = true;
        assert_eq!(r["result"], json!({"ok": true}));
    }
    exchange(&mut gw, b"", None);
    gw.close_stdin();
    assert_eq!(gw.wait_code(PATIENCE), 0);
}
