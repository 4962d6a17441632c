//! The Rust client against the real gateway binary. Every wait has a
//! deadline ([`common::DEADLINE`]); no test sleeps to wait for something.

mod common;

use std::sync::mpsc::RecvTimeoutError;
use std::time::Instant;

use common::{gateway_bin, pid_alive, DEADLINE};
use serde_json::{json, Value};
use std::time::Duration;

use tui_gateway_client::{
    BatchCall, Captured, CloseOptions, Encoding, Error, Event, ExitCause, Gateway, GatewayOptions,
    LadderStep, LinesOptions, OutputData, OutputLine, OutputPolicy, Process, ProcessEvent,
    ProcessExit, PtySize, SpawnOptions, Stream,
};

fn start() -> Gateway {
    Gateway::spawn(GatewayOptions::new().program(gateway_bin())).expect("the gateway starts")
}

fn wait(proc: &mut Process) -> ProcessExit {
    proc.wait_timeout(DEADLINE)
        .expect("wait")
        .unwrap_or_else(|| panic!("no exit within {DEADLINE:?}"))
}

/// Everything the process writes until it exits, with a deadline per event.
fn capture(proc: &mut Process) -> Captured {
    let mut captured = Captured::default();
    while let Some(event) = proc.next_event_timeout(DEADLINE) {
        match event.expect("an event") {
            ProcessEvent::Output(o) => match o.stream {
                Stream::Stdout => captured.stdout.extend_from_slice(o.data.as_bytes()),
                Stream::Stderr => captured.stderr.extend_from_slice(o.data.as_bytes()),
                _ => captured.pty.extend_from_slice(o.data.as_bytes()),
            },
            ProcessEvent::Exit(exit) => captured.exit = exit,
        }
    }
    captured
}

/// Reads output until `needle` appeared in it (with a deadline).
fn read_until(proc: &mut Process, needle: &str) -> String {
    let mut seen = String::new();
    while !seen.contains(needle) {
        match proc.next_event_timeout(DEADLINE) {
            Some(Ok(ProcessEvent::Output(o))) => seen.push_str(&o.data.to_text()),
            other => panic!("waiting for {needle:?} in {seen:?}, got {other:?}"),
        }
    }
    seen
}

fn sh(script: &str) -> [String; 3] {
    ["sh".into(), "-c".into(), script.into()]
}

#[test]
fn ready_ping_info_and_a_clean_close() {
    let gw = start();
    let ready = gw.ready();
    assert_eq!(ready.protocol, 1);
    assert_eq!(ready.pid, gw.pid());
    assert!(!ready.version.is_empty());
    assert!(
        gw.supports("process.spawn") && gw.supports("process.cancel"),
        "{:?}",
        ready.methods
    );
    assert!(ready.limits.max_processes.unwrap() >= 1);
    assert!(ready.limits.child_stdin_limit_bytes.unwrap() >= 1);

    assert!(gw.ping().expect("ping").ok);
    let info = gw.info().expect("info");
    assert_eq!(info.pid, gw.pid());
    assert_eq!(info.version, ready.version);
    assert!(
        info.config.contains_key("shutdown-grace"),
        "{:?}",
        info.config
    );
    assert!(gw.list_processes().unwrap().is_empty());

    let exit = gw.close().expect("close");
    assert!(exit.success(), "{exit}");
    assert_eq!(exit.signal, None);
    assert!(exit.orphans_killed.is_empty());
    assert!(
        !gw.notify("client.log", json!({"after": "close"})),
        "notify is false once closed"
    );
    assert_eq!(exit.exit_reason.as_deref(), Some("stdin EOF"), "{exit:?}");
    assert_eq!(exit.reason, "orderly shutdown");
    assert!(!pid_alive(gw.pid()));
    assert!(
        matches!(gw.ping(), Err(Error::Closed)),
        "a call after close"
    );
    assert_eq!(
        gw.close().expect("close again"),
        exit,
        "close is idempotent"
    );
    assert_eq!(gw.exit_status(), Some(exit));
}

#[test]
fn spawn_echo_lines_and_exit() {
    let gw = start();
    let mut proc = gw
        .spawn_process(
            sh("echo hello; echo oops >&2; printf 'no newline'; exit 3"),
            SpawnOptions::new(),
        )
        .expect("spawn");
    assert!(proc.proc() >= 1 && proc.pid() > 0);
    let exit = wait(&mut proc);
    assert_eq!(exit.code, Some(3));
    assert_eq!(exit.signal, None);
    assert_eq!(exit.cause, ExitCause::Exit);
    assert!(!exit.success());
    assert_eq!(exit.output_bytes.get("stdout"), Some(&16));
    assert_eq!(exit.output_bytes.get("stderr"), Some(&5));
    assert_eq!(exit.proc, proc.proc());
    // wait() kept the output: the lines are still there.
    let lines: Vec<OutputLine> = proc.lines().map(Result::unwrap).collect();
    let line = |stream, text: &str| OutputLine {
        stream,
        line: text.into(),
        skipped: None,
        rewrite: false,
    };
    assert!(lines.contains(&line(Stream::Stdout, "hello")), "{lines:?}");
    assert!(lines.contains(&line(Stream::Stderr, "oops")), "{lines:?}");
    assert_eq!(
        lines.last(),
        Some(&line(Stream::Stdout, "no newline")),
        "{lines:?}"
    );
    assert_eq!(lines.len(), 3);
    assert_eq!(proc.exit_status(), Some(&exit));
    assert!(proc.next_event().is_none(), "nothing after the exit");
    assert!(gw.close().unwrap().success());
}

#[test]
fn base64_output_is_exact_bytes() {
    let gw = start();
    let mut proc = gw
        .spawn_process(
            ["printf", "\\000\\001\\377"],
            SpawnOptions::new().encoding(Encoding::Base64),
        )
        .expect("spawn");
    let mut chunks = Vec::new();
    for chunk in proc.chunks() {
        let chunk = chunk.unwrap();
        assert!(matches!(chunk.data, OutputData::Bytes(_)));
        chunks.extend_from_slice(chunk.data.as_bytes());
    }
    assert_eq!(chunks, [0u8, 1, 255]);
    assert!(wait(&mut proc).success());
}

#[test]
fn pty_colour_output_and_resize() {
    let gw = start();
    let mut proc = gw
        .spawn_process(
            sh(r"printf '\033[31mred\033[0m\n'; stty size; read go; stty size"),
            SpawnOptions::new().pty(PtySize::new(80, 24)),
        )
        .expect("spawn on a pty");
    assert!(proc.is_pty());
    let seen = read_until(&mut proc, "24 80\r\n");
    assert!(
        seen.contains("\x1b[31mred\x1b[0m\r\n"),
        "the colour escape comes untouched: {seen:?}"
    );

    let size = proc
        .resize(PtySize {
            cols: 120,
            rows: 40,
        })
        .expect("resize");
    assert_eq!(size, PtySize::new(120, 40));
    proc.write("go\n").expect("write");
    let rest = capture(&mut proc);
    assert!(rest.pty_text().contains("40 120"), "{:?}", rest.pty_text());
    assert!(
        rest.stdout.is_empty() && rest.stderr.is_empty(),
        "a pty has one stream"
    );
    assert!(rest.exit.success(), "{:?}", rest.exit);
    assert!(rest.exit.output_bytes.contains_key("pty"));

    // resize is for pty processes only: a typed error otherwise.
    let mut piped = gw.spawn_process(["cat"], SpawnOptions::new()).unwrap();
    let err = piped.resize(PtySize::new(80, 24)).unwrap_err();
    assert_eq!(err.code(), Some(-32602), "{err}");
    piped.close_stdin().unwrap();
    assert!(wait(&mut piped).success());
}

#[test]
fn stdin_write_write_all_and_close_stdin_with_cat() {
    let gw = start();
    // base64 output: the exact bytes come back, 0xff included.
    let mut cat = gw
        .spawn_process(["cat"], SpawnOptions::new().encoding(Encoding::Base64))
        .expect("spawn cat");
    let accepted = cat.write("abc\n").expect("write text");
    assert_eq!(accepted.queued, 4);
    cat.write([0xffu8, 0x00, b'\n'])
        .expect("write bytes (as base64)");

    // One write larger than the child's stdin limit is refused whole: -32001.
    let limit = gw.ready().limits.child_stdin_limit_bytes.unwrap() as usize;
    let err = cat.write(vec![b'x'; limit + 1]).unwrap_err();
    assert!(err.is_overloaded(), "{err}");

    // write_all splits and waits for room.
    let big: Vec<u8> = (0..3 * limit).map(|i| b'a' + (i % 26) as u8).collect();
    let all = cat.write_all(&big).expect("write_all");
    assert_eq!(all.queued, big.len() as u64);
    assert!(cat.close_stdin().expect("close_stdin").ok);
    let got = capture(&mut cat);
    assert!(got.exit.success(), "{:?}", got.exit);
    let mut expected = b"abc\n\xff\x00\n".to_vec();
    expected.extend_from_slice(&big);
    assert_eq!(got.stdout.len(), expected.len());
    assert!(got.stdout == expected, "cat gave back other bytes");
    // After the exit: -32602 "unknown proc", which is_process_gone() recognises.
    assert!(cat.close_stdin().unwrap_err().is_process_gone());
}

#[test]
fn signal_returns_false_once_the_process_exited() {
    let gw = start();
    let mut sleep = gw
        .spawn_process(["sleep", "100"], SpawnOptions::new())
        .expect("spawn");
    assert!(
        sleep.signal("SIGTERM").expect("signal"),
        "delivered to a running process"
    );
    let exit = wait(&mut sleep);
    assert_eq!(exit.code, None);
    assert_eq!(exit.signal.as_deref(), Some("SIGTERM"));
    assert_eq!(exit.cause, ExitCause::Signal);
    assert!(
        !sleep.signal("SIGINT").expect("signal after exit"),
        "false, not an error"
    );
    assert!(!sleep.kill().unwrap());
    assert!(
        sleep.cancel(None).unwrap_err().is_process_gone(),
        "cancel after exit: -32602"
    );

    // A handle on another thread (ProcessControl) sees the same.
    let mut other = gw
        .spawn_process(["sleep", "100"], SpawnOptions::new())
        .unwrap();
    let control = other.control();
    let signaller = std::thread::spawn(move || control.signal_tree("SIGKILL"));
    assert!(signaller.join().unwrap().unwrap());
    assert_eq!(wait(&mut other).signal.as_deref(), Some("SIGKILL"));
}

#[test]
fn cancel_runs_the_ladder_to_the_end() {
    let gw = start();
    // Ignores SIGINT and SIGTERM (exec keeps ignored signals ignored).
    let mut stubborn = gw
        .spawn_process(
            sh("trap '' INT TERM; echo armed; exec sleep 100"),
            SpawnOptions::new(),
        )
        .expect("spawn");
    read_until(&mut stubborn, "armed");
    let ladder = [
        LadderStep::new("SIGINT", 100),
        LadderStep::new("SIGTERM", 100),
        LadderStep::last("SIGKILL"),
    ];
    let t0 = Instant::now();
    let result = stubborn.cancel(Some(&ladder)).expect("cancel");
    assert!(t0.elapsed() < DEADLINE);
    assert_eq!(result.proc, stubborn.proc());
    assert_eq!(result.step, 2, "{result:?}");
    assert_eq!(result.signal, "SIGKILL");
    assert_eq!(result.exit_signal.as_deref(), Some("SIGKILL"));
    // The exit event was queued before the cancel's answer.
    assert!(!stubborn.running());
    let exit = wait(&mut stubborn);
    assert_eq!(exit.cause, ExitCause::Cancel);
    assert_eq!(exit.signal.as_deref(), Some("SIGKILL"));

    // The spawn's own ladder: SIGINT is enough for sleep.
    let mut polite = gw
        .spawn_process(
            ["sleep", "100"],
            SpawnOptions::new().cancel(vec![
                LadderStep::new("SIGINT", 5000),
                LadderStep::last("SIGKILL"),
            ]),
        )
        .unwrap();
    let result = polite.cancel(None).unwrap();
    assert_eq!((result.step, result.signal.as_str()), (0, "SIGINT"));
    assert_eq!(wait(&mut polite).signal.as_deref(), Some("SIGINT"));
}

#[test]
fn timeout_and_output_limit_causes() {
    let gw = start();
    let mut slow = gw
        .spawn_process(["sleep", "100"], SpawnOptions::new().timeout_ms(200))
        .expect("spawn");
    let exit = wait(&mut slow);
    assert_eq!(exit.cause, ExitCause::Timeout);
    assert_eq!(
        exit.signal.as_deref(),
        Some("SIGINT"),
        "the default ladder's first step"
    );
    assert!(exit.duration_ms >= 200, "{exit:?}");

    let mut chatty = gw
        .spawn_process(
            ["yes"],
            SpawnOptions::new().output_limit(1000, OutputPolicy::Kill),
        )
        .unwrap();
    let mut forwarded = 0;
    let mut marker = false;
    for chunk in chatty.chunks() {
        let chunk = chunk.unwrap();
        forwarded += chunk.data.len();
        marker |= chunk.truncated;
    }
    assert_eq!(forwarded, 1000);
    assert!(marker, "a truncated marker ends the stream");
    let exit = chatty.wait().unwrap();
    assert_eq!(exit.cause, ExitCause::OutputLimit);
    assert!(exit.discarded.is_some());
}

#[test]
fn error_responses_are_typed_errors() {
    let gw = start();
    match gw.request("no.such.method", Value::Null) {
        Err(Error::Rpc {
            method,
            code,
            message,
            ..
        }) => {
            assert_eq!(method, "no.such.method");
            assert_eq!(code, -32601);
            assert!(message.contains("no.such.method"), "{message}");
        }
        other => panic!("expected -32601, got {other:?}"),
    }
    match gw.spawn_process(["/no/such/program"], SpawnOptions::new()) {
        Err(Error::Rpc {
            code: -32000,
            data: Some(data),
            message,
            ..
        }) => {
            assert_eq!(data["code"], "ENOENT", "{data}");
            assert!(message.contains("/no/such/program"), "{message}");
        }
        other => panic!("expected -32000, got {other:?}"),
    }
    let err = gw
        .request("process.spawn", json!({"args": ["true"]}))
        .unwrap_err();
    assert_eq!(err.code(), Some(-32602));
    let text = err.to_string();
    assert!(
        text.contains("process.spawn") && text.contains("-32602"),
        "{text}"
    );
    let dyn_err: Box<dyn std::error::Error + Send + Sync> = Box::new(err);
    assert!(!dyn_err.to_string().is_empty());
    // The raw call still works for the methods the client types.
    assert_eq!(
        gw.request("gateway.ping", Value::Null).unwrap(),
        json!({"ok": true})
    );
}

#[test]
fn close_ends_running_processes_and_reports_the_exit() {
    let gw = start();
    let mut sleep = gw
        .spawn_process(["sleep", "100"], SpawnOptions::new())
        .expect("spawn");
    let pid = sleep.pid();
    let events = gw.events();
    let t0 = Instant::now();
    let exit = gw.close().expect("close");
    assert!(exit.success(), "{exit}");
    assert!(t0.elapsed() < DEADLINE);
    // The drain SIGTERMed it before the gateway exited, and said so.
    let proc_exit = wait(&mut sleep);
    assert_eq!(proc_exit.signal.as_deref(), Some("SIGTERM"));
    assert_eq!(proc_exit.cause, ExitCause::Shutdown);
    assert!(!pid_alive(pid));
    assert!(!pid_alive(gw.pid()));
    // The subscription saw the process's exit, then the gateway's.
    let mut seen = Vec::new();
    loop {
        match events.recv_timeout(DEADLINE) {
            Ok(Event::Exited(e)) => {
                assert_eq!(e, exit);
                break;
            }
            Ok(event) => seen.push(event),
            Err(RecvTimeoutError::Timeout) => panic!("no Exited event"),
            Err(RecvTimeoutError::Disconnected) => panic!("the subscription ended without Exited"),
        }
    }
    assert!(
        seen.iter()
            .any(|e| matches!(e, Event::ProcessExit(x) if x.proc == sleep.proc())),
        "{seen:?}"
    );
    assert!(matches!(
        gw.spawn_process(["true"], SpawnOptions::new()),
        Err(Error::Closed)
    ));
}

#[test]
fn a_gateway_that_dies_ends_handles_with_exited() {
    let gw = start();
    let mut sleep = gw
        .spawn_process(["sleep", "100"], SpawnOptions::new())
        .unwrap();
    // SIGKILL the gateway: its child dies with it (PR_SET_PDEATHSIG).
    // SAFETY: kill(2) on the gateway we started, which is running.
    unsafe { libc::kill(gw.pid() as i32, libc::SIGKILL) };
    match sleep.wait_timeout(DEADLINE) {
        Err(Error::Exited(exit)) => {
            assert_eq!(exit.signal.as_deref(), Some("SIGKILL"));
            assert_eq!(exit.code, None);
        }
        other => panic!("expected Exited, got {other:?}"),
    }
    assert!(matches!(gw.ping(), Err(Error::Exited(_))));
    let exit = gw.close().expect("close after death returns the exit");
    assert_eq!(exit.signal.as_deref(), Some("SIGKILL"));
}

#[test]
fn start_errors_say_what_went_wrong() {
    match Gateway::spawn(GatewayOptions::new().program("/no/such/dir/tui-gateway")) {
        Err(Error::NotFound { searched }) => {
            assert!(
                searched
                    .iter()
                    .any(|s| s.contains("/no/such/dir/tui-gateway")),
                "{searched:?}"
            )
        }
        other => panic!("expected NotFound, got {other:?}"),
    }
    match Gateway::spawn(
        GatewayOptions::new()
            .program(gateway_bin())
            .arg("--no-such-flag"),
    ) {
        Err(Error::Start {
            exit: Some(exit), ..
        }) => {
            assert_eq!(exit.code, Some(64), "{exit:?}");
            assert_eq!(exit.reason, "bad command line");
            assert!(
                exit.stderr_tail.iter().any(|l| l.contains("no-such-flag")),
                "{exit:?}"
            );
        }
        other => panic!("expected a start error, got {other:?}"),
    }
}

#[test]
fn notify_and_batch() {
    let gw = start();
    assert!(gw.notify("gateway.ping", Value::Null), "true once written");
    let entries = gw
        .batch(&[
            BatchCall::request("gateway.ping", Value::Null),
            BatchCall::notify("gateway.ping", Value::Null),
            BatchCall::request("no.such.method", json!({})),
        ])
        .expect("batch");
    assert_eq!(entries.len(), 3);
    assert_eq!(
        entries[0].as_ref().unwrap().as_ref().unwrap(),
        &json!({"ok": true})
    );
    assert!(entries[1].is_none(), "a notification has no entry");
    assert_eq!(
        entries[2].as_ref().unwrap().as_ref().unwrap_err().code(),
        Some(-32601)
    );
    assert!(gw.close().unwrap().success());
}

#[test]
fn lines_with_rewrites_and_text_as_it_comes() {
    let gw = start();
    let script = r"printf 'start\n\r10%%\r50%%\r100%%\ndone\n'; printf 'err\n' >&2";
    let mut proc = gw.spawn_process(sh(script), SpawnOptions::new()).unwrap();
    wait(&mut proc);
    let options = LinesOptions {
        stream: Some(Stream::Stdout),
        rewrites: true,
    };
    let got: Vec<(String, bool)> = proc
        .lines_with(options)
        .map(|l| l.unwrap())
        .map(|l| (l.line, l.rewrite))
        .collect();
    let want = [
        ("start", false),
        ("10%", false),
        ("50%", true),
        ("100%", true),
        ("done", false),
    ];
    assert_eq!(
        got,
        want.map(|(l, r)| (l.to_string(), r)),
        "stdout only, every carriage-return version"
    );

    // text(): a prompt without a newline comes at once. (In base64 the
    // gateway sends whole 3-byte groups until the stream ends, so a prompt
    // may wait for its last bytes there.)
    let mut prompt = gw
        .spawn_process(
            sh("printf 'Password: '; read pw; echo \"got $pw\""),
            SpawnOptions::new(),
        )
        .unwrap();
    let first = prompt.text().next().expect("some text").expect("text");
    assert_eq!(
        (first.stream, first.text.as_str()),
        (Stream::Stdout, "Password: ")
    );
    prompt.write("sesame\n").unwrap();
    let rest: String = prompt.text().map(|t| t.unwrap().text).collect();
    assert_eq!(rest, "got sesame\n");
    assert!(gw.close().unwrap().success());
}

#[test]
fn close_with_shutdown_sends_gateway_shutdown_first() {
    let gw = start();
    let mut sleep = gw
        .spawn_process(["sleep", "100"], SpawnOptions::new())
        .unwrap();
    let t0 = Instant::now();
    let exit = gw
        .close_with(CloseOptions {
            shutdown: true,
            ..CloseOptions::default()
        })
        .expect("close");
    assert!(exit.success(), "{exit}");
    assert_eq!(
        exit.exit_reason.as_deref(),
        Some("gateway.shutdown request"),
        "{exit:?}"
    );
    assert!(t0.elapsed() < DEADLINE);
    assert_eq!(wait(&mut sleep).signal.as_deref(), Some("SIGTERM"));
}

#[test]
fn a_spawn_given_up_on_is_killed_when_its_answer_comes() {
    // Every call of this gateway times out at once, the spawn included.
    let options = GatewayOptions::new()
        .program(gateway_bin())
        .request_timeout(Duration::from_nanos(1));
    let gw = Gateway::spawn(options).expect("start");
    match gw.spawn_process(["sleep", "100"], SpawnOptions::new()) {
        Err(Error::Timeout { method, .. }) => assert_eq!(method, "process.spawn"),
        other => panic!("expected a timeout, got {other:?}"),
    }
    // Its answer came anyway: the client kills what it started.
    common::wait_until("the abandoned sleep to be killed", || {
        gw.request_timeout("process.list", Value::Null, Some(DEADLINE))
            .unwrap()
            == json!([])
    });
    assert!(gw.close().unwrap().success());
}
