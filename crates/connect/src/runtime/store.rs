//! Standalone-mode durable state: source offsets and connector configs, each a JSON
//! file replaced atomically (write to a temporary file, fsync, rename) so a worker
//! killed at any point finds either the old or the new content.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value as J};

use super::distributed::log::TopicLog;
use crate::error::Error;

type JsonMap = Map<String, J>;

fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    use std::io::Write;
    let io = |e: std::io::Error| Error::Storage(format!("cannot write {}: {e}", path.display()));
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::File::create(&tmp).map_err(io)?;
    f.write_all(bytes).map_err(io)?;
    f.sync_all().map_err(io)?;
    std::fs::rename(&tmp, path).map_err(io)?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
    }
    Ok(())
}

fn read_json<T: for<'de> Deserialize<'de> + Default>(path: &Path) -> Result<T, Error> {
    match std::fs::read(path) {
        Ok(bytes) if bytes.is_empty() => Ok(T::default()),
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map_err(|e| Error::Storage(format!("cannot parse {}: {e}", path.display()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(T::default()),
        Err(e) => Err(Error::Storage(format!(
            "cannot read {}: {e}",
            path.display()
        ))),
    }
}

/// One source partition's committed offset, in KIP-875's REST shape.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct PartitionOffset {
    pub partition: JsonMap,
    pub offset: JsonMap,
}

/// Where source offsets are kept durably.
enum Backend {
    /// Standalone: `offset.storage.file.filename`, replaced atomically on each write.
    File(PathBuf),
    /// Distributed: the compacted `offset.storage.topic`, key `["<connector>",
    /// {<partition>}]`, value the offset (a tombstone removes it), as Kafka writes it.
    Topic(Arc<TopicLog>),
}

/// Source offsets per connector: a map in memory backed by a file or a topic.
pub struct OffsetStore {
    backend: Backend,
    data: Mutex<BTreeMap<String, Vec<PartitionOffset>>>,
    /// Held by a topic reader from reading to applying (never with `data` across I/O).
    reading: Mutex<()>,
}

impl OffsetStore {
    pub fn open(path: PathBuf) -> Result<Self, Error> {
        let data = read_json(&path)?;
        Ok(OffsetStore {
            backend: Backend::File(path),
            data: Mutex::new(data),
            reading: Mutex::new(()),
        })
    }

    /// An offset store on the offsets topic, read to its end.
    pub fn on_topic(log: Arc<TopicLog>) -> Result<Self, Error> {
        let store = OffsetStore {
            backend: Backend::Topic(log),
            data: Mutex::new(BTreeMap::new()),
            reading: Mutex::new(()),
        };
        store.refresh()?;
        Ok(store)
    }

    /// Distributed mode: reads what other workers wrote to the offsets topic since the
    /// last call (before tasks start after a rebalance). Standalone: nothing to do.
    pub fn refresh(&self) -> Result<(), Error> {
        let Backend::Topic(log) = &self.backend else {
            return Ok(());
        };
        // Read and apply as one step, so concurrent readers apply in log order.
        let _one = self.reading.lock().unwrap_or_else(|p| p.into_inner());
        let mut updates = Vec::new();
        log.read_to_end(|r| decode_record(r.key, r.value, &mut updates))
            .map_err(|e| Error::Storage(e.to_string()))?;
        self.apply(updates);
        Ok(())
    }

    /// Like `refresh`, and waits (up to `wait`) for the transactions open on the
    /// offsets topic now to end, so every committed offset written before this call is
    /// read (an exactly-once task calls it after fencing its predecessors).
    pub fn refresh_past_open_transactions(
        &self,
        wait: Duration,
        stop: &dyn Fn() -> bool,
    ) -> Result<(), Error> {
        let Backend::Topic(log) = &self.backend else {
            return Ok(());
        };
        let storage = |e: super::distributed::DistError| Error::Storage(e.to_string());
        let ends = log.high_watermarks().map_err(storage)?;
        let deadline = std::time::Instant::now() + wait;
        // Short rounds: the herder and other tasks read the same topic meanwhile.
        loop {
            let reached = {
                let _one = self.reading.lock().unwrap_or_else(|p| p.into_inner());
                let mut updates = Vec::new();
                let reached = log
                    .read_towards(&ends, Duration::from_millis(200), |r| {
                        decode_record(r.key, r.value, &mut updates)
                    })
                    .map_err(storage)?;
                self.apply(updates);
                reached
            };
            if reached {
                return Ok(());
            }
            if stop() {
                return Err(Error::Storage(format!(
                    "stopped while reading {}",
                    log.topic
                )));
            }
            if std::time::Instant::now() > deadline {
                return Err(Error::Storage(format!(
                    "cannot read {} past its open transactions in {wait:?}",
                    log.topic
                )));
            }
            // A transaction is still open: back off so the herder's reader (which holds
            // the worker's operation lock meanwhile) gets its turn.
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The offsets topic, in distributed mode.
    pub fn topic(&self) -> Option<&str> {
        match &self.backend {
            Backend::Topic(log) => Some(&log.topic),
            Backend::File(_) => None,
        }
    }

    /// Records offsets written elsewhere (an exactly-once task's committed transaction)
    /// in memory, without writing them again.
    pub fn remember(&self, connector: &str, updates: Vec<(JsonMap, Option<JsonMap>)>) {
        self.apply(
            updates
                .into_iter()
                .map(|(p, o)| (connector.to_string(), p, o))
                .collect(),
        );
    }

    fn apply(&self, updates: Vec<(String, JsonMap, Option<JsonMap>)>) {
        let mut data = self.lock();
        for (c, partition, offset) in updates {
            let entries = data.entry(c).or_default();
            entries.retain(|p| p.partition != partition);
            if let Some(offset) = offset {
                entries.push(PartitionOffset { partition, offset });
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Vec<PartitionOffset>>> {
        self.data.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn write_file(&self, bytes: &[u8]) -> Result<(), Error> {
        match &self.backend {
            Backend::File(path) => write_atomically(path, bytes),
            Backend::Topic(_) => Ok(()),
        }
    }

    /// The committed offset of one source partition.
    pub fn get(&self, connector: &str, partition: &JsonMap) -> Option<JsonMap> {
        self.lock()
            .get(connector)?
            .iter()
            .find(|p| &p.partition == partition)
            .map(|p| p.offset.clone())
    }

    /// All of a connector's committed offsets.
    pub fn list(&self, connector: &str) -> Vec<PartitionOffset> {
        self.lock().get(connector).cloned().unwrap_or_default()
    }

    /// Stores offsets (a `None` offset removes the partition) and writes the file
    /// before returning.
    pub fn put(
        &self,
        connector: &str,
        updates: Vec<(JsonMap, Option<JsonMap>)>,
    ) -> Result<(), Error> {
        if let Backend::Topic(log) = &self.backend {
            let records: Vec<(String, Option<Vec<u8>>)> = updates
                .iter()
                .map(|(p, o)| offset_record(connector, p, o.as_ref()))
                .collect();
            log.send(&records)
                .map_err(|e| Error::Storage(e.to_string()))?;
        }
        let mut data = self.lock();
        let entries = data.entry(connector.to_string()).or_default();
        for (partition, offset) in updates {
            entries.retain(|p| p.partition != partition);
            if let Some(offset) = offset {
                entries.push(PartitionOffset { partition, offset });
            }
        }
        let bytes = serde_json::to_vec_pretty(&*data)
            .map_err(|e| Error::Storage(format!("cannot encode offsets: {e}")))?;
        self.write_file(&bytes)
    }

    /// Forgets every offset of a connector.
    pub fn reset(&self, connector: &str) -> Result<(), Error> {
        if let Backend::Topic(_) = &self.backend {
            let all = self.list(connector);
            return self.put(
                connector,
                all.into_iter().map(|p| (p.partition, None)).collect(),
            );
        }
        let mut data = self.lock();
        data.remove(connector);
        let bytes = serde_json::to_vec_pretty(&*data)
            .map_err(|e| Error::Storage(format!("cannot encode offsets: {e}")))?;
        self.write_file(&bytes)
    }
}

/// One offsets-topic record as Kafka writes it: key `["<connector>",{partition}]`, value
/// the offset (`None`: a tombstone).
pub fn offset_record(
    connector: &str,
    partition: &JsonMap,
    offset: Option<&JsonMap>,
) -> (String, Option<Vec<u8>>) {
    let key = J::Array(vec![J::from(connector), J::Object(partition.clone())]);
    (
        key.to_string(),
        offset.map(|o| J::Object(o.clone()).to_string().into_bytes()),
    )
}

/// Decodes one offsets-topic record into (connector, partition, offset); records of
/// another shape are skipped.
fn decode_record(
    key: &[u8],
    value: Option<&[u8]>,
    out: &mut Vec<(String, JsonMap, Option<JsonMap>)>,
) {
    let key: Option<(String, JsonMap)> =
        serde_json::from_slice::<J>(key).ok().and_then(|k| match k {
            J::Array(mut a) if a.len() == 2 => match (a.pop(), a.pop()) {
                (Some(J::Object(p)), Some(J::String(c))) => Some((c, p)),
                _ => None,
            },
            _ => None,
        });
    let value = value.and_then(|v| match serde_json::from_slice::<J>(v) {
        Ok(J::Object(o)) => Some(o),
        _ => None,
    });
    if let Some((c, p)) = key {
        out.push((c, p, value));
    }
}

/// A connector's desired state, stored with its config (Kafka's target state).
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "UPPERCASE")]
pub enum TargetState {
    Started,
    Paused,
    Stopped,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct StoredConnector {
    pub config: BTreeMap<String, String>,
    pub target: TargetState,
}

/// Connector configs and target states; `None` path: kept in memory only.
pub struct ConfigStore {
    path: Option<PathBuf>,
}

impl ConfigStore {
    pub fn new(path: Option<PathBuf>) -> Self {
        ConfigStore { path }
    }

    pub fn load(&self) -> Result<BTreeMap<String, StoredConnector>, Error> {
        match &self.path {
            Some(p) => read_json(p),
            None => Ok(BTreeMap::new()),
        }
    }

    pub fn save(&self, all: &BTreeMap<String, StoredConnector>) -> Result<(), Error> {
        let Some(p) = &self.path else {
            return Ok(());
        };
        let bytes = serde_json::to_vec_pretty(all)
            .map_err(|e| Error::Storage(format!("cannot encode connector configs: {e}")))?;
        write_atomically(p, &bytes)
    }
}
