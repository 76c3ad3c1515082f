//! `StreamsConfig`: Kafka Streams' configuration names, parsed once.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use crate::error::{Result, StreamsError};

/// `processing.guarantee`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProcessingGuarantee {
    /// `at_least_once`: outputs are flushed before offsets are committed.
    AtLeastOnce,
    /// `exactly_once_v2`: outputs, changelogs and input offsets commit in one transaction.
    ExactlyOnceV2,
}

/// `default.deserialization.exception.handler`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeserializationHandler {
    /// `log-and-continue` (or Kafka's class name `LogAndContinueExceptionHandler`): skip
    /// the record.
    LogAndContinue,
    /// `log-and-fail` (`LogAndFailExceptionHandler`, the default): stop the application.
    LogAndFail,
}

/// The configuration of a streams application.
///
/// ```
/// use gregor_streams::StreamsConfig;
/// let config = StreamsConfig::new("wordcount", "127.0.0.1:9092")
///     .set("processing.guarantee", "exactly_once_v2")
///     .set("commit.interval.ms", "200");
/// assert_eq!(config.commit_interval().unwrap().as_millis(), 200);
/// ```
#[derive(Debug, Clone, Default)]
pub struct StreamsConfig {
    entries: BTreeMap<String, String>,
}

impl StreamsConfig {
    /// A config with `application.id` and `bootstrap.servers`.
    pub fn new(application_id: &str, bootstrap_servers: &str) -> Self {
        StreamsConfig::default()
            .set("application.id", application_id)
            .set("bootstrap.servers", bootstrap_servers)
    }

    /// Sets an entry (Kafka Streams' names; `consumer.`, `producer.` and `admin.`
    /// prefixes pass a setting to that client).
    pub fn set(mut self, key: &str, value: &str) -> Self {
        self.entries.insert(key.to_string(), value.to_string());
        self
    }

    /// An entry as set.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.entries.get(key).map(String::as_str)
    }

    fn required(&self, key: &str) -> Result<&str> {
        self.get(key).ok_or_else(|| StreamsError::Config {
            key: key.to_string(),
            reason: "required".into(),
        })
    }

    /// `application.id`: the consumer group, the prefix of internal topics, the state
    /// directory's name.
    pub fn application_id(&self) -> Result<&str> {
        self.required("application.id")
    }

    /// `bootstrap.servers`.
    pub fn bootstrap_servers(&self) -> Result<&str> {
        self.required("bootstrap.servers")
    }

    /// `state.dir` (default: `<tmp>/kafka-streams`).
    pub fn state_dir(&self) -> PathBuf {
        self.get("state.dir")
            .map(PathBuf::from)
            .unwrap_or_else(|| std::env::temp_dir().join("kafka-streams"))
    }

    /// `processing.guarantee` (default `at_least_once`).
    pub fn processing_guarantee(&self) -> Result<ProcessingGuarantee> {
        match self.get("processing.guarantee").unwrap_or("at_least_once") {
            "at_least_once" => Ok(ProcessingGuarantee::AtLeastOnce),
            "exactly_once_v2" | "exactly_once_beta" => Ok(ProcessingGuarantee::ExactlyOnceV2),
            other => Err(StreamsError::Config {
                key: "processing.guarantee".into(),
                reason: format!("unknown value {other:?} (at_least_once | exactly_once_v2)"),
            }),
        }
    }

    /// `commit.interval.ms` (default 30000, or 100 under exactly-once, as Kafka).
    pub fn commit_interval(&self) -> Result<Duration> {
        match self.get("commit.interval.ms") {
            Some(v) => {
                v.parse::<u64>()
                    .map(Duration::from_millis)
                    .map_err(|e| StreamsError::Config {
                        key: "commit.interval.ms".into(),
                        reason: e.to_string(),
                    })
            }
            None => Ok(match self.processing_guarantee()? {
                ProcessingGuarantee::AtLeastOnce => Duration::from_millis(30_000),
                ProcessingGuarantee::ExactlyOnceV2 => Duration::from_millis(100),
            }),
        }
    }

    /// `default.deserialization.exception.handler` (default log-and-fail).
    pub fn deserialization_handler(&self) -> Result<DeserializationHandler> {
        match self.get("default.deserialization.exception.handler") {
            None => Ok(DeserializationHandler::LogAndFail),
            Some(v) if v == "log-and-continue" || v.ends_with("LogAndContinueExceptionHandler") => {
                Ok(DeserializationHandler::LogAndContinue)
            }
            Some(v) if v == "log-and-fail" || v.ends_with("LogAndFailExceptionHandler") => {
                Ok(DeserializationHandler::LogAndFail)
            }
            Some(other) => Err(StreamsError::Config {
                key: "default.deserialization.exception.handler".into(),
                reason: format!("unknown handler {other:?} (log-and-continue | log-and-fail)"),
            }),
        }
    }

    /// Entries with `prefix` (e.g. `"producer."`), prefix removed.
    pub(crate) fn prefixed(&self, prefix: &str) -> Vec<(String, String)> {
        self.entries
            .iter()
            .filter_map(|(k, v)| k.strip_prefix(prefix).map(|k| (k.to_string(), v.clone())))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_kafka_names() {
        let c = StreamsConfig::new("app", "b:1")
            .set("processing.guarantee", "exactly_once_v2")
            .set(
                "default.deserialization.exception.handler",
                "org.apache.kafka.streams.errors.LogAndContinueExceptionHandler",
            )
            .set("producer.linger.ms", "5");
        assert_eq!(
            c.processing_guarantee().unwrap(),
            ProcessingGuarantee::ExactlyOnceV2
        );
        assert_eq!(c.commit_interval().unwrap(), Duration::from_millis(100));
        assert_eq!(
            c.deserialization_handler().unwrap(),
            DeserializationHandler::LogAndContinue
        );
        assert_eq!(
            c.prefixed("producer."),
            vec![("linger.ms".to_string(), "5".to_string())]
        );
        assert!(StreamsConfig::default().application_id().is_err());
        assert!(c
            .clone()
            .set("processing.guarantee", "twice")
            .processing_guarantee()
            .is_err());
    }
}
