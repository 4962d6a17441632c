//! Services behind method names: the work the gateway does for its client.
//!
//! * [`process`]: `process.*`, running commands with streamed output
//!   (`docs/process.md`);
//! * [`backend`]: the bridge to an existing backend, `-- CMD`
//!   (`docs/bridge.md`);
//! * `stdin_queue`: a child's bounded stdin, `shutdown`: the
//!   SIGTERM-then-SIGKILL timeline of a drain, and `child_life`: when a
//!   child is over (reaped, every output at EOF), all shared by the two.

pub mod backend;
pub(crate) mod child_life;
pub mod process;
pub(crate) mod shutdown;
pub(crate) mod stdin_queue;

use crate::config::Config;
use crate::engine::service::{Fallback, Service};
use crate::engine::Services;

/// The services a production gateway runs: `process.*` (unless a backend
/// is bridged without `--local-process`) and the backend bridge.
pub fn standard(config: &Config) -> Services {
    let mut services: Vec<Box<dyn Service>> = Vec::new();
    if !config.is_bridge() || config.backend.local_process {
        services.push(Box::new(process::ProcessService::new(config)));
    }
    let fallback = config
        .is_bridge()
        .then(|| Box::new(backend::BackendService::new(config)) as Box<dyn Fallback>);
    Services { services, fallback }
}
