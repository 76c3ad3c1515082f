//! Replaying `__consumer_offsets` into per-group data: the newest record per key wins, a
//! tombstone deletes, and offsets written inside a transaction wait for its marker. The
//! same [`Loaded`] form holds what an idle group leaves when its task unloads.

use std::collections::{BTreeMap, HashMap, HashSet};

use gregor_protocol::batch;
use gregor_protocol::records::RecordWalker;

use super::consumer::Stored;
use super::records::{GroupValue, OffsetValue, RecordKey};
use super::state::{apply_if_newer, offsets_due_ms, StoredOffset};
use crate::partition::Partition;

pub(super) type PendingTxnOffsets = HashMap<i64, BTreeMap<(String, i32), StoredOffset>>;

/// What replaying `__consumer_offsets` found for one group, or what an idle group left
/// when its task was unloaded.
#[derive(Default)]
pub(super) struct Loaded {
    pub(super) group: Option<GroupValue>,
    pub(super) offsets: BTreeMap<(String, i32), StoredOffset>,
    /// Offsets of transactions with no marker yet, by producer id.
    pub(super) pending: PendingTxnOffsets,
    /// A KIP-848 group's records (members, epochs, assignments).
    pub(super) consumer: Stored,
}

impl Loaded {
    /// Whether there is anything worth keeping (a group with none of this is forgotten).
    pub(super) fn has_data(&self) -> bool {
        self.group.is_some()
            || !self.offsets.is_empty()
            || !self.pending.is_empty()
            || !self.consumer.is_empty()
    }

    /// When the sweep must give this group its task again (offset expiry).
    pub(super) fn due_ms(&self, retention_ms: i64) -> Option<i64> {
        offsets_due_ms(self.group.as_ref(), &self.offsets, retention_ms)
    }
}

/// Reads one `__consumer_offsets` partition from start to end into `out`. Offsets
/// written inside a transaction wait in `pending` for their producer's marker.
pub(super) fn replay_partition(
    p: &Partition,
    scratch: &mut Vec<u8>,
    out: &mut HashMap<String, Loaded>,
) -> Result<(), String> {
    let mut failure = None;
    let mut in_txn: HashMap<i64, HashSet<String>> = HashMap::new();
    let mut marker_scratch = Vec::new();
    p.replay(|h, b| {
        if failure.is_some() {
            return;
        }
        if h.is_control() {
            let Some(marker) = batch::control_marker(b, &mut marker_scratch) else {
                return;
            };
            for group in in_txn.remove(&h.producer_id).unwrap_or_default() {
                let Some(l) = out.get_mut(&group) else {
                    continue;
                };
                let Some(pending) = l.pending.remove(&h.producer_id) else {
                    continue;
                };
                if marker == batch::Marker::Commit {
                    for (k, p) in pending {
                        apply_if_newer(&mut l.offsets, k, p);
                    }
                }
            }
            return;
        }
        let data = match batch::records_section(h, b, scratch, 256 << 20) {
            Ok(d) => d,
            Err(e) => {
                failure = Some(e.to_string());
                return;
            }
        };
        let txn = h.is_transactional().then_some(h.producer_id);
        for rec in RecordWalker::new(data, h.record_count) {
            match rec {
                Ok(rec) => apply_record(out, rec.key, rec.value, h.base_offset, txn, &mut in_txn),
                Err(e) => {
                    failure = Some(e.to_string());
                    return;
                }
            }
        }
    })
    .map_err(|e| e.to_string())?;
    failure.map_or(Ok(()), Err)
}

fn apply_record(
    out: &mut HashMap<String, Loaded>,
    key: Option<&[u8]>,
    value: Option<&[u8]>,
    appended_at: i64,
    txn: Option<i64>,
    in_txn: &mut HashMap<i64, HashSet<String>>,
) {
    let Some(key) = key else { return };
    let key = match RecordKey::decode(key) {
        Ok(k) => k,
        Err(e) => {
            tracing::warn!(error = %e, "skipping __consumer_offsets record");
            return;
        }
    };
    match key {
        RecordKey::Offset {
            group,
            topic,
            partition,
        } => {
            if let (Some(pid), Some(Ok(v))) = (txn, value.map(OffsetValue::decode)) {
                in_txn.entry(pid).or_default().insert(group.clone());
                let entry = out.entry(group).or_default();
                entry.pending.entry(pid).or_default().insert(
                    (topic, partition),
                    StoredOffset {
                        value: v,
                        appended_at,
                    },
                );
                return;
            }
            let entry = out.entry(group).or_default();
            match value.map(OffsetValue::decode) {
                Some(Ok(v)) => {
                    entry.offsets.insert(
                        (topic, partition),
                        StoredOffset {
                            value: v,
                            appended_at,
                        },
                    );
                }
                None => {
                    entry.offsets.remove(&(topic, partition));
                }
                Some(Err(e)) => tracing::warn!(error = %e, "skipping offset record"),
            }
        }
        RecordKey::Group { group } => match value.map(GroupValue::decode) {
            Some(Ok(v)) => out.entry(group).or_default().group = Some(v),
            None => {
                // A group tombstone ends the group: offsets before it were deleted too.
                out.remove(&group);
            }
            Some(Err(e)) => tracing::warn!(error = %e, "skipping group record"),
        },
        RecordKey::Consumer { ref group, .. } => {
            let entry = out.entry(group.clone()).or_default();
            match value {
                Some(v) => entry.consumer.insert(key, v.to_vec()),
                None => entry.consumer.remove(&key),
            };
        }
    }
}
