//! The backend bridge (`tui-gateway -- CMD`) against real backends: the
//! fixture in `tests/backends/fixture.py`, a real `python3`, real pipes and
//! real signals. `docs/bridge.md` is the contract these pin.

mod util;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use util::*;

fn fixture() -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/backends/fixture.py")
        .display()
        .to_string()
}

/// A bridge to the fixture: `flags` for the gateway, `backend` for the fixture.
fn bridge(flags: &[&str], backend: &[&str]) -> Builder {
    let fixture = fixture();
    let mut args: Vec<String> = flags.iter().map(|s| s.to_string()).collect();
    args.extend(["--".into(), "python3".into(), fixture]);
    args.extend(backend.iter().map(|s| s.to_string()));
    Gateway::builder().args(args)
}

fn text(line: &[u8]) -> String {
    String::from_utf8_lossy(line).into_owned()
}

/// Reads raw lines until one satisfies `want`; returns every line read.
fn lines_until(gw: &mut Gateway, timeout: Duration, want: impl Fn(&[u8]) -> bool) -> Vec<Vec<u8>> {
    let deadline = Instant::now() + timeout;
    let mut seen = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match gw.recv_line(left) {
            Some(line) => {
                let done = want(&line);
                seen.push(line);
                if done {
                    return seen;
                }
            }
            None => panic!(
                "the awaited line never came; read so far:\n{}\nstderr:\n{}",
                seen.iter().map(|l| text(l)).collect::<Vec<_>>().join("\n"),
                gw.stderr_text()
            ),
        }
    }
}

fn backend_pid(gw: &mut Gateway) -> u32 {
    let info = gw.call("gateway.info", None);
    info["backend"]["pid"].as_u64().expect("a running backend") as u32
}

// 1.
#[test]
fn ids_params_and_notifications_cross_the_bridge_byte_for_byte_and_in_order() {
    let mut gw = bridge(&[], &[]).spawn();
    let params = r#"{"z":1,"a":[1.50,-0,1e400],"s":"\u00e9\n\"\\/\ud83d\ude00","n":null}"#;
    let ids = [
        "7",
        r#""seven""#,
        "12345678901234567890123",
        "1.50",
        "-0",
        "2.5e-3",
    ];
    for id in ids {
        gw.send_raw(
            format!(r#"{{"jsonrpc":"2.0","id":{id},"method":"echo","params":{params}}}"#)
                .as_bytes(),
        );
        gw.send_raw(b"\n");
    }
    for id in ids {
        let line = gw.recv_line(PATIENCE).expect("an answer");
        assert_eq!(
            text(&line),
            format!(r#"{{"jsonrpc":"2.0","id":{id},"result":{params}}}"#),
            "the backend's bytes must reach the client unchanged"
        );
    }
    // Notifications from the backend pass in order, before its answer.
    gw.send_raw(
        b"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"notify\",\"params\":{\"count\":200}}\n",
    );
    let seen = lines_until(&mut gw, PATIENCE, |l| {
        l.starts_with(br#"{"jsonrpc":"2.0","id":1,"#)
    });
    assert_eq!(seen.len(), 201);
    for (n, line) in seen[..200].iter().enumerate() {
        assert_eq!(
            text(line),
            format!(r#"{{"jsonrpc":"2.0","method":"note","params":{{"n":{n}}}}}"#)
        );
    }
    gw.close_stdin();
    assert_eq!(gw.wait_code(PATIENCE), 0, "{}", gw.stderr_text());
}

// 2.
#[test]
fn a_backend_request_reaches_the_client_and_its_answer_reaches_the_backend() {
    let mut gw = bridge(&[], &[]).spawn();
    gw.send_raw(b"{\"jsonrpc\":\"2.0\",\"id\":\"q\",\"method\":\"ask_client\"}\n");
    let request = parse_frame(&gw.recv_line(PATIENCE).expect("the backend's request"));
    assert_eq!(
        request["id"], "srv-1",
        "the backend's own id, not rewritten"
    );
    assert_eq!(request["method"], "client.confirm");
    gw.send_raw(b"{\"jsonrpc\":\"2.0\",\"id\":\"srv-1\",\"result\":{\"yes\":[1,2]}}\n");
    let answer = gw.recv_line(PATIENCE).expect("the answer");
    assert_eq!(
        text(&answer),
        r#"{"jsonrpc":"2.0","id":"q","result":{"client_said":{"yes":[1,2]}}}"#
    );
    let stats = gw.stats();
    assert_eq!(stats["backend"]["responses_forwarded"], 1, "{stats}");
    assert_eq!(stats["responses_unmatched"], 0);
}

// 3.
#[test]
fn the_client_sees_one_merged_ready_first() {
    let mut gw = bridge(&[], &["--ready-delay", "0.3"]).no_ready().spawn();
    // Requests written before the ready are not refused: they are answered after it.
    gw.send_raw(b"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"echo\",\"params\":[1]}\n");
    gw.send_raw(b"{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"gateway.ping\"}\n");
    let first = gw.recv_line(PATIENCE).expect("the ready");
    let ready = parse_frame(&first);
    assert_eq!(event_type(&ready), Some("gateway.ready"));
    let payload = &ready["params"]["payload"];
    assert_eq!(
        payload["backend"], "fixture",
        "the backend's payload: {ready}"
    );
    assert!(payload["gateway"]["version"].is_string(), "{ready}");
    assert_eq!(payload["backend_ready"], true, "{ready}");
    assert_eq!(
        payload["gateway"]["methods"],
        json!([
            "gateway.ping",
            "gateway.info",
            "gateway.stats",
            "gateway.shutdown"
        ])
    );
    assert!(
        text(&first).contains(r#""skin":{"z":1,"a":2}"#),
        "the backend's bytes are kept around the added field: {}",
        text(&first)
    );
    let rest = lines_until(&mut gw, PATIENCE, |l| {
        let v = parse_frame(l);
        v["id"] == 1
    });
    let rest: Vec<Value> = rest.iter().map(|l| parse_frame(l)).collect();
    assert!(rest.iter().any(|v| v["id"] == 2), "{rest:?}");
    assert!(rest.iter().all(|v| event_type(v) != Some("gateway.ready")));
    gw.close_stdin();
    let (frames, _) = gw.drain_stdout(PATIENCE);
    assert!(
        frames
            .iter()
            .all(|v| event_type(v) != Some("gateway.ready")),
        "exactly one ready"
    );
}

#[test]
fn a_backend_that_never_gets_ready_is_announced_after_the_timeout_and_a_late_one_as_backend_ready()
{
    let started = Instant::now();
    let mut gw = bridge(
        &["--backend-ready-timeout", "0.3"],
        &["--ready-delay", "1.5"],
    )
    .no_ready()
    .spawn();
    gw.send_raw(b"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"gateway.ping\"}\n");
    let ready = gw.recv_frame(PATIENCE).expect("the ready");
    assert_eq!(event_type(&ready), Some("gateway.ready"));
    assert_eq!(
        ready["params"]["payload"]["backend_ready"], false,
        "{ready}"
    );
    assert!(ready["params"]["payload"]["gateway"].is_null());
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert_eq!(gw.recv_frame(PATIENCE).unwrap()["id"], 1);
    let late = gw.recv_frame(PATIENCE).expect("the late ready");
    assert_eq!(event_type(&late), Some("backend.ready"), "{late}");
    assert_eq!(late["params"]["payload"]["backend"], "fixture");

    // With --backend-ready none the gateway's ready goes out at once.
    let mut gw = bridge(&["--backend-ready", "none"], &[]).spawn();
    let ready = gw.ready.clone().unwrap();
    assert!(ready["params"]["payload"]["version"].is_string(), "{ready}");
    let late = gw.recv_frame(PATIENCE).expect("the backend's ready");
    assert_eq!(event_type(&late), Some("backend.ready"), "{late}");
}

// 4.
#[test]
fn a_mixed_batch_gets_one_array_with_every_id_once() {
    for backend in [&[][..], &["--no-batches"][..]] {
        let mut gw = bridge(&[], backend).spawn();
        gw.send_raw(
            br#"[{"jsonrpc":"2.0","id":1,"method":"echo","params":{"b":2,"a":1}},{"jsonrpc":"2.0","id":2,"method":"gateway.ping"},{"jsonrpc":"2.0","method":"notify","params":{"count":0}},{"jsonrpc":"2.0","id":"three","method":"process.list"},{"jsonrpc":"2.0","id":4,"method":"nope"}]"#,
        );
        gw.send_raw(b"\n");
        let line = gw.recv_line(PATIENCE).expect("the batch answer");
        let answer = parse_frame(&line);
        let members = answer
            .as_array()
            .unwrap_or_else(|| panic!("one array: {}", text(&line)));
        let mut ids: Vec<String> = members.iter().map(|m| m["id"].to_string()).collect();
        ids.sort();
        assert_eq!(ids, ["\"three\"", "1", "2", "4"], "{}", text(&line));
        assert!(
            text(&line).contains(r#""result":{"b":2,"a":1}"#),
            "{}",
            text(&line)
        );
        let four = members.iter().find(|m| m["id"] == 4).unwrap();
        assert_eq!(four["error"]["code"], -32601);
        gw.call("gateway.ping", None);
    }
}

// 5.
#[test]
fn a_delta_flood_to_a_paused_reader_costs_bounded_memory_and_loses_no_text() {
    const COUNT: usize = 100_000;
    let mut gw = bridge(&[], &[]).spawn();
    gw.send_raw(
        format!(
            r#"{{"jsonrpc":"2.0","id":1,"method":"events","params":{{"count":{COUNT},"session_id":"s-9","unit":"ab\"c"}}}}"#
        )
        .as_bytes(),
    );
    gw.send_raw(b"\n");
    // The reader pauses for 2 s: the gateway stops reading the backend.
    let pause = Instant::now() + Duration::from_secs(2);
    let mut peak = 0;
    while Instant::now() < pause {
        peak = peak.max(proc_mem_bytes(gw.gateway_pid, "VmRSS").unwrap_or(0));
        std::thread::sleep(Duration::from_millis(20)); // sampling interval, not a wait
    }
    let mut joined = String::new();
    let mut frames = 0;
    let mut complete_after_all = false;
    loop {
        let frame = gw.recv_frame(LONG).expect("the flood and its answer");
        peak = peak.max(proc_mem_bytes(gw.gateway_pid, "VmRSS").unwrap_or(0));
        match event_type(&frame) {
            Some("message.delta") => {
                assert!(!complete_after_all);
                assert_eq!(frame["params"]["session_id"], "s-9");
                joined.push_str(frame["params"]["payload"]["text"].as_str().unwrap());
                frames += 1;
            }
            Some("message.complete") => complete_after_all = true,
            _ if frame["id"] == 1 => break,
            _ => panic!("unexpected {frame}"),
        }
    }
    assert!(complete_after_all, "message.complete after every delta");
    assert_eq!(joined.len(), COUNT * 4);
    assert!(joined == "ab\"c".repeat(COUNT), "the text is the text sent");
    assert!(
        frames < COUNT,
        "the paused reader got fewer, larger frames ({frames})"
    );
    assert!(peak < 16 << 20, "gateway RSS peaked at {peak} bytes");
    let stats = gw.stats();
    assert!(stats["deltas_coalesced"].as_u64().unwrap() > 0, "{stats}");
}

// 6.
#[test]
fn a_crash_answers_pending_requests_and_the_gateway_exits_with_its_status() {
    let mut gw = bridge(&[], &[]).spawn();
    gw.send_raw(b"{\"jsonrpc\":\"2.0\",\"id\":5,\"method\":\"crash\",\"params\":{\"code\":3}}\n");
    let answer = gw
        .recv_frame(PATIENCE)
        .expect("an answer for the pending request");
    assert_eq!(answer["id"], 5);
    assert_eq!(answer["error"]["code"], -32002, "{answer}");
    assert_eq!(answer["error"]["data"], json!({"code": 3, "signal": null}));
    let exited = gw.recv_frame(PATIENCE).expect("backend.exited");
    assert_eq!(event_type(&exited), Some("backend.exited"));
    assert_eq!(
        exited["params"]["payload"],
        json!({"code": 3, "signal": null, "restarting": false})
    );
    assert_eq!(
        gw.wait_code(PATIENCE),
        3,
        "the backend's status: {}",
        gw.stderr_text()
    );
}

#[test]
fn with_restart_on_failure_the_next_request_reaches_a_new_backend() {
    let mut gw = bridge(&["--backend-restart", "on-failure"], &[]).spawn();
    let first = backend_pid(&mut gw);
    gw.send_raw(b"{\"jsonrpc\":\"2.0\",\"id\":5,\"method\":\"crash\"}\n");
    assert_eq!(gw.recv_frame(PATIENCE).unwrap()["error"]["code"], -32002);
    let exited = gw.recv_frame(PATIENCE).unwrap();
    assert_eq!(exited["params"]["payload"]["restarting"], true, "{exited}");
    // Sent while the backend restarts: it waits for the new one.
    gw.send_raw(b"{\"jsonrpc\":\"2.0\",\"id\":6,\"method\":\"echo\",\"params\":[6]}\n");
    let mut frames = Vec::new();
    while !frames.iter().any(|f: &Value| f["id"] == 6) {
        frames.push(
            gw.recv_frame(PATIENCE)
                .expect("the answer from the new backend"),
        );
    }
    assert_eq!(frames.last().unwrap()["result"], json!([6]));
    assert!(
        frames
            .iter()
            .any(|f| event_type(f) == Some("backend.ready")),
        "{frames:?}"
    );
    let second = backend_pid(&mut gw);
    assert_ne!(first, second);
    assert_eq!(gw.stats()["backend"]["restarts"], 1);
    assert_gone(&[first], "the crashed backend");
}

// 7.
#[test]
fn junk_oversize_and_non_object_lines_never_reach_the_client() {
    let mut gw = bridge(&[], &[]).spawn();
    gw.send_raw(b"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"junk\"}\n");
    let next = gw.recv_line(LONG).expect("the next real frame");
    assert_eq!(
        event_type(&parse_frame(&next)),
        Some("after.junk"),
        "{}",
        text(&next)
    );
    assert_eq!(parse_frame(&gw.recv_line(PATIENCE).unwrap())["id"], 1);
    let stats = gw.stats();
    assert_eq!(stats["backend"]["junk_lines"], 4, "{stats}");
    assert_eq!(stats["backend"]["oversize_lines"], 1, "{stats}");
    assert!(
        gw.wait_stderr("this is not json", PATIENCE),
        "{}",
        gw.stderr_text()
    );
}

// 8.
#[test]
fn a_backend_that_never_reads_gets_minus_32001_and_the_gateway_still_answers_fast() {
    let mut gw = bridge(&["--backend-stdin-limit", "256KiB"], &["--no-read"]).spawn();
    let params = "x".repeat(4096);
    let mut refused = None;
    for id in 0..1000u32 {
        gw.send_raw(
            format!(r#"{{"jsonrpc":"2.0","id":{id},"method":"echo","params":["{params}"]}}"#)
                .as_bytes(),
        );
        gw.send_raw(b"\n");
        if let Read1::Line(line) = gw.read_line(Duration::ZERO) {
            refused = Some(parse_frame(&line));
            break;
        }
    }
    let refused = match refused {
        Some(f) => f,
        None => gw.recv_frame(PATIENCE).expect("a refusal"),
    };
    assert_eq!(refused["error"]["code"], -32001, "{refused}");
    assert!(refused["error"]["message"]
        .as_str()
        .unwrap()
        .contains("backend overloaded"));
    // The best of 20: a loaded machine may delay any one of them.
    let mut best = Duration::MAX;
    for id in 0..20 {
        let sent = Instant::now();
        gw.send(&rpc(format!("ping-{id}"), "gateway.ping"));
        loop {
            let frame = gw.recv_frame(PATIENCE).expect("pong");
            if frame["id"] == format!("ping-{id}") {
                break;
            }
            assert_eq!(frame["error"]["code"], -32001, "{frame}");
        }
        best = best.min(sent.elapsed());
    }
    assert!(
        best < Duration::from_millis(10),
        "gateway.ping took {best:?}"
    );
}

// 9.
#[test]
fn sigterm_ends_a_term_ignoring_backend_and_its_grandchild_within_the_grace() {
    let mut gw = bridge(&["--shutdown-grace", "1"], &["--ignore-term"]).spawn();
    let backend = backend_pid(&mut gw);
    let grandchild = gw.call("spawn_grandchild", Some(json!({"new_session": true})))["pid"]
        .as_u64()
        .unwrap() as u32;
    let sent = Instant::now();
    gw.signal(libc::SIGTERM);
    gw.wait_exit(PATIENCE);
    let took = sent.elapsed();
    assert!(took < Duration::from_millis(1200), "exit took {took:?}");
    assert_gone(&[backend, grandchild], "the backend's tree");
    assert!(
        poll_until(Duration::from_millis(1), || process_gone(backend)
            && process_gone(grandchild)),
        "gone by the time the gateway exited"
    );
}

// 10.
#[test]
fn stdin_eof_lets_a_slow_backend_answer_everything_then_exits_0() {
    let mut gw = bridge(&["--shutdown-grace", "5"], &[]).spawn();
    for id in 0..5 {
        gw.send(&rpc_with(id, "slow", json!({"ms": 150})));
    }
    gw.close_stdin();
    let (frames, rest) = gw.drain_stdout(LONG);
    assert!(rest.is_empty());
    let mut ids: Vec<u64> = frames
        .iter()
        .filter(|f| is_response(f))
        .map(|f| as_u64(&f["id"]))
        .collect();
    ids.sort();
    assert_eq!(ids, [0, 1, 2, 3, 4], "{frames:?}");
    assert_eq!(gw.wait_code(PATIENCE), 0, "{}", gw.stderr_text());
}

#[test]
fn a_descendant_holding_the_backends_stdout_does_not_hold_the_client() {
    let mut gw = bridge(&["--shutdown-grace", "5"], &[]).spawn();
    let grandchild = gw.call("spawn_grandchild", None)["pid"].as_u64().unwrap() as u32;
    let closed = Instant::now();
    gw.close_stdin();
    assert_eq!(gw.wait_code(PATIENCE), 0, "{}", gw.stderr_text());
    assert!(
        closed.elapsed() < Duration::from_secs(2),
        "took {:?}",
        closed.elapsed()
    );
    assert_gone(&[grandchild], "the grandchild holding stdout");
}

// 11.
#[test]
fn process_methods_reach_the_backend_unless_local_process_is_asked_for() {
    let mut gw = bridge(&[], &[]).spawn();
    assert_eq!(gw.call("process.list", None), json!({"from": "backend"}));
    // client.capabilities is the backend's too (the fixture does not know it).
    let caps = gw.request("client.capabilities", Some(json!({})));
    assert_eq!(
        caps["error"]["message"], "no method client.capabilities",
        "{caps}"
    );
    let mut gw = bridge(&["--local-process"], &[]).spawn();
    assert_eq!(gw.call("process.list", None), json!([]));
    let methods = gw.ready.as_ref().unwrap()["params"]["payload"]["gateway"]["methods"].clone();
    assert!(
        methods
            .as_array()
            .unwrap()
            .contains(&json!("process.spawn")),
        "{methods}"
    );
}

// 12.
#[test]
fn a_backend_that_cannot_start_exits_69_with_one_line() {
    let not_exec = TempFile::new("not-executable");
    std::fs::write(not_exec.path(), "#!/bin/sh\n").unwrap();
    for cmd in ["/nonexistent/backend", not_exec.path().to_str().unwrap()] {
        let mut gw = Gateway::builder().args(["--", cmd]).no_ready().spawn();
        assert_eq!(gw.wait_code(PATIENCE), 69, "{cmd}");
        let stderr = gw.stderr_complete(PATIENCE);
        let lines: Vec<&str> = stderr.lines().collect();
        assert_eq!(lines.len(), 1, "{stderr}");
        assert!(
            lines[0].contains("cannot start the backend") && lines[0].contains(cmd),
            "{stderr}"
        );
        let (frames, rest) = gw.drain_stdout(PATIENCE);
        assert!(frames.is_empty() && rest.is_empty());
    }
}

// 13.
#[test]
fn transparent_mode_writes_only_the_backends_bytes() {
    let session: &[&[u8]] = &[
        br#"{"jsonrpc":"2.0","id":1.50,"method":"echo","params":{"z":[1e400]}}"#,
        br#"{"jsonrpc":"2.0","id":2,"method":"notify","params":{"count":3}}"#,
        br#"[{"jsonrpc":"2.0","id":3,"method":"echo","params":[3]},{"jsonrpc":"2.0","id":4,"method":"gateway.ping"}]"#,
        br#"{"jsonrpc":"2.0","id":5,"method":"events","params":{"count":5}}"#,
    ];
    let input: Vec<u8> = session.iter().flat_map(|l| [*l, b"\n"].concat()).collect();
    let direct = std::process::Command::new("python3")
        .arg(fixture())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write;
            c.stdin.take().unwrap().write_all(&input)?;
            c.wait_with_output()
        })
        .unwrap();
    let mut gw = bridge(&["--transparent"], &[]).no_ready().spawn();
    gw.send_raw(&input);
    gw.close_stdin();
    let mut through = Vec::new();
    loop {
        match gw.read_line(LONG) {
            Read1::Line(l) => {
                through.extend_from_slice(&l);
                through.push(b'\n');
            }
            Read1::Eof(rest) => {
                through.extend_from_slice(&rest);
                break;
            }
            Read1::Timeout => panic!("no EOF"),
        }
    }
    assert_eq!(text(&through), text(&direct.stdout));
    assert_eq!(gw.wait_code(PATIENCE), 0, "{}", gw.stderr_text());
}

#[test]
fn backend_stderr_is_relayed_line_by_line_and_info_shows_the_backend() {
    let mut gw = bridge(&["--backend-restart", "on-failure"], &[]).spawn();
    gw.call("stderr", Some(json!({"lines": 3})));
    assert!(
        gw.wait_stderr("backend stderr line 2\n", PATIENCE),
        "{}",
        gw.stderr_text()
    );
    let info = gw.call("gateway.info", None);
    assert_eq!(info["backend"]["state"], "running", "{info}");
    assert_eq!(info["backend"]["restart"], "on-failure");
    assert_eq!(info["backend"]["argv"][0], "python3");
    assert!(info["config"]["backend"].is_array());
    let stats = gw.stats();
    assert_eq!(stats["backend"]["stderr_lines_relayed"], 3, "{stats}");
    assert!(stats["backend"]["requests_forwarded"].as_u64().unwrap() >= 1);
}

#[test]
fn keep_running_serves_the_gateway_after_the_backend_is_gone() {
    let mut gw = bridge(&["--keep-running"], &[]).spawn();
    gw.send_raw(b"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"crash\"}\n");
    assert_eq!(gw.recv_frame(PATIENCE).unwrap()["error"]["code"], -32002);
    assert_eq!(
        event_type(&gw.recv_frame(PATIENCE).unwrap()),
        Some("backend.exited")
    );
    let refused = gw.request("echo", Some(json!([1])));
    assert_eq!(refused["error"]["code"], -32002, "{refused}");
    gw.call("gateway.ping", None);
    gw.close_stdin();
    assert_eq!(gw.wait_code(PATIENCE), 0, "{}", gw.stderr_text());
}

#[test]
fn a_backend_that_dies_before_its_ready_still_gives_the_client_a_ready_then_its_status() {
    let started = Instant::now();
    let mut gw = bridge(&[], &["--junk-at-start", "--exit-at-start", "7"])
        .no_ready()
        .spawn();
    let (frames, rest) = gw.drain_stdout(PATIENCE);
    assert!(rest.is_empty());
    assert_eq!(event_type(&frames[0]), Some("gateway.ready"), "{frames:?}");
    assert_eq!(frames[0]["params"]["payload"]["backend_ready"], false);
    assert_eq!(event_type(&frames[1]), Some("backend.exited"));
    assert_eq!(
        frames.len(),
        2,
        "the junk line is not forwarded: {frames:?}"
    );
    assert_eq!(gw.wait_code(PATIENCE), 7, "{}", gw.stderr_text());
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "not held until the ready timeout"
    );
    assert!(gw.stderr_text().contains("fixture: failing at start"));
}

/// User + system CPU time of a process, in clock ticks.
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let after = &stat[stat.rfind(')').unwrap() + 2..];
    let fields: Vec<&str> = after.split(' ').collect();
    fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
}

#[test]
fn transparent_mode_stops_reading_the_client_while_the_backend_does_not_read() {
    let mut gw = bridge(
        &["--transparent", "--backend-stdin-limit", "64KiB"],
        &["--no-read"],
    )
    .no_ready()
    .spawn();
    // The backend's own ready passes through, untouched.
    let ready = gw.recv_frame(PATIENCE).expect("the backend's ready");
    assert_eq!(ready["params"]["payload"]["backend"], "fixture");
    assert!(ready["params"]["payload"]["gateway"].is_null(), "{ready}");
    let line = format!(
        "{}\n",
        json!({"jsonrpc":"2.0","id":1,"method":"echo","params":["x".repeat(1000)]})
    );
    let mut written = 0;
    let deadline = Instant::now() + LONG;
    let mut full_since: Option<Instant> = None;
    // Write until the gateway's stdin pipe stays full: it stopped reading.
    while full_since.map_or(true, |t| t.elapsed() < Duration::from_millis(200)) {
        assert!(
            Instant::now() < deadline,
            "the gateway never stopped reading"
        );
        match gw.write_some(line.as_bytes()) {
            0 => {
                full_since.get_or_insert_with(Instant::now);
                std::thread::sleep(Duration::from_millis(5)); // the pipe is full: pace the retries
            }
            n => {
                written += n;
                full_since = None;
            }
        }
        assert!(
            written < 8 << 20,
            "{written} bytes taken: the bound is not holding"
        );
    }
    // Paced, not spinning: it waits in poll() for the backend to read.
    let before = cpu_ticks(gw.gateway_pid);
    std::thread::sleep(Duration::from_millis(500)); // the measurement window
    let used = cpu_ticks(gw.gateway_pid) - before;
    assert!(
        used <= 10,
        "the gateway burnt {used} ticks of CPU in 0.5 s while waiting"
    );
    gw.signal(libc::SIGTERM);
    assert_eq!(gw.wait_code(PATIENCE), 0, "{}", gw.stderr_text());
}

#[test]
fn backend_cwd_sets_the_backends_directory_and_a_bad_one_is_exit_69() {
    let dir = std::env::temp_dir().canonicalize().unwrap();
    let dir = dir.to_str().unwrap();
    let mut gw = bridge(&["--backend-cwd", dir], &[]).spawn();
    assert_eq!(gw.call("cwd", None), json!(dir));
    assert_eq!(gw.call("gateway.info", None)["backend"]["cwd"], json!(dir));
    let mut gw = bridge(&["--backend-cwd", "/nonexistent/dir"], &[])
        .no_ready()
        .spawn();
    assert_eq!(gw.wait_code(PATIENCE), 69);
    let stderr = gw.stderr_complete(PATIENCE);
    assert!(
        stderr.contains("--backend-cwd /nonexistent/dir"),
        "{stderr}"
    );
}

/// Reads every line until `backend.exited`, counting answers by id; panics
/// on an id answered twice. Returns the answers' error codes by id and how
/// many answers came after the event (none may).
fn answers_until_exited(gw: &mut Gateway) -> (std::collections::HashMap<String, i64>, Value) {
    let mut answers = std::collections::HashMap::new();
    let deadline = Instant::now() + LONG;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let frame = gw
            .recv_frame(left)
            .unwrap_or_else(|| panic!("no backend.exited; {} answers", answers.len()));
        if event_type(&frame) == Some("backend.exited") {
            return (answers, frame);
        }
        if let Some(id) = frame.get("id") {
            let code = frame["error"]["code"].as_i64().unwrap_or(0);
            assert!(
                answers.insert(id.to_string(), code).is_none(),
                "{id} answered twice"
            );
        }
    }
}

/// Issue 15, finding 3: a backend that dies owing 100,000 answers. They
/// are paid as the queue has room (a paced producer), every one arrives,
/// `backend.exited` comes after the last, and the queue never passes its
/// high-water mark by more than one step.
#[test]
fn a_backend_that_dies_owing_many_answers_pays_them_all_paced_then_says_so() {
    let mut gw = bridge(
        &[
            "--keep-running",
            "--backend-stdin-limit",
            "64MiB",
            "--backend-max-pending",
            "200000",
        ],
        &[],
    )
    .spawn();
    let n = 100_000;
    let mut bytes = Vec::new();
    for i in 0..n {
        bytes.extend_from_slice(
            format!("{{\"jsonrpc\":\"2.0\",\"id\":{i},\"method\":\"hold\"}}\n").as_bytes(),
        );
    }
    bytes.extend_from_slice(b"{\"jsonrpc\":\"2.0\",\"id\":\"last\",\"method\":\"crash\"}\n");
    gw.send_raw(&bytes);
    let (answers, exited) = answers_until_exited(&mut gw);
    assert_eq!(answers.len(), n + 1, "every request answered once");
    assert!(answers.values().all(|&c| c == -32002), "all -32002");
    assert_eq!(exited["params"]["payload"]["restarting"], false, "{exited}");
    let stats = gw.stats();
    let info = gw.call("gateway.info", None);
    let high = stats["outbound_high_water_mark"].as_u64().unwrap();
    let mark = info["limits"]["outbound_high_water_bytes"]
        .as_u64()
        .unwrap();
    eprintln!("100,000 owed answers: outbound high-water mark {high} bytes (pause at {mark})");
    assert_eq!(stats["frames_refused"], 0, "{stats}");
    assert!(high <= mark + 64 * 1024, "{high} bytes queued at most");
    assert_eq!(stats["backend"]["answered_backend_exited"], n as u64 + 1);
    assert_eq!(stats["backend"]["pending"], 0);
    gw.close_stdin();
    assert_eq!(gw.wait_code(PATIENCE), 0, "{}", gw.stderr_text());
}

/// Issue 15, finding 4: requests sent while the backend waits to restart
/// are answered whatever ends the wait: stdin EOF, SIGTERM,
/// `gateway.shutdown`, or a restart that fails.
#[test]
fn requests_sent_during_restart_backoff_are_answered_however_the_wait_ends() {
    for how in ["eof", "sigterm", "shutdown"] {
        let mut gw = bridge(&["--backend-restart", "always"], &[]).spawn();
        gw.send_raw(b"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"crash\"}\n");
        assert_eq!(gw.recv_frame(PATIENCE).unwrap()["error"]["code"], -32002);
        let exited = gw.recv_frame(PATIENCE).unwrap();
        assert_eq!(exited["params"]["payload"]["restarting"], true, "{exited}");
        // The first restart waits 250 ms: these wait with it.
        gw.send_raw(b"{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"echo\",\"params\":[2]}\n");
        gw.send_raw(b"{\"jsonrpc\":\"2.0\",\"id\":3,\"method\":\"echo\",\"params\":[3]}\n");
        // Read by the gateway (a signal stops it reading: what is still in
        // the pipe then is never seen, so it cannot be answered).
        assert!(poll_until(PATIENCE, || gw.stats()["backend"]["pending"] == 2));
        match how {
            "eof" => gw.close_stdin(),
            "sigterm" => gw.signal(libc::SIGTERM),
            _ => gw.send_raw(
                b"{\"jsonrpc\":\"2.0\",\"id\":\"bye\",\"method\":\"gateway.shutdown\"}\n",
            ),
        }
        let (frames, rest) = gw.drain_stdout(LONG);
        assert!(rest.is_empty(), "{how}");
        for id in [2, 3] {
            let answers: Vec<&Value> = frames.iter().filter(|f| f["id"] == id).collect();
            assert_eq!(answers.len(), 1, "{how}: id {id} answered once: {frames:?}");
        }
        gw.wait_code(PATIENCE);
    }
}

/// Issue 15, finding 7: `--transparent` forwards every line as its bytes:
/// invalid UTF-8 is not replaced by U+FFFD, a trailing `\r` and a blank
/// line stay. The backend here is `cat`, writing what it gets to a file.
#[test]
fn transparent_mode_forwards_lines_as_their_bytes_even_invalid_utf8_and_cr() {
    let out = TempFile::new("transparent-bytes");
    let script = format!("cat > '{}'", out.path().display());
    let mut gw = Gateway::builder()
        .args(["--transparent", "--", "sh", "-c", &script])
        .no_ready()
        .spawn();
    let input: &[u8] =
        b"\xff\xfe{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"x\"}\n{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"y\"}\r\n\n  \n{\"s\":\"\xc3\xa9\"}\n";
    gw.send_raw(input);
    gw.close_stdin();
    assert_eq!(gw.wait_code(PATIENCE), 0, "{}", gw.stderr_text());
    assert_eq!(
        std::fs::read(out.path()).unwrap(),
        input,
        "the backend got exactly the client's bytes"
    );
}

/// Issue 15, finding 8: a request larger than `--backend-stdin-limit` is
/// taken when nothing else waits for the backend's stdin, instead of being
/// refused with `-32001` every time.
#[test]
fn a_request_larger_than_the_backend_stdin_limit_is_sent_when_nothing_else_waits() {
    let mut gw = bridge(&["--backend-stdin-limit", "1MiB"], &[]).spawn();
    let big = "x".repeat(5_000_000);
    let resp = gw.request("echo", Some(json!([big])));
    assert_eq!(
        resp["result"][0].as_str().map(str::len),
        Some(5_000_000),
        "{}",
        &resp.to_string()[..200]
    );
    gw.close_stdin();
    assert_eq!(gw.wait_code(PATIENCE), 0, "{}", gw.stderr_text());
}

/// Issue 15, finding 5: a backend that refuses batches, sent 20 batches
/// before its first refusal arrives: every batch is sent again member by
/// member, every request is answered once, and no refusal reaches the client.
#[test]
fn every_batch_sent_before_a_refusal_is_sent_again_and_answered() {
    let mut gw = bridge(&[], &["--no-batches"]).spawn();
    let mut bytes = Vec::new();
    for b in 0..20 {
        bytes.extend_from_slice(
            format!(
                "[{{\"jsonrpc\":\"2.0\",\"id\":{},\"method\":\"echo\",\"params\":[{b}]}},{{\"jsonrpc\":\"2.0\",\"id\":{},\"method\":\"echo\"}}]\n",
                2 * b,
                2 * b + 1
            )
            .as_bytes(),
        );
    }
    gw.send_raw(&bytes);
    let mut answered = std::collections::HashMap::new();
    while answered.len() < 40 {
        let frame = gw
            .recv_frame(LONG)
            .unwrap_or_else(|| panic!("{} of 40 answered", answered.len()));
        for member in frame
            .as_array()
            .cloned()
            .unwrap_or_else(|| vec![frame.clone()])
        {
            assert_ne!(
                member["id"],
                Value::Null,
                "a refusal reached the client: {member}"
            );
            if let Some(id) = member["id"].as_u64() {
                assert!(member.get("result").is_some(), "{member}");
                *answered.entry(id).or_insert(0) += 1;
            }
        }
    }
    assert!(answered.values().all(|&n| n == 1), "{answered:?}");
    let info = gw.call("gateway.info", None);
    assert_eq!(info["backend"]["batches"], "refused");
    assert_eq!(gw.stats()["backend"]["pending"], 0);
    gw.close_stdin();
    let (rest, _) = gw.drain_stdout(PATIENCE);
    assert!(
        rest.iter().all(|f| f.get("id") != Some(&Value::Null)),
        "{rest:?}"
    );
    assert_eq!(gw.wait_code(PATIENCE), 0, "{}", gw.stderr_text());
}

/// Issue 15, finding 6: after a batch of notifications, a request with a
/// `null` id that the backend answers with an error: the answer reaches the
/// client, and the backend got each notification once.
#[test]
fn a_null_id_error_after_a_notification_batch_is_an_answer_not_a_refusal() {
    let mut gw = bridge(&[], &[]).spawn();
    gw.send_raw(
        b"[{\"jsonrpc\":\"2.0\",\"method\":\"n1\"},{\"jsonrpc\":\"2.0\",\"method\":\"n2\"}]\n",
    );
    gw.send_raw(b"{\"jsonrpc\":\"2.0\",\"id\":null,\"method\":\"no.such.method\"}\n");
    let answer = gw.recv_frame(PATIENCE).expect("the null-id answer");
    assert_eq!(answer["id"], Value::Null, "{answer}");
    assert_eq!(answer["error"]["code"], -32601, "{answer}");
    // n1, n2, the null-id request and this one: nothing twice.
    assert_eq!(gw.call("handled", None), 4);
    gw.close_stdin();
    assert_eq!(gw.wait_code(PATIENCE), 0, "{}", gw.stderr_text());
}

/// Issue 15, finding 1: one batch of 10,000 `gateway.info` members and one
/// forwarded request. Its answer (about 19 MB, over the 8 MiB hard limit
/// here) is written as the reader reads, through the same paced path as without a backend: one array with
/// every id once, nothing refused, the gateway's memory bounded.
#[test]
fn a_batch_whose_answer_passes_the_hard_limit_is_answered_in_full_and_paced() {
    let mut gw = bridge(&["--outbound-hard-limit", "8MiB"], &[]).spawn();
    let n = 10_000;
    let mut batch = String::with_capacity(n * 50);
    batch.push('[');
    for i in 0..n {
        batch.push_str(&format!(
            r#"{{"jsonrpc":"2.0","id":{i},"method":"gateway.info"}},"#
        ));
    }
    batch.push_str(r#"{"jsonrpc":"2.0","id":"fwd","method":"echo","params":[1]}]"#);
    batch.push('\n');
    gw.send_raw(batch.as_bytes());
    let line = match gw.read_line(LONG) {
        Read1::Line(line) => line,
        _ => panic!("no batch answer; stderr:\n{}", gw.stderr_text()),
    };
    let answers: Vec<Value> = serde_json::from_slice(&line).expect("one array");
    assert_eq!(answers.len(), n + 1);
    let mut ids = std::collections::HashSet::new();
    for a in &answers {
        assert!(a.get("result").is_some(), "{a}");
        assert!(ids.insert(a["id"].to_string()), "{} twice", a["id"]);
    }
    let hwm = proc_mem_bytes(gw.gateway_pid, "VmHWM").unwrap();
    let stats = gw.stats();
    eprintln!(
        "10,001-member bridged batch: {} bytes of answer, gateway VmHWM {hwm}",
        line.len()
    );
    assert_eq!(stats["frames_refused"], 0, "{stats}");
    assert!(hwm < 32 * 1024 * 1024, "peak RSS {hwm} bytes");
    gw.close_stdin();
    assert_eq!(gw.wait_code(PATIENCE), 0, "{}", gw.stderr_text());
}

/// Issue 15, finding 2: 100 batches, each a member the backend holds and a
/// member it answers at once with 1 MB. The answers held for the batches
/// count against a budget (the room between the high-water mark and the
/// hard limit, 4 MiB here): past it a held answer becomes `-32001` for its id. When the backend releases the held
/// members in one write, every batch gets its one array with both ids,
/// nothing is refused and memory stays bounded.
#[test]
fn batches_waiting_on_the_backend_hold_bounded_answers_and_all_finish() {
    let mut gw = bridge(&["--outbound-hard-limit", "8MiB"], &[]).spawn();
    let mut bytes = Vec::new();
    for b in 0..100 {
        bytes.extend_from_slice(
            format!(
                "[{{\"jsonrpc\":\"2.0\",\"id\":\"held-{b}\",\"method\":\"later\"}},{{\"jsonrpc\":\"2.0\",\"id\":\"blob-{b}\",\"method\":\"blob\",\"params\":{{\"bytes\":1000000}}}}]\n"
            )
            .as_bytes(),
        );
    }
    gw.send_raw(&bytes);
    // Every blob answer has reached the gateway before the release.
    assert!(
        poll_until(LONG, || gw.stats()["backend"]["pending"] == 100),
        "the blobs were answered"
    );
    gw.send_raw(b"{\"jsonrpc\":\"2.0\",\"id\":\"release\",\"method\":\"release\"}\n");
    let (mut arrays, mut full, mut overloaded) = (0, 0, 0);
    let mut released = false;
    while arrays < 100 || !released {
        let frame = gw.recv_frame(LONG).expect("every batch answered");
        let Some(members) = frame.as_array() else {
            released |= frame["id"] == "release";
            continue;
        };
        arrays += 1;
        assert_eq!(members.len(), 2, "{frame}");
        let b = members
            .iter()
            .find_map(|m| m["id"].as_str()?.strip_prefix("held-"))
            .expect("the held member");
        for m in members {
            if m["id"] == format!("blob-{b}") {
                match m["error"]["code"].as_i64() {
                    Some(-32001) => overloaded += 1,
                    None => full += 1,
                    other => panic!("{other:?}"),
                }
            } else {
                assert_eq!(m["result"], "released", "{m}");
            }
        }
    }
    let hwm = proc_mem_bytes(gw.gateway_pid, "VmHWM").unwrap();
    let stats = gw.stats();
    eprintln!("100 waiting batches: {full} blobs held whole, {overloaded} over the budget as -32001; VmHWM {hwm}");
    assert_eq!(full + overloaded, 100);
    // The budget is the room between the high-water mark (4 MiB) and the
    // hard limit (8 MiB).
    assert!(full >= 3, "the budget held {full} MB answers");
    assert_eq!(stats["frames_refused"], 0, "{stats}");
    assert!(hwm < 32 * 1024 * 1024, "peak RSS {hwm} bytes");
    gw.close_stdin();
    assert_eq!(gw.wait_code(PATIENCE), 0, "{}", gw.stderr_text());
}

/// A backend answer larger than the room below the outbound hard limit
/// (possible when `--max-frame-bytes` is above it) is answered with
/// `-32001` under its id, not refused and lost; an event that large is
/// dropped and counted as an over-long line.
#[test]
fn a_backend_answer_larger_than_the_hard_limit_becomes_minus_32001_for_its_id() {
    let mut gw = bridge(&["--outbound-hard-limit", "8MiB"], &[]).spawn();
    let resp = gw.request("blob", Some(json!({"bytes": 10_000_000})));
    assert_eq!(
        resp["error"]["code"],
        -32001,
        "{}",
        &resp.to_string()[..200.min(resp.to_string().len())]
    );
    let fine = gw.request("blob", Some(json!({"bytes": 1_000_000})));
    assert_eq!(fine["result"].as_str().map(str::len), Some(1_000_000));
    let stats = gw.stats();
    assert_eq!(stats["frames_refused"], 0, "{stats}");
    assert_eq!(stats["backend"]["oversize_lines"], 1, "{stats}");
    gw.close_stdin();
    assert_eq!(gw.wait_code(PATIENCE), 0, "{}", gw.stderr_text());
}

/// Issue 15: the requests a backend owes are bounded
/// (`--backend-max-pending`): past the bound a request gets `-32001` at
/// once, and every request still gets exactly one answer.
#[test]
fn requests_past_backend_max_pending_get_minus_32001_and_all_are_answered() {
    let mut gw = bridge(&["--backend-max-pending", "10"], &[]).spawn();
    let mut bytes = Vec::new();
    for i in 0..15 {
        bytes.extend_from_slice(
            format!("{{\"jsonrpc\":\"2.0\",\"id\":{i},\"method\":\"hold\"}}\n").as_bytes(),
        );
    }
    gw.send_raw(&bytes);
    for _ in 0..5 {
        let refused = gw.recv_frame(PATIENCE).expect("a refusal at once");
        assert_eq!(refused["error"]["code"], -32001, "{refused}");
        assert_eq!(refused["error"]["data"]["limit"], 10, "{refused}");
    }
    assert_eq!(gw.stats()["backend"]["pending"], 10);
    gw.close_stdin();
    let (frames, _) = gw.drain_stdout(LONG);
    let owed: Vec<&Value> = frames
        .iter()
        .filter(|f| f["error"]["code"] == -32002)
        .collect();
    assert_eq!(owed.len(), 10, "{frames:?}");
    assert_eq!(gw.wait_code(PATIENCE), 0, "{}", gw.stderr_text());
}

/// Issue 15, finding 4, second half: a request sent during the restart
/// backoff is answered when the restart itself fails (here its
/// `--backend-cwd` is gone: the backend removed it): `-32002` with code 69,
/// then the gateway exits 69, or with `--keep-running` stays up and answers
/// the next request the same way.
#[test]
fn a_request_waiting_for_a_restart_that_fails_is_answered() {
    for keep_running in [false, true] {
        let dir = temp_path("vanishing-cwd");
        std::fs::create_dir(&dir).unwrap();
        let dir_arg = dir.display().to_string();
        let mut args = vec![
            "--backend-ready",
            "none",
            "--backend-restart",
            "always",
            "--backend-cwd",
            &dir_arg,
        ];
        if keep_running {
            args.push("--keep-running");
        }
        // It reads one line, removes its own directory and fails.
        args.extend([
            "--",
            "sh",
            "-c",
            "d=$PWD; read line; cd /; rmdir \"$d\"; exit 1",
        ]);
        let mut gw = Gateway::builder().args(args).spawn();
        gw.send_raw(b"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"x\"}\n");
        assert_eq!(gw.recv_frame(PATIENCE).unwrap()["error"]["code"], -32002);
        let exited = gw.recv_frame(PATIENCE).unwrap();
        assert_eq!(exited["params"]["payload"]["restarting"], true, "{exited}");
        gw.send_raw(b"{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"x\"}\n");
        let answer = gw
            .recv_frame(PATIENCE)
            .expect("the waiting request's answer");
        assert_eq!(answer["id"], 2, "{answer}");
        assert_eq!(answer["error"]["code"], -32002, "{answer}");
        assert_eq!(answer["error"]["data"]["code"], 69, "{answer}");
        if keep_running {
            let next = gw.request("x", None);
            assert_eq!(next["error"]["code"], -32002, "{next}");
            gw.close_stdin();
            assert_eq!(gw.wait_code(PATIENCE), 0, "{}", gw.stderr_text());
        } else {
            assert_eq!(gw.wait_code(PATIENCE), 69, "{}", gw.stderr_text());
        }
        assert!(!dir.exists(), "the backend removed its directory");
    }
}

/// Issue 15, finding 9: a frame forwarded from the backend keeps its raw
/// U+2028 (its bytes, as written); the gateway's own frames escape it.
#[test]
fn raw_u2028_from_the_backend_is_forwarded_as_written_and_the_gateways_own_are_escaped() {
    let mut gw = bridge(&[], &[]).spawn();
    gw.send_raw(
        "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"echo\",\"params\":[\"a\u{2028}b\"]}\n"
            .as_bytes(),
    );
    let line = gw.recv_line(PATIENCE).unwrap();
    assert!(text(&line).contains("a\u{2028}b"), "{}", text(&line));
    gw.send_raw(
        "{\"jsonrpc\":\"2.0\",\"id\":\"p\u{2028}\",\"method\":\"gateway.ping\"}\n".as_bytes(),
    );
    let line = gw.recv_line(PATIENCE).unwrap();
    assert!(text(&line).contains("p\\u2028"), "{}", text(&line));
    gw.close_stdin();
    assert_eq!(gw.wait_code(PATIENCE), 0, "{}", gw.stderr_text());
}
