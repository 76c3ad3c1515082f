//! The leader-epoch cache of one log (Kafka's `leader-epoch-checkpoint`, KIP-101):
//! for each leader epoch that wrote to the log, the offset of its first batch.
//!
//! It answers "where does epoch E end in this log?", which is how a replica that
//! becomes a follower finds the point where its log and the leader's diverge, without
//! ever truncating to the high watermark (KIP-101, KIP-279), and how consumers detect
//! truncation (KIP-320).
//!
//! File format (Kafka's): a version line `0`, a count line, then `epoch start_offset`
//! lines. A missing or damaged file is rebuilt from the batch headers of the log.

use std::path::Path;

pub(crate) const FILE: &str = "leader-epoch-checkpoint";

/// `(epoch, start offset)` pairs, both strictly increasing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EpochCache {
    entries: Vec<(i32, i64)>,
}

impl EpochCache {
    /// Parses the checkpoint file's text; `None` if it is not a valid checkpoint.
    pub(crate) fn parse(text: &str) -> Option<Self> {
        let mut lines = text.lines();
        if lines.next()?.trim() != "0" {
            return None;
        }
        let count: usize = lines.next()?.trim().parse().ok()?;
        let mut entries = Vec::with_capacity(count.min(1024));
        for line in lines.take(count) {
            let mut parts = line.split_whitespace();
            let epoch: i32 = parts.next()?.parse().ok()?;
            let start: i64 = parts.next()?.parse().ok()?;
            entries.push((epoch, start));
        }
        if entries.len() != count {
            return None;
        }
        let mut cache = Self::default();
        for (e, s) in entries {
            cache.assign(e, s);
        }
        Some(cache)
    }

    pub(crate) fn load(dir: &Path) -> Option<Self> {
        Self::parse(&std::fs::read_to_string(dir.join(FILE)).ok()?)
    }

    pub(crate) fn encode(&self) -> String {
        let mut out = format!("0\n{}\n", self.entries.len());
        for (e, s) in &self.entries {
            out.push_str(&format!("{e} {s}\n"));
        }
        out
    }

    pub fn entries(&self) -> &[(i32, i64)] {
        &self.entries
    }

    /// The newest epoch that wrote to the log.
    pub fn latest_epoch(&self) -> Option<i32> {
        self.entries.last().map(|e| e.0)
    }

    /// Records that `epoch` starts at `start`. Returns whether the cache changed: an
    /// epoch older than the latest is ignored, as is the latest epoch again; an entry
    /// at or after `start` from an older epoch is replaced (its batches were truncated).
    pub fn assign(&mut self, epoch: i32, start: i64) -> bool {
        if epoch < 0 || self.latest_epoch().is_some_and(|l| l >= epoch) {
            return false;
        }
        while self.entries.last().is_some_and(|&(_, s)| s >= start) {
            self.entries.pop();
        }
        self.entries.push((epoch, start));
        true
    }

    /// Kafka's `endOffsetFor`: the largest epoch at or below `requested` and the offset
    /// where it ends (the start of the next epoch, or `log_end` for the latest). When
    /// `requested` is older than every epoch here, `requested` itself and the start of the
    /// first one (what it ended at is gone from this log). `(-1, -1)` when `requested`
    /// is undefined or newer than every epoch here.
    pub fn end_offset_for(&self, requested: i32, log_end: i64) -> (i32, i64) {
        if requested < 0 {
            return (-1, -1);
        }
        if self.entries.last().is_some_and(|&(e, _)| e == requested) {
            return (requested, log_end);
        }
        let idx = self.entries.partition_point(|&(e, _)| e <= requested);
        let Some(&(_, higher_start)) = self.entries.get(idx) else {
            return (-1, -1);
        };
        match idx.checked_sub(1).and_then(|i| self.entries.get(i)) {
            Some(&(floor, _)) => (floor, higher_start),
            None => (requested, higher_start),
        }
    }

    /// The offset where `epoch` started, if it wrote here.
    pub fn start_of(&self, epoch: i32) -> Option<i64> {
        self.entries
            .iter()
            .find(|&&(e, _)| e == epoch)
            .map(|&(_, s)| s)
    }

    /// Forgets epochs that start at or after `end` (the log was truncated to `end`).
    /// Returns whether the cache changed.
    pub fn truncate_from_end(&mut self, end: i64) -> bool {
        let before = self.entries.len();
        self.entries.retain(|&(_, s)| s < end);
        before != self.entries.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn end_offsets_follow_kafka_semantics() {
        let mut c = EpochCache::default();
        assert!(c.assign(1, 0));
        assert!(c.assign(3, 10));
        assert!(!c.assign(3, 12), "the same epoch again is no change");
        assert!(!c.assign(2, 20), "an older epoch is ignored");
        assert_eq!(c.end_offset_for(-1, 30), (-1, -1));
        assert_eq!(
            c.end_offset_for(0, 30),
            (0, 0),
            "older than every epoch: itself, ending where the first starts"
        );
        assert_eq!(c.end_offset_for(1, 30), (1, 10));
        assert_eq!(
            c.end_offset_for(2, 30),
            (1, 10),
            "unknown epoch: the one below"
        );
        assert_eq!(c.end_offset_for(3, 30), (3, 30));
        assert_eq!(c.end_offset_for(9, 30), (-1, -1), "newer than every epoch");
        assert_eq!(EpochCache::default().end_offset_for(1, 30), (-1, -1));
        assert_eq!(c.start_of(3), Some(10));
    }

    #[test]
    fn a_newer_epoch_replaces_entries_it_overwrites_and_truncation_forgets() {
        let mut c = EpochCache::default();
        c.assign(1, 0);
        c.assign(2, 10);
        c.assign(4, 10);
        assert_eq!(c.entries(), &[(1, 0), (4, 10)]);
        assert!(c.truncate_from_end(10));
        assert_eq!(c.entries(), &[(1, 0)]);
        let text = c.encode();
        assert_eq!(EpochCache::parse(&text), Some(c));
        assert_eq!(EpochCache::parse("1\n0\n"), None);
        assert_eq!(EpochCache::parse("0\n2\n1 0\n"), None);
    }
}
