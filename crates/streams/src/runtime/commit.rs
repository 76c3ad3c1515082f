//! Committing a commit interval's work, and the exactly-once recovery when a commit fails
//! (split out of `kafka.rs`, which owns the [`Engine`] and the stream thread).
//!
//! At-least-once flushes the producer, persists the stores with their checkpoints, then
//! commits the input offsets. Exactly-once sends the offsets to the transaction and
//! commits it, then persists the stores; a failed commit aborts (or replaces a fenced
//! producer), drops every task's uncommitted state and rewinds the input to the committed
//! offsets.

use std::time::Instant;

use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext};
use rdkafka::error::KafkaError;
use rdkafka::producer::Producer;
use rdkafka::{Offset, TopicPartitionList};

use super::kafka::{Engine, ProducerCtx, CLIENT_TIMEOUT, STREAM_TIME_PREFIX};
use super::task::TaskId;
use crate::config::ProcessingGuarantee;
use crate::error::{Result, StreamsError};

/// Exactly-once commits that may fail in a row, each rewinding the tasks, before the
/// application stops.
const MAX_FAILED_COMMITS: u32 = 5;

impl Engine {
    fn delivery_error(&self) -> Result<()> {
        match self
            .deliveries
            .error
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
        {
            Some(e) => Err(StreamsError::NotRunning(format!("a produce failed: {e}"))),
            None => Ok(()),
        }
    }

    /// Takes the changelog offsets the producer reported into the tasks' checkpoints.
    fn note_changelog_offsets(&mut self) {
        let delivered = self
            .deliveries
            .offsets
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        for task in self.tasks.values_mut() {
            for (store, topic, _) in task.restore_plan() {
                if let Some(&o) = delivered.get(&(topic, task.id.partition)) {
                    task.changelog_offsets.insert(store, o);
                }
            }
        }
    }

    /// Commits what was processed. Under exactly-once, a failed commit aborts and, with
    /// `reopen`, rewinds the tasks (see [`rewind`](Self::rewind)); without it (the
    /// partitions are being revoked) the tasks are only dropped.
    pub(super) fn commit<C: ConsumerContext>(
        &mut self,
        consumer: &BaseConsumer<C>,
        reopen: bool,
    ) -> Result<()> {
        if self.offsets.is_empty() && !self.in_txn {
            return Ok(());
        }
        let tpl = self.offsets_to_commit()?;
        if self.guarantee == ProcessingGuarantee::AtLeastOnce {
            self.producer.flush(CLIENT_TIMEOUT)?;
            self.delivery_error()?;
            self.note_changelog_offsets();
            for t in self.tasks.values_mut() {
                t.flush()?;
            }
            if tpl.count() > 0 {
                consumer.commit(&tpl, CommitMode::Sync)?;
            }
            self.offsets.clear();
            return Ok(());
        }
        match self.commit_transaction(consumer, &tpl) {
            Ok(()) => {
                self.failed_commits = 0;
                self.note_changelog_offsets();
                for t in self.tasks.values_mut() {
                    t.flush()?;
                }
                self.offsets.clear();
                Ok(())
            }
            Err(e) => self.rewind(consumer, e, reopen),
        }
    }

    /// The input offsets to commit, each with its task's stream time in the metadata.
    fn offsets_to_commit(&self) -> Result<TopicPartitionList> {
        let mut tpl = TopicPartitionList::new();
        for ((t, p), o) in &self.offsets {
            tpl.add_partition_offset(t, *p, Offset::Offset(*o))?;
            // Kafka Streams' way: the task's stream time rides in the offset metadata.
            let stream_time = self
                .sub_of_topic(t)
                .and_then(|sub| self.tasks.get(&TaskId { sub, partition: *p }))
                .map(|task| task.stream_time)
                .filter(|&st| st != i64::MIN);
            if let (Some(st), Some(mut e)) = (stream_time, tpl.find_partition(t, *p)) {
                e.set_metadata(format!("{STREAM_TIME_PREFIX}{st}"));
            }
        }
        Ok(tpl)
    }

    /// Flushes the transaction's records and commits it with the input offsets. Retriable
    /// errors (a coordinator moving or briefly unavailable) are retried until the client
    /// timeout, as librdkafka allows for both calls.
    fn commit_transaction<C: ConsumerContext>(
        &mut self,
        consumer: &BaseConsumer<C>,
        tpl: &TopicPartitionList,
    ) -> Result<()> {
        self.producer.flush(CLIENT_TIMEOUT)?;
        self.delivery_error()?;
        if !self.in_txn {
            return Ok(());
        }
        let meta = consumer
            .group_metadata()
            .ok_or_else(|| StreamsError::NotRunning("no consumer group metadata".into()))?;
        let deadline = Instant::now() + CLIENT_TIMEOUT;
        loop {
            let mut attempt = Ok(());
            if tpl.count() > 0 {
                attempt = self
                    .producer
                    .send_offsets_to_transaction(tpl, &meta, CLIENT_TIMEOUT);
            }
            let attempt = attempt.and_then(|()| self.producer.commit_transaction(CLIENT_TIMEOUT));
            match attempt {
                Ok(()) => {
                    self.in_txn = false;
                    return Ok(());
                }
                Err(KafkaError::Transaction(e))
                    if e.is_retriable() && Instant::now() < deadline =>
                {
                    tracing::warn!(error = %e, "transaction commit failed; retrying");
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// A failed exactly-once commit: abort the transaction (or, if this producer was
    /// fenced or failed fatally, replace it: the new one's InitProducerId fences the old
    /// epoch), drop every task's uncommitted state and read the input again from the
    /// committed offsets, as Kafka Streams does for a corrupted or migrated task. The
    /// application stops only when commits keep failing.
    fn rewind<C: ConsumerContext>(
        &mut self,
        consumer: &BaseConsumer<C>,
        cause: StreamsError,
        reopen: bool,
    ) -> Result<()> {
        self.failed_commits += 1;
        if self.failed_commits > MAX_FAILED_COMMITS {
            return Err(cause);
        }
        tracing::warn!(error = %cause, "exactly-once commit failed: aborting and rewinding to the last commit");
        if self.in_txn {
            if let Err(e) = self.producer.abort_transaction(CLIENT_TIMEOUT) {
                tracing::warn!(error = %e, "abort failed: replacing the producer");
                self.producer = self
                    .producer_config
                    .create_with_context(ProducerCtx(self.deliveries.clone()))?;
                self.producer.init_transactions(CLIENT_TIMEOUT)?;
            }
        }
        self.in_txn = false;
        self.offsets.clear();
        self.deliveries
            .error
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        // Tasks reopen from their local stores and changelogs (read committed): the
        // state as of the last commit.
        self.close_all_tasks();
        if !reopen {
            return Ok(());
        }
        let assignment = consumer.assignment()?;
        self.assign(consumer, &assignment)?;
        let committed = consumer.committed_offsets(assignment, CLIENT_TIMEOUT)?;
        for e in committed.elements() {
            let to = match e.offset() {
                Offset::Offset(o) => Offset::Offset(o),
                _ => Offset::Beginning,
            };
            consumer.seek(e.topic(), e.partition(), to, CLIENT_TIMEOUT)?;
        }
        Ok(())
    }
}
