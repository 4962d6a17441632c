//! Benchmark: tui-gateway against two floors, measured in the same run on
//! the same machine: `cat` (no per-line work at all) and a *floor gateway*,
//! the least a stdio JSON-RPC child can do: this same binary run as
//! `bench --floor CMD...`, with blocking I/O, answering each request line by
//! copying its id into a canned response without a JSON parser, and relaying
//! CMD's output in 64 KiB event frames that escape only what JSON requires.
//!
//! Run with `cargo run --release --example bench` (it builds and uses the
//! release binary `target/release/tui-gateway`; set `TUI_GATEWAY_BENCH_BIN`
//! to measure another build, such as an older one, against the same floors).
//! `bench --ratios` runs only the wall-clock ratios the speed targets are
//! stated in, each alternated with its baseline; `scripts/instructions`
//! counts instructions per request with callgrind (the stable measure).
//!
//! * start-up: exec to the first line (`gateway.ready`), against exec of
//!   `cat` to echoing one line;
//! * round trip: one `gateway.ping` at a time, against the floor and `cat`;
//! * pipelined: 100,000 pings written while responses are read, against the
//!   floor and `cat`;
//! * streaming text: a command writing 256 MiB of text, relayed as
//!   `process.output` events, against the floor and reading the command's
//!   stdout directly;
//! * streaming bytes: the same with 256 MiB of binary zeros as base64
//!   events, against reading directly;
//! * streaming through a terminal: 256 MiB printed on a PTY and relayed as
//!   `process.output` events with `"stream":"pty"`, against reading the
//!   same command's PTY master directly;
//! * spawn latency: `process.spawn` of `true` to its `process.exit`, on pipes
//!   and on a PTY, against `posix_spawn` of `true` and `waitpid` from this
//!   program (std's `Command` uses `posix_spawn` when it can);
//! * memory: the gateway's peak RSS (`VmHWM`) in each scenario;
//! * the bridge, `tui-gateway --backend-ready event -- bench --backend`,
//!   against the same minimal backend (this binary run as `bench --backend`:
//!   blocking I/O, each request answered with `true` under its id copied as
//!   bytes) talked to directly: round trip, pipelined requests, a flood of
//!   `message.delta` events (every text byte counted), and the gateway's
//!   peak RSS idle and under the flood. `bench --bridge-only` runs only
//!   these (and measures `cat`'s round trip itself);
//! * for context, pipelined `echo` requests through a real Python backend,
//!   `tui-gateway -- python3 tests/backends/fixture.py` (the bridge tests'
//!   standard-library fixture), against the same fixture talked to directly.

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

const STARTS: usize = 200;
const ROUND_TRIPS: usize = 20_000;
const PIPELINED: usize = 100_000;
const STREAM_BYTES: u64 = 256 << 20;
const PING: &str = r#"{"jsonrpc":"2.0","method":"gateway.ping","id":1}"#;
const SPAWNS: usize = 200;
/// Event bytes the backend writes in the bridge's flood scenario.
const FLOOD_BYTES: u64 = 200 << 20;
/// A request the bridge forwards (anything but `gateway.*`).
const BRIDGE_REQUEST: &str = r#"{"jsonrpc":"2.0","method":"ping","id":1}"#;
/// The minimal backend's first line: the ready the bridge merges into its own.
const BACKEND_READY: &str = r#"{"jsonrpc":"2.0","method":"event","params":{"type":"gateway.ready","payload":{"name":"bench-backend"}}}"#;
/// Pipelined `echo` requests in the Python backend scenario. Fewer than the
/// other pipelined scenarios: 100,000 requests (about 5.5 MiB) written at
/// once pass the default `--backend-stdin-limit` (4 MiB waiting for the
/// backend's stdin) while the fixture reads about 30,000 a second, and past
/// it the gateway answers `-32001` at once instead of forwarding; 30,000
/// (about 1.6 MiB) stay under it, and take about a second each way.
const PYTHON_PIPELINED: usize = 30_000;
/// The bridge tests' Python backend, relative to the repository.
const PYTHON_FIXTURE: &str = "tests/backends/fixture.py";
/// The texts of the flood's `message.delta` events, in turn: token-sized,
/// with a newline, quotes and non-ASCII letters to escape.
const DELTA_TEXTS: [&str; 16] = [
    "The",
    " quick",
    " brown",
    " fox",
    " jumps",
    " over",
    " the",
    " lazy",
    " dog",
    ",",
    "\n",
    " \"quoted\"",
    " café",
    " naïve",
    " 42",
    ".",
];

/// The text the streaming scenario relays: plain ASCII lines.
const TEXT_LINE: &str = "the quick brown fox jumps over the lazy dog 0123456789";

fn gateway_path() -> String {
    if let Ok(path) = std::env::var("TUI_GATEWAY_BENCH_BIN") {
        return path;
    }
    let exe = std::env::current_exe().expect("current exe");
    // target/release/examples/bench -> target/release/tui-gateway
    let dir = exe.parent().and_then(|p| p.parent()).expect("target dir");
    dir.join("tui-gateway").to_string_lossy().into_owned()
}

/// `cargo run --example` builds the example, not the binary: build it too,
/// with the same profile, so one command is enough.
fn build_gateway() {
    if std::env::var_os("TUI_GATEWAY_BENCH_BIN").is_some() {
        return;
    }
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.args(["build", "--quiet", "--bin", "tui-gateway"]);
    if !cfg!(debug_assertions) {
        cmd.arg("--release");
    }
    let status = cmd.status().expect("run cargo build");
    assert!(status.success(), "cargo build failed");
}

struct Peer {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: BufReader<std::process::ChildStdout>,
    line: String,
}

impl Peer {
    fn spawn(program: &str, args: &[&str]) -> Peer {
        let mut child = Command::new(program)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {program}: {e}"));
        let stdin = child.stdin.take();
        let stdout = BufReader::with_capacity(1 << 16, child.stdout.take().expect("stdout"));
        Peer {
            child,
            stdin,
            stdout,
            line: String::new(),
        }
    }

    fn gateway() -> Peer {
        let mut peer = Peer::spawn(&gateway_path(), &[]);
        assert!(peer.read_line().contains("gateway.ready"));
        peer
    }

    fn cat() -> Peer {
        Peer::spawn("cat", &[])
    }

    /// The floor gateway, relaying `command` when asked to spawn.
    fn floor(command: &[&str]) -> Peer {
        let exe = std::env::current_exe().expect("current exe");
        let mut args = vec!["--floor"];
        args.extend_from_slice(command);
        let mut peer = Peer::spawn(exe.to_str().expect("utf-8 path"), &args);
        assert!(peer.read_line().contains("gateway.ready"));
        peer
    }

    /// The minimal backend, talked to directly.
    fn backend() -> Peer {
        let exe = std::env::current_exe().expect("current exe");
        let mut peer = Peer::spawn(exe.to_str().expect("utf-8 path"), &["--backend"]);
        assert_eq!(peer.read_line().trim_end(), BACKEND_READY);
        peer
    }

    /// The gateway bridging to the minimal backend; returns once the merged
    /// ready (the backend's, with the gateway's added) is read.
    fn bridge() -> Peer {
        let exe = std::env::current_exe().expect("current exe");
        let exe = exe.to_str().expect("utf-8 path");
        let mut peer = Peer::spawn(
            &gateway_path(),
            &["--backend-ready", "event", "--", exe, "--backend"],
        );
        let ready = peer.read_line();
        assert!(
            ready.contains(r#""type":"gateway.ready""#)
                && ready.contains(r#""name":"bench-backend""#)
                && ready.contains(r#""gateway":"#),
            "the merged ready comes first: {ready}"
        );
        peer
    }

    /// The bridge tests' Python fixture, talked to directly.
    fn python() -> Peer {
        let fixture = python_fixture();
        let mut peer = Peer::spawn("python3", &[&fixture]);
        let ready = peer.read_line();
        assert!(
            ready.contains(r#""type":"gateway.ready""#) && ready.contains(r#""backend":"fixture""#),
            "the fixture's ready comes first: {ready}"
        );
        peer
    }

    /// The gateway bridging to the Python fixture; returns once the merged
    /// ready is read.
    fn python_bridge() -> Peer {
        let fixture = python_fixture();
        let mut peer = Peer::spawn(&gateway_path(), &["--", "python3", &fixture]);
        let ready = peer.read_line();
        assert!(
            ready.contains(r#""type":"gateway.ready""#)
                && ready.contains(r#""backend":"fixture""#)
                && ready.contains(r#""gateway":"#),
            "the merged ready comes first: {ready}"
        );
        peer
    }

    fn send(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().expect("stdin open");
        stdin.write_all(line.as_bytes()).expect("write");
        stdin.write_all(b"\n").expect("write");
        stdin.flush().expect("flush");
    }

    fn read_line(&mut self) -> &str {
        self.line.clear();
        let n = self.stdout.read_line(&mut self.line).expect("read");
        assert!(n > 0, "peer closed stdout early");
        &self.line
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn finish(mut self) {
        drop(self.stdin.take());
        let mut rest = Vec::new();
        let _ = self.stdout.read_to_end(&mut rest);
        let _ = self.child.wait();
    }
}

fn peak_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

fn print_percentiles(who: &str, sorted: &[Duration]) {
    println!(
        "  {who:<8} p50 {:8.1} µs   p99 {:8.1} µs",
        micros(percentile(sorted, 0.5)),
        micros(percentile(sorted, 0.99))
    );
}

fn start_up(gateway: bool) -> Vec<Duration> {
    let mut samples: Vec<Duration> = (0..STARTS)
        .map(|_| {
            let t = Instant::now();
            let mut peer = if gateway {
                Peer::gateway()
            } else {
                let mut p = Peer::cat();
                p.send("x");
                p.read_line();
                p
            };
            let elapsed = t.elapsed();
            drop(peer.stdin.take());
            let _ = peer.child.wait();
            elapsed
        })
        .collect();
    samples.sort();
    samples
}

fn round_trips(peer: &mut Peer, line: &str) -> Vec<Duration> {
    let mut samples: Vec<Duration> = (0..ROUND_TRIPS)
        .map(|_| {
            let t = Instant::now();
            peer.send(line);
            peer.read_line();
            t.elapsed()
        })
        .collect();
    samples.sort();
    samples
}

/// [`round_trips`] for several peers in turn, one request each, so that
/// all are measured over the same stretch of time. It does not make them
/// share a placement: on a 2-core VM a round trip is about 10 µs when the
/// peers hand one CPU to each other and about 80 µs when each wakes the
/// other's idle CPU, and where the scheduler puts them can differ from one
/// pair to the next (see [`on_one_cpu`]).
fn interleaved_round_trips<const N: usize>(
    mut peers: [(&mut Peer, &str); N],
) -> [Vec<Duration>; N] {
    let mut samples: [Vec<Duration>; N] = std::array::from_fn(|_| Vec::with_capacity(ROUND_TRIPS));
    for _ in 0..ROUND_TRIPS {
        for ((peer, line), samples) in peers.iter_mut().zip(samples.iter_mut()) {
            let t = Instant::now();
            peer.send(line);
            peer.read_line();
            samples.push(t.elapsed());
        }
    }
    for s in samples.iter_mut() {
        s.sort();
    }
    samples
}

/// Writes `count` lines from a second thread while this one reads the answers.
fn pipelined(peer: &mut Peer, line: &str, count: usize) -> Duration {
    let mut payload = String::with_capacity((line.len() + 1) * count);
    for _ in 0..count {
        payload.push_str(line);
        payload.push('\n');
    }
    pipelined_with(peer, payload, count, |_| {})
}

/// Writes `payload` (`count` lines) from a second thread while this one
/// reads `count` answers, each shown to `check`.
fn pipelined_with(
    peer: &mut Peer,
    payload: String,
    count: usize,
    mut check: impl FnMut(&str),
) -> Duration {
    let mut stdin = peer.stdin.take().expect("stdin");
    let t = Instant::now();
    let writer = std::thread::spawn(move || {
        stdin.write_all(payload.as_bytes()).expect("write");
        stdin
    });
    for _ in 0..count {
        check(peer.read_line());
    }
    let elapsed = t.elapsed();
    peer.stdin = Some(writer.join().expect("writer"));
    elapsed
}

/// `sh -c` command writing 256 MiB of text lines.
fn text_command() -> String {
    format!("yes '{TEXT_LINE}' | head -c {STREAM_BYTES}")
}

/// Spawns `argv` through `peer` (the gateway or the floor) and reads every
/// `process.output` until `process.exit`; returns the time and the payload
/// bytes (decoded from base64 when `base64`).
fn relay(peer: &mut Peer, argv: &[&str], base64: bool) -> (Duration, u64) {
    relay_with(peer, argv, base64, "")
}

/// [`relay`] with extra `process.spawn` params (`,"pty":{...}`).
fn relay_with(peer: &mut Peer, argv: &[&str], base64: bool, extra: &str) -> (Duration, u64) {
    let argv: Vec<String> = argv.iter().map(|a| format!("{a:?}")).collect();
    let encoding = if base64 {
        format!(r#","encoding":"base64"{extra}"#)
    } else {
        extra.to_owned()
    };
    let t = Instant::now();
    peer.send(&format!(
        r#"{{"jsonrpc":"2.0","method":"process.spawn","params":{{"argv":[{}]{encoding}}},"id":1}}"#,
        argv.join(",")
    ));
    let mut payload = 0u64;
    loop {
        let line = peer.read_line();
        if line.contains(r#""type":"process.exit""#) {
            break;
        }
        if let Some(start) = line.find(r#""data":""#) {
            let rest = &line[start + 8..];
            let end = rest.find("\"}").expect("end of data");
            let data = &rest[..end];
            payload += if base64 {
                let padding = data.bytes().rev().take_while(|&b| b == b'=').count();
                (data.len() / 4 * 3 - padding) as u64
            } else {
                // Text lines: every `\n` in the payload is two bytes on the wire.
                (data.len() - data.matches("\\n").count()) as u64
            };
        }
    }
    (t.elapsed(), payload)
}

fn stream_through_gateway() -> (Duration, u64, u64) {
    let mut peer = Peer::gateway();
    let bytes = STREAM_BYTES.to_string();
    let (elapsed, decoded) = relay(&mut peer, &["head", "-c", &bytes, "/dev/zero"], true);
    let rss = peak_rss_kib(peer.pid());
    peer.finish();
    (elapsed, decoded, rss)
}

fn stream_direct(argv: &[&str]) -> (Duration, u64) {
    let t = Instant::now();
    let mut child = Command::new(argv[0])
        .args(&argv[1..])
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn the streaming command");
    let mut out = child.stdout.take().expect("stdout");
    let mut buf = vec![0u8; 1 << 16];
    let mut total = 0u64;
    loop {
        let n = out.read(&mut buf).expect("read");
        if n == 0 {
            break;
        }
        total += n as u64;
    }
    let _ = child.wait();
    (t.elapsed(), total)
}

/// The floor gateway: blocking I/O, no JSON parser. Answers every request
/// line with a canned result carrying the line's id, copied as bytes; on
/// `process.spawn` it runs `command` and relays its stdout in 64 KiB event
/// frames, escaping only what a JSON string requires, then an exit event.
fn floor_main(command: &[String]) {
    let stdin = std::io::stdin();
    let mut input = BufReader::with_capacity(1 << 16, stdin.lock());
    let mut out = std::io::BufWriter::with_capacity(1 << 16, std::io::stdout().lock());
    out.write_all(b"{\"jsonrpc\":\"2.0\",\"method\":\"event\",\"params\":{\"type\":\"gateway.ready\",\"payload\":{}}}\n")
        .expect("write");
    out.flush().expect("flush");
    let mut line = Vec::new();
    loop {
        line.clear();
        if input.read_until(b'\n', &mut line).expect("read") == 0 {
            return;
        }
        let id = find_id(&line);
        let spawn = finders().spawn.find(&line).is_some();
        out.write_all(b"{\"jsonrpc\":\"2.0\",\"result\":{\"ok\":true},\"id\":")
            .expect("write");
        out.write_all(id).expect("write");
        out.write_all(b"}\n").expect("write");
        if spawn {
            relay_child(command, &mut out);
        }
        // Flush when no more input is buffered: batches writes when pipelined.
        if input.buffer().is_empty() {
            out.flush().expect("flush");
        }
    }
}

/// The substring searches of the floor and the minimal backend, built once
/// (memchr's SIMD searchers: the floor must cost no more than it has to).
struct Finders {
    id: memchr::memmem::Finder<'static>,
    spawn: memchr::memmem::Finder<'static>,
    flood: memchr::memmem::Finder<'static>,
}

fn finders() -> &'static Finders {
    static FINDERS: std::sync::OnceLock<Finders> = std::sync::OnceLock::new();
    FINDERS.get_or_init(|| Finders {
        id: memchr::memmem::Finder::new(b"\"id\":"),
        spawn: memchr::memmem::Finder::new(b"\"process.spawn\""),
        flood: memchr::memmem::Finder::new(b"\"method\":\"flood\""),
    })
}

/// The bytes of the `"id":` value in a request line (up to `,` or `}`).
fn find_id(line: &[u8]) -> &[u8] {
    let Some(at) = finders().id.find(line) else {
        return b"null";
    };
    let rest = &line[at + 5..];
    let end = memchr::memchr2(b',', b'}', rest).unwrap_or(rest.len());
    &rest[..end]
}

fn relay_child(command: &[String], out: &mut impl Write) {
    let mut child = Command::new(&command[0])
        .args(&command[1..])
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn the floor's command");
    let mut pipe = child.stdout.take().expect("stdout");
    let mut buf = vec![0u8; 1 << 16];
    let mut frame = Vec::with_capacity(1 << 17);
    loop {
        let n = pipe.read(&mut buf).expect("read");
        if n == 0 {
            break;
        }
        frame.clear();
        frame.extend_from_slice(
            b"{\"jsonrpc\":\"2.0\",\"method\":\"event\",\"params\":{\"type\":\"process.output\",\"payload\":{\"proc\":1,\"stream\":\"stdout\",\"data\":\"",
        );
        for &b in &buf[..n] {
            match b {
                b'"' => frame.extend_from_slice(b"\\\""),
                b'\\' => frame.extend_from_slice(b"\\\\"),
                b'\n' => frame.extend_from_slice(b"\\n"),
                0..=0x1f => frame.extend_from_slice(format!("\\u{b:04x}").as_bytes()),
                _ => frame.push(b),
            }
        }
        frame.extend_from_slice(b"\"}}}\n");
        out.write_all(&frame).expect("write");
    }
    let status = child.wait().expect("wait");
    out.write_all(
        format!(
            "{{\"jsonrpc\":\"2.0\",\"method\":\"event\",\"params\":{{\"type\":\"process.exit\",\"payload\":{{\"proc\":1,\"code\":{},\"signal\":null}}}}}}\n",
            status.code().unwrap_or(-1)
        )
        .as_bytes(),
    )
    .expect("write");
    out.flush().expect("flush");
}

/// Runs `sh -c command` on a fresh PTY and reads the master until `EIO`;
/// returns the time and the bytes read.
fn pty_direct(command: &str) -> (Duration, u64) {
    use std::os::fd::AsRawFd;
    use std::os::unix::process::CommandExt;
    use tui_gateway::shell::sys::pty;
    // The gateway's own opener; this reader blocks, so the master does too.
    let pty::Pair { master, slave } = pty::open(pty::Size { rows: 24, cols: 80 }).expect("openpty");
    // SAFETY: fcntl on a valid fd with integer arguments.
    unsafe {
        let flags = libc::fcntl(master.as_raw_fd(), libc::F_GETFL);
        libc::fcntl(master.as_raw_fd(), libc::F_SETFL, flags & !libc::O_NONBLOCK);
    }
    let t = Instant::now();
    let mut cmd = Command::new("sh");
    cmd.args(["-c", command])
        .stdin(Stdio::from(slave.try_clone().expect("dup")))
        .stdout(Stdio::from(slave.try_clone().expect("dup")))
        .stderr(Stdio::from(slave));
    // SAFETY: setsid and ioctl are async-signal-safe.
    unsafe {
        cmd.pre_exec(|| {
            libc::setsid();
            libc::ioctl(0, libc::TIOCSCTTY as _, 0);
            Ok(())
        });
    }
    let mut child = cmd.spawn().expect("spawn on the pty");
    drop(cmd);
    let fd = master.as_raw_fd();
    let mut file = std::fs::File::from(master);
    let mut buf = vec![0u8; 1 << 16];
    let mut total = 0u64;
    loop {
        match file.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => total += n as u64,
            Err(e) if e.raw_os_error() == Some(libc::EIO) => break,
            Err(e) => panic!("reading pty {fd}: {e}"),
        }
    }
    let elapsed = t.elapsed();
    let _ = child.wait();
    (elapsed, total)
}

/// `process.spawn` of `true` to its `process.exit`, `SPAWNS` times.
fn spawn_latency(peer: &mut Peer, extra: &str) -> Vec<Duration> {
    let mut samples: Vec<Duration> = (0..SPAWNS).map(|i| spawn_once(peer, extra, i)).collect();
    samples.sort();
    samples
}

/// `posix_spawn` of `true` (through std) and `waitpid`, `SPAWNS` times.
fn spawn_latency_direct() -> Vec<Duration> {
    let mut samples: Vec<Duration> = (0..SPAWNS).map(|_| spawn_once_direct()).collect();
    samples.sort();
    samples
}

fn ratio(gateway: f64, floor: f64) -> String {
    format!("{:.2} x the floor", gateway / floor)
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("--floor") => return floor_main(&args[1..]),
        Some("--backend") => return backend_main(),
        Some("--bridge-only") => {
            build_gateway();
            return bridge_scenarios(None);
        }
        Some("--ratios") => {
            build_gateway();
            return ratios();
        }
        _ => {}
    }
    build_gateway();
    println!("tui-gateway benchmark: {}", gateway_path());
    println!("against the floor gateway and `cat`, in the same run\n");

    let g = start_up(true);
    let c = start_up(false);
    println!("start-up, exec to first line ({STARTS} runs)");
    print_percentiles("gateway", &g);
    print_percentiles("cat", &c);

    let text = text_command();
    let text_argv = ["sh", "-c", text.as_str()];
    let mut gw = Peer::gateway();
    let mut floor = Peer::floor(&text_argv);
    let mut cat = Peer::cat();
    let g = round_trips(&mut gw, PING);
    let f = round_trips(&mut floor, PING);
    let c = round_trips(&mut cat, PING);
    println!("\nround trip, one request at a time ({ROUND_TRIPS} requests)");
    print_percentiles("gateway", &g);
    print_percentiles("floor", &f);
    print_percentiles("cat", &c);
    println!("  gateway p50 = {}", ratio(p50(&g), p50(&f)));
    let cat_p50 = p50(&c);

    let g = pipelined(&mut gw, PING, PIPELINED);
    let f = pipelined(&mut floor, PING, PIPELINED);
    let c = pipelined(&mut cat, PING, PIPELINED);
    let rss = peak_rss_kib(gw.pid());
    let rate = |d: Duration| PIPELINED as f64 / d.as_secs_f64();
    println!("\npipelined, {PIPELINED} pings in flight");
    println!("  gateway  {:10.0} requests/s", rate(g));
    println!("  floor    {:10.0} requests/s", rate(f));
    println!("  cat      {:10.0} lines/s", rate(c));
    println!("  gateway = {}", ratio(rate(g), rate(f)));
    println!("  gateway peak RSS {:.1} MiB", rss as f64 / 1024.0);
    gw.finish();
    cat.finish();

    let mut gw = Peer::gateway();
    let (g, g_bytes) = relay(&mut gw, &text_argv, false);
    let rss = peak_rss_kib(gw.pid());
    gw.finish();
    let (f, f_bytes) = relay(&mut floor, &text_argv, false);
    floor.finish();
    let (d, direct) = stream_direct(&text_argv);
    assert_eq!(g_bytes, STREAM_BYTES, "every byte relayed by the gateway");
    assert_eq!(f_bytes, STREAM_BYTES, "every byte relayed by the floor");
    assert_eq!(direct, STREAM_BYTES);
    let mibs = |bytes: u64, t: Duration| (bytes >> 20) as f64 / t.as_secs_f64();
    println!(
        "\nstreaming {} MiB of child text (process.output events)",
        STREAM_BYTES >> 20
    );
    println!("  gateway  {:8.0} MiB/s", mibs(g_bytes, g));
    println!("  floor    {:8.0} MiB/s", mibs(f_bytes, f));
    println!(
        "  direct   {:8.0} MiB/s (reading the command's pipe, no gateway)",
        mibs(direct, d)
    );
    println!("  gateway = {}", ratio(mibs(g_bytes, g), mibs(f_bytes, f)));
    println!("  gateway peak RSS {:.1} MiB", rss as f64 / 1024.0);

    let bytes = STREAM_BYTES.to_string();
    let zeros = ["head", "-c", bytes.as_str(), "/dev/zero"];
    let (g, g_bytes, rss) = stream_through_gateway();
    let (d, direct) = stream_direct(&zeros);
    assert_eq!(g_bytes, STREAM_BYTES, "every byte relayed");
    assert_eq!(direct, STREAM_BYTES);
    println!(
        "\nstreaming {} MiB of child bytes (base64 process.output events)",
        STREAM_BYTES >> 20
    );
    println!("  gateway  {:8.0} MiB/s of payload", mibs(g_bytes, g));
    println!(
        "  direct   {:8.0} MiB/s (reading the child's pipe, no gateway)",
        mibs(direct, d)
    );
    println!("  gateway peak RSS {:.1} MiB", rss as f64 / 1024.0);

    let supports_pty = {
        let mut probe = Peer::spawn(&gateway_path(), &[]);
        let ready = probe.read_line().to_owned();
        probe.finish();
        ready.contains("process.resize")
    };
    if !supports_pty {
        println!("\n(this build has no pseudo-terminals: the PTY scenarios are skipped)");
    } else {
        terminal_scenarios();
    }
    let mut gw = Peer::gateway();
    let pipes = spawn_latency(&mut gw, "");
    let ptys = supports_pty.then(|| spawn_latency(&mut gw, r#","pty":{"rows":24,"cols":80}"#));
    gw.finish();
    let direct = spawn_latency_direct();
    println!("\nspawn latency: `true` from spawn to exit ({SPAWNS} runs)");
    print_percentiles("pipes", &pipes);
    if let Some(ptys) = &ptys {
        print_percentiles("pty", ptys);
    }
    print_percentiles("direct", &direct);
    println!("  pipes = {:.2} x direct (p50)", p50(&pipes) / p50(&direct));
    if let Some(ptys) = &ptys {
        println!("  pty   = {:.2} x direct (p50)", p50(ptys) / p50(&direct));
    }

    bridge_scenarios(Some(cat_p50));
}

/// Rounds of each alternated comparison in [`ratios`].
const RATIO_ROUNDS: usize = 7;

/// The wall-clock ratios the speed targets are stated in, each measured
/// alternately against its baseline in the same run (gateway, baseline,
/// gateway, ...), so a noisy machine moves both sides alike; the median
/// of the per-round ratios is reported, with the spread.
fn ratios() {
    println!(
        "tui-gateway wall-clock ratios, alternated: {}",
        gateway_path()
    );
    let median = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        (v[v.len() / 2], v[0], v[v.len() - 1])
    };
    let show = |what: &str, (mid, lo, hi): (f64, f64, f64), target: &str| {
        println!("  {what:<44} {mid:5.2} x  (rounds {lo:.2}-{hi:.2}; target {target})");
    };

    let mut gw = Peer::gateway();
    let mut floor = Peer::floor(&["true"]);
    let mut rounds = Vec::new();
    for _ in 0..RATIO_ROUNDS {
        let g = pipelined(&mut gw, PING, PIPELINED);
        let f = pipelined(&mut floor, PING, PIPELINED);
        rounds.push(f.as_secs_f64() / g.as_secs_f64());
    }
    gw.finish();
    floor.finish();
    show(
        "pipelined pings, gateway / floor throughput",
        median(rounds),
        ">= 0.8",
    );

    let mut bridge = Peer::bridge();
    let mut direct = Peer::backend();
    let mut rounds = Vec::new();
    for _ in 0..RATIO_ROUNDS {
        let (b, b_errors) = bridge_pipelined(&mut bridge);
        let (d, d_errors) = bridge_pipelined(&mut direct);
        assert_eq!((b_errors, d_errors), (0, 0), "every request answered true");
        rounds.push(d.as_secs_f64() / b.as_secs_f64());
    }
    bridge.finish();
    direct.finish();
    show(
        "pipelined requests, bridge / direct throughput",
        median(rounds),
        ">= 0.3",
    );

    // Spawn to exit: one gateway spawn, one posix_spawn, in turn.
    let mut gw = Peer::gateway();
    let (mut pipes, mut ptys, mut direct) = (Vec::new(), Vec::new(), Vec::new());
    let pty = r#","pty":{"rows":24,"cols":80}"#;
    for i in 0..SPAWNS {
        pipes.push(spawn_once(&mut gw, "", 2 * i));
        direct.push(spawn_once_direct());
        ptys.push(spawn_once(&mut gw, pty, 2 * i + 1));
        direct.push(spawn_once_direct());
    }
    gw.finish();
    for v in [&mut pipes, &mut ptys, &mut direct] {
        v.sort();
    }
    let d = p50(&direct);
    println!(
        "  spawn of `true` to its exit, p50 ({SPAWNS} each): pipes {:.0} us, PTY {:.0} us, posix_spawn {d:.0} us",
        p50(&pipes),
        p50(&ptys)
    );
    println!(
        "  {:<44} {:5.2} x  (target <= 1.25)",
        "spawn on pipes / posix_spawn",
        p50(&pipes) / d
    );
    println!(
        "  {:<44} {:5.2} x  (target <= 1.35)",
        "spawn on a PTY / posix_spawn",
        p50(&ptys) / d
    );
}

/// One `process.spawn` of `true` to its `process.exit`.
fn spawn_once(peer: &mut Peer, extra: &str, id: usize) -> Duration {
    let t = Instant::now();
    peer.send(&format!(
        r#"{{"jsonrpc":"2.0","method":"process.spawn","params":{{"argv":["true"]{extra}}},"id":{id}}}"#
    ));
    loop {
        let line = peer.read_line();
        assert!(!line.contains(r#""error""#), "spawn failed: {line}");
        if line.contains(r#""type":"process.exit""#) {
            break;
        }
    }
    t.elapsed()
}

/// One `posix_spawn` of `true` (through std) and its `waitpid`.
fn spawn_once_direct() -> Duration {
    let t = Instant::now();
    let status = Command::new("true").status().expect("spawn true");
    assert!(status.success());
    t.elapsed()
}

fn p50(samples: &[Duration]) -> f64 {
    micros(percentile(samples, 0.5))
}

fn terminal_scenarios() {
    let mibs = |bytes: u64, t: Duration| (bytes >> 20) as f64 / t.as_secs_f64();
    let letters = format!("head -c {STREAM_BYTES} /dev/zero | tr '\\0' a");
    let mut gw = Peer::gateway();
    let (g, g_bytes) = relay_with(
        &mut gw,
        &["sh", "-c", &letters],
        false,
        r#","pty":{"rows":24,"cols":80}"#,
    );
    let rss = peak_rss_kib(gw.pid());
    gw.finish();
    let (d, direct) = pty_direct(&letters);
    assert_eq!(
        g_bytes, STREAM_BYTES,
        "every byte relayed from the terminal"
    );
    assert_eq!(direct, STREAM_BYTES);
    println!(
        "\nstreaming {} MiB through a pseudo-terminal (process.output, stream pty)",
        STREAM_BYTES >> 20
    );
    println!("  gateway  {:8.0} MiB/s", mibs(g_bytes, g));
    println!(
        "  direct   {:8.0} MiB/s (reading the same command's PTY master)",
        mibs(direct, d)
    );
    println!(
        "  gateway = {:.2} x direct",
        mibs(g_bytes, g) / mibs(direct, d)
    );
    println!("  gateway peak RSS {:.1} MiB", rss as f64 / 1024.0);
}

/// The minimal backend: blocking I/O, no JSON parser. Its first line is
/// [`BACKEND_READY`]; it answers every request line with `true` under the
/// line's id, copied as bytes, and flushes when no more input is buffered.
/// A request for method `flood` (`"params":{"bytes":N}`) is answered after N
/// bytes of `message.delta` event lines, with what it wrote:
/// `{"bytes":..,"lines":..,"text_bytes":..}`.
fn backend_main() {
    let stdin = std::io::stdin();
    let mut input = BufReader::with_capacity(1 << 16, stdin.lock());
    let mut out = std::io::BufWriter::with_capacity(1 << 16, std::io::stdout().lock());
    out.write_all(BACKEND_READY.as_bytes()).expect("write");
    out.write_all(b"\n").expect("write");
    out.flush().expect("flush");
    let deltas = delta_lines();
    let mut line = Vec::new();
    loop {
        line.clear();
        if input.read_until(b'\n', &mut line).expect("read") == 0 {
            return;
        }
        // A notification gets no answer.
        if finders().id.find(&line).is_some() {
            let id = find_id(&line);
            let result = if finders().flood.find(&line).is_some() {
                let bytes = number_after(&line, b"\"bytes\":");
                let (written, lines, text) = write_deltas(&mut out, &deltas, bytes);
                format!(r#"{{"bytes":{written},"lines":{lines},"text_bytes":{text}}}"#)
            } else {
                "true".to_owned()
            };
            out.write_all(b"{\"jsonrpc\":\"2.0\",\"id\":")
                .expect("write");
            out.write_all(id).expect("write");
            out.write_all(b",\"result\":").expect("write");
            out.write_all(result.as_bytes()).expect("write");
            out.write_all(b"}\n").expect("write");
        }
        if input.buffer().is_empty() {
            out.flush().expect("flush");
        }
    }
}

/// The unsigned integer after `key` in `line` (0 when absent).
fn number_after(line: &[u8], key: &[u8]) -> u64 {
    let Some(at) = memchr::memmem::find(line, key) else {
        return 0;
    };
    line[at + key.len()..]
        .iter()
        .take_while(|b| b.is_ascii_digit())
        .fold(0, |n, &b| n * 10 + u64::from(b - b'0'))
}

/// Each of [`DELTA_TEXTS`] as a whole `message.delta` line, with its
/// text's length in bytes.
fn delta_lines() -> Vec<(Vec<u8>, u64)> {
    DELTA_TEXTS
        .iter()
        .map(|text| {
            let line = format!(
                r#"{{"jsonrpc":"2.0","method":"event","params":{{"type":"message.delta","payload":{{"text":{}}}}}}}"#,
                serde_json::to_string(text).expect("a string")
            ) + "\n";
            (line.into_bytes(), text.len() as u64)
        })
        .collect()
}

/// Writes delta lines, in turn, until `bytes` are written; returns the
/// bytes, the lines and the text bytes written.
fn write_deltas(out: &mut impl Write, deltas: &[(Vec<u8>, u64)], bytes: u64) -> (u64, u64, u64) {
    let (mut written, mut lines, mut text) = (0u64, 0u64, 0u64);
    for (line, len) in deltas.iter().cycle() {
        if written >= bytes {
            break;
        }
        out.write_all(line).expect("write");
        written += line.len() as u64;
        lines += 1;
        text += len;
    }
    (written, lines, text)
}

/// One line read in the flood: a `message.delta` event, or the answer.
#[derive(serde::Deserialize)]
struct FloodLine<'a> {
    #[serde(borrow, default)]
    params: Option<EventParams<'a>>,
    #[serde(default)]
    result: Option<FloodResult>,
    #[serde(borrow, default)]
    error: Option<&'a serde_json::value::RawValue>,
}

#[derive(serde::Deserialize)]
struct EventParams<'a> {
    #[serde(borrow, rename = "type")]
    kind: std::borrow::Cow<'a, str>,
    #[serde(borrow, default)]
    payload: Option<DeltaPayload<'a>>,
}

#[derive(serde::Deserialize)]
struct DeltaPayload<'a> {
    #[serde(borrow, default)]
    text: Option<std::borrow::Cow<'a, str>>,
}

/// What the backend said it wrote.
#[derive(serde::Deserialize)]
struct FloodResult {
    bytes: u64,
    lines: u64,
    text_bytes: u64,
}

/// The flood as read by the client.
struct Flood {
    elapsed: Duration,
    sent: FloodResult,
    /// Delta events read, their text bytes, and all bytes read.
    lines_read: u64,
    text_read: u64,
    bytes_read: u64,
}

impl Flood {
    fn mibs(&self) -> f64 {
        self.sent.bytes as f64 / (1 << 20) as f64 / self.elapsed.as_secs_f64()
    }
}

/// Asks `peer` (the backend, directly or through the bridge) for
/// `FLOOD_BYTES` of delta events and reads until the answer, parsing every
/// line and adding up the delta texts; checks that none is lost.
fn flood(peer: &mut Peer) -> Flood {
    let t = Instant::now();
    peer.send(&format!(
        r#"{{"jsonrpc":"2.0","method":"flood","params":{{"bytes":{FLOOD_BYTES}}},"id":"flood"}}"#
    ));
    let (mut lines_read, mut text_read, mut bytes_read) = (0u64, 0u64, 0u64);
    let mut line = Vec::with_capacity(1 << 16);
    let sent = loop {
        line.clear();
        let n = peer.stdout.read_until(b'\n', &mut line).expect("read");
        assert!(n > 0, "peer closed stdout before the flood's answer");
        bytes_read += n as u64;
        let frame: FloodLine = serde_json::from_slice(&line).unwrap_or_else(|e| {
            panic!("{e} in line {:?}", String::from_utf8_lossy(&line));
        });
        if let Some(error) = frame.error {
            panic!("the flood failed: {}", error.get());
        }
        if let Some(result) = frame.result {
            break result;
        }
        if let Some(params) = frame.params.filter(|p| p.kind == "message.delta") {
            lines_read += 1;
            text_read += params
                .payload
                .and_then(|p| p.text)
                .map_or(0, |text| text.len() as u64);
        }
    };
    let elapsed = t.elapsed();
    assert_eq!(
        text_read, sent.text_bytes,
        "every delta text byte the backend wrote was read ({} delta lines read, {} written)",
        lines_read, sent.lines
    );
    Flood {
        elapsed,
        sent,
        lines_read,
        text_read,
        bytes_read,
    }
}

/// Round trips through the bridge, to the backend directly and to `cat`,
/// in turn.
struct BridgeRoundTrips {
    bridge: Vec<Duration>,
    direct: Vec<Duration>,
    cat: Vec<Duration>,
}

impl BridgeRoundTrips {
    /// The target: the bridge's p50 at most the direct p50 plus 1.5 times
    /// `cat`'s (one more hop through a pipe, and a little work).
    fn limit(&self) -> f64 {
        p50(&self.direct) + 1.5 * p50(&self.cat)
    }

    fn met(&self) -> bool {
        p50(&self.bridge) <= self.limit()
    }

    fn print(&self, how: &str) {
        println!(
            "\nround trip, one request at a time{how}: bridge, direct and cat in turn ({ROUND_TRIPS} each)"
        );
        print_percentiles("bridge", &self.bridge);
        print_percentiles("direct", &self.direct);
        print_percentiles("cat", &self.cat);
        let extra = p50(&self.bridge) - p50(&self.direct);
        println!(
            "  bridge p50 - direct p50 = {extra:.1} µs = {:.2} x cat p50 (target ≤ 1.5: bridge p50 ≤ {:.1} µs)",
            extra / p50(&self.cat),
            self.limit()
        );
    }

    fn row(&self, how: &str) -> String {
        format!(
            "| round trip, one request at a time{how}, p50 / p99 ({}) | {:.0} / {:.0} µs | {:.0} / {:.0} µs | p50 ≤ direct + 1.5 × `cat` p50 ({:.0} µs) = {:.0} µs | {} |",
            thousands(ROUND_TRIPS as u64),
            p50(&self.bridge),
            micros(percentile(&self.bridge, 0.99)),
            p50(&self.direct),
            micros(percentile(&self.direct, 0.99)),
            p50(&self.cat),
            self.limit(),
            yes_no(self.met())
        )
    }
}

/// One request at a time through `bridge`, to `direct` and to a `cat`, in
/// turn.
fn bridge_round_trips(bridge: &mut Peer, direct: &mut Peer) -> BridgeRoundTrips {
    let mut cat = Peer::cat();
    let [bridge_samples, direct_samples, cat_samples] = interleaved_round_trips([
        (bridge, BRIDGE_REQUEST),
        (direct, BRIDGE_REQUEST),
        (&mut cat, PING),
    ]);
    cat.finish();
    for peer in [bridge, direct] {
        assert!(
            peer.line.contains(r#""id":1,"result":true"#),
            "{}",
            peer.line
        );
    }
    BridgeRoundTrips {
        bridge: bridge_samples,
        direct: direct_samples,
        cat: cat_samples,
    }
}

/// Runs `f` with this thread, and so every process it starts, on one CPU
/// (the first it may use), then restores its affinity. The processes then
/// hand the CPU to each other instead of waking an idle one: a round trip
/// measures their own work and context switches, the same from run to run.
fn on_one_cpu<T>(f: impl FnOnce() -> T) -> T {
    let size = std::mem::size_of::<libc::cpu_set_t>();
    // SAFETY: cpu_set_t is plain data, zero is an empty set, and every call
    // gets the set's size.
    let before = unsafe {
        let mut before: libc::cpu_set_t = std::mem::zeroed();
        libc::sched_getaffinity(0, size, &mut before);
        let first = (0..libc::CPU_SETSIZE as usize)
            .find(|&cpu| libc::CPU_ISSET(cpu, &before))
            .unwrap_or(0);
        let mut one: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(first, &mut one);
        libc::sched_setaffinity(0, size, &one);
        before
    };
    let result = f();
    // SAFETY: as above.
    unsafe { libc::sched_setaffinity(0, size, &before) };
    result
}

/// `count` requests with distinct ids, one a line.
fn numbered_requests(count: usize) -> String {
    let mut payload = String::with_capacity(48 * count);
    for id in 0..count {
        payload.push_str(r#"{"jsonrpc":"2.0","method":"ping","id":"#);
        payload.push_str(&id.to_string());
        payload.push_str("}\n");
    }
    payload
}

/// Pipelined requests with distinct ids: the time, and how many answers
/// were errors (a refusal such as `-32001` would make the rate meaningless).
fn bridge_pipelined(peer: &mut Peer) -> (Duration, usize) {
    let mut errors = 0;
    let elapsed = pipelined_with(peer, numbered_requests(PIPELINED), PIPELINED, |line| {
        if !line.contains(r#""result":true"#) {
            errors += 1;
        }
    });
    (elapsed, errors)
}

/// The absolute path of [`PYTHON_FIXTURE`].
fn python_fixture() -> String {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join(PYTHON_FIXTURE)
        .to_str()
        .expect("utf-8 path")
        .to_owned()
}

/// Whether `python3` runs at all.
fn have_python3() -> bool {
    Command::new("python3")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// `count` `echo` requests with distinct numeric ids and params `[1]`, one
/// a line. The id comes before the params: the fixture cuts each member out
/// of the line as raw text, and before 4a65008 it ran off the end of a bare
/// number as the last member.
fn echo_requests(count: usize) -> String {
    let mut payload = String::with_capacity(56 * count);
    for id in 0..count {
        payload.push_str(r#"{"jsonrpc":"2.0","id":"#);
        payload.push_str(&id.to_string());
        payload.push_str(r#","method":"echo","params":[1]}"#);
        payload.push('\n');
    }
    payload
}

/// [`PYTHON_PIPELINED`] `echo` requests written from a second thread while
/// this one reads until every id is answered: the time, and how many
/// answers were not the echoed `[1]`.
fn python_pipelined(peer: &mut Peer) -> (Duration, usize) {
    let count = PYTHON_PIPELINED;
    let payload = echo_requests(count);
    let mut answered = vec![false; count];
    let mut left = count;
    let mut errors = 0;
    let mut stdin = peer.stdin.take().expect("stdin");
    let t = Instant::now();
    let writer = std::thread::spawn(move || {
        stdin.write_all(payload.as_bytes()).expect("write");
        stdin
    });
    while left > 0 {
        let line = peer.read_line();
        // Anything without an id (an event) answers nothing.
        if !line.contains(r#""id":"#) {
            continue;
        }
        let id: usize = std::str::from_utf8(find_id(line.as_bytes()))
            .ok()
            .and_then(|id| id.trim().parse().ok())
            .filter(|&id| id < count)
            .unwrap_or_else(|| panic!("an answer to none of the requests: {line}"));
        assert!(!answered[id], "id {id} answered twice: {line}");
        answered[id] = true;
        left -= 1;
        if !line.contains(r#""result":[1]"#) {
            errors += 1;
        }
    }
    let elapsed = t.elapsed();
    peer.stdin = Some(writer.join().expect("writer"));
    (elapsed, errors)
}

/// The Python scenario's numbers.
struct PythonPipelined {
    bridge: Duration,
    direct: Duration,
    bridge_errors: usize,
}

impl PythonPipelined {
    fn rate(t: Duration) -> f64 {
        PYTHON_PIPELINED as f64 / t.as_secs_f64()
    }

    fn ratio(&self) -> f64 {
        Self::rate(self.bridge) / Self::rate(self.direct)
    }
}

/// Pipelined `echo` requests through the bridge to the Python fixture and
/// to the fixture directly; `None` without `python3`.
fn python_scenario() -> Option<PythonPipelined> {
    println!(
        "\npipelined through a real Python backend: python3 {PYTHON_FIXTURE}, {PYTHON_PIPELINED} `echo` requests in flight (distinct ids)"
    );
    if !have_python3() {
        println!("  (no python3: skipped)");
        return None;
    }
    let mut bridge = Peer::python_bridge();
    let (bridge_time, bridge_errors) = python_pipelined(&mut bridge);
    bridge.finish();
    let mut direct = Peer::python();
    let (direct_time, direct_errors) = python_pipelined(&mut direct);
    direct.finish();
    assert_eq!(direct_errors, 0, "the fixture echoes every request");
    let p = PythonPipelined {
        bridge: bridge_time,
        direct: direct_time,
        bridge_errors,
    };
    println!(
        "  bridge   {:10.0} requests/s",
        PythonPipelined::rate(p.bridge)
    );
    println!(
        "  direct   {:10.0} requests/s",
        PythonPipelined::rate(p.direct)
    );
    println!(
        "  bridge = {:.2} x direct (context: a real backend, no target)",
        p.ratio()
    );
    if bridge_errors > 0 {
        println!("  bridge answered {bridge_errors} requests with something else than [1]");
    }
    Some(p)
}

/// `n` with thousands separators, as in the README: `100,000`.
fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn yes_no(met: bool) -> &'static str {
    if met {
        "yes"
    } else {
        "**no**"
    }
}

/// The bridge against the same backend talked to directly, in the same
/// run; `earlier_cat_p50` is `cat`'s round trip p50 in µs from the round
/// trip section, shown beside the one measured here.
fn bridge_scenarios(earlier_cat_p50: Option<f64>) {
    let backend = std::env::current_exe().expect("current exe");
    println!(
        "\nbridge: {} --backend-ready event -- {} --backend",
        gateway_path(),
        backend.display()
    );
    println!("against the same backend talked to directly, in the same run");

    // Idle: right after the merged ready, before any request.
    let mut bridge = Peer::bridge();
    let idle_rss = peak_rss_kib(bridge.pid());
    let mut direct = Peer::backend();
    let free = bridge_round_trips(&mut bridge, &mut direct);
    let pinned = on_one_cpu(|| {
        let mut bridge = Peer::bridge();
        let mut direct = Peer::backend();
        let pinned = bridge_round_trips(&mut bridge, &mut direct);
        bridge.finish();
        direct.finish();
        pinned
    });
    free.print("");
    pinned.print(", every process on one CPU");
    if let Some(earlier) = earlier_cat_p50 {
        println!("\n(cat p50 in the round trip section above, measured alone: {earlier:.1} µs)");
    }

    let (bp, b_errors) = bridge_pipelined(&mut bridge);
    let (dp, d_errors) = bridge_pipelined(&mut direct);
    let pipelined_rss = peak_rss_kib(bridge.pid());
    assert_eq!(d_errors, 0, "the backend answers every request");
    let rate = |t: Duration| PIPELINED as f64 / t.as_secs_f64();
    let pl_ratio = rate(bp) / rate(dp);
    let pl_met = pl_ratio >= 0.7 && b_errors == 0;
    println!("\npipelined, {PIPELINED} requests in flight (distinct ids)");
    println!("  bridge   {:10.0} requests/s", rate(bp));
    println!("  direct   {:10.0} requests/s", rate(dp));
    println!("  bridge = {pl_ratio:.2} x direct (target ≥ 0.7)");
    if b_errors > 0 {
        println!("  bridge answered {b_errors} requests with an error");
    }
    println!(
        "  gateway peak RSS {:.1} MiB",
        pipelined_rss as f64 / 1024.0
    );
    bridge.finish();
    direct.finish();

    let mut bridge = Peer::bridge();
    let bf = flood(&mut bridge);
    let flood_rss = peak_rss_kib(bridge.pid());
    bridge.finish();
    let mut direct = Peer::backend();
    let df = flood(&mut direct);
    direct.finish();
    let fl_ratio = bf.mibs() / df.mibs();
    let fl_met = fl_ratio >= 0.8;
    println!(
        "\nflood: {} MiB of message.delta events from the backend ({} lines, {} text bytes)",
        FLOOD_BYTES >> 20,
        bf.sent.lines,
        bf.sent.text_bytes
    );
    for (who, f) in [("bridge", &bf), ("direct", &df)] {
        println!(
            "  {who:<8} {:8.0} MiB/s   read {} delta lines, {:.1} MiB, {} text bytes (all)",
            f.mibs(),
            f.lines_read,
            f.bytes_read as f64 / (1 << 20) as f64,
            f.text_read
        );
    }
    println!("  bridge = {fl_ratio:.2} x direct (target ≥ 0.8)");
    println!("  gateway peak RSS {:.1} MiB", flood_rss as f64 / 1024.0);
    let python = python_scenario();
    let mib = |kib: u64| kib as f64 / 1024.0;
    let idle_met = mib(idle_rss) < 4.0;
    let flood_met = mib(flood_rss) < 16.0;
    println!(
        "\ngateway peak RSS (VmHWM): idle {:.1} MiB (target < 4), pipelined {:.1} MiB, flood {:.1} MiB (target < 16)",
        mib(idle_rss),
        mib(pipelined_rss),
        mib(flood_rss)
    );

    println!("\n| bridge scenario | bridge | direct | target | met |");
    println!("|-----------------|--------|--------|--------|-----|");
    println!("{}", free.row(""));
    println!("{}", pinned.row(", one CPU"));
    println!(
        "| pipelined, {} requests in flight | {:.2} M/s = {pl_ratio:.2} × direct{} | {:.2} M/s | ≥ 0.7 × direct | {} |",
        thousands(PIPELINED as u64),
        rate(bp) / 1e6,
        if b_errors > 0 {
            format!(", {b_errors} errors")
        } else {
            String::new()
        },
        rate(dp) / 1e6,
        yes_no(pl_met)
    );
    println!(
        "| {} MiB of `message.delta` events, none lost | {:.0} MiB/s = {fl_ratio:.2} × direct ({} lines read) | {:.0} MiB/s ({} lines) | ≥ 0.8 × direct | {} |",
        FLOOD_BYTES >> 20,
        bf.mibs(),
        thousands(bf.lines_read),
        df.mibs(),
        thousands(df.lines_read),
        yes_no(fl_met)
    );
    println!(
        "| gateway peak RSS (`VmHWM`) idle / pipelined / flood | {:.1} / {:.1} / {:.1} MiB | | < 4 / – / < 16 MiB | {} / – / {} |",
        mib(idle_rss),
        mib(pipelined_rss),
        mib(flood_rss),
        yes_no(idle_met),
        yes_no(flood_met)
    );
    let python_label = format!(
        "pipelined, {} requests, python3 backend ({PYTHON_FIXTURE})",
        thousands(PYTHON_PIPELINED as u64)
    );
    match python {
        Some(p) => println!(
            "| {python_label} | {} requests/s = {:.2} × direct{} | {} requests/s | (context: a real backend) | – |",
            thousands(PythonPipelined::rate(p.bridge).round() as u64),
            p.ratio(),
            if p.bridge_errors > 0 {
                format!(", {} errors", p.bridge_errors)
            } else {
                String::new()
            },
            thousands(PythonPipelined::rate(p.direct).round() as u64)
        ),
        None => println!("| {python_label} | skipped: no python3 | | (context: a real backend) | – |"),
    }
}
