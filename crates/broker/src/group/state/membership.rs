//! SyncGroup, Heartbeat and LeaveGroup: the classic protocol's member calls after the join.

use super::*;

impl Group {
    // ----- SyncGroup -----

    pub fn sync(
        &mut self,
        req: SyncRequest,
        tx: oneshot::Sender<SyncResponse>,
        now: Instant,
        now_ms: i64,
    ) -> Effects {
        let mut out = Effects::default();
        if let Err(e) = self.check_member(&req.member_id, req.group_instance_id.as_deref()) {
            out.replies.push(Reply::Sync(tx, SyncResponse::error(e)));
            return out;
        }
        let protocol_mismatch = req
            .protocol_type
            .as_ref()
            .is_some_and(|t| Some(t) != self.protocol_type.as_ref())
            || req
                .protocol_name
                .as_ref()
                .is_some_and(|n| Some(n) != self.protocol_name.as_ref());
        let error = if req.generation_id != self.generation {
            Some(GroupError::IllegalGeneration)
        } else if protocol_mismatch {
            Some(GroupError::InconsistentGroupProtocol)
        } else {
            match self.state {
                GroupState::Empty | GroupState::Dead => Some(GroupError::UnknownMemberId),
                GroupState::PreparingRebalance => Some(GroupError::RebalanceInProgress),
                _ => None,
            }
        };
        if let Some(e) = error {
            out.replies.push(Reply::Sync(tx, SyncResponse::error(e)));
            return out;
        }
        if self.state == GroupState::Stable {
            let assignment = self
                .members
                .get(&req.member_id)
                .map(|m| m.assignment.clone())
                .unwrap_or_default();
            out.replies
                .push(Reply::Sync(tx, self.sync_response(assignment)));
            return out;
        }
        // CompletingRebalance: park until the leader's assignment arrives.
        if let Some(m) = self.members.get_mut(&req.member_id) {
            m.session_deadline = now + m.session_timeout;
            m.awaiting_sync = Some(tx);
        }
        if self.leader.as_deref() == Some(req.member_id.as_str()) {
            let mut given: HashMap<String, Bytes> = req.assignments.into_iter().collect();
            for (id, m) in self.members.iter_mut() {
                m.assignment = given.remove(id).unwrap_or_default();
            }
            self.transition(GroupState::Stable, now_ms);
            out.records.push(self.group_record(now_ms));
            let ptype = self.protocol_type.clone();
            let pname = self.protocol_name.clone();
            for m in self.members.values_mut() {
                let resp = SyncResponse {
                    error: None,
                    protocol_type: ptype.clone(),
                    protocol_name: pname.clone(),
                    assignment: m.assignment.clone(),
                };
                reply_sync(&mut out, m, resp);
            }
        }
        out
    }

    pub(super) fn sync_response(&self, assignment: Bytes) -> SyncResponse {
        SyncResponse {
            error: None,
            protocol_type: self.protocol_type.clone(),
            protocol_name: self.protocol_name.clone(),
            assignment,
        }
    }

    /// Storing the leader's assignment failed: the generation cannot stand.
    pub fn assignment_not_stored(&mut self, now: Instant, now_ms: i64) -> Effects {
        let mut out = Effects::default();
        if self.state == GroupState::Stable {
            self.transition(GroupState::CompletingRebalance, now_ms);
            self.prepare_rebalance(&mut out, now, now_ms);
        }
        out
    }

    /// The member must exist and, when static, be the current incarnation.
    pub(super) fn check_member(
        &self,
        member_id: &str,
        instance: Option<&str>,
    ) -> Result<(), GroupError> {
        if let Some(iid) = instance {
            match self.static_members.get(iid) {
                Some(current) if current != member_id => return Err(GroupError::FencedInstanceId),
                _ => {}
            }
        }
        if self.state == GroupState::Dead || !self.members.contains_key(member_id) {
            return Err(GroupError::UnknownMemberId);
        }
        Ok(())
    }

    // ----- Heartbeat and LeaveGroup -----

    pub fn heartbeat(
        &mut self,
        member_id: &str,
        instance: Option<&str>,
        generation: i32,
        now: Instant,
    ) -> Result<(), GroupError> {
        if self.state == GroupState::Empty {
            return Err(GroupError::UnknownMemberId);
        }
        self.check_member(member_id, instance)?;
        if generation != self.generation {
            return Err(GroupError::IllegalGeneration);
        }
        if let Some(m) = self.members.get_mut(member_id) {
            m.session_deadline = now + m.session_timeout;
        }
        match self.state {
            GroupState::PreparingRebalance => Err(GroupError::RebalanceInProgress),
            _ => Ok(()),
        }
    }

    pub fn leave(
        &mut self,
        leaving: &[MemberRef],
        now: Instant,
        now_ms: i64,
    ) -> (Vec<Result<(), GroupError>>, Effects) {
        let mut out = Effects::default();
        let mut results = Vec::with_capacity(leaving.len());
        for l in leaving {
            let r = match &l.group_instance_id {
                Some(iid) => match self.static_members.get(iid).cloned() {
                    None => Err(GroupError::UnknownMemberId),
                    Some(current) if !l.member_id.is_empty() && l.member_id != current => {
                        Err(GroupError::FencedInstanceId)
                    }
                    Some(current) => {
                        self.remove_member(&mut out, &current, now, now_ms);
                        Ok(())
                    }
                },
                None if self.pending.remove(&l.member_id).is_some() => {
                    self.try_complete_join(&mut out, now, now_ms);
                    Ok(())
                }
                None if self.members.contains_key(&l.member_id) => {
                    self.remove_member(&mut out, &l.member_id, now, now_ms);
                    Ok(())
                }
                None => Err(GroupError::UnknownMemberId),
            };
            results.push(r);
        }
        (results, out)
    }

    /// Everything that fell due by `now`: expired sessions and pending member ids, the
    /// end of the initial delay or of the rebalance timeout, expired offsets.
    pub fn on_deadline(&mut self, now: Instant, now_ms: i64) -> Effects {
        let mut out = Effects::default();
        let had_consumers = !self.consumer.is_empty();
        self.consumer.expire(now);
        if had_consumers && self.consumer.is_empty() {
            self.state_since_ms = now_ms;
        }
        out.records.extend(self.consumer.changed_records(&self.id));
        let expired: Vec<String> = self
            .members
            .iter()
            .filter(|(_, m)| {
                m.awaiting_join.is_none() && m.awaiting_sync.is_none() && m.session_deadline <= now
            })
            .map(|(id, _)| id.clone())
            .collect();
        for id in expired {
            tracing::info!(group = %self.id, member = %id, "member session expired");
            self.remove_member(&mut out, &id, now, now_ms);
        }
        let before = self.pending.len();
        self.pending.retain(|_, d| *d > now);
        if self.pending.len() != before {
            self.try_complete_join(&mut out, now, now_ms);
        }
        if self.state == GroupState::PreparingRebalance
            && self.rebalance_deadline.is_some_and(|d| d <= now)
        {
            match self.initial_delay {
                Some((true, remaining)) if !remaining.is_zero() => {
                    // Members are still arriving: wait one more delay, within the
                    // rebalance timeout.
                    let delay =
                        Duration::from_millis(self.config.initial_rebalance_delay_ms.max(0) as u64)
                            .min(remaining);
                    self.initial_delay = Some((false, remaining - delay));
                    self.rebalance_deadline = Some(now + delay);
                }
                Some(_) => {
                    self.initial_delay = None;
                    if self.members.values().all(|m| m.awaiting_join.is_some()) {
                        self.complete_join(&mut out, now, now_ms);
                    } else {
                        let rest = self
                            .members
                            .values()
                            .map(|m| m.rebalance_timeout)
                            .max()
                            .unwrap_or_default();
                        self.rebalance_deadline = Some(now + rest);
                    }
                }
                None => self.complete_join(&mut out, now, now_ms),
            }
        }
        if self.next_offset_check <= now {
            let interval = Duration::from_millis(
                self.config.offsets_retention_check_interval_ms.max(1) as u64,
            );
            self.next_offset_check = now + interval;
            self.expire_offsets(&mut out, now_ms);
        }
        out
    }

    /// `offsets.retention.minutes`: offsets of a group that has been Empty that long
    /// (or, for a group that only stores offsets, not committed for that long) go.
    pub(super) fn expire_offsets(&mut self, out: &mut Effects, now_ms: i64) {
        if self.state != GroupState::Empty || !self.consumer.is_empty() {
            return;
        }
        let retention = self.config.offsets_retention_ms;
        let standalone = self.protocol_type.is_none();
        let since = self.state_since_ms;
        let expired: Vec<(String, i32)> = self
            .offsets
            .iter()
            .filter(|(_, o)| {
                let base = if standalone {
                    o.value.commit_timestamp
                } else {
                    since.max(o.value.commit_timestamp)
                };
                now_ms.saturating_sub(base) >= retention
            })
            .map(|(k, _)| k.clone())
            .collect();
        let expired_any = !expired.is_empty();
        for (topic, partition) in expired {
            self.offsets.remove(&(topic.clone(), partition));
            out.records.push((
                RecordKey::Offset {
                    group: self.id.clone(),
                    topic,
                    partition,
                },
                None,
            ));
        }
        if expired_any && self.offsets.is_empty() && self.members.is_empty() {
            out.records.push((
                RecordKey::Group {
                    group: self.id.clone(),
                },
                None,
            ));
            self.transition(GroupState::Dead, now_ms);
        }
    }
}
