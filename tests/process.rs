//! `process.*` against the built binary over real pipes: the nine tests of
//! issue 3 (numbered in their names' doc comments) plus the limits and the
//! hygiene rules around them. Contract: `docs/process.md`.
//!
//! Nothing waits by sleeping: every wait reads frames or polls `/proc` up to
//! a generous deadline. The one deliberate sleep is the slow reader's pause.

mod util;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use util::*;

/// The grace the shutdown tests run with (the default, spelled out).
const GRACE: Duration = Duration::from_secs(1);
/// Slack the issue allows past the grace for the gateway to be gone.
const EXIT_SLACK: Duration = Duration::from_millis(200);

// ---------------------------------------------------------------------------
// helpers
// ---------------------------------------------------------------------------

/// Deterministic pseudo-random bytes (every byte value appears).
fn noise(len: usize) -> Vec<u8> {
    let mut x: u32 = 0x1234_5678;
    (0..len)
        .map(|_| {
            x = x.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            (x >> 24) as u8
        })
        .collect()
}

fn b64_value(c: u8) -> u32 {
    match c {
        b'A'..=b'Z' => u32::from(c - b'A'),
        b'a'..=b'z' => u32::from(c - b'a') + 26,
        b'0'..=b'9' => u32::from(c - b'0') + 52,
        b'+' => 62,
        b'/' => 63,
        _ => panic!("not base64: {:?}", c as char),
    }
}

/// A strict standard-base64 decoder for the tests (padding required).
fn b64_decode(text: &str) -> Vec<u8> {
    assert_eq!(
        text.len() % 4,
        0,
        "base64 length {} is not a multiple of 4",
        text.len()
    );
    let mut out = Vec::with_capacity(text.len() / 4 * 3);
    for quad in text.as_bytes().chunks(4) {
        let pad = quad.iter().rev().take_while(|&&c| c == b'=').count();
        let n = quad[..4 - pad]
            .iter()
            .fold(0u32, |acc, &c| acc << 6 | b64_value(c))
            << (6 * pad);
        out.extend_from_slice(&n.to_be_bytes()[1..4 - pad]);
    }
    out
}

fn b64_encode(bytes: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |acc, (i, &b)| acc | u32::from(b) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(A[(n >> (18 - 6 * i)) as usize & 63] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

// ---------------------------------------------------------------------------
// 1. output events, then one exit event with the right code or signal
// ---------------------------------------------------------------------------

/// Issue test 1.
#[test]
fn echo_and_sh_stream_output_then_exactly_one_exit_event() {
    let mut gw = Client::new(&[]);
    let (echo, _) = gw.spawn(json!({"argv": ["echo", "hello", "world"]}));
    let frames = gw.until_exit(echo, PATIENCE);
    assert_eq!(output(&frames, echo, "stdout"), "hello world\n");
    assert_eq!(
        status_of(&exit_payload(&frames, echo)),
        json!({"proc": echo, "code": 0, "signal": null, "cause": "exit"})
    );

    let script = r#"printf 'one\ntwo'; printf 'oops\n' >&2; printf '\nthree\n'"#;
    let (sh, _) = gw.spawn(json!({"argv": ["sh", "-c", script], "tag": "t"}));
    let frames = gw.until_exit(sh, PATIENCE);
    assert_eq!(output(&frames, sh, "stdout"), "one\ntwo\nthree\n");
    assert_eq!(output(&frames, sh, "stderr"), "oops\n");
    assert_eq!(exit_payload(&frames, sh)["code"], 0);

    let (merged, _) =
        gw.spawn(json!({"argv": ["sh", "-c", "echo out; echo err >&2"], "stderr": "merge"}));
    let frames = gw.until_exit(merged, PATIENCE);
    assert_eq!(output(&frames, merged, "stdout"), "out\nerr\n");
    assert_eq!(output(&frames, merged, "stderr"), "");

    let (failing, _) = gw.spawn(json!({"argv": ["sh", "-c", "exit 7"]}));
    let frames = gw.until_exit(failing, PATIENCE);
    assert_eq!(
        status_of(&exit_payload(&frames, failing)),
        json!({"proc": failing, "code": 7, "signal": null, "cause": "exit"})
    );

    let (killed, _) = gw.spawn(json!({"argv": ["sh", "-c", "echo bye; kill -9 $$"]}));
    let frames = gw.until_exit(killed, PATIENCE);
    assert_eq!(output(&frames, killed, "stdout"), "bye\n");
    assert_eq!(
        status_of(&exit_payload(&frames, killed)),
        json!({"proc": killed, "code": null, "signal": "SIGKILL", "cause": "signal"})
    );

    // Nothing more arrives for these procs: the exit event was the last word.
    gw.call("gateway.ping", Value::Null);
    let listed = gw.call("process.list", Value::Null);
    assert_eq!(listed, json!([]), "finished processes leave the list");
}

// ---------------------------------------------------------------------------
// 2. UTF-8 split across reads; base64 round trips
// ---------------------------------------------------------------------------

/// The `data` of every `process.output` event among `frames`, in order.
fn output_chunks(frames: &[Value]) -> Vec<&str> {
    frames
        .iter()
        .filter(|f| event_type(f) == Some("process.output"))
        .map(|f| payload(f)["data"].as_str().unwrap())
        .collect()
}

/// Issue test 2 (UTF-8): 4-, 3- and 2-byte characters written 7 bytes at a
/// time, so nearly every pipe read ends inside a character.
#[test]
fn multibyte_utf8_split_across_pipe_reads_is_never_broken() {
    let text = "😀😀😀€ü".repeat(40_000);
    let file = TempFile::new("utf8");
    std::fs::write(file.path(), &text).unwrap();
    let mut gw = Client::new(&[]);
    let path = file.path().to_str().unwrap();
    let (proc, _) = gw.spawn(json!({"argv": ["dd", format!("if={path}"), "bs=7", "status=none"]}));
    let frames = gw.until_exit(proc, LONG);
    let chunks = output_chunks(&frames);
    for chunk in &chunks {
        assert!(
            !chunk.contains('\u{FFFD}'),
            "a character was broken: {chunk:?}"
        );
    }
    let joined = chunks.concat();
    assert_eq!(joined.len(), text.len());
    assert!(joined == text, "the text arrived changed");
    assert_eq!(exit_payload(&frames, proc)["code"], 0);

    // Invalid bytes become U+FFFD; a truncated character at EOF too.
    let (bad, _) = gw.spawn(json!({"argv": ["printf", "a\\377b\\342\\202\\254c\\360\\237"]}));
    let frames = gw.until_exit(bad, PATIENCE);
    assert_eq!(output(&frames, bad, "stdout"), "a\u{FFFD}b€c\u{FFFD}");
}

/// Issue test 2 (base64): arbitrary bytes out of a child and into one, exact.
#[test]
fn base64_mode_round_trips_arbitrary_bytes() {
    let bytes = noise(300_001);
    let file = TempFile::new("bytes");
    std::fs::write(file.path(), &bytes).unwrap();
    let path = file.path().to_str().unwrap();
    let mut gw = Client::new(&[]);
    let (proc, _) = gw.spawn(
        json!({"argv": ["dd", format!("if={path}"), "bs=5", "status=none"], "encoding": "base64"}),
    );
    let frames = gw.until_exit(proc, LONG);
    let chunks = output_chunks(&frames);
    let (last, body) = chunks.split_last().expect("some output");
    for chunk in body {
        assert!(
            chunk.len() % 4 == 0 && !chunk.contains('='),
            "chunk must concatenate: {chunk:.40}"
        );
    }
    assert!(last.len() % 4 == 0);
    assert!(
        b64_decode(&chunks.concat()) == bytes,
        "bytes changed in transit"
    );

    // Into the child's stdin as base64, back out as base64.
    let (cat, _) = gw.spawn(json!({"argv": ["cat"], "encoding": "base64"}));
    let input = noise(70_000);
    for piece in input.chunks(10_000) {
        let r = gw.call(
            "process.write",
            json!({"proc": cat, "data": b64_encode(piece), "encoding": "base64"}),
        );
        assert_eq!(as_u64(&r["queued"]), piece.len() as u64);
    }
    gw.call("process.close_stdin", json!({"proc": cat}));
    let frames = gw.until_exit(cat, PATIENCE);
    let echoed = b64_decode(&output(&frames, cat, "stdout"));
    assert_eq!(echoed.len(), input.len());
    let first_difference = echoed.iter().zip(&input).position(|(a, b)| a != b);
    assert_eq!(
        first_difference, None,
        "bytes changed on the way through cat"
    );
}

// ---------------------------------------------------------------------------
// 3. ordering
// ---------------------------------------------------------------------------

/// Issue test 3: per proc, every output precedes its exit, which comes once;
/// a response is never overtaken by a later request's response or by output
/// of the process it started.
#[test]
fn output_precedes_exit_and_responses_are_never_overtaken() {
    let mut gw = Client::new(&[]);
    let mut requests = Vec::new();
    for i in 0..6 {
        requests.push(rpc_with(
            format!("spawn-{i}"),
            "process.spawn",
            json!({"argv": ["sh", "-c", format!("seq 1 {}; echo err{i} >&2", 2000 * (i + 1))]}),
        ));
        requests.push(rpc(format!("ping-{i}"), "gateway.ping"));
    }
    gw.send_raw(&lines(&requests));
    let mut exits = 0;
    gw.read_until(LONG, |f| {
        if event_type(f) == Some("process.exit") {
            exits += 1;
        }
        exits == 6
    });
    let frames = std::mem::take(&mut gw.seen);

    // Responses come in request order.
    let ids: Vec<String> = frames
        .iter()
        .filter(|f| is_response(f))
        .map(|f| f["id"].as_str().unwrap().to_owned())
        .collect();
    let expected: Vec<String> = (0..6)
        .flat_map(|i| [format!("spawn-{i}"), format!("ping-{i}")])
        .collect();
    assert_eq!(ids, expected);

    let position = |pred: &dyn Fn(&Value) -> bool| frames.iter().position(pred);
    for i in 0..6u64 {
        let response_at = position(&|f| f["id"] == json!(format!("spawn-{i}"))).unwrap();
        let proc = as_u64(&frames[response_at]["result"]["proc"]);
        let exit_at = position(&|f| is_exit_of(f, proc)).unwrap();
        let mine = |f: &Value| {
            event_type(f) == Some("process.output") && payload(f)["proc"] == json!(proc)
        };
        let outputs: Vec<usize> = (0..frames.len()).filter(|&j| mine(&frames[j])).collect();
        assert!(!outputs.is_empty());
        assert!(
            outputs[0] > response_at,
            "proc {proc}: output before the spawn response"
        );
        assert!(
            *outputs.last().unwrap() < exit_at,
            "proc {proc}: output after its exit event"
        );
        let n = 2000 * (i + 1);
        let expected: String = (1..=n).map(|k| format!("{k}\n")).collect();
        assert_eq!(output(&frames, proc, "stdout"), expected);
        assert_eq!(output(&frames, proc, "stderr"), format!("err{i}\n"));
        assert_eq!(exit_payload(&frames, proc)["code"], 0);
    }
}

// ---------------------------------------------------------------------------
// 4. stdin and signals
// ---------------------------------------------------------------------------

/// Issue test 4: `process.write` + `process.close_stdin` drive `cat` and
/// `wc -c`; `process.signal` stops `sleep`.
#[test]
fn write_and_close_stdin_drive_cat_and_wc_and_signal_stops_sleep() {
    let mut gw = Client::new(&[]);
    let (cat, _) = gw.spawn(json!({"argv": ["cat"]}));
    let r = gw.call("process.write", json!({"proc": cat, "data": "hello, "}));
    assert_eq!(as_u64(&r["queued"]), 7);
    gw.call("process.write", json!({"proc": cat, "data": "wörld\n"}));
    gw.call("process.close_stdin", json!({"proc": cat}));
    let frames = gw.until_exit(cat, PATIENCE);
    assert_eq!(output(&frames, cat, "stdout"), "hello, wörld\n");
    assert_eq!(exit_payload(&frames, cat)["code"], 0);

    // More than a pipe buffer: the rest waits in the queue and follows as
    // the child reads; close_stdin waits for the queue to drain.
    let (wc, _) = gw.spawn(json!({"argv": ["wc", "-c"]}));
    let block = "x".repeat(100_000);
    let mut pending_seen = 0;
    for _ in 0..5 {
        let r = gw.call("process.write", json!({"proc": wc, "data": block}));
        pending_seen = pending_seen.max(as_u64(&r["pending"]));
    }
    let r = gw.call("process.close_stdin", json!({"proc": wc}));
    assert!(r["ok"] == true);
    let frames = gw.until_exit(wc, PATIENCE);
    assert_eq!(output(&frames, wc, "stdout").trim(), "500000");
    eprintln!("wc -c: up to {pending_seen} bytes waited in the stdin queue");

    let (sleep, pid) = gw.spawn(json!({"argv": ["sleep", "100"]}));
    let r = gw.call(
        "process.signal",
        json!({"proc": sleep, "signal": "SIGTERM"}),
    );
    assert_eq!(r["signal"], "SIGTERM");
    let frames = gw.until_exit(sleep, PATIENCE);
    assert_eq!(
        status_of(&exit_payload(&frames, sleep)),
        json!({"proc": sleep, "code": null, "signal": "SIGTERM", "cause": "signal"})
    );
    assert_gone(&[pid], "sleep after SIGTERM");

    let (sleep, _) = gw.spawn(json!({"argv": ["sleep", "100"]}));
    gw.call("process.signal", json!({"proc": sleep, "signal": 9}));
    let frames = gw.until_exit(sleep, PATIENCE);
    assert_eq!(exit_payload(&frames, sleep)["signal"], "SIGKILL");
}

/// The stdin queue is bounded: past `--child-stdin-limit` a write is
/// refused whole with -32001 instead of growing memory, and every accepted
/// byte still arrives.
#[test]
fn stdin_queue_past_its_bound_is_overloaded_and_loses_nothing() {
    let mut gw = Client::new(&["--child-stdin-limit", "100KiB"]);
    // The child stops itself before reading anything; SIGCONT lets `wc` run.
    let (proc, pid) = gw.spawn(json!({"argv": ["sh", "-c", "kill -STOP $$; exec wc -c"]}));
    assert!(
        poll_until(PATIENCE, || proc_state(pid) == Some('T')),
        "the child never stopped itself"
    );
    let resp = gw.request(
        "process.write",
        json!({"proc": proc, "data": "x".repeat(200 * 1024)}),
    );
    assert_error(&resp, -32001, "--child-stdin-limit");

    let mut accepted = 0u64;
    let refused = loop {
        let resp = gw.request(
            "process.write",
            json!({"proc": proc, "data": "y".repeat(30_000)}),
        );
        match resp.get("result") {
            Some(r) => {
                accepted += as_u64(&r["queued"]);
                assert!(as_u64(&r["pending"]) <= 100 * 1024);
            }
            None => break resp,
        }
        assert!(accepted < 10_000_000, "the queue never filled");
    };
    assert_error(&refused, -32001, "is full");
    assert_eq!(refused["error"]["data"]["limit"], 100 * 1024);
    assert!(
        accepted >= 100 * 1024,
        "the pipe buffer and the queue both took bytes ({accepted})"
    );
    assert_eq!(gw.call("gateway.ping", Value::Null), json!({"ok": true}));

    gw.call("process.signal", json!({"proc": proc, "signal": "SIGCONT"}));
    let r = gw.call("process.close_stdin", json!({"proc": proc}));
    eprintln!(
        "stdin bound: {accepted} bytes accepted, {} waiting at close",
        r["pending"]
    );
    let frames = gw.until_exit(proc, PATIENCE);
    let counted: u64 = output(&frames, proc, "stdout").trim().parse().unwrap();
    assert_eq!(counted, accepted, "every accepted byte reached the child");
    let resp = gw.request("process.write", json!({"proc": proc, "data": "late"}));
    assert_error(&resp, -32602, &format!("unknown proc {proc}"));
}

// ---------------------------------------------------------------------------
// 5. slow reader
// ---------------------------------------------------------------------------

/// How many bytes the slow reader's child writes (the issue's number).
const SLOW_READER_BYTES: u64 = 200_000_000;
/// The issue's ceiling for the gateway's RSS while nobody reads.
const RSS_CEILING: u64 = 16 * 1024 * 1024;

/// Issue test 5: a child writes 200 MB while the test stops reading for 3 s;
/// the gateway's RSS stays under 16 MB, a request is still answered, and once
/// reading resumes every byte arrives before the exit event.
#[test]
fn slow_reader_gets_every_byte_with_flat_memory() {
    let mut gw = Client::new(&[]);
    let pid = gw.gateway_pid;
    let script = format!("head -c {SLOW_READER_BYTES} /dev/zero | tr '\\0' a");
    let (proc, _) = gw.spawn(json!({"argv": ["sh", "-c", script], "stderr": "null"}));
    let started = Instant::now();
    let baseline_rss = proc_mem_bytes(pid, "VmRSS").unwrap();

    // Answered while the outbound queue is full: the response waits in order.
    gw.send(&rpc("during-pause", "gateway.ping"));

    // The deliberate pause: stop reading stdout for 3 s and sample the
    // gateway's memory meanwhile. This sleep IS the scenario under test.
    let pause = Duration::from_secs(3);
    let pause_end = Instant::now() + pause;
    let mut peak_rss = 0;
    let mut samples = 0;
    while Instant::now() < pause_end {
        let rss = proc_mem_bytes(pid, "VmRSS").expect("gateway alive");
        peak_rss = peak_rss.max(rss);
        samples += 1;
        std::thread::sleep(Duration::from_millis(20)); // sampling interval within the pause
    }
    let queued_in_pipe = fionread(gw.stdout_fd());

    // Resume and count every byte.
    let prefix = format!(
        r#"{{"jsonrpc":"2.0","method":"event","params":{{"type":"process.output","payload":{{"proc":{proc},"stream":"stdout","data":""#
    );
    let mut bytes = 0u64;
    let mut events = 0u64;
    let mut ping_answered = false;
    let mut longest_line = 0;
    let exit = loop {
        let line = gw.recv_line(LONG * 4).expect("stdout open");
        longest_line = longest_line.max(line.len());
        // Fast path for the known output frame shape (plain 'a's need no
        // escaping); anything else is parsed in full.
        if let Some(rest) = line.strip_prefix(prefix.as_bytes()) {
            let data = rest
                .strip_suffix(br#""}}}"#)
                .expect("frame ends after data");
            assert!(
                data.iter().all(|&b| b == b'a'),
                "unexpected bytes in output"
            );
            bytes += data.len() as u64;
            events += 1;
            continue;
        }
        let frame = parse_frame(&line);
        if frame["id"] == "during-pause" {
            assert_eq!(frame["result"]["ok"], true);
            ping_answered = true;
        } else if event_type(&frame) == Some("process.output") {
            bytes += payload(&frame)["data"].as_str().unwrap().len() as u64;
            events += 1;
        } else if is_exit_of(&frame, proc) {
            break payload(&frame).clone();
        }
    };
    let elapsed = started.elapsed();
    assert!(
        ping_answered,
        "the request sent during the pause was answered before the exit event"
    );
    assert_eq!(bytes, SLOW_READER_BYTES, "every byte arrives");
    assert!(
        longest_line < 64 * 1024,
        "a {longest_line}-byte line: output events must fit common 64 KiB line readers"
    );
    assert_eq!(
        status_of(&exit),
        json!({"proc": proc, "code": 0, "signal": null, "cause": "exit"})
    );

    let stats = gw.stats();
    let queue_peak = as_u64(&stats["outbound_high_water_mark"]);
    let hwm = proc_mem_bytes(pid, "VmHWM").unwrap_or(0);
    eprintln!(
        "slow reader: {bytes} bytes in {events} output events over {elapsed:?}; \
         RSS baseline {baseline_rss} B, peak during the 3 s pause {peak_rss} B ({samples} samples), \
         VmHWM over the whole run {hwm} B; outbound queue peak {queue_peak} B; \
         {queued_in_pipe} B sat in the stdout pipe during the pause; longest line {longest_line} B"
    );
    assert!(
        peak_rss < RSS_CEILING,
        "gateway RSS reached {peak_rss} bytes while the reader paused (ceiling {RSS_CEILING})"
    );
    // Backpressure held the queue near the high-water mark (4 MiB) instead
    // of growing toward the 200 MB the child wrote.
    assert!(
        queue_peak < 6 * 1024 * 1024,
        "outbound queue peaked at {queue_peak} bytes"
    );
}

// ---------------------------------------------------------------------------
// 6, 7. shutdown
// ---------------------------------------------------------------------------

/// Issue test 6: SIGTERM to the gateway while a child ignores SIGTERM and has
/// a background grandchild: both are killed by group, the exit event is
/// queued, and the gateway is gone within grace + 200 ms.
#[test]
fn sigterm_kills_a_term_ignoring_child_and_its_grandchild_within_grace() {
    let mut gw = Client::new(&["--shutdown-grace", "1"]);
    let script = "trap '' TERM; sleep 1000 & echo $!; wait; echo survived";
    let (proc, child_pid) = gw.spawn(json!({"argv": ["sh", "-c", script]}));
    gw.read_until(PATIENCE, |f| event_type(f) == Some("process.output"));
    let grandchild: u32 = output(&gw.seen, proc, "stdout").trim().parse().unwrap();
    assert_eq!(
        pgrp(grandchild),
        Some(child_pid),
        "the grandchild shares the child's group"
    );

    let t0 = Instant::now();
    gw.signal(libc::SIGTERM);
    let code = gw.wait_code(PATIENCE);
    let took = t0.elapsed();
    let (after, rest) = gw.drain_stdout(PATIENCE);
    assert!(rest.is_empty());
    assert_eq!(
        output(&after, proc, "stdout"),
        "",
        "nothing after the grandchild's pid"
    );
    let frames = [std::mem::take(&mut gw.seen), after].concat();
    eprintln!("SIGTERM with a TERM-ignoring child: gateway exited {code} after {took:?}");
    assert!(took <= GRACE + EXIT_SLACK, "gateway took {took:?} to exit");
    assert_eq!(code, 0, "the kill, reap and exit event fit in the grace");
    assert_eq!(
        status_of(&exit_payload(&frames, proc)),
        json!({"proc": proc, "code": null, "signal": "SIGKILL", "cause": "shutdown"})
    );
    assert_gone(&[child_pid, grandchild], "after the gateway exited");
}

/// Issue test 7: stdin EOF with `sleep 100` running: the child is terminated
/// within the grace, its exit event is written, and the gateway exits 0.
#[test]
fn stdin_eof_terminates_a_running_sleep_within_grace_and_exits_zero() {
    let mut gw = Client::new(&["--shutdown-grace", "1"]);
    let (proc, pid) = gw.spawn(json!({"argv": ["sleep", "100"]}));
    let t0 = Instant::now();
    gw.close_stdin();
    let frames = gw.until_exit(proc, PATIENCE);
    let exit_after = t0.elapsed();
    let code = gw.wait_code(PATIENCE);
    let took = t0.elapsed();
    eprintln!("stdin EOF: exit event after {exit_after:?}, gateway exited {code} after {took:?}");
    assert_eq!(
        status_of(&exit_payload(&frames, proc)),
        json!({"proc": proc, "code": null, "signal": "SIGTERM", "cause": "shutdown"})
    );
    assert!(
        exit_after < GRACE,
        "the child was terminated after {exit_after:?}"
    );
    assert_eq!(code, 0);
    assert!(took <= GRACE + EXIT_SLACK, "gateway took {took:?} to exit");
    assert_gone(&[pid], "sleep");
}

/// On stdin EOF running children first get the chance to finish on their own,
/// so `printf '<spawn>\n' | tui-gateway` prints a short command's whole output.
#[test]
fn stdin_eof_lets_a_short_command_finish_normally() {
    let mut gw = Client::new(&[]);
    gw.send(&rpc_with(
        1,
        "process.spawn",
        json!({"argv": ["seq", "1", "20000"]}),
    ));
    gw.close_stdin();
    let (frames, rest) = gw.drain_stdout(PATIENCE);
    assert!(rest.is_empty());
    assert_eq!(gw.wait_code(PATIENCE), 0);
    let proc = as_u64(&frames[0]["result"]["proc"]);
    let expected: String = (1..=20000).map(|k| format!("{k}\n")).collect();
    assert_eq!(output(&frames, proc, "stdout"), expected);
    assert_eq!(exit_payload(&frames, proc)["code"], 0);
    assert!(
        is_exit_of(frames.last().unwrap(), proc),
        "the exit event is the last frame"
    );
}

// ---------------------------------------------------------------------------
// 8. reaping
// ---------------------------------------------------------------------------

/// Issue test 8: 50 short-lived children in one burst (their SIGCHLDs
/// collapse): 50 exit events with the right codes, and no zombie left.
#[test]
fn fifty_short_lived_children_are_all_reaped() {
    let mut gw = Client::new(&[]);
    let requests: Vec<Value> = (0..50)
        .map(|i| {
            rpc_with(
                i,
                "process.spawn",
                json!({"argv": ["sh", "-c", format!("exit {}", i % 7)]}),
            )
        })
        .collect();
    gw.send_raw(&lines(&requests));
    let mut exits: HashMap<u64, i64> = HashMap::new();
    let mut procs: HashMap<u64, i64> = HashMap::new();
    gw.read_until(LONG, |f| {
        if is_response(f) {
            let proc = f["result"]["proc"]
                .as_u64()
                .unwrap_or_else(|| panic!("spawn failed: {f}"));
            procs.insert(proc, f["id"].as_i64().unwrap());
        } else if event_type(f) == Some("process.exit") {
            let p = payload(f);
            let before = exits.insert(as_u64(&p["proc"]), p["code"].as_i64().unwrap());
            assert!(before.is_none(), "two exit events for {p}");
        }
        exits.len() == 50
    });
    assert_eq!(procs.len(), 50);
    for (proc, id) in &procs {
        assert_eq!(exits[proc], id % 7, "proc {proc}");
    }
    let zombies = zombie_children(gw.gateway_pid);
    assert!(
        zombies.is_empty(),
        "zombie children of the gateway: {zombies:?}"
    );
    let children = std::fs::read_to_string(format!("/proc/{0}/task/{0}/children", gw.gateway_pid));
    if let Ok(children) = children {
        assert_eq!(children.trim(), "", "the gateway still has children");
    }
    let stats = gw.stats();
    assert_eq!(stats["children_alive"], 0);
    assert_eq!(stats["children_reaped"], 50);
}

// ---------------------------------------------------------------------------
// 9. spawn failures
// ---------------------------------------------------------------------------

/// Issue test 9: a missing program, a bad cwd, an empty argv and non-string
/// arguments are error responses, and the gateway keeps serving.
#[test]
fn spawn_failures_are_errors_and_the_gateway_keeps_serving() {
    let mut gw = Client::new(&[]);
    let missing = gw.request_with_id(
        json!(1),
        "process.spawn",
        json!({"argv": ["/nonexistent/tui-gateway-no-such-program"]}),
    );
    assert_error(&missing, -32000, "cannot spawn");
    assert_eq!(missing["error"]["data"]["errno"], libc::ENOENT);
    assert_eq!(missing["error"]["data"]["code"], "ENOENT");

    let bad_cwd = gw.request_with_id(
        json!(2),
        "process.spawn",
        json!({"argv": ["true"], "cwd": "/nonexistent/dir"}),
    );
    assert_error(&bad_cwd, -32000, "cwd /nonexistent/dir");
    assert_eq!(bad_cwd["error"]["data"]["errno"], libc::ENOENT);

    let empty = gw.request_with_id(json!(3), "process.spawn", json!({"argv": []}));
    assert_error(&empty, -32602, "argv must not be empty");

    let not_strings = gw.request_with_id(json!(4), "process.spawn", json!({"argv": ["echo", 42]}));
    assert_error(&not_strings, -32602, "argv[1] must be a string");

    let no_params = gw.request("process.spawn", Value::Null);
    assert_error(&no_params, -32602, "needs params");
    let typo = gw.request("process.spawn", json!({"cmd": ["ls"]}));
    assert_error(&typo, -32602, "unknown parameter \"cmd\"");

    for (method, params) in [
        ("process.write", json!({"proc": 999, "data": "x"})),
        ("process.close_stdin", json!({"proc": 999})),
        ("process.signal", json!({"proc": 999, "signal": "SIGTERM"})),
    ] {
        let resp = gw.request(method, params);
        assert_error(&resp, -32602, "unknown proc 999");
    }

    // Still serving, and spawning works.
    assert_eq!(gw.call("gateway.ping", Value::Null), json!({"ok": true}));
    let (proc, _) = gw.spawn(json!({"argv": ["echo", "still here"]}));
    let frames = gw.until_exit(proc, PATIENCE);
    assert_eq!(output(&frames, proc, "stdout"), "still here\n");
    assert_eq!(gw.stats()["children_spawned"], 1);
}

/// The program is found as `execvp` finds it: in the command's own `PATH`
/// (set by `env`), skipping a directory whose file is not executable (and
/// reporting `EACCES` when no directory had a runnable one), and a file
/// without a `#!` line runs under `/bin/sh`.
#[test]
fn the_program_is_found_in_the_commands_own_path_as_execvp_finds_it() {
    let dir = temp_path("spawn-path");
    let (first, second) = (dir.join("a"), dir.join("b"));
    std::fs::create_dir_all(&first).unwrap();
    std::fs::create_dir_all(&second).unwrap();
    let write = |path: &std::path::Path, text: &str, mode: u32| {
        std::fs::write(path, text).unwrap();
        let mode = std::os::unix::fs::PermissionsExt::from_mode(mode);
        std::fs::set_permissions(path, mode).unwrap();
    };
    // Not executable in the first directory; a script with no `#!` line in
    // the second.
    write(&first.join("tgw-tool"), "echo wrong\n", 0o644);
    write(&second.join("tgw-tool"), "echo \"found $1\"\n", 0o755);
    write(&first.join("tgw-denied"), "echo never\n", 0o644);
    let path = format!("{}:{}", first.display(), second.display());

    let mut gw = Client::new(&[]);
    let (proc, _) = gw.spawn(json!({
        "argv": ["tgw-tool", "it"],
        "env": {"PATH": path},
    }));
    let frames = gw.until_exit(proc, PATIENCE);
    assert_eq!(output(&frames, proc, "stdout"), "found it\n");
    assert_eq!(exit_payload(&frames, proc)["code"], 0);

    let denied = gw.request_with_id(
        json!(1),
        "process.spawn",
        json!({"argv": ["tgw-denied"], "env": {"PATH": path}}),
    );
    assert_error(&denied, -32000, "cannot spawn");
    assert_eq!(denied["error"]["data"]["errno"], libc::EACCES);

    // The gateway's PATH does not have it: the command's PATH was used.
    let missing = gw.request_with_id(json!(2), "process.spawn", json!({"argv": ["tgw-tool"]}));
    assert_eq!(missing["error"]["data"]["errno"], libc::ENOENT);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A child starts with only fds 0, 1 and 2, no blocked or ignored signal,
/// and blocking stdio, whatever the gateway's own fds and signals are: here
/// the gateway inherits fd 7 without close-on-exec and SIGHUP ignored, and
/// passes on neither. (Each is read by the program itself, with no shell
/// between: a shell's own pipeline fds would come and go.)
#[test]
fn a_child_inherits_only_its_stdio_and_default_signals() {
    let gateway = Gateway::builder()
        .via_shell(r#"exec 7</dev/null; trap '' HUP; exec "$0" "$@""#)
        .spawn();
    let mut gw = Client::around(gateway);
    let mut run = |argv: &[&str]| {
        let (proc, _) = gw.spawn(json!({ "argv": argv }));
        let frames = gw.until_exit(proc, PATIENCE);
        output(&frames, proc, "stdout")
    };
    // 3 is the directory `ls` opens to list it.
    assert_eq!(run(&["ls", "-1", "/proc/self/fd"]), "0\n1\n2\n3\n");
    assert_eq!(
        run(&["grep", "-E", "^Sig(Blk|Ign)", "/proc/self/status"]),
        "SigBlk:\t0000000000000000\nSigIgn:\t0000000000000000\n"
    );
    let flags = run(&[
        "grep",
        "-h",
        "^flags",
        "/proc/self/fdinfo/0",
        "/proc/self/fdinfo/1",
    ]);
    assert_eq!(flags.lines().count(), 2, "{flags}");
    for line in flags.lines() {
        let octal = line.trim_start_matches("flags:").trim();
        let bits = u32::from_str_radix(octal, 8).unwrap();
        assert_eq!(bits & libc::O_NONBLOCK as u32, 0, "blocking stdio: {flags}");
    }
}

// ---------------------------------------------------------------------------
// limits and hygiene
// ---------------------------------------------------------------------------

/// `--max-processes` counts tracked processes; past it spawn is -32001.
#[test]
fn max_processes_is_enforced_until_an_exit_frees_a_slot() {
    let mut gw = Client::new(&["--max-processes", "2"]);
    let limits = &gw.ready_payload()["limits"];
    assert_eq!(limits["max_processes"], 2);
    assert_eq!(limits["child_stdin_limit_bytes"], 1024 * 1024);
    let (a, _) = gw.spawn(json!({"argv": ["sleep", "100"], "tag": {"job": "a"}}));
    let (b, _) = gw.spawn(json!({"argv": ["sleep", "100"], "stdin": "null"}));
    let third = gw.request("process.spawn", json!({"argv": ["true"]}));
    assert_error(&third, -32001, "--max-processes");
    assert_eq!(third["error"]["data"]["limit"], 2);

    let list = gw.call("process.list", Value::Null);
    assert_eq!(list.as_array().unwrap().len(), 2);
    assert_eq!(list[0]["proc"], a);
    assert_eq!(list[0]["argv"], json!(["sleep", "100"]));
    assert_eq!(list[0]["tag"], json!({"job": "a"}));
    assert_eq!(list[0]["running"], true);
    assert!(as_f64(&list[0]["started_at"]) > 1.0e9, "Unix seconds");
    assert_eq!(list[1]["tag"], Value::Null);

    let resp = gw.request("process.write", json!({"proc": b, "data": "x"}));
    assert_error(&resp, -32602, "stdin \"null\"");

    gw.call("process.signal", json!({"proc": a, "signal": "SIGKILL"}));
    gw.until_exit(a, PATIENCE);
    let (c, _) = gw.spawn(json!({"argv": ["true"]}));
    gw.until_exit(c, PATIENCE);
    gw.call("process.signal", json!({"proc": b, "signal": "SIGKILL"}));
    gw.until_exit(b, PATIENCE);
}

/// Children never see the gateway's stdio, and each leads its own group.
#[test]
fn children_get_their_own_group_and_none_of_the_gateway_stdio() {
    let mut gw = Client::new(&[]);
    let (proc, pid) = gw.spawn(json!({"argv": ["sleep", "100"]}));
    let (quiet, quiet_pid) =
        gw.spawn(json!({"argv": ["sleep", "100"], "stdin": "null", "stderr": "null"}));
    let gateway = gw.gateway_pid;
    let gateway_stdio: Vec<String> = (0..3).filter_map(|fd| fd_target(gateway, fd)).collect();
    assert_eq!(gateway_stdio.len(), 3);
    for child in [pid, quiet_pid] {
        assert_eq!(
            pgrp(child),
            Some(child),
            "pid {child} leads its own process group"
        );
        assert_ne!(pgrp(child), pgrp(gateway));
        for fd in 0..3 {
            let target = fd_target(child, fd).expect("fd open");
            assert!(
                !gateway_stdio.contains(&target),
                "child fd {fd} is the gateway's {target}"
            );
        }
        // Beyond 0-2 a child may hold only what the test process itself
        // inherited from whoever ran it (and passed on to the gateway):
        // nothing the gateway opened. The dynamic loader's own short-lived
        // fds are waited out.
        let foreign = |child: u32| -> Vec<String> {
            let Ok(dir) = std::fs::read_dir(format!("/proc/{child}/fd")) else {
                return Vec::new();
            };
            dir.flatten()
                .filter_map(|e| e.file_name().to_string_lossy().parse::<u32>().ok())
                .filter(|&fd| fd >= 3)
                .filter_map(|fd| {
                    let target = fd_target(child, fd)?;
                    let inherited = std::fs::read_link(format!("/proc/self/fd/{fd}"))
                        .map(|p| p.to_string_lossy() == target)
                        .unwrap_or(false)
                        && fd_target(gateway, fd).as_deref() == Some(target.as_str());
                    (!inherited).then(|| format!("fd {fd} -> {target}"))
                })
                .collect()
        };
        assert!(
            poll_until(PATIENCE, || foreign(child).is_empty()),
            "pid {child} holds fds the gateway opened: {:?}",
            foreign(child)
        );
    }
    assert_eq!(fd_target(quiet_pid, 0).as_deref(), Some("/dev/null"));
    assert_eq!(fd_target(quiet_pid, 2).as_deref(), Some("/dev/null"));
    for p in [proc, quiet] {
        gw.call("process.signal", json!({"proc": p, "signal": "SIGKILL"}));
        gw.until_exit(p, PATIENCE);
    }
}

/// Fds the gateway inherited from whoever started it (here fd 7, and fd 8: a
/// copy of its own stdout pipe) never reach a child: a child holding the
/// TUI's stdout pipe would keep the TUI from ever seeing EOF.
#[test]
fn fds_the_gateway_inherited_never_reach_children() {
    let gw = Gateway::builder()
        .via_shell(r#"exec 7</dev/null 8>&1; exec "$0" "$@""#)
        .spawn();
    let mut gw = Client::around(gw);
    let gateway = gw.gateway_pid;
    assert_eq!(
        fd_target(gateway, 7).as_deref(),
        Some("/dev/null"),
        "the gateway inherited fd 7"
    );
    assert_eq!(
        fd_target(gateway, 8),
        fd_target(gateway, 1),
        "fd 8 is the gateway's stdout"
    );
    let (proc, pid) = gw.spawn(json!({"argv": ["sleep", "100"]}));
    assert!(fd_target(pid, 0).is_some(), "the child is running");
    for fd in [7, 8] {
        assert_eq!(
            fd_target(pid, fd),
            None,
            "child pid {pid} holds inherited fd {fd}"
        );
    }
    gw.call("process.signal", json!({"proc": proc, "signal": "SIGKILL"}));
    gw.until_exit(proc, PATIENCE);
}

/// `env`, `clear_env` and `cwd` shape the child's environment.
#[test]
fn env_clear_env_and_cwd_apply() {
    let mut gw = Client::new(&[]);
    let (proc, _) = gw.spawn(json!({
        "argv": ["/bin/sh", "-c", "echo \"$A|${HOME-unset}|$(pwd)\""],
        "env": {"A": "1", "HOME": null},
        "cwd": "/tmp",
    }));
    let frames = gw.until_exit(proc, PATIENCE);
    assert_eq!(output(&frames, proc, "stdout"), "1|unset|/tmp\n");

    let (proc, _) =
        gw.spawn(json!({"argv": ["/usr/bin/env"], "clear_env": true, "env": {"ONLY": "me"}}));
    let frames = gw.until_exit(proc, PATIENCE);
    assert_eq!(output(&frames, proc, "stdout"), "ONLY=me\n");
}

/// `process.close_stdin` while bytes still wait in the stdin queue: they are
/// written first, then the pipe closes; the child sees every byte, then EOF.
/// Repeated in one gateway so slab keys are reused between processes (a
/// flake once lost the queued tail under heavy machine load; this pins it).
#[test]
fn close_stdin_with_bytes_still_queued_delivers_every_byte_first() {
    let mut gw = Client::new(&[]);
    for round in 0..20 {
        let (proc, _) = gw.spawn(json!({"argv": ["wc", "-c"]}));
        let w = gw.call(
            "process.write",
            json!({"proc": proc, "data": "x".repeat(300_000)}),
        );
        assert_eq!(w["queued"], 300_000);
        gw.call("process.close_stdin", json!({"proc": proc}));
        let frames = gw.until_exit(proc, PATIENCE);
        assert_eq!(
            output(&frames, proc, "stdout").trim(),
            "300000",
            "round {round}: wc saw a different count"
        );
        assert_eq!(exit_payload(&frames, proc)["code"], 0);
    }
}

/// Many short-lived children whose only output is written just before they
/// exit, 32 at a time: every one's output arrives, whole, before its exit.
/// (Aimed at the moment a pipe's last bytes and its EOF arrive together with
/// the exit, where a once-seen flake lost the last read.)
#[test]
fn the_last_bytes_of_many_short_lived_children_are_never_lost() {
    let mut gw = Client::new(&[]);
    let mut expected = HashMap::new();
    for batch in 0..8 {
        let mut procs = Vec::new();
        for i in 0..32 {
            let n = batch * 32 + i;
            let script = format!("head -c {} /dev/zero | tr '\\0' x; echo {n}", 1000 * n);
            let (proc, _) = gw.spawn(json!({"argv": ["sh", "-c", script], "stderr": "null"}));
            expected.insert(proc, format!("{}{n}\n", "x".repeat(1000 * n)));
            procs.push(proc);
        }
        for proc in procs {
            let frames = gw.until_exit(proc, LONG);
            assert_eq!(exit_payload(&frames, proc)["code"], 0);
            let got = output(&frames, proc, "stdout");
            assert!(
                got == expected[&proc],
                "proc {proc}: {} bytes, want {}",
                got.len(),
                expected[&proc].len()
            );
        }
    }
}
