//! Sessions (`docs/sessions.md`), against the built binary, real processes
//! and real pipes and sockets: a client killed mid-stream and another
//! carrying on from its cursor without losing a byte, the same through a
//! relay chain, a long detach under a bounded journal, a thousand
//! attach/detach cycles, the security rules, one client at a time, and the
//! linger.
//!
//! Every test runs its sessions in a private `XDG_RUNTIME_DIR`, and a guard
//! kills a session a failed test left behind.

mod util;

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use util::{poll_until, proc_mem_bytes, proc_state, process_gone, temp_path, BIN, PATIENCE};

/// A private runtime directory (mode 0700), removed at the end; the
/// sessions whose pids were noted are killed if the test left them.
struct Runtime {
    dir: PathBuf,
    sessions: Vec<u32>,
}

impl Runtime {
    fn new(tag: &str) -> Runtime {
        let dir = temp_path(tag);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
        Runtime {
            dir,
            sessions: Vec::new(),
        }
    }

    fn sockets(&self) -> PathBuf {
        self.dir.join("tui-gateway")
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(BIN);
        command
            .args(args)
            .env("XDG_RUNTIME_DIR", &self.dir)
            .env_remove("RUST_LOG");
        command
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        for &pid in &self.sessions {
            if !process_gone(pid) {
                // SAFETY: kill has no memory effects; the pid is a session
                // this test started and saw alive.
                unsafe { libc::kill(pid as i32, libc::SIGKILL) };
            }
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A process spoken to over pipes: its stdout lines arrive on a channel,
/// its stderr is collected.
struct Peer {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Receiver<Vec<u8>>,
    stderr: Arc<Mutex<String>>,
    stderr_reader: Option<std::thread::JoinHandle<()>>,
}

impl Peer {
    fn spawn(mut command: Command) -> Peer {
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn");
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            let mut reader = BufReader::new(stdout);
            loop {
                let mut line = Vec::new();
                match reader.read_until(b'\n', &mut line) {
                    Ok(0) | Err(_) => return,
                    // A half line at EOF is not a frame.
                    Ok(_) if !line.ends_with(b"\n") => return,
                    Ok(_) => {
                        if tx.send(line).is_err() {
                            return;
                        }
                    }
                }
            }
        });
        let stderr = Arc::new(Mutex::new(String::new()));
        let sink = stderr.clone();
        let mut err = child.stderr.take().unwrap();
        let stderr_reader = std::thread::spawn(move || {
            let mut text = String::new();
            let _ = err.read_to_string(&mut text);
            sink.lock().unwrap().push_str(&text);
        });
        let stdin = child.stdin.take();
        Peer {
            child,
            stdin,
            lines,
            stderr,
            stderr_reader: Some(stderr_reader),
        }
    }

    fn send(&mut self, message: &Value) {
        let stdin = self.stdin.as_mut().expect("stdin open");
        let mut line = serde_json::to_vec(message).unwrap();
        line.push(b'\n');
        stdin.write_all(&line).unwrap();
        stdin.flush().unwrap();
    }

    /// The next line, within `timeout`; `None` at EOF.
    fn next(&self, timeout: Duration) -> Option<Value> {
        match self.lines.recv_timeout(timeout) {
            Ok(line) => Some(serde_json::from_slice(&line).expect("a JSON line")),
            Err(mpsc::RecvTimeoutError::Disconnected) => None,
            Err(mpsc::RecvTimeoutError::Timeout) => panic!("no line within {timeout:?}"),
        }
    }

    /// Lines until one satisfies `done`, which is returned with the count
    /// of lines read (it included).
    fn until(&self, timeout: Duration, mut done: impl FnMut(&Value) -> bool) -> (Value, u64) {
        let deadline = Instant::now() + timeout;
        let mut n = 0;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let v = self.next(left).expect("the stream ended first");
            n += 1;
            if done(&v) {
                return (v, n);
            }
        }
    }

    fn close_stdin(&mut self) {
        self.stdin = None;
    }

    fn wait(&mut self, timeout: Duration) -> i32 {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code().unwrap_or(-1);
            }
            assert!(Instant::now() < deadline, "still running after {timeout:?}");
            // A polling interval: try_wait has no fd to wait on.
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// What it wrote on stderr so far; all of it once it has exited (the
    /// reader is joined then, so nothing is still on its way).
    fn stderr(&mut self) -> String {
        if matches!(self.child.try_wait(), Ok(Some(_))) {
            if let Some(reader) = self.stderr_reader.take() {
                reader.join().unwrap();
            }
        }
        self.stderr.lock().unwrap().clone()
    }
}

fn request(id: impl Into<Value>, method: &str, params: Value) -> Value {
    json!({"jsonrpc": "2.0", "id": id.into(), "method": method, "params": params})
}

fn event_type(v: &Value) -> Option<&str> {
    v.pointer("/params/type").and_then(Value::as_str)
}

fn is_answer(v: &Value, id: &str) -> bool {
    v.get("id").and_then(Value::as_str) == Some(id)
}

/// Starts session `name` on pipes and reads its `gateway.ready`.
fn start_session(rt: &mut Runtime, name: &str, extra: &[&str]) -> (Peer, Value) {
    let mut args = vec!["--session", name];
    args.extend_from_slice(extra);
    let peer = Peer::spawn(rt.command(&args));
    let ready = peer.next(PATIENCE).expect("gateway.ready");
    assert_eq!(event_type(&ready), Some("gateway.ready"), "{ready}");
    // With a backend, the gateway's own ready is the payload's `gateway`.
    let pid = ready
        .pointer("/params/payload/pid")
        .or_else(|| ready.pointer("/params/payload/gateway/pid"))
        .unwrap()
        .as_u64()
        .unwrap() as u32;
    rt.sessions.push(pid);
    (peer, ready["params"]["payload"].clone())
}

/// Waits for a process to be gone.
fn assert_exits(pid: u32, what: &str) {
    assert!(
        poll_until(Duration::from_secs(20), || process_gone(pid)),
        "{what} (pid {pid}) is still running"
    );
}

/// A fixture client, killed if the test ends before it does (so it never
/// outlives the test holding the test's stdout).
struct Fixture(Child);

impl Drop for Fixture {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn run_fixture(rt: &Runtime, name: &str, out: &Path, state: &Path, mode: &[&str]) -> Fixture {
    let child = Command::new("python3")
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/backends/session_client.py"
        ))
        .args(["--bin", BIN, "--name", name])
        .arg("--out")
        .arg(out)
        .arg("--state")
        .arg(state)
        .args(mode)
        .env("XDG_RUNTIME_DIR", &rt.dir)
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .spawn()
        .expect("python3");
    Fixture(child)
}

fn read_state(state: &Path) -> Value {
    // The fixture replaces the file whole (rename), so a read sees one
    // version or the other.
    std::fs::read(state)
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .unwrap_or(Value::Null)
}

fn wait_child(child: &mut Child, timeout: Duration) -> i32 {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status.code().unwrap_or(-1);
        }
        assert!(Instant::now() < deadline, "still running after {timeout:?}");
        // A polling interval: try_wait has no fd to wait on.
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Starts the session with a client streaming `seq 1 total` into a file:
/// the client, the file and its state file.
fn stream_seq(rt: &Runtime, name: &str, total: u64) -> (Fixture, PathBuf, PathBuf) {
    let out = rt.dir.join("out.txt");
    let state = rt.dir.join("state.json");
    let client = run_fixture(
        rt,
        name,
        &out,
        &state,
        &["start", "seq", "1", &total.to_string()],
    );
    (client, out, state)
}

/// Waits until the client streaming into `state`'s file has `bytes` of it.
fn wait_for_output(state: &Path, bytes: u64) {
    let reached = poll_until(Duration::from_secs(120), || {
        read_state(state)["out_len"].as_u64().unwrap_or(0) >= bytes
    });
    assert!(
        reached,
        "the client never got {bytes} bytes: {}",
        read_state(state)
    );
}

/// `cmp`s `out` with what `seq 1 n` prints.
fn assert_same_as_seq(out: &Path, n: u64) {
    let expected = out.with_extension("expected");
    let seq = Command::new("seq")
        .args(["1", &n.to_string()])
        .stdout(std::fs::File::create(&expected).unwrap())
        .status()
        .unwrap();
    assert!(seq.success());
    let cmp = Command::new("cmp")
        .arg(&expected)
        .arg(out)
        .output()
        .unwrap();
    assert!(
        cmp.status.success(),
        "the streamed output differs from seq 1 {n}: {}",
        String::from_utf8_lossy(&cmp.stdout)
    );
    let _ = std::fs::remove_file(expected);
}

#[test]
fn a_client_killed_mid_stream_is_followed_by_one_that_resumes_from_its_cursor_without_a_lost_byte()
{
    let mut rt = Runtime::new("sess-kill");
    let total = 5_000_000;
    let (mut first, out, state) = stream_seq(&rt, "kill", total);
    // Halfway through (seq 1 5000000 prints 38,888,897 bytes): kill the client.
    let half = 38_888_897 / 2;
    wait_for_output(&state, half);
    first.0.kill().unwrap();
    first.0.wait().unwrap();
    let before = read_state(&state);
    let session = before["session_pid"].as_u64().unwrap() as u32;
    rt.sessions.push(session);
    let pid = before["pid"].as_u64().unwrap();
    assert!(!process_gone(session), "the session ended with its client");

    let mut second = run_fixture(&rt, "kill", &out, &state, &["attach"]);
    assert_eq!(wait_child(&mut second.0, Duration::from_secs(180)), 0);
    let after = read_state(&state);
    assert_eq!(after["done"], true, "{after}");
    assert_eq!(
        after["listed"],
        json!([pid]),
        "process.list after the reattach shows the same process"
    );
    assert_same_as_seq(&out, total);
    assert_exits(session, "the session after gateway.end");
    assert!(!rt.sockets().join("kill.sock").exists());
}

#[test]
fn a_relay_chain_killed_mid_stream_is_replaced_and_nothing_is_lost() {
    let mut rt = Runtime::new("sess-chain");
    let total = 2_000_000;
    // The session's own client streams a little and is killed; then a
    // client attaches behind `cat | tui-gateway attach | cat` and keeps
    // its relay alive only until the test kills it.
    let (mut first, out, state) = stream_seq(&rt, "chain", total);
    wait_for_output(&state, 100_000);
    first.0.kill().unwrap();
    first.0.wait().unwrap();
    let session = read_state(&state)["session_pid"].as_u64().unwrap() as u32;
    rt.sessions.push(session);

    let mut second = run_fixture(
        &rt,
        "chain",
        &out,
        &state,
        &["attach", "--chain", "--reattach"],
    );
    let half = 14_888_897 / 2;
    wait_for_output(&state, half);
    let relay = relay_pid("chain").expect("the relay runs");
    // SAFETY: kill has no memory effects; the pid is the relay found above.
    unsafe { libc::kill(relay as i32, libc::SIGKILL) };
    assert_eq!(wait_child(&mut second.0, Duration::from_secs(180)), 0);
    let after = read_state(&state);
    assert_eq!(after["done"], true, "{after}");
    assert!(after["reattached"].as_u64().unwrap() >= 1, "{after}");
    assert_same_as_seq(&out, total);
    assert_exits(session, "the session after gateway.end");
}

/// The pid of a running `tui-gateway attach NAME`.
fn relay_pid(name: &str) -> Option<u32> {
    std::fs::read_dir("/proc")
        .ok()?
        .flatten()
        .find_map(|entry| {
            let pid: u32 = entry.file_name().to_str()?.parse().ok()?;
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
            let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
            let ours = args.first()? == &BIN.as_bytes()
                && args.get(1) == Some(&&b"attach"[..])
                && args.get(2) == Some(&name.as_bytes());
            ours.then_some(pid)
        })
}

/// Appends the data of a `process.output` event to `data`.
fn take_output(v: &Value, data: &mut Vec<u8>) {
    if event_type(v) == Some("process.output") {
        data.extend_from_slice(v["params"]["payload"]["data"].as_str().unwrap().as_bytes());
    }
}

#[test]
fn a_detached_session_keeps_its_command_blocked_within_the_journal_bound_and_loses_nothing() {
    let mut rt = Runtime::new("sess-yes");
    let bound: u64 = 8 << 20;
    let (mut client, ready) = start_session(
        &mut rt,
        "yes",
        &["--session-journal", "8MiB", "--outbound-hard-limit", "8MiB"],
    );
    let session = ready["pid"].as_u64().unwrap() as u32;
    let epoch = ready["session"]["epoch"].as_str().unwrap().to_owned();
    client.send(&request("spawn", "process.spawn", json!({"argv": ["yes"]})));
    let mut frames: u64 = 1; // the ready
    let mut data = Vec::new();
    let (spawned, n) = client.until(PATIENCE, |v| is_answer(v, "spawn"));
    frames += n;
    let proc = spawned["result"]["proc"].as_u64().unwrap();
    let yes = spawned["result"]["pid"].as_u64().unwrap() as u32;
    // Detach: the client's input ends; what was already on the way is read
    // to the end of the stream (the session lets the pipe go).
    client.close_stdin();
    while let Some(v) = client.next(PATIENCE) {
        frames += 1;
        take_output(&v, &mut data);
    }
    assert!(!process_gone(session), "{}", client.stderr());

    // Thirty seconds detached, sampled twice a second: memory stays within
    // the bound and `yes` waits on its pipe.
    let until = Instant::now() + Duration::from_secs(30);
    let mut blocked = 0;
    while Instant::now() < until {
        let rss = proc_mem_bytes(session, "VmRSS").expect("the session runs");
        assert!(
            rss < bound + (16 << 20),
            "RSS {rss} passed the journal bound + 16 MiB"
        );
        if proc_state(yes) == Some('S') {
            blocked += 1;
        }
        // A sampling interval over a fixed window, not a wait for an event.
        std::thread::sleep(Duration::from_millis(500));
    }
    assert_eq!(proc_state(yes), Some('S'), "yes is not blocked on its pipe");
    assert!(
        blocked >= 50,
        "yes was blocked in only {blocked} of ~60 samples"
    );

    let mut relay = Peer::spawn(rt.command(&[
        "attach",
        "yes",
        "--frames-received",
        &frames.to_string(),
        "--epoch",
        &epoch,
    ]));
    let attached = relay.next(PATIENCE).unwrap();
    assert_eq!(
        event_type(&attached),
        Some("gateway.attached"),
        "{attached}"
    );
    assert_eq!(attached["params"]["payload"]["frames_from"], json!(frames));
    // Everything queued while detached, and more, then stop `yes`.
    let (_, _) = relay.until(Duration::from_secs(60), |v| {
        take_output(v, &mut data);
        data.len() as u64 > 2 * bound
    });
    relay.send(&request(
        "kill",
        "process.signal",
        json!({"proc": proc, "signal": "SIGKILL"}),
    ));
    let (exit, _) = relay.until(Duration::from_secs(60), |v| {
        take_output(v, &mut data);
        event_type(v) == Some("process.exit")
    });
    let written = exit["params"]["payload"]["output_bytes"]["stdout"]
        .as_u64()
        .unwrap();
    assert_eq!(
        data.len() as u64,
        written,
        "bytes lost or doubled across the detach"
    );
    assert!(
        data.chunks(2).all(|pair| pair == b"y\n"),
        "the output is out of order"
    );
    relay.send(&request("end", "gateway.end", json!({})));
    relay.close_stdin();
    assert_eq!(relay.wait(PATIENCE), 0);
    assert_exits(session, "the session after gateway.end");
    assert_exits(yes, "yes");
}

/// Connects to session `name`'s socket and attaches with a cursor: the
/// answer, and a reader over the rest.
fn attach_socket(rt: &Runtime, name: &str, params: Value) -> (Value, BufReader<UnixStream>) {
    let mut stream = UnixStream::connect(rt.sockets().join(format!("{name}.sock"))).unwrap();
    stream.set_read_timeout(Some(PATIENCE)).unwrap();
    let attach = request("attach", "gateway.attach", params);
    let mut line = serde_json::to_vec(&attach).unwrap();
    line.push(b'\n');
    stream.write_all(&line).unwrap();
    let mut reader = BufReader::new(stream);
    let mut answer = String::new();
    reader.read_line(&mut answer).unwrap();
    (serde_json::from_str(&answer).expect("an answer"), reader)
}

/// Writes `bytes` to an attached socket.
fn write_to(reader: &BufReader<UnixStream>, bytes: &[u8]) {
    reader.get_ref().write_all(bytes).unwrap();
}

/// Ends the session over an attached socket and waits for it to be gone.
fn end_over(mut reader: BufReader<UnixStream>, session: u32) {
    write_to(
        &reader,
        b"{\"jsonrpc\":\"2.0\",\"id\":\"end\",\"method\":\"gateway.end\"}\n",
    );
    let mut rest = String::new();
    reader.read_to_string(&mut rest).unwrap();
    assert!(rest.contains("\"id\":\"end\""), "{rest}");
    assert_exits(session, "the session after gateway.end");
}

fn fd_count(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .count()
}

#[test]
fn a_thousand_attach_detach_cycles_deliver_every_frame_once_and_leak_nothing() {
    let mut rt = Runtime::new("sess-cycles");
    let (mut client, ready) = start_session(&mut rt, "cycles", &[]);
    let session = ready["pid"].as_u64().unwrap() as u32;
    let epoch = ready["session"]["epoch"].clone();
    client.close_stdin();
    let mut frames: u64 = 1;
    while client.next(PATIENCE).is_some() {
        frames += 1;
    }
    let mut baseline = None;
    for i in 0..1050u64 {
        if i == 50 {
            // After a warm-up: allocators and the journal reach their size.
            baseline = Some((fd_count(session), proc_mem_bytes(session, "VmRSS").unwrap()));
        }
        let (answer, mut reader) = attach_socket(
            &rt,
            "cycles",
            json!({"session": "cycles", "epoch": epoch, "frames_received": frames}),
        );
        assert_eq!(answer["result"]["frames_from"], json!(frames), "{answer}");
        let ping = format!("p{i}");
        let mut lines =
            serde_json::to_vec(&request(ping.as_str(), "gateway.ping", json!({}))).unwrap();
        lines.push(b'\n');
        lines.extend_from_slice(
            &serde_json::to_vec(&request("detach", "gateway.detach", json!({}))).unwrap(),
        );
        lines.push(b'\n');
        write_to(&reader, &lines);
        let (mut pings, mut detached) = (0, 0);
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).unwrap() == 0 {
                break;
            }
            frames += 1;
            let v: Value = serde_json::from_str(&line).unwrap();
            pings += u32::from(is_answer(&v, &ping));
            detached += u32::from(is_answer(&v, "detach"));
        }
        assert_eq!(
            (pings, detached),
            (1, 1),
            "cycle {i}: each answer exactly once"
        );
    }
    let (fds, rss) = baseline.unwrap();
    assert_eq!(fd_count(session), fds, "fds grew over 1000 cycles");
    let grown = proc_mem_bytes(session, "VmRSS")
        .unwrap()
        .saturating_sub(rss);
    assert!(
        grown < 2 << 20,
        "RSS grew by {grown} bytes over 1000 cycles"
    );
    let (answer, reader) = attach_socket(
        &rt,
        "cycles",
        json!({"session": "cycles", "epoch": epoch, "frames_received": frames}),
    );
    assert_eq!(answer["result"]["frames_total"], json!(frames), "{answer}");
    end_over(reader, session);
}

#[test]
fn a_second_attach_is_refused_and_a_takeover_detaches_the_first_client_cleanly() {
    let mut rt = Runtime::new("sess-one");
    let (first, ready) = start_session(&mut rt, "one", &[]);
    let session = ready["pid"].as_u64().unwrap() as u32;

    let mut second = Peer::spawn(rt.command(&["attach", "one"]));
    assert_eq!(second.wait(PATIENCE), 69);
    assert!(
        second.next(PATIENCE).is_none(),
        "a refused relay writes nothing"
    );
    let why = second.stderr();
    assert!(
        why.contains("refused the attach (-32010)") && why.contains("--takeover"),
        "{why}"
    );

    let mut third = Peer::spawn(rt.command(&["attach", "one", "--takeover"]));
    // Without a cursor, the session's ready comes first, as for a new gateway.
    let again = third.next(PATIENCE).unwrap();
    assert_eq!(event_type(&again), Some("gateway.ready"), "{again}");
    assert_eq!(again["params"]["payload"]["pid"], json!(session));
    // The first client's stream ends cleanly: the session let its pipe go.
    assert!(
        first.next(PATIENCE).is_none(),
        "the first client still gets frames"
    );
    third.send(&request("ping", "gateway.ping", json!({})));
    let (pong, _) = third.until(PATIENCE, |v| is_answer(v, "ping"));
    assert_eq!(pong["result"], json!({"ok": true}));
    third.send(&request("end", "gateway.end", json!({})));
    third.until(PATIENCE, |v| is_answer(v, "end"));
    third.close_stdin();
    assert_eq!(third.wait(PATIENCE), 0);
    assert_exits(session, "the session after gateway.end");
}

#[test]
fn a_detached_session_with_nothing_running_ends_after_its_linger_and_leaves_nothing() {
    let mut rt = Runtime::new("sess-linger");
    let (mut client, ready) = start_session(&mut rt, "linger", &["--session-linger", "0.5"]);
    let session = ready["pid"].as_u64().unwrap() as u32;
    let sockets = rt.sockets();
    assert!(sockets.join("linger.sock").exists());
    // A command keeps it alive past the linger while it runs.
    client.send(&request(
        "spawn",
        "process.spawn",
        json!({"argv": ["sh", "-c", "read line"]}),
    ));
    let (spawned, _) = client.until(PATIENCE, |v| is_answer(v, "spawn"));
    let proc = spawned["result"]["proc"].as_u64().unwrap();
    client.close_stdin();
    while client.next(PATIENCE).is_some() {}
    let listed = rt.command(&["sessions", "--json"]).output().unwrap();
    let sessions: Value = serde_json::from_slice(&listed.stdout).unwrap();
    assert_eq!(sessions[0]["name"], "linger", "{sessions}");
    assert_eq!(sessions[0]["attached"], false);
    assert_eq!(sessions[0]["processes"], 1);
    assert!(!process_gone(session), "it ended while its command ran");

    let mut relay = Peer::spawn(rt.command(&["attach", "linger"]));
    relay.until(PATIENCE, |v| event_type(v) == Some("gateway.ready"));
    relay.send(&request(
        "stdin",
        "process.write",
        json!({"proc": proc, "data": "go\n"}),
    ));
    relay.until(PATIENCE, |v| event_type(v) == Some("process.exit"));
    relay.close_stdin();
    assert_eq!(relay.wait(PATIENCE), 0);
    // Detached, nothing running: gone after half a second, files and all.
    assert_exits(session, "the idle session");
    assert!(!sockets.join("linger.sock").exists());
    assert!(!sockets.join("linger.lock").exists());
    let listed = rt.command(&["sessions", "--json"]).output().unwrap();
    assert_eq!(String::from_utf8_lossy(&listed.stdout).trim(), "[]");
}

#[test]
fn bad_names_unsafe_directories_and_other_users_are_refused() {
    let rt = Runtime::new("sess-safe");
    for name in ["../x", "a/b", "", ".hidden", &"n".repeat(65)] {
        let out = rt.command(&["--session", name]).output().unwrap();
        assert_eq!(out.status.code(), Some(64), "--session {name:?}");
        assert!(String::from_utf8_lossy(&out.stderr).contains("a session name"));
        let out = rt.command(&["attach", name]).output().unwrap();
        assert_eq!(out.status.code(), Some(64), "attach {name:?}");
    }
    let out = rt.command(&["attach", "nobody-here"]).output().unwrap();
    assert_eq!(out.status.code(), Some(69));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no session nobody-here runs"));

    // A directory others may enter.
    std::fs::create_dir_all(rt.sockets()).unwrap();
    std::fs::set_permissions(rt.sockets(), std::fs::Permissions::from_mode(0o777)).unwrap();
    let out = rt
        .command(&["--session", "s"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(69));
    let why = String::from_utf8_lossy(&out.stderr);
    assert!(
        why.contains("has mode 777") && why.contains("chmod 700"),
        "{why}"
    );

    // A directory of another user (the test runs as root, CI's user).
    assert_eq!(
        // SAFETY: geteuid has no memory effects.
        unsafe { libc::geteuid() },
        0,
        "this test needs root, to act as another user"
    );
    std::fs::set_permissions(rt.sockets(), std::fs::Permissions::from_mode(0o700)).unwrap();
    std::os::unix::fs::chown(rt.sockets(), Some(65534), Some(65534)).unwrap();
    let out = rt
        .command(&["--session", "s"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(69));
    let why = String::from_utf8_lossy(&out.stderr);
    assert!(why.contains("belongs to uid 65534"), "{why}");

    // A stale socket from a dead session is replaced.
    std::os::unix::fs::chown(rt.sockets(), Some(0), Some(0)).unwrap();
    drop(std::os::unix::net::UnixListener::bind(rt.sockets().join("s.sock")).unwrap());
    let mut rt = rt;
    let (mut client, ready) = start_session(&mut rt, "s", &[]);
    client.send(&request("end", "gateway.end", json!({})));
    client.until(PATIENCE, |v| is_answer(v, "end"));
    assert_exits(ready["pid"].as_u64().unwrap() as u32, "the session");
}

#[test]
fn a_connection_from_another_user_is_closed_before_a_byte_is_read() {
    assert_eq!(
        // SAFETY: geteuid has no memory effects.
        unsafe { libc::geteuid() },
        0,
        "this test needs root, to run the session as another user"
    );
    let mut rt = Runtime::new("sess-peer");
    // The session runs as nobody, in a directory of nobody's; root (the
    // test) can reach its socket, and is another user to it.
    std::os::unix::fs::chown(&rt.dir, Some(65534), Some(65534)).unwrap();
    let mut command = rt.command(&["--session", "peer"]);
    command.uid(65534).gid(65534);
    let mut session = Peer::spawn(command);
    let ready = session.next(PATIENCE).expect("gateway.ready");
    // With a backend, the gateway's own ready is the payload's `gateway`.
    let pid = ready
        .pointer("/params/payload/pid")
        .or_else(|| ready.pointer("/params/payload/gateway/pid"))
        .unwrap()
        .as_u64()
        .unwrap() as u32;
    rt.sessions.push(pid);

    let mut stream = UnixStream::connect(rt.sockets().join("peer.sock")).unwrap();
    stream.set_read_timeout(Some(PATIENCE)).unwrap();
    // Writing may succeed (the kernel buffers it) but nothing answers.
    let _ = stream.write_all(b"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"gateway.session\"}\n");
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    assert!(answer.is_empty(), "{}", String::from_utf8_lossy(&answer));
    // The session and its client are untouched.
    session.send(&request("stats", "gateway.session", json!({})));
    let (status, _) = session.until(PATIENCE, |v| is_answer(v, "stats"));
    assert_eq!(status["result"]["attached"], true);
    assert_eq!(status["result"]["refused_peers"], 1);
    session.send(&request("end", "gateway.end", json!({})));
    session.until(PATIENCE, |v| is_answer(v, "end"));
    assert_exits(pid, "the session");
    assert!(
        session.stderr().contains("refused a connection from uid 0"),
        "{}",
        session.stderr()
    );
}

#[test]
fn the_parents_sigterm_only_detaches_and_anyone_elses_ends_the_session_at_once() {
    let mut rt = Runtime::new("sess-term");
    let (mut client, ready) = start_session(&mut rt, "term", &[]);
    let session = ready["pid"].as_u64().unwrap() as u32;
    client.send(&request("spawn", "process.spawn", json!({"argv": ["yes"]})));
    let (spawned, _) = client.until(PATIENCE, |v| is_answer(v, "spawn"));
    let yes = spawned["result"]["pid"].as_u64().unwrap() as u32;
    // The process that started the session (this test, as a UI quitting)
    // sends SIGTERM: the session lets go of its stdio and goes on.
    // SAFETY: kill has no memory effects; the pid is the session's.
    unsafe { libc::kill(session as i32, libc::SIGTERM) };
    while client.next(PATIENCE).is_some() {}
    let listed = rt.command(&["sessions", "--json"]).output().unwrap();
    let sessions: Value = serde_json::from_slice(&listed.stdout).unwrap();
    assert_eq!(sessions[0]["attached"], false, "{sessions}");
    assert!(!process_gone(session) && !process_gone(yes));
    // Detached, with output queued that nobody will read, a SIGTERM from
    // another process ends it at once, with its command.
    assert!(poll_until(PATIENCE, || proc_state(yes) == Some('S')));
    let kill = Command::new("kill")
        .args(["-TERM", &session.to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    assert_eq!(client.wait(PATIENCE), 0, "{}", client.stderr());
    assert!(
        client.stderr().contains("its parent sent SIGTERM"),
        "{}",
        client.stderr()
    );
    assert_exits(yes, "yes");
    assert!(!rt.sockets().join("term.sock").exists());
}

#[test]
fn a_bridged_backend_keeps_running_across_a_detach_and_its_frames_written_meanwhile_arrive() {
    let mut rt = Runtime::new("sess-bridge");
    let fixture = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/backends/fixture.py");
    let (mut client, ready) = start_session(&mut rt, "bridge", &["--", "python3", fixture]);
    let session = ready["gateway"]["pid"].as_u64().unwrap() as u32;
    let epoch = ready["gateway"]["session"]["epoch"]
        .as_str()
        .unwrap()
        .to_owned();
    client.send(&request("info", "gateway.info", json!({})));
    let (info, n) = client.until(PATIENCE, |v| is_answer(v, "info"));
    let mut frames = 1 + n;
    let backend = info["result"]["backend"]["pid"].as_u64().unwrap();
    // A burst larger than the queue's high-water mark, cut off by a detach:
    // the backend blocks on its stdout while nobody reads, then resumes.
    let count = 200_000;
    client.send(&request(
        "burst",
        "events",
        json!({"count": count, "type": "tick.event", "unit": "0123456789"}),
    ));
    let mut ticks = 0;
    let (_, n) = client.until(PATIENCE, |v| {
        ticks += u32::from(event_type(v) == Some("tick.event"));
        ticks >= 10
    });
    frames += n;
    client.close_stdin();
    while let Some(v) = client.next(PATIENCE) {
        frames += 1;
        ticks += u32::from(event_type(&v) == Some("tick.event"));
    }
    assert!(ticks < count, "the burst ended before the detach");

    let mut relay = Peer::spawn(rt.command(&[
        "attach",
        "bridge",
        "--frames-received",
        &frames.to_string(),
        "--epoch",
        &epoch,
    ]));
    let attached = relay.next(PATIENCE).unwrap();
    assert_eq!(
        event_type(&attached),
        Some("gateway.attached"),
        "{attached}"
    );
    let (answer, _) = relay.until(Duration::from_secs(60), |v| {
        ticks += u32::from(event_type(v) == Some("tick.event"));
        is_answer(v, "burst")
    });
    assert_eq!(answer["result"]["sent"], json!(count));
    assert_eq!(ticks, count, "every event of the burst, once");
    relay.send(&request("info", "gateway.info", json!({})));
    let (info, _) = relay.until(PATIENCE, |v| is_answer(v, "info"));
    assert_eq!(
        info["result"]["backend"]["pid"],
        json!(backend),
        "the same backend"
    );
    relay.send(&request("end", "gateway.end", json!({})));
    relay.until(PATIENCE, |v| is_answer(v, "end"));
    relay.close_stdin();
    assert_eq!(relay.wait(PATIENCE), 0);
    assert_exits(session, "the session after gateway.end");
    assert_exits(backend as u32, "the backend");
}

#[test]
fn a_detach_asked_for_by_a_client_that_went_at_once_never_detaches_the_next_one() {
    let mut rt = Runtime::new("sess-race");
    let (mut client, ready) = start_session(&mut rt, "race", &[]);
    let session = ready["pid"].as_u64().unwrap() as u32;
    let epoch = ready["session"]["epoch"].clone();
    client.close_stdin();
    let mut frames: u64 = 1;
    while client.next(PATIENCE).is_some() {
        frames += 1;
    }
    let (_, mut reader) = attach_socket(
        &rt,
        "race",
        json!({"session": "race", "epoch": epoch, "frames_received": frames}),
    );
    for i in 0..40 {
        // This client asks to be detached, reads the answer and goes at
        // once: its input ends before the session acts on the request.
        write_to(
            &reader,
            b"{\"jsonrpc\":\"2.0\",\"id\":\"bye\",\"method\":\"gateway.detach\"}\n",
        );
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        assert!(line.contains("\"id\":\"bye\""), "{line}");
        frames += 1;
        reader.get_ref().shutdown(std::net::Shutdown::Both).unwrap();
        drop(reader);
        // The next client attaches as soon as the session lets it.
        let deadline = Instant::now() + PATIENCE;
        let (answer, next) = loop {
            assert!(
                Instant::now() < deadline,
                "the session never let the old client go"
            );
            let (answer, next) = attach_socket(
                &rt,
                "race",
                json!({"session": "race", "epoch": epoch, "frames_received": frames}),
            );
            if answer["error"]["code"] != json!(-32010) {
                break (answer, next);
            }
        };
        assert!(answer.get("result").is_some(), "cycle {i}: {answer}");
        reader = next;
        write_to(
            &reader,
            b"{\"jsonrpc\":\"2.0\",\"id\":\"here\",\"method\":\"gateway.ping\"}\n",
        );
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        assert!(
            line.contains("\"id\":\"here\""),
            "cycle {i}: the new client was detached by the old one's request: {line:?}"
        );
        frames += 1;
    }
    end_over(reader, session);
}

#[test]
fn a_fresh_client_that_keeps_a_cursor_attaches_at_the_latest_frame_and_is_told_its_index() {
    let mut rt = Runtime::new("sess-latest");
    let (mut client, ready) = start_session(&mut rt, "latest", &[]);
    let session = ready["pid"].as_u64().unwrap() as u32;
    client.send(&request("ping", "gateway.ping", json!({})));
    client.until(PATIENCE, |v| is_answer(v, "ping"));
    client.close_stdin();
    while client.next(PATIENCE).is_some() {}
    let mut relay = Peer::spawn(rt.command(&["attach", "latest", "--frames-received", "latest"]));
    let attached = relay.next(PATIENCE).unwrap();
    assert_eq!(
        event_type(&attached),
        Some("gateway.attached"),
        "{attached}"
    );
    let payload = &attached["params"]["payload"];
    assert_eq!(
        payload["frames_from"],
        json!(2),
        "the ready and the ping were written"
    );
    assert_eq!(payload["frames_total"], json!(2));
    // No ready again: the next line is the answer to what it sends.
    relay.send(&request("end", "gateway.end", json!({})));
    let next = relay.next(PATIENCE).unwrap();
    assert!(is_answer(&next, "end"), "{next}");
    relay.close_stdin();
    assert_eq!(relay.wait(PATIENCE), 0);
    assert_exits(session, "the session after gateway.end");
}

#[test]
fn a_sigterm_from_a_parent_that_exited_right_after_sending_it_still_only_detaches() {
    let mut rt = Runtime::new("sess-orphan");
    let log = rt.dir.join("gateway.log");
    // A UI that ends its gateway child and exits at once, as hermes does on
    // /quit. The gateway is stopped meanwhile, so it handles the SIGTERM
    // only after its sender is gone.
    let ui = r#"
import os, signal, subprocess, sys
gw = subprocess.Popen([sys.argv[1], "--session", "orphan"], stdin=subprocess.PIPE,
                      stdout=subprocess.PIPE, stderr=open(sys.argv[2], "w"))
gw.stdout.readline()
print(gw.pid, flush=True)
sys.stdin.readline()
os.kill(gw.pid, signal.SIGTERM)
os._exit(0)
"#;
    let mut parent = Command::new("python3")
        .args(["-c", ui, BIN])
        .arg(&log)
        .env("XDG_RUNTIME_DIR", &rt.dir)
        .env_remove("RUST_LOG")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut pid = String::new();
    BufReader::new(parent.stdout.take().unwrap())
        .read_line(&mut pid)
        .unwrap();
    let session: u32 = pid.trim().parse().unwrap();
    rt.sessions.push(session);
    // SAFETY: kill has no memory effects; the pid is the session's.
    unsafe { libc::kill(session as i32, libc::SIGSTOP) };
    parent.stdin.take().unwrap().write_all(b"go\n").unwrap();
    assert_eq!(wait_child(&mut parent, PATIENCE), 0);
    // SAFETY: as above.
    unsafe { libc::kill(session as i32, libc::SIGCONT) };
    // The pipes went with the parent, so the client is detached (by EOF
    // or by the SIGTERM, whichever the session saw first) ...
    let log_text = || std::fs::read_to_string(&log).unwrap_or_default();
    assert!(
        poll_until(PATIENCE, || log_text().contains("client detached")),
        "{}",
        log_text()
    );
    // ... and the SIGTERM, handled in the same turn, did not end the
    // session: it still serves a relay.
    let mut relay = Peer::spawn(rt.command(&["attach", "orphan"]));
    relay.until(PATIENCE, |v| event_type(v) == Some("gateway.ready"));
    relay.send(&request("state", "gateway.session", json!({})));
    let (state, _) = relay.until(PATIENCE, |v| is_answer(v, "state"));
    assert_eq!(state["result"]["attached"], true, "{state}");
    assert!(!log_text().contains("[gateway-signal]"), "{}", log_text());
    relay.send(&request("end", "gateway.end", json!({})));
    relay.until(PATIENCE, |v| is_answer(v, "end"));
    relay.close_stdin();
    assert_eq!(relay.wait(PATIENCE), 0);
    assert_exits(session, "the session after gateway.end");
}
