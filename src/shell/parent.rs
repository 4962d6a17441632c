//! Noticing that the process that spawned the gateway has exited.
//!
//! A TUI that dies by SIGKILL cannot close the pipes it shares with helper
//! processes, so stdin may stay open forever. The gateway checks `getppid()`
//! every [`PARENT_CHECK_INTERVAL`](crate::config::PARENT_CHECK_INTERVAL): when
//! it differs from the parent seen at start, the kernel re-parented us, which
//! happens only when the parent exited. Before acting, the original pid is
//! confirmed gone, or a zombie, or reused by a younger process (wrappers and
//! trampolines that exec in place keep their pid and do not trigger this).

use super::sys::process;

/// Watches the original parent.
#[derive(Debug, Clone)]
pub(crate) struct ParentWatch {
    ppid: i32,
    start_time: Option<u64>,
}

impl ParentWatch {
    /// Records the current parent. `None` when there is nothing to watch (the
    /// parent is already init, as for a daemon or an orphan).
    pub(crate) fn new() -> Option<ParentWatch> {
        let ppid = process::parent_pid();
        (ppid > 1).then(|| ParentWatch {
            ppid,
            start_time: start_time(ppid),
        })
    }

    /// True when a signal sent by `pid` came from the original parent: the
    /// pid is the parent's, and no younger process has taken it since (the
    /// parent may have exited right after sending, as a UI quitting does;
    /// what matters is who sent it, not whether the sender still runs).
    pub(crate) fn sent_by(&self, pid: i32) -> bool {
        if pid != self.ppid {
            return false;
        }
        match (
            std::fs::read_to_string(format!("/proc/{pid}/stat")),
            self.start_time,
        ) {
            (Ok(stat), Some(started)) => parse_start(&after_comm(&stat)) == Some(started),
            // Gone (or never known): nothing else can have sent it as that pid
            // without the pid being reused, which needs a live process.
            _ => true,
        }
    }

    /// True once the original parent has exited.
    pub(crate) fn parent_exited(&self) -> bool {
        if process::parent_pid() == self.ppid {
            return false;
        }
        match std::fs::read_to_string(format!("/proc/{}/stat", self.ppid)) {
            Err(_) => true,
            Ok(stat) => {
                let fields = after_comm(&stat);
                let zombie = matches!(fields.first(), Some(&"Z") | Some(&"X"));
                let reused = self.start_time.is_some() && parse_start(&fields) != self.start_time;
                zombie || reused
            }
        }
    }
}

fn start_time(pid: i32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_start(&after_comm(&stat))
}

/// The fields after `(comm)`, which may itself contain spaces and parentheses.
fn after_comm(stat: &str) -> Vec<&str> {
    stat.rfind(')')
        .map(|i| stat[i + 1..].split_whitespace().collect())
        .unwrap_or_default()
}

/// Field 22 of /proc/PID/stat (starttime); index 19 after `(comm)`.
fn parse_start(fields: &[&str]) -> Option<u64> {
    fields.get(19).and_then(|s| s.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_state_and_start_time_after_a_tricky_comm() {
        let stat = "42 (a) b (c)) S 1 42 42 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 987654 1000 10";
        let fields = after_comm(stat);
        assert_eq!(fields[0], "S");
        assert_eq!(parse_start(&fields), Some(987_654));
    }

    #[test]
    fn our_own_parent_is_alive() {
        if let Some(watch) = ParentWatch::new() {
            assert!(!watch.parent_exited());
        }
    }
}
