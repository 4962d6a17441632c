//! The hermes recipe (`examples/hermes/run.sh`) in a session: the real,
//! unmodified hermes-agent TUI (Node/Ink, in tmux) runs its Python backend
//! through `tui-gateway --session NAME -- python -m tui_gateway.entry`
//! against the offline fake model (`examples/hermes/fake_openai.py`, paced so
//! that a reply streams for about ten seconds). The TUI is killed mid-turn
//! (SIGKILL: the terminal closed); the session goes on detached and the
//! backend finishes the turn; the TUI started again attaches (cursorless)
//! and finds the same backend process, and the frames of the turn that were
//! produced while it was away are written to it. Then the session is ended
//! and nothing is left running.
//!
//! The second test leaves the TUI the normal way instead: `/quit` typed
//! mid-turn. hermes SIGTERMs its gateway child and exits; that child is the
//! session, and a SIGTERM from the session's own parent only detaches the
//! stdio client (docs/sessions.md, "What detaches and what ends"), so the
//! same steps follow: detached, the turn finished, the TUI started again
//! finds the same backend and the whole reply, the session ended cleanly.
//!
//! hermes-agent 0.19.0 is installed from PyPI into a virtualenv under the
//! cargo target directory (`target/hermes-session/venv`) on the first run
//! and reused afterwards (PyPI access is needed once). node, tmux and
//! python3 (with venv) are required: without them the test fails, saying
//! what is missing.
//!
//! Every wait polls (the screen, /proc, `tui-gateway sessions`, a log) with
//! a generous deadline; none sleeps blindly. A guard kills whatever the test
//! started if it fails, and keeps the run's folder (logs, trace) for a look.

mod util;

use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};
use util::{proc_ppid, process_gone, temp_path, BIN, GATEWAY_ENV_VARS};

/// The hermes-agent release the recipe is written for.
const HERMES_AGENT: &str = "hermes-agent==0.19.0";

/// Seconds between two chunks of the fake model's reply (33 chunks).
const CHUNK_DELAY: &str = "0.3";

/// For hermes to boot (a debug gateway, a loaded machine).
const BOOT: Duration = Duration::from_secs(120);

/// For anything else that should happen on its own.
const PATIENCE: Duration = Duration::from_secs(60);

/// The text of the fake model's reply: how it starts and ends.
const REPLY_START: &str = "Hello from the fake model!";
const REPLY_END: &str = "The end.";

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The cargo target directory: the binary is `<target>/<profile>/tui-gateway`.
fn target_dir() -> PathBuf {
    Path::new(BIN)
        .parent()
        .and_then(Path::parent)
        .expect("the binary lies in <target>/<profile>/")
        .to_path_buf()
}

fn now_unix() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

/// Polls `cond` every 20 ms until it holds or `timeout` passes (a check may
/// spawn tmux or the gateway: polling faster would load the machine that
/// runs the TUI).
fn poll_until(timeout: Duration, cond: impl FnMut() -> bool) -> bool {
    util::poll_every(Duration::from_millis(20), timeout, cond)
}

fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

fn quote_path(p: &Path) -> String {
    shell_quote(&p.to_string_lossy())
}

/// Runs a program to completion; Err with what it printed when it fails.
fn run_program(program: &str, args: &[&str]) -> Result<String, String> {
    let out = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run {program}: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!(
            "{program} {args:?} failed ({}):\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

/// node, tmux and python3 must be installed: a missing one fails the test.
fn require_tools() {
    for (program, arg, package) in [
        ("node", "--version", "nodejs"),
        ("tmux", "-V", "tmux"),
        ("python3", "--version", "python3 and python3-venv"),
    ] {
        if let Err(e) = run_program(program, &[arg]) {
            panic!(
                "this test runs the real hermes-agent TUI and needs {program} \
                 (apt-get install {package}): {e}"
            );
        }
    }
}

/// The venv's Python and the TUI's entry point, installing hermes-agent
/// into `<target>/hermes-session/venv` when it is not there yet.
fn hermes_venv() -> (PathBuf, PathBuf) {
    let scratch = target_dir().join("hermes-session");
    let venv = scratch.join("venv");
    let python = venv.join("bin/python");
    let marker = venv.join(format!(".installed-{HERMES_AGENT}"));
    std::fs::create_dir_all(&scratch).unwrap();
    // Two test runs sharing the target directory install one at a time.
    let lock = std::fs::File::create(scratch.join("install.lock")).unwrap();
    // SAFETY: flock(2) on an fd this function owns; released when `lock` drops.
    let locked = unsafe { libc::flock(std::os::fd::AsRawFd::as_raw_fd(&lock), libc::LOCK_EX) };
    assert_eq!(
        locked,
        0,
        "flock {}",
        scratch.join("install.lock").display()
    );
    if !marker.exists() {
        // A half-made venv (an install that was interrupted) starts over.
        let _ = std::fs::remove_dir_all(&venv);
        if let Err(e) = run_program("python3", &["-m", "venv", &venv.to_string_lossy()]) {
            panic!("cannot create a virtualenv (apt-get install python3-venv): {e}");
        }
        let python_s = python.to_string_lossy().into_owned();
        let mut last = String::new();
        let installed = (0..2).any(|_| {
            match run_program(
                &python_s,
                &[
                    "-m",
                    "pip",
                    "install",
                    "--quiet",
                    "--disable-pip-version-check",
                    "--retries",
                    "3",
                    "--timeout",
                    "30",
                    HERMES_AGENT,
                ],
            ) {
                Ok(_) => true,
                Err(e) => {
                    last = e;
                    false
                }
            }
        });
        assert!(
            installed,
            "cannot install {HERMES_AGENT} from PyPI into {} (the first run needs the network): {last}",
            venv.display()
        );
        std::fs::write(&marker, "").unwrap();
    }
    let entry = run_program(
        &python.to_string_lossy(),
        &[
            "-c",
            "import hermes_cli, os; print(os.path.join(os.path.dirname(hermes_cli.__file__), 'tui_dist', 'entry.js'))",
        ],
    )
    .unwrap_or_else(|e| panic!("the venv's hermes_cli: {e}"));
    let entry = PathBuf::from(entry.trim());
    assert!(entry.exists(), "no TUI at {}", entry.display());
    (python, entry)
}

// ---------------------------------------------------------------------------
// processes seen through /proc
// ---------------------------------------------------------------------------

fn pids() -> Vec<u32> {
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect()
}

fn cmdline(pid: u32) -> String {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|c| String::from_utf8_lossy(&c).replace('\0', " "))
        .unwrap_or_default()
}

fn comm(pid: u32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .map(|c| c.trim_end().to_owned())
        .unwrap_or_default()
}

/// The start time of a process (field 22 of `/proc/<pid>/stat`, in clock
/// ticks since boot): with the pid, it names one process, not a reused pid.
fn start_time(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let fields: Vec<&str> = stat[stat.rfind(')')? + 1..].split_whitespace().collect();
    fields.get(19)?.parse().ok()
}

/// Live children of `parent` whose command line contains `needle`.
fn children_matching(parent: u32, needle: &str) -> Vec<u32> {
    pids()
        .into_iter()
        .filter(|&p| proc_ppid(p) == Some(parent) && !process_gone(p))
        .filter(|&p| cmdline(p).contains(needle))
        .collect()
}

/// Every live descendant of `root`.
fn descendants(root: u32) -> Vec<u32> {
    let all: Vec<(u32, Option<u32>)> = pids().into_iter().map(|p| (p, proc_ppid(p))).collect();
    let mut found = vec![root];
    let mut i = 0;
    while i < found.len() {
        let parent = found[i];
        found.extend(
            all.iter()
                .filter(|(_, pp)| *pp == Some(parent))
                .map(|(p, _)| *p),
        );
        i += 1;
    }
    found.remove(0);
    found.retain(|&p| !process_gone(p));
    found
}

/// Live processes whose environment holds `XDG_RUNTIME_DIR=<dir>`: everything
/// this run started (the tests' own process never has it).
fn processes_of_run(runtime_dir: &Path) -> Vec<(u32, String)> {
    let needle = format!("XDG_RUNTIME_DIR={}", runtime_dir.display());
    pids()
        .into_iter()
        .filter(|&p| p != std::process::id())
        .filter(|&p| {
            std::fs::read(format!("/proc/{p}/environ"))
                .map(|env| env.split(|&b| b == 0).any(|var| var == needle.as_bytes()))
                .unwrap_or(false)
        })
        .filter(|&p| !process_gone(p))
        .map(|p| (p, cmdline(p)))
        .collect()
}

fn kill(pid: u32, signal: i32) {
    // SAFETY: kill(2) has no memory effects; the pid is one this run started.
    unsafe { libc::kill(pid as i32, signal) };
}

// ---------------------------------------------------------------------------
// the run: its folder, the fake model, tmux, the session
// ---------------------------------------------------------------------------

/// One run's folder, fake model and tmux server; on drop, everything the run
/// started is killed. The folder is removed after a pass and kept (its path
/// printed) after a failure.
struct Run {
    dir: PathBuf,
    runtime: PathBuf,
    name: String,
    tmux_socket: String,
    fake: Option<Child>,
    port: u16,
}

impl Run {
    fn new() -> Run {
        // Short names: the session's socket lies in here, and a socket's
        // path must fit in 108 bytes.
        let dir = temp_path("hermes");
        let runtime = dir.join("rt");
        for d in [&dir, &runtime, &dir.join("home"), &dir.join("work")] {
            std::fs::create_dir_all(d).unwrap();
        }
        std::fs::set_permissions(&runtime, std::fs::Permissions::from_mode(0o700)).unwrap();
        let unique = dir
            .file_name()
            .unwrap()
            .to_string_lossy()
            .replace("tui-gateway-test-", "");
        Run {
            dir,
            runtime,
            name: format!("hermes-{}", std::process::id()),
            tmux_socket: format!("tgw-{unique}"),
            fake: None,
            port: 0,
        }
    }

    fn path(&self, file: &str) -> PathBuf {
        self.dir.join(file)
    }

    fn read(&self, file: &str) -> String {
        std::fs::read_to_string(self.path(file)).unwrap_or_default()
    }

    /// Starts the fake model on a free loopback port and waits until it listens.
    fn start_fake_model(&mut self) {
        let log = std::fs::File::create(self.path("fake_openai.log")).unwrap();
        let child = Command::new("python3")
            .arg(root().join("examples/hermes/fake_openai.py"))
            .arg("0")
            .env("FAKE_OPENAI_CHUNK_DELAY", CHUNK_DELAY)
            .env("XDG_RUNTIME_DIR", &self.runtime)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("python3 examples/hermes/fake_openai.py");
        self.fake = Some(child);
        let mut port = None;
        let listening = poll_until(PATIENCE, || {
            port = self
                .read("fake_openai.log")
                .lines()
                .find_map(|l| l.strip_prefix("fake_openai: listening on http://127.0.0.1:"))
                .and_then(|rest| rest.split('/').next()?.parse().ok());
            port.is_some() || self.fake.as_mut().unwrap().try_wait().unwrap().is_some()
        });
        self.port = port.unwrap_or_else(|| {
            panic!(
                "the fake model did not start listening (timed out: {}):\n{}",
                !listening,
                self.read("fake_openai.log")
            )
        });
    }

    /// HERMES_HOME, the HERMES_PYTHON wrapper (the gateway in a session, in
    /// front of the venv's Python) and the script tmux runs (the TUI).
    fn write_scripts(&self, python: &Path, entry: &Path) {
        let home = self.path("home");
        std::fs::write(
            home.join("config.yaml"),
            format!(
                "model:\n  provider: custom\n  base_url: http://127.0.0.1:{}/v1\n  api_key: sk-fake\n  default: fake-model\nsecurity:\n  allow_lazy_installs: false\n",
                self.port
            ),
        )
        .unwrap();
        // The first start is the session, and the only process that opens
        // the trace; a second start is a relay and ignores --trace. The
        // session's stderr (its [gateway-session] lines) and the relay's go
        // to a log rather than to the TUI.
        let wrapper = self.path("hermes-python");
        std::fs::write(
            &wrapper,
            format!(
                "#!/bin/sh\nexec {} --session {} --trace {} -- {} \"$@\" 2>>{}\n",
                shell_quote(BIN),
                shell_quote(&self.name),
                quote_path(&self.path("trace.ndjson")),
                quote_path(python),
                quote_path(&self.path("gateway.log")),
            ),
        )
        .unwrap();
        let tui = self.path("tui.sh");
        std::fs::write(
            &tui,
            format!(
                "#!/bin/sh\nunset {}\nexport XDG_RUNTIME_DIR={} HERMES_HOME={} HERMES_DISABLE_LAZY_INSTALLS=1 HERMES_PYTHON={} HERMES_CWD={} NODE_ENV=production\nexec node {}\n",
                GATEWAY_ENV_VARS.join(" ") + " TUI_GATEWAY_TRACE",
                quote_path(&self.runtime),
                quote_path(&home),
                quote_path(&wrapper),
                quote_path(&self.path("work")),
                quote_path(entry),
            ),
        )
        .unwrap();
        for script in [&wrapper, &tui] {
            std::fs::set_permissions(script, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
    }

    fn tmux(&self, args: &[&str]) -> Result<String, String> {
        let mut all = vec!["-L", &self.tmux_socket, "-f", "/dev/null"];
        all.extend_from_slice(args);
        run_program("tmux", &all)
    }

    fn tmux_running(&self) -> bool {
        self.tmux(&["has-session", "-t", "hermes"]).is_ok()
    }

    /// Starts the TUI in a detached 120x40 tmux session; returns node's pid.
    fn start_tui(&self) -> u32 {
        self.tmux(&[
            "new-session",
            "-d",
            "-x",
            "120",
            "-y",
            "40",
            "-s",
            "hermes",
            &self.path("tui.sh").to_string_lossy(),
        ])
        .unwrap_or_else(|e| panic!("{e}"));
        let mut node = None;
        assert!(
            poll_until(PATIENCE, || {
                node = self
                    .tmux(&["display-message", "-p", "-t", "hermes", "#{pane_pid}"])
                    .ok()
                    .and_then(|s| s.trim().parse().ok())
                    .filter(|&p| comm(p) == "node");
                node.is_some()
            }),
            "the tmux pane never ran node"
        );
        node.unwrap()
    }

    fn screen(&self) -> String {
        self.tmux(&["capture-pane", "-p", "-t", "hermes"])
            .unwrap_or_default()
    }

    /// Polls the screen until `pred` holds; on timeout, fails showing it.
    fn wait_screen(&self, what: &str, timeout: Duration, pred: impl Fn(&str) -> bool) {
        let mut last = String::new();
        if !poll_until(timeout, || {
            last = self.screen();
            pred(&last)
        }) {
            panic!(
                "timed out ({timeout:?}) waiting for {what}; the screen was:\n{last}\n\
                 gateway.log:\n{}",
                self.read("gateway.log")
            );
        }
    }

    /// Types `text` into the composer and presses Enter until `done` holds.
    /// Enter pressed in the same breath as the text may reach Ink in one
    /// read with it and be taken as part of it, so Enter waits for the text
    /// to show, and is pressed again (as a user would) while nothing
    /// happened. True once `done` holds; false after ten tries.
    fn type_and_enter(&self, text: &str, done: impl Fn() -> bool) -> bool {
        self.tmux(&["send-keys", "-t", "hermes", "-l", text])
            .unwrap();
        self.wait_screen(&format!("{text:?} in the composer"), PATIENCE, |s| {
            s.lines().any(|l| l.trim() == format!("❯ {text}"))
        });
        (0..10).any(|_| {
            // The pane may be gone already (Enter that quit the TUI).
            let _ = self.tmux(&["send-keys", "-t", "hermes", "Enter"]);
            poll_until(Duration::from_secs(5), &done)
        })
    }

    /// Types `text` into the composer and submits it: Enter until the
    /// backend has the prompt (`prompt.submit` in the trace).
    fn submit_prompt(&self, text: &str) {
        let submitted = || {
            self.trace()
                .iter()
                .any(|r| r.pointer("/frame/method") == Some(&json!("prompt.submit")))
        };
        let sent = self.type_and_enter(text, submitted);
        assert!(
            sent,
            "the prompt was never submitted; the screen:\n{}",
            self.screen()
        );
    }

    fn gateway(&self, args: &[&str]) -> Command {
        let mut command = Command::new(BIN);
        command.args(args).env("XDG_RUNTIME_DIR", &self.runtime);
        for var in GATEWAY_ENV_VARS {
            command.env_remove(var);
        }
        command
    }

    /// This run's session as `tui-gateway sessions --json` shows it.
    fn session(&self) -> Option<Value> {
        let out = self
            .gateway(&["sessions", "--json"])
            .stdin(Stdio::null())
            .output()
            .expect("tui-gateway sessions --json");
        assert!(
            out.status.success(),
            "tui-gateway sessions --json: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let list: Value = serde_json::from_slice(&out.stdout).expect("sessions --json is JSON");
        list.as_array()
            .expect("sessions --json is an array")
            .iter()
            .find(|s| s["name"] == self.name.as_str())
            .cloned()
    }

    /// Polls `tui-gateway sessions --json` until the session is listed
    /// `attached` (or not).
    fn wait_session(&self, attached: bool) -> Value {
        let mut last = None;
        assert!(
            poll_until(PATIENCE, || {
                last = self.session();
                last.as_ref().is_some_and(|s| s["attached"] == attached)
            }),
            "session {} never showed attached={attached}; last seen: {last:?}\ngateway.log:\n{}",
            self.name,
            self.read("gateway.log")
        );
        last.unwrap()
    }

    /// The trace's records (whole lines only: the file may be being written).
    fn trace(&self) -> Vec<Value> {
        self.read("trace.ndjson")
            .lines()
            .map(|l| serde_json::from_str(l).expect("a trace record is JSON"))
            .collect()
    }
}

impl Drop for Run {
    fn drop(&mut self) {
        // Everything this run started carries its XDG_RUNTIME_DIR (the TUI
        // first, so it cannot start another gateway); a session killed takes
        // its descendants with it, the rest is killed here.
        for round in 0..3 {
            for (pid, _) in processes_of_run(&self.runtime) {
                kill(pid, libc::SIGKILL);
            }
            if round == 0 {
                let _ = self.tmux(&["kill-server"]);
            }
        }
        if let Some(mut fake) = self.fake.take() {
            let _ = fake.kill();
            let _ = fake.wait();
        }
        let socket_dir = std::env::var_os("TMUX_TMPDIR").unwrap_or_else(|| "/tmp".into());
        // SAFETY: getuid(2) cannot fail.
        let uid = unsafe { libc::getuid() };
        let _ = std::fs::remove_file(
            PathBuf::from(socket_dir)
                .join(format!("tmux-{uid}"))
                .join(&self.tmux_socket),
        );
        if std::thread::panicking() {
            eprintln!(
                "hermes_session: the run's folder (logs, trace) is kept: {}",
                self.dir.display()
            );
        } else {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

// ---------------------------------------------------------------------------
// the trace
// ---------------------------------------------------------------------------

fn record_time(r: &Value) -> f64 {
    r["t"].as_f64().expect("a trace record has t")
}

fn is_out(r: &Value) -> bool {
    r["dir"] == "out"
}

/// The event type and its session_id, for an event frame.
fn event_of(r: &Value) -> Option<(&str, &str)> {
    let params = r.pointer("/frame/params")?;
    Some((
        params.get("type")?.as_str()?,
        params
            .get("session_id")
            .and_then(Value::as_str)
            .unwrap_or(""),
    ))
}

fn describe(records: &[&Value]) -> String {
    records
        .iter()
        .map(|r| {
            let s = r.to_string();
            s.chars().take(200).collect::<String>()
        })
        .collect::<Vec<_>>()
        .join("\n")
}

// ---------------------------------------------------------------------------
// the steps both tests take
// ---------------------------------------------------------------------------

/// The session and backend the first start of the TUI made.
struct Booted {
    /// The first TUI's node.
    node: u32,
    /// The session as `tui-gateway sessions --json` first listed it.
    first: Value,
    session_pid: u32,
    backend: u32,
    backend_started: u64,
}

/// A run with the fake model up and the TUI started: the session (the TUI's
/// child, through HERMES_PYTHON) and its one backend.
fn boot() -> (Run, Booted) {
    require_tools();
    let (python, entry) = hermes_venv();
    let mut run = Run::new();
    run.start_fake_model();
    run.write_scripts(&python, &entry);

    let node = run.start_tui();
    run.wait_screen("the TUI to be ready", BOOT, |s| s.contains("─ ready │"));
    let first = run.wait_session(true);
    let session_pid = first["pid"].as_u64().unwrap() as u32;
    assert_eq!(
        proc_ppid(session_pid),
        Some(node),
        "the first start is the session itself, the TUI's child: {first}"
    );
    let mut backends = Vec::new();
    assert!(
        poll_until(PATIENCE, || {
            backends = children_matching(session_pid, "tui_gateway.entry");
            !backends.is_empty()
        }),
        "no backend (python -m tui_gateway.entry) under the session {session_pid}"
    );
    assert_eq!(backends.len(), 1, "one backend: {backends:?}");
    let backend = backends[0];
    let backend_started = start_time(backend).unwrap();
    (
        run,
        Booted {
            node,
            first,
            session_pid,
            backend,
            backend_started,
        },
    )
}

/// A prompt, and the reply starting to stream on the screen.
fn start_a_turn(run: &Run) {
    run.submit_prompt("say hello");
    run.wait_screen("the reply to start streaming", PATIENCE, |s| {
        s.contains(REPLY_START)
    });
}

/// The first TUI is gone mid-turn: the session lives on, detached, with the
/// same backend, which finishes the turn while nobody is attached (the fake
/// model sends its last chunk) and writes nothing. Returns when the session
/// was first seen detached.
fn goes_on_detached(run: &Run, b: &Booted) -> f64 {
    let detached = run.wait_session(false);
    let detached_at = now_unix();
    assert_eq!(detached["pid"], b.first["pid"], "{detached}");
    assert_eq!(detached["epoch"], b.first["epoch"], "{detached}");
    assert!(
        !process_gone(b.backend)
            && start_time(b.backend) == Some(b.backend_started)
            && proc_ppid(b.backend) == Some(b.session_pid),
        "the backend {} is gone with the TUI\ngateway.log:\n{}",
        b.backend,
        run.read("gateway.log")
    );
    assert!(
        !run.read("fake_openai.log").contains("stream done"),
        "the reply had finished before the TUI went: not mid-turn (slow the fake model)"
    );
    assert!(
        poll_until(PATIENCE, || !run.tmux_running()),
        "the tmux session outlived its only pane"
    );

    assert!(
        poll_until(PATIENCE, || run
            .read("fake_openai.log")
            .contains("stream done")),
        "the backend never finished reading the reply while detached:\n{}",
        run.read("fake_openai.log")
    );
    let before_restart = run.session().expect("the session still runs");
    assert_eq!(before_restart["attached"], false, "{before_restart}");
    assert_eq!(before_restart["pid"], b.first["pid"], "{before_restart}");
    assert_eq!(
        before_restart["frames_total"], detached["frames_total"],
        "frames were counted as written while no client was attached"
    );
    assert!(
        !process_gone(b.backend) && start_time(b.backend) == Some(b.backend_started),
        "the backend {} did not outlive the turn",
        b.backend
    );
    detached_at
}

/// The TUI again: the wrapper now attaches (a relay), and the session
/// re-sends its gateway.ready and then the frames it holds; the backend is
/// the same process. Returns the new node and its relay.
fn start_again(run: &Run, b: &Booted) -> (u32, Vec<u32>) {
    let node = run.start_tui();
    run.wait_screen(
        "the restarted TUI to be ready and show the whole reply",
        BOOT,
        |s| s.contains("─ ready │") && s.contains(REPLY_END),
    );
    let again = run.wait_session(true);
    for key in ["pid", "epoch", "started"] {
        assert_eq!(again[key], b.first[key], "{key}: {again} vs {}", b.first);
    }
    let relays = children_matching(node, "tui-gateway");
    assert!(
        relays.len() == 1 && relays[0] != b.session_pid,
        "the second start should be a relay under the new TUI, not a session: {relays:?}"
    );
    assert!(
        run.read("gateway.log")
            .contains("attaching to it; the backend command given is not started"),
        "no relay note in gateway.log:\n{}",
        run.read("gateway.log")
    );
    assert!(
        !process_gone(b.backend)
            && start_time(b.backend) == Some(b.backend_started)
            && proc_ppid(b.backend) == Some(b.session_pid),
        "the backend {} is not the same process any more",
        b.backend
    );
    let everything = processes_of_run(&run.runtime);
    let all_backends: Vec<_> = everything
        .iter()
        .filter(|(p, c)| c.contains("tui_gateway.entry") && comm(*p) != "tui-gateway")
        .collect();
    assert_eq!(
        all_backends.len(),
        1,
        "one backend in all: {all_backends:?}"
    );
    (node, relays)
}

/// The trace of the session process: the turn before the TUI went (at
/// `left_at`), nothing written while detached (from `detached_at` to
/// `restarted_at`), the rest of the turn after the reattach, every delta
/// once and in order, adding up to the whole reply.
fn turn_replayed(run: &Run, left_at: f64, detached_at: f64, restarted_at: f64) {
    let trace = run.trace();
    let turn = trace
        .iter()
        .filter(|r| r["dir"] == "in" && record_time(r) < left_at)
        .find(|r| r.pointer("/frame/method") == Some(&json!("prompt.submit")))
        .expect("the prompt.submit of the turn in the trace");
    let turn_session = turn
        .pointer("/frame/params/session_id")
        .and_then(Value::as_str)
        .expect("prompt.submit names its session");
    let of_turn = |ty: &str, from: f64, to: f64| -> Vec<&Value> {
        trace
            .iter()
            .filter(|r| is_out(r) && record_time(r) > from && record_time(r) < to)
            .filter(|r| event_of(r) == Some((ty, turn_session)))
            .collect()
    };
    let before = of_turn("message.delta", 0.0, left_at);
    assert!(!before.is_empty(), "no message.delta before the TUI went");
    assert!(
        of_turn("message.complete", 0.0, left_at).is_empty(),
        "the turn was complete before the TUI went"
    );
    let while_away: Vec<&Value> = trace
        .iter()
        .filter(|r| record_time(r) > detached_at && record_time(r) < restarted_at)
        .collect();
    assert!(
        while_away.is_empty(),
        "frames went in or out while no client was attached:\n{}",
        describe(&while_away)
    );
    let after = of_turn("message.delta", restarted_at, f64::MAX);
    assert!(
        !after.is_empty(),
        "no message.delta of the turn was written to the new client"
    );
    let complete = of_turn("message.complete", restarted_at, f64::MAX);
    assert_eq!(
        complete.len(),
        1,
        "one message.complete of the turn after the reattach:\n{}",
        describe(&complete)
    );
    let complete_text = complete[0]
        .pointer("/frame/params/payload/text")
        .and_then(Value::as_str)
        .expect("message.complete carries the text");
    assert!(
        complete_text.starts_with(REPLY_START) && complete_text.ends_with(REPLY_END),
        "{complete_text:?}"
    );
    // Every delta of the turn, before and after, once and in order: not a
    // byte lost or repeated across the TUI's going.
    let streamed: String = of_turn("message.delta", 0.0, f64::MAX)
        .iter()
        .filter_map(|r| r.pointer("/frame/params/payload/text")?.as_str())
        .collect();
    assert_eq!(streamed, complete_text, "the deltas add up to the reply");
}

/// The end: the second TUI goes, then `tui-gateway attach` ends the session
/// (`gateway.end`); nothing is left: the session, the backend and all it
/// started, the socket and lock, the TUIs and tmux; then the fake model goes
/// too.
fn end_and_nothing_left(mut run: Run, b: &Booted, node: u32, relays: &[u32]) {
    kill(node, libc::SIGKILL);
    assert!(poll_until(PATIENCE, || process_gone(node)), "node {node}");
    let _ = run.tmux(&["kill-server"]);
    assert!(
        poll_until(PATIENCE, || relays.iter().all(|&r| process_gone(r))),
        "the relay outlived its TUI"
    );
    run.wait_session(false);
    let tree = descendants(b.session_pid);
    assert!(tree.contains(&b.backend), "{tree:?}");
    let mut attach = run
        .gateway(&["attach", &run.name])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("tui-gateway attach");
    let mut stdin = attach.stdin.take().unwrap();
    stdin
        .write_all(b"{\"jsonrpc\":\"2.0\",\"id\":\"end\",\"method\":\"gateway.end\"}\n")
        .unwrap();
    stdin.flush().unwrap();
    let stdout = attach.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
            .collect::<Vec<_>>()
    });
    let mut status = None;
    assert!(
        poll_until(PATIENCE, || {
            status = attach.try_wait().unwrap();
            status.is_some()
        }),
        "tui-gateway attach did not exit after gateway.end"
    );
    drop(stdin);
    let lines = reader.join().unwrap();
    assert_eq!(
        status.unwrap().code(),
        Some(0),
        "tui-gateway attach: {lines:?}"
    );
    assert!(
        lines.iter().any(|l| {
            serde_json::from_str::<Value>(l)
                .is_ok_and(|v| v["id"] == "end" && v["result"] == json!({}))
        }),
        "no answer to gateway.end: {lines:?}"
    );

    for pid in [b.session_pid, b.backend].iter().chain(&tree) {
        assert!(
            poll_until(PATIENCE, || process_gone(*pid)),
            "{pid} ({}) outlived the session",
            cmdline(*pid)
        );
    }
    assert!(run.session().is_none(), "the session is still listed");
    let sockets = run.runtime.join("tui-gateway");
    for file in [format!("{}.sock", run.name), format!("{}.lock", run.name)] {
        assert!(!sockets.join(&file).exists(), "{file} was left behind");
    }
    assert!(!run.tmux_running(), "the tmux session is still there");
    let fake = run.fake.as_mut().unwrap();
    let fake_pid = fake.id();
    let mut left = Vec::new();
    assert!(
        poll_until(PATIENCE, || {
            left = processes_of_run(&run.runtime);
            left.iter().all(|(p, _)| *p == fake_pid)
        }),
        "left running: {left:?}"
    );
    fake.kill().unwrap();
    fake.wait().unwrap();
    assert!(
        processes_of_run(&run.runtime).is_empty(),
        "the fake model outlived the run"
    );
}

// ---------------------------------------------------------------------------
// the tests
// ---------------------------------------------------------------------------

#[test]
fn the_hermes_tui_killed_mid_turn_and_started_again_finds_the_same_backend_and_the_turn_replayed() {
    let (run, b) = boot();
    start_a_turn(&run);

    // Once the reply streams, the terminal goes (SIGKILL).
    let killed_at = now_unix();
    kill(b.node, libc::SIGKILL);
    assert!(
        poll_until(PATIENCE, || process_gone(b.node)),
        "node {} survived SIGKILL",
        b.node
    );

    let detached_at = goes_on_detached(&run, &b);
    let restarted_at = now_unix();
    let (node, relays) = start_again(&run, &b);
    turn_replayed(&run, killed_at, detached_at, restarted_at);
    end_and_nothing_left(run, &b, node, &relays);
}

#[test]
fn the_hermes_tui_left_with_slash_quit_mid_turn_only_detaches_and_started_again_finds_it() {
    let (run, b) = boot();
    start_a_turn(&run);

    // Once the reply streams, the user quits the normal way: `/quit` and
    // Enter. hermes 0.19.0 asks for no confirmation and runs a slash
    // command at once even while a turn is busy: it SIGTERMs its gateway
    // child (GatewayClient.kill: `proc.kill()`, the child alone, not the
    // process group) and exits (process.exit(0)), closing the pipes.
    let quit_at = now_unix();
    let quit = run.type_and_enter("/quit", || process_gone(b.node));
    assert!(
        quit,
        "/quit did not end the TUI; the screen:\n{}",
        run.screen()
    );

    // The session was not the TUI's to end: the SIGTERM from its parent
    // only let go of the stdio client (docs/sessions.md, "What detaches and
    // what ends"), and the session says so.
    let detached_at = goes_on_detached(&run, &b);
    let log = run.read("gateway.log");
    assert!(
        log.contains(&format!(
            "[gateway-session] {}: client detached (its parent sent SIGTERM)",
            run.name
        )),
        "the session did not detach for its parent's SIGTERM:\n{log}"
    );
    assert!(
        !log.contains("[gateway-signal]") && !log.contains("[gateway-exit]"),
        "the session took /quit for an end:\n{log}"
    );

    let restarted_at = now_unix();
    let (node, relays) = start_again(&run, &b);
    turn_replayed(&run, quit_at, detached_at, restarted_at);
    end_and_nothing_left(run, &b, node, &relays);
}
