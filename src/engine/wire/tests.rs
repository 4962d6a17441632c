//! The wire module's unit tests.

use super::*;
use serde_json::{json, Value};

fn single(frame: &str) -> Result<Message, Reject> {
    match classify(frame.as_bytes()) {
        Incoming::Single(m) => m,
        Incoming::Batch(_) => panic!("expected a single message for {frame}"),
    }
}

#[test]
fn request_keeps_numeric_id_verbatim() {
    let m = single(r#"{"jsonrpc":"2.0","method":"m","id":12345678901234567890123}"#).unwrap();
    let Message::Request { id, .. } = m else {
        panic!("not a request")
    };
    let frame = response_frame(&id, &Ok(json!(1)));
    assert_eq!(
        frame,
        b"{\"jsonrpc\":\"2.0\",\"result\":1,\"id\":12345678901234567890123}\n"
    );
    let m = single(r#"{"jsonrpc":"2.0","method":"m","id":1.50}"#).unwrap();
    let Message::Request { id, .. } = m else {
        panic!("not a request")
    };
    assert_eq!(id.to_string(), "1.50");
}

#[test]
fn numeric_ids_are_echoed_as_their_exact_bytes() {
    let forty = "1234567890123456789012345678901234567890";
    for raw in ["1e400", "1.0E+2", "-0", "2.50", forty, "-1.5e-7", "0"] {
        let frame = format!(r#"{{"jsonrpc":"2.0","method":"m","id": {raw} }}"#);
        let Message::Request { id, .. } = single(&frame).unwrap() else {
            panic!("not a request")
        };
        let out = response_frame(&id, &Ok(json!(null)));
        let expected = format!("{{\"jsonrpc\":\"2.0\",\"result\":null,\"id\":{raw}}}\n");
        assert_eq!(String::from_utf8(out).unwrap(), expected);
    }
}

#[test]
fn params_with_too_many_values_are_refused_before_parsing() {
    let many = vec!["1"; MAX_VALUES].join(",");
    let frame = format!(r#"{{"jsonrpc":"2.0","method":"m","params":[{many}],"id":9}}"#);
    let r = single(&frame).unwrap_err();
    assert_eq!(
        (r.id, r.error.code),
        (Id::from(9), ErrorCode::InvalidParams)
    );
    let fits = vec!["1"; MAX_VALUES - 2].join(",");
    let frame = format!(r#"{{"jsonrpc":"2.0","method":"m","params":[{fits}],"id":9}}"#);
    assert!(single(&frame).is_ok());
    // 7 values (object, key, array, 1, 2, key, object); the bound says 8.
    assert_eq!(value_count(r#"{"a,b:[{":[1,2],"c":{}}"#), 8);
}

#[test]
fn a_batch_is_walked_member_by_member() {
    let frame = br#" [ 1 , {"jsonrpc":"2.0","method":"m","id":"a"},
        {"jsonrpc":"2.0","method":"n","params":[[1],{"x":"]"}]} ] "#;
    let Opened::Batch(mut members) = open(frame.to_vec()) else {
        panic!("a batch")
    };
    assert!(members.next().unwrap().is_err());
    assert!(matches!(members.next(), Some(Ok(Message::Request { .. }))));
    let Some(Ok(Message::Notification { params, .. })) = members.next() else {
        panic!("a notification")
    };
    assert_eq!(params, Some(json!([[1], {"x": "]"}])));
    assert!(members.next().is_none() && members.next().is_none());
    let Opened::Single(Err(r)) = open(b" [ ] ".to_vec()) else {
        panic!("empty batch")
    };
    assert_eq!(r.error.code, ErrorCode::InvalidRequest);
}

#[test]
fn envelope_fields_repeat_as_in_a_json_object_and_unknown_ones_are_skipped() {
    let m = single(r#"{"x":{"deep":[1,2]},"jsonrpc":"1.0","method":"a","jsonrpc":"2.0","method":"b","id":1,"id":"z"}"#)
        .unwrap();
    assert_eq!(
        m,
        Message::Request {
            id: Id::Str("z".into()),
            method: "b".into(),
            params: None
        }
    );
    let m = single(r#"{"jsonrpc":"2\u002e0","method":"\u0061","id":null}"#).unwrap();
    assert!(matches!(m, Message::Request { method, .. } if method == "a"));
}

#[test]
fn absent_params_and_null_id_are_distinct_from_notifications() {
    assert_eq!(
        single(r#"{"jsonrpc":"2.0","method":"m"}"#).unwrap(),
        Message::Notification {
            method: "m".into(),
            params: None
        }
    );
    assert_eq!(
        single(r#"{"jsonrpc":"2.0","method":"m","id":null,"params":{}}"#).unwrap(),
        Message::Request {
            id: Id::Null,
            method: "m".into(),
            params: Some(json!({}))
        }
    );
}

#[test]
fn rejects_carry_the_id_when_it_is_readable() {
    let r = single(r#"{"jsonrpc":"2.0","method":1,"id":"a"}"#).unwrap_err();
    assert_eq!(r.id, Id::Str("a".into()));
    assert_eq!(r.error.code, ErrorCode::InvalidRequest);
    let r = single(r#"{"jsonrpc":"2.0","method":"m","id":[1]}"#).unwrap_err();
    assert_eq!(r.id, Id::Null);
    let r = single(r#"{"jsonrpc":"1.0","method":"m","id":3}"#).unwrap_err();
    assert_eq!(r.error.code, ErrorCode::InvalidRequest);
    let r = single(r#"{"jsonrpc":"2.0","method":"m","params":"bar"}"#).unwrap_err();
    assert_eq!(r.error.code, ErrorCode::InvalidRequest);
}

#[test]
fn parse_errors_for_bad_json_bad_utf8_and_deep_nesting() {
    for frame in [
        b"{\"jsonrpc\": \"2.0\", \"method\": \"foobar, \"params\": \"bar\", \"baz]".to_vec(),
        b"{\"jsonrpc\":\"2.0\",\"method\":\"\xff\"}".to_vec(),
        b"\"\\ud800\"".to_vec(),
        "[".repeat(100_000).into_bytes(),
    ] {
        let Incoming::Single(Err(r)) = classify(&frame) else {
            panic!("expected a parse error")
        };
        assert_eq!(r.error.code, ErrorCode::ParseError);
        assert_eq!(r.id, Id::Null);
    }
}

#[test]
fn responses_from_the_client_are_classified() {
    assert_eq!(
        single(r#"{"jsonrpc":"2.0","result":{"x":1},"id":"gw-1"}"#).unwrap(),
        Message::Response {
            id: Id::Str("gw-1".into()),
            outcome: Ok(json!({"x":1}))
        }
    );
    let m = single(r#"{"jsonrpc":"2.0","error":{"code":1,"message":"no"},"id":7}"#).unwrap();
    assert!(matches!(
        m,
        Message::Response {
            outcome: Err(_),
            ..
        }
    ));
    assert!(single(r#"{"jsonrpc":"2.0","result":1,"error":{},"id":7}"#).is_err());
}

#[test]
fn batches_classify_each_element() {
    let Incoming::Batch(items) = classify(br#"[1,{"jsonrpc":"2.0","method":"m"}]"#) else {
        panic!("expected a batch")
    };
    assert!(items[0].is_err());
    assert!(items[1].is_ok());
    let Incoming::Single(Err(r)) = classify(b"[]") else {
        panic!("expected an error")
    };
    assert_eq!(r.error.code, ErrorCode::InvalidRequest);
}

#[test]
fn line_separators_are_escaped_everywhere() {
    let frame = event_frame(
        "t\u{2028}",
        &json!({"text": "a\u{2028}b\u{2029}c", "k\u{2029}": 1}),
    );
    let text = std::str::from_utf8(&frame).unwrap();
    assert!(!text.contains('\u{2028}') && !text.contains('\u{2029}'));
    assert!(text.contains(r"a\u2028b\u2029c"));
    let back: Value = serde_json::from_str(text.trim_end()).unwrap();
    assert_eq!(back["params"]["payload"]["text"], "a\u{2028}b\u{2029}c");
    assert_eq!(frame.iter().filter(|&&b| b == b'\n').count(), 1);
}

#[test]
fn error_frames_are_valid_json_rpc() {
    let frame = response_frame(&Id::Null, &Err(RpcError::method_not_found("x")));
    let v: Value = serde_json::from_slice(&frame).unwrap();
    assert_eq!(
        v,
        json!({"jsonrpc":"2.0","error":{"code":-32601,"message":"Method not found: x"},"id":null})
    );
}

#[test]
fn forwarding_checks_a_single_frame_in_one_pass_with_the_same_verdicts() {
    let verdict = |frame: &str| match open_forwarding(frame.as_bytes().to_vec()) {
        Opened::Single(Ok(text)) => head(&text).map(|_| ()).map_err(|r| r.error.code),
        Opened::Single(Err(r)) => Err(r.error.code),
        Opened::Batch(_) => Ok(()),
    };
    assert_eq!(
        verdict(r#"{"jsonrpc":"2.0","id":1,"method":"a","params":{"x":[1]}}"#),
        Ok(())
    );
    for bad in [
        r#"{"jsonrpc":"2.0","id":1,"method":"a"} x"#,
        r#"{"jsonrpc":"2.0","id":1,"method":"a","params":{"x":[1}}"#,
        r#"{"jsonrpc":"2.0","id":1,"method":"a","p":"\q"}"#,
        "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"a\",\"p\":\"\u{1}\"}",
    ] {
        assert_eq!(verdict(bad), Err(ErrorCode::ParseError), "{bad}");
    }
    let deep = format!(
        r#"{{"jsonrpc":"2.0","method":"a","params":{}1{}}}"#,
        "[".repeat(127),
        "]".repeat(127)
    );
    assert_eq!(
        verdict(&deep),
        Err(ErrorCode::ParseError),
        "128 levels with the envelope"
    );
    let ok = format!(
        r#"{{"jsonrpc":"2.0","method":"a","params":{}1{}}}"#,
        "[".repeat(126),
        "]".repeat(126)
    );
    assert_eq!(verdict(&ok), Ok(()));
    assert!(matches!(
        open_forwarding(b"\xff{}".to_vec()),
        Opened::Single(Err(_)) | Opened::Batch(_)
    ));
    assert!(
        matches!(open_forwarding(b"{\"a\":\"\xff\"}".to_vec()), Opened::Single(Err(r)) if r.error.code == ErrorCode::ParseError)
    );
    // Not an object: the full check, as without a backend.
    assert_eq!(verdict("42 x"), Err(ErrorCode::ParseError));
}

/// The lone-surrogate rule (docs/protocol.md): refused in what the
/// gateway reads, passed as it came in what it forwards.
#[test]
fn a_lone_surrogate_is_refused_where_read_and_forwarded_where_not() {
    let forwarding = |frame: &str| match open_forwarding(frame.as_bytes().to_vec()) {
        Opened::Single(Ok(text)) => head(&text).map(|_| ()).map_err(|r| r.error.code),
        Opened::Single(Err(r)) => Err(r.error.code),
        Opened::Batch(mut members) => {
            while members.next_member().is_some() {}
            Ok(())
        }
    };
    let parse_error = Err(ErrorCode::ParseError);
    for unread in [
        r#"{"jsonrpc":"2.0","id":1,"method":"a","params":{"p":"\ud800"}}"#,
        r#"{"jsonrpc":"2.0","id":1,"method":"a","params":{"\udcff.txt":1}}"#,
        r#"{"jsonrpc":"2.0","id":1,"method":"a","x\udc00":"\udc00"}"#,
        r#"{"jsonrpc":"2.0","id":1,"result":"\ud83d"}"#,
        r#"[{"jsonrpc":"2.0","id":1,"method":"a","params":["\ud800"]}]"#,
        r#"[{"jsonrpc":"2.0","method":"a"}, {"a\udfff":"\\ud800"}]"#,
    ] {
        assert_eq!(forwarding(unread), Ok(()), "{unread}");
        // Read in full without a backend: a parse error.
        assert!(
            matches!(classify(unread.as_bytes()), Incoming::Single(Err(ref r)) if r.error.code == ErrorCode::ParseError),
            "{unread}"
        );
    }
    for read in [
        r#"{"jsonrpc":"2.0","id":"\ud800","method":"a"}"#,
        r#"{"jsonrpc":"2.0","id":1,"method":"a\udc00"}"#,
    ] {
        assert_eq!(forwarding(read), parse_error, "{read}");
    }
    // Not "2.0", whatever else it is.
    assert_eq!(
        forwarding(r#"{"jsonrpc":"2.0\ud800","id":1,"method":"a"}"#),
        Err(ErrorCode::InvalidRequest)
    );
    // A pair is text; an escaped backslash is no escape; an array is
    // still checked in full for syntax, escapes and control bytes.
    assert_eq!(
        forwarding(r#"{"jsonrpc":"2.0","id":"\ud83d\ude00","method":"a"}"#),
        Ok(())
    );
    assert_eq!(
        forwarding(r#"{"jsonrpc":"2.0","id":"\\ud800","method":"a"}"#),
        Ok(())
    );
    for bad in [
        r#"[{"jsonrpc":"2.0","method":"a","p":"\q"}]"#,
        r#"[{"jsonrpc":"2.0","method":"a","p":"\u12"}]"#,
        "[{\"jsonrpc\":\"2.0\",\"method\":\"a\",\"p\":\"\u{1}\"}]",
        r#"[{"jsonrpc":"2.0","method":"a"},]"#,
        r#"[{"jsonrpc":"2.0","method":"a"}] x"#,
        "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"a\",\"k\u{1}\":1}",
        "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"a\",\"\\u0041\t\":1}",
    ] {
        assert_eq!(forwarding(bad), parse_error, "{bad}");
    }
    assert_eq!(forwarding("  []"), Err(ErrorCode::InvalidRequest));
}
