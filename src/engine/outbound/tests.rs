//! The queue's own tests: order, merging, limits and pacing.

use super::*;
use serde_json::{json, Map, Value};

fn limits() -> Limits {
    Limits {
        soft_bytes: 1 << 20,
        soft_duration: Duration::from_secs(10),
        hard_bytes: 4 << 20,
        stall_timeout: Duration::from_secs(10),
        coalesce_cap: 64,
        high_water: 1 << 19,
        low_water: 1 << 17,
    }
}

fn delta(q: &mut Outbound, key: &str, text: &str, now: Instant) {
    let payload = json!({"session_id": key, "text": text})
        .as_object()
        .unwrap()
        .clone();
    q.push_stream("message.delta", payload, "text", now)
        .unwrap();
}

/// Drains the queue with writes of `step` bytes and returns the lines.
fn drain(q: &mut Outbound, step: usize, now: Instant) -> Vec<Value> {
    let mut bytes = Vec::new();
    while !q.is_empty() {
        q.write_with(now, |slices| {
            let mut left = step;
            for s in slices {
                let take = left.min(s.len());
                bytes.extend_from_slice(&s[..take]);
                left -= take;
            }
            Ok::<_, ()>(step - left)
        })
        .unwrap();
    }
    let text = String::from_utf8(bytes).unwrap();
    assert!(text.ends_with('\n'));
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn partial_writes_keep_frames_whole_and_ordered() {
    let now = Instant::now();
    for step in [1, 3, 7, 64, 4096] {
        let mut q = Outbound::new(limits());
        for i in 0..20 {
            q.push_frame(format!("{{\"n\":{i}}}\n").into_bytes(), now)
                .unwrap();
        }
        let lines = drain(&mut q, step, now);
        let ns: Vec<i64> = lines.iter().map(|v| v["n"].as_i64().unwrap()).collect();
        assert_eq!(ns, (0..20).collect::<Vec<_>>());
        assert_eq!(q.counters().frames_out, 20);
    }
}

#[test]
fn deltas_merge_only_with_an_equal_unstarted_tail() {
    let now = Instant::now();
    let mut q = Outbound::new(limits());
    delta(&mut q, "a", "he", now);
    delta(&mut q, "a", "llo", now);
    delta(&mut q, "b", "x", now); // other key: new frame
    delta(&mut q, "a", "!", now); // not adjacent to the first "a" frame
    q.push_frame(b"{\"id\":1}\n".to_vec(), now).unwrap();
    delta(&mut q, "a", "?", now); // a response in between: never merged across
    let lines = drain(&mut q, 5, now);
    let texts: Vec<String> = lines
        .iter()
        .map(|v| {
            v["params"]["payload"]["text"]
                .as_str()
                .unwrap_or("<resp>")
                .to_owned()
        })
        .collect();
    assert_eq!(texts, ["hello", "x", "!", "<resp>", "?"]);
    assert_eq!(q.counters().deltas_coalesced, 1);
    assert_eq!(lines[0]["params"]["payload"]["session_id"], "a");
}

#[test]
fn a_started_tail_never_grows() {
    let now = Instant::now();
    let mut q = Outbound::new(limits());
    delta(&mut q, "a", "abc", now);
    q.write_with(now, |_| Ok::<_, ()>(4)).unwrap();
    delta(&mut q, "a", "def", now);
    assert_eq!(q.counters().deltas_coalesced, 0);
}

#[test]
fn merged_text_respects_the_cap() {
    let now = Instant::now();
    let mut q = Outbound::new(limits());
    for _ in 0..10 {
        delta(&mut q, "a", "0123456789abcdef", now);
    }
    let lines = drain(&mut q, 1 << 16, now);
    let joined: String = lines
        .iter()
        .map(|v| v["params"]["payload"]["text"].as_str().unwrap())
        .collect();
    assert_eq!(joined, "0123456789abcdef".repeat(10));
    for v in &lines {
        assert!(v["params"]["payload"]["text"].as_str().unwrap().len() <= 64);
    }
    assert_eq!(lines.len(), 3);
}

#[test]
fn stream_with_only_a_text_field_and_escapes_round_trips() {
    let now = Instant::now();
    let mut q = Outbound::new(limits());
    for text in ["a", "\"q\"\n\u{2028}"] {
        let mut payload = Map::new();
        payload.insert("data".into(), json!(text));
        q.push_stream("x.delta", payload, "data", now).unwrap();
    }
    // A payload without the text field is sent as a plain event.
    q.push_stream("x.delta", Map::new(), "data", now).unwrap();
    let lines = drain(&mut q, 2, now);
    assert_eq!(
        lines,
        vec![
            json!({"jsonrpc":"2.0","method":"event","params":{"type":"x.delta","payload":{"data":"a\"q\"\n\u{2028}"}}}),
            json!({"jsonrpc":"2.0","method":"event","params":{"type":"x.delta","payload":{}}}),
        ]
    );
}

#[test]
fn hard_limit_refuses_the_push_and_keeps_the_queue_open() {
    let now = Instant::now();
    let mut q = Outbound::new(Limits {
        hard_bytes: 100,
        ..limits()
    });
    let frame = || [vec![b'x'; 29], vec![b'\n']].concat();
    for _ in 0..3 {
        q.push_frame(frame(), now).unwrap();
    }
    assert_eq!(q.room(), 10);
    assert_eq!(q.push_frame(frame(), now), Err(Refused::Full));
    assert_eq!(q.queued_bytes(), 90);
    assert_eq!(q.counters().frames_refused, 1);
    assert!(!q.is_closed() && q.slow_reader().is_none());
    q.write_with(now, |_| Ok::<_, ()>(30)).unwrap();
    q.push_frame(frame(), now).unwrap();
    assert_eq!(q.queued_bytes(), 90);
}

#[test]
fn a_frame_in_pieces_holds_other_frames_behind_it() {
    let now = Instant::now();
    let mut q = Outbound::new(limits());
    q.push_frame(b"{\"first\":1}\n".to_vec(), now).unwrap();
    q.begin_pieces();
    q.push_piece(b"[1".to_vec(), now).unwrap();
    q.push_frame(b"{\"held\":1}\n".to_vec(), now).unwrap();
    delta(&mut q, "a", "x", now);
    q.push_piece(b",2".to_vec(), now).unwrap();
    // Everything written so far, the held frames stay behind the open one.
    let mut out = Vec::new();
    let mut write_all = |q: &mut Outbound| {
        while q.has_writable() {
            q.write_with(now, |slices| {
                let n: usize = slices.iter().map(|s| s.len()).sum();
                slices.iter().for_each(|s| out.extend_from_slice(s));
                Ok::<_, ()>(n)
            })
            .unwrap();
        }
    };
    write_all(&mut q);
    assert!(!q.is_empty(), "held frames wait for the open frame");
    q.end_pieces(b"]\n".to_vec(), now);
    write_all(&mut q);
    assert!(q.is_empty());
    let text = String::from_utf8(out).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[..3], ["{\"first\":1}", "[1,2]", "{\"held\":1}"]);
    let delta: Value = serde_json::from_str(lines[3]).unwrap();
    assert_eq!(delta["params"]["payload"]["text"], "x");
    assert_eq!(q.counters().frames_out, 4, "pieces count as one frame");
}

#[test]
fn soft_limit_and_stall_are_time_based() {
    let t0 = Instant::now();
    let mut q = Outbound::new(Limits {
        soft_bytes: 10,
        ..limits()
    });
    q.push_frame(vec![b'x'; 20].into_iter().chain([b'\n']).collect(), t0)
        .unwrap();
    assert_eq!(q.next_deadline(), Some(t0 + Duration::from_secs(10)));
    assert_eq!(q.check(t0 + Duration::from_secs(9)), None);
    assert!(matches!(
        q.check(t0 + Duration::from_secs(10)),
        Some(SlowReader::SoftLimit { .. })
    ));

    let mut q = Outbound::new(limits());
    q.push_frame(b"{}\n".to_vec(), t0).unwrap();
    q.write_with(t0 + Duration::from_secs(5), |_| Ok::<_, ()>(1))
        .unwrap();
    assert_eq!(
        q.check(t0 + Duration::from_secs(12)),
        None,
        "progress restarts the stall timer"
    );
    assert!(matches!(
        q.check(t0 + Duration::from_secs(15)),
        Some(SlowReader::Stalled { .. })
    ));
}

#[test]
fn a_streaming_frame_holds_no_spare_capacity() {
    let now = Instant::now();
    let mut q = Outbound::new(Limits {
        coalesce_cap: 1 << 20,
        ..limits()
    });
    delta(&mut q, "a", &"x".repeat(100_000), now);
    let frame = &q.frames.back().unwrap().bytes;
    assert_eq!(
        frame.capacity(),
        frame.len(),
        "a full queue costs its bytes, not twice"
    );
}

#[test]
fn water_marks_have_hysteresis() {
    let now = Instant::now();
    let mut q = Outbound::new(Limits {
        high_water: 100,
        low_water: 40,
        ..limits()
    });
    q.push_frame([vec![b'x'; 99], vec![b'\n']].concat(), now)
        .unwrap();
    assert!(q.is_paused());
    q.write_with(now, |_| Ok::<_, ()>(50)).unwrap();
    assert!(q.is_paused());
    q.write_with(now, |_| Ok::<_, ()>(10)).unwrap();
    assert!(!q.is_paused());
}
