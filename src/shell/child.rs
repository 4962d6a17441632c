//! Child processes: spawned on non-blocking pipes or a pseudo-terminal, read
//! under backpressure, reaped by one `waitpid(-1)` loop, and signalled only
//! when they are provably the gateway's.
//!
//! [`Children`] is the shell's [`Host`]: services ask it to spawn, write,
//! signal, resize and release; the loop asks it to read ready outputs and
//! reap. Every output registers with the loop's `Poll` under a token derived
//! from the child's slab key and a slot; a PTY master is one fd registered
//! for reading and writing, and readiness comes back whole.
//!
//! The gateway is a child subreaper (`sys::reaper`): whatever a child starts
//! and abandons is re-parented to the gateway, reaped here (counted as an
//! adopted orphan, never mistaken for a tracked child) and, at exit, found
//! by walking the gateway's descendants (`sys::tree`) and killed, whatever
//! group or session it moved to. A tracked child's group is signalled by its
//! id only while the leader is unreaped (so the id cannot have been reused);
//! afterwards the group's members are found among the gateway's descendants.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::sync::Mutex;

use mio::event::Event;
use mio::unix::SourceFd;
use mio::{Interest, Registry, Token};
use serde_json::{json, Map, Value};
use slab::Slab;

use super::launch::{self, Wiring};
use super::sys::cgroup::{Cgroups, CommandCgroup};
use super::sys::child_setup::Setup;
use super::sys::spawn::{Plan, Spawner};
use super::sys::{fd, pidfd, process, pty, reaper, tree};
use crate::engine::host::{
    ChildEvent, ChildKey, ExitStatus, Host, OutputStream, PtySize, ResourceLimits, SignalScope,
    SpawnSpec, Spawned, Usage,
};

/// Reads per output per loop tick, so one chatty child cannot starve the rest.
const READS_PER_TICK: usize = 4;
/// Token slots per child: stdout (or the PTY master), stderr, stdin.
const SLOTS: usize = 3;

/// Process groups alive right now, for the panic and out-of-memory paths.
static LIVE_GROUPS: Mutex<Vec<i32>> = Mutex::new(Vec::new());

/// Sends SIGKILL to every process group the gateway started whose leader is
/// not reaped yet. Called from the panic hook and the out-of-memory path;
/// never blocks, never allocates.
pub(crate) fn kill_all_groups_now() {
    if let Ok(groups) = LIVE_GROUPS.try_lock() {
        for &pgid in groups.iter() {
            // Ours: the leader of each listed group is unreaped.
            let _already_gone = process::kill_group(pgid, libc::SIGKILL);
        }
    }
}

/// Sends SIGKILL to every descendant of the gateway (the panic path, where
/// allocating is still allowed).
pub(crate) fn kill_all_descendants_now() {
    kill_descendants(libc::SIGKILL);
}

fn kill_descendants(signal: i32) {
    for pid in tree::descendants(std::process::id() as libc::pid_t) {
        // Ours: found below the gateway in this walk.
        let _already_gone = process::kill(pid, signal);
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

/// One output of one child.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PipeRef {
    key: usize,
    slot: usize,
}

/// This tick's reads: rounds over the outputs that were ready at its start.
#[derive(Debug)]
pub(crate) struct ReadRounds {
    pipes: Vec<PipeRef>,
    round: usize,
    index: usize,
    read_this_round: bool,
}

impl ReadRounds {
    /// The next output to read once, or `None` when every output has had its
    /// reads for this tick or is drained.
    pub(crate) fn next_pipe(&mut self, children: &Children) -> Option<PipeRef> {
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

/// One output of a child: a pipe's read end or a PTY master.
#[derive(Debug)]
pub(super) struct Output {
    pub(super) file: File,
    pub(super) stream: OutputStream,
    /// Readiness seen and not yet drained to `WouldBlock`.
    pub(super) ready: bool,
}

/// Where the child's stdin goes.
#[derive(Debug)]
pub(super) enum Stdin {
    /// Closed, `/dev/null`, or never had one.
    None,
    /// A pipe.
    Pipe(File),
    /// The PTY master (output slot 0), until its end of output.
    Pty,
}

#[derive(Debug)]
struct Child {
    pid: i32,
    /// Names this process for as long as it is held; `None` on kernels
    /// without pidfds (then `kill`, safe until the pid is reaped).
    pidfd: Option<OwnedFd>,
    /// `[stdout or PTY master, stderr]`.
    outputs: [Option<Output>; 2],
    stdin: Stdin,
    pty: Option<PtySize>,
    /// A PTY master whose output ended, kept open until the child is
    /// released: closing a master hangs the terminal up, and the kernel would
    /// SIGHUP a session leader that closed its fds and has not exited yet.
    ended_master: Option<File>,
    reaped: bool,
    /// Descendants found below it by `Tree` signals, so that they are still
    /// its tree after it is reaped (its orphans join the gateway's children).
    known: Vec<i32>,
    /// Its own cgroup, for memory and process limits where delegated.
    cgroup: Option<CommandCgroup>,
}

/// The children of one gateway.
#[derive(Debug)]
pub(crate) struct Children {
    registry: Registry,
    first_token: usize,
    slab: Slab<Child>,
    /// Every pid not reaped yet that the gateway spawned: its slab key, or
    /// `None` once the service released it early.
    by_pid: HashMap<i32, Option<usize>>,
    /// Where the next tick's reads start, so no child is always first.
    rotation: usize,
    /// The gateway adopts orphans (`PR_SET_CHILD_SUBREAPER` worked).
    subreaper: bool,
    /// `/proc` lists children, so descendants can be walked cheaply.
    walkable: bool,
    spawned_total: u64,
    reaped_total: u64,
    orphans_reaped: u64,
    /// The delegated cgroup v2 that commands with limits get a cgroup in,
    /// or why there is none.
    cgroups: Result<Cgroups, String>,
    /// Command cgroups a straggler kept busy at release: removed later.
    stale_cgroups: Vec<CommandCgroup>,
    /// `--trace` is on: its counters go into `gateway.stats`.
    trace: bool,
    /// Starts children (and holds the stack they run on until they exec).
    spawner: Spawner,
    /// `/dev/null`, opened once for every child's null stdin or stderr.
    dev_null: Option<OwnedFd>,
    /// The gateway's pid, read once (a child checks it is still its parent).
    gateway_pid: libc::pid_t,
}

impl Children {
    /// Children whose outputs register with `registry` under tokens from
    /// `first_token` up. Makes the gateway a child subreaper.
    pub(crate) fn new(registry: Registry, first_token: usize) -> Children {
        let subreaper = match reaper::become_subreaper() {
            Ok(()) => true,
            Err(e) => {
                log::warn!("cannot become a child subreaper ({e}): orphans escape to init");
                false
            }
        };
        Children {
            registry,
            first_token,
            slab: Slab::new(),
            by_pid: HashMap::new(),
            rotation: 0,
            subreaper,
            walkable: tree::children_files_exist(),
            spawned_total: 0,
            reaped_total: 0,
            orphans_reaped: 0,
            cgroups: Cgroups::detect(),
            stale_cgroups: Vec::new(),
            trace: false,
            spawner: Spawner::default(),
            dev_null: None,
            gateway_pid: std::process::id() as libc::pid_t,
        }
    }

    /// `/dev/null` (opened the first time a child needs it).
    fn dev_null(&mut self) -> io::Result<RawFd> {
        if let Some(fd) = &self.dev_null {
            return Ok(fd.as_raw_fd());
        }
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open("/dev/null")?;
        let fd = fd::above_stdio(OwnedFd::from(file))?;
        Ok(self.dev_null.insert(fd).as_raw_fd())
    }

    fn token(&self, key: usize, slot: usize) -> Token {
        Token(self.first_token + key * SLOTS + slot)
    }

    /// Records readiness for a token this set owns. Returns false if the
    /// token is not a child's.
    pub(crate) fn on_readiness(
        &mut self,
        event: &Event,
        events: &mut Vec<(ChildKey, ChildEvent)>,
    ) -> bool {
        let Some(index) = event.token().0.checked_sub(self.first_token) else {
            return false;
        };
        let (key, slot) = (index / SLOTS, index % SLOTS);
        let Some(child) = self.slab.get_mut(key) else {
            return true;
        };
        let readable = event.is_readable() || event.is_read_closed() || event.is_error();
        let writable = event.is_writable() || event.is_write_closed();
        match slot {
            0 | 1 => {
                if let Some(output) = child.outputs[slot].as_mut() {
                    output.ready |= readable;
                }
                // A PTY master is also the child's stdin.
                if slot == 0 && writable && matches!(child.stdin, Stdin::Pty) {
                    events.push((ChildKey(key), ChildEvent::StdinWritable));
                }
            }
            _ => {
                if matches!(child.stdin, Stdin::Pipe(_)) {
                    events.push((ChildKey(key), ChildEvent::StdinWritable));
                }
            }
        }
        true
    }

    /// True if some output has unread readiness (the loop must not sleep).
    pub(crate) fn has_ready_output(&self) -> bool {
        self.slab
            .iter()
            .any(|(_, c)| c.outputs.iter().flatten().any(|p| p.ready))
    }

    /// The ready outputs for this tick's reads, in a rotating order so no
    /// child is always first. Each output gets up to [`READS_PER_TICK`]
    /// reads, one per round, so one chatty child cannot starve the rest.
    pub(crate) fn read_rounds(&mut self) -> ReadRounds {
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

    /// One read of at most `buf.len()` bytes from a ready output, appending
    /// an output or end-of-output event. `WouldBlock` clears the readiness;
    /// `EIO` from a PTY master is the normal end of its output (the last
    /// process holding the terminal closed it).
    pub(crate) fn read_pipe(
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
                let bytes = buf[..n].to_vec();
                events.push((ChildKey(pipe.key), ChildEvent::Output(stream, bytes)));
                false
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                out.ready = false;
                false
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => false,
            Err(e) if stream == OutputStream::Pty && e.raw_os_error() == Some(libc::EIO) => true,
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
                if out.stream == OutputStream::Pty {
                    child.ended_master = Some(out.file);
                }
            }
            if matches!(child.stdin, Stdin::Pty) {
                child.stdin = Stdin::None;
            }
            events.push((ChildKey(pipe.key), ChildEvent::Eof(stream)));
        }
    }

    /// Reaps every process that has exited (several exits can share one
    /// SIGCHLD): tracked children become exit events, adopted orphans are
    /// only counted.
    pub(crate) fn reap(&mut self, events: &mut Vec<(ChildKey, ChildEvent)>) {
        loop {
            let (pid, status, usage) = match reaper::reap_one() {
                Ok(Some(r)) => (r.pid, r.status, r.usage),
                Ok(None) => return,
                Err(e) => {
                    log::warn!("waitpid failed: {e}");
                    return;
                }
            };
            let status = match status {
                reaper::Status::Code(c) => ExitStatus::Code(c),
                reaper::Status::Signal(s) => ExitStatus::Signal(s),
            };
            match self.by_pid.remove(&pid) {
                Some(Some(key)) => {
                    let mut oom_killed = false;
                    if let Some(child) = self.slab.get_mut(key) {
                        child.reaped = true;
                        child.pidfd = None;
                        oom_killed = child.cgroup.as_ref().is_some_and(CommandCgroup::oom_killed);
                    }
                    self.reaped_total += 1;
                    track_group(pid, false);
                    let usage = Usage {
                        max_rss_bytes: usage.max_rss_bytes,
                        user_ms: usage.user_ms,
                        system_ms: usage.system_ms,
                        oom_killed,
                    };
                    events.push((ChildKey(key), ChildEvent::Exited(status, Some(usage))));
                }
                // Released early by its service: nobody waits for it.
                Some(None) => {
                    self.reaped_total += 1;
                    track_group(pid, false);
                }
                None => {
                    self.orphans_reaped += 1;
                    log::debug!("reaped adopted orphan {pid} ({status:?})");
                }
            }
        }
    }

    /// Children not reaped yet.
    pub(crate) fn alive(&self) -> usize {
        self.by_pid.len()
    }

    /// Last resort at exit: SIGKILL every descendant, tracked or adopted, in
    /// any group or session, and every group whose leader is unreaped.
    pub(crate) fn kill_all(&mut self) {
        self.signal_descendants(libc::SIGKILL);
        let mut ignored = Vec::new();
        self.reap(&mut ignored);
        for &pid in self.by_pid.keys() {
            track_group(pid, false);
        }
        // Their cgroups go with them (once their processes have exited).
        for (_, child) in self.slab.iter_mut() {
            if let Some(cgroup) = child.cgroup.take() {
                self.stale_cgroups.push(cgroup);
            }
        }
        self.remove_stale_cgroups();
        for left in &self.stale_cgroups {
            log::warn!("cgroup {} is still busy at exit", left.path().display());
        }
    }

    fn spawn_child(&mut self, spec: &SpawnSpec) -> io::Result<Spawned> {
        let argv: Vec<&[u8]> = spec.argv.iter().map(|a| a.as_bytes()).collect();
        if argv.is_empty() {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "empty argv"));
        }
        let env = launch::child_env(spec);
        let (limits, limit_count) = launch::rlimits(&spec.limits);
        let mut cgroup = self.command_cgroup(&spec.limits)?;
        let setup = Setup {
            gateway: self.gateway_pid,
            cgroup: cgroup.as_ref().and_then(CommandCgroup::procs_fd),
            limits,
            limit_count,
        };
        let Wiring {
            outputs,
            stdin,
            stdio,
            group,
            held,
        } = launch::wire(spec, || self.dev_null())?;
        let path = env
            .iter()
            .rev()
            .find_map(|entry| entry.strip_prefix(b"PATH="))
            .map(<[u8]>::to_vec);
        let cwd = spec.cwd.as_ref().map(|dir| dir.as_os_str().as_bytes());
        let mut plan = Plan::new(&argv, env, path.as_deref(), cwd, stdio, group, setup)?;
        let spawned = self.spawner.spawn(&mut plan);
        if let Some(cgroup) = &mut cgroup {
            cgroup.spawned();
        }
        let pid = match spawned {
            Ok(pid) => pid,
            Err(e) => {
                if let Some(cgroup) = &cgroup {
                    if let Err(rm) = cgroup.remove() {
                        log::warn!("cannot remove {}: {rm}", cgroup.path().display());
                    }
                }
                return Err(e);
            }
        };
        // The child has its ends; drop ours so EOF arrives when the child
        // (and whatever inherited them) is done.
        drop(held);
        track_group(pid, true);
        self.by_pid.insert(pid, None);
        self.spawned_total += 1;

        let key = self.slab.vacant_key();
        let mut child = Child {
            pid,
            pidfd: pidfd::open(pid).ok(),
            outputs,
            stdin,
            pty: spec.pty,
            ended_master: None,
            reaped: false,
            known: Vec::new(),
            cgroup,
        };
        if let Err(e) = self.watch(key, &mut child) {
            // Never leave a child running that nobody watches; the reaper
            // collects it (its pid maps to no key).
            // Ours: the pid is unreaped.
            let _already_gone = process::kill_group(pid, libc::SIGKILL);
            return Err(e);
        }
        let inserted = self.slab.insert(child);
        debug_assert_eq!(inserted, key);
        self.by_pid.insert(pid, Some(key));
        Ok(Spawned {
            key: ChildKey(key),
            pid: pid as u32,
        })
    }

    /// Says whether `--trace` is on, for `gateway.stats`.
    pub(crate) fn report_trace(&mut self, on: bool) {
        self.trace = on;
    }

    /// A cgroup for a command limited in memory or processes, where the
    /// gateway's cgroup is delegated; `None` otherwise (rlimits alone).
    fn command_cgroup(&mut self, limits: &ResourceLimits) -> io::Result<Option<CommandCgroup>> {
        if limits.memory_bytes.is_none() && limits.processes.is_none() {
            return Ok(None);
        }
        let Ok(cgroups) = &mut self.cgroups else {
            return Ok(None);
        };
        cgroups
            .create(limits.memory_bytes, limits.processes)
            .map(Some)
            .map_err(|e| {
                io::Error::new(
                    e.kind(),
                    format!(
                        "cannot make the command's cgroup in {}: {e}",
                        cgroups.dir().display()
                    ),
                )
            })
    }

    /// Removes command cgroups that were busy when their child was released.
    fn remove_stale_cgroups(&mut self) {
        self.stale_cgroups.retain(|c| c.remove().is_err());
    }

    /// Makes a new child's fds non-blocking and registers them.
    fn watch(&self, key: usize, child: &mut Child) -> io::Result<()> {
        let pty = matches!(child.stdin, Stdin::Pty);
        for slot in 0..2 {
            if let Some(output) = &mut child.outputs[slot] {
                // Non-blocking from birth (pipe2, the PTY master).
                let interest = if pty {
                    Interest::READABLE | Interest::WRITABLE
                } else {
                    Interest::READABLE
                };
                self.registry.register(
                    &mut SourceFd(&output.file.as_raw_fd()),
                    self.token(key, slot),
                    interest,
                )?;
                // Output may have arrived before registration: look once.
                output.ready = true;
            }
        }
        if let Stdin::Pipe(stdin) = &child.stdin {
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
    fn stderr_line(&mut self, line: &[u8]) -> bool {
        super::stderr::write_bytes(line)
    }

    fn write_stdin(&mut self, key: ChildKey, data: &[u8]) -> io::Result<usize> {
        let child = self.slab.get_mut(key.0).ok_or(io::ErrorKind::NotFound)?;
        let file = match &mut child.stdin {
            Stdin::Pipe(file) => file,
            Stdin::Pty => match &mut child.outputs[0] {
                Some(master) => &mut master.file,
                None => return Err(io::ErrorKind::BrokenPipe.into()),
            },
            Stdin::None => return Err(io::ErrorKind::BrokenPipe.into()),
        };
        loop {
            match file.write(data) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                // A PTY whose session is gone writes EIO: stdin is gone.
                Err(e) if e.raw_os_error() == Some(libc::EIO) => {
                    return Err(io::ErrorKind::BrokenPipe.into())
                }
                other => return other,
            }
        }
    }

    /// Pipes: closes the write end. A PTY cannot be half-closed: the
    /// terminal's EOF character (Ctrl+D) is written instead, which a program
    /// reading at the start of a line sees as end of input.
    fn close_stdin(&mut self, key: ChildKey) {
        let Some(child) = self.slab.get_mut(key.0) else {
            return;
        };
        match std::mem::replace(&mut child.stdin, Stdin::None) {
            Stdin::Pipe(stdin) => {
                let _ = self.registry.deregister(&mut SourceFd(&stdin.as_raw_fd()));
            }
            Stdin::Pty => {
                if let Some(master) = &mut child.outputs[0] {
                    let eof = pty::eof_char(master.file.as_raw_fd());
                    let _ = master.file.write(&[eof]);
                }
            }
            Stdin::None => {}
        }
    }

    fn signal(&mut self, key: ChildKey, signal: i32, scope: SignalScope) -> io::Result<()> {
        let child = self.slab.get_mut(key.0).ok_or(io::ErrorKind::NotFound)?;
        if !child.reaped {
            return match scope {
                // While the leader is unreaped its pid (the group's id) cannot
                // have been reused: the group is ours.
                SignalScope::Group => process::kill_group(child.pid, signal),
                SignalScope::Tree => {
                    let below = tree::descendants(child.pid);
                    for &pid in &below {
                        if !child.known.contains(&pid) {
                            child.known.push(pid);
                        }
                    }
                    let leader = match &child.pidfd {
                        Some(fd) => pidfd::send_signal(fd, signal),
                        // As above: an unreaped pid is ours.
                        None => process::kill(child.pid, signal),
                    };
                    for pid in below {
                        // Ours: found below the leader in this walk.
                        let _already_gone = process::kill(pid, signal);
                    }
                    leader
                }
            };
        }
        // The leader is reaped: its id may belong to a stranger by now. What
        // is left of its group, and of the tree found below it while it
        // lived (its children were re-parented to the gateway), is found
        // among the gateway's own descendants.
        let (pgid, known) = (child.pid, child.known.clone());
        let members: Vec<i32> = tree::descendants(std::process::id() as libc::pid_t)
            .into_iter()
            .filter(|&pid| tree::pgid_of(pid) == Some(pgid) || known.contains(&pid))
            .collect();
        if members.is_empty() {
            return Err(io::Error::from_raw_os_error(libc::ESRCH));
        }
        for pid in members {
            // Ours: found below the gateway.
            let _already_gone = process::kill(pid, signal);
        }
        Ok(())
    }

    fn signal_descendants(&mut self, signal: i32) {
        if self.walkable || self.subreaper {
            kill_descendants(signal);
        }
        // Without a walk (or as a complement), every group whose leader is
        // unreaped, which is provably ours.
        for &pid in self.by_pid.keys() {
            // Ours: the leader is unreaped.
            let _already_gone = process::kill_group(pid, signal);
        }
    }

    fn interrupt(&mut self, key: ChildKey) -> io::Result<()> {
        let child = self.slab.get_mut(key.0).ok_or(io::ErrorKind::NotFound)?;
        if child.pty.is_none() {
            return Err(io::ErrorKind::Unsupported.into());
        }
        let master = child.outputs[0].as_mut().ok_or(io::ErrorKind::BrokenPipe)?;
        let intr = pty::intr_char(master.file.as_raw_fd());
        match master.file.write(&[intr])? {
            1 => Ok(()),
            _ => Err(io::ErrorKind::WouldBlock.into()),
        }
    }

    fn resize(&mut self, key: ChildKey, size: PtySize) -> io::Result<()> {
        let child = self.slab.get_mut(key.0).ok_or(io::ErrorKind::NotFound)?;
        if child.pty.is_none() {
            return Err(io::ErrorKind::Unsupported.into());
        }
        let master = child.outputs[0].as_ref().ok_or(io::ErrorKind::BrokenPipe)?;
        pty::resize(master.file.as_raw_fd(), size)?;
        child.pty = Some(size);
        Ok(())
    }

    fn release(&mut self, key: ChildKey) {
        if !self.slab.contains(key.0) {
            return;
        }
        let child = self.slab.remove(key.0);
        for output in child.outputs.iter().flatten() {
            let _ = self
                .registry
                .deregister(&mut SourceFd(&output.file.as_raw_fd()));
        }
        if let Stdin::Pipe(stdin) = &child.stdin {
            let _ = self.registry.deregister(&mut SourceFd(&stdin.as_raw_fd()));
        }
        if !child.reaped {
            // Released while running: do not leave it behind. The reaper
            // collects it later; its pid no longer maps to a key.
            // Ours: the pid is unreaped.
            let _already_gone = process::kill_group(child.pid, libc::SIGKILL);
            self.by_pid.insert(child.pid, None);
        }
        if let Some(cgroup) = child.cgroup {
            // Busy while a straggler of the tree lives: removed later.
            self.stale_cgroups.push(cgroup);
        }
        self.remove_stale_cgroups();
    }

    fn stats(&self) -> Map<String, Value> {
        let (written, dropped_lines, dropped_bytes) = super::stderr::counters();
        let ptys = self.slab.iter().filter(|(_, c)| c.pty.is_some()).count();
        let mut map = Map::new();
        map.insert("stderr_lines_written".into(), json!(written));
        map.insert("stderr_lines_dropped".into(), json!(dropped_lines));
        map.insert("stderr_bytes_dropped".into(), json!(dropped_bytes));
        map.insert("children_alive".into(), json!(self.alive()));
        map.insert("children_spawned".into(), json!(self.spawned_total));
        map.insert("children_reaped".into(), json!(self.reaped_total));
        map.insert("orphans_reaped".into(), json!(self.orphans_reaped));
        map.insert("ptys_open".into(), json!(ptys));
        if self.trace {
            let (written, dropped, bytes) = super::trace::counters();
            map.insert(
                "trace".into(),
                json!({"records_written": written, "records_dropped": dropped, "bytes_written": bytes}),
            );
        }
        map
    }

    fn info(&self) -> Map<String, Value> {
        let mut map = Map::new();
        let (holds, how) = match (self.subreaper, self.walkable) {
            (true, true) => ("subreaper", "every descendant, in any group or session"),
            (true, false) => (
                "subreaper",
                "every descendant, found by scanning /proc (no children lists)",
            ),
            (false, _) => (
                "process groups",
                "each child's process group only: no subreaper here, so a descendant that leaves its group escapes",
            ),
        };
        map.insert(
            "process_tree".into(),
            json!({"held_by": holds, "killed_at_exit": how}),
        );
        let limits = match &self.cgroups {
            Ok(cgroups) => json!({
                "mechanism": "cgroup+rlimit",
                "scope": "memory_bytes and processes for the command's whole tree (its own cgroup v2), the rest per process (setrlimit before exec)",
                "cgroup": cgroups.dir().to_string_lossy(),
            }),
            Err(why) => json!({
                "mechanism": "rlimit",
                "scope": "each process of a command's tree, separately (setrlimit before exec)",
                "cgroup": format!("not used: {why}"),
            }),
        };
        map.insert("process_limits".into(), limits);
        map
    }
}
