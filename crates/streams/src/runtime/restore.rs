//! Restoration: a new task reads each store's changelog partition from right after its
//! local checkpoint (from the beginning when the state directory is missing) up to the end
//! (the last stable offset: read_committed), before it processes any record.

use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{ClientContext, Offset, TopicPartitionList};

use super::task::Task;
use crate::error::{Result, StreamsError};

/// The restore consumer's context: reaching the end of a partition is how restoration
/// ends, not an error worth logging.
struct RestoreCtx;
impl ClientContext for RestoreCtx {
    fn error(&self, error: KafkaError, reason: &str) {
        if error.rdkafka_error_code() != Some(RDKafkaErrorCode::PartitionEOF) {
            tracing::warn!(%error, reason, "restore consumer error");
        }
    }
}
impl ConsumerContext for RestoreCtx {}

const RESTORE_TIMEOUT: Duration = Duration::from_secs(120);

/// Restores every store of `task`; returns the number of records applied.
pub(crate) fn restore_task(task: &mut Task, base: &ClientConfig) -> Result<u64> {
    let mut total = 0;
    let partition = task.id.partition;
    for (store, topic, from) in task.restore_plan() {
        let consumer: BaseConsumer<RestoreCtx> = base
            .clone()
            .set("enable.auto.commit", "false")
            .set("enable.partition.eof", "true")
            .set("isolation.level", "read_committed")
            .set("group.id", format!("{topic}-restore"))
            .create_with_context(RestoreCtx)?;
        let (low, high) = consumer.fetch_watermarks(&topic, partition, Duration::from_secs(30))?;
        if from >= high {
            continue;
        }
        let start = from.max(low);
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset(&topic, partition, Offset::Offset(start))?;
        consumer.assign(&tpl)?;
        let deadline = Instant::now() + RESTORE_TIMEOUT;
        loop {
            if Instant::now() > deadline {
                return Err(StreamsError::store(
                    &store,
                    format!("restoring {topic}-{partition} timed out"),
                ));
            }
            match consumer.poll(Duration::from_millis(200)) {
                None => {}
                Some(Err(KafkaError::PartitionEOF(_))) => break,
                Some(Err(e)) => {
                    tracing::warn!(error = %e, %topic, "restore consumer error");
                    if matches!(
                        e.rdkafka_error_code(),
                        Some(RDKafkaErrorCode::UnknownTopicOrPartition)
                    ) {
                        return Err(e.into());
                    }
                }
                Some(Ok(m)) => {
                    let Some(key) = m.key() else { continue };
                    task.restore(&store, key, m.payload().map(<[u8]>::to_vec), m.offset());
                    total += 1;
                    if m.offset() + 1 >= high {
                        break;
                    }
                }
            }
        }
    }
    task.flush()?;
    Ok(total)
}
