//! A cgroup v2 of its own for each command with `memory_bytes` or
//! `processes` limits, where the gateway's cgroup is delegated to it: then
//! the limits count the command's whole tree (rlimits count each process
//! separately), and an OOM kill is reported.
//!
//! Delegated means: a cgroup v2 hierarchy is mounted; the gateway's own
//! cgroup offers the `memory` and `pids` controllers and is writable by the
//! gateway; and the gateway is alone in it. The kernel lets a non-root
//! cgroup hold processes or enable controllers for its children, not both,
//! so the first command that needs a cgroup moves the gateway into a leaf
//! `gateway` of its cgroup, enables `+memory +pids` for the children, and
//! makes `cmd-<n>` beside it for each command (`systemd-run --user --scope
//! -p Delegate=yes tui-gateway` sets up such a cgroup). Anything less and
//! the gateway says why in `gateway.info` and uses rlimits alone.
//!
//! The child moves itself in before `exec` by writing `0` to its cgroup's
//! `cgroup.procs` through an fd opened here, so nothing it starts escapes
//! the limits.

use std::fs;
use std::io::{self, Write};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};

/// The gateway's cgroup, found delegated.
#[derive(Debug)]
pub struct Cgroups {
    dir: PathBuf,
    /// The gateway moved into its leaf and enabled the controllers.
    prepared: bool,
    next: u64,
}

/// One command's cgroup.
#[derive(Debug)]
pub struct CommandCgroup {
    path: PathBuf,
    procs: Option<OwnedFd>,
}

/// The mount point of the cgroup v2 hierarchy, from `/proc/self/mountinfo`.
pub fn cgroup2_mount(mountinfo: &str) -> Option<PathBuf> {
    mountinfo.lines().find_map(|line| {
        // "id parent maj:min root mountpoint options... - fstype source ..."
        let (fields, rest) = line.split_once(" - ")?;
        let fstype = rest.split_whitespace().next()?;
        let mountpoint = fields.split_whitespace().nth(4)?;
        (fstype == "cgroup2").then(|| PathBuf::from(mountpoint))
    })
}

/// The process's cgroup v2 path, from `/proc/self/cgroup` (its `0::` line).
pub fn own_cgroup(cgroup: &str) -> Option<&str> {
    cgroup.lines().find_map(|l| l.strip_prefix("0::"))
}

impl Cgroups {
    /// The gateway's cgroup if it is delegated (see the module docs), or
    /// why not. Reads only: nothing changes until a command needs it.
    pub fn detect() -> Result<Cgroups, String> {
        let mountinfo = fs::read_to_string("/proc/self/mountinfo")
            .map_err(|e| format!("cannot read /proc/self/mountinfo: {e}"))?;
        let mount = cgroup2_mount(&mountinfo).ok_or("no cgroup v2 hierarchy is mounted")?;
        let cgroup = fs::read_to_string("/proc/self/cgroup")
            .map_err(|e| format!("cannot read /proc/self/cgroup: {e}"))?;
        let own = own_cgroup(&cgroup).ok_or("the gateway has no cgroup v2 path")?;
        let dir = mount.join(own.trim().trim_start_matches('/'));
        Cgroups::at(dir, std::process::id())
    }

    /// The cgroup directory `dir` of process `pid`, if delegated.
    pub fn at(dir: PathBuf, pid: u32) -> Result<Cgroups, String> {
        let shown = dir.display().to_string();
        let controllers = fs::read_to_string(dir.join("cgroup.controllers"))
            .map_err(|e| format!("cannot read {shown}/cgroup.controllers: {e}"))?;
        let offered: Vec<&str> = controllers.split_whitespace().collect();
        if !offered.contains(&"memory") || !offered.contains(&"pids") {
            return Err(format!(
                "the gateway's cgroup v2 ({shown}) offers [{}], not memory and pids (a cgroup v1 hierarchy may hold them)",
                offered.join(" ")
            ));
        }
        if !writable(&dir) {
            return Err(format!(
                "the gateway's cgroup v2 ({shown}) is not delegated to it (not writable)"
            ));
        }
        let procs = fs::read_to_string(dir.join("cgroup.procs"))
            .map_err(|e| format!("cannot read {shown}/cgroup.procs: {e}"))?;
        let others = procs
            .split_whitespace()
            .filter(|p| *p != pid.to_string())
            .count();
        if others > 0 {
            return Err(format!(
                "the gateway is not alone in its cgroup v2 ({shown}: {others} other process(es)), so it cannot enable controllers for its commands"
            ));
        }
        Ok(Cgroups {
            dir,
            prepared: false,
            next: 0,
        })
    }

    /// Where the commands' cgroups go.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Moves process `pid` into the leaf `gateway` and enables the memory
    /// and pids controllers for the cgroup's children (once).
    fn prepare(&mut self, pid: u32) -> io::Result<()> {
        if self.prepared {
            return Ok(());
        }
        let leaf = self.dir.join("gateway");
        create_dir(&leaf)?;
        write_file(&leaf.join("cgroup.procs"), pid.to_string().as_bytes())?;
        write_file(&self.dir.join("cgroup.subtree_control"), b"+memory +pids")?;
        self.prepared = true;
        Ok(())
    }

    /// A cgroup for one command with these limits (`None`: not limited
    /// there), made ready for its child to join ([`CommandCgroup::procs_fd`]).
    pub fn create(
        &mut self,
        memory_bytes: Option<u64>,
        processes: Option<u64>,
    ) -> io::Result<CommandCgroup> {
        self.prepare(std::process::id())?;
        self.next += 1;
        let path = self.dir.join(format!("cmd-{}", self.next));
        create_dir(&path)?;
        let made = (|| {
            if let Some(bytes) = memory_bytes {
                write_file(&path.join("memory.max"), bytes.to_string().as_bytes())?;
                // No swapping past the limit instead of being held to it.
                let _swap_is_optional = write_file(&path.join("memory.swap.max"), b"0");
            }
            if let Some(n) = processes {
                write_file(&path.join("pids.max"), n.to_string().as_bytes())?;
            }
            let procs = fs::OpenOptions::new()
                .write(true)
                .open(path.join("cgroup.procs"))?;
            Ok(OwnedFd::from(procs))
        })();
        match made {
            Ok(procs) => Ok(CommandCgroup {
                path,
                procs: Some(procs),
            }),
            Err(e) => {
                let _gone_or_busy = fs::remove_dir(&path);
                Err(e)
            }
        }
    }
}

impl CommandCgroup {
    /// The fd the child writes `0` to, before `exec`, to join.
    pub fn procs_fd(&self) -> Option<RawFd> {
        self.procs.as_ref().map(AsRawFd::as_raw_fd)
    }

    /// The child was spawned: the parent's copy of the fd goes.
    pub fn spawned(&mut self) {
        self.procs = None;
    }

    /// True when the kernel's OOM killer killed a process of the cgroup
    /// (`memory.events`: `oom_kill`).
    pub fn oom_killed(&self) -> bool {
        fs::read_to_string(self.path.join("memory.events"))
            .map(|events| oom_kills(&events) > 0)
            .unwrap_or(false)
    }

    /// Removes the cgroup; fails (`EBUSY`) while a process is left in it.
    pub fn remove(&self) -> io::Result<()> {
        fs::remove_dir(&self.path)
    }

    /// Its directory.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// The `oom_kill` count of a `memory.events` file.
pub fn oom_kills(events: &str) -> u64 {
    events
        .lines()
        .find_map(|l| l.strip_prefix("oom_kill "))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(0)
}

/// Runs in the child between `fork` and `exec`: joins the cgroup whose
/// `cgroup.procs` is open as `fd`.
pub fn join(fd: RawFd) -> io::Result<()> {
    // SAFETY: write reads two bytes of a static; it is async-signal-safe.
    if unsafe { libc::write(fd, b"0\n".as_ptr().cast(), 2) } != 2 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

fn writable(dir: &Path) -> bool {
    use std::os::unix::ffi::OsStrExt;
    let Ok(path) = std::ffi::CString::new(dir.as_os_str().as_bytes()) else {
        return false;
    };
    // SAFETY: access reads the NUL-terminated path.
    unsafe { libc::access(path.as_ptr(), libc::W_OK) == 0 }
}

fn create_dir(path: &Path) -> io::Result<()> {
    match fs::create_dir(path) {
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
        other => other,
    }
}

/// Writes `bytes` to an existing file in one `write`, as cgroup files want.
fn write_file(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut file = fs::OpenOptions::new().write(true).open(path)?;
    file.write_all(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cgroup2_mount_and_own_path_are_read_from_proc() {
        let mountinfo = "25 30 0:22 / /sys/fs/cgroup/memory rw,relatime shared:9 - cgroup cgroup rw,memory\n\
                         35 24 0:30 / /sys/fs/cgroup/unified rw,relatime shared:10 - cgroup2 cgroup2 rw\n";
        assert_eq!(
            cgroup2_mount(mountinfo),
            Some(PathBuf::from("/sys/fs/cgroup/unified"))
        );
        assert_eq!(cgroup2_mount("1 2 0:1 / / rw - ext4 /dev/sda rw\n"), None);
        let cgroup = "4:memory:/process_api/x\n0::/user.slice/app.scope\n";
        assert_eq!(own_cgroup(cgroup), Some("/user.slice/app.scope"));
        assert_eq!(own_cgroup("4:memory:/x\n"), None);
        assert_eq!(oom_kills("low 0\nhigh 0\nmax 3\noom 2\noom_kill 1\n"), 1);
        assert_eq!(oom_kills("oom_kill 0\n"), 0);
    }

    /// The files a delegated cgroup v2 directory has, as plain files.
    fn fake_cgroup(controllers: &str, procs: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "tui-gateway-cgroup-test-{}-{}",
            std::process::id(),
            controllers.len() + procs.len() * 7
        ));
        let _fresh = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        for (name, text) in [
            ("cgroup.controllers", controllers),
            ("cgroup.procs", procs),
            ("cgroup.subtree_control", ""),
        ] {
            fs::write(dir.join(name), text).unwrap();
        }
        dir
    }

    #[test]
    fn a_delegated_cgroup_gets_a_leaf_for_the_gateway_and_one_per_command() {
        let dir = fake_cgroup("cpu memory pids\n", "4242\n");
        let mut cgroups = Cgroups::at(dir.clone(), 4242).expect("delegated");
        // A real cgroupfs makes these files with the directory.
        let made_by_kernel = |d: &Path, files: &[&str]| {
            fs::create_dir_all(d).unwrap();
            for f in files {
                fs::write(d.join(f), "").unwrap();
            }
        };
        made_by_kernel(&dir.join("gateway"), &["cgroup.procs"]);
        made_by_kernel(
            &dir.join("cmd-1"),
            &["cgroup.procs", "memory.max", "pids.max"],
        );
        let mut cmd = cgroups.create(Some(256 << 20), Some(32)).expect("made");
        let read = |p: PathBuf| fs::read_to_string(p).unwrap();
        assert_eq!(read(dir.join("cgroup.subtree_control")), "+memory +pids");
        assert_eq!(
            read(dir.join("gateway/cgroup.procs")),
            std::process::id().to_string()
        );
        assert_eq!(read(dir.join("cmd-1/memory.max")), "268435456");
        assert_eq!(read(dir.join("cmd-1/pids.max")), "32");
        let fd = cmd.procs_fd().expect("open for the child");
        join(fd).expect("the child writes 0");
        assert_eq!(read(dir.join("cmd-1/cgroup.procs")), "0\n");
        cmd.spawned();
        assert_eq!(cmd.procs_fd(), None);
        assert!(!cmd.oom_killed(), "no memory.events: no OOM kill");
        fs::write(dir.join("cmd-1/memory.events"), "oom 1\noom_kill 1\n").unwrap();
        assert!(cmd.oom_killed());
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn an_undelegated_cgroup_says_why() {
        let dir = fake_cgroup("cpu io\n", "1\n");
        let why = Cgroups::at(dir.clone(), 1).unwrap_err();
        assert!(
            why.contains("offers [cpu io], not memory and pids"),
            "{why}"
        );
        fs::remove_dir_all(&dir).unwrap();
        let dir = fake_cgroup("memory pids\n", "1\n77\n");
        let why = Cgroups::at(dir.clone(), 1).unwrap_err();
        assert!(why.contains("not alone"), "{why}");
        fs::remove_dir_all(&dir).unwrap();
        let why = Cgroups::at(PathBuf::from("/nonexistent/cgroup"), 1).unwrap_err();
        assert!(why.contains("cannot read"), "{why}");
    }

    #[test]
    fn this_machine_is_described() {
        // Whatever the machine has, detection answers without changing it.
        match Cgroups::detect() {
            Ok(c) => eprintln!("delegated cgroup v2 at {}", c.dir().display()),
            Err(why) => {
                eprintln!("no cgroup for commands here: {why}");
                assert!(!why.is_empty());
            }
        }
    }
}
