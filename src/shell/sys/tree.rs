//! The gateway's descendants, walked through `/proc`: every process below a
//! root, whatever process group or session it moved to. A walk is a
//! snapshot; the callers signal what it found, and a process found here is
//! provably a descendant at the time of the walk (its parent chain leads to
//! the root), never a stranger that reused a pid.

use std::collections::VecDeque;
use std::fs;

/// True where the kernel lists a task's children
/// (`/proc/<pid>/task/<tid>/children`, `CONFIG_PROC_CHILDREN`); elsewhere
/// [`descendants`] falls back to scanning every process's parent.
pub fn children_files_exist() -> bool {
    let pid = std::process::id();
    fs::metadata(format!("/proc/{pid}/task/{pid}/children")).is_ok()
}

/// The pids of every descendant of `root`, parents before their children.
pub fn descendants(root: libc::pid_t) -> Vec<libc::pid_t> {
    let mut found = Vec::new();
    let mut queue = VecDeque::from([root]);
    let by_children_file = children_files_exist();
    let parents = if by_children_file {
        Vec::new()
    } else {
        all_parents()
    };
    while let Some(pid) = queue.pop_front() {
        let children = if by_children_file {
            children_of(pid)
        } else {
            parents
                .iter()
                .filter(|(_, ppid)| *ppid == pid)
                .map(|(p, _)| *p)
                .collect()
        };
        for child in children {
            if child != root && !found.contains(&child) {
                found.push(child);
                queue.push_back(child);
            }
        }
    }
    found
}

/// The children of every thread of `pid`.
fn children_of(pid: libc::pid_t) -> Vec<libc::pid_t> {
    let Ok(tasks) = fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    let mut children = Vec::new();
    for task in tasks.flatten() {
        let path = task.path().join("children");
        if let Ok(text) = fs::read_to_string(path) {
            children.extend(
                text.split_whitespace()
                    .filter_map(|p| p.parse::<libc::pid_t>().ok()),
            );
        }
    }
    children
}

/// `(pid, ppid)` of every process, from `/proc/*/stat`.
fn all_parents() -> Vec<(libc::pid_t, libc::pid_t)> {
    let Ok(dir) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<libc::pid_t>().ok())
        .filter_map(|pid| Some((pid, stat_field(pid, 1)?)))
        .collect()
}

/// The process group of `pid`, if it exists.
pub fn pgid_of(pid: libc::pid_t) -> Option<libc::pid_t> {
    stat_field(pid, 2)
}

/// Field `index` after the command name in `/proc/<pid>/stat` (0 is the
/// state, 1 the parent, 2 the process group, 3 the session). The name may
/// hold spaces and parentheses, so fields are counted after the last `)`.
fn stat_field(pid: libc::pid_t, index: usize) -> Option<libc::pid_t> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(index)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::{Command, Stdio};

    #[test]
    fn a_walk_finds_grandchildren_in_other_sessions() {
        // sh starts a grandchild in a session of its own, prints its pid, waits.
        let mut child = Command::new("sh")
            .args(["-c", "setsid sleep 100 & echo $!; wait"])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        std::io::BufRead::read_line(
            &mut std::io::BufReader::new(child.stdout.as_mut().unwrap()),
            &mut line,
        )
        .unwrap();
        let grandchild: libc::pid_t = line.trim().parse().unwrap();
        let shell = child.id() as libc::pid_t;
        let below_shell = descendants(shell);
        assert!(below_shell.contains(&grandchild), "{below_shell:?}");
        let below_us = descendants(std::process::id() as libc::pid_t);
        assert!(below_us.contains(&shell) && below_us.contains(&grandchild));
        // `$!` is known before the background child has run setsid: poll.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while pgid_of(grandchild) == pgid_of(shell) {
            assert!(
                std::time::Instant::now() < deadline,
                "setsid never moved it"
            );
            std::thread::sleep(std::time::Duration::from_millis(1)); // polling interval
        }
        unsafe { libc::kill(grandchild, libc::SIGKILL) };
        child.wait().unwrap();
    }
}
