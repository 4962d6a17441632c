//! What a spawn spec becomes before the spawner runs it: the child's
//! environment, its rlimits, and the fds its stdin, stdout and stderr come
//! from (pipes, `/dev/null` or a PTY's slave), with the gateway's ends.

use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;

use super::child::{Output, Stdin};
use super::sys::spawn::Group;
use super::sys::{child_setup, fd, pty};
use crate::engine::host::{OutputStream, ResourceLimits, SpawnSpec, StderrMode, StdinMode};

/// A child's stdio, wired: the gateway's ends and the child's.
#[derive(Debug)]
pub(super) struct Wiring {
    /// `[stdout or PTY master, stderr]`, the gateway's read ends.
    pub(super) outputs: [Option<Output>; 2],
    /// The gateway's end of the child's stdin.
    pub(super) stdin: Stdin,
    /// The fds the child's 0, 1 and 2 are duplicated from, each with
    /// whether it is a pipe end the child makes blocking.
    pub(super) stdio: [(RawFd, bool); 3],
    /// The child's process group: its own, or the terminal's session.
    pub(super) group: Group,
    /// The child's ends, held until it has them: dropping them after the
    /// spawn lets EOF arrive when the child is done.
    pub(super) held: Vec<OwnedFd>,
}

/// Opens the pipes or the PTY `spec` asks for; `dev_null` gives `/dev/null`
/// for a stream that has none. Every pipe is made close-on-exec and
/// non-blocking in one call (the child makes its own ends blocking), and
/// every child end sits above fd 2, so duplicating it onto 0, 1 or 2
/// cannot clobber another.
pub(super) fn wire(
    spec: &SpawnSpec,
    mut dev_null: impl FnMut() -> io::Result<RawFd>,
) -> io::Result<Wiring> {
    let mut held: Vec<OwnedFd> = Vec::with_capacity(4);
    let (outputs, stdin, stdio, group) = match spec.pty {
        Some(size) => {
            let pair = pty::open(size)?;
            let slave = fd::above_stdio(pair.slave)?;
            let raw = slave.as_raw_fd();
            held.push(slave);
            let master = Output {
                file: File::from(pair.master),
                stream: OutputStream::Pty,
                ready: false,
            };
            let stdio = [(raw, false); 3];
            ([Some(master), None], Stdin::Pty, stdio, Group::Terminal)
        }
        None => {
            let (out_read, out_write) = fd::pipe_nonblocking()?;
            let out_write = fd::above_stdio(out_write)?;
            let out_raw = out_write.as_raw_fd();
            held.push(out_write);
            let mut err_read = None;
            let err = match spec.stderr {
                StderrMode::Pipe => {
                    let (r, w) = fd::pipe_nonblocking()?;
                    err_read = Some(r);
                    let w = fd::above_stdio(w)?;
                    let raw = w.as_raw_fd();
                    held.push(w);
                    (raw, true)
                }
                StderrMode::Merge => (out_raw, true),
                StderrMode::Null => (dev_null()?, false),
            };
            let (input, stdin) = match spec.stdin {
                StdinMode::Pipe => {
                    let (r, w) = fd::pipe_nonblocking()?;
                    let r = fd::above_stdio(r)?;
                    let raw = r.as_raw_fd();
                    held.push(r);
                    ((raw, true), Stdin::Pipe(File::from(w)))
                }
                StdinMode::Null => ((dev_null()?, false), Stdin::None),
            };
            let outputs = [
                Some(Output {
                    file: File::from(out_read),
                    stream: OutputStream::Stdout,
                    ready: false,
                }),
                err_read.map(|fd| Output {
                    file: File::from(fd),
                    stream: OutputStream::Stderr,
                    ready: false,
                }),
            ];
            (outputs, stdin, [input, (out_raw, true), err], Group::New)
        }
    };
    Ok(Wiring {
        outputs,
        stdin,
        stdio,
        group,
        held,
    })
}

/// The child's environment as `NAME=value` entries: the gateway's (unless
/// cleared), `TERM` on a terminal, then the spec's settings and removals,
/// in that order; a later setting of a name replaces an earlier one.
pub(super) fn child_env(spec: &SpawnSpec) -> Vec<Vec<u8>> {
    let mut vars: Vec<(Vec<u8>, Vec<u8>)> = if spec.clear_env {
        Vec::new()
    } else {
        std::env::vars_os()
            .map(|(k, v)| (k.as_bytes().to_vec(), v.as_bytes().to_vec()))
            .collect()
    };
    let mut set = |name: &[u8], value: Option<&[u8]>| {
        vars.retain(|(k, _)| k != name);
        if let Some(value) = value {
            vars.push((name.to_vec(), value.to_vec()));
        }
    };
    if spec.pty.is_some() {
        set(b"TERM", Some(b"xterm-256color"));
    }
    for (name, value) in &spec.env {
        set(name.as_bytes(), value.as_ref().map(|v| v.as_bytes()));
    }
    vars.into_iter()
        .map(|(mut k, v)| {
            k.push(b'=');
            k.extend_from_slice(&v);
            k
        })
        .collect()
}

/// The `setrlimit` calls for `limits`, in a fixed array so that the child
/// allocates nothing between `fork` and `exec`: the array and how many of
/// it to apply. CPU time gets a hard limit one second above the soft one,
/// so a program that handles SIGXCPU still ends (SIGKILL) a second later.
pub(super) fn rlimits(limits: &ResourceLimits) -> ([child_setup::Rlimit; 5], usize) {
    let none = child_setup::Rlimit {
        resource: 0,
        soft: 0,
        hard: 0,
    };
    let mut out = [none; 5];
    let mut count = 0;
    let wanted = [
        (libc::RLIMIT_DATA, limits.memory_bytes, 0),
        (libc::RLIMIT_CPU, limits.cpu_seconds, 1),
        (libc::RLIMIT_NOFILE, limits.open_files, 0),
        (libc::RLIMIT_NPROC, limits.processes, 0),
        (libc::RLIMIT_FSIZE, limits.file_size_bytes, 0),
    ];
    for (resource, value, slack) in wanted {
        if let Some(value) = value {
            // Never above the gateway's own hard limit, which the child
            // could not raise (then the soft limit is the hard one).
            let hard = value
                .saturating_add(slack)
                .min(child_setup::hard_limit(resource))
                .max(value);
            out[count] = child_setup::Rlimit {
                resource,
                soft: value,
                hard,
            };
            count += 1;
        }
    }
    (out, count)
}
