//! Signals against the real binary (issue #7, tests 6 and 7): every signal
//! whose default would end the process either shuts the gateway down in
//! order, with its name in the reason, or is ignored while the gateway keeps
//! answering; no child outlives it either way; and children start with every
//! disposition at its default and nothing blocked, whatever the gateway
//! inherited.

mod util;

use std::time::{Duration, Instant};

use serde_json::json;
use util::*;

/// What the gateway's signal table says a signal does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    Shutdown,
    Ignore,
}

/// A gateway with one child (`sleep 1000`) running; returns the child's pid.
fn gateway_with_child(log: &TempFile) -> (Gateway, u32) {
    let mut gw = Gateway::builder()
        .args(["--crash-log", log.path().to_str().unwrap()])
        .spawn();
    let spawned = gw.call(
        "process.spawn",
        Some(json!({"argv": ["sleep", "1000"], "stdin": "null"})),
    );
    let pid = as_u64(&spawned["pid"]) as u32;
    (gw, pid)
}

fn check_signal(signal: libc::c_int, name: &str, expect: Expect) {
    let log = TempFile::new("signals.log");
    let (mut gw, child) = gateway_with_child(&log);
    gw.signal(signal);
    match expect {
        Expect::Ignore => {
            // Still serving after the signal was handled (and counted).
            let counted = poll_until(PATIENCE, || gw.stats()["signals"][name] == 1);
            assert!(counted, "{name} was not counted: {}", gw.stats());
            assert_eq!(gw.call("gateway.ping", None)["ok"], true);
            assert!(!process_gone(child), "{name}: the child was touched");
            gw.close_stdin();
            assert_eq!(gw.wait_code(PATIENCE), 0, "{name}: {}", gw.stderr_text());
            assert_eq!(gw.exit_reason(), "stdin EOF");
        }
        Expect::Shutdown => {
            let started = Instant::now();
            let code = gw.wait_code(PATIENCE);
            let took = started.elapsed();
            assert_eq!(code, 0, "{name}: {}", gw.stderr_text());
            assert!(took < Duration::from_secs(2), "{name}: exit took {took:?}");
            assert_eq!(gw.exit_reason(), format!("signal {name}"));
            assert_eq!(crash_log_exit_reason(&log), format!("signal {name}"));
            assert!(
                log.read().contains(&format!("signal={name}")),
                "{}",
                log.read()
            );
        }
    }
    assert!(
        poll_until(PATIENCE, || process_gone(child)),
        "{name}: the child (pid {child}) outlived the gateway"
    );
}

#[test]
fn sigquit_shuts_down_in_order() {
    check_signal(libc::SIGQUIT, "SIGQUIT", Expect::Shutdown);
}

#[test]
fn sigusr1_is_ignored() {
    check_signal(libc::SIGUSR1, "SIGUSR1", Expect::Ignore);
}

#[test]
fn sigusr2_is_ignored() {
    check_signal(libc::SIGUSR2, "SIGUSR2", Expect::Ignore);
}

#[test]
fn sigalrm_is_ignored() {
    check_signal(libc::SIGALRM, "SIGALRM", Expect::Ignore);
}

#[test]
fn sigpwr_shuts_down_in_order() {
    check_signal(libc::SIGPWR, "SIGPWR", Expect::Shutdown);
}

#[test]
fn sigvtalrm_is_ignored() {
    check_signal(libc::SIGVTALRM, "SIGVTALRM", Expect::Ignore);
}

#[test]
fn sigxcpu_shuts_down_in_order() {
    check_signal(libc::SIGXCPU, "SIGXCPU", Expect::Shutdown);
}

#[test]
fn a_realtime_signal_is_ignored() {
    let log = TempFile::new("signals.log");
    let (mut gw, child) = gateway_with_child(&log);
    // Ignored outright (SIG_IGN): nothing to count, the gateway keeps serving.
    gw.signal(libc::SIGRTMIN() + 3);
    assert_eq!(gw.call("gateway.ping", None)["ok"], true);
    assert!(gw.try_exit().is_none());
    gw.close_stdin();
    assert_eq!(gw.wait_code(PATIENCE), 0, "{}", gw.stderr_text());
    assert!(poll_until(PATIENCE, || process_gone(child)));
}

/// SIG_IGN in the kernel's `struct sigaction` layout (handler first).
fn ignore_raw(signal: libc::c_int) {
    let action = [1u64, 0, 0, 0, 0, 0, 0, 0];
    // SAFETY: rt_sigaction reads the buffer; async-signal-safe.
    unsafe {
        libc::syscall(
            libc::SYS_rt_sigaction,
            signal,
            action.as_ptr(),
            std::ptr::null_mut::<u8>(),
            8usize,
        );
    }
}

#[test]
fn children_start_with_no_signal_ignored_or_blocked_whatever_the_gateway_inherited() {
    let mut gw = Gateway::builder()
        .pre_exec(|| {
            // A parent that ignores and blocks things: as `nohup`, a threaded
            // runtime (glibc's 32 and 33) or a careless shell would leave them.
            for signal in [libc::SIGHUP, libc::SIGUSR1, libc::SIGINT, 32, 33, 40] {
                ignore_raw(signal);
            }
            // SAFETY: sigset operations on a local; sigprocmask is async-signal-safe.
            unsafe {
                let mut set: libc::sigset_t = std::mem::zeroed();
                libc::sigemptyset(&mut set);
                for signal in [libc::SIGTERM, libc::SIGUSR2, libc::SIGQUIT] {
                    libc::sigaddset(&mut set, signal);
                }
                libc::sigprocmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
            }
            Ok(())
        })
        .spawn();
    let inherited = proc_status(gw.gateway_pid).unwrap();
    let field = |status: &str, name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{name}:\t")))
            .unwrap_or_else(|| panic!("no {name} in {status}"))
            .to_owned()
    };
    eprintln!(
        "gateway: SigIgn {} SigBlk {}",
        field(&inherited, "SigIgn"),
        field(&inherited, "SigBlk")
    );
    let spawned = gw.call(
        "process.spawn",
        Some(json!({"argv": ["sleep", "1000"], "stdin": "null"})),
    );
    let child = as_u64(&spawned["pid"]) as u32;
    let status = proc_status(child).unwrap();
    assert_eq!(field(&status, "SigIgn"), "0000000000000000", "{status}");
    assert_eq!(field(&status, "SigBlk"), "0000000000000000", "{status}");
    // The gateway unblocked what it handles: SIGTERM still shuts it down.
    gw.signal(libc::SIGTERM);
    assert_eq!(gw.wait_code(PATIENCE), 0, "{}", gw.stderr_text());
    assert_eq!(gw.exit_reason(), "signal SIGTERM");
    assert!(poll_until(PATIENCE, || process_gone(child)));
}

#[test]
fn a_child_dies_with_a_gateway_killed_by_sigkill() {
    let log = TempFile::new("sigkill.log");
    let (mut gw, child) = gateway_with_child(&log);
    gw.signal(libc::SIGKILL);
    gw.wait_exit(PATIENCE);
    assert!(
        poll_until(PATIENCE, || process_gone(child)),
        "PR_SET_PDEATHSIG did not take the child (pid {child}) with the gateway"
    );
}
