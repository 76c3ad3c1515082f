//! A budget of open segment files shared by every log of a broker
//! (`log.max.open.files`).
//!
//! Segments do not own file handles: they name their files and ask this cache for a
//! handle when they read or write. The cache keeps at most `capacity` handles open and
//! closes the least recently used one to open another, so thousands of partitions fit
//! in a process's `RLIMIT_NOFILE` (Kafka keeps every segment's files open and has no
//! such budget).
//!
//! Closing a handle means dropping the cache's `Arc<File>`. A fetch that was handed a
//! clone (to send with `sendfile` after the partition lock is released) keeps the
//! descriptor until it is done, so eviction never pulls a file out from under a reader;
//! the budget bounds the cache, and in-flight sends add at most one descriptor each.
//!
//! All segment I/O is positional (`pread`/`pwrite`), so a file reopened after an
//! eviction behaves exactly like the one that was closed. An fsync through a new
//! descriptor makes the inode's dirty pages durable, whichever descriptor wrote them.
//!
//! Concurrency: the cache is sharded by file key; a shard's lock is held for a map
//! lookup or insert, never across the `open(2)` itself.

use std::collections::{BTreeMap, HashMap};
use std::fs::{File, OpenOptions};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

/// Which of a segment's files a key names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FileKind {
    Log = 0,
    Index = 1,
    TimeIndex = 2,
}

/// Identifies one file of one segment incarnation (a cleaned segment that replaces
/// another at the same base offset gets a new id, so a stale handle is never reused).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct FileKey(u64);

impl FileKey {
    pub(crate) fn new(segment_id: u64, kind: FileKind) -> Self {
        Self(segment_id << 2 | kind as u64)
    }
}

struct Shard {
    cap: usize,
    /// Open handles and the tick of their last use.
    open: HashMap<FileKey, (Arc<File>, u64)>,
    /// Last-use tick -> key: the first entry is the least recently used.
    by_use: BTreeMap<u64, FileKey>,
    tick: u64,
}

impl Shard {
    fn touch(&mut self, key: FileKey) -> Option<Arc<File>> {
        self.tick += 1;
        let tick = self.tick;
        let (file, used) = self.open.get_mut(&key)?;
        self.by_use.remove(used);
        *used = tick;
        self.by_use.insert(tick, key);
        Some(file.clone())
    }

    fn insert(&mut self, key: FileKey, file: Arc<File>) {
        while self.open.len() >= self.cap {
            let Some((_, victim)) = self.by_use.pop_first() else {
                break;
            };
            // Dropping the cache's clone closes the descriptor unless a reader holds one.
            self.open.remove(&victim);
        }
        self.tick += 1;
        if let Some((_, old)) = self.open.insert(key, (file, self.tick)) {
            self.by_use.remove(&old);
        }
        self.by_use.insert(self.tick, key);
    }

    fn forget(&mut self, key: FileKey) {
        if let Some((_, used)) = self.open.remove(&key) {
            self.by_use.remove(&used);
        }
    }
}

/// The shared LRU of open segment files. See the module docs.
pub struct FileCache {
    shards: Box<[Mutex<Shard>]>,
    capacity: usize,
    next_segment_id: AtomicU64,
    opens: AtomicU64,
}

impl std::fmt::Debug for FileCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileCache")
            .field("capacity", &self.capacity)
            .field("open", &self.open_count())
            .finish()
    }
}

/// Handles per shard below which the cache is not split (so small budgets stay exact).
const MIN_PER_SHARD: usize = 256;
const MAX_SHARDS: usize = 16;

impl FileCache {
    /// A cache that keeps at most `capacity` files open (at least one per shard).
    pub fn new(capacity: usize) -> Self {
        let capacity = capacity.max(1);
        let shards = (capacity / MIN_PER_SHARD).clamp(1, MAX_SHARDS);
        let per_shard = capacity / shards;
        Self {
            shards: (0..shards)
                .map(|_| {
                    Mutex::new(Shard {
                        cap: per_shard,
                        open: HashMap::new(),
                        by_use: BTreeMap::new(),
                        tick: 0,
                    })
                })
                .collect(),
            capacity: per_shard * shards,
            next_segment_id: AtomicU64::new(0),
            opens: AtomicU64::new(0),
        }
    }

    /// The most handles kept open.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Handles open now (not counting clones held by in-flight reads).
    pub fn open_count(&self) -> usize {
        (0..self.shards.len())
            .map(|i| self.shard_at(i).open.len())
            .sum()
    }

    /// Files opened since the cache was made (a measure of how lazily logs open).
    pub fn opens(&self) -> u64 {
        self.opens.load(Ordering::Relaxed)
    }

    pub(crate) fn new_segment_id(&self) -> u64 {
        self.next_segment_id.fetch_add(1, Ordering::Relaxed)
    }

    fn shard_at(&self, i: usize) -> MutexGuard<'_, Shard> {
        match self.shards[i].lock() {
            Ok(g) => g,
            // The maps stay consistent at every step, so a panic elsewhere leaves them usable.
            Err(p) => p.into_inner(),
        }
    }

    fn shard(&self, key: FileKey) -> MutexGuard<'_, Shard> {
        let h = key.0.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 32;
        self.shard_at(h as usize % self.shards.len())
    }

    /// The open handle for `key`, opening `path` read-write if it is not open (and
    /// creating it when `create`).
    pub(crate) fn get(
        &self,
        key: FileKey,
        path: &Path,
        create: bool,
    ) -> std::io::Result<Arc<File>> {
        if let Some(f) = self.shard(key).touch(key) {
            return Ok(f);
        }
        let file = Arc::new(
            OpenOptions::new()
                .read(true)
                .write(true)
                .create(create)
                .truncate(false)
                .open(path)?,
        );
        self.opens.fetch_add(1, Ordering::Relaxed);
        let mut shard = self.shard(key);
        if let Some(f) = shard.touch(key) {
            return Ok(f);
        }
        shard.insert(key, file.clone());
        Ok(file)
    }

    /// Puts a handle the caller just opened (a new segment's files) in the cache.
    pub(crate) fn insert(&self, key: FileKey, file: Arc<File>) {
        self.opens.fetch_add(1, Ordering::Relaxed);
        self.shard(key).insert(key, file);
    }

    /// Closes `key`'s handle (its segment is gone or replaced).
    pub(crate) fn forget(&self, key: FileKey) {
        self.shard(key).forget(key);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn keeps_at_most_capacity_open_and_evicts_the_least_recently_used() {
        let dir = tempfile::tempdir().unwrap();
        let cache = FileCache::new(3);
        let path = |i: u64| dir.path().join(format!("{i}"));
        let keys: Vec<FileKey> = (0..4).map(|i| FileKey::new(i, FileKind::Log)).collect();
        let get = |i: usize| cache.get(keys[i], &path(i as u64), true).unwrap();
        get(0);
        get(1);
        get(2);
        get(0); // now keys[1] is the least recently used
        get(3);
        assert_eq!(cache.open_count(), 3);
        assert_eq!(cache.opens(), 4);
        get(0);
        assert_eq!(cache.opens(), 4, "keys[0] stayed open");
        get(1);
        assert_eq!(cache.opens(), 5, "keys[1] was closed and is reopened");
        assert_eq!(cache.open_count(), 3);
    }

    #[test]
    fn an_evicted_handle_stays_usable_by_its_holder() {
        use std::os::unix::fs::FileExt;
        let dir = tempfile::tempdir().unwrap();
        let cache = FileCache::new(1);
        let a = dir.path().join("a");
        std::fs::write(&a, b"hello").unwrap();
        let held = cache
            .get(FileKey::new(0, FileKind::Log), &a, false)
            .unwrap();
        cache
            .get(FileKey::new(1, FileKind::Log), &dir.path().join("b"), true)
            .unwrap();
        assert_eq!(cache.open_count(), 1);
        std::fs::remove_file(&a).unwrap();
        let mut buf = [0u8; 5];
        held.read_exact_at(&mut buf, 0).unwrap();
        assert_eq!(&buf, b"hello");
    }
}
