//! The ratatui demo (examples/ratatui_demo.rs) in a real terminal: tmux at
//! 100x30. Types a coloured printf and checks the red SGR on the screen, runs
//! `sleep 30` and interrupts it with Ctrl+C, then quits with q and checks
//! that the session ended and nothing the demo started is left running.
//! Every wait polls the screen (or /proc) with a deadline; none sleeps blindly.

mod common;

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;

use common::{demo_bin, descendants, gateway_bin, pid_alive, wait_until};

fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// A tmux server of its own, killed (with everything the demo started) on drop.
struct Tmux {
    socket: String,
    tmp: PathBuf,
    seen_pids: BTreeSet<u32>,
}

impl Tmux {
    fn new() -> Tmux {
        let unique = format!(
            "tgw-rust-demo-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos()
        );
        let tmp = std::env::temp_dir().join(&unique);
        std::fs::create_dir_all(&tmp).unwrap();
        Tmux {
            socket: unique,
            tmp,
            seen_pids: BTreeSet::new(),
        }
    }

    fn run(&self, args: &[&str]) -> Result<String, String> {
        let output = Command::new("tmux")
            .arg("-L")
            .arg(&self.socket)
            .args(args)
            .output()
            .map_err(|e| {
                format!("cannot run tmux ({e}): the demo test needs it (apt-get install tmux)")
            })?;
        if output.status.success() {
            Ok(String::from_utf8_lossy(&output.stdout).into_owned())
        } else {
            Err(format!(
                "tmux {args:?} failed: {}",
                String::from_utf8_lossy(&output.stderr).trim()
            ))
        }
    }

    fn tmux(&self, args: &[&str]) -> String {
        self.run(args).unwrap_or_else(|e| panic!("{e}"))
    }

    fn screen(&self) -> Vec<String> {
        self.tmux(&["capture-pane", "-p", "-t", "demo"])
            .lines()
            .map(str::to_string)
            .collect()
    }

    fn screen_with_escapes(&self) -> Vec<String> {
        self.tmux(&["capture-pane", "-p", "-e", "-t", "demo"])
            .lines()
            .map(str::to_string)
            .collect()
    }

    /// Polls the screen until `pred` holds; on timeout, panics showing it.
    fn wait_screen(&self, what: &str, pred: impl Fn(&[String]) -> bool) -> Vec<String> {
        let mut last = Vec::new();
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            wait_until(what, || {
                last = self.screen();
                pred(&last)
            })
        }));
        if result.is_err() {
            panic!(
                "timed out waiting for {what}; the screen was:\n{}",
                last.join("\n")
            );
        }
        last
    }

    fn type_line(&self, text: &str) {
        self.tmux(&["send-keys", "-t", "demo", "-l", text]);
        self.tmux(&["send-keys", "-t", "demo", "Enter"]);
    }

    fn pids(&mut self) -> (u32, u32, Vec<u32>) {
        let text =
            std::fs::read_to_string(self.tmp.join("pids.json")).expect("the demo's pid file");
        let json: serde_json::Value = serde_json::from_str(&text).expect("pid file JSON");
        let demo = json["demo"].as_u64().unwrap() as u32;
        let gateway = json["gateway"].as_u64().unwrap() as u32;
        let commands: Vec<u32> = json["commands"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p.as_u64().unwrap() as u32)
            .collect();
        self.seen_pids.extend([demo, gateway]);
        self.seen_pids.extend(&commands);
        (demo, gateway, commands)
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.run(&["kill-server"]);
        for &pid in &self.seen_pids {
            if pid_alive(pid) {
                // SAFETY: kill(2); never leave anything behind, even on failure.
                unsafe { libc::kill(pid as i32, libc::SIGKILL) };
            }
        }
        let _ = std::fs::remove_dir_all(&self.tmp);
        // The server leaves its socket file behind.
        let socket_dir = std::env::var_os("TMUX_TMPDIR").unwrap_or_else(|| "/tmp".into());
        // SAFETY: getuid(2) cannot fail.
        let uid = unsafe { libc::getuid() };
        let _ = std::fs::remove_file(
            PathBuf::from(socket_dir)
                .join(format!("tmux-{uid}"))
                .join(&self.socket),
        );
    }
}

fn last_line(screen: &[String]) -> &str {
    screen
        .iter()
        .rev()
        .find(|l| !l.trim().is_empty())
        .map_or("", String::as_str)
}

/// The parameters of the last SGR sequence (`ESC [ ... m`) in `text`.
fn last_sgr(text: &str) -> Option<&str> {
    let start = text.rfind("\x1b[")?;
    let rest = &text[start + 2..];
    let end = rest.find('m')?;
    Some(&rest[..end])
}

/// Whether SGR params select red as the foreground: `31`, or `38;5;1`
/// (crossterm writes the basic colours as 256-colour indexes).
fn sgr_is_red(params: &str) -> bool {
    let codes: Vec<&str> = params.split([';', ':']).collect();
    codes.contains(&"31") || codes.windows(3).any(|w| w == ["38", "5", "1"])
}

#[test]
fn demo_runs_colours_interrupts_and_quits_cleanly() {
    let gateway = gateway_bin();
    let demo_bin = demo_bin();
    let mut tmux = Tmux::new();
    let pidfile = tmux.tmp.join("pids.json");
    let command = format!(
        "exec env TUI_GATEWAY_BIN={} TUI_GATEWAY_DEMO_PIDFILE={} {}",
        shell_quote(&gateway.to_string_lossy()),
        shell_quote(&pidfile.to_string_lossy()),
        shell_quote(&demo_bin.to_string_lossy()),
    );
    let t0 = Instant::now();
    tmux.tmux(&[
        "-f",
        "/dev/null",
        "new-session",
        "-d",
        "-x",
        "100",
        "-y",
        "30",
        "-s",
        "demo",
        &command,
    ]);
    assert_eq!(
        tmux.tmux(&[
            "display-message",
            "-p",
            "-t",
            "demo",
            "#{window_width}x#{window_height}"
        ])
        .trim(),
        "100x30"
    );
    tmux.wait_screen("the prompt", |s| last_line(s).starts_with("demo$"));
    wait_until("the demo's pid file", || pidfile.exists());
    let started = t0.elapsed();
    let (demo, gateway_pid, _) = tmux.pids();
    assert!(
        descendants(demo).contains(&gateway_pid),
        "the gateway is the demo's child"
    );

    // Coloured output: "red" drawn in red, "hello" not.
    tmux.type_line(r"printf 'hello\033[31mred\033[0m\n'");
    tmux.wait_screen("hellored and its exit", |s| {
        s.iter().any(|l| l.trim_end() == "hellored") && s.iter().any(|l| l.contains("[exit 0]"))
    });
    let coloured: Vec<String> = tmux
        .screen_with_escapes()
        .into_iter()
        .filter(|l| l.contains("hello") && !l.contains("printf"))
        .collect();
    assert_eq!(coloured.len(), 1, "{coloured:?}");
    let line = &coloured[0];
    let red_at = line.find("red").expect("red on the line");
    let before_red =
        last_sgr(&line[..red_at]).unwrap_or_else(|| panic!("no SGR before 'red': {line:?}"));
    assert!(
        sgr_is_red(before_red),
        "'red' is not drawn in red: {line:?}"
    );
    let hello_at = line.find("hello").unwrap();
    assert!(
        last_sgr(&line[..hello_at]).map_or(true, |p| !sgr_is_red(p)),
        "'hello' is red: {line:?}"
    );

    // A long-running command, then Ctrl+C: the command dies, the demo does not.
    tmux.type_line("sleep 30");
    tmux.wait_screen("the running status", |s| {
        s.iter().any(|l| l.contains("running: sleep 30"))
    });
    wait_until("the sleep's pid in the pid file", || {
        tmux.pids().2.len() == 2
    });
    let sh = tmux.pids().2[1];
    wait_until("the sleep process", || {
        descendants(sh).iter().chain([&sh]).any(|p| {
            std::fs::read(format!("/proc/{p}/cmdline")).is_ok_and(|c| c.starts_with(b"sleep\0"))
        })
    });
    let command_tree: BTreeSet<u32> = descendants(sh).into_iter().chain([sh]).collect();
    tmux.seen_pids.extend(&command_tree);
    let t_int = Instant::now();
    tmux.tmux(&["send-keys", "-t", "demo", "C-c"]);
    let screen = tmux.wait_screen("the prompt back after Ctrl+C", |s| {
        s.iter().any(|l| l.contains("[killed by SIGINT]"))
            && !s.iter().any(|l| l.contains("running: sleep 30"))
    });
    let interrupted = t_int.elapsed();
    wait_until("the interrupted command to be gone", || {
        command_tree.iter().all(|&p| !pid_alive(p))
    });
    assert!(pid_alive(demo), "Ctrl+C must not stop the demo");
    assert!(pid_alive(gateway_pid), "nor the gateway");
    let status = &screen[screen.len() - 2];
    assert!(
        status.contains("tui-gateway") && status.contains(&format!("pid {gateway_pid}")),
        "{status:?}"
    );

    // Quit: the session ends, and nothing is left.
    let mut everything: BTreeSet<u32> = descendants(demo).into_iter().collect();
    everything.extend([demo, gateway_pid]);
    everything.extend(&tmux.seen_pids);
    let t_quit = Instant::now();
    tmux.tmux(&["send-keys", "-t", "demo", "q"]);
    wait_until(
        "the demo, its gateway and their children to be gone",
        || everything.iter().all(|&p| !pid_alive(p)),
    );
    wait_until("the tmux session to end", || {
        tmux.run(&["has-session", "-t", "demo"]).is_err()
    });
    eprintln!(
        "ratatui demo in tmux 100x30: prompt after {:.2}s, Ctrl+C to prompt {:.2}s, q to all gone {:.2}s, {} pids checked",
        started.as_secs_f64(),
        interrupted.as_secs_f64(),
        t_quit.elapsed().as_secs_f64(),
        everything.len()
    );
}
