//! Parsing, defaults and help, against the table.

use super::*;

/// `--help` shows each default as text beside the flag; the code uses a
/// constant. Parsing every shown default must give the setting in
/// force, so the two cannot drift apart. Defaults that are not values
/// (`(none)`, `off`, `*.delta`) are the absence of the flag, and parse
/// to nothing.
#[test]
fn every_default_that_help_shows_parses_to_the_setting_in_force() {
    let defaults = Config::default();
    let mut checked = 0;
    for flag in FLAGS {
        let default = flag.default();
        let (Some(_), false) = (flag.value, default.starts_with(['(', '*'])) else {
            continue;
        };
        let mut config = Config::default();
        flag.set(&mut config, &default)
            .unwrap_or_else(|e| panic!("{}: its default {default:?}: {e}", flag.name));
        assert_eq!(
            flag.show(&config),
            flag.show(&defaults),
            "{} shows {default:?} as its default",
            flag.name,
        );
        checked += 1;
    }
    assert!(checked >= 15, "only {checked} flags checked");
}

#[test]
fn defaults_are_rendered_from_the_constants() {
    let shown = |name: &str| {
        FLAGS
            .iter()
            .find(|f| f.name == name)
            .map(Flag::default)
            .unwrap()
    };
    assert_eq!(
        shown("--max-frame-bytes"),
        format!("{}MiB", DEFAULT_MAX_FRAME_BYTES / MIB)
    );
    assert_eq!(shown("--coalesce-cap"), "60KiB");
    assert_eq!(shown("--shutdown-grace"), "1");
    assert_eq!(
        shown("--backend-max-pending"),
        DEFAULT_BACKEND_MAX_PENDING.to_string()
    );
    assert_eq!(shown("--sigint"), "ignore");
    assert_eq!(shown("--keep-running"), "off");
    assert_eq!(shown("--backend-cwd"), "(the gateway's)");
    // Bridge-only flags are marked, not found by their place in the table.
    let bridge: Vec<&str> = FLAGS
        .iter()
        .filter(|f| f.bridge_only)
        .map(|f| f.name)
        .collect();
    assert!(
        bridge.iter().all(|n| n.starts_with("--backend-")
            || [
                "--stream-event",
                "--keep-running",
                "--local-process",
                "--transparent"
            ]
            .contains(n)),
        "{bridge:?}"
    );
    assert_eq!(bridge.len(), 10);
}

fn parse(args: &[&str], env: &[(&str, &str)]) -> Result<Config, ConfigError> {
    let env: Vec<(String, String)> = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    Config::parse(args.iter().map(OsString::from), |name| {
        env.iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| OsString::from(v))
    })
}

#[test]
fn defaults_and_both_flag_forms() {
    let c = parse(&[], &[]).unwrap();
    assert_eq!(c.max_frame_bytes, 16 * MIB);
    assert_eq!(c.shutdown_grace, Duration::from_secs(1));
    let c = parse(
        &[
            "--max-frame-bytes",
            "64KiB",
            "--stall-timeout=0.5",
            "--sigint",
            "shutdown",
        ],
        &[],
    )
    .unwrap();
    assert_eq!(c.max_frame_bytes, 64 * KIB);
    assert_eq!(c.stall_timeout, Duration::from_millis(500));
    assert_eq!(c.sigint, SigintPolicy::Shutdown);
}

#[test]
fn grace_env_precedence_flag_then_ours_then_alias() {
    let alias = [("HERMES_TUI_GATEWAY_SHUTDOWN_GRACE_S", "3")];
    assert_eq!(
        parse(&[], &alias).unwrap().shutdown_grace,
        Duration::from_secs(3)
    );
    let both = [alias[0], ("TUI_GATEWAY_SHUTDOWN_GRACE_S", "2")];
    assert_eq!(
        parse(&[], &both).unwrap().shutdown_grace,
        Duration::from_secs(2)
    );
    assert_eq!(
        parse(&["--shutdown-grace", "0.25"], &both)
            .unwrap()
            .shutdown_grace,
        Duration::from_millis(250)
    );
}

#[test]
fn bad_input_is_a_usage_error_naming_the_problem() {
    for (args, needle) in [
        (&["--nope"][..], "--nope"),
        (&["--shutdown-grace"][..], "needs a value"),
        (&["--shutdown-grace", "-1"][..], "--shutdown-grace"),
        (&["--max-frame-bytes", "12XB"][..], "--max-frame-bytes"),
        (&["--sigint", "maybe"][..], "ignore or shutdown"),
        (&["--outbound-low-water", "8MiB"][..], "must be below"),
    ] {
        match parse(args, &[]) {
            Err(ConfigError::Usage(msg)) => assert!(msg.contains(needle), "{msg}"),
            other => panic!("{args:?}: {other:?}"),
        }
    }
    assert!(matches!(
        parse(&[], &[("TUI_GATEWAY_SHUTDOWN_GRACE_S", "soon")]),
        Err(ConfigError::Usage(_))
    ));
}

#[test]
fn a_flag_makes_its_variables_irrelevant_even_malformed_ones() {
    let broken = [
        ("HERMES_TUI_GATEWAY_SHUTDOWN_GRACE_S", "soon"),
        ("TUI_GATEWAY_SHUTDOWN_GRACE_S", "-3"),
    ];
    let c = parse(&["--shutdown-grace", "0.5"], &broken).unwrap();
    assert_eq!(c.shutdown_grace, Duration::from_millis(500));
    let c = parse(&["--crash-log", "/tmp/x"], &[("TUI_GATEWAY_CRASH_LOG", "")]).unwrap();
    assert_eq!(c.crash_log, Some(PathBuf::from("/tmp/x")));
    // Without the flag, a malformed variable is an error that names it.
    match parse(&[], &broken[..1]) {
        Err(ConfigError::Usage(msg)) => {
            assert!(msg.contains("HERMES_TUI_GATEWAY_SHUTDOWN_GRACE_S"), "{msg}")
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn an_empty_variable_is_unset_for_every_variable() {
    let empty: Vec<(&str, &str)> = ENV_VARS.iter().map(|(n, ..)| (*n, "")).collect();
    let c = parse(&[], &empty).unwrap();
    assert_eq!(c.shutdown_grace, DEFAULT_SHUTDOWN_GRACE);
    assert_eq!(c.crash_log, None);
    // An empty primary variable falls through to the alias.
    let c = parse(
        &[],
        &[
            ("TUI_GATEWAY_SHUTDOWN_GRACE_S", ""),
            ("HERMES_TUI_GATEWAY_SHUTDOWN_GRACE_S", "2"),
        ],
    )
    .unwrap();
    assert_eq!(c.shutdown_grace, Duration::from_secs(2));
}

#[test]
fn settings_name_every_flag() {
    let settings = Config::default().settings();
    assert_eq!(settings.len(), FLAGS.len() + 1);
    for flag in FLAGS {
        assert!(
            settings.contains_key(flag.name.trim_start_matches('-')),
            "{}",
            flag.name
        );
    }
    assert_eq!(settings["backend"], serde_json::Value::Null);
}

#[test]
fn help_lists_every_flag_and_variable() {
    let help = Config::help();
    for flag in FLAGS {
        assert!(help.contains(flag.name));
    }
    for (name, ..) in ENV_VARS {
        assert!(help.contains(name));
    }
}

#[test]
fn everything_after_the_double_dash_is_the_backend_command() {
    let c = parse(
        &[
            "--backend-restart",
            "on-failure",
            "--keep-running",
            "--",
            "python3",
            "-m",
            "app",
            "--help",
        ],
        &[],
    )
    .unwrap();
    assert_eq!(c.backend.argv, ["python3", "-m", "app", "--help"]);
    assert_eq!(c.backend.restart, RestartPolicy::OnFailure);
    assert!(c.backend.keep_running && c.is_bridge());
    let c = parse(
        &[
            "--stream-event",
            "a.chunk",
            "--stream-event=b.chunk",
            "--",
            "x",
        ],
        &[],
    )
    .unwrap();
    assert_eq!(c.backend.stream_events, ["a.chunk", "b.chunk"]);
    assert_eq!(c.settings()["backend"], serde_json::json!(["x"]));
}

#[test]
fn bridge_flags_without_a_command_and_switches_with_values_are_usage_errors() {
    for (args, needle) in [
        (&["--"][..], "followed by the backend command"),
        (&["--keep-running"][..], "needs a backend command"),
        (&["--backend-ready", "none"][..], "needs a backend command"),
        (&["--transparent=yes", "--", "x"][..], "takes no value"),
        (&["--backend-ready", "soon", "--", "x"][..], "event or none"),
        (
            &["--backend-restart", "sometimes", "--", "x"][..],
            "on-failure",
        ),
        (&["--backend-stdin-limit", "0", "--", "x"][..], "positive"),
    ] {
        match parse(args, &[]) {
            Err(ConfigError::Usage(msg)) => assert!(msg.contains(needle), "{args:?}: {msg}"),
            other => panic!("{args:?}: {other:?}"),
        }
    }
}

#[test]
fn a_max_frame_past_32_bits_is_a_usage_error() {
    let err = parse(&["--max-frame-bytes", "4GiB"], &[]).unwrap_err();
    assert!(
        matches!(err, ConfigError::Usage(ref m) if m.contains("at most")),
        "{err:?}"
    );
    let ok = parse(&["--max-frame-bytes", "4294967295"], &[]).unwrap();
    assert_eq!(ok.max_frame_bytes, u32::MAX as usize);
}
