//! Record-level error handling, after Kafka's `RetryWithToleranceOperator` minus
//! retries: `errors.tolerance` (`none` fails the task, `all` skips the record),
//! `errors.log.enable` / `errors.log.include.messages`, and for sinks the dead letter
//! queue (`errors.deadletterqueue.topic.name`) with the original key, value and headers
//! plus `__connect.errors.*` context headers when
//! `errors.deadletterqueue.context.headers.enable` is true.

use std::time::Duration;

use gregor_connect_api::config::{get_bool, get_str};
use gregor_connect_api::{ConnectError, Props};
use rdkafka::config::ClientConfig;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};

/// Where in the pipeline a record failed (Kafka's `Stage`).
#[derive(Clone, Copy, Debug)]
pub enum Stage {
    KeyConverter,
    ValueConverter,
    Transformation,
}

impl Stage {
    fn name(self) -> &'static str {
        match self {
            Stage::KeyConverter => "KEY_CONVERTER",
            Stage::ValueConverter => "VALUE_CONVERTER",
            Stage::Transformation => "TRANSFORMATION",
        }
    }
}

/// The consumed record a sink failed on, as it was in Kafka.
pub struct RawRecord<'a> {
    pub topic: &'a str,
    pub partition: i32,
    pub offset: i64,
    pub key: Option<&'a [u8]>,
    pub value: Option<&'a [u8]>,
    pub headers: Vec<(String, Option<Vec<u8>>)>,
}

struct Dlq {
    topic: String,
    context_headers: bool,
    producer: BaseProducer,
}

/// One task's error policy.
pub struct ErrorHandler {
    connector: String,
    task_id: u32,
    tolerate_all: bool,
    log: bool,
    log_messages: bool,
    dlq: Option<Dlq>,
}

/// The error-handling settings every connector accepts.
pub fn validate(props: &Props, sink: bool) -> Vec<String> {
    let mut errs = Vec::new();
    if let Some(t) = get_str(props, "errors.tolerance") {
        if t != "none" && t != "all" {
            errs.push(format!(
                "Invalid value {t} for configuration errors.tolerance: String must be one of: none, all"
            ));
        }
    }
    if !sink && get_str(props, "errors.deadletterqueue.topic.name").is_some_and(|t| !t.is_empty()) {
        errs.push("The dead letter queue (errors.deadletterqueue.topic.name) is only supported for sink connectors".into());
    }
    errs
}

impl ErrorHandler {
    pub fn new(
        connector: &str,
        task_id: u32,
        props: &Props,
        client: &ClientConfig,
    ) -> Result<Self, ConnectError> {
        let dlq =
            match get_str(props, "errors.deadletterqueue.topic.name").filter(|t| !t.is_empty()) {
                None => None,
                Some(topic) => {
                    let producer = client.clone().set("acks", "all").create().map_err(|e| {
                        ConnectError::Other(format!(
                            "cannot create the dead letter queue producer: {e}"
                        ))
                    })?;
                    Some(Dlq {
                        topic: topic.to_string(),
                        context_headers: get_bool(
                            props,
                            "errors.deadletterqueue.context.headers.enable",
                            false,
                        ),
                        producer,
                    })
                }
            };
        Ok(ErrorHandler {
            connector: connector.to_string(),
            task_id,
            tolerate_all: get_str(props, "errors.tolerance") == Some("all"),
            log: get_bool(props, "errors.log.enable", false),
            log_messages: get_bool(props, "errors.log.include.messages", false),
            dlq,
        })
    }

    /// Handles one failed record: `Ok` to skip it and go on, `Err(trace)` to fail the
    /// task (tolerance `none`).
    pub fn handle(
        &self,
        stage: Stage,
        err: &ConnectError,
        raw: Option<&RawRecord<'_>>,
    ) -> Result<(), String> {
        if !self.tolerate_all {
            return Err(format!(
                "org.apache.kafka.connect.errors.ConnectException: Tolerance exceeded in error handler\nCaused by: {}: {err}",
                err.class_name()
            ));
        }
        if self.log {
            match (raw, self.log_messages) {
                (Some(r), true) => tracing::error!(
                    connector = %self.connector, task = self.task_id,
                    "Error encountered in task {}-{}. Executing stage '{}' with class '{}', where consumed record is {{topic='{}', partition={}, offset={}}}: {err}",
                    self.connector, self.task_id, stage.name(), err.class_name(), r.topic, r.partition, r.offset
                ),
                _ => tracing::error!(
                    "Error encountered in task {}-{}. Executing stage '{}': {err}",
                    self.connector,
                    self.task_id,
                    stage.name()
                ),
            }
        }
        if let (Some(dlq), Some(r)) = (&self.dlq, raw) {
            let mut headers = OwnedHeaders::new();
            for (k, v) in &r.headers {
                headers = headers.insert(Header {
                    key: k,
                    value: v.as_deref(),
                });
            }
            if dlq.context_headers {
                let ctx: Vec<(&str, String)> = vec![
                    ("__connect.errors.topic", r.topic.to_string()),
                    ("__connect.errors.partition", r.partition.to_string()),
                    ("__connect.errors.offset", r.offset.to_string()),
                    ("__connect.errors.connector.name", self.connector.clone()),
                    ("__connect.errors.task.id", self.task_id.to_string()),
                    ("__connect.errors.stage", stage.name().to_string()),
                    (
                        "__connect.errors.class.name",
                        stage_class(stage).to_string(),
                    ),
                    (
                        "__connect.errors.exception.class.name",
                        err.class_name().to_string(),
                    ),
                    ("__connect.errors.exception.message", err.to_string()),
                    (
                        "__connect.errors.exception.stacktrace",
                        format!("{}: {err}", err.class_name()),
                    ),
                ];
                for (k, v) in &ctx {
                    headers = headers.insert(Header {
                        key: k,
                        value: Some(v.as_bytes()),
                    });
                }
            }
            let mut record: BaseRecord<'_, [u8], [u8]> =
                BaseRecord::to(&dlq.topic).headers(headers);
            if let Some(k) = r.key {
                record = record.key(k);
            }
            if let Some(v) = r.value {
                record = record.payload(v);
            }
            if let Err((e, _)) = dlq.producer.send(record) {
                tracing::error!("cannot write to the dead letter queue {}: {e}", dlq.topic);
            }
            dlq.producer.poll(Duration::ZERO);
        }
        Ok(())
    }

    /// Waits until the dead letter queue has every record handed to it (before the
    /// sink commits the offsets of the records it skipped).
    pub fn flush(&self) -> Result<(), String> {
        if let Some(dlq) = &self.dlq {
            dlq.producer
                .flush(Duration::from_secs(30))
                .map_err(|e| format!("org.apache.kafka.connect.errors.ConnectException: cannot write to the dead letter queue {}: {e}", dlq.topic))?;
        }
        Ok(())
    }
}

fn stage_class(stage: Stage) -> &'static str {
    match stage {
        Stage::KeyConverter | Stage::ValueConverter => "org.apache.kafka.connect.storage.Converter",
        Stage::Transformation => "org.apache.kafka.connect.transforms.Transformation",
    }
}
