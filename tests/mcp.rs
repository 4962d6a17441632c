//! `--transparent` in front of a real MCP server, driven by a real client:
//! the official MCP Python SDK's stdio client (`tests/backends/mcp_check.py`)
//! against `tests/backends/mcp_server.py` (tools, progress notifications, a
//! 5 MB result), once directly and once through the gateway. The two runs
//! must print the same summary, and nothing may be left running after the
//! client closes.
//!
//! The SDK lives in a virtualenv, `target/mcp-venv` (or the Python named by
//! `TUI_GATEWAY_MCP_PYTHON`); this test creates it from
//! `tests/backends/requirements-mcp.txt` when it is missing (PyPI access
//! needed once).

mod util;

use std::path::{Path, PathBuf};
use std::process::Command;

use util::*;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A Python with the MCP SDK, installing it if needed.
fn mcp_python() -> PathBuf {
    if let Some(python) = std::env::var_os("TUI_GATEWAY_MCP_PYTHON") {
        return PathBuf::from(python);
    }
    let venv = root().join("target/mcp-venv");
    let python = venv.join("bin/python");
    let ready = venv.join(".installed");
    if !ready.exists() {
        let run = |program: &Path, args: &[&str]| {
            let out = Command::new(program)
                .args(args)
                .output()
                .unwrap_or_else(|e| panic!("cannot run {}: {e}", program.display()));
            assert!(
                out.status.success(),
                "{} {args:?} failed: {}{}",
                program.display(),
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        };
        run(
            Path::new("python3"),
            &["-m", "venv", venv.to_str().unwrap()],
        );
        let requirements = root().join("tests/backends/requirements-mcp.txt");
        run(
            &python,
            &[
                "-m",
                "pip",
                "install",
                "--quiet",
                "-r",
                requirements.to_str().unwrap(),
            ],
        );
        std::fs::write(&ready, "").unwrap();
    }
    python
}

/// Runs the SDK client against `server`; returns its summary line.
fn check(python: &Path, server: &[&str], pidfile: &Path) -> String {
    let check = root().join("tests/backends/mcp_check.py");
    let out = Command::new(python)
        .arg(&check)
        .arg("--")
        .args(server)
        .env("MCP_SERVER_PIDFILE", pidfile)
        .output()
        .expect("run mcp_check.py");
    assert!(
        out.status.success(),
        "the MCP client failed against {server:?}:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn server_pids(pidfile: &Path) -> Vec<u32> {
    std::fs::read_to_string(pidfile)
        .unwrap_or_default()
        .lines()
        .map(|l| l.trim().parse().unwrap())
        .collect()
}

/// Processes whose command line mentions `needle`.
fn processes_mentioning(needle: &str) -> Vec<u32> {
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .map(|c| String::from_utf8_lossy(&c).contains(needle))
                .unwrap_or(false)
        })
        .filter(|pid| !process_gone(*pid))
        .collect()
}

#[test]
fn the_official_mcp_client_gets_the_same_results_through_the_gateway_and_nothing_outlives_it() {
    let python = mcp_python();
    let server_py = root().join("tests/backends/mcp_server.py");
    let server_py = server_py.to_str().unwrap();
    let python_s = python.to_str().unwrap();

    let direct_pids = TempFile::new("mcp-direct");
    let direct = check(&python, &[python_s, server_py], direct_pids.path());

    let bridged_pids = TempFile::new("mcp-bridged");
    // A marker argument (ignored by the server) finds every process of this
    // run in /proc afterwards, the gateway included.
    let marker = bridged_pids.path().to_str().unwrap();
    let bridged = check(
        &python,
        &[BIN, "--transparent", "--", python_s, server_py, marker],
        bridged_pids.path(),
    );
    assert_eq!(bridged, direct, "the client must see the same results");
    assert!(direct.contains("\"len\":5000000"), "{direct}");

    let servers = server_pids(bridged_pids.path());
    assert_eq!(servers.len(), 1, "one server ran through the gateway");
    assert_gone(&servers, "the MCP server behind the gateway");
    assert!(
        poll_until(PATIENCE, || processes_mentioning(marker).is_empty()),
        "left running: {:?}",
        processes_mentioning(marker)
    );
}
