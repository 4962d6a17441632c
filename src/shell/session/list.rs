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
        "{:<24} {:>8}  {:<20} {:<9} {:>9} {:>13}",
        "NAME", "PID", "STARTED", "CLIENT", "PROCESSES", "JOURNAL BYTES"
    )?;
    for s in sessions {
        let started = s["started"].as_f64().unwrap_or(0.0);
        writeln!(
            out,
            "{:<24} {:>8}  {:<20} {:<9} {:>9} {:>13}",
            s["name"].as_str().unwrap_or("?"),
            s["pid"].as_u64().unwrap_or(0),
            utc(started as i64),
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

/// `2026-12-07 04:05:06` for Unix seconds (UTC), from the civil-from-days
/// algorithm (no time-zone database in a static binary).
fn utc(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn unix_seconds_read_as_utc_dates() {
        assert_eq!(super::utc(0), "1970-01-01 00:00:00");
        assert_eq!(super::utc(1_796_616_306), "2026-12-07 04:05:06");
        assert_eq!(super::utc(951_782_400), "2000-02-29 00:00:00");
    }
}
