//! Consumer group lag, with the names kafka_exporter gives it (the exporter most Kafka
//! lag dashboards read): `kafka_consumergroup_current_offset{consumergroup,topic,partition}`
//! (the committed offset) and `kafka_consumergroup_lag{...}` (the partition's high
//! watermark minus that offset).
//!
//! Also the group coordinator's gauges as the JMX exporter names them:
//! `kafka_coordinator_group_groupmetadatamanager_numgroups` and
//! `..._numgroups{stable,preparingrebalance,completingrebalance,empty,dead}` (a
//! KIP-848 group's Assigning and Reconciling count in the total only).
//!
//! Each broker reports the groups it coordinates. Committed offsets live in the groups'
//! tasks, so they are asked for (async, no lock held) before the scrape's sync part
//! sets the gauges; the asking is bounded by [`COLLECT_TIMEOUT`].

use std::sync::Arc;
use std::time::Duration;

use prometheus::{IntGauge, IntGaugeVec, Opts, Registry};

use super::MetricsError;
use crate::broker::Broker;
use crate::group::CommittedOffset;

/// The most a scrape waits for the group coordinator's answers; groups not answered by
/// then are left out of that scrape.
pub(super) const COLLECT_TIMEOUT: Duration = Duration::from_secs(5);

/// One group as the coordinator answered: its state and committed offsets.
pub struct GroupSnapshot {
    pub group: String,
    pub state: &'static str,
    pub offsets: Vec<CommittedOffset>,
}

/// Every group this broker coordinates.
pub type GroupOffsets = Vec<GroupSnapshot>;

/// The state and committed offsets of every group this broker coordinates.
pub(super) async fn collect(broker: &Arc<Broker>) -> GroupOffsets {
    let mut out = Vec::new();
    let gather = async {
        for group in broker.groups.list().await {
            let offsets = broker
                .groups
                .fetch_offsets(&group.group_id, None, None)
                .await
                .unwrap_or_default();
            out.push(GroupSnapshot {
                group: group.group_id,
                state: group.state_name,
                offsets,
            });
        }
    };
    let _ = tokio::time::timeout(COLLECT_TIMEOUT, gather).await;
    out
}

pub(super) struct GroupGauges {
    current_offset: IntGaugeVec,
    lag: IntGaugeVec,
    num_groups: IntGauge,
    /// (Kafka's state name, its gauge).
    by_state: Vec<(&'static str, IntGauge)>,
}

const STATES: [(&str, &str); 5] = [
    ("Stable", "stable"),
    ("PreparingRebalance", "preparingrebalance"),
    ("CompletingRebalance", "completingrebalance"),
    ("Empty", "empty"),
    ("Dead", "dead"),
];

fn plain_gauge(r: &Registry, name: &str, help: &str) -> Result<IntGauge, MetricsError> {
    let g = IntGauge::new(name, help)?;
    r.register(Box::new(g.clone()))?;
    Ok(g)
}

fn gauge(r: &Registry, name: &str, help: &str) -> Result<IntGaugeVec, MetricsError> {
    let g = IntGaugeVec::new(
        Opts::new(name, help),
        &["consumergroup", "topic", "partition"],
    )?;
    r.register(Box::new(g.clone()))?;
    Ok(g)
}

impl GroupGauges {
    pub(super) fn new(r: &Registry) -> Result<Self, MetricsError> {
        Ok(Self {
            current_offset: gauge(
                r,
                "kafka_consumergroup_current_offset",
                "The group's committed offset of the partition.",
            )?,
            lag: gauge(
                r,
                "kafka_consumergroup_lag",
                "The partition's high watermark minus the group's committed offset.",
            )?,
            num_groups: plain_gauge(
                r,
                "kafka_coordinator_group_groupmetadatamanager_numgroups",
                "Groups this broker coordinates.",
            )?,
            by_state: STATES
                .iter()
                .map(|(state, suffix)| {
                    plain_gauge(
                        r,
                        &format!("kafka_coordinator_group_groupmetadatamanager_numgroups{suffix}"),
                        &format!("Groups this broker coordinates in state {state}."),
                    )
                    .map(|g| (*state, g))
                })
                .collect::<Result<_, _>>()?,
        })
    }

    /// Sets the gauges from `groups`; partitions not hosted here get no lag (their
    /// high watermark is another broker's to know).
    pub(super) fn refresh(&self, broker: &Broker, groups: &GroupOffsets) {
        self.current_offset.reset();
        self.lag.reset();
        self.num_groups
            .set(i64::try_from(groups.len()).unwrap_or(i64::MAX));
        for (state, g) in &self.by_state {
            let n = groups.iter().filter(|s| s.state == *state).count();
            g.set(i64::try_from(n).unwrap_or(i64::MAX));
        }
        for GroupSnapshot { group, offsets, .. } in groups {
            for o in offsets.iter().filter(|o| o.offset >= 0) {
                let partition = o.partition.to_string();
                let labels = [group.as_str(), o.topic.as_str(), partition.as_str()];
                if let Ok(g) = self.current_offset.get_metric_with_label_values(&labels) {
                    g.set(o.offset);
                }
                let Some(p) = broker.replicas.partition(&o.topic, o.partition) else {
                    continue;
                };
                if let Ok(g) = self.lag.get_metric_with_label_values(&labels) {
                    g.set((p.high_watermark() - o.offset).max(0));
                }
            }
        }
    }
}
