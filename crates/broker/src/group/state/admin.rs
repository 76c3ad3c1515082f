//! Describe and delete, and the KIP-848 side (ConsumerGroupHeartbeat and ConsumerGroupDescribe) of a group.

use super::*;

impl Group {
    // ----- Admin -----

    pub fn describe(&self) -> GroupDescription {
        if self.is_consumer && self.state != GroupState::Dead {
            return GroupDescription {
                group_id: self.id.clone(),
                state: self.state,
                state_name: self.consumer.state_name(),
                group_type: "Consumer",
                protocol_type: "consumer".into(),
                protocol: self.consumer.assignor.clone(),
                members: self
                    .consumer
                    .members
                    .iter()
                    .map(|(id, m)| MemberDescription {
                        member_id: id.clone(),
                        group_instance_id: m.instance_id.clone(),
                        client_id: m.client_id.clone(),
                        client_host: m.client_host.clone(),
                        metadata: Bytes::new(),
                        assignment: Bytes::new(),
                    })
                    .collect(),
                exists: true,
            };
        }
        let stable = self.state == GroupState::Stable;
        let protocol = self.protocol_name.as_deref();
        GroupDescription {
            group_id: self.id.clone(),
            state: self.state,
            state_name: self.state.name(),
            group_type: "Classic",
            protocol_type: self.protocol_type.clone().unwrap_or_default(),
            protocol: if stable {
                protocol.unwrap_or_default().to_string()
            } else {
                String::new()
            },
            members: self
                .members
                .iter()
                .map(|(id, m)| MemberDescription {
                    member_id: id.clone(),
                    group_instance_id: m.group_instance_id.clone(),
                    client_id: m.client_id.clone(),
                    client_host: m.client_host.clone(),
                    metadata: if stable {
                        m.metadata(protocol)
                    } else {
                        Bytes::new()
                    },
                    assignment: if stable {
                        m.assignment.clone()
                    } else {
                        Bytes::new()
                    },
                })
                .collect(),
            exists: self.state != GroupState::Dead,
        }
    }

    /// DeleteGroups: only an Empty group; its offsets and metadata become tombstones.
    pub fn delete(&mut self, now_ms: i64) -> (Result<(), GroupError>, Effects) {
        let mut out = Effects::default();
        match self.state {
            GroupState::Dead => return (Err(GroupError::GroupIdNotFound), out),
            GroupState::Empty if self.consumer.is_empty() => {}
            _ => return (Err(GroupError::NonEmptyGroup), out),
        }
        for (topic, partition) in std::mem::take(&mut self.offsets).into_keys() {
            out.records.push((
                RecordKey::Offset {
                    group: self.id.clone(),
                    topic,
                    partition,
                },
                None,
            ));
        }
        out.records.push((
            RecordKey::Group {
                group: self.id.clone(),
            },
            None,
        ));
        self.pending.clear();
        self.transition(GroupState::Dead, now_ms);
        (Ok(()), out)
    }

    // ----- KIP-848 -----

    pub fn consumer_heartbeat(
        &mut self,
        h: ConsumerHeartbeat,
        now: Instant,
        now_ms: i64,
    ) -> (ConsumerHeartbeatResponse, Effects) {
        self.revive(now, now_ms);
        if !self.members.is_empty() || !self.pending.is_empty() {
            let resp = ConsumerHeartbeatResponse {
                error: Some(GroupError::GroupIdNotFound),
                error_message: Some(format!("Group {} is not a consumer group.", self.id)),
                member_id: h.member_id,
                member_epoch: h.member_epoch,
                ..Default::default()
            };
            return (resp, Effects::default());
        }
        self.is_consumer = true;
        let was_empty = self.consumer.is_empty();
        let (session_ms, interval_ms) = h.timeouts.unwrap_or((
            self.config.consumer_session_timeout_ms,
            self.config.consumer_heartbeat_interval_ms,
        ));
        let session = Duration::from_millis(session_ms.max(1) as u64);
        let resp = self.consumer.heartbeat(h, session, interval_ms, now);
        if was_empty != self.consumer.is_empty() {
            self.state_since_ms = now_ms;
        }
        let out = Effects {
            records: self.consumer.changed_records(&self.id),
            ..Default::default()
        };
        (resp, out)
    }

    /// ConsumerGroupDescribe: `None` for a group that is not a consumer group.
    pub fn consumer_describe(&self) -> Option<ConsumerGroupDescription> {
        if !self.is_consumer || self.state == GroupState::Dead {
            return None;
        }
        let c = &self.consumer;
        let named = |a: &crate::group::consumer::Assignment| {
            a.iter()
                .map(|(id, ps)| {
                    (
                        *id,
                        c.topic_name(id).unwrap_or_default(),
                        ps.iter().copied().collect(),
                    )
                })
                .collect::<Vec<_>>()
        };
        Some(ConsumerGroupDescription {
            state: c.state_name(),
            group_epoch: c.group_epoch,
            assignment_epoch: c.target_epoch,
            assignor: if c.assignor.is_empty() {
                "uniform".into()
            } else {
                c.assignor.clone()
            },
            members: c
                .members
                .iter()
                .map(|(id, m)| ConsumerMemberDescription {
                    member_id: id.clone(),
                    instance_id: m.instance_id.clone(),
                    rack_id: m.rack_id.clone(),
                    member_epoch: m.epoch,
                    client_id: m.client_id.clone(),
                    client_host: m.client_host.clone(),
                    subscribed_topic_names: m.subscribed.iter().cloned().collect(),
                    assignment: named(&m.assigned),
                    target_assignment: named(&m.target),
                })
                .collect(),
        })
    }

    /// OffsetFetch v9 from a KIP-848 member must carry its current epoch.
    pub fn check_fetch(&self, member: Option<(&str, i32)>) -> Result<(), GroupError> {
        match member {
            Some((id, epoch)) if self.is_consumer && epoch >= 0 => {
                self.consumer.check_member_epoch(id, epoch)
            }
            _ => Ok(()),
        }
    }

    /// The group's membership record (written after each rebalance completes).
    pub(super) fn group_record(&self, now_ms: i64) -> (RecordKey, Option<Vec<u8>>) {
        let protocol = self.protocol_name.as_deref();
        let value = GroupValue {
            protocol_type: self.protocol_type.clone().unwrap_or_default(),
            generation: self.generation,
            protocol: self.protocol_name.clone(),
            leader: self.leader.clone(),
            current_state_timestamp: now_ms,
            members: if self.state == GroupState::Stable {
                self.members
                    .iter()
                    .map(|(id, m)| MemberValue {
                        member_id: id.clone(),
                        group_instance_id: m.group_instance_id.clone(),
                        client_id: m.client_id.clone(),
                        client_host: m.client_host.clone(),
                        rebalance_timeout: m.rebalance_timeout.as_millis() as i32,
                        session_timeout: m.session_timeout.as_millis() as i32,
                        subscription: m.metadata(protocol),
                        assignment: m.assignment.clone(),
                    })
                    .collect()
            } else {
                Vec::new()
            },
        };
        (
            RecordKey::Group {
                group: self.id.clone(),
            },
            Some(value.encode()),
        )
    }

    /// Whether a member's protocol type is the group's (for describe of empty groups).
    pub fn member_protocol_types(&self) -> impl Iterator<Item = &str> {
        self.members.values().map(|m| m.protocol_type.as_str())
    }
}
