//! What the coordinators (group, transaction, share) and replication see of the broker:
//! a narrow [`Host`] instead of the whole [`crate::broker::Broker`].
//!
//! The broker owns the coordinators, so they must not hold it (a cycle: the broker
//! could never be dropped while a coordinator's task held it, and every coordinator
//! could reach every other). Each gets an `Arc<Host>` when it is made, holding only:
//!
//! - this node's id and the `cluster.*` settings (internal topics' replication
//!   factors, replica fetching, ISR lag);
//! - the metadata view and controller link ([`ClusterLink`]): who leads which
//!   partition, internal-topic creation, AlterPartition;
//! - the [`ReplicaManager`]: the partitions of the coordinator's internal topic, and
//!   the partitions a follower fetches;
//! - the inter-broker client settings (TLS, SASL) for calls to other brokers;
//! - the replication throttles and metrics, and the stop signal (replication only);
//! - the producer id block (the transaction coordinator's InitProducerId).
//!
//! Cross-coordinator calls go through narrow traits (e.g. [`crate::txn::TxnOffsets`],
//! which the group coordinator implements and the transaction coordinator calls), never
//! through the broker.

use std::sync::{Arc, Mutex};

use gregor_metadata::active::ControllerFailure;
use gregor_metadata::{ControllerError, ControllerRequest, MetadataImage};

use crate::cluster::ClusterLink;
use crate::config::BrokerConfig;
use crate::config::ClusterConfig;
use crate::metrics::BrokerMetrics;
use crate::replica_manager::ReplicaManager;
use crate::replication::inter_broker::InterBrokerSecurity;
use crate::replication::throttle::{self, ReplicationThrottles};

pub struct Host {
    pub node_id: i32,
    /// The `cluster.*` settings.
    pub cluster: ClusterConfig,
    /// The static `follower.replication.throttled.rate` (dynamic broker configs in the
    /// metadata override it).
    follower_rate: Option<String>,
    /// The metadata this node follows and the controller it asks.
    pub metadata: Arc<ClusterLink>,
    pub replicas: Arc<ReplicaManager>,
    /// How this broker connects to the others' inter-broker listener (TLS, SASL).
    pub inter_broker: Arc<InterBrokerSecurity>,
    /// Replication quotas, leader and follower side.
    pub throttles: Arc<ReplicationThrottles>,
    /// ISR changes waiting to be sent to the controller (AlterPartition).
    pub isr_changes: Arc<crate::replication::isr_changes::IsrChanges>,
    pub metrics: Arc<BrokerMetrics>,
    /// The block of producer ids being handed out: `(next, end)`.
    producer_ids: Mutex<(i64, i64)>,
    /// Flips to true when the broker stops.
    stop: tokio::sync::watch::Sender<bool>,
}

impl Host {
    pub fn new(
        config: &BrokerConfig,
        metadata: Arc<ClusterLink>,
        replicas: Arc<ReplicaManager>,
        inter_broker: Arc<InterBrokerSecurity>,
        throttles: Arc<ReplicationThrottles>,
        metrics: Arc<BrokerMetrics>,
    ) -> Self {
        Self {
            node_id: config.node_id,
            cluster: config.cluster.clone(),
            follower_rate: config.get(throttle::FOLLOWER_RATE).map(str::to_string),
            metadata,
            replicas,
            inter_broker,
            throttles,
            isr_changes: Arc::default(),
            metrics,
            producer_ids: Mutex::new((0, 0)),
            stop: tokio::sync::watch::Sender::new(false),
        }
    }

    /// The follower-side replication throttle rate now (see [`throttle::rate`]).
    pub fn follower_rate(&self, image: &MetadataImage) -> Option<u64> {
        throttle::rate(
            image,
            self.node_id,
            throttle::FOLLOWER_RATE,
            self.follower_rate.as_deref(),
        )
    }

    /// Flips to true when the broker stops (background tasks end on it).
    pub fn stop_signal(&self) -> tokio::sync::watch::Receiver<bool> {
        self.stop.subscribe()
    }

    /// Tells every background task to stop.
    pub fn stop(&self) {
        self.stop.send_replace(true);
    }

    /// Commits a metadata change through the active controller and waits until this
    /// broker has applied it.
    pub async fn commit_metadata(
        &self,
        req: ControllerRequest,
    ) -> Result<Arc<MetadataImage>, ControllerFailure> {
        self.metadata.commit(req).await
    }

    /// Creates an internal topic (`__consumer_offsets`, `__transaction_state`) on first
    /// use: compacted, 100 MiB segments, as Kafka creates them. Already there is fine.
    pub async fn ensure_internal_topic(
        &self,
        name: &str,
        partitions: i32,
        replication_factor: i16,
    ) -> Result<(), ControllerFailure> {
        if self.metadata.image().topic(name).is_some()
            && self.metadata.applied() >= self.metadata.image().offset
        {
            return Ok(());
        }
        let t = gregor_metadata::controller::NewTopic {
            assignments: Vec::new(),
            name: name.to_string(),
            num_partitions: partitions,
            replication_factor,
            configs: [
                ("cleanup.policy".to_string(), "compact".to_string()),
                ("segment.bytes".to_string(), "104857600".to_string()),
            ]
            .into(),
        };
        match self
            .commit_metadata(ControllerRequest::CreateTopic {
                topic: t,
                if_absent: true,
                cap_replication: true,
            })
            .await
        {
            Ok(_) | Err(ControllerFailure::Refused(ControllerError::TopicAlreadyExists(_))) => {
                Ok(())
            }
            Err(e) => {
                tracing::error!(topic = name, error = %e, "cannot create internal topic");
                Err(e)
            }
        }
    }

    /// A new producer id, unique for the life of the cluster: taken from the current
    /// block, or from a new block reserved in the metadata log (no lock is held while
    /// that commits; a racing caller may reserve a block too, and ids are only skipped).
    pub async fn next_producer_id(&self) -> Result<i64, ControllerFailure> {
        let take = |ids: &Mutex<(i64, i64)>| -> Option<i64> {
            let mut g = match ids.lock() {
                Ok(g) => g,
                Err(p) => p.into_inner(),
            };
            (g.0 < g.1).then(|| {
                g.0 += 1;
                g.0 - 1
            })
        };
        if let Some(id) = take(&self.producer_ids) {
            return Ok(id);
        }
        let end = self.metadata.allocate_producer_ids().await?;
        let start = end - gregor_metadata::controller::PRODUCER_ID_BLOCK;
        let mut g = match self.producer_ids.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        if g.0 >= g.1 {
            *g = (start + 1, end);
            return Ok(start);
        }
        drop(g);
        Ok(start)
    }
}
