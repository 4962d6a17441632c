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
//! * memory: the gateway's peak RSS (`VmHWM`) in each scenario.

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

const STARTS: usize = 200;
const ROUND_TRIPS: usize = 20_000;
const PIPELINED: usize = 100_000;
const STREAM_BYTES: u64 = 256 << 20;
const PING: &str = r#"{"jsonrpc":"2.0","method":"gateway.ping","id":1}"#;
const SPAWNS: usize = 200;

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

/// Writes `count` lines from a second thread while this one reads the answers.
fn pipelined(peer: &mut Peer, line: &str, count: usize) -> Duration {
    let mut stdin = peer.stdin.take().expect("stdin");
    let mut payload = String::with_capacity((line.len() + 1) * count);
    for _ in 0..count {
        payload.push_str(line);
        payload.push('\n');
    }
    let t = Instant::now();
    let writer = std::thread::spawn(move || {
        stdin.write_all(payload.as_bytes()).expect("write");
        stdin
    });
    for _ in 0..count {
        peer.read_line();
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
        let spawn = line.windows(15).any(|w| w == b"\"process.spawn\"");
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

/// The bytes of the `"id":` value in a request line (up to `,` or `}`).
fn find_id(line: &[u8]) -> &[u8] {
    let key = b"\"id\":";
    let Some(at) = line.windows(key.len()).position(|w| w == key) else {
        return b"null";
    };
    let rest = &line[at + key.len()..];
    let end = rest
        .iter()
        .position(|&b| b == b',' || b == b'}')
        .unwrap_or(rest.len());
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
    let mut samples: Vec<Duration> = (0..SPAWNS)
        .map(|i| {
            let t = Instant::now();
            peer.send(&format!(
                r#"{{"jsonrpc":"2.0","method":"process.spawn","params":{{"argv":["true"]{extra}}},"id":{i}}}"#
            ));
            loop {
                let line = peer.read_line();
                assert!(!line.contains(r#""error""#), "spawn failed: {line}");
                if line.contains(r#""type":"process.exit""#) {
                    break;
                }
            }
            t.elapsed()
        })
        .collect();
    samples.sort();
    samples
}

/// `posix_spawn` of `true` (through std) and `waitpid`, `SPAWNS` times.
fn spawn_latency_direct() -> Vec<Duration> {
    let mut samples: Vec<Duration> = (0..SPAWNS)
        .map(|_| {
            let t = Instant::now();
            let status = Command::new("true").status().expect("spawn true");
            assert!(status.success());
            t.elapsed()
        })
        .collect();
    samples.sort();
    samples
}

fn ratio(gateway: f64, floor: f64) -> String {
    format!("{:.2} x the floor", gateway / floor)
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--floor") {
        return floor_main(&args[1..]);
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
