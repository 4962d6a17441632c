//! `tui-gateway sessions [--json]`: the sessions of this user, each asked
//! for its state over its socket (`gateway.session`). A socket nobody
//! listens on is a dead session's and is skipped.

use std::io::{self, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

use serde_json::Value;

/// How long a session may take to answer.
const ASK_WAIT: Duration = Duration::from_secs(5);

/// Prints the sessions in `dir`; returns the exit code.
pub(crate) fn run(dir: &Path, json: bool) -> i32 {
    let mut sockets: Vec<_> = match std::fs::read_dir(dir) {
        Ok(entries) => entries
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "sock"))
            .collect(),
        Err(e) => {
            crate::shell::stderr::line(&format!(
                "tui-gateway sessions: cannot read {}: {e}",
                dir.display()
            ));
            return crate::exit_code::IO_ERROR;
        }
    };
    sockets.sort();
    let sessions: Vec<Value> = sockets.iter().filter_map(|p| ask(p).ok()).collect();
    let mut out = io::stdout().lock();
    let written = if json {
        writeln!(out, "{}", Value::Array(sessions))
    } else {
        table(&mut out, &sessions)
    };
    match written.and_then(|()| out.flush()) {
        Ok(()) => crate::exit_code::ORDERLY,
        Err(_) => crate::exit_code::IO_ERROR,
    }
}

fn table(out: &mut impl Write, sessions: &[Value]) -> io::Result<()> {
    writeln!(
        out,
        "{:<24} {:>8}  {:<24} {:<9} {:>9} {:>13}",
        "NAME", "PID", "STARTED (UTC)", "CLIENT", "PROCESSES", "JOURNAL BYTES"
    )?;
    for s in sessions {
        let started = s["started"].as_f64().unwrap_or(0.0);
        writeln!(
            out,
            "{:<24} {:>8}  {:<24} {:<9} {:>9} {:>13}",
            s["name"].as_str().unwrap_or("?"),
            s["pid"].as_u64().unwrap_or(0),
            crate::shell::crashlog::format_utc(started as i64, 0),
            if s["attached"].as_bool() == Some(true) {
                "attached"
            } else {
                "detached"
            },
            s["processes"].as_u64().unwrap_or(0),
            s["journal_bytes"].as_u64().unwrap_or(0),
        )?;
    }
    Ok(())
}

/// Asks the session behind `socket` for its state.
fn ask(socket: &Path) -> io::Result<Value> {
    let mut stream = UnixStream::connect(socket)?;
    stream.set_read_timeout(Some(ASK_WAIT))?;
    stream.write_all(b"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"gateway.session\"}\n")?;
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer)?;
    let answer: Value = serde_json::from_slice(&answer)?;
    answer
        .get("result")
        .cloned()
        .ok_or_else(|| io::Error::other("no result"))
}
