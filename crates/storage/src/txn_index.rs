//! The aborted-transaction index of one segment (`<base>.txnindex`), in Kafka's layout:
//! fixed 34-byte entries of version (i16, 0), producer id, first offset, last offset
//! (the abort marker) and the last stable offset after it (i64 each). An entry belongs
//! to the segment holding its abort marker. A torn last entry (crash mid-write) is
//! ignored when read.

use std::io::Write;
use std::path::Path;

use crate::producer_state::AbortedTxn;

const ENTRY: usize = 34;

fn encode(t: &AbortedTxn, out: &mut Vec<u8>) {
    out.extend_from_slice(&0i16.to_be_bytes());
    out.extend_from_slice(&t.producer_id.to_be_bytes());
    out.extend_from_slice(&t.first_offset.to_be_bytes());
    out.extend_from_slice(&t.last_offset.to_be_bytes());
    out.extend_from_slice(&t.last_stable_offset.to_be_bytes());
}

fn i64_at(b: &[u8], at: usize) -> i64 {
    let mut x = [0u8; 8];
    x.copy_from_slice(&b[at..at + 8]);
    i64::from_be_bytes(x)
}

/// The entries in `path` (none if it does not exist).
pub(crate) fn load(path: &Path) -> std::io::Result<Vec<AbortedTxn>> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    Ok(bytes
        .chunks_exact(ENTRY)
        .map(|c| AbortedTxn {
            producer_id: i64_at(c, 2),
            first_offset: i64_at(c, 10),
            last_offset: i64_at(c, 18),
            last_stable_offset: i64_at(c, 26),
        })
        .collect())
}

/// Appends one entry.
pub(crate) fn append(path: &Path, t: &AbortedTxn) -> std::io::Result<()> {
    let mut buf = Vec::with_capacity(ENTRY);
    encode(t, &mut buf);
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?
        .write_all(&buf)
}

/// Replaces the file with `entries` (removing it when there are none).
pub(crate) fn rewrite(path: &Path, entries: &[AbortedTxn]) -> std::io::Result<()> {
    if entries.is_empty() {
        return match std::fs::remove_file(path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        };
    }
    let mut buf = Vec::with_capacity(ENTRY * entries.len());
    for t in entries {
        encode(t, &mut buf);
    }
    let tmp = path.with_extension("txnindex.tmp");
    std::fs::write(&tmp, &buf)?;
    std::fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn entries_round_trip_and_a_torn_tail_is_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("00000000000000000000.txnindex");
        let a = AbortedTxn {
            producer_id: 7,
            first_offset: 10,
            last_offset: 20,
            last_stable_offset: 21,
        };
        append(&path, &a).unwrap();
        append(
            &path,
            &AbortedTxn {
                producer_id: 8,
                ..a
            },
        )
        .unwrap();
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        f.write_all(&[1, 2, 3]).unwrap();
        let got = load(&path).unwrap();
        assert_eq!(got.len(), 2);
        assert_eq!(got[0], a);
        rewrite(&path, &got[..1]).unwrap();
        assert_eq!(load(&path).unwrap(), vec![a]);
        rewrite(&path, &[]).unwrap();
        assert!(load(&path).unwrap().is_empty());
    }
}
