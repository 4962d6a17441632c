//! Processes observed from the outside: fields of `/proc/<pid>/status`
//! (memory, state, parent), whether a pid is gone or is still a tui-gateway,
//! polling a condition until it holds or a deadline passes, and the exit code
//! of an `ExitStatus` (a death by signal is a failure).

use std::process::ExitStatus;
use std::time::{Duration, Instant};

/// `/proc/<pid>/status`, if the process exists.
pub fn proc_status(pid: u32) -> Option<String> {
    std::fs::read_to_string(format!("/proc/{pid}/status")).ok()
}

/// A `kB` field of `/proc/<pid>/status` (VmRSS, VmHWM, ...), in bytes.
pub fn proc_mem_bytes(pid: u32, field: &str) -> Option<u64> {
    let status = proc_status(pid)?;
    let line = status
        .lines()
        .find(|l| l.starts_with(&format!("{field}:")))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// The one-letter state of a process (R, S, Z, ...), if it exists.
pub fn proc_state(pid: u32) -> Option<char> {
    let status = proc_status(pid)?;
    let line = status.lines().find(|l| l.starts_with("State:"))?;
    line.split_whitespace().nth(1)?.chars().next()
}

/// The parent pid of a process, if it exists.
pub fn proc_ppid(pid: u32) -> Option<u32> {
    let status = proc_status(pid)?;
    let line = status.lines().find(|l| l.starts_with("PPid:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// True when the process has exited: no /proc entry, or a zombie nobody reaped
/// (in a container the new parent may never reap it).
pub fn process_gone(pid: u32) -> bool {
    matches!(proc_state(pid), None | Some('Z') | Some('X'))
}

/// True if `pid` is (still) a tui-gateway process.
pub fn is_gateway_process(pid: u32) -> bool {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|c| String::from_utf8_lossy(&c).contains("tui-gateway"))
        .unwrap_or(false)
}

/// Polls `cond` every millisecond until it holds or `timeout` passes.
pub fn poll_until(timeout: Duration, cond: impl FnMut() -> bool) -> bool {
    poll_every(Duration::from_millis(1), timeout, cond)
}

/// Polls `cond` every `interval` until it holds or `timeout` passes (a
/// longer interval for a check that is itself costly).
pub fn poll_every(interval: Duration, timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(interval); // polling interval, not a wait for an event
    }
}

/// The exit code, panicking (with the signal) if the process was killed by one.
pub fn code_of(status: ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    match status.code() {
        Some(c) => c,
        None => panic!(
            "gateway was killed by signal {:?} instead of exiting",
            status.signal()
        ),
    }
}

/// Fields of `/proc/<pid>/stat` after the command name: index 0 is the
/// state, 1 the parent, 2 the process group, 5 the terminal's foreground
/// process group (`tpgid`).
fn stat_fields(pid: u32) -> Option<Vec<String>> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // "pid (comm) S ppid ...": comm may hold spaces and parentheses.
    let close = stat.rfind(')')?;
    Some(
        stat[close + 1..]
            .split_whitespace()
            .map(str::to_owned)
            .collect(),
    )
}

/// A child of `parent` that has exec'd `name` and is in the foreground
/// process group of its terminal: the job a Ctrl+C on that terminal reaches.
/// Before the exec the child still runs the parent's image under the
/// parent's name, and a signal then goes to whatever the parent decides.
pub fn foreground_child_named(parent: u32, name: &str) -> Option<u32> {
    std::fs::read_dir("/proc")
        .ok()?
        .flatten()
        .find_map(|entry| {
            let pid: u32 = entry.file_name().to_str()?.parse().ok()?;
            let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).ok()?;
            let fields = stat_fields(pid)?;
            let in_foreground = fields
                .get(2)
                .is_some_and(|pgrp| fields.get(5) == Some(pgrp));
            (comm.trim_end() == name && fields.get(1)?.parse() == Ok(parent) && in_foreground)
                .then_some(pid)
        })
}
