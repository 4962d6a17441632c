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
    let Opened::Batch(mut members) = open(frame) else {
        panic!("a batch")
    };
    assert!(members.next().unwrap().is_err());
    assert!(matches!(members.next(), Some(Ok(Message::Request { .. }))));
    let Some(Ok(Message::Notification { params, .. })) = members.next() else {
        panic!("a notification")
    };
    assert_eq!(params, Some(json!([[1], {"x": "]"}])));
    assert!(members.next().is_none() && members.next().is_none());
    let Opened::Single {
        message: Err(r), ..
    } = open(b" [ ] ")
    else {
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
    let verdict = |frame: &str| match open_forwarding(frame.as_bytes()) {
        Opened::Single { message, .. } => message.map(|_| ()).map_err(|r| r.error.code),
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
        open_forwarding(b"\xff{}"),
        Opened::Single {
            message: Err(_),
            ..
        } | Opened::Batch(_)
    ));
    assert!(
        matches!(open_forwarding(b"{\"a\":\"\xff\"}"), Opened::Single { message: Err(r), .. } if r.error.code == ErrorCode::ParseError)
    );
    // Not an object: the full check, as without a backend.
    assert_eq!(verdict("42 x"), Err(ErrorCode::ParseError));
}

/// The lone-surrogate rule (docs/protocol.md): refused in what the
/// gateway reads, passed as it came in what it forwards.
#[test]
fn a_lone_surrogate_is_refused_where_read_and_forwarded_where_not() {
    let forwarding = |frame: &str| match open_forwarding(frame.as_bytes()) {
        Opened::Single { message, .. } => message.map(|_| ()).map_err(|r| r.error.code),
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

/// Every verdict the scanner must give, by name: `(case, frame, accepted
/// when read as text, accepted when forwarded to a backend)`. The scanner's
/// verdict and the reference's (serde_json, as the gateway checked before
/// the scanner) must both match the table.
fn verdict_table() -> Vec<(String, Vec<u8>, bool, bool)> {
    let nested = |n: usize, open: &str, close: &str| {
        format!("{}{}", open.repeat(n), close.repeat(n)).into_bytes()
    };
    let objects = |n: usize| {
        let mut s = "{\"a\":".repeat(n - 1);
        s.push_str("{}");
        s.push_str(&"}".repeat(n - 1));
        s.into_bytes()
    };
    let fixed: &[(&str, &[u8], bool, bool)] = &[
        ("empty object", b"{}", true, true),
        (
            "a request",
            br#"{"jsonrpc":"2.0","method":"m","id":1}"#,
            true,
            true,
        ),
        ("whitespace around", b" \t\r\n{} \r\t ", true, true),
        ("a string alone", br#""str""#, true, true),
        ("a number alone", b"-12.5e+3", true, true),
        ("1e400 (kept as text)", b"[1e400]", true, true),
        ("-0", b"[-0]", true, true),
        (
            "a 400-digit integer",
            format!("[{}]", "9".repeat(400)).leak().as_bytes(),
            true,
            true,
        ),
        ("1E+2", b"[1E+2]", true, true),
        ("a minus alone", b"[-]", false, false),
        ("a leading zero", b"[01]", false, false),
        ("a fraction without digits", b"[1.]", false, false),
        ("a fraction without an integer", b"[.5]", false, false),
        ("an exponent without digits", b"[1e]", false, false),
        ("an exponent sign without digits", b"[1e+]", false, false),
        ("a plus sign", b"[+1]", false, false),
        ("NaN", b"[NaN]", false, false),
        ("Infinity", b"[Infinity]", false, false),
        ("a lone high surrogate", br#"["\ud800"]"#, false, true),
        ("a lone low surrogate", br#"["\udc00"]"#, false, true),
        ("two high surrogates", br#"["\ud800\ud800"]"#, false, true),
        (
            "a high surrogate before a non-escape",
            br#"["\ud800x"]"#,
            false,
            true,
        ),
        ("a surrogate pair", br#"["\ud83d\ude00"]"#, true, true),
        ("a lone surrogate in a key", br#"{"\ud800":1}"#, false, true),
        ("every short escape", br#"["\"\\\/\b\f\n\r\t"]"#, true, true),
        ("an unknown escape", br#"["\x"]"#, false, false),
        ("a short \\u escape", br#"["\u12"]"#, false, false),
        (
            "a \\u escape with a non-hex digit",
            br#"["\u12G4"]"#,
            false,
            false,
        ),
        ("an escape at the end", br#"["\"]"#, false, false),
        ("non-ASCII text", "[\"é😀\"]".as_bytes(), true, true),
        ("non-ASCII outside a string", "[é]".as_bytes(), false, false),
        ("overlong UTF-8", b"[\"\xc0\xaf\"]", false, false),
        (
            "a surrogate encoded in UTF-8",
            b"[\"\xed\xa0\x80\"]",
            false,
            false,
        ),
        (
            "a truncated UTF-8 sequence",
            b"[\"\xe2\x82\"]",
            false,
            false,
        ),
        ("a byte order mark", b"\xef\xbb\xbf{}", false, false),
        ("a raw NUL in a string", b"[\"a\x00\"]", false, false),
        ("a raw tab in a string", b"[\"a\tb\"]", false, false),
        (
            "a raw control byte in a key",
            b"{\"a\x01\":1}",
            false,
            false,
        ),
        (
            "a raw control byte in an escaped key",
            b"{\"\\u0061\x01\":1}",
            false,
            false,
        ),
        ("DEL in a string", b"[\"\x7f\"]", true, true),
        ("duplicate keys", br#"{"a":1,"a":2}"#, true, true),
        ("escapes in keys", br#"{"\u0069d":1,"a\"b":2}"#, true, true),
        ("a trailing comma in an array", b"[1,]", false, false),
        (
            "a trailing comma in an object",
            br#"{"a":1,}"#,
            false,
            false,
        ),
        ("a key without a value", br#"{"a"}"#, false, false),
        ("a colon without a value", br#"{"a":}"#, false, false),
        ("a number as a key", b"{1:2}", false, false),
        ("trailing characters", b"{}x", false, false),
        ("two values", b"{} {}", false, false),
        ("a missing comma", b"[1 2]", false, false),
        ("an extra closing brace", br#"{"a":1}}"#, false, false),
        ("an extra closing bracket", b"[[]]]", false, false),
        ("a mismatched close", b"[}", false, false),
        ("an unclosed array", b"[", false, false),
        ("a close alone", b"]", false, false),
        ("an unclosed string", br#"["abc"#, false, false),
        ("a truncated literal", b"[tru]", false, false),
        ("a literal with a tail", b"[nulls]", false, false),
        ("nothing", b"", false, false),
        ("only whitespace", b"   ", false, false),
        ("a form feed as whitespace", b"\x0c{}", false, false),
        (
            "nested containers",
            br#"{"a":[1,{"b":[]},"c",true,false,null]}"#,
            true,
            true,
        ),
    ];
    let mut cases: Vec<(String, Vec<u8>, bool, bool)> = fixed
        .iter()
        .map(|(name, frame, text, forwarded)| (name.to_string(), frame.to_vec(), *text, *forwarded))
        .collect();
    for depth in 126..=129 {
        let ok = depth <= MAX_DEPTH;
        cases.push((
            format!("{depth} nested arrays"),
            nested(depth, "[", "]"),
            ok,
            ok,
        ));
        cases.push((format!("{depth} nested objects"), objects(depth), ok, ok));
    }
    cases
}

#[test]
fn the_scanner_gives_every_verdict_in_the_table_and_the_reference_agrees() {
    let cases = verdict_table();
    assert!(cases.len() >= 40, "{} cases", cases.len());
    for (name, frame, as_text, forwarded) in cases {
        for (surrogates, want) in [
            (Surrogates::Refuse, as_text),
            (Surrogates::Allow, forwarded),
        ] {
            let text = std::str::from_utf8(&frame).ok();
            let scanned = text.is_some_and(|t| scan(t, surrogates).is_some());
            let reference = text.is_some_and(|t| reference_accepts(t, surrogates));
            assert_eq!(scanned, want, "{name} ({surrogates:?}): the scanner");
            assert_eq!(reference, want, "{name} ({surrogates:?}): the reference");
        }
    }
}

#[test]
fn the_scanner_finds_the_envelope_and_keeps_the_last_of_a_repeated_field() {
    let text = r#" {"id":1,"x":{"id":2},"\u006dethod":"a","method":"b","params":[1,{"y":"}"}],"jsonrpc":"2.0"} "#;
    let Some(Scanned::Object(spans)) = scan(text, Surrogates::Refuse) else {
        panic!("an object")
    };
    let field = |member: Option<Member>| &text[member.expect("present").span()];
    assert_eq!(field(spans.id), "1");
    assert_eq!(field(spans.method), r#""b""#);
    assert_eq!(field(spans.params), r#"[1,{"y":"}"}]"#);
    assert_eq!(field(spans.jsonrpc), r#""2.0""#);
    assert_eq!((spans.result, spans.error), (None, None));
    // `[`, `,`, `{` and `:`, plus one.
    assert_eq!(spans.params.map(|m| m.values()), Some(5));
}

#[test]
fn a_backend_line_may_nest_past_the_client_bound() {
    let deep = format!("{}{}", "[".repeat(300), "]".repeat(300));
    assert_eq!(scan(&deep, Surrogates::Allow), None);
    assert_eq!(scan_line(&deep), Some(Scanned::Array));
    let unbalanced = format!("{}{}", "[".repeat(300), "]".repeat(299));
    assert_eq!(scan_line(&unbalanced), None);
    let mixed = format!("{}1{}", "[{\"a\":".repeat(150), "}]".repeat(150));
    assert_eq!(scan_line(&mixed), Some(Scanned::Array));
    let wrong = format!("{}1{}", "[{\"a\":".repeat(150), "]}".repeat(150));
    assert_eq!(scan_line(&wrong), None);
}

#[test]
fn an_integer_id_is_kept_as_its_value_and_written_back_as_its_text() {
    for text in [
        "0",
        "7",
        "-42",
        "9223372036854775807",
        "-9223372036854775808",
    ] {
        let id = Id::number(text);
        assert!(matches!(id, Id::Int(_)), "{text}");
        let mut out = Vec::new();
        id.write(&mut out);
        assert_eq!(out, text.as_bytes());
        assert_eq!(id.to_string(), text);
    }
    for text in ["-0", "9223372036854775808", "1e2", "2.50", "100.0"] {
        assert!(matches!(Id::number(text), Id::Number(_)), "{text}");
    }
    assert_eq!(Id::number("1e2").canonical(), Id::Int(100));
    assert_eq!(Id::number("-0").canonical(), Id::Int(0));
    assert_eq!(Id::from(7u64), Id::Int(7));
    assert_eq!(Id::from(u64::MAX), Id::number("18446744073709551615"));
}
