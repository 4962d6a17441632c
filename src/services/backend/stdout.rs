//! The backend's stdout: framed into lines, each classified from its
//! envelope (`line.rs`) and passed on as its bytes. A response settles the
//! request it answers (joined into its batch answer), a streaming event may
//! merge with its neighbours, the backend's `gateway.ready` joins the
//! gateway's own, and a line that is not JSON is counted and logged (rate
//! limited) but never reaches the client.

use std::time::Duration;

use serde_json::json;

use super::batching::Response;
use super::line::{classify, classify_with, Line};
use super::BackendService;
use crate::engine::framer::Decoded;
use crate::engine::outbound::Refused;
use crate::engine::service::FallbackContext;
use crate::engine::wire::{ErrorCode, Id, RpcError};

/// Junk lines logged per [`JUNK_WINDOW`]; the rest are only counted.
const JUNK_LOGGED: u32 = 20;
/// The window [`JUNK_LOGGED`] counts in.
const JUNK_WINDOW: Duration = Duration::from_secs(10);
/// Bytes of a junk line shown in the log.
const JUNK_SHOWN: usize = 200;

impl BackendService {
    /// Bytes from the backend's stdout: framed, and each line read where
    /// the framer holds it.
    pub(super) fn on_stdout(&mut self, cx: &mut FallbackContext<'_>, bytes: &[u8]) {
        self.stats.bytes_from_backend += bytes.len() as u64;
        let Some(b) = self.backend.as_mut() else {
            return;
        };
        b.framer.push(bytes);
        loop {
            let Some(b) = self.backend.as_mut() else {
                return;
            };
            match b.framer.next_span() {
                None => return,
                Some(Decoded::Frame(span)) => {
                    // The line is read where it lies: the framer's buffer is
                    // lent for it, and taken back unless this backend ended
                    // meanwhile (its lines go with it).
                    let (key, buf) = (b.key, b.framer.lend());
                    self.on_line(cx, &buf[span]);
                    match self.backend.as_mut() {
                        Some(b) if b.key == key => b.framer.give_back(buf),
                        _ => return,
                    }
                }
                Some(Decoded::TooLarge { limit }) => {
                    self.stats.oversize_lines += 1;
                    self.junk(
                        cx,
                        "longer than --max-frame-bytes",
                        format!("(over {limit} bytes)").as_bytes(),
                    );
                }
            }
        }
    }

    /// One line of the backend's stdout.
    fn on_line(&mut self, cx: &mut FallbackContext<'_>, line: &[u8]) {
        self.stats.frames_from_backend += 1;
        if self.config.transparent {
            match classify(line, &self.streams) {
                Line::Junk(why) => self.junk(cx, why, line),
                _ => self.pass_on(cx, line),
            }
            return;
        }
        match classify_with(line, &self.streams, &mut self.template) {
            Line::Response(id) => {
                let error = id == Id::Null && crate::engine::wire::contains_error(line);
                if let Response::Refusal { resend } = self.batching.on_response(&id, error) {
                    // Not an answer to anything the client sent.
                    self.push_stdin(&resend);
                    self.flush(cx);
                    return;
                }
                self.ledger.settle(&id);
                let len = line.len();
                let pushed = cx.reply_line(&id, line);
                self.too_large(cx, pushed, len, Some(&id));
            }
            Line::Ready { type_span, payload } => self.on_ready(cx, line, type_span, payload),
            Line::Stream(text) => {
                let mut frame = Vec::with_capacity(line.len() + 1);
                frame.extend_from_slice(line);
                frame.push(b'\n');
                let len = frame.len();
                let pushed = cx.push_raw_stream(frame, text);
                self.too_large(cx, pushed, len, None);
            }
            Line::Other => self.pass_on(cx, line),
            Line::Array(elements) => {
                if elements.iter().all(|(_, id)| id.is_none()) {
                    return self.pass_on(cx, line);
                }
                // A batch answer: each response goes to the batch it answers.
                self.batching.on_array();
                for (span, id) in elements {
                    let element = &line[span];
                    let pushed = match &id {
                        Some(id) => {
                            self.ledger.settle(id);
                            cx.reply_line(id, element)
                        }
                        None => cx.push_line(element),
                    };
                    self.too_large(cx, pushed, element.len(), id.as_ref());
                }
            }
            Line::Junk(why) => self.junk(cx, why, line),
        }
    }

    /// Passes a backend line that answers no request on to the client.
    pub(super) fn pass_on(&mut self, cx: &mut FallbackContext<'_>, line: &[u8]) {
        let len = line.len();
        let pushed = cx.push_line(line);
        self.too_large(cx, pushed, len, None);
    }

    /// A backend line the outbound queue refused for its size (larger than
    /// the room below the hard limit): a response is answered with `-32001`
    /// under its id instead, anything else is dropped like an over-long line
    /// (counted, logged). No request loses its answer.
    fn too_large(
        &mut self,
        cx: &mut FallbackContext<'_>,
        pushed: Result<(), Refused>,
        len: usize,
        answers: Option<&Id>,
    ) {
        if pushed.is_ok() {
            return;
        }
        self.stats.oversize_lines += 1;
        let room = cx.room();
        match answers {
            Some(id) => cx.reply(
                id,
                &Err(RpcError::new(
                    ErrorCode::Overloaded,
                    format!(
                        "the backend's answer ({len} bytes) is larger than the {room} bytes left below the outbound hard limit (--outbound-hard-limit)"
                    ),
                )
                .with_data(json!({"limit": room}))),
            ),
            None => self.junk(
                cx,
                "larger than the room below --outbound-hard-limit",
                format!("({len} bytes)").as_bytes(),
            ),
        }
    }

    /// A line that never reaches the client: counted, and logged to
    /// stderr at most [`JUNK_LOGGED`] times per [`JUNK_WINDOW`].
    pub(super) fn junk(&mut self, cx: &mut FallbackContext<'_>, why: &str, line: &[u8]) {
        self.stats.junk_lines += 1;
        let now = cx.now();
        if now.duration_since(self.junk_window.0) >= JUNK_WINDOW {
            self.junk_window = (now, 0);
        }
        self.junk_window.1 += 1;
        if self.junk_window.1 > JUNK_LOGGED {
            return;
        }
        let shown = String::from_utf8_lossy(&line[..line.len().min(JUNK_SHOWN)]);
        let more = if line.len() > JUNK_SHOWN { "..." } else { "" };
        let note = format!(
            "[gateway-backend-junk] a backend stdout line that is {why} was not forwarded ({} bytes): {shown:?}{more}\n",
            line.len()
        );
        cx.host().stderr_line(note.as_bytes());
    }
}
