//! Error codes, errors, and the refusal of a frame with the id to answer it under.

use std::fmt;

use serde_json::{Map, Value};

use super::*;

/// The error codes the gateway uses. The first five are JSON-RPC 2.0's; the
/// last three sit in the range the specification leaves to servers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    /// -32700: the frame is not valid UTF-8 or not valid JSON.
    ParseError,
    /// -32600: valid JSON, but not a JSON-RPC 2.0 message (or a frame too large).
    InvalidRequest,
    /// -32601: no service registered the method.
    MethodNotFound,
    /// -32602: the params do not fit the method.
    InvalidParams,
    /// -32603: a bug in the gateway.
    Internal,
    /// -32000: the handler ran and failed (for example a failed spawn).
    HandlerFailed,
    /// -32001: a bounded resource is full; retry later.
    Overloaded,
    /// -32002: the backend exited before answering (bridge mode).
    BackendExited,
    /// -32010: an attach to a session that has a client, without takeover.
    SessionBusy,
    /// -32011: an attach naming another epoch: the session it knew ended.
    SessionEpoch,
    /// -32012: an attach asking for frames the journal no longer holds.
    FramesGone,
}

impl ErrorCode {
    /// The numeric code on the wire.
    pub fn code(self) -> i64 {
        match self {
            ErrorCode::ParseError => -32700,
            ErrorCode::InvalidRequest => -32600,
            ErrorCode::MethodNotFound => -32601,
            ErrorCode::InvalidParams => -32602,
            ErrorCode::Internal => -32603,
            ErrorCode::HandlerFailed => -32000,
            ErrorCode::Overloaded => -32001,
            ErrorCode::BackendExited => -32002,
            ErrorCode::SessionBusy => -32010,
            ErrorCode::SessionEpoch => -32011,
            ErrorCode::FramesGone => -32012,
        }
    }
}

/// A JSON-RPC error object: what went wrong, in words a client developer can act on.
#[derive(Debug, Clone, PartialEq)]
pub struct RpcError {
    /// The error class.
    pub code: ErrorCode,
    /// One sentence: what happened and, where it helps, what to do.
    pub message: String,
    /// Structured detail (limits, OS error numbers), if any.
    pub data: Option<Value>,
}

impl RpcError {
    /// An error with a code and a message.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> RpcError {
        RpcError {
            code,
            message: message.into(),
            data: None,
        }
    }

    /// Attaches structured detail.
    pub fn with_data(mut self, data: Value) -> RpcError {
        self.data = Some(data);
        self
    }

    /// `-32700 Parse error`, with the parser's own explanation as `data`.
    pub fn parse(detail: impl fmt::Display) -> RpcError {
        RpcError::new(ErrorCode::ParseError, "Parse error")
            .with_data(serde_json::json!({ "reason": detail.to_string() }))
    }

    /// `-32600 Invalid Request`, with what is wrong as `data.reason`.
    pub fn invalid_request(reason: &str) -> RpcError {
        RpcError::new(ErrorCode::InvalidRequest, "Invalid Request")
            .with_data(serde_json::json!({ "reason": reason }))
    }

    /// `-32601`, naming the method.
    pub fn method_not_found(method: &str) -> RpcError {
        RpcError::new(
            ErrorCode::MethodNotFound,
            format!("Method not found: {method}"),
        )
    }

    /// `-32602`, saying which parameter is wrong and how.
    pub fn invalid_params(message: impl Into<String>) -> RpcError {
        RpcError::new(ErrorCode::InvalidParams, message)
    }

    pub(crate) fn to_value(&self) -> Value {
        let mut obj = Map::new();
        obj.insert("code".into(), Value::from(self.code.code()));
        obj.insert("message".into(), Value::from(self.message.clone()));
        if let Some(data) = &self.data {
            obj.insert("data".into(), data.clone());
        }
        Value::Object(obj)
    }
}

impl fmt::Display for RpcError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.message, self.code.code())
    }
}

impl std::error::Error for RpcError {}

/// A frame or element the gateway refuses, with the id to answer it under.
#[derive(Debug, Clone, PartialEq)]
pub struct Reject {
    /// The request's id when it could be read, otherwise `null`.
    pub id: Id,
    /// Why.
    pub error: RpcError,
}

impl Reject {
    pub(super) fn null(error: RpcError) -> Reject {
        Reject {
            id: Id::Null,
            error,
        }
    }
}
