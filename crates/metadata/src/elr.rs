//! Eligible leader replicas (KIP-966), at `eligible.leader.replicas.version` 1.
//!
//! Brokers advance a partition's high watermark only while its ISR has at least
//! `min.insync.replicas` members (the "strict min ISR" rule, see the broker's
//! replication state). So a replica that leaves an ISR already below min ISR holds every
//! record below the high watermark, and may lead without losing one: it goes to the
//! partition's ELR. The controller keeps the ELR here, for every partition change of
//! every decision, in one pass ([`complete`]) that the quorum runs on each batch of
//! records before proposing it:
//!
//! - ISR at or above min ISR: the ELR and last known ELR are cleared.
//! - ISR below min ISR: ELR = (old ELR + old ISR) - new ISR, less any replica a record
//!   explicitly took out of the ELR (an unclean shutdown, [`unclean_shutdown_records`]);
//!   last known ELR = (those + old last known ELR) - new ISR - new ELR.
//! - A partition without a leader and an empty ISR elects an unfenced ELR member, which
//!   becomes the whole ISR (and leaves the ELR). A leader chosen from the ELR by any
//!   decision (an unfence, an ElectLeaders) gets the same ISR.
//! - An unclean election (a leader from neither the ISR nor the ELR, as the whole ISR)
//!   clears both.
//!
//! The rules that differ with the feature on live with their decisions: a fenced or
//! shutting-down broker leaves the ISR even as its last member (`fencing::fence_partition`,
//! `fencing::shutdown_records`), and an unfenced broker takes leaderless partitions whose
//! ELR holds it (`fencing::unfence_records`). At level 0 nothing here runs and the ELR
//! fields stay empty; the downgrade to 0 clears them ([`disable_records`]).

use std::collections::{BTreeSet, HashMap};

use uuid::Uuid;

use crate::image::{MetadataImage, PartitionImage};
use crate::records::MetadataRecord;

pub const ELR_VERSION: &str = "eligible.leader.replicas.version";
pub const MIN_INSYNC_REPLICAS: &str = "min.insync.replicas";

/// Whether the cluster tracks ELRs (`eligible.leader.replicas.version` >= 1).
pub fn enabled(image: &MetadataImage) -> bool {
    image.feature_level(ELR_VERSION) >= 1
}

/// The min ISR the controller applies to a partition of `topic` with `replicas`
/// replicas: the topic's `min.insync.replicas`, else the dynamic cluster default, else
/// `static_default` (the controller's own config), at most the replica count (as the
/// broker's effective min ISR is).
pub fn min_isr(
    image: &MetadataImage,
    topic: Option<&str>,
    replicas: usize,
    static_default: usize,
) -> usize {
    let parse = |v: &String| v.trim().parse::<usize>().ok();
    let configured = topic
        .and_then(|t| image.topics.get(t))
        .and_then(|t| t.configs.get(MIN_INSYNC_REPLICAS))
        .and_then(parse)
        .or_else(|| {
            image
                .broker_configs
                .get("")
                .and_then(|c| c.get(MIN_INSYNC_REPLICAS))
                .and_then(parse)
        })
        .unwrap_or(static_default)
        .max(1);
    configured.min(replicas.max(1))
}

fn sorted(set: BTreeSet<i32>) -> Vec<i32> {
    set.into_iter().collect()
}

/// Brokers' fencing as a batch leaves it: the image's, updated by the batch's records.
#[derive(Default)]
struct BrokerOverlay(HashMap<i32, bool>);

impl BrokerOverlay {
    fn note(&mut self, image: &MetadataImage, r: &MetadataRecord) {
        match r {
            MetadataRecord::RegisterBrokerRecord { broker_id, .. } => {
                self.0.insert(*broker_id, false);
            }
            MetadataRecord::BrokerRegistrationChangeRecord {
                broker_id,
                fenced,
                in_controlled_shutdown,
                ..
            } => {
                let b = image.brokers.get(broker_id);
                let was_fenced = b.is_none_or(|b| b.fenced);
                let was_cs = b.is_some_and(|b| b.in_controlled_shutdown);
                let (f, cs) = self
                    .0
                    .get(broker_id)
                    .map_or((was_fenced, was_cs), |&live| (!live, false));
                let live = !fenced.unwrap_or(f) && !in_controlled_shutdown.unwrap_or(cs);
                self.0.insert(*broker_id, live);
            }
            _ => {}
        }
    }

    /// Whether `id` may lead (topic, partition): registered, unfenced, not shutting
    /// down, hosting it.
    fn live(&self, image: &MetadataImage, id: i32, topic_id: Uuid, partition: i32) -> bool {
        let Some(b) = image.brokers.get(&id) else {
            return false;
        };
        let up = self
            .0
            .get(&id)
            .copied()
            .unwrap_or(!b.fenced && !b.in_controlled_shutdown);
        up && b.hosts(topic_id, partition)
    }
}

/// Completes every PartitionChangeRecord of `records` (one decision, applied in order)
/// with the ELR rules of the module doc, when the feature is on; otherwise returns them
/// as they are.
pub fn complete(
    image: &MetadataImage,
    mut records: Vec<MetadataRecord>,
    static_min_isr: usize,
) -> Vec<MetadataRecord> {
    let disabling = records.iter().any(|r| {
        matches!(r, MetadataRecord::FeatureLevelRecord { name, feature_level: 0 } if name == ELR_VERSION)
    });
    if !enabled(image) || disabling {
        return records;
    }
    let mut brokers = BrokerOverlay::default();
    let mut partitions: HashMap<(Uuid, i32), PartitionImage> = HashMap::new();
    for r in &mut records {
        brokers.note(image, r);
        let MetadataRecord::PartitionChangeRecord {
            topic_id,
            partition,
            leader,
            isr,
            replicas,
            adding_replicas,
            removing_replicas,
            eligible_leader_replicas,
            last_known_elr,
        } = r
        else {
            continue;
        };
        let key = (*topic_id, *partition);
        let topic_name = image.topic_names.get(topic_id).map(String::as_str);
        let Some(from) = partitions.get(&key).cloned().or_else(|| {
            topic_name
                .and_then(|n| image.topics.get(n))
                .and_then(|t| t.partitions.get(partition))
                .cloned()
        }) else {
            continue;
        };
        let mut to = from.clone();
        to.leader = leader.unwrap_or(from.leader);
        if let Some(i) = isr {
            to.isr = i.clone();
        }
        if let Some(x) = replicas {
            to.replicas = x.clone();
        }
        let min = min_isr(image, topic_name, to.replicas.len(), static_min_isr);
        let elected = leader.filter(|&l| l >= 0 && l != from.leader);
        let unclean = elected.is_some_and(|l| {
            isr.as_deref() == Some(&[l][..]) && !from.isr.contains(&l) && !from.elr.contains(&l)
        });
        // An unclean election, or an ISR back at min ISR: nothing is kept.
        if unclean || to.isr.len() >= min {
            to.elr.clear();
            to.last_known_elr.clear();
        } else {
            // Replicas a record took out of the ELR left it for good (unclean shutdown).
            let dropped: BTreeSet<i32> = eligible_leader_replicas
                .as_ref()
                .map(|e| {
                    from.elr
                        .iter()
                        .copied()
                        .filter(|r| !e.contains(r))
                        .collect()
                })
                .unwrap_or_default();
            let candidates: BTreeSet<i32> = from.elr.iter().chain(&from.isr).copied().collect();
            let elr: BTreeSet<i32> = candidates
                .iter()
                .copied()
                .filter(|r| !to.isr.contains(r) && !dropped.contains(r))
                .filter(|r| to.replicas.contains(r))
                .collect();
            let last_known: BTreeSet<i32> = candidates
                .iter()
                .chain(&dropped)
                .chain(&from.last_known_elr)
                .copied()
                .filter(|r| !to.isr.contains(r) && !elr.contains(r))
                .collect();
            to.elr = sorted(elr);
            to.last_known_elr = sorted(last_known);
            if to.leader < 0 && to.isr.is_empty() {
                if let Some(&r) = to
                    .elr
                    .iter()
                    .find(|&&r| brokers.live(image, r, *topic_id, *partition))
                {
                    to.leader = r;
                }
            }
            if to.leader >= 0 && !to.isr.contains(&to.leader) && to.elr.contains(&to.leader) {
                let l = to.leader;
                to.isr = vec![l];
                to.elr.retain(|&r| r != l);
            }
        }
        let differs = |a: &Vec<i32>, b: &Vec<i32>| (a != b).then(|| b.clone());
        if to.leader != from.leader {
            *leader = Some(to.leader);
        }
        if to.isr != from.isr {
            *isr = Some(to.isr.clone());
        }
        *eligible_leader_replicas = differs(&from.elr, &to.elr);
        *last_known_elr = differs(&from.last_known_elr, &to.last_known_elr);
        // Keep the overlay as the image will be once this record is applied.
        if let Some(a) = adding_replicas {
            to.adding_replicas = a.clone();
        }
        if let Some(x) = removing_replicas {
            to.removing_replicas = x.clone();
        }
        partitions.insert(key, to);
    }
    records
}

/// Records that go back to the rules without ELRs (`eligible.leader.replicas.version`
/// downgraded to 0, in the same commit): every ELR and last known ELR is cleared, and an
/// empty ISR gets its ELR back (the members that hold everything below the high
/// watermark), as the old rule keeps the last member in the ISR.
pub fn disable_records(image: &MetadataImage) -> Vec<MetadataRecord> {
    let mut out = Vec::new();
    for t in image.topics.values() {
        for (&index, p) in &t.partitions {
            if p.elr.is_empty() && p.last_known_elr.is_empty() {
                continue;
            }
            out.push(MetadataRecord::PartitionChangeRecord {
                topic_id: t.id,
                partition: index,
                leader: None,
                isr: (p.isr.is_empty() && !p.elr.is_empty()).then(|| p.elr.clone()),
                replicas: None,
                adding_replicas: None,
                removing_replicas: None,
                eligible_leader_replicas: (!p.elr.is_empty()).then(Vec::new),
                last_known_elr: (!p.last_known_elr.is_empty()).then(Vec::new),
            });
        }
    }
    out
}

/// Records taking `broker`, which registered again after an unclean shutdown (its
/// previous broker epoch is not its last registration's), out of every ELR: it may have
/// lost records it had acknowledged. It goes to the last known ELR. Nothing when the
/// feature is off.
pub fn unclean_shutdown_records(image: &MetadataImage, broker: i32) -> Vec<MetadataRecord> {
    if !enabled(image) {
        return Vec::new();
    }
    let mut out = Vec::new();
    for t in image.topics.values() {
        for (&index, p) in &t.partitions {
            if !p.elr.contains(&broker) {
                continue;
            }
            let elr: Vec<i32> = p.elr.iter().copied().filter(|&r| r != broker).collect();
            let mut last_known = p.last_known_elr.clone();
            if !last_known.contains(&broker) {
                last_known.push(broker);
                last_known.sort_unstable();
            }
            out.push(MetadataRecord::PartitionChangeRecord {
                topic_id: t.id,
                partition: index,
                leader: None,
                isr: None,
                replicas: None,
                adding_replicas: None,
                removing_replicas: None,
                eligible_leader_replicas: Some(elr),
                last_known_elr: Some(last_known),
            });
        }
    }
    out
}

#[cfg(test)]
#[path = "elr_tests.rs"]
mod tests;
