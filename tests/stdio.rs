//! Stdio edge cases over real pipes, files and a pty against the built binary
//! (issue #2, tests 7, 10, 11, 13, 14): a reader that stops reading, a reader
//! that goes away, a full disk, a stderr nobody reads, regular files, a tty.

mod util;

use std::fs::File;
use std::io::Write;
use std::os::fd::{AsRawFd, OwnedFd};
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use util::*;

fn is_slow_reader_reason(reason: &str) -> bool {
    reason.starts_with("stdout stalled") || reason.starts_with("stdout reader too slow")
}

// ---------------------------------------------------------------------------
// 7. a reader that stops reading
// ---------------------------------------------------------------------------

#[test]
fn reader_pause_does_not_stop_stdin_and_stats_answer_after_resume() {
    const HARD: u64 = 32 << 20;
    // Limits roomy enough for every answer (about 4.5 MB): while answers fit
    // below the high-water mark, a client that does not read still gets
    // them all; past it, dispatch pauses (tested below with small limits).
    let mut gw = Gateway::spawn(&[
        "--stall-timeout",
        "60",
        "--outbound-high-water",
        "16MiB",
        "--outbound-soft-limit",
        "24MiB",
        "--outbound-soft-seconds",
        "60",
        "--outbound-hard-limit",
        "32MiB",
    ]);
    let pid = gw.gateway_pid;
    // About 4 MiB of requests: 4000 gateway.info (each answered with several
    // hundred bytes) and 4000 padding notifications (answered with nothing).
    let n = 4000;
    let pad = "p".repeat(1000);
    let mut input = Vec::new();
    for i in 0..n {
        input.extend_from_slice(&line(&rpc(i, "gateway.info")));
        input.extend_from_slice(&line(&notification(
            "test.padding",
            Some(json!({"pad": pad})),
        )));
    }
    assert!(input.len() > 4_000_000);
    // Nobody reads stdout while this is written: if the gateway stopped
    // reading stdin because stdout is full, this write would never finish.
    let t0 = Instant::now();
    if let Err(e) = gw.try_send_raw(&input, LONG) {
        panic!(
            "two-way pipe deadlock: {e} (stdout pipe holds {} bytes)",
            fionread(gw.stdout_fd())
        );
    }
    eprintln!(
        "wrote {} bytes of requests in {:?} while stdout was not read",
        input.len(),
        t0.elapsed()
    );
    // Deliberate pause: the reader stays away a little longer.
    std::thread::sleep(Duration::from_secs(1)); // the scenario: a reader that stays away
    assert!(
        gw.try_exit().is_none(),
        "gateway exited while the reader paused; stderr:\n{}",
        gw.stderr_text()
    );
    if let Some(rss) = proc_mem_bytes(pid, "VmRSS") {
        eprintln!("gateway VmRSS while output is queued: {} KiB", rss >> 10);
    }

    // The reader resumes.
    gw.send(&rpc("stats", "gateway.stats"));
    let mut seen = vec![false; n];
    let stats = loop {
        let r = gw.next_reply(LONG);
        if r["id"] == "stats" {
            break r;
        }
        assert!(r.get("result").is_some(), "{r}");
        let i = as_u64(&r["id"]) as usize;
        assert!(!seen[i], "id {i} answered twice");
        seen[i] = true;
    };
    let missing = seen.iter().filter(|s| !**s).count();
    assert_eq!(
        missing, 0,
        "{missing} gateway.info requests were not answered before the stats request"
    );
    let s = &stats["result"];
    let hwm = as_u64(&s["outbound_high_water_mark"]);
    eprintln!(
        "outbound_high_water_mark = {hwm}, write_stalls = {}",
        s["write_stalls"]
    );
    assert!(
        hwm <= HARD,
        "queue high-water mark {hwm} exceeds the hard limit {HARD}: {s}"
    );
    assert!(
        hwm >= 1 << 20,
        "high-water mark {hwm} < 1 MiB: the output should have queued while nobody read: {s}"
    );
    assert!(as_u64(&s["outbound_queue_bytes"]) <= HARD, "{s}");
    assert!(
        as_u64(&s["frames_dropped"]) == 0,
        "responses must never be dropped: {s}"
    );
    gw.close_stdin();
    assert_eq!(gw.wait_code(PATIENCE), 0);
}

#[test]
fn a_stopped_reader_pauses_every_producer_below_the_hard_limit_and_loses_nothing() {
    const HIGH: u64 = 256 << 10;
    const HARD: u64 = 2 << 20;
    let mut gw = Gateway::spawn(&[
        "--outbound-high-water",
        "256KiB",
        "--outbound-low-water",
        "64KiB",
        "--outbound-hard-limit",
        "2MiB",
        "--outbound-soft-limit",
        "1MiB",
        "--outbound-soft-seconds",
        "60",
        "--stall-timeout",
        "60",
    ]);
    let n = 6000;
    let reqs: Vec<Value> = (0..n).map(|i| rpc(i, "gateway.info")).collect();
    let input = lines(&reqs);
    // Nobody reads: the gateway answers until the queue reaches its
    // high-water mark, then stops reading stdin, and the pipe fills.
    let mut rest = input.as_slice();
    loop {
        let k = gw.write_some(rest);
        rest = &rest[k..];
        assert!(
            !rest.is_empty(),
            "the gateway kept reading with a full queue"
        );
        if k == 0 && poll_fd(gw.stdin_fd(), libc::POLLOUT, Duration::from_secs(2)) == 0 {
            break;
        }
    }
    assert!(
        gw.try_exit().is_none(),
        "reaching the high-water mark must never end the gateway; stderr:\n{}",
        gw.stderr_text()
    );
    // The reader comes back: every answer arrives, in order, none dropped.
    let mut next = 0u64;
    let deadline = Instant::now() + LONG;
    while next < n {
        assert!(Instant::now() < deadline, "answers stopped at {next}");
        if !rest.is_empty() {
            let k = gw.write_some(rest);
            rest = &rest[k..];
        }
        if gw.read_available(1 << 20) == 0 {
            poll_fd(gw.stdout_fd(), libc::POLLIN, Duration::from_millis(10));
        }
        while let Some(frame) = gw.take_frame() {
            if frame.get("id").is_some() {
                assert_eq!(frame["id"], next, "answers in order, none lost");
                next += 1;
            }
        }
    }
    let s = gw.stats();
    let hwm = as_u64(&s["outbound_high_water_mark"]);
    eprintln!("outbound high-water mark {hwm} (mark {HIGH}, hard limit {HARD})");
    assert!(
        hwm <= HIGH + 64 * 1024,
        "dispatch passed the mark by more than one answer: {s}"
    );
    assert_eq!(as_u64(&s["frames_refused"]), 0, "{s}");
    assert_eq!(as_u64(&s["frames_dropped"]), 0, "{s}");
    gw.close_stdin();
    assert_eq!(gw.wait_code(PATIENCE), 0);
}

#[test]
fn soft_limit_held_too_long_exits_3() {
    let mut gw = Gateway::spawn(&[
        "--outbound-soft-limit",
        "256KiB",
        "--outbound-soft-seconds",
        "0.5",
        "--stall-timeout",
        "60",
    ]);
    let reqs: Vec<Value> = (0..4000).map(|i| rpc(i, "gateway.info")).collect();
    let _ = gw.try_send_raw(&lines(&reqs), LONG);
    assert_eq!(gw.wait_code(PATIENCE), 3, "stderr:\n{}", gw.stderr_text());
    let reason = gw.exit_reason();
    assert!(is_slow_reader_reason(&reason), "reason: {reason}");
}

#[test]
fn stall_timeout_with_nobody_reading_exits_3_with_reason() {
    let log = TempFile::new("crash.log");
    let mut gw = Gateway::builder()
        .args([
            "--stall-timeout",
            "0.5",
            "--crash-log",
            log.path().to_str().unwrap(),
        ])
        .spawn();
    gw.fill_stdout(1000);
    let t0 = Instant::now();
    let code = gw.wait_code(PATIENCE);
    eprintln!("exited {:?} after the pipe was found full", t0.elapsed());
    assert_eq!(code, 3, "stderr:\n{}", gw.stderr_text());
    let reason = gw.exit_reason();
    assert!(is_slow_reader_reason(&reason), "reason: {reason}");
    assert_eq!(crash_log_exit_reason(&log), reason);
}

#[test]
fn slow_but_steady_reader_is_not_declared_stalled() {
    // --stall-timeout bounds the time without progress, not the time output
    // stays queued: a reader that keeps taking a little at a time is served
    // even though the queue stays non-empty longer than the timeout.
    let stall = Duration::from_secs(2);
    let mut gw = Gateway::spawn(&["--stall-timeout", "2"]);
    let n = 3000;
    let reqs: Vec<Value> = (0..n).map(|i| rpc(i, "gateway.info")).collect();
    gw.send_raw(&lines(&reqs));
    let t0 = Instant::now();
    let mut last_read = Instant::now();
    let mut max_gap = Duration::ZERO;
    let mut answered = 0;
    while answered < n {
        // Deliberate pacing: this reader takes at most 16 KiB every 20 ms.
        std::thread::sleep(Duration::from_millis(20)); // the scenario: a slow, steady reader
        let got = gw.read_available(16 * 1024);
        if got > 0 {
            max_gap = max_gap.max(last_read.elapsed());
            last_read = Instant::now();
        }
        while let Some(f) = gw.take_frame() {
            assert!(f.get("result").is_some(), "{f}");
            answered += 1;
        }
        assert!(
            !gw.stdout_eof(),
            "stdout closed after {answered} answers, {:?} into a steady read (longest gap between reads {max_gap:?}); stderr:\n{}",
            t0.elapsed(),
            gw.stderr_text()
        );
        assert!(t0.elapsed() < LONG, "reading {n} answers took too long");
    }
    let took = t0.elapsed();
    eprintln!("read {n} answers in {took:?}, longest gap between reads {max_gap:?}");
    assert!(took > stall, "the read finished in {took:?}: output was not queued longer than the stall timeout, the test proves nothing");
    assert!(gw.try_exit().is_none());
    gw.close_stdin();
    assert_eq!(gw.wait_code(PATIENCE), 0);
}

// ---------------------------------------------------------------------------
// 10. stdout gone, stdout full disk
// ---------------------------------------------------------------------------

#[test]
fn stdout_closed_by_reader_exits_3_stdout_peer_gone() {
    let mut gw = Gateway::spawn(&[]);
    gw.call("gateway.ping", None);
    gw.close_stdout();
    // Give it something to write; it may be gone before all of this is sent.
    let reqs: Vec<Value> = (0..10).map(|i| rpc(i, "gateway.ping")).collect();
    let _ = gw.try_send_raw(&lines(&reqs), PATIENCE);
    let status = gw.wait_exit(PATIENCE);
    assert_eq!(code_of(status), 3, "stderr:\n{}", gw.stderr_text()); // not killed by SIGPIPE
    assert_eq!(gw.exit_reason(), "stdout peer gone");
}

#[test]
fn stdout_closed_while_idle_is_noticed_without_a_write() {
    // "write side closed" is a stdout-gone condition: epoll reports it on the
    // idle stdout fd, so the gateway must not wait for its next write.
    let mut gw = Gateway::spawn(&[]);
    gw.call("gateway.ping", None);
    gw.close_stdout();
    let status = gw.wait_exit(PATIENCE);
    assert_eq!(code_of(status), 3, "stderr:\n{}", gw.stderr_text());
    assert_eq!(gw.exit_reason(), "stdout peer gone");
}

#[test]
fn stdout_on_dev_full_exits_74_with_errno_in_reason() {
    let log = TempFile::new("crash.log");
    let full = File::options()
        .write(true)
        .open("/dev/full")
        .expect("/dev/full");
    let mut gw = Gateway::builder()
        .args(["--crash-log", log.path().to_str().unwrap()])
        .stdout(Stdio::from(full))
        .spawn();
    // Stdin stays open: the write error alone ends the gateway.
    let status = gw.wait_exit(PATIENCE);
    assert_eq!(code_of(status), 74, "stderr:\n{}", gw.stderr_text());
    let reason = gw.exit_reason();
    assert!(
        reason.contains("No space left on device") || reason.contains("os error 28"),
        "the errno must be in the reason: {reason}"
    );
    assert!(
        !reason.contains("peer gone"),
        "ENOSPC is not a disconnect: {reason}"
    );
    assert_eq!(crash_log_exit_reason(&log), reason);
}

// ---------------------------------------------------------------------------
// 11. stderr nobody reads
// ---------------------------------------------------------------------------

#[test]
fn stderr_pipe_nobody_reads_with_trace_logging_does_not_slow_pings() {
    let log = TempFile::new("crash.log");
    let mut gw = Gateway::builder()
        .env("RUST_LOG", "trace")
        .args(["--crash-log", log.path().to_str().unwrap()])
        .stderr(StderrMode::Unread {
            pipe_size: Some(4096),
            prefill: true,
        })
        .spawn();
    let err_fd = gw.stderr_unread.as_ref().unwrap().as_raw_fd();
    let cap = pipe_capacity(err_fd);
    let mut slowest = Duration::ZERO;
    for i in 0..1000 {
        if i % 10 == 0 {
            // Errors are logged at warn or above whatever the level.
            gw.send_raw(b"{not json\n");
            let r = gw.next_reply(PATIENCE);
            assert_eq!(error_code(&r), Some(-32700), "{r}");
        }
        let t0 = Instant::now();
        gw.send(&rpc(i, "gateway.ping"));
        let r = gw.recv_response(&json!(i), PATIENCE);
        slowest = slowest.max(t0.elapsed());
        assert_eq!(r["result"], json!({"ok": true}));
    }
    eprintln!("slowest ping round trip with stderr full: {slowest:?}");
    assert!(
        slowest < Duration::from_secs(2),
        "a ping took {slowest:?} while stderr was full"
    );
    let queued = fionread(err_fd);
    assert!(
        queued * 2 >= cap,
        "stderr pipe holds only {queued} of {cap} bytes: it was not full, the test proves nothing"
    );
    let stats = gw.stats();
    let drops: Vec<(&String, &Value)> = stats
        .as_object()
        .unwrap()
        .iter()
        .filter(|(k, _)| k.contains("stderr") && k.contains("drop"))
        .collect();
    assert!(
        !drops.is_empty(),
        "gateway.stats has no stderr drop counter: {stats}"
    );
    assert!(
        drops.iter().any(|(_, v)| v.as_u64().unwrap_or(0) > 0),
        "stderr was full but no drops were counted: {stats}"
    );
    gw.close_stdin();
    assert_eq!(gw.wait_code(PATIENCE), 0);
    assert_eq!(crash_log_exit_reason(&log), "stdin EOF");
}

#[test]
fn stderr_closed_by_reader_does_not_kill_the_gateway() {
    let log = TempFile::new("crash.log");
    let mut gw = Gateway::builder()
        .env("RUST_LOG", "trace")
        .args(["--crash-log", log.path().to_str().unwrap()])
        .stderr(StderrMode::Unread {
            pipe_size: None,
            prefill: false,
        })
        .spawn();
    gw.stderr_unread = None; // the reader closes stderr
    for i in 0..200 {
        gw.send_raw(b"{not json\n");
        gw.send(&rpc(i, "gateway.ping"));
        let r = gw.recv_response(&json!(i), PATIENCE);
        assert_eq!(r["result"], json!({"ok": true}));
    }
    gw.close_stdin();
    assert_eq!(gw.wait_code(PATIENCE), 0);
    assert_eq!(crash_log_exit_reason(&log), "stdin EOF");
}

// ---------------------------------------------------------------------------
// 13. regular files
// ---------------------------------------------------------------------------

fn file_requests() -> Vec<u8> {
    let mut input = Vec::new();
    input.extend_from_slice(&line(&rpc(1, "gateway.ping")));
    input.extend_from_slice(&line(&rpc("two", "gateway.info")));
    input.extend_from_slice(b"\n");
    input.extend_from_slice(&line(&rpc(3, "gateway.stats")));
    input.extend_from_slice(&line(&notification("gateway.ping", None)));
    input.extend_from_slice(&line(&rpc_with(4, "client.capabilities", json!({}))));
    input.extend_from_slice(&line(&rpc(5, "no.such")));
    input.extend_from_slice(b"{\"jsonrpc\":\"2.0\",\"method\":\"gateway.ping\",\"id\":6}\r\n");
    input
}

fn check_file_answers(text: &str) {
    let frames: Vec<Value> = text
        .split_inclusive('\n')
        .map(|l| {
            assert!(l.ends_with('\n'), "output file ends inside a frame: {l:?}");
            parse_frame(l.trim_end_matches('\n').as_bytes())
        })
        .collect();
    assert!(!frames.is_empty(), "output file is empty");
    assert_eq!(
        event_type(&frames[0]),
        Some("gateway.ready"),
        "first line: {}",
        frames[0]
    );
    let ids: Vec<Value> = frames[1..]
        .iter()
        .filter(|f| !is_event(f))
        .map(|f| f["id"].clone())
        .collect();
    assert_eq!(
        ids,
        [
            json!(1),
            json!("two"),
            json!(3),
            json!(4),
            json!(5),
            json!(6)
        ],
        "output:\n{text}"
    );
    let unknown = frames.iter().find(|f| f["id"] == 5).unwrap();
    assert_eq!(error_code(unknown), Some(-32601));
}

#[test]
fn stdin_and_stdout_as_regular_files() {
    let input = TempFile::new("requests.jsonl");
    let output = TempFile::new("out.jsonl");
    std::fs::write(input.path(), file_requests()).unwrap();
    let mut gw = Gateway::builder()
        .stdin(Stdio::from(File::open(input.path()).unwrap()))
        .stdout(Stdio::from(File::create(output.path()).unwrap()))
        .spawn();
    assert_eq!(gw.wait_code(PATIENCE), 0, "stderr:\n{}", gw.stderr_text());
    assert_eq!(gw.exit_reason(), "stdin EOF");
    check_file_answers(&output.read());
}

#[test]
fn stdout_as_regular_file_with_stdin_pipe() {
    let output = TempFile::new("out.jsonl");
    let mut gw = Gateway::builder()
        .stdout(Stdio::from(File::create(output.path()).unwrap()))
        .spawn();
    gw.send_raw(&file_requests());
    gw.close_stdin();
    assert_eq!(gw.wait_code(PATIENCE), 0, "stderr:\n{}", gw.stderr_text());
    check_file_answers(&output.read());
}

#[test]
fn stdin_as_regular_file_with_stdout_pipe() {
    let input = TempFile::new("requests.jsonl");
    std::fs::write(input.path(), file_requests()).unwrap();
    let mut gw = Gateway::builder()
        .stdin(Stdio::from(File::open(input.path()).unwrap()))
        .spawn();
    let (frames, rest) = gw.drain_stdout(PATIENCE);
    assert!(rest.is_empty());
    let ids: Vec<Value> = frames
        .iter()
        .filter(|f| !is_event(f))
        .map(|f| f["id"].clone())
        .collect();
    assert_eq!(
        ids,
        [
            json!(1),
            json!("two"),
            json!(3),
            json!(4),
            json!(5),
            json!(6)
        ]
    );
    assert_eq!(gw.wait_code(PATIENCE), 0);
}

#[test]
fn dev_null_stdin_writes_ready_then_exits_0() {
    let mut gw = Gateway::builder().stdin(Stdio::null()).spawn();
    let (frames, rest) = gw.drain_stdout(PATIENCE);
    assert!(rest.is_empty());
    assert!(frames.iter().all(is_event), "{frames:?}");
    assert_eq!(gw.wait_code(PATIENCE), 0, "stderr:\n{}", gw.stderr_text());
    assert_eq!(gw.exit_reason(), "stdin EOF");
}

// ---------------------------------------------------------------------------
// 14. a tty stdin
// ---------------------------------------------------------------------------

struct Pty {
    master: File,
    slave: OwnedFd,
}

fn open_pty() -> Pty {
    // The gateway's own opener: close-on-exec ends, a non-blocking master
    // (this test only writes a few bytes to it).
    let pair = tui_gateway::shell::sys::pty::open(tui_gateway::shell::sys::pty::Size {
        rows: 24,
        cols: 80,
    })
    .expect("openpty");
    Pty {
        master: File::from(pair.master),
        slave: pair.slave,
    }
}

/// Runs a gateway whose stdin is a pty slave (sharing the slave's open file
/// description with the test), ends it with `end`, and checks the slave's
/// file-status flags are what they were before.
fn tty_stdin_case(end: impl FnOnce(&mut Gateway, &mut File), expect_reason: &str) {
    let mut pty = open_pty();
    let fd = pty.slave.as_raw_fd();
    let before = fl_flags(fd);
    assert_eq!(before & libc::O_NONBLOCK, 0, "a fresh pty is blocking");
    // SAFETY: isatty has no memory effects.
    assert_eq!(unsafe { libc::isatty(fd) }, 1);
    let stdin = pty.slave.try_clone().expect("dup pty slave"); // same open file description
    let mut gw = Gateway::builder().stdin(Stdio::from(stdin)).spawn();

    pty.master
        .write_all(&line(&rpc("tty", "gateway.ping")))
        .expect("write to pty master");
    assert_eq!(
        gw.next_reply(PATIENCE),
        json!({"jsonrpc":"2.0","result":{"ok":true},"id":"tty"})
    );
    let during = fl_flags(fd);
    eprintln!(
        "pty flags before {before:#o}, while running {during:#o} (O_NONBLOCK {})",
        if during & libc::O_NONBLOCK != 0 {
            "set"
        } else {
            "not set"
        }
    );

    end(&mut gw, &mut pty.master);
    assert_eq!(gw.wait_code(PATIENCE), 0, "stderr:\n{}", gw.stderr_text());
    assert_eq!(gw.exit_reason(), expect_reason);
    let after = fl_flags(fd);
    assert_eq!(
        after, before,
        "the tty's file-status flags changed: before {before:#o}, after {after:#o} (O_NONBLOCK is {:#o})",
        libc::O_NONBLOCK
    );
}

#[test]
fn tty_stdin_keeps_its_original_flags_after_gateway_shutdown() {
    tty_stdin_case(
        |gw, master| {
            master
                .write_all(&line(&rpc("bye", "gateway.shutdown")))
                .unwrap();
            let r = gw.next_reply(PATIENCE);
            assert_eq!(r["id"], "bye", "{r}");
        },
        "gateway.shutdown request",
    );
}

#[test]
fn tty_stdin_keeps_its_original_flags_after_sigterm() {
    tty_stdin_case(|gw, _| gw.signal(libc::SIGTERM), "signal SIGTERM");
}

#[test]
fn tty_stdin_keeps_its_original_flags_after_eof() {
    // ^D at the start of a line: the tty reports EOF to the reader.
    tty_stdin_case(|_, master| master.write_all(&[4]).unwrap(), "stdin EOF");
}
