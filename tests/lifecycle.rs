//! Lifecycle over real pipes against the built binary (issue #2, tests 6, 8,
//! 9, 12): stdin EOF, signals, `gateway.shutdown`, the CLI, parent death,
//! exit reasons and the crash log.

mod util;

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use util::*;

/// The slack the issue allows past the grace for a forced exit.
const SLACK: Duration = Duration::from_millis(200);

// ---------------------------------------------------------------------------
// 6. stdin EOF
// ---------------------------------------------------------------------------

#[test]
fn stdin_eof_with_many_requests_in_flight_answers_every_one_then_exits_0_within_grace() {
    let grace = Duration::from_secs(2);
    let mut gw = Gateway::spawn(&["--shutdown-grace", "2"]);
    let methods = [
        "gateway.ping",
        "gateway.info",
        "gateway.stats",
        "client.capabilities",
    ];
    let n = 2000;
    let reqs: Vec<Value> = (0..n)
        .map(|i| {
            let m = methods[i % methods.len()];
            if m == "client.capabilities" {
                rpc_with(i, m, json!({}))
            } else {
                rpc(i, m)
            }
        })
        .collect();
    gw.send_raw(&lines(&reqs));
    gw.close_stdin();
    let eof_at = Instant::now();
    let (frames, rest) = gw.drain_stdout(LONG);
    assert!(rest.is_empty(), "stdout ended inside a frame");
    let mut seen = vec![0u32; n];
    for f in frames.iter().filter(|f| !is_event(f)) {
        assert!(f.get("result").is_some(), "request failed: {f}");
        seen[as_u64(&f["id"]) as usize] += 1;
    }
    let missing: Vec<usize> = (0..n).filter(|&i| seen[i] == 0).collect();
    let doubled: Vec<usize> = (0..n).filter(|&i| seen[i] > 1).collect();
    assert!(
        missing.is_empty(),
        "{} requests never answered, e.g. {:?}",
        missing.len(),
        &missing[..missing.len().min(10)]
    );
    assert!(doubled.is_empty(), "answered more than once: {doubled:?}");
    let status = gw.wait_exit(PATIENCE);
    let elapsed = eof_at.elapsed();
    eprintln!("elapsed: {elapsed:?}");
    assert_eq!(code_of(status), 0, "stderr:\n{}", gw.stderr_text());
    assert!(
        elapsed <= grace + SLACK,
        "exit took {elapsed:?} after stdin EOF (grace {grace:?})"
    );
    assert_eq!(gw.exit_reason(), "stdin EOF");
}

#[test]
fn stdin_eof_while_nobody_reads_stdout_is_forced_after_grace_with_code_4() {
    let grace = Duration::from_millis(500);
    let mut gw = Gateway::spawn(&["--shutdown-grace", "0.5"]);
    gw.fill_stdout(1000);
    gw.close_stdin();
    let t0 = Instant::now();
    let status = gw.wait_exit(PATIENCE);
    let elapsed = t0.elapsed();
    eprintln!("elapsed: {elapsed:?}");
    assert_eq!(
        code_of(status),
        4,
        "a drain the deadline cut short exits 4; stderr:\n{}",
        gw.stderr_text()
    );
    assert!(
        elapsed <= grace + SLACK,
        "exit took {elapsed:?} after stdin EOF (grace {grace:?})"
    );
    let reason = gw.exit_reason();
    assert!(reason.starts_with("stdin EOF"), "reason: {reason}");
}

// ---------------------------------------------------------------------------
// 8. SIGTERM while stdout is full
// ---------------------------------------------------------------------------

#[test]
fn sigterm_with_full_stdout_exits_within_grace() {
    let grace = Duration::from_millis(500);
    let log = TempFile::new("crash.log");
    let mut gw = Gateway::builder()
        .args(["--shutdown-grace", "0.5", "--crash-log"])
        .args([log.path().to_str().unwrap()])
        .spawn();
    gw.fill_stdout(1000);
    let t0 = Instant::now();
    gw.signal(libc::SIGTERM);
    let status = gw.wait_exit(PATIENCE);
    let elapsed = t0.elapsed();
    eprintln!("elapsed: {elapsed:?}");
    let code = code_of(status);
    assert!(
        elapsed <= grace + SLACK,
        "SIGTERM with a full stdout: exit took {elapsed:?}, allowed {:?}",
        grace + SLACK
    );
    assert!(
        code == 0 || code == 4,
        "exit code {code}; stderr:\n{}",
        gw.stderr_text()
    );
    let stderr = gw.stderr_complete(PATIENCE);
    assert!(
        stderr.contains("[gateway-signal] SIGTERM"),
        "stderr:\n{stderr}"
    );
    let reason = gw.exit_reason();
    assert!(reason.starts_with("signal SIGTERM"), "reason: {reason}");
    let logged = crash_log_exit_reason(&log);
    assert!(
        logged.starts_with("signal SIGTERM"),
        "crash log reason: {logged}"
    );
}

#[test]
fn sigterm_while_idle_exits_0_with_reason() {
    let log = TempFile::new("crash.log");
    let mut gw = Gateway::builder()
        .args(["--crash-log", log.path().to_str().unwrap()])
        .spawn();
    gw.call("gateway.ping", None);
    gw.signal(libc::SIGTERM);
    // Stdin stays open: the signal alone ends the gateway.
    let (_, rest) = gw.drain_stdout(PATIENCE);
    assert!(rest.is_empty());
    assert_eq!(gw.wait_code(PATIENCE), 0, "stderr:\n{}", gw.stderr_text());
    assert!(gw
        .stderr_complete(PATIENCE)
        .contains("[gateway-signal] SIGTERM"));
    assert_eq!(gw.exit_reason(), "signal SIGTERM");
    assert_eq!(crash_log_exit_reason(&log), "signal SIGTERM");
}

#[test]
fn sighup_behaves_like_sigterm() {
    let mut gw = Gateway::spawn(&[]);
    gw.call("gateway.ping", None);
    gw.signal(libc::SIGHUP);
    assert_eq!(gw.wait_code(PATIENCE), 0, "stderr:\n{}", gw.stderr_text());
    assert!(gw
        .stderr_complete(PATIENCE)
        .contains("[gateway-signal] SIGHUP"));
    assert_eq!(gw.exit_reason(), "signal SIGHUP");
}

// ---------------------------------------------------------------------------
// 9. two SIGTERMs, SIGINT
// ---------------------------------------------------------------------------

#[test]
fn second_sigterm_exits_immediately_with_code_4() {
    // A long grace and a stdout nobody reads: the first SIGTERM's drain cannot finish.
    let mut gw = Gateway::spawn(&["--shutdown-grace", "60"]);
    gw.fill_stdout(1000);
    gw.signal(libc::SIGTERM);
    assert!(
        gw.wait_stderr("[gateway-signal] SIGTERM", PATIENCE),
        "first SIGTERM not logged; stderr:\n{}",
        gw.stderr_text()
    );
    assert!(
        gw.try_exit().is_none(),
        "the first SIGTERM must start a drain, not end at once (stdout is full)"
    );
    let t0 = Instant::now();
    gw.signal(libc::SIGTERM);
    let status = gw.wait_exit(PATIENCE);
    let elapsed = t0.elapsed();
    eprintln!("elapsed: {elapsed:?}");
    assert_eq!(code_of(status), 4, "stderr:\n{}", gw.stderr_text());
    assert!(
        elapsed < Duration::from_secs(2),
        "second SIGTERM: exit took {elapsed:?} (grace was 60 s)"
    );
    let reason = gw.exit_reason();
    assert!(reason.starts_with("signal SIGTERM"), "reason: {reason}");
}

#[test]
fn sigint_is_ignored_by_default() {
    let mut gw = Gateway::spawn(&[]);
    gw.signal(libc::SIGINT);
    // Two round trips after the signal: it has certainly been delivered.
    assert_eq!(gw.call("gateway.ping", None), json!({"ok": true}));
    assert_eq!(gw.call("gateway.ping", None), json!({"ok": true}));
    gw.stats();
    assert!(gw.try_exit().is_none(), "SIGINT must be ignored by default");
    gw.close_stdin();
    assert_eq!(gw.wait_code(PATIENCE), 0);
    assert_eq!(
        gw.exit_reason(),
        "stdin EOF",
        "SIGINT must not have started a shutdown"
    );
}

#[test]
fn sigint_shuts_down_with_sigint_shutdown_flag() {
    let mut gw = Gateway::spawn(&["--sigint", "shutdown"]);
    gw.call("gateway.ping", None);
    gw.signal(libc::SIGINT);
    assert_eq!(gw.wait_code(PATIENCE), 0, "stderr:\n{}", gw.stderr_text());
    assert!(gw
        .stderr_complete(PATIENCE)
        .contains("[gateway-signal] SIGINT"));
    assert_eq!(gw.exit_reason(), "signal SIGINT");
}

#[test]
fn sigpipe_is_ignored() {
    let mut gw = Gateway::spawn(&[]);
    gw.signal(libc::SIGPIPE);
    assert_eq!(gw.call("gateway.ping", None), json!({"ok": true}));
    assert_eq!(gw.call("gateway.ping", None), json!({"ok": true}));
    assert!(gw.try_exit().is_none(), "SIGPIPE must be ignored");
    gw.close_stdin();
    assert_eq!(gw.wait_code(PATIENCE), 0);
    assert_eq!(gw.exit_reason(), "stdin EOF");
}

// ---------------------------------------------------------------------------
// gateway.shutdown
// ---------------------------------------------------------------------------

#[test]
fn gateway_shutdown_answers_then_exits_0() {
    let log = TempFile::new("crash.log");
    let mut gw = Gateway::builder()
        .args([
            "--shutdown-grace",
            "0.5",
            "--crash-log",
            log.path().to_str().unwrap(),
        ])
        .spawn();
    gw.send(&rpc(9, "gateway.shutdown"));
    let resp = gw.next_reply(PATIENCE);
    assert_eq!(resp["id"], 9, "{resp}");
    assert_eq!(resp["result"]["ok"], true, "{resp}");
    assert_eq!(as_f64(&resp["result"]["grace_s"]), 0.5, "{resp}");
    // Stdin stays open: the request alone ends the gateway.
    let (frames, rest) = gw.drain_stdout(PATIENCE);
    assert!(rest.is_empty());
    assert!(
        frames.iter().all(is_event),
        "nothing but events after the shutdown answer: {frames:?}"
    );
    assert_eq!(gw.wait_code(PATIENCE), 0, "stderr:\n{}", gw.stderr_text());
    assert_eq!(gw.exit_reason(), "gateway.shutdown request");
    assert_eq!(crash_log_exit_reason(&log), "gateway.shutdown request");
}

#[test]
fn shutdown_grace_comes_from_env_and_alias_with_flag_precedence() {
    fn grace_of(builder: Builder) -> f64 {
        let mut gw = builder.spawn();
        let r = gw.call("gateway.shutdown", None);
        assert_eq!(gw.wait_code(PATIENCE), 0);
        as_f64(&r["grace_s"])
    }
    assert_eq!(grace_of(Gateway::builder()), 1.0, "default grace");
    assert_eq!(
        grace_of(Gateway::builder().env("HERMES_TUI_GATEWAY_SHUTDOWN_GRACE_S", "0.25")),
        0.25
    );
    assert_eq!(
        grace_of(
            Gateway::builder()
                .env("HERMES_TUI_GATEWAY_SHUTDOWN_GRACE_S", "0.25")
                .env("TUI_GATEWAY_SHUTDOWN_GRACE_S", "0.75")
        ),
        0.75
    );
    assert_eq!(
        grace_of(
            Gateway::builder()
                .env("TUI_GATEWAY_SHUTDOWN_GRACE_S", "0.75")
                .args(["--shutdown-grace", "0.125"])
        ),
        0.125
    );
}

#[test]
fn a_flag_makes_its_variables_irrelevant_and_an_empty_variable_is_unset() {
    fn info(builder: Builder) -> Value {
        let mut gw = builder.spawn();
        let info = gw.call("gateway.info", None);
        gw.close_stdin();
        assert_eq!(gw.wait_code(PATIENCE), 0);
        info["config"].clone()
    }
    // Malformed variables do not matter when the flag is given.
    let config = info(
        Gateway::builder()
            .env("HERMES_TUI_GATEWAY_SHUTDOWN_GRACE_S", "soon")
            .env("TUI_GATEWAY_SHUTDOWN_GRACE_S", "-1")
            .args(["--shutdown-grace", "0.5"]),
    );
    assert_eq!(config["shutdown-grace"], 0.5);
    // Empty means unset, for every variable alike.
    let config = info(
        Gateway::builder()
            .env("TUI_GATEWAY_SHUTDOWN_GRACE_S", "")
            .env("HERMES_TUI_GATEWAY_SHUTDOWN_GRACE_S", "")
            .env("TUI_GATEWAY_CRASH_LOG", ""),
    );
    assert_eq!(config["shutdown-grace"], 1.0);
    assert_eq!(config["crash-log"], Value::Null);
    // An empty primary variable falls through to the alias.
    let config = info(
        Gateway::builder()
            .env("TUI_GATEWAY_SHUTDOWN_GRACE_S", "")
            .env("HERMES_TUI_GATEWAY_SHUTDOWN_GRACE_S", "0.25"),
    );
    assert_eq!(config["shutdown-grace"], 0.25);
}

#[test]
fn running_out_of_memory_exits_70_with_a_reason_and_kills_the_children() {
    let log = TempFile::new("oom.log");
    // A 24 MiB address-space cap: the idle gateway maps about 4 MiB, so it
    // starts and serves, but cannot hold a 15 MiB frame and parse its
    // params too (a method that reads them: `gateway.ping` would not).
    let mut gw = Gateway::builder()
        .via_shell(r#"ulimit -v 24576 && exec "$0" "$@""#)
        .args(["--crash-log", log.path().to_str().unwrap()])
        .spawn();
    let spawned = gw.call(
        "process.spawn",
        Some(json!({"argv": ["sleep", "1000"], "stdin": "null"})),
    );
    let child = as_u64(&spawned["pid"]) as u32;
    let blob = "a".repeat(15 << 20);
    let _ = gw.try_send_raw(
        &line(&rpc_with(1, "client.capabilities", json!({"blob": blob}))),
        LONG,
    );
    let code = gw.wait_code(PATIENCE);
    assert_eq!(code, 70, "stderr:\n{}", gw.stderr_text());
    let reason = gw.exit_reason();
    assert!(
        reason.starts_with("out of memory: an allocation of"),
        "{reason}"
    );
    assert_eq!(crash_log_exit_reason(&log), reason);
    assert!(
        poll_until(PATIENCE, || process_gone(child)),
        "the child outlived the gateway"
    );
}

// ---------------------------------------------------------------------------
// crash log and exit reasons
// ---------------------------------------------------------------------------

#[test]
fn crash_log_from_env_records_stdin_eof_exit() {
    let log = TempFile::new("crash.log");
    let mut gw = Gateway::builder()
        .env("TUI_GATEWAY_CRASH_LOG", log.path().to_str().unwrap())
        .spawn();
    gw.close_stdin();
    assert_eq!(gw.wait_code(PATIENCE), 0);
    assert_eq!(gw.exit_reason(), "stdin EOF");
    assert_eq!(crash_log_exit_reason(&log), "stdin EOF");
}

#[test]
fn crash_log_is_appended_not_truncated() {
    let log = TempFile::new("crash.log");
    std::fs::write(log.path(), "earlier line\n").unwrap();
    for _ in 0..2 {
        let mut gw = Gateway::builder()
            .args(["--crash-log", log.path().to_str().unwrap()])
            .spawn();
        gw.close_stdin();
        assert_eq!(gw.wait_code(PATIENCE), 0);
    }
    let text = log.read();
    assert!(
        text.starts_with("earlier line\n"),
        "crash log was truncated:\n{text}"
    );
    let exits = crash_log_exits(&text);
    assert_eq!(exits.len(), 2, "two runs, two exit entries:\n{text}");
    assert!(exits.iter().all(|(_, r)| r == "stdin EOF"), "{text}");
}

// ---------------------------------------------------------------------------
// CLI
// ---------------------------------------------------------------------------

fn run_cli(args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    let mut b = Gateway::builder().no_ready().args(args.iter().copied());
    for (k, v) in env {
        b = b.env(k, v);
    }
    let mut gw = b.spawn();
    let code = gw.wait_code(PATIENCE);
    let (frames, rest) = {
        let mut out = Vec::new();
        loop {
            match gw.read_line(PATIENCE) {
                Read1::Line(l) => out.push(l),
                Read1::Eof(rest) => break (out, rest),
                Read1::Timeout => panic!("stdout did not close"),
            }
        }
    };
    let mut stdout = Vec::new();
    for l in frames {
        stdout.extend_from_slice(&l);
        stdout.push(b'\n');
    }
    stdout.extend_from_slice(&rest);
    let stderr = gw.stderr_complete(PATIENCE);
    (code, String::from_utf8_lossy(&stdout).into_owned(), stderr)
}

#[test]
fn bad_flag_exits_64_with_one_line_naming_it() {
    for (args, needle) in [
        (&["--nope"][..], "--nope"),
        (&["--shutdown-grace", "soon"][..], "--shutdown-grace"),
        (&["--shutdown-grace", "-1"][..], "--shutdown-grace"),
        (&["--max-frame-bytes"][..], "--max-frame-bytes"),
        (&["--max-frame-bytes", "12XB"][..], "--max-frame-bytes"),
        (&["--sigint", "maybe"][..], "--sigint"),
        (&["--stall-timeout=abc"][..], "--stall-timeout"),
    ] {
        let (code, stdout, stderr) = run_cli(args, &[]);
        assert_eq!(code, 64, "{args:?}: exit code {code}; stderr:\n{stderr}");
        assert_eq!(
            stdout, "",
            "{args:?}: nothing may reach stdout on a usage error"
        );
        let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
        assert_eq!(
            lines.len(),
            1,
            "{args:?}: expected a one-line message, got:\n{stderr}"
        );
        assert!(
            lines[0].contains(needle),
            "{args:?}: message does not name {needle}: {}",
            lines[0]
        );
    }
}

#[test]
fn bad_environment_value_exits_64_naming_the_variable() {
    let (code, stdout, stderr) = run_cli(&[], &[("TUI_GATEWAY_SHUTDOWN_GRACE_S", "soon")]);
    assert_eq!(code, 64, "stderr:\n{stderr}");
    assert_eq!(stdout, "");
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(
        lines.len(),
        1,
        "expected a one-line message, got:\n{stderr}"
    );
    assert!(
        lines[0].contains("TUI_GATEWAY_SHUTDOWN_GRACE_S"),
        "{}",
        lines[0]
    );
}

#[test]
fn help_exits_0_and_lists_every_flag_env_var_and_exit_code() {
    let (code, stdout, stderr) = run_cli(&["--help"], &[]);
    assert_eq!(code, 0, "stderr:\n{stderr}");
    for flag in tui_gateway::config::FLAGS {
        let (name, default) = (flag.name, flag.default());
        assert!(stdout.contains(name), "--help lacks {name}:\n{stdout}");
        assert!(
            stdout.contains(&default),
            "--help lacks the default {default} of {name}"
        );
    }
    for (name, ..) in tui_gateway::config::ENV_VARS {
        assert!(stdout.contains(name), "--help lacks {name}:\n{stdout}");
    }
    for code in ["64", "69", "70", "74"] {
        assert!(
            stdout.contains(code),
            "--help does not document exit code {code}"
        );
    }
    // Every method the gateway announces, and where the docs are: paths in
    // the repository, never a path on the machine that built it.
    let gw = Gateway::spawn(&[]);
    let methods = gw.ready_payload()["methods"].as_array().unwrap().clone();
    for method in methods {
        let method = method.as_str().unwrap();
        assert!(stdout.contains(method), "--help lacks {method}:\n{stdout}");
    }
    assert!(
        !stdout.contains(env!("CARGO_MANIFEST_DIR")),
        "--help names a path of the build machine:\n{stdout}"
    );
    for doc in ["docs/protocol.md", "docs/process.md", "docs/bridge.md"] {
        assert!(stdout.contains(doc), "--help lacks {doc}:\n{stdout}");
        let file = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(doc);
        assert!(file.is_file(), "--help names {doc}, which does not exist");
    }
    assert!(stdout.contains("--man") && stdout.contains("--completions"));
}

#[test]
fn man_prints_a_manual_page_generated_from_the_flag_table() {
    let (code, stdout, stderr) = run_cli(&["--man"], &[]);
    assert_eq!(code, 0, "stderr:\n{stderr}");
    assert!(stdout.starts_with(".TH TUI-GATEWAY 1"), "{stdout}");
    for section in ["NAME", "SYNOPSIS", "OPTIONS", "ENVIRONMENT", "EXIT STATUS"] {
        assert!(stdout.contains(&format!(".SH {section}\n")), "no {section}");
    }
    for flag in tui_gateway::config::FLAGS {
        let roff = flag.name.replace('-', "\\-");
        assert!(stdout.contains(&roff), "--man lacks {}", flag.name);
    }
    // Rendered by man where it is installed: every flag survives roff.
    if let Ok(out) = std::process::Command::new("sh")
        .arg("-c")
        .arg("command -v man >/dev/null && man -l - | col -b")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write;
            child.stdin.take().unwrap().write_all(stdout.as_bytes())?;
            child.wait_with_output()
        })
    {
        let text = String::from_utf8_lossy(&out.stdout);
        if out.status.success() && !text.is_empty() {
            assert!(text.contains("--backend-ready"), "{text}");
        }
    }
}

/// Runs `script` in `shell` with the completions for it loaded; its stdout.
fn complete_in(shell: &str, completions: &str, script: &str) -> String {
    let file = TempFile::new(&format!("completions-{shell}"));
    std::fs::write(file.path(), completions).unwrap();
    let script = script.replace("FILE", file.path().to_str().unwrap());
    let out = std::process::Command::new(shell)
        .args(["-c", &script])
        .output()
        .unwrap_or_else(|e| panic!("{shell} is needed (CI installs it): {e}"));
    assert!(
        out.status.success(),
        "{shell}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn completions_for_bash_zsh_and_fish_complete_flags_and_their_values() {
    let script = |shell: &str| {
        let (code, stdout, stderr) = run_cli(&["--completions", shell], &[]);
        assert_eq!(code, 0, "stderr:\n{stderr}");
        stdout
    };
    let bash = script("bash");
    let flags = complete_in(
        "bash",
        &bash,
        "source FILE; COMP_WORDS=(tui-gateway --backend-re); COMP_CWORD=1; _tui_gateway; echo ${COMPREPLY[@]}",
    );
    assert_eq!(
        flags.trim(),
        "--backend-ready --backend-ready-timeout --backend-restart"
    );
    let values = complete_in(
        "bash",
        &bash,
        "source FILE; COMP_WORDS=(tui-gateway --sigint ''); COMP_CWORD=2; _tui_gateway; echo ${COMPREPLY[@]}",
    );
    assert_eq!(values.trim(), "ignore shutdown");
    let commands = complete_in(
        "bash",
        &bash,
        "source FILE; COMP_WORDS=(tui-gateway a); COMP_CWORD=1; _tui_gateway; echo ${COMPREPLY[@]}",
    );
    assert_eq!(commands.trim(), "attach");
    let later = complete_in(
        "bash",
        &bash,
        "source FILE; COMP_WORDS=(tui-gateway --trace x a); COMP_CWORD=3; _tui_gateway; echo ${COMPREPLY[@]}",
    );
    assert_eq!(later.trim(), "", "commands only come first");

    let fish = script("fish");
    let values = complete_in(
        "fish",
        &fish,
        "source FILE; complete -C 'tui-gateway --backend-ready '",
    );
    let words: Vec<&str> = values
        .lines()
        .map(|l| l.split('\t').next().unwrap())
        .collect();
    assert_eq!(words, ["event", "none"]);
    let flags = complete_in(
        "fish",
        &fish,
        "source FILE; complete -C 'tui-gateway --tra'",
    );
    assert!(flags.starts_with("--trace\t"), "{flags}");
    let commands = complete_in("fish", &fish, "source FILE; complete -C 'tui-gateway se'");
    assert!(commands.starts_with("sessions\t"), "{commands}");

    let zsh = script("zsh");
    assert!(zsh.starts_with("#compdef tui-gateway\n"));
    complete_in("zsh", &zsh, "zsh -n FILE");
    for flag in tui_gateway::config::FLAGS {
        assert!(
            zsh.contains(&format!("'{}", flag.name)),
            "zsh lacks {}",
            flag.name
        );
    }

    let (code, _, stderr) = run_cli(&["--completions", "tcsh"], &[]);
    assert_eq!(code, 64);
    assert!(stderr.contains("unknown shell \"tcsh\""), "{stderr}");
}

#[test]
fn version_exits_0_and_prints_the_version() {
    let (code, stdout, stderr) = run_cli(&["--version"], &[]);
    assert_eq!(code, 0, "stderr:\n{stderr}");
    assert!(
        stdout.contains(env!("CARGO_PKG_VERSION")),
        "--version printed {stdout:?}"
    );
}

// ---------------------------------------------------------------------------
// 12. parent death
// ---------------------------------------------------------------------------

#[test]
fn parent_killed_with_sigkill_while_stdin_held_open_gateway_exits_within_2s() {
    let log = TempFile::new("crash.log");
    // `sh` starts the gateway in the background with sh's own stdin (a
    // non-interactive shell would give a background job /dev/null), then
    // waits. The test keeps the write end of that stdin pipe open throughout.
    let mut gw = Gateway::builder()
        .args([
            "--shutdown-grace",
            "0.5",
            "--crash-log",
            log.path().to_str().unwrap(),
        ])
        .via_shell(r#"exec 3<&0; "$0" "$@" <&3 3<&- & wait"#)
        .spawn();
    let sh_pid = gw.child.id();
    let pid = gw.gateway_pid;
    assert_ne!(
        pid, sh_pid,
        "the ready pid must be the gateway's, not the shell's"
    );
    assert_eq!(
        proc_ppid(pid),
        Some(sh_pid),
        "the gateway's parent should be the shell"
    );
    // Stdin really is the pipe we hold.
    assert_eq!(gw.call("gateway.ping", None), json!({"ok": true}));

    // SAFETY: kill has no memory effects.
    assert_eq!(
        unsafe { libc::kill(sh_pid as libc::pid_t, libc::SIGKILL) },
        0
    );
    let killed_at = Instant::now();
    gw.wait_exit(PATIENCE); // reaps the shell
    let gone = poll_until(PATIENCE, || process_gone(pid));
    let elapsed = killed_at.elapsed();
    eprintln!("elapsed: {elapsed:?}");
    assert!(
        gone,
        "gateway {pid} still running {elapsed:?} after its parent was SIGKILLed"
    );
    assert!(
        elapsed <= Duration::from_secs(2),
        "gateway took {elapsed:?} to notice its parent died"
    );
    // Stdin was never closed: the gateway left because its parent did.
    assert!(gw.stdin_fd() >= 0);
    assert_eq!(gw.exit_reason(), "parent exited");
    assert_eq!(crash_log_exit_reason(&log), "parent exited");
}
