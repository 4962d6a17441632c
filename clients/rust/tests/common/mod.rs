//! Finding (and building) the binaries the tests run: the gateway, and the
//! ratatui example. Both come from the target directory this test binary was
//! built in (found from `std::env::current_exe()`), so `--target-dir` and
//! `--release` are followed; `TUI_GATEWAY_BIN` overrides the gateway.
//!
//! `CARGO_BIN_EXE_*` only names binaries of the test's own package, and the
//! gateway is another package of the workspace, so the first test that needs
//! a binary runs one `cargo build` of both (it keeps a `cargo test -p
//! tui-gateway-client` from running a stale gateway). It selects both
//! packages and an example, as the root's `cargo test` does, so that the
//! features it resolves are the same and, after a `cargo test` at the root,
//! it has nothing to do.

#![allow(dead_code)] // each test file uses part of it

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

/// How long any single wait in these tests may take before it fails.
pub const DEADLINE: Duration = Duration::from_secs(30);

/// `<target>/<profile>`: the directory above `deps/`, where this test runs from.
fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    let deps = exe.parent().expect("the test binary's directory");
    assert_eq!(
        deps.file_name().and_then(|n| n.to_str()),
        Some("deps"),
        "unexpected test location {}",
        exe.display()
    );
    deps.parent().expect("the profile directory").to_path_buf()
}

/// The `cargo build` flags that put artifacts in `profile_dir()`.
fn cargo_location_args(profile_dir: &Path) -> Vec<String> {
    let profile = profile_dir
        .file_name()
        .and_then(|n| n.to_str())
        .expect("profile name");
    let above = profile_dir.parent().expect("target dir");
    let mut args = Vec::new();
    // `<target>/<triple>/<profile>` when built with `--target`.
    if above.join("CACHEDIR.TAG").exists() {
        args.push(format!("--target-dir={}", above.display()));
    } else {
        let triple = above
            .file_name()
            .and_then(|n| n.to_str())
            .expect("target triple");
        args.push(format!(
            "--target-dir={}",
            above.parent().expect("target dir").display()
        ));
        args.push(format!("--target={triple}"));
    }
    args.push(format!(
        "--profile={}",
        if profile == "debug" { "dev" } else { profile }
    ));
    args
}

/// Builds the gateway and the ratatui example into this test's target
/// directory, once per test binary.
fn build() {
    static BUILT: OnceLock<()> = OnceLock::new();
    BUILT.get_or_init(|| {
        let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../Cargo.toml");
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let output = Command::new(cargo)
            .arg("build")
            .arg("--quiet")
            .arg(format!("--manifest-path={}", manifest.display()))
            .args(cargo_location_args(&profile_dir()))
            .args(["-p", "tui-gateway", "-p", "tui-gateway-client"])
            .args(["--bin", "tui-gateway", "--example", "ratatui_demo"])
            .output()
            .expect("cannot run cargo");
        assert!(
            output.status.success(),
            "cargo build of the gateway and the ratatui example failed:\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
    });
}

/// The gateway binary: `$TUI_GATEWAY_BIN`, else `tui-gateway` built into
/// this test's target directory.
pub fn gateway_bin() -> PathBuf {
    if let Some(bin) = std::env::var_os("TUI_GATEWAY_BIN").filter(|v| !v.is_empty()) {
        let bin = PathBuf::from(bin);
        assert!(
            bin.is_file(),
            "TUI_GATEWAY_BIN={} is not a file",
            bin.display()
        );
        return bin;
    }
    build();
    let bin = profile_dir().join("tui-gateway");
    assert!(
        bin.is_file(),
        "cargo build did not produce {}",
        bin.display()
    );
    bin
}

/// The ratatui example, built into this test's target directory.
pub fn demo_bin() -> PathBuf {
    build();
    let bin = profile_dir().join("examples").join("ratatui_demo");
    assert!(
        bin.is_file(),
        "cargo build did not produce {}",
        bin.display()
    );
    bin
}

/// Whether a pid is alive (a zombie counts as gone).
pub fn pid_alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => {
            // "pid (comm) S ...": the state follows the last ')'.
            let state = stat
                .rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().next());
            !matches!(state, Some("Z") | Some("X") | None)
        }
        Err(_) => false,
    }
}

/// Every descendant of `pid` (children lists of /proc, recursively).
pub fn descendants(pid: u32) -> Vec<u32> {
    let mut out = Vec::new();
    let mut todo = vec![pid];
    while let Some(p) = todo.pop() {
        let Ok(tasks) = std::fs::read_dir(format!("/proc/{p}/task")) else {
            continue;
        };
        for task in tasks.flatten() {
            let children =
                std::fs::read_to_string(task.path().join("children")).unwrap_or_default();
            for child in children
                .split_whitespace()
                .filter_map(|c| c.parse::<u32>().ok())
            {
                out.push(child);
                todo.push(child);
            }
        }
    }
    out
}

/// Polls `check` every 20 ms until it holds; panics with `what` after [`DEADLINE`].
pub fn wait_until(what: &str, mut check: impl FnMut() -> bool) -> Duration {
    let start = std::time::Instant::now();
    loop {
        if check() {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < DEADLINE,
            "timed out after {DEADLINE:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}
