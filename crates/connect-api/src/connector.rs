//! The plugin traits, after Kafka Connect's `Connector`, `SourceTask` and `SinkTask`.
//!
//! Tasks are driven from a dedicated thread each: the methods block. A source task's
//! `poll` should return within about a second when there is nothing to read, so the
//! runtime can pause and stop it promptly.

use crate::config::ConfigDef;
use crate::error::ConnectError;
use crate::record::{SinkRecord, SourceRecord};
use crate::Props;

/// Source or sink, as the REST API shows it (`"type": "source"`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConnectorType {
    Source,
    Sink,
}

impl ConnectorType {
    /// `"source"` or `"sink"`.
    pub fn name(self) -> &'static str {
        match self {
            ConnectorType::Source => "source",
            ConnectorType::Sink => "sink",
        }
    }
}

/// Whether a source connector can give exactly-once delivery with a given config
/// (Kafka's `ExactlyOnceSupport`, KIP-618): its offsets make a replay from the last
/// committed offset produce exactly the records not yet committed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExactlyOnceSupport {
    Supported,
    Unsupported,
}

/// One task's configuration, as the connector splits its work.
pub type TaskConfig = Props;

/// A connector: validates its configuration and splits the work into task configs.
pub trait Connector: Send {
    /// The plugin's version string.
    fn version(&self) -> &'static str;
    /// The connector's own settings (the runtime adds the common ones).
    fn config_def(&self) -> ConfigDef;
    /// Checks across settings beyond the `ConfigDef`: (setting, message) pairs.
    fn validate(&self, _props: &Props) -> Vec<(String, String)> {
        Vec::new()
    }
    /// Starts with the connector's configuration (already validated).
    fn start(&mut self, props: &Props) -> Result<(), ConnectError>;
    /// Up to `max_tasks` task configurations.
    fn task_configs(&self, max_tasks: usize) -> Vec<TaskConfig>;
    /// Stops; the runtime stops the tasks first.
    fn stop(&mut self) {}
    /// Source connectors (KIP-618): whether this config allows exactly-once delivery.
    /// `None` (the default) means the connector does not say, which
    /// `exactly.once.support=required` refuses, as Kafka does.
    fn exactly_once_support(&self, _props: &Props) -> Option<ExactlyOnceSupport> {
        None
    }
    /// Source connectors (KIP-618): whether the connector defines its own transaction
    /// boundaries (`transaction.boundary=connector`). No shipped connector does.
    fn can_define_transaction_boundaries(&self, _props: &Props) -> bool {
        false
    }
}

/// Reads the last committed offset of a source partition (Kafka's `OffsetStorageReader`).
pub type OffsetReader<'a> = &'a dyn Fn(
    &serde_json::Map<String, serde_json::Value>,
) -> Option<serde_json::Map<String, serde_json::Value>>;

/// A source task: reads from an external system and returns records.
pub trait SourceTask: Send {
    /// Starts with the task's configuration; `offsets` gives the committed position of
    /// each source partition, to resume from.
    fn start(&mut self, props: &Props, offsets: OffsetReader<'_>) -> Result<(), ConnectError>;
    /// The next records; empty when there is nothing new (after waiting a little).
    fn poll(&mut self) -> Result<Vec<SourceRecord>, ConnectError>;
    /// Called after the records returned so far were written to Kafka and their offsets
    /// stored (Kafka's `commit()`): an external system can be acknowledged here.
    fn commit(&mut self) -> Result<(), ConnectError> {
        Ok(())
    }
    /// Stops; no more calls follow.
    fn stop(&mut self) {}
}

/// A sink task: writes records consumed from Kafka to an external system.
pub trait SinkTask: Send {
    /// Starts with the task's configuration.
    fn start(&mut self, props: &Props) -> Result<(), ConnectError>;
    /// Writes (or buffers) records.
    fn put(&mut self, records: Vec<SinkRecord>) -> Result<(), ConnectError>;
    /// Makes everything `put` so far durable; the runtime commits the consumer offsets
    /// only after this returns `Ok`.
    fn flush(&mut self) -> Result<(), ConnectError>;
    /// Stops; no more calls follow.
    fn stop(&mut self) {}
}
