//! Child processes: spawned into their own process group with non-blocking
//! pipes, read under backpressure, reaped on SIGCHLD, killed by group.
//!
//! [`Children`] is the shell's [`Host`]: services ask it to spawn, write,
//! signal and release; the loop asks it to read ready pipes and reap.
//! Every pipe is registered with the loop's `Poll` under a token derived from
//! the child's slab key, so readiness comes back to the right child.

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Command, Stdio};
use std::sync::Mutex;

use mio::unix::SourceFd;
use mio::{Interest, Registry, Token};
use serde_json::{json, Map, Value};
use slab::Slab;

use crate::engine::host::{
    ChildEvent, ChildKey, ExitStatus, Host, OutputStream, SpawnSpec, Spawned, StderrMode, StdinMode,
};

/// Reads per pipe per loop tick, so one chatty child cannot starve the rest.
const READS_PER_TICK: usize = 4;
/// Token slots per child: stdout, stderr, stdin.
const SLOTS: usize = 3;

/// Process groups alive right now, for the panic hook's last-resort kill.
static LIVE_GROUPS: Mutex<Vec<i32>> = Mutex::new(Vec::new());

/// Sends SIGKILL to every process group the gateway started and has not
/// released. Called from the panic hook; never blocks.
pub fn kill_all_groups_now() {
    if let Ok(groups) = LIVE_GROUPS.try_lock() {
        for &pgid in groups.iter() {
            // SAFETY: kill has no memory effects.
            unsafe { libc::kill(-pgid, libc::SIGKILL) };
        }
    }
}

fn track_group(pgid: i32, alive: bool) {
    if let Ok(mut groups) = LIVE_GROUPS.lock() {
        groups.retain(|&g| g != pgid);
        if alive {
            groups.push(pgid);
        }
    }
}

/// One output pipe of one child.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PipeRef {
    key: usize,
    slot: usize,
}

/// This tick's reads: rounds over the pipes that were ready at its start.
#[derive(Debug)]
pub struct ReadRounds {
    pipes: Vec<PipeRef>,
    round: usize,
    index: usize,
    read_this_round: bool,
}

impl ReadRounds {
    /// The next pipe to read once, or `None` when every pipe has had its
    /// reads for this tick or is drained.
    pub fn next_pipe(&mut self, children: &Children) -> Option<PipeRef> {
        while self.round < READS_PER_TICK {
            if self.index == self.pipes.len() {
                if !std::mem::take(&mut self.read_this_round) {
                    return None;
                }
                self.round += 1;
                self.index = 0;
                continue;
            }
            let pipe = self.pipes[self.index];
            self.index += 1;
            if children.is_ready(pipe) {
                self.read_this_round = true;
                return Some(pipe);
            }
        }
        None
    }
}

#[derive(Debug)]
struct OutPipe {
    file: File,
    stream: OutputStream,
    /// Readiness seen and not yet drained to `WouldBlock`.
    ready: bool,
}

#[derive(Debug)]
struct Child {
    process: std::process::Child,
    pid: i32,
    outputs: [Option<OutPipe>; 2],
    stdin: Option<File>,
    reaped: bool,
}

/// The children of one gateway.
#[derive(Debug)]
pub struct Children {
    registry: Registry,
    first_token: usize,
    slab: Slab<Child>,
    /// Where the next tick's reads start, so no child is always first.
    rotation: usize,
    spawned_total: u64,
    reaped_total: u64,
}

impl Children {
    /// Children whose pipes register with `registry` under tokens from `first_token` up.
    pub fn new(registry: Registry, first_token: usize) -> Children {
        Children {
            registry,
            first_token,
            slab: Slab::new(),
            rotation: 0,
            spawned_total: 0,
            reaped_total: 0,
        }
    }

    fn token(&self, key: usize, slot: usize) -> Token {
        Token(self.first_token + key * SLOTS + slot)
    }

    /// Records readiness for a token this set owns. Returns false if the
    /// token is not a child's.
    pub fn on_readiness(&mut self, token: Token, events: &mut Vec<(ChildKey, ChildEvent)>) -> bool {
        let Some(index) = token.0.checked_sub(self.first_token) else {
            return false;
        };
        let (key, slot) = (index / SLOTS, index % SLOTS);
        let Some(child) = self.slab.get_mut(key) else {
            return true;
        };
        match slot {
            0 | 1 => {
                if let Some(pipe) = child.outputs[slot].as_mut() {
                    pipe.ready = true;
                }
            }
            _ => {
                if child.stdin.is_some() {
                    events.push((ChildKey(key), ChildEvent::StdinWritable));
                }
            }
        }
        true
    }

    /// True if some pipe has unread readiness (the loop must not sleep).
    pub fn has_ready_output(&self) -> bool {
        self.slab
            .iter()
            .any(|(_, c)| c.outputs.iter().flatten().any(|p| p.ready))
    }

    /// The ready pipes for this tick's reads, in a rotating order so no
    /// child is always first. Each pipe gets up to [`READS_PER_TICK`] reads,
    /// one per round, so one chatty child cannot starve the rest.
    pub fn read_rounds(&mut self) -> ReadRounds {
        let mut pipes: Vec<PipeRef> = self
            .slab
            .iter()
            .flat_map(|(key, child)| {
                (0..2)
                    .filter(|&slot| child.outputs[slot].as_ref().is_some_and(|p| p.ready))
                    .map(move |slot| PipeRef { key, slot })
            })
            .collect();
        if !pipes.is_empty() {
            self.rotation = self.rotation.wrapping_add(1);
            let by = self.rotation % pipes.len();
            pipes.rotate_left(by);
        }
        ReadRounds {
            pipes,
            round: 0,
            index: 0,
            read_this_round: false,
        }
    }

    fn is_ready(&self, pipe: PipeRef) -> bool {
        self.slab
            .get(pipe.key)
            .and_then(|c| c.outputs[pipe.slot].as_ref())
            .is_some_and(|p| p.ready)
    }

    /// One read of at most `buf.len()` bytes from a ready pipe, appending an
    /// output or EOF event. `WouldBlock` clears the pipe's readiness.
    pub fn read_pipe(
        &mut self,
        pipe: PipeRef,
        buf: &mut [u8],
        events: &mut Vec<(ChildKey, ChildEvent)>,
    ) {
        let Some(child) = self.slab.get_mut(pipe.key) else {
            return;
        };
        let Some(out) = child.outputs[pipe.slot].as_mut() else {
            return;
        };
        let stream = out.stream;
        let eof = match out.file.read(buf) {
            Ok(0) => true,
            Ok(n) => {
                events.push((
                    ChildKey(pipe.key),
                    ChildEvent::Output(stream, buf[..n].to_vec()),
                ));
                false
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                out.ready = false;
                false
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => false,
            Err(e) => {
                log::warn!("reading child {} {}: {e}", child.pid, stream.as_str());
                true
            }
        };
        if eof {
            if let Some(out) = child.outputs[pipe.slot].take() {
                let _ = self
                    .registry
                    .deregister(&mut SourceFd(&out.file.as_raw_fd()));
            }
            events.push((ChildKey(pipe.key), ChildEvent::Eof(stream)));
        }
    }

    /// Reaps every child that has exited (several exits can share one SIGCHLD).
    pub fn reap(&mut self, events: &mut Vec<(ChildKey, ChildEvent)>) {
        for (key, child) in self.slab.iter_mut() {
            if child.reaped {
                continue;
            }
            match child.process.try_wait() {
                Ok(Some(status)) => {
                    child.reaped = true;
                    self.reaped_total += 1;
                    let status = match (status.code(), status.signal()) {
                        (Some(code), _) => ExitStatus::Code(code),
                        (None, Some(sig)) => ExitStatus::Signal(sig),
                        (None, None) => ExitStatus::Code(-1),
                    };
                    events.push((ChildKey(key), ChildEvent::Exited(status)));
                }
                Ok(None) => {}
                Err(e) => log::warn!("waitpid({}) failed: {e}", child.pid),
            }
        }
    }

    /// Number of children not yet reaped.
    pub fn alive(&self) -> usize {
        self.slab.iter().filter(|(_, c)| !c.reaped).count()
    }

    /// Last resort at exit: SIGKILL every group still known and reap what
    /// already died, without waiting.
    pub fn kill_all(&mut self) {
        for (_, child) in self.slab.iter_mut() {
            // SAFETY: kill has no memory effects. The group may outlive its
            // leader (background grandchildren), so it is killed even after
            // the leader was reaped.
            unsafe { libc::kill(-child.pid, libc::SIGKILL) };
            if !child.reaped {
                child.reaped = matches!(child.process.try_wait(), Ok(Some(_)));
            }
            track_group(child.pid, false);
        }
    }

    fn spawn_child(&mut self, spec: &SpawnSpec) -> io::Result<Spawned> {
        let Some((program, args)) = spec.argv.split_first() else {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "empty argv"));
        };
        let mut cmd = Command::new(program);
        cmd.args(args).process_group(0);
        let gateway = std::process::id() as libc::pid_t;
        // SAFETY: `prepare_child` makes async-signal-safe syscalls only and
        // allocates nothing, as code between fork and exec must.
        unsafe {
            cmd.pre_exec(move || super::sys::prepare_child(gateway));
        }
        if let Some(cwd) = &spec.cwd {
            cmd.current_dir(cwd);
        }
        if spec.clear_env {
            cmd.env_clear();
        }
        for (name, value) in &spec.env {
            match value {
                Some(v) => cmd.env(name, v),
                None => cmd.env_remove(name),
            };
        }
        let (out_read, out_write) = pipe()?;
        let mut err_read = None;
        cmd.stdout(Stdio::from(out_write.try_clone()?));
        match spec.stderr {
            StderrMode::Pipe => {
                let (r, w) = pipe()?;
                err_read = Some(r);
                cmd.stderr(Stdio::from(w));
            }
            StderrMode::Merge => {
                cmd.stderr(Stdio::from(out_write.try_clone()?));
            }
            StderrMode::Null => {
                cmd.stderr(Stdio::null());
            }
        }
        drop(out_write);
        cmd.stdin(match spec.stdin {
            StdinMode::Pipe => Stdio::piped(),
            StdinMode::Null => Stdio::null(),
        });
        let mut process = cmd.spawn()?;
        // The command holds the write ends; drop them so EOF arrives when the child exits.
        drop(cmd);
        let pid = process.id() as i32;
        track_group(pid, true);
        self.spawned_total += 1;

        let key = self.slab.vacant_key();
        let mut child = Child {
            pid,
            stdin: process.stdin.take().map(|s| File::from(OwnedFd::from(s))),
            process,
            outputs: [
                Some(OutPipe {
                    file: File::from(out_read),
                    stream: OutputStream::Stdout,
                    ready: false,
                }),
                err_read.map(|fd| OutPipe {
                    file: File::from(fd),
                    stream: OutputStream::Stderr,
                    ready: false,
                }),
            ],
            reaped: false,
        };
        if let Err(e) = self.watch(key, &mut child) {
            // Never leave a child running that nobody watches.
            // SAFETY: kill has no memory effects.
            unsafe { libc::kill(-pid, libc::SIGKILL) };
            let _ = child.process.wait();
            track_group(pid, false);
            return Err(e);
        }
        let inserted = self.slab.insert(child);
        debug_assert_eq!(inserted, key);
        Ok(Spawned {
            key: ChildKey(key),
            pid: pid as u32,
        })
    }
}

impl Children {
    /// Makes a new child's pipes non-blocking and registers them.
    fn watch(&self, key: usize, child: &mut Child) -> io::Result<()> {
        for slot in 0..2 {
            if let Some(pipe) = &mut child.outputs[slot] {
                super::stdio::set_nonblocking(pipe.file.as_raw_fd())?;
                self.registry.register(
                    &mut SourceFd(&pipe.file.as_raw_fd()),
                    self.token(key, slot),
                    Interest::READABLE,
                )?;
                // Output may have arrived before registration: look once.
                pipe.ready = true;
            }
        }
        if let Some(stdin) = &child.stdin {
            super::stdio::set_nonblocking(stdin.as_raw_fd())?;
            self.registry.register(
                &mut SourceFd(&stdin.as_raw_fd()),
                self.token(key, 2),
                Interest::WRITABLE,
            )?;
        }
        Ok(())
    }
}

impl Host for Children {
    fn spawn(&mut self, spec: &SpawnSpec) -> io::Result<Spawned> {
        self.spawn_child(spec)
    }

    fn write_stdin(&mut self, key: ChildKey, data: &[u8]) -> io::Result<usize> {
        let child = self.slab.get_mut(key.0).ok_or(io::ErrorKind::NotFound)?;
        let stdin = child.stdin.as_mut().ok_or(io::ErrorKind::BrokenPipe)?;
        loop {
            match stdin.write(data) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                other => return other,
            }
        }
    }

    fn close_stdin(&mut self, key: ChildKey) {
        if let Some(stdin) = self.slab.get_mut(key.0).and_then(|c| c.stdin.take()) {
            let _ = self.registry.deregister(&mut SourceFd(&stdin.as_raw_fd()));
        }
    }

    fn signal_group(&mut self, key: ChildKey, signal: i32) -> io::Result<()> {
        let child = self.slab.get(key.0).ok_or(io::ErrorKind::NotFound)?;
        // SAFETY: kill has no memory effects.
        if unsafe { libc::kill(-child.pid, signal) } == 0 {
            Ok(())
        } else {
            Err(io::Error::last_os_error())
        }
    }

    fn release(&mut self, key: ChildKey) {
        if !self.slab.contains(key.0) {
            return;
        }
        let mut child = self.slab.remove(key.0);
        for pipe in child.outputs.iter().flatten() {
            let _ = self
                .registry
                .deregister(&mut SourceFd(&pipe.file.as_raw_fd()));
        }
        if let Some(stdin) = &child.stdin {
            let _ = self.registry.deregister(&mut SourceFd(&stdin.as_raw_fd()));
        }
        if !child.reaped {
            // Released while running: do not leave it behind.
            // SAFETY: kill has no memory effects.
            unsafe { libc::kill(-child.pid, libc::SIGKILL) };
            let _ = child.process.try_wait();
        }
        track_group(child.pid, false);
    }

    fn stats(&self) -> Map<String, Value> {
        let (written, dropped_lines, dropped_bytes) = super::stderr::counters();
        let mut map = Map::new();
        map.insert("stderr_lines_written".into(), json!(written));
        map.insert("stderr_lines_dropped".into(), json!(dropped_lines));
        map.insert("stderr_bytes_dropped".into(), json!(dropped_bytes));
        map.insert("children_alive".into(), json!(self.alive()));
        map.insert("children_spawned".into(), json!(self.spawned_total));
        map.insert("children_reaped".into(), json!(self.reaped_total));
        map
    }
}

/// A close-on-exec pipe: (read end, write end).
fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: pipe2 writes two fds into the array on success.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: both fds were just created and are owned by nobody else.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}
