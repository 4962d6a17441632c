//! Services behind method names: the work the gateway does for its client.
//!
//! * [`process`]: `process.*`, running commands with streamed output
//!   (`docs/process.md`);
//! * [`backend`]: the bridge to an existing backend, `-- CMD`
//!   (`docs/bridge.md`);
//! * [`stdin_queue`]: a child's bounded stdin, and [`shutdown`]: the
//!   SIGTERM-then-SIGKILL timeline of a drain, both shared by the two.

pub mod backend;
pub mod process;
pub mod shutdown;
pub mod stdin_queue;

use crate::config::Config;
use crate::engine::service::Service;

/// The services a production gateway runs: `process.*` (unless a backend
/// is bridged without `--local-process`) and the backend bridge.
pub fn standard(config: &Config) -> Vec<Box<dyn Service>> {
    let mut services: Vec<Box<dyn Service>> = Vec::new();
    if !config.is_bridge() || config.backend.local_process {
        services.push(Box::new(process::ProcessService::new(config)));
    }
    if config.is_bridge() {
        services.push(Box::new(backend::BackendService::new(config)));
    }
    services
}
