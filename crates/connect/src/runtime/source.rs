//! A source task's thread: poll the task, transform and convert each record, produce
//! it, and only after Kafka acknowledged every record of the batch store the batch's
//! source offsets (at-least-once: a crash replays at most the unacknowledged batch).
//!
//! Exactly-once (KIP-618, `TaskContext::eos`): the producer is transactional (the
//! task's transactional id), initialising it fences the previous generation's producer
//! of the same task and aborts its open transaction; the task then reads the committed
//! offsets and starts. Each transaction holds the records of one or more polls and,
//! written last by the same producer, their source offsets in the offsets topic, so
//! records and offsets commit together or not at all.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use gregor_connect_api::{SourceRecord, SourceTask};
use rdkafka::error::KafkaError;
use rdkafka::message::ToBytes;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, Producer, ProducerContext};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::ClientContext;
use serde_json::{Map, Value as J};

use super::eos::TransactionBoundary;
use super::errors::Stage;
use super::store::offset_record;
use super::task::{trace, EosTask, TaskContext, TaskState};
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

/// The last offset per source partition (keyed by the partition's JSON text).
type Latest = BTreeMap<String, (JsonMap, JsonMap)>;

const CONNECT_EXCEPTION: &str = "org.apache.kafka.connect.errors.ConnectException";
/// How long a transactional call (init, commit, abort) may take.
const TXN_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a starting exactly-once task waits for transactions open on the offsets
/// topic to end (a fenced predecessor's is aborted at once; another task's ends with
/// its batch).
const OFFSETS_WAIT: Duration = Duration::from_secs(60);

/// Runs until stopped or failed.
pub fn run(ctx: TaskContext, task: Box<dyn SourceTask>) {
    match ctx.eos.clone() {
        Some(eos) => run_exactly_once(ctx, task, &eos),
        None => run_at_least_once(ctx, task),
    }
}

fn run_at_least_once(ctx: TaskContext, mut task: Box<dyn SourceTask>) {
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
            shared.fail(format!("{CONNECT_EXCEPTION}: cannot create producer: {e}"));
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

/// A transactional call's error as a Java-style trace; a fenced producer says so.
fn txn_error(what: &str, e: &KafkaError) -> String {
    txn_trace(what, e.rdkafka_error_code(), e)
}

fn txn_trace(what: &str, code: Option<RDKafkaErrorCode>, e: &dyn std::fmt::Display) -> String {
    let fenced = matches!(
        code,
        Some(RDKafkaErrorCode::Fenced)
            | Some(RDKafkaErrorCode::ProducerFenced)
            | Some(RDKafkaErrorCode::InvalidProducerEpoch)
    );
    if fenced {
        format!("org.apache.kafka.common.errors.ProducerFencedException: {what}: this task's producer was fenced by a newer instance of the task: {e}")
    } else {
        format!("{CONNECT_EXCEPTION}: {what}: {e}")
    }
}

/// The open transaction: when it began and the offsets of what it holds.
struct OpenTxn {
    since: Instant,
    offsets: Latest,
    failed_before: usize,
}

fn run_exactly_once(ctx: TaskContext, mut task: Box<dyn SourceTask>, eos: &EosTask) {
    let shared = ctx.shared.clone();
    let deliveries = Deliveries::default();
    let producer: BaseProducer<Deliveries> = match ctx
        .client
        .clone()
        .set("acks", "all")
        .set("enable.idempotence", "true")
        .set("linger.ms", "5")
        .set("transactional.id", &eos.transactional_id)
        .create_with_context(deliveries.clone())
    {
        Ok(p) => p,
        Err(e) => {
            shared.fail(format!(
                "{CONNECT_EXCEPTION}: cannot create transactional producer: {e}"
            ));
            return;
        }
    };
    // Zombie fencing: InitProducerId with this transactional id bumps its epoch (an
    // older producer of this task can no longer write) and aborts its open transaction.
    // In short rounds, so a stop request (a rebalance) is not held up.
    let deadline = Instant::now() + TXN_TIMEOUT;
    loop {
        match producer.init_transactions(Duration::from_secs(2)) {
            Ok(()) => break,
            Err(KafkaError::Transaction(e))
                if e.is_retriable() && !shared.stopping() && Instant::now() < deadline => {}
            // Stopped before it ran: nothing to report.
            Err(_) if shared.stopping() => return,
            Err(e) => {
                shared.fail(txn_error("cannot initialise transactions", &e));
                return;
            }
        }
    }
    tracing::debug!("{}: fenced the previous producers", eos.transactional_id);
    // Only now are the predecessor's transactions all ended: read its last committed
    // offsets.
    let stop = || shared.stopping();
    if let Err(e) = ctx
        .offsets
        .refresh_past_open_transactions(OFFSETS_WAIT, &stop)
    {
        if shared.stopping() {
            return;
        }
        shared.fail(format!(
            "{CONNECT_EXCEPTION}: cannot read the committed offsets: {e}"
        ));
        return;
    }
    let offsets = ctx.offsets.clone();
    let name = ctx.connector.clone();
    let reader = move |p: &JsonMap| offsets.get(&name, p);
    if let Err(e) = task.start(&ctx.task_props, &reader) {
        shared.fail(trace(&e));
        return;
    }
    tracing::debug!("{}: read the committed offsets", eos.transactional_id);
    shared.set(TaskState::Running);
    let mut open: Option<OpenTxn> = None;
    let mut failed = false;
    while !shared.stopping() {
        if shared.paused() {
            // Nothing stays uncommitted while paused.
            if let Some(txn) = open.take() {
                if let Err(t) = commit(&ctx, eos, &producer, &deliveries, txn, task.as_mut()) {
                    shared.fail(t);
                    failed = true;
                    break;
                }
            }
        }
        if shared.idle_if_paused() {
            continue;
        }
        let records = match task.poll() {
            Ok(r) => r,
            Err(e) => {
                shared.fail(trace(&e));
                failed = true;
                break;
            }
        };
        if !records.is_empty() {
            if open.is_none() {
                if let Err(e) = producer.begin_transaction() {
                    shared.fail(txn_error("cannot begin a transaction", &e));
                    failed = true;
                    break;
                }
                open = Some(OpenTxn {
                    since: Instant::now(),
                    offsets: Latest::new(),
                    failed_before: deliveries.failed.load(Ordering::SeqCst),
                });
            }
            if let Some(txn) = open.as_mut() {
                if let Err(t) = produce(&ctx, &producer, records, &mut txn.offsets) {
                    let _ = producer.abort_transaction(TXN_TIMEOUT);
                    shared.fail(t);
                    failed = true;
                    break;
                }
            }
        }
        let due = open.as_ref().is_some_and(|txn| match eos.boundary {
            TransactionBoundary::Interval(every) => txn.since.elapsed() >= every,
            TransactionBoundary::Poll | TransactionBoundary::Connector => true,
        });
        if due {
            if let Some(txn) = open.take() {
                if let Err(t) = commit(&ctx, eos, &producer, &deliveries, txn, task.as_mut()) {
                    shared.fail(t);
                    failed = true;
                    break;
                }
            }
        }
    }
    // A clean stop commits what was produced; after a failure the transaction is
    // aborted (or already dead if the producer was fenced).
    if let Some(txn) = open.take() {
        if failed {
            let _ = producer.abort_transaction(TXN_TIMEOUT);
        } else if let Err(t) = commit(&ctx, eos, &producer, &deliveries, txn, task.as_mut()) {
            shared.fail(t);
        }
    }
    task.stop();
}

/// Writes the transaction's source offsets to the offsets topic through the same
/// producer, commits, then records the offsets in memory and calls the task's
/// `commit`. On an error the transaction is aborted (nothing of it is visible to
/// read_committed readers).
fn commit(
    ctx: &TaskContext,
    eos: &EosTask,
    producer: &BaseProducer<Deliveries>,
    deliveries: &Deliveries,
    txn: OpenTxn,
    task: &mut dyn SourceTask,
) -> Result<(), String> {
    let updates: Vec<(JsonMap, Option<JsonMap>)> = txn
        .offsets
        .into_values()
        .map(|(p, o)| (p, Some(o)))
        .collect();
    let written = write_offsets(ctx, eos, producer, deliveries, &updates, txn.failed_before);
    if let Err(t) = written {
        let _ = producer.abort_transaction(TXN_TIMEOUT);
        return Err(t);
    }
    if let Err(e) = producer.commit_transaction(TXN_TIMEOUT) {
        let t = txn_error("cannot commit the transaction", &e);
        if let KafkaError::Transaction(re) = &e {
            if re.txn_requires_abort() {
                let _ = producer.abort_transaction(TXN_TIMEOUT);
            }
        }
        return Err(t);
    }
    ctx.offsets.remember(&ctx.connector, updates);
    task.commit().map_err(|e| trace(&e))
}

/// The transaction's last part: its source offsets to the offsets topic, then a flush
/// and a check that every record of it was delivered.
fn write_offsets(
    ctx: &TaskContext,
    eos: &EosTask,
    producer: &BaseProducer<Deliveries>,
    deliveries: &Deliveries,
    updates: &[(JsonMap, Option<JsonMap>)],
    failed_before: usize,
) -> Result<(), String> {
    for (p, o) in updates {
        let (key, value) = offset_record(&ctx.connector, p, o.as_ref());
        let mut rec: BaseRecord<'_, str, [u8]> =
            BaseRecord::to(&eos.offset_topic).key(key.as_str());
        if let Some(v) = value.as_deref() {
            rec = rec.payload(v);
        }
        send_retrying(producer, rec).map_err(|e| {
            format!(
                "{CONNECT_EXCEPTION}: cannot write offsets to {}: {e}",
                eos.offset_topic
            )
        })?;
    }
    producer
        .flush(TXN_TIMEOUT)
        .map_err(|e| txn_error("records not acknowledged", &e))?;
    if deliveries.failed.load(Ordering::SeqCst) != failed_before {
        let why = deliveries
            .last_error
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
            .unwrap_or_default();
        return Err(txn_error_text(
            producer,
            &format!("Unrecoverable exception from producer send callback: {why}"),
        ));
    }
    Ok(())
}

/// A delivery failure's trace; when the producer hit a fatal error (fenced: its
/// queued records were purged), that error.
fn txn_error_text(producer: &BaseProducer<Deliveries>, why: &str) -> String {
    match producer.client().fatal_error() {
        Some((code, reason)) => txn_trace("the transactional producer failed", Some(code), &reason),
        None => format!("{CONNECT_EXCEPTION}: {why}"),
    }
}

/// Sends one record, waiting while the producer's queue is full.
fn send_retrying<'a, K: ToBytes + ?Sized, P: ToBytes + ?Sized>(
    producer: &BaseProducer<Deliveries>,
    mut rec: BaseRecord<'a, K, P>,
) -> Result<(), KafkaError> {
    loop {
        match producer.send(rec) {
            Ok(()) => return Ok(()),
            Err((e, back)) if e.rdkafka_error_code() == Some(RDKafkaErrorCode::QueueFull) => {
                producer.poll(Duration::from_millis(50));
                rec = back;
            }
            Err((e, _)) => return Err(e),
        }
    }
}

fn send_batch(
    ctx: &TaskContext,
    producer: &BaseProducer<Deliveries>,
    deliveries: &Deliveries,
    records: Vec<SourceRecord>,
) -> Result<(), String> {
    let failed_before = deliveries.failed.load(Ordering::SeqCst);
    // The last offset per source partition, stored once the batch is acknowledged.
    let mut latest = Latest::new();
    produce(ctx, producer, records, &mut latest)?;
    producer
        .flush(Duration::from_secs(60))
        .map_err(|e| format!("{CONNECT_EXCEPTION}: records not acknowledged: {e}"))?;
    if deliveries.failed.load(Ordering::SeqCst) != failed_before {
        let why = deliveries
            .last_error
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
            .unwrap_or_default();
        return Err(format!(
            "{CONNECT_EXCEPTION}: Unrecoverable exception from producer send callback: {why}"
        ));
    }
    ctx.offsets
        .put(
            &ctx.connector,
            latest.into_values().map(|(p, o)| (p, Some(o))).collect(),
        )
        .map_err(|e| format!("{CONNECT_EXCEPTION}: {e}"))
}

/// Transforms, converts and sends a poll's records; `latest` gets each source
/// partition's last offset.
fn produce(
    ctx: &TaskContext,
    producer: &BaseProducer<Deliveries>,
    records: Vec<SourceRecord>,
    latest: &mut Latest,
) -> Result<(), String> {
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
        send_retrying(producer, out).map_err(|e| {
            format!(
                "{CONNECT_EXCEPTION}: cannot produce to {}: {e}",
                record.topic
            )
        })?;
        producer.poll(Duration::ZERO);
    }
    Ok(())
}
