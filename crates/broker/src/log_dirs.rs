//! Several log directories per broker (`log.dirs`, Kafka's JBOD, KIP-112/KIP-858).
//!
//! Every entry of `log.dirs` is a [`LogDir`]: a path, its identity (`meta.properties`
//! with `directory.id`, `cluster.id`, `node.id`) and whether it is online. A partition
//! lives in exactly one dir; [`scan`] finds where at startup (a partition in two dirs is
//! a startup error), [`place`] chooses a dir for a new replica (the online dir with the
//! fewest partitions, Kafka's rule).
//!
//! A dir that cannot be opened at startup is offline from the start; one whose disk fails
//! at runtime (an I/O error that is not a full disk, see [`is_dir_failure`]) goes offline
//! through [`LogDir::fail`], which wakes whoever watches [`LogDirs::failures`] (the
//! broker takes the dir's partitions offline and reports them to the controller). An
//! offline dir stays offline until the broker restarts.

use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use gregor_storage::LogError;
use tokio::sync::watch;
use uuid::Uuid;

const META_PROPERTIES: &str = "meta.properties";
const LOCK_FILE: &str = ".lock";

/// Why the log directories cannot be used at all (the broker does not start).
#[derive(Debug, thiserror::Error)]
pub enum LogDirError {
    #[error("partition {topic}-{partition} is in two log directories: {first} and {second}")]
    Duplicate {
        topic: String,
        partition: i32,
        first: String,
        second: String,
    },
    #[error("{0}")]
    Identity(String),
    #[error("every log directory is offline")]
    AllOffline,
}

/// One log directory of this broker.
pub struct LogDir {
    pub index: usize,
    pub path: PathBuf,
    /// `directory.id` from its `meta.properties` (Kafka's directory id), if known.
    pub id: Option<Uuid>,
    online: AtomicBool,
    reason: Mutex<Option<String>>,
    failures: watch::Sender<u64>,
    _lock: Option<File>,
}

impl LogDir {
    pub fn is_online(&self) -> bool {
        self.online.load(Ordering::Acquire)
    }

    /// Why the dir is offline (the first error seen).
    pub fn offline_reason(&self) -> Option<String> {
        self.reason.lock().ok().and_then(|r| r.clone())
    }

    /// Takes the dir offline (once; later calls do nothing) and wakes the watchers.
    pub fn fail(&self, reason: &str) {
        if self.online.swap(false, Ordering::AcqRel) {
            tracing::error!(dir = %self.path.display(), reason, "log directory failed: offline, its partitions stop serving on this broker");
            if let Ok(mut r) = self.reason.lock() {
                *r = Some(reason.to_string());
            }
            self.failures.send_modify(|n| *n = n.wrapping_add(1));
        }
    }

    /// Takes the dir offline if `e` says its disk failed; true if it did.
    pub fn note_error(&self, e: &LogError) -> bool {
        if is_dir_failure(e) {
            self.fail(&e.to_string());
            true
        } else {
            false
        }
    }
}

/// An I/O error that means the directory's disk or file system failed (EIO, EROFS, a
/// vanished device, a corrupted or stale file system). A full disk (ENOSPC, EDQUOT) is
/// not one: it recovers once space is freed, so only the write fails. Neither are
/// process limits (EMFILE) or a missing file, which say nothing about the disk.
pub fn is_dir_failure(e: &LogError) -> bool {
    let LogError::Io(io) = e else { return false };
    matches!(
        io.raw_os_error(),
        Some(code) if [
            rustix::io::Errno::IO.raw_os_error(),
            rustix::io::Errno::ROFS.raw_os_error(),
            rustix::io::Errno::NXIO.raw_os_error(),
            rustix::io::Errno::NODEV.raw_os_error(),
            rustix::io::Errno::STALE.raw_os_error(),
            rustix::io::Errno::UCLEAN.raw_os_error(),
        ]
        .contains(&code)
    )
}

/// Every log directory of the broker, in `log.dirs` order.
pub struct LogDirs {
    dirs: Vec<Arc<LogDir>>,
    failures: watch::Sender<u64>,
}

impl LogDirs {
    /// Opens `paths`: each is created if missing, locked, and its `meta.properties`
    /// checked (or written with a new directory id). `locked` is the dir the broker has
    /// already locked and identified (the metadata dir), if it is one of them. A dir
    /// that cannot be opened is offline (logged); one that belongs to another cluster
    /// or node is an error, as is every dir being offline.
    pub fn open(
        paths: &[PathBuf],
        locked: &Path,
        node_id: i32,
        cluster_id: &str,
    ) -> Result<Self, LogDirError> {
        let failures = watch::Sender::new(0);
        let mut dirs = Vec::with_capacity(paths.len());
        for (index, path) in paths.iter().enumerate() {
            let opened = if path == locked {
                read_directory_id(path).map(|id| (id, None))
            } else {
                open_one(path, node_id, cluster_id)
            };
            let (id, lock, reason) = match opened {
                Ok((id, lock)) => (id, lock, None),
                Err(OpenError::Identity(msg)) => return Err(LogDirError::Identity(msg)),
                Err(OpenError::Io(e)) => {
                    tracing::error!(dir = %path.display(), error = %e, "cannot open log directory: offline");
                    (None, None, Some(e.to_string()))
                }
            };
            dirs.push(Arc::new(LogDir {
                index,
                path: path.clone(),
                id,
                online: AtomicBool::new(reason.is_none()),
                reason: Mutex::new(reason),
                failures: failures.clone(),
                _lock: lock,
            }));
        }
        if !dirs.iter().any(|d| d.is_online()) {
            return Err(LogDirError::AllOffline);
        }
        Ok(Self { dirs, failures })
    }

    /// Test seam: dirs with no identity or locking, all online.
    #[doc(hidden)]
    pub fn unchecked(paths: &[PathBuf]) -> Self {
        let failures = watch::Sender::new(0);
        let dirs = paths
            .iter()
            .enumerate()
            .map(|(index, path)| {
                Arc::new(LogDir {
                    index,
                    path: path.clone(),
                    id: None,
                    online: AtomicBool::new(true),
                    reason: Mutex::new(None),
                    failures: failures.clone(),
                    _lock: None,
                })
            })
            .collect();
        Self { dirs, failures }
    }

    pub fn all(&self) -> &[Arc<LogDir>] {
        &self.dirs
    }

    pub fn get(&self, index: usize) -> Option<&Arc<LogDir>> {
        self.dirs.get(index)
    }

    /// Bumped whenever a dir goes offline at runtime.
    pub fn failures(&self) -> watch::Receiver<u64> {
        self.failures.subscribe()
    }

    pub fn online(&self) -> Vec<bool> {
        self.dirs.iter().map(|d| d.is_online()).collect()
    }
}

enum OpenError {
    Io(std::io::Error),
    Identity(String),
}

impl From<std::io::Error> for OpenError {
    fn from(e: std::io::Error) -> Self {
        OpenError::Io(e)
    }
}

fn read_directory_id(dir: &Path) -> Result<Option<Uuid>, OpenError> {
    match std::fs::read_to_string(dir.join(META_PROPERTIES)) {
        Ok(text) => Ok(crate::config::parse_properties(&text)
            .get("directory.id")
            .and_then(|v| v.parse().ok())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// Creates, locks and identifies one (non-metadata) log dir.
fn open_one(
    dir: &Path,
    node_id: i32,
    cluster_id: &str,
) -> Result<(Option<Uuid>, Option<File>), OpenError> {
    std::fs::create_dir_all(dir)?;
    let lock = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(dir.join(LOCK_FILE))?;
    if lock.try_lock().is_err() {
        return Err(OpenError::Identity(format!(
            "log directory {} is in use by another broker",
            dir.display()
        )));
    }
    let path = dir.join(META_PROPERTIES);
    let id = match std::fs::read_to_string(&path) {
        Ok(text) => {
            let props = crate::config::parse_properties(&text);
            if let Some(n) = props.get("node.id").filter(|n| **n != node_id.to_string()) {
                return Err(OpenError::Identity(format!(
                    "{} holds node.id {n} but this broker is configured with node.id {node_id}",
                    path.display()
                )));
            }
            if let Some(c) = props.get("cluster.id").filter(|c| *c != cluster_id) {
                return Err(OpenError::Identity(format!(
                    "INCONSISTENT_CLUSTER_ID: {} belongs to cluster {c}, but this broker's is {cluster_id}",
                    path.display()
                )));
            }
            match props.get("directory.id").and_then(|v| v.parse().ok()) {
                Some(id) => id,
                None => write_meta(dir, node_id, cluster_id)?,
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => write_meta(dir, node_id, cluster_id)?,
        Err(e) => return Err(e.into()),
    };
    // Reading the dir proves it is usable (an unreadable dir is offline from the start).
    std::fs::read_dir(dir)?;
    Ok((Some(id), Some(lock)))
}

fn write_meta(dir: &Path, node_id: i32, cluster_id: &str) -> std::io::Result<Uuid> {
    let id = Uuid::new_v4();
    let text = format!(
        "#\n#Written by gregor\nversion=1\ncluster.id={cluster_id}\nnode.id={node_id}\ndirectory.id={id}\n"
    );
    let tmp = dir.join(format!("{META_PROPERTIES}.tmp"));
    std::fs::write(&tmp, text)?;
    File::open(&tmp)?.sync_all()?;
    std::fs::rename(&tmp, dir.join(META_PROPERTIES))?;
    File::open(dir)?.sync_all()?;
    Ok(id)
}

/// `<topic>-<partition>` of a partition directory's name, if it is one.
pub fn parse_partition_dir(name: &str) -> Option<(String, i32)> {
    let (topic, idx) = name.rsplit_once('-')?;
    if topic.is_empty() || idx.is_empty() || !idx.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((topic.to_string(), idx.parse().ok()?))
}

/// Where each partition found on disk lives: `(topic, partition) -> dir index`. Offline
/// dirs are not read (their partitions are offline wherever the image places them). A
/// partition in two online dirs is an error: which copy is right cannot be known.
pub fn scan(dirs: &LogDirs) -> Result<HashMap<(String, i32), usize>, LogDirError> {
    let mut found: HashMap<(String, i32), usize> = HashMap::new();
    for d in dirs.all().iter().filter(|d| d.is_online()) {
        let entries = match std::fs::read_dir(&d.path) {
            Ok(e) => e,
            Err(e) => {
                d.fail(&format!("cannot read the directory: {e}"));
                continue;
            }
        };
        for entry in entries {
            let entry = match entry {
                Ok(e) => e,
                Err(e) => {
                    d.fail(&format!("cannot read the directory: {e}"));
                    break;
                }
            };
            if !entry.file_type().is_ok_and(|t| t.is_dir()) {
                continue;
            }
            let Some(key) = entry.file_name().to_str().and_then(parse_partition_dir) else {
                continue;
            };
            if let Some(&first) = found.get(&key) {
                let path_of = |i: usize| {
                    dirs.get(i)
                        .map(|d| d.path.display().to_string())
                        .unwrap_or_default()
                };
                return Err(LogDirError::Duplicate {
                    topic: key.0,
                    partition: key.1,
                    first: path_of(first),
                    second: path_of(d.index),
                });
            }
            found.insert(key, d.index);
        }
    }
    if !dirs.all().iter().any(|d| d.is_online()) {
        return Err(LogDirError::AllOffline);
    }
    Ok(found)
}

/// The dir for a new replica: the online one with the fewest partitions (the first of
/// equals), or none when every dir is offline. `counts[i]` is dir i's partitions.
pub fn place(counts: &[usize], online: &[bool]) -> Option<usize> {
    counts
        .iter()
        .zip(online)
        .enumerate()
        .filter(|(_, (_, up))| **up)
        .min_by_key(|(i, (c, _))| (**c, *i))
        .map(|(i, _)| i)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_replicas_go_to_the_online_dir_with_fewest_partitions() {
        assert_eq!(place(&[3, 1, 2], &[true, true, true]), Some(1));
        assert_eq!(place(&[3, 1, 2], &[true, false, true]), Some(2));
        assert_eq!(place(&[2, 2, 2], &[true, true, true]), Some(0));
        assert_eq!(place(&[0, 5], &[false, true]), Some(1));
        assert_eq!(place(&[0, 0], &[false, false]), None);
        assert_eq!(place(&[], &[]), None);
    }

    #[test]
    fn partition_dir_names() {
        assert_eq!(parse_partition_dir("a-b-3"), Some(("a-b".into(), 3)));
        assert_eq!(parse_partition_dir("t-0"), Some(("t".into(), 0)));
        assert_eq!(parse_partition_dir("t-0.delete"), None);
        assert_eq!(parse_partition_dir("t-x"), None);
        assert_eq!(parse_partition_dir("-1"), None);
        assert_eq!(parse_partition_dir("share-state"), None);
    }

    fn tmp(name: &str) -> PathBuf {
        let p = std::env::temp_dir().join(format!(
            "gregor-logdirs-{name}-{}-{}",
            std::process::id(),
            Uuid::new_v4()
        ));
        std::fs::create_dir_all(&p).unwrap();
        p
    }

    #[test]
    fn scan_finds_partitions_in_every_dir() {
        let (a, b) = (tmp("a"), tmp("b"));
        std::fs::create_dir(a.join("t-0")).unwrap();
        std::fs::create_dir(b.join("t-1")).unwrap();
        std::fs::create_dir(b.join("t-2.delete")).unwrap();
        std::fs::write(b.join("u-3"), b"a file, not a partition").unwrap();
        let dirs = LogDirs::unchecked(&[a.clone(), b.clone()]);
        let found = scan(&dirs).unwrap();
        assert_eq!(found.len(), 2);
        assert_eq!(found[&("t".to_string(), 0)], 0);
        assert_eq!(found[&("t".to_string(), 1)], 1);
        let _ = std::fs::remove_dir_all(a);
        let _ = std::fs::remove_dir_all(b);
    }

    #[test]
    fn a_partition_in_two_dirs_is_a_startup_error() {
        let (a, b) = (tmp("a"), tmp("b"));
        std::fs::create_dir(a.join("t-0")).unwrap();
        std::fs::create_dir(b.join("t-0")).unwrap();
        let dirs = LogDirs::unchecked(&[a.clone(), b.clone()]);
        match scan(&dirs) {
            Err(LogDirError::Duplicate {
                topic, partition, ..
            }) => assert_eq!((topic.as_str(), partition), ("t", 0)),
            other => panic!("expected a duplicate, got {:?}", other.map(|m| m.len())),
        }
        let _ = std::fs::remove_dir_all(a);
        let _ = std::fs::remove_dir_all(b);
    }

    #[test]
    fn an_unusable_dir_is_offline_and_the_others_serve() {
        let a = tmp("a");
        std::fs::create_dir(a.join("t-0")).unwrap();
        // A regular file where a directory should be: it cannot be created or read.
        let bad = tmp("bad").join("not-a-dir");
        std::fs::write(&bad, b"x").unwrap();
        let dirs =
            LogDirs::open(&[a.clone(), bad.clone()], Path::new("/nonexistent"), 1, "c").unwrap();
        assert_eq!(dirs.online(), vec![true, false]);
        assert!(dirs.all()[1].offline_reason().is_some());
        assert!(dirs.all()[0].id.is_some(), "a directory id was written");
        let found = scan(&dirs).unwrap();
        assert_eq!(found.len(), 1);
        // Every dir offline: the broker cannot start.
        assert!(matches!(
            LogDirs::open(
                std::slice::from_ref(&bad),
                Path::new("/nonexistent"),
                1,
                "c"
            ),
            Err(LogDirError::AllOffline)
        ));
        let _ = std::fs::remove_dir_all(a);
    }

    #[test]
    fn a_dir_of_another_cluster_is_refused() {
        let a = tmp("a");
        drop(LogDirs::open(std::slice::from_ref(&a), Path::new("/nonexistent"), 1, "c1").unwrap());
        assert!(matches!(
            LogDirs::open(std::slice::from_ref(&a), Path::new("/nonexistent"), 1, "c2"),
            Err(LogDirError::Identity(_))
        ));
        assert!(matches!(
            LogDirs::open(std::slice::from_ref(&a), Path::new("/nonexistent"), 2, "c1"),
            Err(LogDirError::Identity(_))
        ));
        let _ = std::fs::remove_dir_all(a);
    }

    #[test]
    fn only_disk_failures_take_a_dir_offline() {
        let err = |code| LogError::Io(std::io::Error::from_raw_os_error(code));
        assert!(is_dir_failure(&err(rustix::io::Errno::IO.raw_os_error())));
        assert!(is_dir_failure(&err(rustix::io::Errno::ROFS.raw_os_error())));
        assert!(!is_dir_failure(&err(
            rustix::io::Errno::NOSPC.raw_os_error()
        )));
        assert!(!is_dir_failure(&err(
            rustix::io::Errno::MFILE.raw_os_error()
        )));
        let dirs = LogDirs::unchecked(&[PathBuf::from("/x")]);
        let mut failures = dirs.failures();
        assert!(!dirs.all()[0].note_error(&err(rustix::io::Errno::NOSPC.raw_os_error())));
        assert!(dirs.all()[0].is_online());
        assert!(dirs.all()[0].note_error(&err(rustix::io::Errno::IO.raw_os_error())));
        assert!(!dirs.all()[0].is_online());
        assert!(failures.has_changed().unwrap());
        let _ = failures.borrow_and_update();
    }
}
