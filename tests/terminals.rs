//! Pseudo-terminals and a process tree nothing escapes (issue #9), against
//! the real binary with real programs: `tty`, `stty`, `python3`, an
//! interactive `sh -i` with job control, `setsid` and double-forked daemons.

mod util;

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use util::*;

const GRACE: Duration = Duration::from_secs(1);
const EXIT_SLACK: Duration = Duration::from_millis(200);

fn pty(rows: u16, cols: u16) -> Value {
    json!({"rows": rows, "cols": cols})
}

/// Reads until `proc`'s output on `stream` contains `needle`.
fn read_output_until(gw: &mut Client, proc: u64, stream: &str, needle: &str) -> String {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let text = output(&gw.seen, proc, stream);
        if text.contains(needle) {
            return text;
        }
        assert!(
            Instant::now() < deadline,
            "proc {proc} never printed {needle:?}; so far: {text:?}"
        );
        gw.read_one(deadline);
    }
}

/// The number printed right after `key` (`pid=123`), if it was printed. A
/// terminal also echoes the command typed (`echo bg=$!`), which has no digit
/// after the key.
fn printed_pid(text: &str, key: &str) -> Option<u32> {
    text.match_indices(key).find_map(|(at, _)| {
        let digits: String = text[at + key.len()..]
            .chars()
            .take_while(char::is_ascii_digit)
            .collect();
        digits.parse().ok()
    })
}

/// Reads until `proc` printed `key` followed by a number; returns it.
fn wait_for_pid(gw: &mut Client, proc: u64, stream: &str, key: &str) -> u32 {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let text = output(&gw.seen, proc, stream);
        if let Some(pid) = printed_pid(&text, key) {
            return pid;
        }
        assert!(
            Instant::now() < deadline,
            "proc {proc} never printed {key}<pid>; so far: {text:?}"
        );
        gw.read_one(deadline);
    }
}

// 1 ------------------------------------------------------------------------

#[test]
fn a_pty_child_has_a_terminal_and_a_pipe_child_does_not() {
    let mut gw = Client::new(&[]);
    let script = r#"tty; python3 -c "import sys; print(sys.stdout.isatty())""#;
    let (proc, _) = gw.spawn(json!({"argv": ["sh", "-c", script], "pty": pty(24, 80)}));
    let frames = gw.until_exit(proc, PATIENCE);
    let text = output(&frames, proc, "pty");
    assert!(text.starts_with("/dev/pts/"), "{text:?}");
    assert!(text.contains("True\r\n"), "{text:?}");
    assert_eq!(exit_payload(&frames, proc)["code"], 0);
    let listed = gw.call("process.list", Value::Null);
    assert_eq!(listed, json!([]), "gone from the list after its exit");

    let (proc, _) =
        gw.spawn(json!({"argv": ["python3", "-c", "import sys; print(sys.stdout.isatty())"]}));
    let frames = gw.until_exit(proc, PATIENCE);
    assert_eq!(output(&frames, proc, "stdout"), "False\n");
}

// 2 ------------------------------------------------------------------------

#[test]
fn stty_reports_the_spawn_size_and_a_winch_trap_sees_the_resize() {
    let mut gw = Client::new(&[]);
    let script =
        "stty size; trap 'stty size' WINCH; echo ready; while :; do sleep 10 & wait $!; done";
    let (proc, _) = gw.spawn(json!({"argv": ["sh", "-c", script], "pty": pty(30, 100)}));
    let text = read_output_until(&mut gw, proc, "pty", "ready");
    assert!(text.starts_with("30 100\r\n"), "{text:?}");
    let listed = gw.call("process.list", Value::Null);
    assert_eq!(listed[0]["pty"], pty(30, 100), "{listed}");
    let resized = gw.call(
        "process.resize",
        json!({"proc": proc, "rows": 40, "cols": 120}),
    );
    assert_eq!(resized, json!({"ok": true, "rows": 40, "cols": 120}));
    read_output_until(&mut gw, proc, "pty", "40 120");
    let listed = gw.call("process.list", Value::Null);
    assert_eq!(listed[0]["pty"], pty(40, 120));
    assert_eq!(gw.stats()["ptys_open"], 1);
    gw.call(
        "process.signal",
        json!({"proc": proc, "signal": "SIGKILL", "tree": true}),
    );
    gw.until_exit(proc, PATIENCE);
}

// 3 ------------------------------------------------------------------------

#[test]
fn ctrl_c_written_to_a_pty_interrupts_the_foreground_job() {
    let mut gw = Client::new(&[]);
    let (proc, sh) = gw.spawn(json!({
        "argv": ["sh", "-c", "echo started; sleep 100"],
        "pty": pty(24, 80),
    }));
    read_output_until(&mut gw, proc, "pty", "started");
    // "started" is printed before `sh` forks `sleep`: a Ctrl+C then reaches
    // `sh` alone, which goes on to run `sleep`. Wait for the job itself.
    assert!(
        poll_until(PATIENCE, || foreground_child_named(sh, "sleep").is_some()),
        "sleep never became the terminal's foreground job"
    );
    gw.call("process.write", json!({"proc": proc, "data": "\u{3}"}));
    let frames = gw.until_exit(proc, PATIENCE);
    let exit = exit_payload(&frames, proc);
    assert_eq!(exit["signal"], "SIGINT", "{exit}");
}

// 4 ------------------------------------------------------------------------

#[test]
fn an_interactive_shell_in_a_pty_runs_a_command_and_exits_zero() {
    let mut gw = Client::new(&[]);
    let (proc, _) = gw.spawn(json!({"argv": ["sh", "-i"], "pty": pty(24, 80)}));
    gw.call(
        "process.write",
        json!({"proc": proc, "data": "echo hi-$((6*7))\n"}),
    );
    read_output_until(&mut gw, proc, "pty", "hi-42");
    gw.call("process.write", json!({"proc": proc, "data": "exit\n"}));
    let frames = gw.until_exit(proc, PATIENCE);
    assert_eq!(exit_payload(&frames, proc)["code"], 0);
}

#[test]
fn close_stdin_on_a_pty_sends_the_eof_character() {
    let mut gw = Client::new(&[]);
    let (proc, _) = gw.spawn(json!({"argv": ["wc", "-c"], "pty": pty(24, 80)}));
    gw.call("process.write", json!({"proc": proc, "data": "12345\n"}));
    gw.call("process.close_stdin", json!({"proc": proc}));
    let frames = gw.until_exit(proc, PATIENCE);
    // The terminal echoes the line, then wc counts it (6 bytes) at EOF.
    let text = output(&frames, proc, "pty");
    assert!(text.ends_with("6\r\n"), "{text:?}");
    assert_eq!(exit_payload(&frames, proc)["code"], 0);
}

// 5 ------------------------------------------------------------------------

#[test]
fn a_program_that_prints_a_megabyte_and_exits_at_once_loses_nothing() {
    let mut gw = Client::new(&[]);
    let (proc, _) = gw.spawn(json!({
        "argv": ["sh", "-c", "head -c 1000000 /dev/zero | tr '\\0' x"],
        "pty": pty(24, 80),
    }));
    let frames = gw.until_exit(proc, LONG);
    let text = output(&frames, proc, "pty");
    assert_eq!(text.len(), 1_000_000, "every byte before process.exit");
    assert!(text.bytes().all(|b| b == b'x'));
}

// 6 ------------------------------------------------------------------------

#[test]
fn a_slow_reader_with_a_pty_child_printing_50_mb_costs_bounded_memory() {
    const BYTES: u64 = 50_000_000;
    let mut gw = Client::new(&[]);
    let pid = gw.gateway_pid;
    let script = format!("head -c {BYTES} /dev/zero | tr '\\0' a");
    let (proc, _) = gw.spawn(json!({"argv": ["sh", "-c", script], "pty": pty(24, 80)}));
    gw.send(&rpc("during-pause", "gateway.ping"));
    // The deliberate pause: the reader stays away for 2 s while the child
    // floods its terminal. This sleep IS the scenario under test.
    let pause_end = Instant::now() + Duration::from_secs(2);
    let mut peak = 0;
    while Instant::now() < pause_end {
        peak = peak.max(proc_mem_bytes(pid, "VmRSS").expect("gateway alive"));
        std::thread::sleep(Duration::from_millis(20)); // sampling interval within the pause
    }
    let mut bytes = 0u64;
    let mut ping = false;
    loop {
        let frame = gw.recv_frame(LONG).expect("stdout open");
        if frame["id"] == "during-pause" {
            ping = true;
        } else if event_type(&frame) == Some("process.output") {
            let data = payload(&frame)["data"].as_str().unwrap();
            assert!(data.bytes().all(|b| b == b'a'));
            bytes += data.len() as u64;
        } else if is_exit_of(&frame, proc) {
            assert_eq!(payload(&frame)["code"], 0);
            break;
        }
    }
    let hwm = proc_mem_bytes(pid, "VmHWM").unwrap_or(0);
    eprintln!("pty flood: {bytes} bytes, RSS peak during the pause {peak} B, VmHWM {hwm} B");
    assert!(ping, "the ping sent during the pause was answered");
    assert_eq!(bytes, BYTES, "nothing lost");
    assert!(peak < 16 << 20, "RSS {peak} bytes during the pause");
}

// 7 ------------------------------------------------------------------------

/// Starts three escapees: a `setsid` sleep, a double-forked daemon, and a
/// background job of an interactive shell in a PTY (its own process group).
/// Returns their pids, with the gateway still running.
fn start_escapees(gw: &mut Client) -> Vec<u32> {
    let quiet = ">/dev/null 2>&1 </dev/null";
    let (a, _) =
        gw.spawn(json!({"argv": ["sh", "-c", format!("setsid sleep 1000 {quiet} & echo pid=$!")]}));
    let (b, _) = gw.spawn(
        json!({"argv": ["sh", "-c", format!("( sleep 1001 {quiet} & echo pid=$! ); exit 0")]}),
    );
    let (shell, shell_pid) = gw.spawn(json!({"argv": ["sh", "-i"], "pty": pty(24, 80)}));
    gw.call(
        "process.write",
        json!({"proc": shell, "data": "sleep 1002 & echo bg=$!\n"}),
    );
    let setsid_sleep = wait_for_pid(gw, a, "stdout", "pid=");
    let daemon = wait_for_pid(gw, b, "stdout", "pid=");
    let job = wait_for_pid(gw, shell, "pty", "bg=");
    // The finished commands' exits arrive: their leftovers are orphans now.
    gw.until_exit(a, PATIENCE);
    gw.until_exit(b, PATIENCE);
    let escapees = vec![setsid_sleep, daemon, job];
    for &pid in &escapees {
        assert!(!process_gone(pid), "pid {pid} is running");
    }
    assert!(
        poll_until(PATIENCE, || pgrp(setsid_sleep) == Some(setsid_sleep)),
        "setsid made its own session and group"
    );
    assert!(
        poll_until(PATIENCE, || pgrp(job).is_some_and(|g| g != shell_pid)),
        "job control put the job in a group of its own"
    );
    assert_eq!(
        proc_ppid(daemon),
        Some(gw.gateway_pid),
        "the double-forked daemon was adopted by the gateway (a subreaper)"
    );
    escapees
}

/// Ends the gateway with `end`, then checks it exited 0 and that none of the
/// escapees outlived it, all within the grace period plus 200 ms.
fn nothing_escapes(what: &str, end: impl FnOnce(&mut Client)) {
    let mut gw = Client::new(&["--shutdown-grace", "1"]);
    let escapees = start_escapees(&mut gw);
    let started = Instant::now();
    end(&mut gw);
    assert_eq!(gw.wait_code(PATIENCE), 0, "{}", gw.stderr_text());
    for pid in escapees {
        assert!(
            poll_until(PATIENCE, || process_gone(pid)),
            "pid {pid} outlived the gateway"
        );
    }
    let took = started.elapsed();
    eprintln!("escapees gone {took:?} after {what}");
    assert!(took < GRACE + EXIT_SLACK, "{took:?}");
}

#[test]
fn nothing_escapes_a_sigterm_setsid_daemons_and_job_control_included() {
    nothing_escapes("SIGTERM", |gw| gw.signal(libc::SIGTERM));
}

#[test]
fn nothing_escapes_a_stdin_eof_either() {
    nothing_escapes("stdin EOF", |gw| gw.close_stdin());
}

/// The finding on `main`: a grandchild left in a finished process's group.
#[test]
fn a_grandchild_left_by_a_finished_command_is_killed_at_exit() {
    let mut gw = Client::new(&[]);
    let (proc, _) = gw.spawn(json!({
        "argv": ["sh", "-c", "sleep 77 >/dev/null 2>&1 </dev/null & echo $!"],
    }));
    let frames = gw.until_exit(proc, PATIENCE);
    let sleep: u32 = output(&frames, proc, "stdout").trim().parse().unwrap();
    assert!(!process_gone(sleep));
    gw.close_stdin();
    assert_eq!(gw.wait_code(PATIENCE), 0);
    assert!(
        poll_until(PATIENCE, || process_gone(sleep)),
        "sleep 77 survived"
    );
}

// 8 ------------------------------------------------------------------------

#[test]
fn adopted_orphans_are_reaped_and_never_taken_for_a_tracked_exit() {
    let mut gw = Client::new(&[]);
    let gateway = gw.gateway_pid;
    // 100 subshells each leave a short sleep behind and exit: the sleeps
    // are re-parented to the gateway and exit on their own.
    let script = "for i in $(seq 100); do ( sleep 0.2 >/dev/null 2>&1 & ); done; exit 3";
    let (proc, _) = gw.spawn(json!({"argv": ["sh", "-c", script]}));
    let frames = gw.until_exit(proc, PATIENCE);
    assert_eq!(
        exit_payload(&frames, proc)["code"],
        3,
        "the tracked exit is its own"
    );
    let reaped = poll_until(LONG, || as_u64(&gw.stats()["orphans_reaped"]) >= 100);
    assert!(reaped, "orphans reaped: {}", gw.stats()["orphans_reaped"]);
    assert!(
        poll_until(PATIENCE, || zombie_children(gateway).is_empty()),
        "zombies under the gateway: {:?}",
        zombie_children(gateway)
    );
    let exits = gw
        .seen
        .iter()
        .filter(|f| event_type(f) == Some("process.exit"))
        .count();
    assert_eq!(exits, 1, "no event for an adopted orphan");
}

// 9 ------------------------------------------------------------------------

/// An interactive shell with job control in a PTY and one background job
/// (in a process group of its own): `(proc, shell pid, job pid)`.
fn shell_with_a_job(gw: &mut Client) -> (u64, u32, u32) {
    let (shell, shell_pid) = gw.spawn(json!({"argv": ["sh", "-i"], "pty": pty(24, 80)}));
    gw.call(
        "process.write",
        json!({"proc": shell, "data": "sleep 1004 & echo bg=$!\n"}),
    );
    let job = wait_for_pid(gw, shell, "pty", "bg=");
    assert!(
        poll_until(PATIENCE, || pgrp(job).is_some_and(|g| g != shell_pid)),
        "job control put the job in a group of its own"
    );
    (shell, shell_pid, job)
}

#[test]
fn signal_with_tree_stops_a_job_control_shell_and_its_background_job() {
    let mut gw = Client::new(&[]);
    let (shell, _, job) = shell_with_a_job(&mut gw);
    let r = gw.call(
        "process.signal",
        json!({"proc": shell, "signal": "SIGKILL", "tree": true}),
    );
    assert_eq!(r["signal"], "SIGKILL");
    let frames = gw.until_exit(shell, PATIENCE);
    assert_eq!(exit_payload(&frames, shell)["signal"], "SIGKILL");
    assert!(
        poll_until(PATIENCE, || process_gone(job)),
        "the job survived tree: true"
    );
}

#[test]
fn signal_without_tree_reaches_only_the_group() {
    let mut gw = Client::new(&[]);
    let (shell, shell_pid, job) = shell_with_a_job(&mut gw);
    gw.call(
        "process.signal",
        json!({"proc": shell, "signal": "SIGKILL"}),
    );
    assert!(
        poll_until(PATIENCE, || process_gone(shell_pid)),
        "the shell died"
    );
    // The job, in a group of its own, still runs and still holds the
    // terminal: the shell is listed as exited, and its process.exit waits
    // for the terminal to close, after all output.
    assert!(!process_gone(job), "the job is not in the shell's group");
    let reaped = poll_until(PATIENCE, || {
        gw.call("process.list", Value::Null)[0]["running"] == false
    });
    assert!(reaped, "{}", gw.call("process.list", Value::Null));
    assert!(
        !gw.seen.iter().any(|f| is_exit_of(f, shell)),
        "no exit while the terminal is open"
    );
    // SAFETY: kill has no memory effects; this job was started by the test.
    unsafe { libc::kill(job as i32, libc::SIGKILL) };
    let frames = gw.until_exit(shell, PATIENCE);
    assert_eq!(exit_payload(&frames, shell)["signal"], "SIGKILL");
}

// 10 -----------------------------------------------------------------------

#[test]
fn bad_pty_params_are_invalid_params_naming_the_parameter() {
    let mut gw = Client::new(&[]);
    let cases = [
        (
            json!({"argv": ["true"], "pty": {"rows": 0, "cols": 80}}),
            "pty.rows",
        ),
        (
            json!({"argv": ["true"], "pty": {"rows": 24, "cols": 10001}}),
            "pty.cols",
        ),
        (
            json!({"argv": ["true"], "pty": pty(24, 80), "stdin": "null"}),
            "stdin",
        ),
        (
            json!({"argv": ["true"], "pty": pty(24, 80), "stderr": "merge"}),
            "stderr",
        ),
        (json!({"argv": ["true"], "pty": {"rows": 24}}), "pty.cols"),
    ];
    for (params, needle) in cases {
        let resp = gw.request("process.spawn", params.clone());
        assert_error(&resp, -32602, needle);
    }
    let (proc, _) = gw.spawn(json!({"argv": ["sleep", "1000"]}));
    let resp = gw.request(
        "process.resize",
        json!({"proc": proc, "rows": 10, "cols": 10}),
    );
    assert_error(&resp, -32602, "pty");
    let resp = gw.request(
        "process.signal",
        json!({"proc": proc, "signal": "SIGKILL", "tree": "yes"}),
    );
    assert_error(&resp, -32602, "tree");
    gw.call("process.signal", json!({"proc": proc, "signal": "SIGKILL"}));
    gw.until_exit(proc, PATIENCE);
}
