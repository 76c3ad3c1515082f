//! The console's one error type. Every handler returns `Result<_, ConsoleError>`; the
//! `IntoResponse` impl in `pages::error_page` turns it into an HTML error page, so a
//! broker that is down or a bad form field is a page, never a panic.

use rdkafka::error::KafkaError;

#[derive(Debug, thiserror::Error)]
pub enum ConsoleError {
    /// librdkafka failed (the cluster is unreachable, timed out, or refused a request).
    #[error("{what}: {source}")]
    Kafka {
        what: &'static str,
        #[source]
        source: KafkaError,
    },
    /// A raw Kafka protocol exchange (controller id, racks, transactions) failed.
    #[error("{0}")]
    Wire(String),
    /// The broker answered a request with an error code.
    #[error("{what}: {code}")]
    Broker { what: String, code: String },
    /// No such topic, group or partition.
    #[error("not found: {0}")]
    NotFound(String),
    /// A form or query field is malformed.
    #[error("bad request: {0}")]
    BadRequest(String),
    /// The console's own HTTP listener.
    #[error("cannot serve HTTP on {addr}: {source}")]
    Listen {
        addr: String,
        #[source]
        source: std::io::Error,
    },
    /// A blocking client task died (it panicked inside librdkafka's callbacks or the
    /// runtime is shutting down).
    #[error("internal error: {0}")]
    Internal(String),
}

impl ConsoleError {
    /// A `map_err` adapter for librdkafka calls: `.map_err(ConsoleError::kafka("cannot
    /// fetch metadata"))`.
    pub fn kafka(what: &'static str) -> impl FnOnce(KafkaError) -> Self {
        move |source| Self::Kafka { what, source }
    }

    /// The HTTP status a page with this error gets.
    pub fn status(&self) -> axum::http::StatusCode {
        use axum::http::StatusCode;
        match self {
            Self::Kafka { .. } | Self::Wire(_) | Self::Broker { .. } => StatusCode::BAD_GATEWAY,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::Internal(_) | Self::Listen { .. } => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl From<std::io::Error> for ConsoleError {
    fn from(e: std::io::Error) -> Self {
        Self::Wire(e.to_string())
    }
}

pub type Result<T, E = ConsoleError> = std::result::Result<T, E>;
