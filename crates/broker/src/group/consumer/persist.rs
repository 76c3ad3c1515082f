//! A KIP-848 group's state in `__consumer_offsets`, so members keep their epochs and
//! assignments across a coordinator restart (or a move to another broker) instead of
//! being fenced and starting over.
//!
//! The records are Kafka's group-coordinator records, key types 3 to 8, with their
//! version-0 value schemas (flexible encoding):
//! - 3 `ConsumerGroupMetadata` (group epoch),
//! - 4 `ConsumerGroupPartitionMetadata` (the subscribed topics' ids and partition
//!   counts the target was computed from),
//! - 5 `ConsumerGroupMemberMetadata` (subscription, assignor, timeouts, client),
//! - 6 `ConsumerGroupTargetAssignmentMetadata` (the target's epoch),
//! - 7 `ConsumerGroupTargetAssignmentMember` (a member's target),
//! - 8 `ConsumerGroupCurrentMemberAssignment` (a member's epochs, owned partitions and
//!   partitions pending revocation).
//!
//! Writing is a diff: after each command the group's records are encoded and only those
//! whose bytes changed (or whose key went away, as a tombstone) are appended, so a
//! heartbeat that changes nothing writes nothing.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use tokio::time::Instant;
use uuid::Uuid;

use super::{Assignment, ConsumerGroup, ConsumerMember};
use crate::group::records::{ConsumerRecordKind as Kind, RecordError, RecordKey};

/// Encoded record values by key, as last written (or replayed).
pub(crate) type Stored = BTreeMap<RecordKey, Vec<u8>>;

impl ConsumerGroup {
    /// The records that describe the group now.
    fn to_records(&self, group: &str) -> Stored {
        let mut out = Stored::new();
        if self.members.is_empty() {
            // An empty KIP-848 group keeps only its offsets (stored elsewhere).
            return out;
        }
        let key = |kind, member: Option<&str>| RecordKey::Consumer {
            kind,
            group: group.to_string(),
            member: member.map(str::to_string),
        };
        let mut w = Writer::value();
        w.i32(self.group_epoch);
        out.insert(key(Kind::Metadata, None), w.finish());

        let mut w = Writer::value();
        w.i32(self.group_epoch);
        w.len(self.signature.len());
        for (name, (id, count)) in &self.signature {
            w.uuid(id);
            w.str(name);
            w.i32(*count);
            w.len(0); // PartitionRacks
            w.tags();
        }
        out.insert(key(Kind::PartitionMetadata, None), w.finish());

        let mut w = Writer::value();
        w.i32(self.target_epoch);
        out.insert(key(Kind::TargetMetadata, None), w.finish());

        for (id, m) in &self.members {
            let mut w = Writer::value();
            w.nullable_str(m.instance_id.as_deref());
            w.nullable_str(m.rack_id.as_deref());
            w.str(&m.client_id);
            w.str(&m.client_host);
            if m.regex.is_some() {
                w.len(0);
            } else {
                w.len(m.subscribed.len());
                for t in &m.subscribed {
                    w.str(t);
                }
            }
            w.nullable_str(m.regex.as_ref().map(regex_source));
            w.i32(i32::try_from(m.rebalance_timeout.as_millis()).unwrap_or(i32::MAX));
            w.nullable_str(m.assignor.as_deref());
            out.insert(key(Kind::MemberMetadata, Some(id)), w.finish());

            let mut w = Writer::value();
            w.assignment(&m.target);
            out.insert(key(Kind::TargetMember, Some(id)), w.finish());

            let mut w = Writer::value();
            w.i32(m.epoch);
            w.i32(m.previous_epoch);
            // Kafka's MemberState: 1 stable, 2 unrevoked partitions, 3 unreleased.
            let state = if !super::is_empty(&m.pending_revocation) {
                2
            } else if m.assigned != m.target {
                3
            } else {
                1
            };
            w.i8(state);
            w.assignment(&m.assigned);
            w.assignment(&m.pending_revocation);
            out.insert(key(Kind::CurrentAssignment, Some(id)), w.finish());
        }
        out
    }

    /// What to append so `__consumer_offsets` matches the group: changed records and
    /// tombstones for records that no longer exist.
    pub fn changed_records(&mut self, group: &str) -> Vec<(RecordKey, Option<Vec<u8>>)> {
        let now = self.to_records(group);
        let mut out = Vec::new();
        for k in self.stored.keys() {
            if !now.contains_key(k) {
                out.push((k.clone(), None));
            }
        }
        for (k, v) in &now {
            if self.stored.get(k) != Some(v) {
                out.push((k.clone(), Some(v.clone())));
            }
        }
        self.stored = now;
        out
    }

    /// Rebuilds the group from its replayed records. Members get a fresh session (they
    /// are expected back within it); anything undecodable is skipped with a warning and
    /// the rest restored, so a damaged record costs that member a rejoin, not the group.
    pub fn restore(&mut self, records: Stored, session: Duration, now: Instant) {
        let mut members: BTreeMap<String, ConsumerMember> = BTreeMap::new();
        for (key, value) in &records {
            let RecordKey::Consumer { kind, member, .. } = key else {
                continue;
            };
            let r = match (kind, member) {
                (Kind::Metadata, _) => Reader::value(value).and_then(|mut r| {
                    self.group_epoch = r.i32()?;
                    Ok(())
                }),
                (Kind::TargetMetadata, _) => Reader::value(value).and_then(|mut r| {
                    self.target_epoch = r.i32()?;
                    Ok(())
                }),
                (Kind::PartitionMetadata, _) => Reader::value(value).and_then(|mut r| {
                    r.i32()?;
                    let mut sig = BTreeMap::new();
                    for _ in 0..r.len()? {
                        let id = r.uuid()?;
                        let name = r.str()?;
                        let count = r.i32()?;
                        for _ in 0..r.len()? {
                            r.i32()?;
                            for _ in 0..r.len()? {
                                r.str()?;
                            }
                            r.tags()?;
                        }
                        r.tags()?;
                        sig.insert(name, (id, count));
                    }
                    self.signature = sig;
                    Ok(())
                }),
                (kind, Some(id)) => {
                    let m = members
                        .entry(id.clone())
                        .or_insert_with(|| blank_member(session, now));
                    // Applied whole or not at all.
                    let mut next = m.clone();
                    Reader::value(value)
                        .and_then(|r| restore_member(&mut next, *kind, r, now))
                        .map(|()| *m = next)
                }
                (_, None) => Err(RecordError("member record without a member id")),
            };
            if let Err(e) = r {
                tracing::warn!(key = ?key, error = %e, "skipping consumer group record");
            }
        }
        // The assignor the members voted for, as when the target was computed.
        let mut votes: BTreeMap<&str, usize> = BTreeMap::new();
        for m in members.values() {
            if let Some(a) = &m.assignor {
                *votes.entry(a.as_str()).or_default() += 1;
            }
        }
        self.assignor = votes
            .into_iter()
            .max_by_key(|(_, n)| *n)
            .map_or("uniform", |(a, _)| a)
            .to_string();
        self.members = members;
        self.stored = records;
    }
}

fn blank_member(session: Duration, now: Instant) -> ConsumerMember {
    ConsumerMember {
        instance_id: None,
        rack_id: None,
        client_id: String::new(),
        client_host: String::new(),
        subscribed: BTreeSet::new(),
        regex: None,
        assignor: None,
        rebalance_timeout: Duration::ZERO,
        epoch: 0,
        previous_epoch: 0,
        assigned: Assignment::new(),
        pending_revocation: Assignment::new(),
        target: Assignment::new(),
        last_sent: None,
        session_deadline: now + session,
        revocation_deadline: None,
    }
}

fn restore_member(
    m: &mut ConsumerMember,
    kind: Kind,
    mut r: Reader<'_>,
    now: Instant,
) -> Result<(), RecordError> {
    match kind {
        Kind::MemberMetadata => {
            m.instance_id = r.nullable_str()?;
            m.rack_id = r.nullable_str()?;
            m.client_id = r.str()?;
            m.client_host = r.str()?;
            let mut subscribed = BTreeSet::new();
            for _ in 0..r.len()? {
                subscribed.insert(r.str()?);
            }
            m.subscribed = subscribed;
            m.regex = match r.nullable_str()? {
                Some(re) => Some(
                    regex::Regex::new(&format!("^(?:{re})$"))
                        .map_err(|_| RecordError("stored regex does not compile"))?,
                ),
                None => None,
            };
            m.rebalance_timeout = Duration::from_millis(r.i32()?.max(0) as u64);
            m.assignor = r.nullable_str()?;
        }
        Kind::TargetMember => m.target = r.assignment()?,
        Kind::CurrentAssignment => {
            m.epoch = r.i32()?;
            m.previous_epoch = r.i32()?;
            r.i8()?;
            m.assigned = r.assignment()?;
            m.pending_revocation = r.assignment()?;
            if !super::is_empty(&m.pending_revocation) {
                m.revocation_deadline = Some(now + m.rebalance_timeout);
            }
        }
        _ => return Err(RecordError("not a member record")),
    }
    Ok(())
}

/// The pattern as the member sent it (stored anchored as `^(?:...)$`).
fn regex_source(re: &regex::Regex) -> &str {
    let s = re.as_str();
    s.strip_prefix("^(?:")
        .and_then(|s| s.strip_suffix(")$"))
        .unwrap_or(s)
}

/// Kafka's flexible encoding of a coordinator value: version, fields, tagged fields.
struct Writer(Vec<u8>);

impl Writer {
    fn value() -> Self {
        let mut w = Writer(Vec::with_capacity(64));
        w.0.extend_from_slice(&0i16.to_be_bytes());
        w
    }
    fn finish(mut self) -> Vec<u8> {
        self.tags();
        self.0
    }
    fn uvarint(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.0.push((v as u8) | 0x80);
            v >>= 7;
        }
        self.0.push(v as u8);
    }
    fn len(&mut self, n: usize) {
        self.uvarint(n as u64 + 1);
    }
    fn tags(&mut self) {
        self.0.push(0);
    }
    fn i8(&mut self, v: i8) {
        self.0.push(v as u8);
    }
    fn i32(&mut self, v: i32) {
        self.0.extend_from_slice(&v.to_be_bytes());
    }
    fn uuid(&mut self, id: &Uuid) {
        self.0.extend_from_slice(id.as_bytes());
    }
    fn str(&mut self, s: &str) {
        self.len(s.len());
        self.0.extend_from_slice(s.as_bytes());
    }
    fn nullable_str(&mut self, s: Option<&str>) {
        match s {
            Some(s) => self.str(s),
            None => self.0.push(0),
        }
    }
    /// `[]TopicPartitions`: topic id, partitions, tagged fields.
    fn assignment(&mut self, a: &Assignment) {
        let topics: Vec<_> = a.iter().filter(|(_, ps)| !ps.is_empty()).collect();
        self.len(topics.len());
        for (id, ps) in topics {
            self.uuid(id);
            self.len(ps.len());
            for p in ps {
                self.i32(*p);
            }
            self.tags();
        }
    }
}

struct Reader<'a> {
    b: &'a [u8],
}

impl<'a> Reader<'a> {
    fn value(b: &'a [u8]) -> Result<Self, RecordError> {
        let mut r = Reader { b };
        if r.take(2)? != [0, 0] {
            return Err(RecordError("unknown consumer group value version"));
        }
        Ok(r)
    }
    fn take(&mut self, n: usize) -> Result<&'a [u8], RecordError> {
        if self.b.len() < n {
            return Err(RecordError("truncated consumer group value"));
        }
        let (head, rest) = self.b.split_at(n);
        self.b = rest;
        Ok(head)
    }
    fn uvarint(&mut self) -> Result<u64, RecordError> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let byte = self.take(1)?[0];
            v |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(RecordError("varint too long"))
    }
    /// A compact length (null reads as empty); never more than the bytes left.
    fn len(&mut self) -> Result<usize, RecordError> {
        let n = self.uvarint()?.saturating_sub(1);
        usize::try_from(n)
            .ok()
            .filter(|n| *n <= self.b.len())
            .ok_or(RecordError("length beyond the value"))
    }
    fn tags(&mut self) -> Result<(), RecordError> {
        for _ in 0..self.uvarint()? {
            self.uvarint()?;
            let n = self.len_raw()?;
            self.take(n)?;
        }
        Ok(())
    }
    fn len_raw(&mut self) -> Result<usize, RecordError> {
        usize::try_from(self.uvarint()?).map_err(|_| RecordError("tag size"))
    }
    fn i8(&mut self) -> Result<i8, RecordError> {
        Ok(self.take(1)?[0] as i8)
    }
    fn i32(&mut self) -> Result<i32, RecordError> {
        let b = self.take(4)?;
        Ok(i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn uuid(&mut self) -> Result<Uuid, RecordError> {
        Uuid::from_slice(self.take(16)?).map_err(|_| RecordError("bad uuid"))
    }
    fn str(&mut self) -> Result<String, RecordError> {
        let n = self.len()?;
        String::from_utf8(self.take(n)?.to_vec()).map_err(|_| RecordError("string is not UTF-8"))
    }
    fn nullable_str(&mut self) -> Result<Option<String>, RecordError> {
        let n = self.uvarint()?;
        if n == 0 {
            return Ok(None);
        }
        let n = usize::try_from(n - 1).map_err(|_| RecordError("string length"))?;
        String::from_utf8(self.take(n)?.to_vec())
            .map(Some)
            .map_err(|_| RecordError("string is not UTF-8"))
    }
    fn assignment(&mut self) -> Result<Assignment, RecordError> {
        let mut a = Assignment::new();
        for _ in 0..self.len()? {
            let id = self.uuid()?;
            let mut ps = BTreeSet::new();
            for _ in 0..self.len()? {
                ps.insert(self.i32()?);
            }
            self.tags()?;
            a.insert(id, ps);
        }
        Ok(a)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::group::consumer::{ConsumerHeartbeat, TopicsView};
    use std::collections::HashMap;
    use std::sync::Arc;

    fn hb(member: &str, epoch: i32, topics: &TopicsView) -> ConsumerHeartbeat {
        ConsumerHeartbeat {
            member_id: member.into(),
            member_epoch: epoch,
            instance_id: None,
            rack_id: Some("r1".into()),
            rebalance_timeout_ms: 30_000,
            subscribed_topic_names: Some(vec!["t".into()]),
            subscribed_topic_regex: None,
            server_assignor: Some("range".into()),
            owned: None,
            client_id: "c".into(),
            client_host: "/127.0.0.1".into(),
            topics: topics.clone(),
            timeouts: None,
        }
    }

    #[test]
    fn a_restored_group_keeps_epochs_assignments_and_writes_nothing_new() {
        let topics: TopicsView = Arc::new(HashMap::from([("t".to_string(), (Uuid::new_v4(), 4))]));
        let now = Instant::now();
        let s = Duration::from_secs(45);
        let mut g = ConsumerGroup::default();
        let a = g.heartbeat(hb("", 0, &topics), s, 3000, now);
        let b = g.heartbeat(hb("", 0, &topics), s, 3000, now);
        // Let both converge.
        let mut epochs = (a.member_epoch, b.member_epoch);
        for _ in 0..4 {
            let mut h = hb(&a.member_id, epochs.0, &topics);
            h.owned = Some(g.members[&a.member_id].assigned.clone());
            epochs.0 = g.heartbeat(h, s, 3000, now).member_epoch;
            let mut h = hb(&b.member_id, epochs.1, &topics);
            h.owned = Some(g.members[&b.member_id].assigned.clone());
            epochs.1 = g.heartbeat(h, s, 3000, now).member_epoch;
        }
        let written: Stored = g
            .changed_records("g")
            .into_iter()
            .filter_map(|(k, v)| v.map(|v| (k, v)))
            .collect();
        assert_eq!(written.len(), 3 + 3 * 2);

        let mut back = ConsumerGroup::default();
        back.restore(written, s, now);
        assert_eq!(back.group_epoch, g.group_epoch);
        assert_eq!(back.target_epoch, g.target_epoch);
        assert_eq!(back.signature, g.signature);
        assert_eq!(back.assignor, "range");
        for (id, m) in &g.members {
            let r = &back.members[id];
            assert_eq!((r.epoch, r.previous_epoch), (m.epoch, m.previous_epoch));
            assert_eq!(r.assigned, m.assigned);
            assert_eq!(r.target, m.target);
            assert_eq!(r.subscribed, m.subscribed);
            assert_eq!(r.rack_id.as_deref(), Some("r1"));
        }
        assert!(back.changed_records("g").is_empty());
        // The members heartbeat at their old epochs: not fenced, nothing moves.
        let r = back.heartbeat(hb(&a.member_id, epochs.0, &topics), s, 3000, now);
        assert_eq!(r.error, None);
        assert_eq!(r.member_epoch, epochs.0);
        assert_eq!(
            r.assignment.as_ref(),
            Some(&g.members[&a.member_id].assigned)
        );
        assert!(back.changed_records("g").is_empty());
        // A member leaving tombstones its three records.
        back.heartbeat(hb(&b.member_id, -1, &topics), s, 3000, now);
        let gone = back.changed_records("g");
        assert_eq!(gone.iter().filter(|(_, v)| v.is_none()).count(), 3);
    }

    #[test]
    fn damaged_values_are_errors_not_panics() {
        for bad in [
            &[][..],
            &[0, 0],
            &[0, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
            &[0, 1, 0],
        ] {
            let mut g = ConsumerGroup::default();
            let key = RecordKey::Consumer {
                kind: Kind::CurrentAssignment,
                group: "g".into(),
                member: Some("m".into()),
            };
            g.restore(
                Stored::from([(key, bad.to_vec())]),
                Duration::from_secs(1),
                Instant::now(),
            );
            assert_eq!(g.members["m"].epoch, 0);
        }
    }
}
