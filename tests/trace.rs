//! `--trace FILE` against the built binary: every frame in and out appears
//! once, in order, with its direction; a trace that cannot be written (a
//! full disk) costs the gateway nothing but the records, counted.
//! Contract: `docs/protocol.md`, "Tracing".

mod util;

use serde_json::{json, Value};
use util::*;

/// The trace's records.
fn records(path: &std::path::Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .expect("the trace file")
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

#[test]
fn every_frame_of_an_exchange_is_traced_once_in_order() {
    let trace = TempFile::new("trace");
    let path = trace.path().to_str().unwrap().to_owned();
    let mut gw = Gateway::builder()
        .args(["--trace", path.as_str()])
        .no_ready()
        .spawn();
    let sent: Vec<Vec<u8>> = vec![
        line(&rpc(json!(1), "gateway.ping")),
        line(&rpc_with(
            json!(2),
            "process.spawn",
            json!({"argv": ["sh", "-c", "echo traced"]}),
        )),
        b"this is not json\n".to_vec(),
        line(&json!([{"jsonrpc": "2.0", "method": "gateway.ping", "id": 3}])),
    ];
    for frame in &sent {
        gw.send_raw(frame);
    }
    // The process's exit event is the last thing written before EOF's drain.
    let mut out = Vec::new();
    loop {
        let l = gw.recv_line(PATIENCE).expect("a frame");
        let v = parse_frame(&l);
        out.push(l);
        if event_type(&v) == Some("process.exit") {
            break;
        }
    }
    gw.close_stdin();
    let (rest, partial) = gw.drain_stdout(PATIENCE);
    assert!(partial.is_empty());
    assert_eq!(gw.wait_code(PATIENCE), 0);
    let written: Vec<Value> = out.iter().map(|l| parse_frame(l)).chain(rest).collect();

    let got = records(trace.path());
    let ins: Vec<&Value> = got.iter().filter(|r| r["dir"] == "in").collect();
    let outs: Vec<Value> = got
        .iter()
        .filter(|r| r["dir"] == "out")
        .map(|r| r["frame"].clone())
        .collect();
    eprintln!(
        "{} records: {} in, {} out",
        got.len(),
        ins.len(),
        outs.len()
    );
    assert_eq!(ins.len(), 4, "{got:?}");
    assert_eq!(ins[0]["frame"]["id"], 1);
    assert_eq!(ins[1]["frame"]["method"], "process.spawn");
    assert_eq!(ins[2]["raw"], "this is not json");
    assert_eq!(ins[3]["frame"][0]["id"], 3);
    assert_eq!(outs, written, "every frame written, once, in order");
    assert_eq!(event_type(&outs[0]), Some("gateway.ready"));
    let times: Vec<f64> = got.iter().map(|r| r["t"].as_f64().unwrap()).collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1] + 0.001), "{times:?}");
    // The jq one-liner of docs/protocol.md follows request 2: here in Rust.
    let request_2: Vec<&Value> = got
        .iter()
        .filter(|r| r["frame"]["id"] == 2 || r["frame"]["params"]["payload"]["proc"] == 1)
        .collect();
    assert!(
        request_2.len() >= 4,
        "request, answer, output, exit: {request_2:?}"
    );
}

#[test]
fn a_trace_on_a_full_disk_drops_records_and_slows_nothing() {
    let mut gw = Gateway::spawn(&["--trace", "/dev/full"]);
    let mut frames = Vec::new();
    for i in 0..2000 {
        frames.extend(line(&rpc(json!(i), "gateway.ping")));
    }
    gw.send_raw(&frames);
    let mut answered = 0;
    while answered < 2000 {
        let v = gw.recv_frame(PATIENCE).expect("an answer");
        assert_eq!(v["id"], answered, "{v}");
        answered += 1;
    }
    let stats = gw.stats();
    let trace = &stats["trace"];
    eprintln!("trace on /dev/full: {trace}");
    assert!(as_u64(&trace["records_dropped"]) > 0, "{stats}");
    assert_eq!(trace["records_written"], 0, "{stats}");
    gw.close_stdin();
    assert_eq!(gw.wait_code(PATIENCE), 0);
}

#[test]
fn a_trace_file_that_cannot_be_opened_is_a_usage_error() {
    let mut gw = Gateway::builder()
        .args(["--trace", "/nonexistent-dir/trace.ndjson"])
        .no_ready()
        .spawn();
    assert_eq!(gw.wait_code(PATIENCE), 64);
    // The reason is read by the harness's stderr thread: wait for its EOF.
    let stderr = gw.stderr_complete(PATIENCE);
    assert!(stderr.contains("--trace"), "{stderr}");
}
