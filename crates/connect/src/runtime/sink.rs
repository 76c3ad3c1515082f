//! A sink task's thread: consume (group `connect-<connector>`, manual commits), convert
//! and transform each record, hand the batch to the task, flush it, and only then
//! commit the consumed offsets (at-least-once). Records that fail conversion or a
//! transform go through the error handler (skip + DLQ, or fail the task).

use std::collections::BTreeMap;
use std::time::Duration;

use gregor_connect_api::config::{get_list, get_str};
use gregor_connect_api::{ConnectRecord, Header as ConnectHeader, SinkRecord, SinkTask};
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::message::{BorrowedMessage, Headers, Message};
use rdkafka::{Offset, TopicPartitionList};

use super::errors::{RawRecord, Stage};
use super::task::{trace, TaskContext, TaskState};
use crate::transforms::RecordContext;

/// The sink connector's consumer group, Kafka's naming.
pub fn group_id(connector: &str) -> String {
    format!("connect-{connector}")
}

const MAX_BATCH: usize = 500;

/// Runs until stopped or failed.
pub fn run(ctx: TaskContext, mut task: Box<dyn SinkTask>) {
    let shared = ctx.shared.clone();
    let consumer: BaseConsumer = match ctx
        .client
        .clone()
        .set("group.id", group_id(&ctx.connector))
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .set(
            "client.id",
            format!("connector-consumer-{}-{}", ctx.connector, ctx.task_id),
        )
        // Static membership (KIP-345): a task restarted on the same worker (a restart, or
        // the worker killed and started again) takes its partitions back at once instead
        // of waiting for the dead member's session to time out.
        .set(
            "group.instance.id",
            format!("{}-{}-{}", ctx.worker_id, ctx.connector, ctx.task_id),
        )
        .set("session.timeout.ms", "10000")
        .create()
    {
        Ok(c) => c,
        Err(e) => {
            shared.fail(format!(
                "org.apache.kafka.connect.errors.ConnectException: cannot create consumer: {e}"
            ));
            return;
        }
    };
    let mut topics = get_list(&ctx.task_props, "topics");
    if let Some(re) = get_str(&ctx.task_props, "topics.regex").filter(|r| !r.is_empty()) {
        // librdkafka treats a subscription starting with ^ as a regex.
        topics.push(if re.starts_with('^') {
            re.to_string()
        } else {
            format!("^{re}")
        });
    }
    let refs: Vec<&str> = topics.iter().map(String::as_str).collect();
    if let Err(e) = consumer.subscribe(&refs) {
        shared.fail(format!(
            "org.apache.kafka.connect.errors.ConnectException: cannot subscribe: {e}"
        ));
        return;
    }
    if let Err(e) = task.start(&ctx.task_props) {
        shared.fail(trace(&e));
        return;
    }
    shared.set(TaskState::Running);
    let mut paused_partitions: Option<TopicPartitionList> = None;
    while !shared.stopping() {
        if shared.paused() {
            if paused_partitions.is_none() {
                if let Ok(a) = consumer.assignment() {
                    let _ = consumer.pause(&a);
                    paused_partitions = Some(a);
                }
            }
            shared.set(TaskState::Paused);
            // Keep polling so the group membership stays alive; nothing is returned.
            let _ = consumer.poll(Duration::from_millis(100));
            continue;
        }
        if let Some(p) = paused_partitions.take() {
            let _ = consumer.resume(&p);
            shared.set(TaskState::Running);
        }
        if let Err(t) = round(&ctx, &consumer, task.as_mut()) {
            shared.fail(t);
            break;
        }
    }
    task.stop();
}

/// One poll-put-flush-commit round.
fn round(
    ctx: &TaskContext,
    consumer: &BaseConsumer,
    task: &mut dyn SinkTask,
) -> Result<(), String> {
    let mut batch = Vec::new();
    let mut next: BTreeMap<(String, i32), i64> = BTreeMap::new();
    let mut timeout = Duration::from_millis(200);
    while batch.len() < MAX_BATCH {
        let Some(msg) = consumer.poll(timeout) else {
            break;
        };
        timeout = Duration::ZERO;
        let msg = match msg {
            Ok(m) => m,
            // librdkafka reports transient conditions (a subscribed topic that does not
            // exist yet, a broker restart) as errors and keeps retrying; as Kafka
            // Connect's consumer, the task waits rather than fails.
            Err(e) => {
                tracing::warn!(connector = %ctx.connector, task = ctx.task_id, "consumer: {e}");
                break;
            }
        };
        next.insert((msg.topic().to_string(), msg.partition()), msg.offset() + 1);
        if let Some(r) = convert(ctx, &msg)? {
            batch.push(r);
        }
    }
    if next.is_empty() {
        return Ok(());
    }
    if !batch.is_empty() {
        task.put(batch).map_err(|e| trace(&e))?;
    }
    task.flush().map_err(|e| trace(&e))?;
    ctx.errors.flush()?;
    let mut tpl = TopicPartitionList::new();
    for ((t, p), o) in &next {
        tpl.add_partition_offset(t, *p, Offset::Offset(*o))
            .map_err(|e| format!("org.apache.kafka.connect.errors.ConnectException: {e}"))?;
    }
    consumer.commit(&tpl, CommitMode::Sync).map_err(|e| {
        format!("org.apache.kafka.connect.errors.ConnectException: offset commit failed: {e}")
    })
}

/// A consumed message as a sink record, `None` when it was skipped (error tolerated or
/// filtered out).
fn convert(ctx: &TaskContext, msg: &BorrowedMessage<'_>) -> Result<Option<SinkRecord>, String> {
    let headers: Vec<(String, Option<Vec<u8>>)> = msg
        .headers()
        .map(|hs| {
            hs.iter()
                .map(|h| (h.key.to_string(), h.value.map(<[u8]>::to_vec)))
                .collect()
        })
        .unwrap_or_default();
    let raw = RawRecord {
        topic: msg.topic(),
        partition: msg.partition(),
        offset: msg.offset(),
        key: msg.key(),
        value: msg.payload(),
        headers: headers.clone(),
    };
    let (key_schema, key) = match ctx.key_converter.to_connect(msg.topic(), msg.key()) {
        Ok(k) => k,
        Err(e) => {
            return ctx
                .errors
                .handle(Stage::KeyConverter, &e, Some(&raw))
                .map(|_| None)
        }
    };
    let (value_schema, value) = match ctx.value_converter.to_connect(msg.topic(), msg.payload()) {
        Ok(v) => v,
        Err(e) => {
            return ctx
                .errors
                .handle(Stage::ValueConverter, &e, Some(&raw))
                .map(|_| None)
        }
    };
    let record = ConnectRecord {
        topic: msg.topic().to_string(),
        kafka_partition: Some(msg.partition()),
        key_schema,
        key,
        value_schema,
        value,
        timestamp: msg.timestamp().to_millis(),
        headers: headers
            .into_iter()
            .map(|(key, value)| ConnectHeader { key, value })
            .collect(),
    };
    let rc = RecordContext {
        kafka_offset: Some(msg.offset()),
    };
    match ctx.chain.apply(record, &rc) {
        Ok(Some(record)) => Ok(Some(SinkRecord {
            record,
            kafka_offset: msg.offset(),
        })),
        Ok(None) => Ok(None),
        Err((_, e)) => ctx
            .errors
            .handle(Stage::Transformation, &e, Some(&raw))
            .map(|_| None),
    }
}
