//! The error plugins (connectors, converters, transforms) return.

/// What went wrong in a plugin. The runtime decides what it means for the task
/// (`errors.tolerance`), and the REST layer what it means for a request.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// A setting is missing or invalid.
    #[error("{0}")]
    Config(String),
    /// A record cannot be converted or transformed (a data error: tolerable).
    #[error("{0}")]
    Data(String),
    /// The external system failed (file, database).
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    /// Any other failure of the plugin.
    #[error("{0}")]
    Other(String),
}

impl ConnectError {
    /// An I/O error with what was being done.
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        ConnectError::Io {
            context: context.into(),
            source,
        }
    }

    /// The Java-style exception class name Kafka Connect reports for this kind of
    /// error (in task traces and `__connect.errors.exception.class.name`).
    pub fn class_name(&self) -> &'static str {
        match self {
            ConnectError::Config(_) => "org.apache.kafka.common.config.ConfigException",
            ConnectError::Data(_) => "org.apache.kafka.connect.errors.DataException",
            ConnectError::Io { .. } => "java.io.IOException",
            ConnectError::Other(_) => "org.apache.kafka.connect.errors.ConnectException",
        }
    }
}
