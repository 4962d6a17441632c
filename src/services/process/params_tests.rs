//! Unit tests of `params.rs`: every -32602 message names what is wrong.

use super::*;
use serde_json::json;

fn err(r: Result<impl std::fmt::Debug, RpcError>) -> String {
    let e = r.expect_err("expected an error");
    assert_eq!(e.code.code(), -32602);
    e.message
}

#[test]
fn spawn_defaults_and_full_form() {
    let s = spawn(Some(json!({"argv": ["echo", "hi"]}))).unwrap();
    assert_eq!(s.spec.argv, ["echo", "hi"]);
    assert_eq!(s.spec.stdin, StdinMode::Pipe);
    assert_eq!(s.spec.stderr, StderrMode::Pipe);
    assert_eq!(s.encoding, Encoding::Utf8);
    assert!(s.spec.cwd.is_none() && !s.spec.clear_env && s.spec.env.is_empty());
    assert_eq!(s.tag, Value::Null);

    let s = spawn(Some(json!({
        "argv": ["env"], "cwd": "/tmp", "env": {"A": "1", "B": null},
        "clear_env": true, "stdin": "null", "stderr": "merge",
        "encoding": "base64", "tag": {"job": 7}
    })))
    .unwrap();
    assert_eq!(s.spec.cwd, Some(PathBuf::from("/tmp")));
    assert_eq!(
        s.spec.env,
        [
            ("A".to_owned(), Some("1".to_owned())),
            ("B".to_owned(), None)
        ]
    );
    assert!(s.spec.clear_env);
    assert_eq!(s.spec.stdin, StdinMode::Null);
    assert_eq!(s.spec.stderr, StderrMode::Merge);
    assert_eq!(s.encoding, Encoding::Base64);
    assert_eq!(s.tag, json!({"job": 7}));

    let s = spawn(Some(json!({"argv": ["x"], "cwd": null, "stderr": null}))).unwrap();
    assert!(s.spec.cwd.is_none());
}

#[test]
fn spawn_errors_name_the_parameter() {
    for (params, needle) in [
        (None, "needs params"),
        (Some(json!([["echo"]])), "as an object, got an array"),
        (Some(json!({})), "needs argv"),
        (Some(json!({"argv": []})), "argv must not be empty"),
        (Some(json!({"argv": "echo hi"})), "argv must be an array"),
        (
            Some(json!({"argv": ["echo", 1]})),
            "argv[1] must be a string, got a number",
        ),
        (
            Some(json!({"argv": [null]})),
            "argv[0] must be a string, got null",
        ),
        (Some(json!({"argv": [""]})), "argv[0] must name a program"),
        (Some(json!({"argv": ["a\u{0}b"]})), "argv[0] contains a NUL"),
        (
            Some(json!({"argv": ["x"], "args": []})),
            "unknown parameter \"args\"",
        ),
        (
            Some(json!({"argv": ["x"], "cwd": 3})),
            "cwd must be a string",
        ),
        (
            Some(json!({"argv": ["x"], "cwd": ""})),
            "cwd must not be empty",
        ),
        (
            Some(json!({"argv": ["x"], "env": ["A=1"]})),
            "env must be an object",
        ),
        (
            Some(json!({"argv": ["x"], "env": {"A=B": "1"}})),
            "env name \"A=B\"",
        ),
        (
            Some(json!({"argv": ["x"], "env": {"A": 1}})),
            "env[\"A\"] must be a string",
        ),
        (
            Some(json!({"argv": ["x"], "clear_env": "yes"})),
            "clear_env must be true or false",
        ),
        (
            Some(json!({"argv": ["x"], "stdin": "tty"})),
            "stdin must be \"pipe\" or \"null\", got \"tty\"",
        ),
        (
            Some(json!({"argv": ["x"], "stderr": true})),
            "stderr must be \"pipe\" or \"merge\" or \"null\"",
        ),
        (
            Some(json!({"argv": ["x"], "encoding": "hex"})),
            "encoding must be \"utf8\" or \"base64\"",
        ),
    ] {
        let msg = err(spawn(params.clone()));
        assert!(msg.contains(needle), "{params:?}: {msg:?} lacks {needle:?}");
    }
}

#[test]
fn write_decodes_base64_and_checks_proc() {
    assert_eq!(
        write(Some(json!({"proc": 3, "data": "hi"}))).unwrap(),
        Write {
            proc: 3,
            data: b"hi".to_vec()
        }
    );
    assert_eq!(
        write(Some(
            json!({"proc": 3, "data": "AP8=", "encoding": "base64"})
        ))
        .unwrap(),
        Write {
            proc: 3,
            data: vec![0, 255]
        }
    );
    for (params, needle) in [
        (json!({"data": "x"}), "proc is missing"),
        (
            json!({"proc": -1, "data": "x"}),
            "proc must be the integer id",
        ),
        (json!({"proc": "1", "data": "x"}), "got \"1\""),
        (json!({"proc": 1.5, "data": "x"}), "got 1.5"),
        (json!({"proc": 1}), "needs data"),
        (json!({"proc": 1, "data": [1]}), "data must be a string"),
        (
            json!({"proc": 1, "data": "!!", "encoding": "base64"}),
            "invalid base64 character at offset 0",
        ),
    ] {
        let msg = err(write(Some(params.clone())));
        assert!(msg.contains(needle), "{params}: {msg:?} lacks {needle:?}");
    }
}

#[test]
fn signal_takes_names_or_numbers() {
    let s = signal(Some(json!({"proc": 1, "signal": "SIGUSR1"}))).unwrap();
    assert_eq!(s.signal, libc::SIGUSR1);
    let s = signal(Some(json!({"proc": 1, "signal": 9}))).unwrap();
    assert_eq!(s.signal, 9);
    for (params, needle) in [
        (
            json!({"proc": 1, "signal": "TERM"}),
            "\"TERM\" is not a known signal name",
        ),
        (json!({"proc": 1, "signal": 0}), "out of range"),
        (json!({"proc": 1, "signal": 65}), "out of range"),
        (json!({"proc": 1}), "needs signal"),
        (json!({"proc": 1, "signal": [15]}), "got an array"),
    ] {
        let msg = err(signal(Some(params.clone())));
        assert!(msg.contains(needle), "{params}: {msg:?} lacks {needle:?}");
    }
}

#[test]
fn list_takes_nothing() {
    assert!(none("process.list", None).is_ok());
    assert!(none("process.list", Some(json!({}))).is_ok());
    assert!(none("process.list", Some(json!([]))).is_ok());
    assert!(err(none("process.list", Some(json!({"all": true})))).contains("takes no params"));
    assert!(err(proc_only(
        "process.close_stdin",
        Some(json!({"proc": 1, "x": 2}))
    ))
    .contains("unknown parameter \"x\""));
}
