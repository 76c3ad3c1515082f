//! Committed offsets: OffsetCommit, OffsetFetch, transactional commits held until their marker, expiry and the topics they name.

use super::*;

impl Group {
    // ----- Offsets -----

    /// Checks that a commit may be made (Kafka's `validateOffsetCommit`).
    pub(super) fn check_commit(&self, req: &CommitRequest) -> Result<(), GroupError> {
        if self.is_consumer {
            if req.generation_id < 0 && req.member_id.is_empty() {
                return if self.consumer.is_empty() {
                    Ok(())
                } else {
                    Err(GroupError::UnknownMemberId)
                };
            }
            if req.version < 9 {
                // Only v9+ carries a member epoch rather than a generation.
                return Err(GroupError::UnsupportedVersion);
            }
            return self
                .consumer
                .check_member_epoch(&req.member_id, req.generation_id);
        }
        if req.generation_id < 0 && self.state == GroupState::Empty {
            return Ok(()); // the group only stores offsets (assign() consumers, admin)
        }
        if req.generation_id >= 0 || !req.member_id.is_empty() || req.group_instance_id.is_some() {
            self.check_member(&req.member_id, req.group_instance_id.as_deref())?;
            if req.generation_id != self.generation {
                return Err(GroupError::IllegalGeneration);
            }
        } else if self.state != GroupState::Empty {
            return Err(GroupError::UnknownMemberId);
        }
        if self.state == GroupState::CompletingRebalance {
            return Err(GroupError::RebalanceInProgress);
        }
        Ok(())
    }

    /// Commits offsets. `Err` is a group-level error for every partition; `Ok` holds
    /// one result per requested offset, in order.
    pub fn commit(
        &mut self,
        req: CommitRequest,
        now: Instant,
        now_ms: i64,
    ) -> (Result<Vec<Result<(), GroupError>>, GroupError>, Effects) {
        let mut out = Effects::default();
        self.revive(now, now_ms);
        if let Err(e) = self.check_commit(&req) {
            return (Err(e), out);
        }
        if let Some(m) = self.members.get_mut(&req.member_id) {
            m.session_deadline = now + m.session_timeout;
        }
        let (results, stored) = self.offset_records(req.offsets, now_ms, &mut out);
        self.offsets.extend(stored);
        (Ok(results), out)
    }

    /// The records for committed offsets (pushed to `out`), one result per offset, and
    /// the offsets to store: an offset whose metadata is too large is refused alone.
    pub(super) fn offset_records(
        &self,
        offsets: Vec<crate::group::OffsetCommit>,
        now_ms: i64,
        out: &mut Effects,
    ) -> (Vec<Result<(), GroupError>>, Vec<OffsetEntry>) {
        let mut results = Vec::with_capacity(offsets.len());
        let mut stored = Vec::with_capacity(offsets.len());
        for o in offsets {
            let metadata = o.metadata.unwrap_or_default();
            if metadata.len() > self.config.offset_metadata_max_bytes {
                results.push(Err(GroupError::OffsetMetadataTooLarge));
                continue;
            }
            let value = OffsetValue {
                offset: o.offset,
                leader_epoch: o.leader_epoch,
                metadata,
                commit_timestamp: now_ms,
            };
            out.records.push((
                RecordKey::Offset {
                    group: self.id.clone(),
                    topic: o.topic.clone(),
                    partition: o.partition,
                },
                Some(value.encode()),
            ));
            stored.push((
                (o.topic, o.partition),
                StoredOffset {
                    value,
                    appended_at: self.log_position,
                },
            ));
            results.push(Ok(()));
        }
        (results, stored)
    }

    /// TxnOffsetCommit: checks the member (unless the commit names none, KIP-447) and
    /// returns the records to write in the producer's transaction, and the offsets to
    /// hold as pending once they are written ([`Group::add_pending`]).
    #[allow(clippy::type_complexity)]
    pub fn txn_commit(
        &mut self,
        req: CommitRequest,
        now_ms: i64,
    ) -> (
        Result<Vec<Result<(), GroupError>>, GroupError>,
        Effects,
        Vec<OffsetEntry>,
    ) {
        let mut out = Effects::default();
        let anonymous = req.generation_id < 0 && req.member_id.is_empty();
        let checked = if anonymous {
            Ok(())
        } else if self.is_consumer {
            self.consumer
                .check_member_epoch(&req.member_id, req.generation_id)
        } else {
            self.check_member(&req.member_id, req.group_instance_id.as_deref())
                .and(
                    (req.generation_id == self.generation)
                        .then_some(())
                        .ok_or(GroupError::IllegalGeneration),
                )
        };
        if let Err(e) = checked {
            return (Err(e), out, Vec::new());
        }
        let (results, pending) = self.offset_records(req.offsets, now_ms, &mut out);
        (Ok(results), out, pending)
    }

    /// Holds offsets a transaction wrote until its marker.
    pub fn add_pending(&mut self, producer_id: i64, offsets: Vec<OffsetEntry>) {
        self.pending_txn
            .entry(producer_id)
            .or_default()
            .extend(offsets);
    }

    /// A transaction marker reached this group's partition: its offsets become the
    /// committed ones (commit) or are forgotten (abort).
    pub fn complete_txn(&mut self, producer_id: i64, commit: bool) {
        let Some(pending) = self.pending_txn.remove(&producer_id) else {
            return;
        };
        if commit {
            for (k, p) in pending {
                apply_if_newer(&mut self.offsets, k, p);
            }
        }
    }

    /// Where the group's next records will be written (set by its task before each
    /// command that writes offsets).
    pub fn at_log_position(&mut self, position: i64) {
        self.log_position = position;
    }

    pub(super) fn is_unstable(&self, topic: &str, partition: i32) -> bool {
        self.pending_txn
            .values()
            .any(|m| m.contains_key(&(topic.to_string(), partition)))
    }

    /// Committed offsets: all of them (`None`), or the requested partitions, with -1
    /// for partitions that have none.
    pub fn fetch_offsets(&self, wanted: Option<&[(String, Vec<i32>)]>) -> Vec<CommittedOffset> {
        let make = |topic: &str, partition: i32, o: Option<&StoredOffset>| CommittedOffset {
            topic: topic.to_string(),
            partition,
            offset: o.map_or(-1, |o| o.value.offset),
            leader_epoch: o.map_or(-1, |o| o.value.leader_epoch),
            metadata: o.map(|o| o.value.metadata.clone()).unwrap_or_default(),
            unstable: !self.pending_txn.is_empty() && self.is_unstable(topic, partition),
        };
        match wanted {
            None => self
                .offsets
                .iter()
                .map(|((t, p), o)| make(t, *p, Some(o)))
                .collect(),
            Some(w) => w
                .iter()
                .flat_map(|(t, ps)| {
                    ps.iter()
                        .map(|p| make(t, *p, self.offsets.get(&(t.clone(), *p))))
                        .collect::<Vec<_>>()
                })
                .collect(),
        }
    }

    /// OffsetDelete: only offsets of topics the group is not consuming.
    pub fn delete_offsets(
        &mut self,
        wanted: &[(String, Vec<i32>)],
    ) -> (Result<Vec<Result<(), GroupError>>, GroupError>, Effects) {
        let mut out = Effects::default();
        if self.state == GroupState::Dead {
            return (Err(GroupError::GroupIdNotFound), out);
        }
        let subscribed: HashSet<String> = if self.is_consumer {
            self.consumer
                .members
                .values()
                .flat_map(|m| m.subscribed.iter().cloned())
                .collect()
        } else if self.state == GroupState::Empty {
            HashSet::new()
        } else if self.protocol_type.as_deref() == Some("consumer") {
            let protocol = self.protocol_name.as_deref();
            self.members
                .values()
                .flat_map(|m| subscribed_topics(&m.metadata(protocol)))
                .collect()
        } else {
            return (Err(GroupError::NonEmptyGroup), out);
        };
        let mut results = Vec::new();
        for (topic, partitions) in wanted {
            for p in partitions {
                if subscribed.contains(topic) {
                    results.push(Err(GroupError::GroupSubscribedToTopic));
                    continue;
                }
                if self.offsets.remove(&(topic.clone(), *p)).is_some() {
                    out.records.push((
                        RecordKey::Offset {
                            group: self.id.clone(),
                            topic: topic.clone(),
                            partition: *p,
                        },
                        None,
                    ));
                }
                results.push(Ok(()));
            }
        }
        (Ok(results), out)
    }

    /// A topic was deleted: its committed offsets go too (as in Kafka), so a topic
    /// created again under the name starts without the old positions.
    pub fn forget_topic(&mut self, topic: &str) -> Effects {
        let mut out = Effects::default();
        let gone: Vec<(String, i32)> = self
            .offsets
            .keys()
            .filter(|(t, _)| t == topic)
            .cloned()
            .collect();
        for (t, p) in gone {
            self.offsets.remove(&(t.clone(), p));
            out.records.push((
                RecordKey::Offset {
                    group: self.id.clone(),
                    topic: t,
                    partition: p,
                },
                None,
            ));
        }
        out
    }

    /// The broker is stopping: parked JoinGroup and SyncGroup requests are answered
    /// NOT_COORDINATOR at once (clients look the coordinator up again), so shutdown
    /// never waits for a rebalance.
    pub fn unload(&mut self) -> Effects {
        let mut out = Effects::default();
        for (id, m) in self.members.iter_mut() {
            reply_join(
                &mut out,
                m,
                JoinResponse::error(GroupError::NotCoordinator, id.clone()),
            );
            reply_sync(&mut out, m, SyncResponse::error(GroupError::NotCoordinator));
        }
        out
    }
}
