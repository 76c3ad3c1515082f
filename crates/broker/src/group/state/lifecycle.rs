//! When a group's task may go: a group with nothing live (no members, no pending member
//! ids, no rebalance, no offsets of an open transaction) needs no task. One that never
//! stored anything (or is Dead) is forgotten at once. Otherwise only its data is kept
//! (its committed offsets, and the metadata record a rebalance wrote) and its task is
//! unloaded, to be restored when the group is next named or by the periodic sweep:
//! offsets expire under `offsets.retention.minutes`, and an Empty group without offsets
//! becomes Dead with a tombstone for its metadata record at the next
//! `offsets.retention.check.interval.ms` (Kafka's `cleanupGroupMetadata`), so it stays
//! describable as Empty until then, as in Kafka.

use std::collections::BTreeMap;

use super::{Effects, Group, GroupState, StoredOffset};
use crate::group::records::{GroupValue, RecordKey};

/// What an idle group leaves behind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Idle {
    /// Nothing: Dead, or never stored a record.
    Forget,
    /// Its committed offsets and metadata (generation, protocol type, when it became
    /// Empty), until they expire.
    Park,
}

impl Group {
    /// `None` while the group has anything live; otherwise what it leaves behind.
    pub fn idle(&self) -> Option<Idle> {
        let quiet = matches!(self.state, GroupState::Empty | GroupState::Dead)
            && self.members.is_empty()
            && self.pending.is_empty()
            && self.rebalance_deadline.is_none()
            && self.consumer.is_empty()
            && self.pending_txn.is_empty();
        if !quiet {
            return None;
        }
        let stored = self.generation > 0 || self.protocol_type.is_some();
        Some(
            if self.state == GroupState::Dead || (self.offsets.is_empty() && !stored) {
                Idle::Forget
            } else {
                Idle::Park
            },
        )
    }

    /// An Empty group without offsets becomes Dead, with a tombstone for the metadata
    /// record it may have written (after a rebalance), so a restart does not bring it
    /// back.
    fn retire(&mut self, now_ms: i64) -> Effects {
        let mut out = Effects::default();
        let stored = self.generation > 0 || self.protocol_type.is_some();
        if self.state != GroupState::Dead && stored {
            out.records.push((
                RecordKey::Group {
                    group: self.id.clone(),
                },
                None,
            ));
        }
        self.transition(GroupState::Dead, now_ms);
        out
    }

    /// The data an idle group keeps without its task: its metadata (protocol type,
    /// generation, when it became Empty) and its committed offsets, in the form the
    /// replay of `__consumer_offsets` produces, for [`Group::restore`]. The offsets
    /// move out: the task stops after this.
    pub fn take_stored(&mut self) -> (Option<GroupValue>, BTreeMap<(String, i32), StoredOffset>) {
        let group = (self.generation > 0 || self.protocol_type.is_some()).then(|| GroupValue {
            protocol_type: self.protocol_type.clone().unwrap_or_default(),
            generation: self.generation,
            protocol: None,
            leader: None,
            current_state_timestamp: self.state_since_ms,
            members: Vec::new(),
        });
        (group, std::mem::take(&mut self.offsets))
    }

    /// The periodic cleanup, whatever the check interval (the coordinator's sweep of
    /// unloaded groups): expired offsets go, and an idle group left without offsets
    /// becomes Dead.
    pub fn expire_offsets_now(&mut self, now_ms: i64) -> Effects {
        let mut out = Effects::default();
        self.expire_offsets(&mut out, now_ms);
        if self.idle().is_some() && self.offsets.is_empty() {
            out.records.extend(self.retire(now_ms).records);
        }
        out
    }
}

/// When the sweep must give an unloaded group its task back: when its first offset
/// falls due under `offsets.retention.ms` (from its commit for a group that only stores
/// offsets, else from the later of the commit and the group becoming Empty: the rule
/// `expire_offsets` applies). `Some(0)`, the next sweep, for a group without offsets
/// (it becomes Dead then) or whose stored membership is not empty (its task must run to
/// expire the sessions).
pub fn offsets_due_ms(
    group: Option<&GroupValue>,
    offsets: &BTreeMap<(String, i32), StoredOffset>,
    retention_ms: i64,
) -> Option<i64> {
    if offsets.is_empty() || group.is_some_and(|g| !g.members.is_empty()) {
        return Some(0);
    }
    let standalone = group.is_none_or(|g| g.protocol_type.is_empty());
    let since = group.map_or(0, |g| g.current_state_timestamp);
    offsets
        .values()
        .map(|o| {
            let base = if standalone {
                o.value.commit_timestamp
            } else {
                since.max(o.value.commit_timestamp)
            };
            base.saturating_add(retention_ms)
        })
        .min()
}
