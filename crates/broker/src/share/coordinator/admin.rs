//! The share coordinator's admin side: describe, reset and delete share-partition
//! start offsets and whole share groups (DescribeShareGroupOffsets,
//! AlterShareGroupOffsets, DeleteShareGroupOffsets, DeleteGroups).

use super::*;

impl ShareCoordinator {
    /// The start offset of every share-partition of `group`; `None` if no such group.
    pub fn offsets(&self, group: &str) -> Option<Vec<ShareOffsets>> {
        let st = self.lock();
        let coordinated = self.share_state.offsets_of(group);
        if !st.groups.contains_key(group) && coordinated.is_empty() {
            return None;
        }
        let mut out: Vec<ShareOffsets> = st
            .partitions
            .iter()
            .filter(|((g, _, _), _)| g == group)
            .map(|((_, t, p), sp)| ShareOffsets {
                topic_id: *t,
                partition: *p,
                start_offset: sp.start_offset(),
            })
            .collect();
        // Share-partitions not loaded here, as their coordinator (this broker) has them.
        for (t, p, start_offset) in coordinated {
            if !st.partitions.contains_key(&(group.to_string(), t, p)) {
                out.push(ShareOffsets {
                    topic_id: t,
                    partition: p,
                    start_offset,
                });
            }
        }
        Some(out)
    }

    /// The topics `group`'s members subscribed to since this broker started.
    pub fn subscribed_topics(&self, group: &str) -> std::collections::BTreeSet<String> {
        self.lock()
            .subscribed
            .get(group)
            .cloned()
            .unwrap_or_default()
    }

    /// A share-partition's start offset as its share coordinator has it (wherever that
    /// is); `None` when it cannot be asked.
    pub async fn coordinated_start_offset(
        &self,
        group: &str,
        topic_id: Uuid,
        partition: i32,
    ) -> Option<i64> {
        let key = StateKey {
            group: group.to_string(),
            topic_id,
            partition,
        };
        self.persister.summary(&self.share_state, &key).await.ok()
    }

    /// Every share-partition key of `group` known here: loaded, coordinated here, or a
    /// partition of a topic the group subscribed to or that is named (in a cluster its
    /// state may live on another broker's share coordinator). `info`: the topics.
    fn keys_of(
        &self,
        st: &State,
        group: &str,
        topics: Option<&[Uuid]>,
        info: &TopicInfo,
    ) -> Vec<Key> {
        let wanted = |t: &Uuid| topics.is_none_or(|ts| ts.contains(t));
        let mut keys: Vec<Key> = st
            .partitions
            .keys()
            .filter(|(g, t, _)| g == group && wanted(t))
            .cloned()
            .collect();
        let subscribed = st.subscribed.get(group);
        for (name, (t, count)) in info {
            let named = topics.is_some_and(|ts| ts.contains(t));
            if named || (topics.is_none() && subscribed.is_some_and(|s| s.contains(name))) {
                for p in 0..*count {
                    let k = (group.to_string(), *t, p);
                    if !keys.contains(&k) {
                        keys.push(k);
                    }
                }
            }
        }
        for (t, p, _) in self.share_state.offsets_of(group) {
            let k = (group.to_string(), t, p);
            if wanted(&t) && !keys.contains(&k) {
                keys.push(k);
            }
        }
        keys
    }

    /// Deletes an empty share group and its share-partitions, wherever their state is
    /// coordinated. `info`: the topics (ids and partition counts).
    pub async fn delete(&self, group: &str, info: &TopicInfo) -> Result<(), ShareError> {
        let removed = {
            let mut st = self.lock();
            check_empty(&st, group)?;
            let keys = self.keys_of(&st, group, None, info);
            st.groups.remove(group);
            st.subscribed.remove(group);
            st.sessions.retain(|(g, _), _| g != group);
            keys.into_iter()
                .map(|k| {
                    st.partitions.remove(&k);
                    st.loaded.remove(&k);
                    self.persister.remove(state_key(&k))
                })
                .collect::<Vec<_>>()
        };
        durable(removed).await
    }

    /// Moves share-partitions' start offsets (AlterShareGroupOffsets; the group must
    /// have no members). A share-partition named for the first time is created there.
    pub async fn alter_offsets(
        &self,
        group: &str,
        offsets: &[(Uuid, i32, i64)],
    ) -> Result<(), ShareError> {
        if group.is_empty() {
            return Err(ShareError::InvalidGroupId);
        }
        let saved = {
            let mut st = self.lock();
            if st.groups.get(group).is_some_and(|g| !g.members.is_empty()) {
                return Err(ShareError::NonEmptyGroup);
            }
            st.groups.entry(group.to_string()).or_default();
            let mut saved = Vec::new();
            let State {
                partitions, loaded, ..
            } = &mut *st;
            for &(t, p, offset) in offsets {
                let k = (group.to_string(), t, p);
                let sp = partitions
                    .entry(k.clone())
                    .or_insert_with(|| SharePartition::new(offset));
                sp.reset(offset);
                let (key, state) = durable_state(loaded, &k, sp);
                saved.push(self.persister.save(key, state));
            }
            saved
        };
        durable(saved).await
    }

    /// Forgets a share group's share-partitions of the given topics
    /// (DeleteShareGroupOffsets; the group must have no members).
    pub async fn delete_offsets(
        &self,
        group: &str,
        topics: &[Uuid],
        info: &TopicInfo,
    ) -> Result<(), ShareError> {
        if group.is_empty() {
            return Err(ShareError::InvalidGroupId);
        }
        let removed = {
            let mut st = self.lock();
            check_empty(&st, group)?;
            let keys = self.keys_of(&st, group, Some(topics), info);
            keys.into_iter()
                .map(|k| {
                    st.partitions.remove(&k);
                    st.loaded.remove(&k);
                    self.persister.remove(state_key(&k))
                })
                .collect::<Vec<_>>()
        };
        durable(removed).await
    }
}
