//! The task that owns one group while it has anything live: it applies commands in
//! order, sleeps until the group's next deadline, appends the records each command
//! produced to the group's `__consumer_offsets` partition (waiting for the fsync the
//! flush policy asks for) before sending the answers, and unloads itself when the group
//! is idle.

use std::collections::HashMap;

use gregor_protocol::batch::{self, NewRecord};
use gregor_protocol::compression::Codec;
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::consumer::ConsumerHeartbeatResponse;
use super::coordinator::{lock, Command, Parked, Registry};
use super::records::RecordKey;
use super::replay::Loaded;
use super::state::{Effects, Group, GroupState, Idle, Reply};
use super::{GroupError, SyncResponse};
use crate::coordinator_partition::CoordinatorPartition;
use crate::util::now_ms;

/// The task that owns one group while it has anything live.
pub(super) struct Task {
    pub(super) group: Group,
    pub(super) partition: CoordinatorPartition,
    /// The registry it removes itself from, and where it leaves its offsets, when idle.
    pub(super) groups: Registry,
    pub(super) loaded: Parked,
}

/// What unloading found.
enum Unload {
    /// The task is gone from the registry (its data, if any, is in `loaded`): stop.
    Done,
    /// Commands were queued before the channel closed: the task stays, on a new
    /// channel, and serves them first.
    Stay(Vec<Command>),
}

impl Task {
    pub(super) async fn run(mut self, mut rx: mpsc::Receiver<Command>) {
        loop {
            let deadline = self.group.next_deadline();
            tokio::select! {
                c = rx.recv() => match c {
                    Some(Command::Unload) => {
                        let fx = self.group.unload();
                        finish(&mut self.group, &self.partition, fx).await;
                        return;
                    }
                    Some(c) => self.apply(c).await,
                    None => return,
                },
                _ = tokio::time::sleep_until(deadline) => {
                    let fx = self.group.on_deadline(Instant::now(), now_ms());
                    finish(&mut self.group, &self.partition, fx).await;
                }
            }
            while let Some(idle) = self.group.idle() {
                match try_unload(&self.groups, &self.loaded, &mut self.group, idle, &mut rx) {
                    Unload::Done => return,
                    Unload::Stay(queued) => {
                        for cmd in queued {
                            self.apply(cmd).await;
                        }
                    }
                }
            }
        }
    }

    async fn apply(&mut self, cmd: Command) {
        let (now, ms) = (Instant::now(), now_ms());
        let (group, partition) = (&mut self.group, &self.partition);
        match cmd {
            Command::Join(req, tx) => {
                let fx = group.join(req, tx, now, ms);
                finish(group, partition, fx).await;
            }
            Command::Sync(req, tx) => {
                let fx = group.sync(req, tx, now, ms);
                finish(group, partition, fx).await;
            }
            Command::Heartbeat {
                member,
                generation,
                tx,
            } => {
                let r = group.heartbeat(
                    &member.member_id,
                    member.group_instance_id.as_deref(),
                    generation,
                    now,
                );
                let _ = tx.send(r);
            }
            Command::Leave(members, tx) => {
                let (results, fx) = group.leave(&members, now, ms);
                finish(group, partition, fx).await;
                let _ = tx.send(results);
            }
            Command::Commit(req, tx) => {
                group.at_log_position(partition.high_watermark());
                let (results, fx) = group.commit(req, now, ms);
                let stored = write(partition, &fx.records).await;
                let _ = tx.send(stored.and(results));
            }
            Command::Fetch(wanted, member, tx) => {
                let r = group
                    .check_fetch(member.as_ref().map(|(m, e)| (m.as_str(), *e)))
                    .map(|()| group.fetch_offsets(wanted.as_deref()));
                let _ = tx.send(r);
            }
            Command::ConsumerHeartbeat(h, tx) => {
                // The member's new epoch and assignment are stored before it hears of
                // them, so a restarted coordinator answers its next heartbeat as this
                // one would have.
                let (resp, fx) = group.consumer_heartbeat(h, now, ms);
                let resp = match write(partition, &fx.records).await {
                    Ok(()) => resp,
                    Err(e) => ConsumerHeartbeatResponse {
                        error: Some(e),
                        error_message: None,
                        ..resp
                    },
                };
                let _ = tx.send(resp);
            }
            Command::ConsumerDescribe(tx) => {
                let _ = tx.send(group.consumer_describe());
            }
            Command::Unload => {
                // Handled by `run`, which stops the task.
                let fx = group.unload();
                finish(group, partition, fx).await;
            }
            Command::ForgetTopic(topic, tx) => {
                let fx = group.forget_topic(&topic);
                finish(group, partition, fx).await;
                let _ = tx.send(());
            }
            Command::ExpireOffsets(tx) => {
                let fx = group.expire_offsets_now(ms);
                finish(group, partition, fx).await;
                let _ = tx.send(());
            }
            Command::Describe(tx) => {
                let _ = tx.send(group.describe());
            }
            Command::Delete(tx) => {
                let (r, fx) = group.delete(ms);
                let stored = write(partition, &fx.records).await;
                let _ = tx.send(stored.and(r));
            }
            Command::DeleteOffsets(wanted, tx) => {
                let (r, fx) = group.delete_offsets(&wanted);
                let stored = write(partition, &fx.records).await;
                let _ = tx.send(stored.and(r));
            }
            Command::TxnCommit {
                producer_id,
                epoch,
                req,
                tx,
            } => {
                group.at_log_position(partition.high_watermark());
                let (r, fx, pending) = group.txn_commit(req, ms);
                let producer = batch::Producer {
                    id: producer_id,
                    epoch,
                    base_sequence: -1,
                    attributes: batch::ATTR_TRANSACTIONAL,
                };
                let stored = write_as(partition, &fx.records, producer).await;
                if stored.is_ok() {
                    group.add_pending(producer_id, pending);
                }
                let _ = tx.send(stored.and(r));
            }
            Command::CompleteTxn {
                producer_id,
                commit,
                tx,
            } => {
                group.complete_txn(producer_id, commit);
                let _ = tx.send(());
            }
        }
    }
}

/// Removes an idle group's task from the registry. Under the registry lock the channel
/// is closed (a sender still holding it gets its command back and looks the group up
/// again) and whatever was queued before is drained. Senders push under the same lock
/// (`GroupCoordinator::ask`), so nothing can land in the channel after the drain. If nothing was, the group's
/// offsets (for [`Idle::Park`]) go to `loaded` in the same critical section, so a lookup
/// finds either the task or the data, never neither. If something was queued, the task
/// registers a new channel and stays to serve it: no command is lost.
fn try_unload(
    groups: &Registry,
    loaded: &Parked,
    group: &mut Group,
    idle: Idle,
    rx: &mut mpsc::Receiver<Command>,
) -> Unload {
    let mut registry = lock(groups);
    rx.close();
    let mut queued = Vec::new();
    while let Ok(cmd) = rx.try_recv() {
        queued.push(cmd);
    }
    let ours = registry.get(&group.id).is_some_and(mpsc::Sender::is_closed);
    if !queued.is_empty() {
        let (tx, fresh) = mpsc::channel(256);
        *rx = fresh;
        if ours {
            registry.insert(group.id.clone(), tx);
        }
        return Unload::Stay(queued);
    }
    if ours {
        registry.remove(&group.id);
    }
    // A task no longer in the registry was dropped with its partition's leadership
    // (the data it holds may be stale): its data is not parked.
    if idle == Idle::Park && ours {
        let (value, offsets) = group.take_stored();
        lock(loaded).insert(
            group.id.clone(),
            Loaded {
                group: value,
                offsets,
                pending: HashMap::new(),
                consumer: Default::default(),
            },
        );
    }
    Unload::Done
}

/// Persists the effects' records (waiting for an fsync when the flush policy asks for
/// one), then sends the parked answers. If the records cannot be stored, SyncGroup
/// answers become errors and the generation is abandoned, so no member acts on an
/// assignment a restart would forget.
async fn finish(group: &mut Group, partition: &CoordinatorPartition, mut fx: Effects) {
    loop {
        let stored = write(partition, &fx.records).await;
        let failed = stored.is_err();
        for reply in std::mem::take(&mut fx.replies) {
            match reply {
                Reply::Join(tx, resp) => {
                    let _ = tx.send(resp);
                }
                Reply::Sync(tx, resp) if failed && resp.error.is_none() => {
                    let _ = tx.send(SyncResponse::error(GroupError::CoordinatorNotAvailable));
                }
                Reply::Sync(tx, resp) => {
                    let _ = tx.send(resp);
                }
            }
        }
        if !(failed && group.state() == GroupState::Stable) {
            return;
        }
        fx = group.assignment_not_stored(Instant::now(), now_ms());
    }
}

/// Appends records to the group's `__consumer_offsets` partition as one batch.
async fn write(
    partition: &CoordinatorPartition,
    records: &[(RecordKey, Option<Vec<u8>>)],
) -> Result<(), GroupError> {
    write_as(partition, records, batch::Producer::NONE).await
}

/// [`write`] as a producer: transactional offset commits carry the transaction's
/// producer id and epoch, so an older epoch is fenced by the partition. Like a
/// produce, the write waits for an fsync when the partition's flush policy
/// (`flush.messages`, `log.flush.interval.messages`) asks for one, so an answer sent
/// after it never describes a commit a crash could lose.
async fn write_as(
    partition: &CoordinatorPartition,
    records: &[(RecordKey, Option<Vec<u8>>)],
    producer: batch::Producer,
) -> Result<(), GroupError> {
    if records.is_empty() {
        return Ok(());
    }
    let keys: Vec<Vec<u8>> = records.iter().map(|(k, _)| k.encode()).collect();
    let ts = now_ms();
    let recs: Vec<NewRecord<'_>> = records
        .iter()
        .zip(&keys)
        .map(|((_, v), k)| NewRecord {
            key: Some(k),
            value: v.as_deref(),
            timestamp: ts,
            headers: &[],
        })
        .collect();
    let storage = |e: String| {
        tracing::error!(partition = partition.index, error = %e, "cannot write __consumer_offsets");
        GroupError::Storage(e)
    };
    let bytes =
        batch::build_as(0, Codec::None, &recs, producer).map_err(|e| storage(e.to_string()))?;
    let mut scratch = Vec::new();
    let v =
        batch::validate(&bytes, &mut scratch, usize::MAX).map_err(|e| storage(e.to_string()))?;
    use crate::replication::ReplicatedAppendError as E;
    match partition.append(&bytes, &v).await {
        Ok(_) => Ok(()),
        Err(E::Log(gregor_storage::LogError::Producer(_))) => Err(GroupError::ProducerFenced),
        // Kafka's mapping for a failed offsets write: the leadership moved (or the log
        // failed) is NOT_COORDINATOR, too few replicas or a timeout is
        // COORDINATOR_NOT_AVAILABLE; the client retries either.
        Err(E::NotLeader(_)) => Err(GroupError::NotCoordinator),
        Err(E::NotEnoughReplicas(_) | E::Timeout(_)) => Err(GroupError::CoordinatorNotAvailable),
        Err(E::Log(e)) => Err(storage(e.to_string())),
    }
}
