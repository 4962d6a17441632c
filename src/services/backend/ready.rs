//! `gateway.ready` with a backend: the gateway holds its own ready until
//! the backend's first one (`--backend-ready event`, bounded by
//! `--backend-ready-timeout`) and sends one merged ready; a later backend
//! ready is news about the backend, sent as `backend.ready`
//! (`docs/bridge.md`, "Ready").

use std::ops::Range;

use serde_json::Value;

use super::line::{merged_ready, BACKEND_READY_EVENT};
use super::BackendService;
use crate::engine::service::FallbackContext;
use crate::engine::wire::{event_frame, write_json};

impl BackendService {
    /// The backend wrote a `gateway.ready` event (`type_span`: its type
    /// string; `payload`: its payload object, if it has one).
    pub(super) fn on_ready(
        &mut self,
        cx: &mut FallbackContext<'_>,
        line: &[u8],
        type_span: Range<usize>,
        payload: Option<Range<usize>>,
    ) {
        // The gateway's ready is held only until the first backend ready
        // (or the timeout): this is that first one.
        if let Some(ours) = cx.held_ready().cloned() {
            self.ready_deadline = None;
            let frame = merged_ready(line, payload, &ours);
            return cx.release_ready(frame);
        }
        // The client already had its ready: this one is news about the backend.
        let mut renamed = Vec::with_capacity(line.len() + 1);
        renamed.extend_from_slice(&line[..type_span.start]);
        write_json(&mut renamed, BACKEND_READY_EVENT);
        renamed.extend_from_slice(&line[type_span.end..]);
        self.pass_on(cx, &renamed);
    }

    /// Sends the held ready without the backend's: the timeout passed, the
    /// backend ended first, or the gateway is shutting down.
    pub(super) fn release_ready_unmerged(&mut self, cx: &mut FallbackContext<'_>) {
        if let Some(mut ours) = cx.held_ready().cloned() {
            if let Value::Object(map) = &mut ours {
                map.insert("backend_ready".into(), Value::Bool(false));
            }
            log::warn!(
                "no gateway.ready from the backend (within {:.1}s, --backend-ready-timeout, or before it ended or the gateway shut down): sending the gateway's own with backend_ready: false",
                self.config.ready_timeout.as_secs_f64()
            );
            cx.release_ready(event_frame("gateway.ready", &ours));
        }
        self.ready_deadline = None;
    }
}
