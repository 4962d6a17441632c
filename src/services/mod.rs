//! Services behind method names: the work the gateway does for its client.

use crate::config::Config;
use crate::engine::service::Service;

/// The services a production gateway runs.
pub fn standard(_config: &Config) -> Vec<Box<dyn Service>> {
    Vec::new()
}
