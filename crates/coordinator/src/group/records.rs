//! The records of `__consumer_offsets`, in Kafka's own key and value schemas
//! (`OffsetCommitKey`/`OffsetCommitValue`, `GroupMetadataKey`/`GroupMetadataValue` from
//! Kafka's group-coordinator), so tools that read that topic keep working.
//!
//! These are record schemas, not protocol messages, so the `kafka-protocol` crate does
//! not carry them. Keys are written at version 1 (offset) and 2 (group); values at
//! version 3, the last non-flexible version, which every Kafka reader understands.
//! Decoding accepts versions 0–3 and refuses the rest rather than guessing. KIP-848
//! groups add key types 3–8 (`ConsumerRecordKind`), whose values are encoded in
//! `group::consumer::persist`.

use bytes::Bytes;

/// The KIP-848 record types of `__consumer_offsets` (the key's version field).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ConsumerRecordKind {
    Metadata = 3,
    PartitionMetadata = 4,
    MemberMetadata = 5,
    TargetMetadata = 6,
    TargetMember = 7,
    CurrentAssignment = 8,
}

impl ConsumerRecordKind {
    fn of(v: i16) -> Option<Self> {
        Some(match v {
            3 => Self::Metadata,
            4 => Self::PartitionMetadata,
            5 => Self::MemberMetadata,
            6 => Self::TargetMetadata,
            7 => Self::TargetMember,
            8 => Self::CurrentAssignment,
            _ => return None,
        })
    }

    /// Whether the key names a member as well as the group.
    fn per_member(self) -> bool {
        matches!(
            self,
            Self::MemberMetadata | Self::TargetMember | Self::CurrentAssignment
        )
    }
}

/// Key of one record in `__consumer_offsets`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RecordKey {
    Offset {
        group: String,
        topic: String,
        partition: i32,
    },
    Group {
        group: String,
    },
    /// A KIP-848 group's record; `member` is set for the per-member kinds.
    Consumer {
        kind: ConsumerRecordKind,
        group: String,
        member: Option<String>,
    },
}

/// A committed offset as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OffsetValue {
    pub offset: i64,
    pub leader_epoch: i32,
    pub metadata: String,
    pub commit_timestamp: i64,
}

/// One member in a stored group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberValue {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub rebalance_timeout: i32,
    pub session_timeout: i32,
    pub subscription: Bytes,
    pub assignment: Bytes,
}

/// A group's membership as stored after each completed rebalance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupValue {
    pub protocol_type: String,
    pub generation: i32,
    pub protocol: Option<String>,
    pub leader: Option<String>,
    pub current_state_timestamp: i64,
    pub members: Vec<MemberValue>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("undecodable coordinator record (__consumer_offsets or __transaction_state): {0}")]
pub struct RecordError(pub &'static str);

pub(crate) fn put_str(out: &mut Vec<u8>, s: &str) {
    let b = s.as_bytes();
    let len = b.len().min(i16::MAX as usize);
    out.extend_from_slice(&(len as i16).to_be_bytes());
    out.extend_from_slice(&b[..len]);
}

fn put_nullable_str(out: &mut Vec<u8>, s: Option<&str>) {
    match s {
        Some(s) => put_str(out, s),
        None => out.extend_from_slice(&(-1i16).to_be_bytes()),
    }
}

fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    out.extend_from_slice(&(b.len() as i32).to_be_bytes());
    out.extend_from_slice(b);
}

impl RecordKey {
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(64);
        match self {
            RecordKey::Offset {
                group,
                topic,
                partition,
            } => {
                out.extend_from_slice(&1i16.to_be_bytes());
                put_str(&mut out, group);
                put_str(&mut out, topic);
                out.extend_from_slice(&partition.to_be_bytes());
            }
            RecordKey::Group { group } => {
                out.extend_from_slice(&2i16.to_be_bytes());
                put_str(&mut out, group);
            }
            RecordKey::Consumer {
                kind,
                group,
                member,
            } => {
                out.extend_from_slice(&(*kind as i16).to_be_bytes());
                put_str(&mut out, group);
                if let Some(m) = member {
                    put_str(&mut out, m);
                }
            }
        }
        out
    }

    pub fn decode(b: &[u8]) -> Result<Self, RecordError> {
        let mut r = Reader { b, pos: 0 };
        match r.i16()? {
            0 | 1 => Ok(RecordKey::Offset {
                group: r.string()?,
                topic: r.string()?,
                partition: r.i32()?,
            }),
            2 => Ok(RecordKey::Group { group: r.string()? }),
            v => {
                let kind = ConsumerRecordKind::of(v).ok_or(RecordError("unknown key version"))?;
                let group = r.string()?;
                let member = if kind.per_member() {
                    Some(r.string()?)
                } else {
                    None
                };
                Ok(RecordKey::Consumer {
                    kind,
                    group,
                    member,
                })
            }
        }
    }
}

impl OffsetValue {
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(32 + self.metadata.len());
        out.extend_from_slice(&3i16.to_be_bytes());
        out.extend_from_slice(&self.offset.to_be_bytes());
        out.extend_from_slice(&self.leader_epoch.to_be_bytes());
        put_str(&mut out, &self.metadata);
        out.extend_from_slice(&self.commit_timestamp.to_be_bytes());
        out
    }

    pub fn decode(b: &[u8]) -> Result<Self, RecordError> {
        let mut r = Reader { b, pos: 0 };
        let version = r.i16()?;
        if !(0..=3).contains(&version) {
            return Err(RecordError("unknown offset value version"));
        }
        let offset = r.i64()?;
        let leader_epoch = if version >= 3 { r.i32()? } else { -1 };
        let metadata = r.string()?;
        let commit_timestamp = r.i64()?;
        if version == 1 {
            r.i64()?; // expireTimestamp, unused since KIP-211
        }
        Ok(Self {
            offset,
            leader_epoch,
            metadata,
            commit_timestamp,
        })
    }
}

impl GroupValue {
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(128);
        out.extend_from_slice(&3i16.to_be_bytes());
        put_str(&mut out, &self.protocol_type);
        out.extend_from_slice(&self.generation.to_be_bytes());
        put_nullable_str(&mut out, self.protocol.as_deref());
        put_nullable_str(&mut out, self.leader.as_deref());
        out.extend_from_slice(&self.current_state_timestamp.to_be_bytes());
        out.extend_from_slice(&(self.members.len() as i32).to_be_bytes());
        for m in &self.members {
            put_str(&mut out, &m.member_id);
            put_nullable_str(&mut out, m.group_instance_id.as_deref());
            put_str(&mut out, &m.client_id);
            put_str(&mut out, &m.client_host);
            out.extend_from_slice(&m.rebalance_timeout.to_be_bytes());
            out.extend_from_slice(&m.session_timeout.to_be_bytes());
            put_bytes(&mut out, &m.subscription);
            put_bytes(&mut out, &m.assignment);
        }
        out
    }

    pub fn decode(b: &[u8]) -> Result<Self, RecordError> {
        let mut r = Reader { b, pos: 0 };
        let version = r.i16()?;
        if !(0..=3).contains(&version) {
            return Err(RecordError("unknown group value version"));
        }
        let protocol_type = r.string()?;
        let generation = r.i32()?;
        let protocol = r.nullable_string()?;
        let leader = r.nullable_string()?;
        let current_state_timestamp = if version >= 2 { r.i64()? } else { -1 };
        let n = r.i32()?;
        if n < 0 || n as usize > r.remaining() {
            return Err(RecordError("bad member count"));
        }
        let mut members = Vec::with_capacity(n as usize);
        for _ in 0..n {
            let member_id = r.string()?;
            let group_instance_id = if version >= 3 {
                r.nullable_string()?
            } else {
                None
            };
            let client_id = r.string()?;
            let client_host = r.string()?;
            let rebalance_timeout = if version >= 1 { r.i32()? } else { -1 };
            let session_timeout = r.i32()?;
            let subscription = r.bytes()?;
            let assignment = r.bytes()?;
            members.push(MemberValue {
                member_id,
                group_instance_id,
                client_id,
                client_host,
                rebalance_timeout,
                session_timeout,
                subscription,
                assignment,
            });
        }
        Ok(Self {
            protocol_type,
            generation,
            protocol,
            leader,
            current_state_timestamp,
            members,
        })
    }
}

/// A bounds-checked big-endian reader; every read that runs off the end is an error.
pub(crate) struct Reader<'a> {
    pub(crate) b: &'a [u8],
    pub(crate) pos: usize,
}

impl Reader<'_> {
    pub(crate) fn remaining(&self) -> usize {
        self.b.len() - self.pos
    }
    pub(crate) fn take(&mut self, n: usize) -> Result<&[u8], RecordError> {
        if self.remaining() < n {
            return Err(RecordError("truncated"));
        }
        let s = &self.b[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }
    pub(crate) fn i16(&mut self) -> Result<i16, RecordError> {
        let s = self.take(2)?;
        Ok(i16::from_be_bytes([s[0], s[1]]))
    }
    pub(crate) fn i32(&mut self) -> Result<i32, RecordError> {
        let s = self.take(4)?;
        Ok(i32::from_be_bytes([s[0], s[1], s[2], s[3]]))
    }
    pub(crate) fn i64(&mut self) -> Result<i64, RecordError> {
        let mut a = [0u8; 8];
        a.copy_from_slice(self.take(8)?);
        Ok(i64::from_be_bytes(a))
    }
    pub(crate) fn nullable_string(&mut self) -> Result<Option<String>, RecordError> {
        let n = self.i16()?;
        if n < 0 {
            return Ok(None);
        }
        let s = self.take(n as usize)?;
        String::from_utf8(s.to_vec())
            .map(Some)
            .map_err(|_| RecordError("string is not UTF-8"))
    }
    pub(crate) fn string(&mut self) -> Result<String, RecordError> {
        self.nullable_string()?
            .ok_or(RecordError("null where a string is required"))
    }
    pub(crate) fn bytes(&mut self) -> Result<Bytes, RecordError> {
        let n = self.i32()?;
        if n < 0 {
            return Ok(Bytes::new());
        }
        Ok(Bytes::copy_from_slice(self.take(n as usize)?))
    }
}

/// Java's `String.hashCode`, over UTF-16 code units, as Kafka uses it to place a group
/// on a `__consumer_offsets` partition.
pub fn java_string_hash(s: &str) -> i32 {
    s.encode_utf16()
        .fold(0i32, |h, c| h.wrapping_mul(31).wrapping_add(i32::from(c)))
}

/// The `__consumer_offsets` partition that holds `group` (Kafka's
/// `Utils.abs(groupId.hashCode) % offsets.topic.num.partitions`).
pub fn partition_for(group: &str, partitions: i32) -> i32 {
    (java_string_hash(group) & 0x7fff_ffff) % partitions.max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_values_round_trip() {
        let k = RecordKey::Offset {
            group: "g".into(),
            topic: "t".into(),
            partition: 7,
        };
        assert_eq!(RecordKey::decode(&k.encode()).unwrap(), k);
        let k = RecordKey::Group { group: "g".into() };
        assert_eq!(RecordKey::decode(&k.encode()).unwrap(), k);
        let v = OffsetValue {
            offset: 42,
            leader_epoch: 3,
            metadata: "meta".into(),
            commit_timestamp: 1_700_000_000_000,
        };
        assert_eq!(OffsetValue::decode(&v.encode()).unwrap(), v);
        let g = GroupValue {
            protocol_type: "consumer".into(),
            generation: 5,
            protocol: Some("range".into()),
            leader: Some("m1".into()),
            current_state_timestamp: 9,
            members: vec![MemberValue {
                member_id: "m1".into(),
                group_instance_id: Some("i1".into()),
                client_id: "c".into(),
                client_host: "/127.0.0.1".into(),
                rebalance_timeout: 300_000,
                session_timeout: 45_000,
                subscription: Bytes::from_static(b"sub"),
                assignment: Bytes::from_static(b"asg"),
            }],
        };
        assert_eq!(GroupValue::decode(&g.encode()).unwrap(), g);
    }

    #[test]
    fn offset_key_matches_kafkas_bytes() {
        // version 1, "g", "t", partition 0
        let k = RecordKey::Offset {
            group: "g".into(),
            topic: "t".into(),
            partition: 0,
        };
        assert_eq!(k.encode(), [0, 1, 0, 1, b'g', 0, 1, b't', 0, 0, 0, 0]);
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        for b in [&[][..], &[0, 9], &[0, 2, 0, 50, b'x'], &[0, 3, 255, 255]] {
            let _ = RecordKey::decode(b);
            let _ = OffsetValue::decode(b);
            let _ = GroupValue::decode(b);
        }
        assert!(GroupValue::decode(&[0, 3, 0, 0, 0, 0, 0, 1, 255, 255, 255, 255]).is_err());
    }

    #[test]
    fn partition_matches_java() {
        // "test".hashCode() == 3556498 in Java.
        assert_eq!(java_string_hash("test"), 3_556_498);
        assert_eq!(partition_for("test", 50), 3_556_498 % 50);
        assert!((0..50).contains(&partition_for("ñandú-group-with-a-negative-hash-maybe", 50)));
    }
}
