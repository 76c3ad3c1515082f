//! Share-partition state as earlier Gregor versions stored it: one snapshot file per
//! share-partition under `<data dir>/__share_group_state/`, on the partition leader.
//! The state now lives in the replicated `__share_group_state` topic
//! ([`super::state`]); these files are only read, once, and moved there
//! ([`super::persister`]), then removed.
//!
//! File format (big-endian): `GSS1`, group id (u16 length + UTF-8), topic id (16
//! bytes), partition (i32), SPSO (i64), SPEO (i64), entry count (u32), then per entry
//! offset (i64), state (u8), delivery count (i16), and a trailing CRC-32C of all of it.

use std::path::Path;

use bytes::{Buf, BufMut, BytesMut};
use uuid::Uuid;

use super::partition::RecordState;

pub const DIR: &str = "__share_group_state";
const MAGIC: &[u8; 4] = b"GSS1";

/// A share-partition's persisted state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    pub group: String,
    pub topic_id: Uuid,
    pub partition: i32,
    pub spso: i64,
    pub speo: i64,
    pub entries: Vec<(i64, RecordState, i16)>,
}

impl Snapshot {
    fn file_name(&self) -> String {
        let hex: String = self.group.bytes().map(|b| format!("{b:02x}")).collect();
        format!("{hex}-{}-{}.state", self.topic_id.simple(), self.partition)
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut b = BytesMut::with_capacity(64 + self.entries.len() * 11);
        b.put_slice(MAGIC);
        let g = self.group.as_bytes();
        b.put_u16(u16::try_from(g.len()).unwrap_or(u16::MAX));
        b.put_slice(&g[..g.len().min(usize::from(u16::MAX))]);
        b.put_slice(self.topic_id.as_bytes());
        b.put_i32(self.partition);
        b.put_i64(self.spso);
        b.put_i64(self.speo);
        b.put_u32(u32::try_from(self.entries.len()).unwrap_or(u32::MAX));
        for (o, s, c) in &self.entries {
            b.put_i64(*o);
            b.put_u8(s.code());
            b.put_i16(*c);
        }
        let crc = crc32c::crc32c(&b);
        b.put_u32(crc);
        b.to_vec()
    }

    pub fn decode(data: &[u8]) -> Option<Self> {
        if data.len() < 8 || &data[..4] != MAGIC {
            return None;
        }
        let (body, tail) = data.split_at(data.len() - 4);
        if crc32c::crc32c(body) != u32::from_be_bytes([tail[0], tail[1], tail[2], tail[3]]) {
            return None;
        }
        let mut b = &body[4..];
        let need = |b: &&[u8], n: usize| b.remaining() >= n;
        if !need(&b, 2) {
            return None;
        }
        let glen = usize::from(b.get_u16());
        if !need(&b, glen + 16 + 4 + 8 + 8 + 4) {
            return None;
        }
        let group = String::from_utf8(b[..glen].to_vec()).ok()?;
        b.advance(glen);
        let mut id = [0u8; 16];
        b.copy_to_slice(&mut id);
        let partition = b.get_i32();
        let spso = b.get_i64();
        let speo = b.get_i64();
        let n = b.get_u32() as usize;
        if b.remaining() != n.checked_mul(11)? {
            return None;
        }
        let mut entries = Vec::with_capacity(n);
        for _ in 0..n {
            let o = b.get_i64();
            let s = RecordState::from_code(b.get_u8())?;
            entries.push((o, s, b.get_i16()));
        }
        Some(Self {
            group,
            topic_id: Uuid::from_bytes(id),
            partition,
            spso,
            speo,
            entries,
        })
    }
}

/// Reads every snapshot in `data_dir`; unreadable files are skipped with a warning.
pub fn load(data_dir: &Path) -> Vec<Snapshot> {
    let dir = data_dir.join(DIR);
    let Ok(rd) = std::fs::read_dir(&dir) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for entry in rd.flatten() {
        let path = entry.path();
        if path.extension().and_then(|e| e.to_str()) != Some("state") {
            continue;
        }
        match std::fs::read(&path).ok().and_then(|d| Snapshot::decode(&d)) {
            Some(s) => out.push(s),
            None => {
                tracing::warn!(file = %path.display(), "unreadable share-partition state skipped")
            }
        }
    }
    out
}

/// Removes a snapshot's file once its state lives in `__share_group_state`.
pub fn remove_file(data_dir: &Path, s: &Snapshot) {
    let path = data_dir.join(DIR).join(s.file_name());
    if let Err(e) = std::fs::remove_file(&path) {
        if e.kind() != std::io::ErrorKind::NotFound {
            tracing::warn!(file = %path.display(), error = %e, "cannot remove a moved share-state file");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshot_round_trips_and_damage_is_refused() {
        let s = Snapshot {
            group: "g/ü".into(),
            topic_id: Uuid::new_v4(),
            partition: 3,
            spso: 10,
            speo: 20,
            entries: vec![
                (12, RecordState::Acknowledged, 1),
                (13, RecordState::Available, 4),
            ],
        };
        let mut bytes = s.encode();
        assert_eq!(Snapshot::decode(&bytes), Some(s.clone()));
        bytes[10] ^= 1;
        assert_eq!(Snapshot::decode(&bytes), None);
        assert_eq!(Snapshot::decode(b"GSS1"), None);
    }

    #[test]
    fn files_are_loaded_and_removed() {
        let dir = tempfile::tempdir().unwrap();
        let s = Snapshot {
            group: "g".into(),
            topic_id: Uuid::new_v4(),
            partition: 0,
            spso: 5,
            speo: 5,
            entries: vec![],
        };
        std::fs::create_dir_all(dir.path().join(DIR)).unwrap();
        std::fs::write(dir.path().join(DIR).join(s.file_name()), s.encode()).unwrap();
        assert_eq!(load(dir.path()), vec![s.clone()]);
        remove_file(dir.path(), &s);
        assert!(load(dir.path()).is_empty());
    }
}
