//! KIP-875 offsets endpoints: read any time; reset and alter only while the connector
//! is STOPPED. Source offsets live in the worker's offset file; sink offsets are the
//! committed offsets of the connector's consumer group `connect-<name>`.

use std::time::Duration;

use gregor_connect_api::config::get_list;
use gregor_connect_api::ConnectorType;
use rdkafka::admin::{AdminClient, AdminOptions};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::{Offset, TopicPartitionList};
use serde_json::{json, Map, Value as J};

use super::store::{PartitionOffset, TargetState};
use super::{lock, sink, Worker};
use crate::error::Error;

const TIMEOUT: Duration = Duration::from_secs(15);

impl Worker {
    fn kind_and_topics(
        &self,
        name: &str,
    ) -> Result<(ConnectorType, TargetState, Vec<String>), Error> {
        let state = lock(&self.state);
        let e = state
            .get(name)
            .ok_or_else(|| Error::ConnectorNotFound(name.into()))?;
        Ok((e.plugin.kind, e.target, get_list(&e.config, "topics")))
    }

    fn group_consumer(&self, name: &str) -> Result<BaseConsumer, Error> {
        self.client
            .clone()
            .set("group.id", sink::group_id(name))
            .set("enable.auto.commit", "false")
            .create()
            .map_err(|e| Error::Kafka(format!("cannot create consumer: {e}")))
    }

    /// `GET /connectors/{name}/offsets`.
    pub fn offsets(&self, name: &str) -> Result<J, Error> {
        let (kind, _, topics) = self.kind_and_topics(name)?;
        let entries: Vec<PartitionOffset> = match kind {
            ConnectorType::Source => {
                // Distributed mode: what the task's owner (any worker) stored.
                self.offsets.refresh()?;
                self.offsets.list(name)
            }
            ConnectorType::Sink => {
                let consumer = self.group_consumer(name)?;
                let mut tpl = TopicPartitionList::new();
                for t in &topics {
                    let md = consumer
                        .fetch_metadata(Some(t), TIMEOUT)
                        .map_err(|e| Error::Kafka(format!("cannot read metadata of {t}: {e}")))?;
                    for mt in md.topics() {
                        for p in mt.partitions() {
                            tpl.add_partition(mt.name(), p.id());
                        }
                    }
                }
                let committed = consumer
                    .committed_offsets(tpl, TIMEOUT)
                    .map_err(|e| Error::Kafka(format!("cannot read committed offsets: {e}")))?;
                committed
                    .elements()
                    .iter()
                    .filter_map(|el| match el.offset() {
                        Offset::Offset(o) => Some(PartitionOffset {
                            partition: obj(json!({"kafka_topic": el.topic(), "kafka_partition": el.partition()})),
                            offset: obj(json!({"kafka_offset": o})),
                        }),
                        _ => None,
                    })
                    .collect()
            }
        };
        Ok(json!({ "offsets": entries }))
    }

    fn require_stopped(&self, name: &str) -> Result<(ConnectorType, Vec<String>), Error> {
        let (kind, target, topics) = self.kind_and_topics(name)?;
        if target != TargetState::Stopped {
            return Err(Error::BadRequest(format!(
                "Connectors must be in the STOPPED state before their offsets can be modified. This can be done for the specified connector by issuing a 'PUT' request to the '/connectors/{name}/stop' endpoint"
            )));
        }
        Ok((kind, topics))
    }

    /// `DELETE /connectors/{name}/offsets`.
    pub fn reset_offsets(&self, name: &str) -> Result<J, Error> {
        let _op = lock(&self.ops);
        let (kind, _) = self.require_stopped(name)?;
        match kind {
            ConnectorType::Source => self.offsets.reset(name)?,
            ConnectorType::Sink => {
                let admin: AdminClient<DefaultClientContext> = self
                    .client
                    .create()
                    .map_err(|e| Error::Kafka(format!("cannot create admin client: {e}")))?;
                let group = sink::group_id(name);
                let results = tokio::runtime::Handle::current()
                    .block_on(admin.delete_groups(
                        &[&group],
                        &AdminOptions::new().operation_timeout(Some(TIMEOUT)),
                    ))
                    .map_err(|e| Error::Kafka(format!("cannot delete group {group}: {e}")))?;
                for r in results {
                    if let Err((g, code)) = r {
                        if code != rdkafka::types::RDKafkaErrorCode::GroupIdNotFound {
                            return Err(Error::Kafka(format!("cannot delete group {g}: {code}")));
                        }
                    }
                }
            }
        }
        Ok(json!({"message": "The offsets for this connector have been reset successfully"}))
    }

    /// `PATCH /connectors/{name}/offsets` with `{"offsets": [{"partition", "offset"}]}`;
    /// a null source offset removes that partition's offset.
    pub fn alter_offsets(&self, name: &str, body: &J) -> Result<J, Error> {
        let _op = lock(&self.ops);
        let (kind, _) = self.require_stopped(name)?;
        let items = body.get("offsets").and_then(J::as_array).ok_or_else(|| {
            Error::BadRequest("Offsets must be specified: {\"offsets\": [...]}".into())
        })?;
        let mut parsed = Vec::new();
        for it in items {
            let partition = it
                .get("partition")
                .and_then(J::as_object)
                .cloned()
                .ok_or_else(|| {
                    Error::BadRequest("Each offset must have a 'partition' object".into())
                })?;
            let offset = match it.get("offset") {
                None | Some(J::Null) => None,
                Some(J::Object(o)) => Some(o.clone()),
                Some(other) => {
                    return Err(Error::BadRequest(format!(
                        "Invalid offset {other}: expected an object or null"
                    )))
                }
            };
            parsed.push((partition, offset));
        }
        match kind {
            ConnectorType::Source => self.offsets.put(name, parsed)?,
            ConnectorType::Sink => {
                let mut tpl = TopicPartitionList::new();
                for (p, o) in parsed {
                    let topic = p.get("kafka_topic").and_then(J::as_str);
                    let part = p
                        .get("kafka_partition")
                        .and_then(J::as_i64)
                        .and_then(|v| i32::try_from(v).ok());
                    let off = o
                        .as_ref()
                        .and_then(|o| o.get("kafka_offset"))
                        .and_then(J::as_i64);
                    let (Some(t), Some(pn), Some(off)) = (topic, part, off) else {
                        return Err(Error::BadRequest(
                            "Sink offsets need {\"kafka_topic\", \"kafka_partition\"} partitions and {\"kafka_offset\"} offsets (removing a sink offset is not supported yet)".into(),
                        ));
                    };
                    tpl.add_partition_offset(t, pn, Offset::Offset(off))
                        .map_err(|e| Error::BadRequest(e.to_string()))?;
                }
                self.group_consumer(name)?
                    .commit(&tpl, CommitMode::Sync)
                    .map_err(|e| Error::Kafka(format!("cannot commit offsets: {e}")))?;
            }
        }
        Ok(json!({"message": "The offsets for this connector have been altered successfully"}))
    }
}

fn obj(j: J) -> Map<String, J> {
    match j {
        J::Object(m) => m,
        _ => Map::new(),
    }
}
