//! The UI-side client libraries (issue #10), run by `cargo test` against the
//! binary this build produced: the Node suite (`node --test` in
//! `clients/node`) and the Python suite (`python3 -m unittest` in
//! `clients/python`), each with `TUI_GATEWAY_BIN` pointing at that binary,
//! and the check that both suites hold the same conformance scenarios
//! (`clients/conformance.py`, issue #20; the naming table they cover is
//! `clients/README.md`). A missing `node` or `python3` is a failure that says
//! what to install; `.ci/run` installs them.

use std::path::Path;
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_tui-gateway");

/// Runs `program args` in `dir` with the gateway binary in the environment;
/// panics with the suite's output if it fails.
fn run_suite(dir: &str, program: &str, args: &[&str], install: &str) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join(dir);
    let output = Command::new(program)
        .args(args)
        .current_dir(&dir)
        .env("TUI_GATEWAY_BIN", BIN)
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run {program} ({e}): the client tests need it; install {install}")
        });
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        output.status.success(),
        "{program} {args:?} in {} failed ({}):\n{text}",
        dir.display(),
        output.status
    );
    // The last lines carry the suite's own counts.
    let tail: Vec<&str> = text.lines().rev().take(12).collect();
    for line in tail.into_iter().rev() {
        eprintln!("{line}");
    }
}

#[test]
fn node_client_suite_passes_against_this_build() {
    run_suite("clients/node", "node", &["--test"], "Node.js 20 or later");
}

#[test]
fn python_client_suite_passes_against_this_build() {
    run_suite(
        "clients/python",
        "python3",
        &["-m", "unittest", "discover", "-s", "tests", "-v"],
        "Python 3.9 or later (and tmux for the demo test)",
    );
}

/// Both suites name the same conformance scenarios (`conformance("<name>")`
/// in each): the script fails, listing them, on a name found in one suite
/// only, and prints the size of both lists.
#[test]
fn client_suites_share_the_conformance_scenarios() {
    run_suite(
        ".",
        "python3",
        &["clients/conformance.py"],
        "Python 3.9 or later",
    );
}

/// The Go client (`clients/go`, standard library only): `go test ./...`
/// against this build's binary. `-count=1` because Go's test cache would
/// not notice a rebuilt gateway. A missing `go` is a failure that says what
/// to install; `.ci/run` installs `golang-go`.
#[test]
fn go_client_suite_passes_against_this_build() {
    run_suite(
        "clients/go",
        "go",
        &["test", "-count=1", "-v", "./..."],
        "Go 1.19 or later (Debian/Ubuntu: apt-get install golang-go)",
    );
}
