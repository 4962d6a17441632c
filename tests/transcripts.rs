//! Protocol transcripts: every `tests/transcripts/*.txt` is one session with
//! the real `tui-gateway` binary over pipes. The format is described in
//! `tests/transcripts/README.md`; in short, `-->` lines are sent, `<--` lines
//! are the frames that must come back (parsed JSON, member order free, `"*"`
//! wildcards for volatile values), `<-- (nothing)` means no frame at all.
//!
//! Nothing here sleeps: a reader thread hands stdout lines over a channel
//! and every wait is a `recv_timeout` with a generous deadline, so a slow
//! machine only makes the test slower, never flaky, and a hung gateway
//! fails it instead of hanging it.

use std::collections::BTreeSet;
use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

/// The checks every outbound line must pass, shared with the fuzz targets.
#[allow(dead_code)]
#[path = "../fuzz/invariants/wire.rs"]
mod wire;

/// How long any one frame, EOF or exit may take. Generous: other tests run
/// beside this one on small machines; a healthy gateway answers in
/// microseconds, so only a hang ever waits this long.
const DEADLINE: Duration = Duration::from_secs(30);

/// One step of a transcript, with its line number.
#[derive(Debug)]
enum Step {
    /// Bytes to write to the gateway's stdin.
    Send(Vec<u8>),
    /// The next frame must match this.
    Expect(Value),
    /// No frame may come (checked with a ping barrier, or stdout's end after `@eof`).
    Nothing,
    /// Stdout must end here (stdin still open or not).
    End,
    /// Close stdin.
    Eof,
}

/// A parsed transcript file.
#[derive(Debug)]
struct Transcript {
    name: String,
    args: Vec<String>,
    exit_code: i32,
    /// A full expectation for the `gateway.ready` line, if the file gives one.
    ready: Option<(usize, Value)>,
    steps: Vec<(usize, Step)>,
}

fn parse(name: &str, text: &str) -> Result<Transcript, String> {
    let mut t = Transcript {
        name: name.to_owned(),
        args: Vec::new(),
        exit_code: 0,
        ready: None,
        steps: Vec::new(),
    };
    for (index, line) in text.lines().enumerate() {
        let at = index + 1;
        let fail = |what: String| format!("{name}:{at}: {what}");
        let sent_yet = t.steps.iter().any(|(_, s)| matches!(s, Step::Send(_)));
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        } else if let Some(args) = line.strip_prefix("@args ") {
            if !t.steps.is_empty() || t.ready.is_some() {
                return Err(fail("@args must come before any exchange".into()));
            }
            t.args.extend(args.split_whitespace().map(str::to_owned));
        } else if let Some(code) = line.strip_prefix("@exit ") {
            t.exit_code = code
                .trim()
                .parse()
                .map_err(|e| fail(format!("bad exit code: {e}")))?;
        } else if line == "@eof" {
            t.steps.push((at, Step::Eof));
        } else if let Some(text) = line.strip_prefix("--> ") {
            let mut bytes = text.as_bytes().to_vec();
            bytes.push(b'\n');
            t.steps.push((at, Step::Send(bytes)));
        } else if let Some(text) = line.strip_prefix("~~> ") {
            t.steps
                .push((at, Step::Send(unescape(text).map_err(fail)?)));
        } else if line == "<-- (nothing)" {
            t.steps.push((at, Step::Nothing));
        } else if line == "<-- (end of stdout)" {
            t.steps.push((at, Step::End));
        } else if let Some(json) = line.strip_prefix("<-- ") {
            let value: Value =
                serde_json::from_str(json).map_err(|e| fail(format!("<-- is not JSON: {e}")))?;
            if !sent_yet && t.ready.is_none() && t.steps.is_empty() {
                t.ready = Some((at, value));
            } else {
                t.steps.push((at, Step::Expect(value)));
            }
        } else {
            return Err(fail(format!("unknown line {line:?}")));
        }
    }
    Ok(t)
}

/// Decodes a `~~>` line: `\n`, `\r`, `\t`, `\\`, `\xHH` (any byte) and
/// `\(TEXT)*N` (TEXT, which holds no `)`, repeated N times). No newline is
/// added.
fn unescape(text: &str) -> Result<Vec<u8>, String> {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != b'\\' {
            out.push(bytes[i]);
            i += 1;
            continue;
        }
        match bytes.get(i + 1) {
            Some(b'n') => out.push(b'\n'),
            Some(b'r') => out.push(b'\r'),
            Some(b't') => out.push(b'\t'),
            Some(b'\\') => out.push(b'\\'),
            Some(b'x') => {
                let hex = text.get(i + 2..i + 4).ok_or("\\x needs two hex digits")?;
                out.push(u8::from_str_radix(hex, 16).map_err(|e| format!("\\x{hex}: {e}"))?);
                i += 2;
            }
            Some(b'(') => {
                let body = &text[i + 2..];
                let close = body.find(")*").ok_or("\\( needs )*N")?;
                let digits: String = body[close + 2..]
                    .chars()
                    .take_while(char::is_ascii_digit)
                    .collect();
                let count: usize = digits
                    .parse()
                    .map_err(|_| "\\(TEXT)*N needs a count N".to_owned())?;
                out.extend(body.as_bytes()[..close].repeat(count));
                i += close + 2 + digits.len();
            }
            other => return Err(format!("unknown escape \\{:?}", other.map(|&b| b as char))),
        }
        i += 2;
    }
    Ok(out)
}

/// Does `got` match the expectation `want`? Strings starting with `*` are
/// wildcards; an object member `"*": "*"` allows unlisted members; `batch`
/// compares a top-level array in any order.
fn matches(want: &Value, got: &Value, pid: u32, batch: bool) -> bool {
    match want {
        Value::String(w) if w.starts_with('*') => match w.as_str() {
            "*" => true,
            "*string" => got.is_string(),
            "*number" => got.is_number(),
            "*bool" => got.is_boolean(),
            "*array" => got.is_array(),
            "*object" => got.is_object(),
            "*pid" => *got == json!(pid),
            _ => want == got,
        },
        Value::Object(w) => {
            let Some(g) = got.as_object() else {
                return false;
            };
            let open = w.get("*") == Some(&json!("*"));
            let listed = w
                .iter()
                .filter(|(k, _)| *k != "*")
                .all(|(k, v)| g.get(k).is_some_and(|gv| matches(v, gv, pid, false)));
            listed && (open || g.keys().all(|k| w.contains_key(k)))
        }
        Value::Array(w) => {
            let Some(g) = got.as_array() else {
                return false;
            };
            if w.len() != g.len() {
                false
            } else if batch {
                assign(w, g, &mut vec![false; g.len()], pid)
            } else {
                w.iter().zip(g).all(|(w, g)| matches(w, g, pid, false))
            }
        }
        _ => want == got,
    }
}

/// Matches each of `want` with a distinct element of `got` (backtracking;
/// batches are short).
fn assign(want: &[Value], got: &[Value], used: &mut Vec<bool>, pid: u32) -> bool {
    let Some((first, rest)) = want.split_first() else {
        return true;
    };
    for i in 0..got.len() {
        if !used[i] && matches(first, &got[i], pid, false) {
            used[i] = true;
            if assign(rest, got, used, pid) {
                return true;
            }
            used[i] = false;
        }
    }
    false
}

/// The gateway under test, with a thread reading its stdout line by line and
/// one collecting its stderr (so it can never block on a full stderr pipe).
struct Gateway {
    child: Option<Child>,
    pid: u32,
    stdin: Option<ChildStdin>,
    lines: Receiver<Vec<u8>>,
    stderr: Option<JoinHandle<Vec<u8>>>,
}

impl Gateway {
    fn spawn(args: &[String]) -> Gateway {
        let mut child = Command::new(env!("CARGO_BIN_EXE_tui-gateway"))
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn tui-gateway");
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, lines) = mpsc::channel();
        thread::spawn(move || {
            let mut reader = BufReader::new(stdout);
            loop {
                let mut line = Vec::new();
                match reader.read_until(b'\n', &mut line) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {
                        if tx.send(line).is_err() {
                            break;
                        }
                    }
                }
            }
        });
        let mut stderr = child.stderr.take().expect("piped stderr");
        let stderr = thread::spawn(move || {
            let mut bytes = Vec::new();
            let _ = stderr.read_to_end(&mut bytes);
            bytes
        });
        Gateway {
            pid: child.id(),
            stdin: child.stdin.take(),
            child: Some(child),
            lines,
            stderr: Some(stderr),
        }
    }

    fn send(&mut self, bytes: &[u8]) -> Result<(), String> {
        let stdin = self.stdin.as_mut().ok_or("stdin is already closed")?;
        stdin
            .write_all(bytes)
            .and_then(|()| stdin.flush())
            .map_err(|e| format!("writing to the gateway: {e}"))
    }

    fn close_stdin(&mut self) {
        self.stdin = None;
    }

    /// The next frame, checked and parsed; `None` at the end of stdout.
    fn next_frame(&mut self) -> Result<Option<Value>, String> {
        match self.lines.recv_timeout(DEADLINE) {
            Ok(line) => {
                let body = line
                    .strip_suffix(b"\n")
                    .ok_or_else(|| format!("stdout ended inside a frame: {line:?}"))?;
                std::panic::catch_unwind(|| wire::check_line(body))
                    .map(Some)
                    .map_err(|panic| {
                        let why = panic
                            .downcast_ref::<String>()
                            .map_or("malformed frame", String::as_str)
                            .to_owned();
                        format!("{why}: {:?}", String::from_utf8_lossy(body))
                    })
            }
            Err(RecvTimeoutError::Disconnected) => Ok(None),
            Err(RecvTimeoutError::Timeout) => Err(format!("no frame within {DEADLINE:?}")),
        }
    }

    /// Waits for the exit, at most [`DEADLINE`].
    fn wait(&mut self) -> Result<ExitStatus, String> {
        let mut child = self.child.take().ok_or("already waited")?;
        let (tx, rx) = mpsc::channel();
        thread::spawn(move || {
            let _ = tx.send(child.wait());
        });
        match rx.recv_timeout(DEADLINE) {
            Ok(status) => status.map_err(|e| format!("wait: {e}")),
            Err(_) => {
                // SAFETY: kill(2) on the pid of a child not yet reaped.
                unsafe { libc::kill(self.pid as i32, libc::SIGKILL) };
                Err(format!("the gateway did not exit within {DEADLINE:?}"))
            }
        }
    }

    fn stderr(&mut self) -> String {
        self.stdin = None;
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        self.stderr
            .take()
            .and_then(|h| h.join().ok())
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default()
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Runs one transcript; the error names the file and line.
fn run(t: &Transcript) -> Result<(), String> {
    let mut gw = Gateway::spawn(&t.args);
    let result = run_steps(t, &mut gw);
    result.map_err(|e| format!("{e}\n--- gateway stderr ---\n{}", gw.stderr()))
}

fn run_steps(t: &Transcript, gw: &mut Gateway) -> Result<(), String> {
    let name = &t.name;
    let ready = gw
        .next_frame()?
        .ok_or_else(|| format!("{name}: stdout ended before gateway.ready"))?;
    if ready["method"] != "event" || ready["params"]["type"] != "gateway.ready" {
        return Err(format!(
            "{name}: the first frame is not gateway.ready: {ready}"
        ));
    }
    if let Some((at, want)) = &t.ready {
        if !matches(want, &ready, gw.pid, false) {
            return Err(format!("{name}:{at}: expected {want}\n  got {ready}"));
        }
    }
    let mut barrier = 0;
    for (at, step) in &t.steps {
        let at = format!("{name}:{at}");
        match step {
            Step::Send(bytes) => gw.send(bytes).map_err(|e| format!("{at}: {e}"))?,
            Step::Eof => gw.close_stdin(),
            Step::Expect(want) => match gw.next_frame().map_err(|e| format!("{at}: {e}"))? {
                Some(got) if matches(want, &got, gw.pid, true) => {}
                Some(got) => return Err(format!("{at}: expected {want}\n  got {got}")),
                None => return Err(format!("{at}: expected {want}\n  got the end of stdout")),
            },
            Step::End => {
                if let Some(got) = gw.next_frame().map_err(|e| format!("{at}: {e}"))? {
                    return Err(format!("{at}: expected the end of stdout, got {got}"));
                }
            }
            Step::Nothing if gw.stdin.is_none() => {
                if let Some(got) = gw.next_frame().map_err(|e| format!("{at}: {e}"))? {
                    return Err(format!("{at}: expected the end of stdout, got {got}"));
                }
            }
            Step::Nothing => {
                barrier += 1;
                // Short, so it fits under small --max-frame-bytes.
                let id = format!("~{barrier}");
                let ping = json!({"jsonrpc": "2.0", "method": "gateway.ping", "id": id});
                gw.send(format!("{ping}\n").as_bytes())
                    .map_err(|e| format!("{at}: {e}"))?;
                let pong = json!({"jsonrpc": "2.0", "result": {"ok": true}, "id": id});
                match gw.next_frame().map_err(|e| format!("{at}: {e}"))? {
                    Some(got) if got == pong => {}
                    Some(got) => return Err(format!("{at}: expected no frame, got {got}")),
                    None => return Err(format!("{at}: stdout ended before the barrier ping")),
                }
            }
        }
    }
    // The end: close stdin; nothing unexpected may follow; then the exit.
    gw.close_stdin();
    if let Some(got) = gw
        .next_frame()
        .map_err(|e| format!("{name}: at the end: {e}"))?
    {
        return Err(format!("{name}: a frame no line expected: {got}"));
    }
    let status = gw.wait().map_err(|e| format!("{name}: {e}"))?;
    if status.code() != Some(t.exit_code) {
        return Err(format!(
            "{name}: exit {status}, expected code {}",
            t.exit_code
        ));
    }
    Ok(())
}

fn transcript_files() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/transcripts");
    let mut files: Vec<PathBuf> = fs::read_dir(&dir)
        .expect("tests/transcripts exists")
        .map(|e| e.expect("a directory entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "txt"))
        .collect();
    files.sort();
    files
}

#[test]
fn every_transcript_holds_against_the_real_binary() {
    let files = transcript_files();
    assert!(files.len() >= 5, "transcripts found: {files:?}");
    let mut failures = Vec::new();
    for file in &files {
        let name = file.file_name().unwrap().to_string_lossy().into_owned();
        let text = fs::read_to_string(file).expect("a UTF-8 transcript");
        let started = Instant::now();
        let outcome = parse(&name, &text).and_then(|t| run(&t));
        eprintln!("transcript {name}: {:?}", started.elapsed());
        if let Err(e) = outcome {
            failures.push(e);
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn the_harness_rejects_what_it_should() {
    // The matcher is the whole test: it must not be vacuous.
    let pid = 42;
    let want = json!({"a": "*number", "b": ["*", 2]});
    assert!(matches(&want, &json!({"a": 1, "b": [null, 2]}), pid, false));
    assert!(!matches(
        &want,
        &json!({"a": "1", "b": [null, 2]}),
        pid,
        false
    ));
    assert!(!matches(
        &want,
        &json!({"a": 1, "b": [null, 2], "c": 3}),
        pid,
        false
    ));
    assert!(matches(
        &json!({"a": 1, "*": "*"}),
        &json!({"a": 1, "c": 3}),
        pid,
        false
    ));
    assert!(!matches(
        &json!({"a": 1, "*": "*"}),
        &json!({"c": 3}),
        pid,
        false
    ));
    assert!(matches(&json!("*pid"), &json!(42), pid, false));
    assert!(!matches(&json!("*pid"), &json!(43), pid, false));
    // Numbers compare as spelled: an id echoed as 1.0 is not the id 1.
    let one: Value = serde_json::from_str("1").unwrap();
    let one_point_zero: Value = serde_json::from_str("1.0").unwrap();
    assert!(!matches(&one, &one_point_zero, pid, false));
    // Batches in any order, but one answer per element.
    let batch = json!([{"id": 1}, {"id": 2}]);
    assert!(matches(&batch, &json!([{"id": 2}, {"id": 1}]), pid, true));
    assert!(!matches(&batch, &json!([{"id": 2}, {"id": 1}]), pid, false));
    assert!(!matches(&batch, &json!([{"id": 1}, {"id": 1}]), pid, true));
    // Escapes.
    assert_eq!(unescape(r"a\x00\xff\n\\").unwrap(), b"a\x00\xff\n\\");
    assert_eq!(unescape(r"\([)*3]\r").unwrap(), b"[[[]\r");
    assert!(unescape(r"\q").is_err());
    assert!(unescape(r"\x4").is_err());
    // Every file parses, and together they use every kind of step.
    let mut kinds = BTreeSet::new();
    for file in transcript_files() {
        let name = file.display().to_string();
        let t = parse(&name, &fs::read_to_string(&file).unwrap()).unwrap();
        kinds.extend(t.steps.iter().map(|(_, step)| match step {
            Step::Send(_) => "send",
            Step::Expect(_) => "expect",
            Step::Nothing => "nothing",
            Step::Eof => "eof",
            Step::End => "end",
        }));
    }
    assert_eq!(kinds.len(), 5, "{kinds:?}");
}
