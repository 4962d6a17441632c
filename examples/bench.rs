//! Benchmark: tui-gateway against the floor a stdio child can reach, `cat`,
//! measured in the same run on the same machine.
//!
//! Run with `cargo run --release --example bench` (it builds and uses the
//! release binary `target/release/tui-gateway`). Each scenario runs the
//! gateway and the baseline back to back:
//!
//! * start-up: exec to the first line (`gateway.ready`), against exec of
//!   `cat` to echoing one line;
//! * round trip: one `gateway.ping` at a time, against one line echoed by `cat`;
//! * pipelined: 100,000 pings written while responses are read, against the
//!   same bytes through `cat`;
//! * streaming: `process.spawn` of a command writing 256 MiB, relayed as
//!   `process.output` events, against reading the same command's stdout directly;
//! * memory: the gateway's peak RSS (`VmHWM`) over the pipelined and
//!   streaming runs.

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

const STARTS: usize = 200;
const ROUND_TRIPS: usize = 20_000;
const PIPELINED: usize = 100_000;
const STREAM_BYTES: u64 = 256 << 20;
const PING: &str = r#"{"jsonrpc":"2.0","method":"gateway.ping","id":1}"#;

fn gateway_path() -> String {
    let exe = std::env::current_exe().expect("current exe");
    // target/release/examples/bench -> target/release/tui-gateway
    let dir = exe.parent().and_then(|p| p.parent()).expect("target dir");
    dir.join("tui-gateway").to_string_lossy().into_owned()
}

/// `cargo run --example` builds the example, not the binary: build it too,
/// with the same profile, so one command is enough.
fn build_gateway() {
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

fn stream_through_gateway() -> (Duration, u64, u64) {
    let mut peer = Peer::gateway();
    let t = Instant::now();
    peer.send(&format!(
        r#"{{"jsonrpc":"2.0","method":"process.spawn","params":{{"argv":["head","-c","{STREAM_BYTES}","/dev/zero"],"encoding":"base64"}},"id":1}}"#
    ));
    let mut decoded = 0u64;
    loop {
        let line = peer.read_line();
        if line.contains(r#""type":"process.exit""#) {
            break;
        }
        if let Some(start) = line.find(r#""data":""#) {
            let rest = &line[start + 8..];
            let len = rest.find('"').expect("end of data") as u64;
            let padding = rest[..len as usize]
                .bytes()
                .rev()
                .take_while(|&b| b == b'=')
                .count() as u64;
            decoded += len / 4 * 3 - padding;
        }
    }
    let elapsed = t.elapsed();
    let rss = peak_rss_kib(peer.pid());
    peer.finish();
    (elapsed, decoded, rss)
}

fn stream_direct() -> (Duration, u64) {
    let t = Instant::now();
    let mut child = Command::new("head")
        .args(["-c", &STREAM_BYTES.to_string(), "/dev/zero"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn head");
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

fn main() {
    build_gateway();
    println!("tui-gateway benchmark: gateway vs `cat` baseline, same run\n");

    let g = start_up(true);
    let c = start_up(false);
    println!("start-up, exec to first line ({STARTS} runs)");
    print_percentiles("gateway", &g);
    print_percentiles("cat", &c);

    let mut gw = Peer::gateway();
    let mut cat = Peer::cat();
    let g = round_trips(&mut gw, PING);
    let c = round_trips(&mut cat, PING);
    println!("\nround trip, one request at a time ({ROUND_TRIPS} requests)");
    print_percentiles("gateway", &g);
    print_percentiles("cat", &c);

    let g = pipelined(&mut gw, PING, PIPELINED);
    let c = pipelined(&mut cat, PING, PIPELINED);
    let rss = peak_rss_kib(gw.pid());
    println!("\npipelined, {PIPELINED} pings in flight");
    println!(
        "  gateway  {:10.0} requests/s",
        PIPELINED as f64 / g.as_secs_f64()
    );
    println!(
        "  cat      {:10.0} lines/s",
        PIPELINED as f64 / c.as_secs_f64()
    );
    println!("  gateway peak RSS {:.1} MiB", rss as f64 / 1024.0);
    gw.finish();
    cat.finish();

    let (g, bytes, rss) = stream_through_gateway();
    let (c, direct) = stream_direct();
    assert_eq!(bytes, STREAM_BYTES, "every byte relayed");
    assert_eq!(direct, STREAM_BYTES);
    println!(
        "\nstreaming {} MiB of child output (base64 process.output events)",
        STREAM_BYTES >> 20
    );
    println!(
        "  gateway  {:8.0} MiB/s of payload",
        (bytes >> 20) as f64 / g.as_secs_f64()
    );
    println!(
        "  direct   {:8.0} MiB/s (reading the child's pipe, no gateway)",
        (direct >> 20) as f64 / c.as_secs_f64()
    );
    println!("  gateway peak RSS {:.1} MiB", rss as f64 / 1024.0);
}
