//! The connector plugins this worker ships, found by Kafka's class names or aliases.

pub mod file;
pub mod postgres;

use gregor_connect_api::{Connector, ConnectorType, SinkTask, SourceTask};

/// A connector plugin: its names and constructors.
pub struct ConnectorPlugin {
    /// Kafka's fully-qualified class name.
    pub class: &'static str,
    pub kind: ConnectorType,
    pub version: &'static str,
    pub new_connector: fn() -> Box<dyn Connector>,
    pub new_source_task: Option<fn() -> Box<dyn SourceTask>>,
    pub new_sink_task: Option<fn() -> Box<dyn SinkTask>>,
}

impl ConnectorPlugin {
    /// The simple class name (`FileStreamSourceConnector`).
    pub fn simple_name(&self) -> &'static str {
        self.class.rsplit('.').next().unwrap_or(self.class)
    }

    /// Kafka's short alias: the simple name without `Connector` (`FileStreamSource`).
    pub fn alias(&self) -> &'static str {
        let s = self.simple_name();
        s.strip_suffix("Connector").unwrap_or(s)
    }
}

/// Every connector plugin.
pub static PLUGINS: &[ConnectorPlugin] = &[
    ConnectorPlugin {
        class: "org.apache.kafka.connect.file.FileStreamSinkConnector",
        kind: ConnectorType::Sink,
        version: file::VERSION,
        new_connector: file::sink_connector,
        new_source_task: None,
        new_sink_task: Some(file::sink_task),
    },
    ConnectorPlugin {
        class: "org.apache.kafka.connect.file.FileStreamSourceConnector",
        kind: ConnectorType::Source,
        version: file::VERSION,
        new_connector: file::source_connector,
        new_source_task: Some(file::source_task),
        new_sink_task: None,
    },
    ConnectorPlugin {
        class: "io.gregor.connect.postgres.PostgresCdcSourceConnector",
        kind: ConnectorType::Source,
        version: postgres::VERSION,
        new_connector: postgres::cdc::connector,
        new_source_task: Some(postgres::cdc::task),
        new_sink_task: None,
    },
    ConnectorPlugin {
        class: "io.gregor.connect.postgres.PostgresSinkConnector",
        kind: ConnectorType::Sink,
        version: postgres::VERSION,
        new_connector: postgres::sink::connector,
        new_source_task: None,
        new_sink_task: Some(postgres::sink::task),
    },
];

/// The plugin whose class name, simple name or alias is `name`.
pub fn find(name: &str) -> Option<&'static ConnectorPlugin> {
    let name = name.trim();
    PLUGINS
        .iter()
        .find(|p| p.class == name || p.simple_name() == name || p.alias() == name)
}
