//! The console's view of the cluster: librdkafka clients (metadata, watermarks, configs,
//! topic creation) plus the raw-protocol `wire` client for what librdkafka lacks.
//! librdkafka's calls block, so each runs on tokio's blocking pool (`Cluster::blocking`);
//! handlers stay async and thin.

use std::sync::Arc;
use std::time::Duration;

use kafka_protocol::messages::MetadataRequest;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, ResourceSpecifier, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::metadata::{Metadata, MetadataTopic};

use crate::error::{ConsoleError, Result};
use crate::model::{BrokerInfo, ConfigRow, Overview, PartitionInfo, TopicDetail, TopicSummary};
use crate::wire::{error_name, Wire};

/// Shared by every request: two long-lived librdkafka handles and the settings to make
/// more (the message browser and group offsets need their own consumers).
pub struct Cluster {
    pub(crate) config: ClientConfig,
    /// Metadata, watermarks, cluster id, group list. Never subscribes or commits.
    pub(crate) meta: BaseConsumer,
    admin: AdminClient<DefaultClientContext>,
    pub(crate) timeout: Duration,
}

impl Cluster {
    /// Clients for `config` (bootstrap.servers and any security properties). Creating
    /// them does not contact the cluster: a cluster that is down shows up as error
    /// pages, not here.
    pub fn new(config: ClientConfig, timeout: Duration) -> Result<Arc<Self>> {
        let mut meta_cfg = config.clone();
        // Looking a topic up must not create it.
        meta_cfg.set("allow.auto.create.topics", "false");
        let meta = meta_cfg
            .create()
            .map_err(ConsoleError::kafka("cannot create client"))?;
        let admin = config
            .create()
            .map_err(ConsoleError::kafka("cannot create admin client"))?;
        Ok(Arc::new(Self {
            config,
            meta,
            admin,
            timeout,
        }))
    }

    /// Runs blocking librdkafka work off the async runtime.
    pub(crate) async fn blocking<T, F>(self: &Arc<Self>, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Cluster) -> Result<T> + Send + 'static,
    {
        let me = Arc::clone(self);
        tokio::task::spawn_blocking(move || f(&me))
            .await
            .map_err(|e| ConsoleError::Internal(e.to_string()))?
    }

    pub(crate) fn metadata(&self, topic: Option<&str>) -> Result<Metadata> {
        self.meta
            .fetch_metadata(topic, self.timeout)
            .map_err(ConsoleError::kafka("cannot fetch metadata"))
    }

    pub(crate) fn watermarks(&self, topic: &str, partition: i32) -> Result<(i64, i64)> {
        self.meta
            .fetch_watermarks(topic, partition, self.timeout)
            .map_err(ConsoleError::kafka("cannot read offsets"))
    }

    fn bootstrap(&self) -> Option<String> {
        self.config
            .get("bootstrap.servers")
            .and_then(|b| b.split(',').next())
            .map(|b| b.trim().to_string())
    }

    pub(crate) async fn overview(self: &Arc<Self>) -> Result<Overview> {
        let (md, cluster_id) = self
            .blocking(|c| {
                let md = c.metadata(None)?;
                let id = c.meta.client().fetch_cluster_id(c.timeout);
                Ok((md, id))
            })
            .await?;
        let topics: Vec<_> = md.topics().iter().map(summarize).collect();
        let mut overview = Overview {
            cluster_id,
            controller: None,
            brokers: md
                .brokers()
                .iter()
                .map(|b| BrokerInfo {
                    id: b.id(),
                    host: b.host().to_string(),
                    port: b.port(),
                    rack: None,
                })
                .collect(),
            topics: topics.iter().filter(|t| !t.internal).count(),
            partitions: topics
                .iter()
                .filter(|t| !t.internal)
                .map(|t| t.partitions)
                .sum(),
            offline: topics.iter().map(|t| t.offline).sum(),
            under_replicated: topics.iter().map(|t| t.under_replicated).sum(),
            note: None,
        };
        // Controller and racks: only the raw Metadata response carries them.
        match self.raw_metadata().await {
            Ok(raw) => {
                overview.controller = Some(raw.controller_id.0).filter(|id| *id >= 0);
                for b in &mut overview.brokers {
                    b.rack = raw
                        .brokers
                        .iter()
                        .find(|r| r.node_id.0 == b.id)
                        .and_then(|r| r.rack.as_ref().map(|r| r.to_string()));
                }
            }
            Err(e) => overview.note = Some(e.to_string()),
        }
        overview.brokers.sort_by_key(|b| b.id);
        Ok(overview)
    }

    async fn raw_metadata(&self) -> Result<kafka_protocol::messages::MetadataResponse> {
        Wire::check_plaintext(self.config.get("security.protocol"))?;
        let addr = self
            .bootstrap()
            .ok_or_else(|| ConsoleError::Wire("no bootstrap.servers".into()))?;
        let mut w = Wire::connect(&addr, self.timeout).await?;
        w.call(&MetadataRequest::default().with_topics(Some(Vec::new())), 9)
            .await
    }

    /// Every broker's address, for requests each broker answers for itself
    /// (ListTransactions).
    pub(crate) async fn broker_addrs(self: &Arc<Self>) -> Result<Vec<(i32, String)>> {
        Wire::check_plaintext(self.config.get("security.protocol"))?;
        let md = self.blocking(|c| c.metadata(None)).await?;
        Ok(md
            .brokers()
            .iter()
            .map(|b| (b.id(), format!("{}:{}", b.host(), b.port())))
            .collect())
    }

    pub(crate) async fn topics(self: &Arc<Self>) -> Result<Vec<TopicSummary>> {
        let md = self.blocking(|c| c.metadata(None)).await?;
        let mut topics: Vec<_> = md.topics().iter().map(summarize).collect();
        topics.sort_by(|a, b| (a.internal, &a.name).cmp(&(b.internal, &b.name)));
        Ok(topics)
    }

    pub(crate) async fn topic(self: &Arc<Self>, name: String) -> Result<TopicDetail> {
        let (name, partitions) = self
            .blocking(move |c| {
                let md = c.metadata(Some(&name))?;
                let t = find_topic(&md, &name)?;
                let mut partitions = Vec::new();
                for p in t.partitions() {
                    let (low, high) = c.watermarks(&name, p.id())?;
                    partitions.push(PartitionInfo {
                        id: p.id(),
                        leader: p.leader(),
                        replicas: p.replicas().to_vec(),
                        isr: p.isr().to_vec(),
                        low,
                        high,
                        size: None,
                    });
                }
                partitions.sort_by_key(|p| p.id);
                Ok((name, partitions))
            })
            .await?;
        let mut partitions = partitions;
        let ids = partitions.iter().map(|p| p.id).collect();
        match self.replica_sizes(&name, ids).await {
            Ok(sizes) => {
                for p in &mut partitions {
                    p.size = sizes.get(&(p.leader, p.id)).copied();
                }
            }
            Err(e) => tracing::debug!("partition sizes of {name}: {e}"),
        }
        let opts = AdminOptions::new().request_timeout(Some(self.timeout));
        let described = self
            .admin
            .describe_configs([&ResourceSpecifier::Topic(&name)], &opts)
            .await
            .map_err(ConsoleError::kafka("cannot describe configs"))?;
        let mut configs = Vec::new();
        for r in described {
            let r = r.map_err(|e| ConsoleError::Broker {
                what: format!("cannot describe the configs of {name}"),
                code: format!("{e:?} ({e})"),
            })?;
            for e in r.entries {
                configs.push(ConfigRow {
                    name: e.name,
                    value: e.value,
                    source: format!("{:?}", e.source),
                    sensitive: e.is_sensitive,
                });
            }
        }
        configs.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(TopicDetail {
            name,
            partitions,
            configs,
        })
    }

    pub(crate) async fn create_topic(
        self: &Arc<Self>,
        name: &str,
        partitions: i32,
        replication_factor: i32,
    ) -> Result<()> {
        let topic = NewTopic::new(
            name,
            partitions,
            TopicReplication::Fixed(replication_factor),
        );
        let opts = AdminOptions::new().request_timeout(Some(self.timeout));
        let results = self
            .admin
            .create_topics([&topic], &opts)
            .await
            .map_err(ConsoleError::kafka("cannot create topic"))?;
        for r in results {
            r.map_err(|(t, code)| ConsoleError::Broker {
                what: format!("cannot create topic {t}"),
                code: format!("{code:?} ({code})"),
            })?;
        }
        Ok(())
    }
}

pub(crate) fn find_topic<'a>(md: &'a Metadata, name: &str) -> Result<&'a MetadataTopic> {
    match md.topics().iter().find(|t| t.name() == name) {
        Some(t) if t.error().is_none() => Ok(t),
        Some(t) => Err(match t.error() {
            Some(rdkafka::types::RDKafkaRespErr::RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART) => {
                ConsoleError::NotFound(format!("topic {name}"))
            }
            e => ConsoleError::Broker {
                what: format!("topic {name}"),
                code: format!("{e:?}"),
            },
        }),
        None => Err(ConsoleError::NotFound(format!("topic {name}"))),
    }
}

fn summarize(t: &MetadataTopic) -> TopicSummary {
    let parts = t.partitions();
    TopicSummary {
        name: t.name().to_string(),
        partitions: parts.len(),
        replication_factor: parts.iter().map(|p| p.replicas().len()).max().unwrap_or(0),
        offline: parts.iter().filter(|p| p.leader() < 0).count(),
        under_replicated: parts
            .iter()
            .filter(|p| p.isr().len() < p.replicas().len())
            .count(),
        internal: t.name().starts_with("__"),
    }
}

/// A broker error code as a `Broker` error, unless it is 0.
pub(crate) fn check_code(code: i16, what: impl FnOnce() -> String) -> Result<()> {
    if code == 0 {
        Ok(())
    } else {
        Err(ConsoleError::Broker {
            what: what(),
            code: error_name(code),
        })
    }
}
