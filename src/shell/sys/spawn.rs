//! Starting a command with one `clone(CLONE_VM | CLONE_VFORK)`, as
//! `posix_spawn` does, instead of std's `fork` (which a `pre_exec` hook
//! forces, and which copies the gateway's page tables).
//!
//! The child shares the gateway's memory and the gateway is suspended
//! until the child execs or exits, so the child runs only async-signal-safe
//! syscalls on data the parent prepared ([`Plan`]), on a stack of its own
//! ([`Spawner`]), and allocates nothing. It reports a failure (a setup step
//! or `exec`) by storing the errno in the plan, which the parent reads
//! once `clone` returns: no socketpair, no reads.
//!
//! Signals are blocked in the parent around the `clone`, so no handler of
//! the gateway's ever runs in the child (whose stack and memory are not its
//! own); the child sets every disposition back to the default and empties
//! its mask before `exec` ([`prepare_child`]).

use std::ffi::{c_char, c_int, c_void, CStr, CString};
use std::io;
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicI32, Ordering};

use super::child_setup::{prepare_child, set_limits, take_terminal, Setup};

/// How big the child's stack is: it calls a few syscall wrappers only.
const STACK_BYTES: usize = 64 * 1024;

/// What the child does with its process group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Group {
    /// A new process group, led by the child (commands on pipes).
    New,
    /// A new session with fd 0 as its controlling terminal (commands on a
    /// pseudo-terminal).
    Terminal,
}

/// Everything the child needs, prepared in the parent.
#[derive(Debug)]
pub struct Plan {
    /// Where to look for the program, in order, as `execvp` would: the
    /// program itself when it names a path, else each `PATH` entry joined
    /// with it.
    candidates: Vec<CString>,
    /// `argv`, NUL-terminated C strings and a null pointer.
    argv: Vec<*const c_char>,
    /// `/bin/sh`, a candidate (filled in by the child), then `argv[1..]`:
    /// what a program without a `#!` line runs as (`ENOEXEC`), as `execvp`
    /// does.
    sh_argv: Vec<*const c_char>,
    envp: Vec<*const c_char>,
    /// Owns what `argv`, `sh_argv` and `envp` point into.
    _strings: Vec<CString>,
    cwd: Option<CString>,
    /// The fds to become the child's 0, 1 and 2 (each 3 or above), and
    /// whether each should be made blocking there.
    stdio: [(RawFd, bool); 3],
    group: Group,
    setup: Setup,
    /// The child's errno when it failed before or at `exec`; 0 otherwise.
    error: AtomicI32,
}

impl Plan {
    /// A plan to run `argv` (its first element the program) with exactly
    /// `env` (`NAME=value` entries), in `cwd` if given, with `stdio` as its
    /// fds 0, 1 and 2. `path` is the `PATH` to search when the program
    /// names no directory.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        argv: &[&[u8]],
        env: Vec<Vec<u8>>,
        path: Option<&[u8]>,
        cwd: Option<&[u8]>,
        stdio: [(RawFd, bool); 3],
        group: Group,
        setup: Setup,
    ) -> io::Result<Plan> {
        let c = |bytes: &[u8]| {
            CString::new(bytes).map_err(|_| {
                io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "a NUL byte in argv, env or cwd",
                )
            })
        };
        let program = *argv
            .first()
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "empty argv"))?;
        if stdio.iter().any(|&(fd, _)| fd < 3) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "a child's stdio source must be fd 3 or above",
            ));
        }
        let candidates = if program.contains(&b'/') {
            vec![c(program)?]
        } else {
            // glibc's default when PATH is unset.
            let path = path.unwrap_or(b"/bin:/usr/bin");
            let mut candidates = Vec::new();
            for dir in path.split(|&b| b == b':') {
                let mut full = Vec::with_capacity(dir.len() + 1 + program.len());
                // An empty entry is the current directory.
                full.extend_from_slice(if dir.is_empty() { b"." } else { dir });
                full.push(b'/');
                full.extend_from_slice(program);
                candidates.push(c(&full)?);
            }
            candidates
        };
        let mut strings = Vec::with_capacity(argv.len() + env.len() + 1);
        for arg in argv {
            strings.push(c(arg)?);
        }
        let args = strings.len();
        for entry in env {
            strings.push(c(&entry)?);
        }
        strings.push(c(b"/bin/sh")?);
        let pointers = |range: std::ops::Range<usize>| {
            let mut v: Vec<*const c_char> = strings[range].iter().map(|s| s.as_ptr()).collect();
            v.push(std::ptr::null());
            v
        };
        let argv_ptrs = pointers(0..args);
        let envp = pointers(args..strings.len() - 1);
        let mut sh_argv = vec![strings[strings.len() - 1].as_ptr(), std::ptr::null()];
        sh_argv.extend_from_slice(&argv_ptrs[1..]);
        Ok(Plan {
            candidates,
            argv: argv_ptrs,
            sh_argv,
            envp,
            _strings: strings,
            cwd: cwd.map(c).transpose()?,
            stdio,
            group,
            setup,
            error: AtomicI32::new(0),
        })
    }
}

/// Starts children: holds the stack they run on until they exec (reused:
/// the gateway is suspended while a child uses it).
pub struct Spawner {
    stack: Box<[u8]>,
}

impl Default for Spawner {
    fn default() -> Spawner {
        Spawner {
            stack: vec![0u8; STACK_BYTES].into_boxed_slice(),
        }
    }
}

impl std::fmt::Debug for Spawner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Spawner")
    }
}

impl Spawner {
    /// Runs `plan`: the child's pid once it has exec'd, or the error that
    /// stopped it (the child is then reaped here).
    pub fn spawn(&mut self, plan: &mut Plan) -> io::Result<libc::pid_t> {
        plan.error.store(0, Ordering::Relaxed);
        // The stack grows down from the end of the buffer, 16-byte aligned.
        let top = self.stack.as_mut_ptr_range().end as usize & !15;
        // SAFETY: sigfillset and pthread_sigmask write the locals; clone
        // runs `child` on the buffer above (not the parent's stack), with
        // the parent suspended (CLONE_VFORK) until the child execs or
        // exits, so nothing else touches the plan or the stack meanwhile;
        // `child` makes async-signal-safe calls only on the plan's
        // prepared data; the mask is restored whatever clone returned.
        let (pid, clone_error) = unsafe {
            let mut all: libc::sigset_t = std::mem::zeroed();
            let mut old: libc::sigset_t = std::mem::zeroed();
            libc::sigfillset(&mut all);
            libc::pthread_sigmask(libc::SIG_SETMASK, &all, &mut old);
            let pid = libc::clone(
                child,
                top as *mut c_void,
                libc::CLONE_VM | libc::CLONE_VFORK | libc::SIGCHLD,
                (plan as *mut Plan).cast::<c_void>(),
            );
            let clone_error = io::Error::last_os_error();
            libc::pthread_sigmask(libc::SIG_SETMASK, &old, std::ptr::null_mut());
            (pid, clone_error)
        };
        if pid < 0 {
            return Err(clone_error);
        }
        match plan.error.load(Ordering::Acquire) {
            0 => Ok(pid),
            errno => {
                // It exited without exec: collect it now, so no zombie is
                // left for a reaper that does not know the pid.
                let mut status = 0;
                // SAFETY: waitpid writes the local status.
                let _reaped = super::retry(|| unsafe { libc::waitpid(pid, &mut status, 0) });
                Err(io::Error::from_raw_os_error(errno))
            }
        }
    }
}

/// The child, between `clone` and `exec`: fds (0, 1 and 2, every other one
/// closed), group, signals, parent-death signal, cgroup, limits, directory,
/// then each candidate program in turn.
/// Stores the errno of whatever failed and exits 127.
extern "C" fn child(arg: *mut c_void) -> c_int {
    // SAFETY: `arg` is the plan the parent passed and keeps alive, suspended,
    // until this process execs or exits.
    let plan = unsafe { &mut *arg.cast::<Plan>() };
    let errno = match setup(plan) {
        Ok(()) => exec(plan),
        Err(e) => e.raw_os_error().unwrap_or(libc::EINVAL),
    };
    plan.error.store(errno.max(1), Ordering::Release);
    // SAFETY: _exit ends this process at once, running nothing of the
    // parent's (no atexit handlers, no buffers flushed).
    unsafe { libc::_exit(127) }
}

fn setup(plan: &Plan) -> io::Result<()> {
    for (target, &(fd, blocking)) in plan.stdio.iter().enumerate() {
        // SAFETY: dup2 and fcntl on fds the plan names (all 3 or above,
        // open in this process); async-signal-safe.
        unsafe {
            if libc::dup2(fd, target as c_int) < 0 {
                return Err(io::Error::last_os_error());
            }
            if blocking && libc::fcntl(target as c_int, libc::F_SETFL, 0) < 0 {
                return Err(io::Error::last_os_error());
            }
        }
    }
    match plan.group {
        // SAFETY: setpgid on this process; async-signal-safe.
        Group::New => {
            if unsafe { libc::setpgid(0, 0) } < 0 {
                return Err(io::Error::last_os_error());
            }
        }
        Group::Terminal => take_terminal()?,
    }
    prepare_child(plan.setup.gateway)?;
    if let Some(fd) = plan.setup.cgroup {
        super::cgroup::join(fd)?;
    }
    set_limits(&plan.setup.limits[..plan.setup.limit_count])?;
    if let Some(dir) = &plan.cwd {
        // SAFETY: chdir reads the NUL-terminated path; async-signal-safe.
        if unsafe { libc::chdir(dir.as_ptr()) } < 0 {
            return Err(io::Error::last_os_error());
        }
    }
    // Last (the cgroup's fd was needed until now): nothing but 0, 1 and 2
    // reaches the program, whatever else the gateway holds without
    // close-on-exec (it marks what it inherited at start, and opens its own
    // fds close-on-exec; this holds even if a library does not). Linux 5.9
    // and later; before, close-on-exec alone keeps them.
    // SAFETY: close_range closes fds of this process only (the parent's
    // table is its own: no CLONE_FILES); async-signal-safe.
    unsafe {
        libc::syscall(libc::SYS_close_range, 3u32, u32::MAX, 0u32);
    }
    Ok(())
}

/// Tries each candidate as `execvp` does: on to the next when this one is
/// missing or not a directory's entry, `EACCES` remembered for the end, a
/// program without a `#!` line (`ENOEXEC`) run by `/bin/sh`. Returns the
/// errno to report (only when nothing ran).
fn exec(plan: &mut Plan) -> c_int {
    let mut denied = false;
    let mut last = libc::ENOENT;
    for i in 0..plan.candidates.len() {
        let path: &CStr = &plan.candidates[i];
        // SAFETY: execve reads NUL-terminated strings and null-terminated
        // pointer arrays the plan owns; it returns only on failure.
        unsafe { libc::execve(path.as_ptr(), plan.argv.as_ptr(), plan.envp.as_ptr()) };
        last = io::Error::last_os_error()
            .raw_os_error()
            .unwrap_or(libc::ENOENT);
        match last {
            libc::ENOEXEC => {
                plan.sh_argv[1] = path.as_ptr();
                // SAFETY: as above, with the shell's argument array.
                unsafe { libc::execve(plan.sh_argv[0], plan.sh_argv.as_ptr(), plan.envp.as_ptr()) };
                return io::Error::last_os_error()
                    .raw_os_error()
                    .unwrap_or(libc::ENOEXEC);
            }
            libc::EACCES => denied = true,
            libc::ENOENT | libc::ENOTDIR | libc::ESTALE | libc::ENODEV | libc::ETIMEDOUT => {}
            _ => return last,
        }
    }
    if denied {
        libc::EACCES
    } else {
        last
    }
}
