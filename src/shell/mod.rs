//! The shell: the mio loop around the engine, and everything that touches
//! the operating system.
//!
//! * [`event_loop`](self) turns readiness into engine calls;
//! * `stdio` classifies and flags the gateway's own fds;
//! * `signals`, `child` and `parent` watch signals, children and the parent;
//!   `launch` turns a spawn spec into the child's environment, limits and
//!   stdio;
//! * `stderr` and `crashlog` leave diagnostics that can never block or kill;
//! * `trace` records every frame in and out (`--trace`), bounded and lossy;
//! * `session` keeps a session (`--session`): its socket, journal and
//!   clients, the `attach` relay and the `sessions` list;
//! * `sys` wraps the syscalls std lacks (public so the benchmark and the
//!   tests open terminals the way the gateway does).

mod child;
pub(crate) mod crashlog;
mod event_loop;
mod launch;
pub mod oom;
mod parent;
modules_public_for_testing! {
    session;
}
mod signals;
pub(crate) mod stderr;
pub(crate) mod stdio;
pub mod sys;
pub(crate) mod trace;

use std::time::Instant;

use crate::config::{Command, Config};
use crate::engine::lifecycle::{exit_code, Exit};
use crate::engine::Engine;
use crate::services;

/// Runs a gateway on this process's stdin and stdout until it exits;
/// returns the process exit code. Every path records its reason on stderr
/// (`[gateway-exit] ...`) and in the crash log.
pub fn run(config: Config) -> i32 {
    let session = match &config.command {
        Command::Serve => match &config.session.name {
            None => None,
            Some(name) => match session_place(name) {
                Err(code) => return code,
                Ok(place) => match place.try_own() {
                    Ok(Some(lock)) => Some(event_loop::SessionStart {
                        place,
                        lock,
                        journal_bytes: config.session.journal_bytes,
                        linger: config.session.linger,
                    }),
                    Ok(None) => {
                        if config.is_bridge() {
                            stderr::line(&format!(
                                "tui-gateway: session {name} runs: attaching to it; the backend command given is not started"
                            ));
                        }
                        return session::relay::run(&place, &config.session.attach);
                    }
                    Err(e) => {
                        stderr::line(&format!(
                            "tui-gateway: session {name}: cannot take its lock {}: {e}",
                            place.lock.display()
                        ));
                        return exit_code::UNAVAILABLE;
                    }
                },
            },
        },
        Command::Attach(name) => {
            return match session_place(name) {
                Ok(place) => session::relay::run(&place, &config.session.attach),
                Err(code) => code,
            }
        }
        Command::Sessions { json } => {
            return match session_dir() {
                Ok(dir) => session::list::run(&dir, *json),
                Err(code) => code,
            }
        }
    };
    prepare_process(&config);
    let started = Instant::now();
    let trace = match config.trace.as_deref().map(trace::Trace::open) {
        None => None,
        Some(Ok(trace)) => Some(trace),
        Some(Err(e)) => {
            let path = config.trace.as_deref().unwrap_or(std::path::Path::new(""));
            stderr::line(&format!(
                "tui-gateway: --trace {}: cannot open it: {e}",
                path.display()
            ));
            stdio::restore_all();
            return exit_code::USAGE;
        }
    };
    let exit = event_loop::EventLoop::new(&config, trace, session, |now, session| {
        let mut engine_config = config.engine();
        engine_config.session = session;
        Engine::new(engine_config, services::standard(&config), now)
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))
    })
    .map(|event_loop| event_loop.run())
    .unwrap_or_else(|e| Exit {
        code: exit_code::INTERNAL,
        reason: format!("cannot start the event loop: {e}"),
    });
    record_exit(&exit, started);
    stdio::restore_all();
    exit.code
}

/// Marks stdio close-on-exec, makes stderr non-blocking, installs the
/// logger and the panic hook.
fn prepare_process(config: &Config) {
    stdio::save_all();
    for fd in 0..3 {
        stdio::set_cloexec(fd);
    }
    stdio::cloexec_inherited();
    if stdio::kind(libc::STDERR_FILENO) == stdio::Kind::Pollable {
        let _ = stdio::set_nonblocking(libc::STDERR_FILENO);
    }
    stderr::init_logger();
    crashlog::init(config.crash_log.clone());
    std::panic::set_hook(Box::new(|info| {
        let text = info.to_string().replace('\n', " ");
        stderr::line(&format!("[gateway-crash] {text}"));
        crashlog::entry("crash", &format!("panic={text}"), &[]);
        child::kill_all_groups_now();
        child::kill_all_descendants_now();
        let reason = format!("internal error: {text}");
        stderr::line(&format!("[gateway-exit] {reason}"));
        crashlog::entry("exit", &format!("reason={reason}"), &[]);
        stdio::restore_all();
        std::process::exit(exit_code::INTERNAL);
    }));
}

/// The checked directory sessions live in, or the exit code after saying
/// why it cannot be used.
fn session_dir() -> Result<std::path::PathBuf, i32> {
    let runtime = std::env::var_os("XDG_RUNTIME_DIR").map(std::path::PathBuf::from);
    session::place::directory(runtime.as_deref()).map_err(|e| {
        stderr::line(&format!("tui-gateway: sessions: {e}"));
        exit_code::UNAVAILABLE
    })
}

/// Session `name`'s files in the checked directory.
fn session_place(name: &str) -> Result<session::place::Place, i32> {
    Ok(session::place::Place::new(&session_dir()?, name))
}

fn record_exit(exit: &Exit, started: Instant) {
    stderr::line(&format!("[gateway-exit] {}", exit.reason));
    crashlog::entry(
        "exit",
        &format!("reason={}", exit.reason),
        &[&format!(
            "code={} uptime_s={:.3}",
            exit.code,
            started.elapsed().as_secs_f64()
        )],
    );
}
