//! Command envelopes against the built binary: `timeout_ms`,
//! `output_limit`, `limits`, `process.cancel` and its ladder, and the exit's
//! `cause`, `duration_ms` and `output_bytes`. Contract: `docs/process.md`,
//! "Command envelopes". The numbered tests are the issue's.
//!
//! Nothing waits by sleeping: every wait reads frames or polls `/proc` up to
//! a generous deadline.

mod util;

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use util::*;

/// Reads until a response with `id` arrives; returns it (events stay in `seen`).
fn response(gw: &mut Client, id: &Value, timeout: Duration) -> Value {
    let deadline = Instant::now() + timeout;
    loop {
        let i = gw.read_one(deadline);
        if is_response(&gw.seen[i]) && gw.seen[i]["id"] == *id {
            return gw.seen.remove(i);
        }
    }
}

/// The `process.output` payloads of `proc`, in order.
fn outputs(frames: &[Value], proc: u64) -> Vec<Value> {
    frames
        .iter()
        .filter(|f| event_type(f) == Some("process.output") && payload(f)["proc"] == json!(proc))
        .map(|f| payload(f).clone())
        .collect()
}

/// The pids a command printed, one per line, once `count` are in.
fn printed_pids(gw: &mut Client, proc: u64, count: usize) -> Vec<u32> {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let text = output(&gw.seen, proc, "stdout");
        let pids: Vec<u32> = text.lines().filter_map(|l| l.trim().parse().ok()).collect();
        if pids.len() >= count && text.ends_with('\n') {
            return pids;
        }
        gw.read_one(deadline);
    }
}

/// Reads until `proc`'s output on `stream` contains `needle`.
fn until_output(gw: &mut Client, proc: u64, stream: &str, needle: &str) {
    let deadline = Instant::now() + PATIENCE;
    while !output(&gw.seen, proc, stream).contains(needle) {
        gw.read_one(deadline);
    }
}

/// Test 1: `sleep 100` with `timeout_ms: 300` exits with `cause: "timeout"` in
/// 300–800 ms, and nothing is left.
#[test]
fn a_timeout_cancels_the_command_and_says_so() {
    let mut gw = Client::new(&[]);
    let t0 = Instant::now();
    let (proc, pid) = gw.spawn(json!({"argv": ["sleep", "100"], "timeout_ms": 300}));
    let frames = gw.until_exit(proc, PATIENCE);
    let took = t0.elapsed();
    let exit = exit_payload(&frames, proc);
    eprintln!("timeout 300 ms: exit event after {took:?}: {exit}");
    assert_eq!(
        status_of(&exit),
        json!({"proc": proc, "code": null, "signal": "SIGINT", "cause": "timeout"})
    );
    assert!(
        took >= Duration::from_millis(300) && took <= Duration::from_millis(800),
        "exit after {took:?}"
    );
    let duration = as_u64(&exit["duration_ms"]);
    assert!((300..800).contains(&duration), "duration_ms {duration}");
    assert_eq!(proc_state(pid), None, "sleep is reaped, nothing left");
    assert_eq!(gw.call("process.list", Value::Null), json!([]));
}

/// Test 2: A shell that ignores SIGINT and SIGTERM, with two background sleeps
/// that inherit that: the default ladder's answer comes after its SIGKILL
/// step, names it, and no process of the tree is left when it is read.
#[test]
fn cancel_climbs_the_default_ladder_and_answers_when_the_tree_is_gone() {
    let mut gw = Client::new(&[]);
    let script = r#"trap "" INT TERM; sleep 999 & echo $!; sleep 999 & echo $!; wait"#;
    let (proc, shell) = gw.spawn(json!({"argv": ["bash", "-c", script]}));
    let mut tree = printed_pids(&mut gw, proc, 2);
    tree.push(shell);
    let t0 = Instant::now();
    let id = json!("cancel-1");
    gw.send(&rpc_with(
        id.clone(),
        "process.cancel",
        json!({"proc": proc}),
    ));
    // A second cancel joins the first and gets the same answer.
    let id2 = json!("cancel-2");
    gw.send(&rpc_with(
        id2.clone(),
        "process.cancel",
        json!({"proc": proc}),
    ));
    let listed = gw.call("process.list", Value::Null);
    assert_eq!(listed[0]["cancelling"], true, "{listed}");
    let answer = response(&mut gw, &id, Duration::from_secs(20));
    let took = t0.elapsed();
    // Read at once, before anything else: the tree must be gone already.
    let left: Vec<(u32, Option<char>)> = tree
        .iter()
        .map(|&pid| (pid, proc_state(pid)))
        .filter(|(_, state)| state.is_some())
        .collect();
    assert!(left.is_empty(), "left when the answer was read: {left:?}");
    eprintln!("default ladder on a trapping tree: answered after {took:?}: {answer}");
    assert_eq!(
        answer["result"],
        json!({"proc": proc, "step": 2, "signal": "SIGKILL", "code": null, "exit_signal": "SIGKILL"})
    );
    assert!(
        took >= Duration::from_secs(5),
        "SIGINT 2 s, SIGTERM 3 s: {took:?}"
    );
    let second = response(&mut gw, &id2, PATIENCE);
    assert_eq!(second["result"], answer["result"]);
    let exit = exit_payload(&gw.seen, proc);
    assert_eq!(exit["cause"], "cancel");
    let exit_at = gw.seen.iter().position(|f| is_exit_of(f, proc));
    assert!(exit_at.is_some(), "the exit event came before the answer");
}

/// A ladder given with the call replaces the spawn's; the answer names the
/// step that ended the tree.
#[test]
fn a_ladder_given_with_the_call_is_used_and_the_first_step_can_suffice() {
    let mut gw = Client::new(&[]);
    let (proc, _) = gw.spawn(json!({
        "argv": ["sleep", "100"],
        "cancel": [["SIGUSR1", 100], ["SIGKILL"]],
    }));
    let answer = gw.call(
        "process.cancel",
        json!({"proc": proc, "ladder": [["SIGTERM", 5000], ["SIGKILL"]]}),
    );
    assert_eq!(
        answer,
        json!({"proc": proc, "step": 0, "signal": "SIGTERM", "code": null, "exit_signal": "SIGTERM"})
    );
    // The spawn's own ladder is used when the call gives none.
    let (proc, _) = gw.spawn(json!({
        "argv": ["sh", "-c", "trap '' USR1; echo ready; sleep 100 & wait"],
        "cancel": [["SIGUSR1", 100], ["SIGKILL"]],
    }));
    // Cancelled only once the shell ignores SIGUSR1 (its sleep inherits that).
    until_output(&mut gw, proc, "stdout", "ready");
    let listed = gw.call("process.list", Value::Null);
    assert_eq!(listed[0]["cancel"], json!([["SIGUSR1", 100], ["SIGKILL"]]));
    let answer = gw.call("process.cancel", json!({"proc": proc}));
    assert_eq!(
        (answer["step"].clone(), answer["signal"].clone()),
        (json!(1), json!("SIGKILL"))
    );
}

/// On a terminal the first SIGINT step is the interrupt character typed
/// into it: a program reading raw keys sees Ctrl+C as a key.
#[test]
fn on_a_terminal_the_first_step_types_ctrl_c() {
    let mut gw = Client::new(&[]);
    let program = "import sys, tty\ntty.setraw(0)\nprint('raw', flush=True)\nprint(repr(sys.stdin.read(1)), flush=True)";
    let (proc, _) = gw.spawn(json!({
        "argv": ["python3", "-c", program],
        "pty": {"rows": 24, "cols": 80},
    }));
    until_output(&mut gw, proc, "pty", "raw");
    let answer = gw.call("process.cancel", json!({"proc": proc}));
    assert_eq!(
        answer,
        json!({"proc": proc, "step": 0, "signal": "SIGINT", "code": 0, "exit_signal": null})
    );
    let frames = gw.until_exit(proc, PATIENCE);
    assert!(
        output(&frames, proc, "pty").contains("'\\x03'"),
        "{frames:?}"
    );
    assert_eq!(exit_payload(&frames, proc)["cause"], "cancel");
}

/// Test 3a: `yes` under a 1 MiB `kill` limit: exactly 1 MiB is forwarded, a
/// `truncated` marker follows, and the exit says `output_limit`.
#[test]
fn yes_under_a_kill_limit_forwards_one_mib_and_is_cancelled() {
    let mut gw = Client::new(&[]);
    let limit = 1 << 20;
    let (proc, _) = gw.spawn(json!({
        "argv": ["yes"],
        "output_limit": {"bytes": limit, "policy": "kill"},
    }));
    let frames = gw.until_exit(proc, LONG);
    let forwarded = output(&frames, proc, "stdout").len();
    let markers: Vec<Value> = outputs(&frames, proc)
        .into_iter()
        .filter(|p| p.get("truncated").is_some())
        .collect();
    let exit = exit_payload(&frames, proc);
    eprintln!("yes, kill at 1 MiB: forwarded {forwarded}, exit {exit}");
    assert!(
        forwarded >= limit && forwarded <= limit + 64 * 1024,
        "forwarded {forwarded}"
    );
    assert_eq!(forwarded, limit, "the cut is exact");
    assert_eq!(
        markers,
        vec![json!({"proc": proc, "stream": "stdout", "data": "", "truncated": true})]
    );
    assert_eq!(exit["cause"], "output_limit");
    let total = as_u64(&exit["output_bytes"]["stdout"]);
    assert_eq!(as_u64(&exit["discarded"]["stdout"]), total - limit as u64);
}

/// Test 3b: `truncate`: the command runs to its own end, and the discarded
/// count is exact.
#[test]
fn truncate_lets_the_command_finish_and_counts_every_discarded_byte() {
    let mut gw = Client::new(&[]);
    let limit: u64 = 1 << 20;
    let size: u64 = 50_000_000;
    let (proc, _) = gw.spawn(json!({
        "argv": ["sh", "-c", format!("head -c {size} /dev/zero | cat")],
        "output_limit": {"bytes": limit, "policy": "truncate"},
        "encoding": "base64",
    }));
    let frames = gw.until_exit(proc, LONG);
    let exit = exit_payload(&frames, proc);
    eprintln!("50 MB under a 1 MiB truncate: {exit}");
    assert_eq!(
        status_of(&exit),
        json!({"proc": proc, "code": 0, "signal": null, "cause": "exit"})
    );
    assert_eq!(exit["output_bytes"]["stdout"], size);
    assert_eq!(exit["discarded"]["stdout"], size - limit);
    let text = output(&frames, proc, "stdout");
    assert_eq!(
        text.len() as u64,
        limit.div_ceil(3) * 4,
        "base64 of exactly 1 MiB"
    );
}

/// Test 3c: `tail`: the last bytes of `seq 1 1000000` arrive before the exit,
/// after a `skipped` count; skipped plus forwarded is the output's size.
#[test]
fn tail_delivers_the_head_the_skipped_count_and_the_last_bytes() {
    let mut gw = Client::new(&[]);
    let limit: u64 = 100_000;
    let (proc, _) = gw.spawn(json!({
        "argv": ["seq", "1", "1000000"],
        "output_limit": {"bytes": limit, "policy": "tail"},
    }));
    let frames = gw.until_exit(proc, LONG);
    let events = outputs(&frames, proc);
    let ring_at = events
        .iter()
        .position(|p| p.get("skipped").is_some())
        .expect("a ring with a skipped count");
    let text = |ps: &[Value]| -> String {
        ps.iter()
            .map(|p| p["data"].as_str().unwrap().to_owned())
            .collect()
    };
    let head = text(&events[..ring_at]);
    let tail = text(&events[ring_at..]);
    let skipped = as_u64(&events[ring_at]["skipped"]);
    let expected: String = (1..=1_000_000).map(|n| format!("{n}\n")).collect();
    eprintln!(
        "seq under tail {limit}: head {} B, skipped {skipped}, tail {} B",
        head.len(),
        tail.len()
    );
    assert!(expected.starts_with(&head) && head.len() as u64 == limit / 2);
    assert!(expected.ends_with(&tail) && tail.len() as u64 == limit - limit / 2);
    assert_eq!(
        head.len() as u64 + skipped + tail.len() as u64,
        expected.len() as u64
    );
    let exit = exit_payload(&frames, proc);
    assert_eq!(exit["output_bytes"]["stdout"], expected.len());
    assert_eq!(exit["discarded"]["stdout"], skipped);
    let last_output = frames
        .iter()
        .rposition(|f| event_type(f) == Some("process.output"));
    let exit_at = frames.iter().position(|f| is_exit_of(f, proc));
    assert!(last_output < exit_at, "the ring comes before the exit");
}

/// Test 4: Resource limits in the child: a Python allocation loop under
/// `memory_bytes` fails while a sibling command is untouched; a busy loop
/// under `cpu_seconds` ends with SIGXCPU and `cause: "limit"`; under
/// `open_files: 16` the 17th descriptor cannot be opened.
#[test]
fn resource_limits_hold_in_the_child_and_are_reported() {
    let mut gw = Client::new(&[]);
    let (sibling, _) = gw.spawn(json!({"argv": ["sh", "-c", "read line; echo got $line"]}));
    let hog = "x = []\nwhile True:\n    x.append(bytearray(1 << 20))";
    let (memory, _) = gw.spawn(json!({
        "argv": ["python3", "-c", hog],
        "limits": {"memory_bytes": 256u64 << 20},
    }));
    let (cpu, _) = gw.spawn(json!({
        "argv": ["python3", "-c", "while True: pass"],
        "limits": {"cpu_seconds": 1},
    }));
    let opener = "import os\nn = 0\ntry:\n    while True:\n        os.open('/dev/null', os.O_RDONLY)\n        n += 1\nexcept OSError as e:\n    print(n + 3, e.errno)";
    let (files, _) = gw.spawn(json!({
        "argv": ["python3", "-c", opener],
        "limits": {"open_files": 16},
    }));
    for proc in [memory, cpu, files] {
        gw.until_exit(proc, LONG);
    }
    let frames = gw.seen.clone();
    let exit = exit_payload(&frames, memory);
    eprintln!("memory_bytes 256 MiB: {exit}");
    assert!(output(&frames, memory, "stderr").contains("MemoryError"));
    assert_eq!(status_of(&exit)["code"], 1);
    let rss = as_u64(&exit["usage"]["max_rss_bytes"]);
    assert!(rss > 128 << 20 && rss < 512 << 20, "peak RSS {rss}");

    let exit = exit_payload(&frames, cpu);
    eprintln!("cpu_seconds 1: {exit}");
    assert_eq!(
        status_of(&exit),
        json!({"proc": cpu, "code": null, "signal": "SIGXCPU", "cause": "limit"})
    );
    assert_eq!(exit["limit"], "cpu_seconds");
    let cpu_ms = as_u64(&exit["usage"]["user_ms"]) + as_u64(&exit["usage"]["system_ms"]);
    assert!((900..2500).contains(&cpu_ms), "CPU used {cpu_ms} ms");

    assert_eq!(
        output(&frames, files, "stdout"),
        "16 24\n",
        "EMFILE at the 17th fd"
    );

    // The sibling ran beside them untouched.
    gw.call("process.write", json!({"proc": sibling, "data": "hello\n"}));
    let frames = gw.until_exit(sibling, PATIENCE);
    assert_eq!(output(&frames, sibling, "stdout"), "got hello\n");
    assert_eq!(exit_payload(&frames, sibling)["cause"], "exit");
}

/// A limit the kernel refuses fails the spawn with its errno; nothing runs.
#[test]
fn a_limit_the_kernel_refuses_fails_the_spawn() {
    let mut gw = Client::new(&[]);
    // Above the kernel's nr_open, which no process may pass, root or not.
    let resp = gw.request(
        "process.spawn",
        json!({"argv": ["true"], "limits": {"open_files": 1u64 << 40}}),
    );
    assert_eq!(error_code(&resp), Some(-32000), "{resp}");
    assert_eq!(resp["error"]["data"]["code"], "EPERM", "{resp}");
    assert!(
        resp["error"]["message"].as_str().unwrap().contains("limit"),
        "{resp}"
    );
    assert_eq!(gw.call("process.list", Value::Null), json!([]));
}

/// Test 5: `duration_ms` and `output_bytes` agree with what the client measured
/// and received.
#[test]
fn duration_and_byte_counts_match_what_the_client_saw() {
    let mut gw = Client::new(&[]);
    let t0 = Instant::now();
    let (proc, _) = gw.spawn(json!({
        "argv": ["python3", "-c", "import sys, time\nsys.stdout.write('x' * 70000)\nsys.stdout.flush()\ntime.sleep(0.3)\nsys.stderr.write('\\u20ac' * 3)"],
    }));
    let frames = gw.until_exit(proc, PATIENCE);
    let measured = t0.elapsed();
    let exit = exit_payload(&frames, proc);
    let stdout = output(&frames, proc, "stdout");
    let stderr = output(&frames, proc, "stderr");
    eprintln!("measured {measured:?}, exit {exit}");
    assert_eq!(
        exit["output_bytes"],
        json!({"stdout": stdout.len(), "stderr": stderr.len()})
    );
    assert_eq!((stdout.len(), stderr.len()), (70_000, 9));
    let duration = as_u64(&exit["duration_ms"]);
    assert!(
        duration >= 300 && u128::from(duration) <= measured.as_millis(),
        "duration_ms {duration}, measured {measured:?}"
    );
    assert!(exit.get("usage").is_none(), "usage comes with limits only");
}

/// Test 6: Bad envelopes get `-32602` naming the field; a cancel in a batch is
/// refused with `-32600` and cancels nothing.
#[test]
fn bad_envelopes_are_refused_naming_the_field() {
    let mut gw = Client::new(&[]);
    let cases = [
        (json!({"timeout_ms": 0}), "timeout_ms"),
        (json!({"timeout_ms": -5}), "timeout_ms"),
        (json!({"timeout_ms": 1e12}), "timeout_ms"),
        (json!({"timeout_ms": "1s"}), "timeout_ms"),
        (
            json!({"output_limit": {"bytes": 10, "policy": "drop"}}),
            "output_limit.policy",
        ),
        (
            json!({"output_limit": {"bytes": -1, "policy": "kill"}}),
            "output_limit.bytes",
        ),
        (
            json!({"output_limit": {"bytes": 1u64 << 30, "policy": "tail"}}),
            "output_limit.bytes",
        ),
        (json!({"output_limit": 5}), "output_limit"),
        (
            json!({"limits": {"memory_bytes": 0}}),
            "limits.memory_bytes",
        ),
        (json!({"limits": {"cpu_seconds": -1}}), "limits.cpu_seconds"),
        (json!({"limits": {"nice": 5}}), "nice"),
        (json!({"limits": [1]}), "limits"),
        (
            json!({"cancel": [["SIGNOPE", 10], ["SIGKILL"]]}),
            "cancel[0][0]",
        ),
        (
            json!({"cancel": [["SIGINT", -1], ["SIGKILL"]]}),
            "cancel[0][1]",
        ),
        (json!({"cancel": [["SIGINT"], ["SIGKILL"]]}), "cancel[0]"),
        (Value::Array(vec![json!(["SIGINT", 1]); 9]), "cancel"),
        (json!({"cancel": []}), "cancel"),
    ];
    for (extra, needle) in cases {
        let mut params = json!({"argv": ["true"]});
        match extra {
            Value::Object(map) => params.as_object_mut().unwrap().extend(map),
            ladder => {
                params["cancel"] = ladder;
            }
        }
        let resp = gw.request("process.spawn", params.clone());
        assert_error(&resp, -32602, needle);
    }
    let (proc, pid) = gw.spawn(json!({"argv": ["sleep", "100"]}));
    for (params, needle) in [
        (json!({"proc": proc, "ladder": [[0]]}), "ladder[0][0]"),
        (json!({"proc": proc, "ladder": "SIGKILL"}), "ladder"),
        (json!({"proc": 999}), "unknown proc 999"),
        (json!({"proc": proc, "steps": []}), "\"steps\""),
    ] {
        let resp = gw.request("process.cancel", params);
        assert_error(&resp, -32602, needle);
    }
    gw.send_raw(
        format!(
            "[{}]\n",
            rpc_with(json!("b1"), "process.cancel", json!({"proc": proc}))
        )
        .as_bytes(),
    );
    let deadline = Instant::now() + PATIENCE;
    let batch = loop {
        let i = gw.read_one(deadline);
        if gw.seen[i].is_array() {
            break gw.seen.remove(i);
        }
    };
    assert_eq!(batch[0]["error"]["code"], -32600, "{batch}");
    let listed = gw.call("process.list", Value::Null);
    assert!(
        listed[0].get("cancelling").is_none(),
        "nothing was cancelled: {listed}"
    );
    assert!(proc_state(pid).is_some(), "the sleep still runs");
    gw.call(
        "process.cancel",
        json!({"proc": proc, "ladder": [["SIGKILL"]]}),
    );
}

/// A `tail` ring larger than the queue's high-water mark goes out paced,
/// piece by piece as the reader takes them, every byte before the exit.
#[test]
fn a_large_tail_ring_is_delivered_paced_and_whole() {
    let mut gw = Client::new(&[
        "--outbound-high-water",
        "64KiB",
        "--outbound-low-water",
        "16KiB",
    ]);
    let limit: u64 = 4 << 20;
    let size: u64 = 12 << 20;
    let (proc, _) = gw.spawn(json!({
        "argv": ["sh", "-c", format!("head -c {size} /dev/zero | tr '\\0' x")],
        "output_limit": {"bytes": limit, "policy": "tail"},
    }));
    let frames = gw.until_exit(proc, LONG);
    let events = outputs(&frames, proc);
    let ring_at = events
        .iter()
        .position(|p| p.get("skipped").is_some())
        .expect("a ring");
    let ring: usize = events[ring_at..]
        .iter()
        .map(|p| p["data"].as_str().unwrap().len())
        .sum();
    let exit = exit_payload(&frames, proc);
    eprintln!(
        "tail ring of {ring} bytes in {} events, skipped {}",
        events.len() - ring_at,
        events[ring_at]["skipped"]
    );
    assert_eq!(ring as u64, limit - limit / 2);
    assert_eq!(exit["output_bytes"]["stdout"], size);
    assert_eq!(exit["discarded"]["stdout"], size - limit);
}
