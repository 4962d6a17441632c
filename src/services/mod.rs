//! Services behind method names: the work the gateway does for its client.
//!
//! * [`process`]: `process.*`, running commands with streamed output
//!   (`docs/process.md`).

pub mod process;

use crate::config::Config;
use crate::engine::service::Service;

/// The services a production gateway runs.
pub fn standard(config: &Config) -> Vec<Box<dyn Service>> {
    vec![Box::new(process::ProcessService::new(config))]
}
