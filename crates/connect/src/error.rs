//! The runtime's errors, and the one place they become Kafka Connect's HTTP error bodies
//! (`{"error_code": 409, "message": "..."}`).

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

/// What a worker operation can fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Unknown connector (404).
    #[error("Connector {0} not found")]
    ConnectorNotFound(String),
    /// Unknown task (404).
    #[error("Task {0} not found")]
    TaskNotFound(String),
    /// Anything else not found, Kafka's message as is (404), e.g. distributed mode's
    /// "Unknown connector: x" and "Unknown task: x-0".
    #[error("{0}")]
    NotFound(String),
    /// Unknown plugin (404 on plugin routes).
    #[error("{0}")]
    PluginNotFound(String),
    /// A connector with that name exists (409).
    #[error("Connector {0} already exists")]
    AlreadyExists(String),
    /// The request conflicts with a rebalance in progress (409).
    #[error("{0}")]
    Conflict(String),
    /// The request is invalid: bad config, wrong state (400).
    #[error("{0}")]
    BadRequest(String),
    /// A worker setting asks for something not implemented (distributed mode).
    #[error("{0}")]
    Unsupported(String),
    /// Local state files.
    #[error("{0}")]
    Storage(String),
    /// The cluster (librdkafka).
    #[error("{0}")]
    Kafka(String),
    /// No such route (404).
    #[error("HTTP 404 Not Found")]
    NotFoundRoute,
    /// A worker thread or blocking job failed.
    #[error("{0}")]
    Internal(String),
}

impl Error {
    /// The HTTP status Kafka Connect answers with.
    pub fn status(&self) -> StatusCode {
        match self {
            Error::ConnectorNotFound(_)
            | Error::TaskNotFound(_)
            | Error::PluginNotFound(_)
            | Error::NotFound(_)
            | Error::NotFoundRoute => StatusCode::NOT_FOUND,
            Error::AlreadyExists(_) | Error::Conflict(_) => StatusCode::CONFLICT,
            Error::BadRequest(_) => StatusCode::BAD_REQUEST,
            Error::Storage(_) | Error::Kafka(_) | Error::Internal(_) | Error::Unsupported(_) => {
                StatusCode::INTERNAL_SERVER_ERROR
            }
        }
    }
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        let status = self.status();
        let body = json!({"error_code": status.as_u16(), "message": self.to_string()});
        (status, Json(body)).into_response()
    }
}
