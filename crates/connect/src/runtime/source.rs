//! A source task's thread: poll the task, transform and convert each record, produce
//! it, and only after Kafka acknowledged every record of the batch store the batch's
//! source offsets (at-least-once: a crash replays at most the unacknowledged batch).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use gregor_connect_api::{SourceRecord, SourceTask};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, Producer, ProducerContext};
use rdkafka::ClientContext;
use serde_json::{Map, Value as J};

use super::errors::Stage;
use super::task::{trace, TaskContext, TaskState};
use crate::transforms::RecordContext;

/// Counts failed deliveries so a batch's offsets are stored only when none failed.
#[derive(Clone, Default)]
struct Deliveries {
    failed: Arc<AtomicUsize>,
    last_error: Arc<Mutex<Option<String>>>,
}

impl ClientContext for Deliveries {}

impl ProducerContext for Deliveries {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        if let Err((e, _)) = result {
            self.failed.fetch_add(1, Ordering::SeqCst);
            *self.last_error.lock().unwrap_or_else(|p| p.into_inner()) = Some(e.to_string());
        }
    }
}

type JsonMap = Map<String, J>;

/// Runs until stopped or failed.
pub fn run(ctx: TaskContext, mut task: Box<dyn SourceTask>) {
    let shared = ctx.shared.clone();
    let deliveries = Deliveries::default();
    let producer: BaseProducer<Deliveries> = match ctx
        .client
        .clone()
        .set("acks", "all")
        .set("enable.idempotence", "true")
        .set("linger.ms", "5")
        .create_with_context(deliveries.clone())
    {
        Ok(p) => p,
        Err(e) => {
            shared.fail(format!(
                "org.apache.kafka.connect.errors.ConnectException: cannot create producer: {e}"
            ));
            return;
        }
    };
    let offsets = ctx.offsets.clone();
    let name = ctx.connector.clone();
    let reader = move |p: &JsonMap| offsets.get(&name, p);
    if let Err(e) = task.start(&ctx.task_props, &reader) {
        shared.fail(trace(&e));
        return;
    }
    shared.set(TaskState::Running);
    while !shared.stopping() {
        if shared.idle_if_paused() {
            continue;
        }
        let records = match task.poll() {
            Ok(r) => r,
            Err(e) => {
                shared.fail(trace(&e));
                break;
            }
        };
        if records.is_empty() {
            continue;
        }
        match send_batch(&ctx, &producer, &deliveries, records) {
            Ok(()) => {
                if let Err(e) = task.commit() {
                    shared.fail(trace(&e));
                    break;
                }
            }
            Err(t) => {
                shared.fail(t);
                break;
            }
        }
    }
    task.stop();
    let _ = producer.flush(Duration::from_secs(10));
}

fn send_batch(
    ctx: &TaskContext,
    producer: &BaseProducer<Deliveries>,
    deliveries: &Deliveries,
    records: Vec<SourceRecord>,
) -> Result<(), String> {
    let failed_before = deliveries.failed.load(Ordering::SeqCst);
    // The last offset per source partition, stored once the batch is acknowledged.
    let mut latest: BTreeMap<String, (JsonMap, JsonMap)> = BTreeMap::new();
    for sr in records {
        latest.insert(
            J::Object(sr.source_partition.clone()).to_string(),
            (sr.source_partition, sr.source_offset),
        );
        let record = match ctx.chain.apply(sr.record, &RecordContext::default()) {
            Ok(Some(r)) => r,
            Ok(None) => continue,
            Err((_, e)) => {
                ctx.errors.handle(Stage::Transformation, &e, None)?;
                continue;
            }
        };
        let key = match ctx.key_converter.from_connect(
            &record.topic,
            record.key_schema.as_ref(),
            &record.key,
        ) {
            Ok(k) => k,
            Err(e) => {
                ctx.errors.handle(Stage::KeyConverter, &e, None)?;
                continue;
            }
        };
        let value = match ctx.value_converter.from_connect(
            &record.topic,
            record.value_schema.as_ref(),
            &record.value,
        ) {
            Ok(v) => v,
            Err(e) => {
                ctx.errors.handle(Stage::ValueConverter, &e, None)?;
                continue;
            }
        };
        let mut headers = OwnedHeaders::new();
        for h in &record.headers {
            headers = headers.insert(Header {
                key: &h.key,
                value: h.value.as_deref(),
            });
        }
        let mut out: BaseRecord<'_, [u8], [u8]> = BaseRecord::to(&record.topic).headers(headers);
        if let Some(k) = key.as_deref() {
            out = out.key(k);
        }
        if let Some(v) = value.as_deref() {
            out = out.payload(v);
        }
        if let Some(p) = record.kafka_partition {
            out = out.partition(p);
        }
        if let Some(ts) = record.timestamp {
            out = out.timestamp(ts);
        }
        loop {
            match producer.send(out) {
                Ok(()) => break,
                Err((e, back)) => {
                    if e.rdkafka_error_code() == Some(rdkafka::types::RDKafkaErrorCode::QueueFull) {
                        producer.poll(Duration::from_millis(50));
                        out = back;
                    } else {
                        return Err(format!("org.apache.kafka.connect.errors.ConnectException: cannot produce to {}: {e}", record.topic));
                    }
                }
            }
        }
        producer.poll(Duration::ZERO);
    }
    producer.flush(Duration::from_secs(60)).map_err(|e| {
        format!("org.apache.kafka.connect.errors.ConnectException: records not acknowledged: {e}")
    })?;
    if deliveries.failed.load(Ordering::SeqCst) != failed_before {
        let why = deliveries
            .last_error
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
            .unwrap_or_default();
        return Err(format!(
            "org.apache.kafka.connect.errors.ConnectException: Unrecoverable exception from producer send callback: {why}"
        ));
    }
    ctx.offsets
        .put(
            &ctx.connector,
            latest.into_values().map(|(p, o)| (p, Some(o))).collect(),
        )
        .map_err(|e| format!("org.apache.kafka.connect.errors.ConnectException: {e}"))
}
