//! The quorum's directory: its identity (the amnesia guard) and the migration of a
//! directory from before the quorum.
//!
//! `quorum.state` holds the directory id, the cluster id and whether a migration is
//! pending; `meta.properties` gets the same directory id (`directory.id`). A new raft
//! state is created in this order: `raft.log` (empty, fsynced), `quorum.state`,
//! `meta.properties`; so a `meta.properties` with a directory id always has its raft
//! state beside it unless the state was lost.
//!
//! Migration: the old `MetadataStore` files in `__cluster_metadata-0/` are moved into
//! `pre-raft/` (through `pre-raft.tmp/`, undone when a crash interrupted it), the state
//! is written with `migration_pending`, and [`super::MetadataQuorum::start`] commits the
//! old image as the first entry, then clears the flag. Until it does, every start reads
//! the old image again from `pre-raft/`.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::log_store::{write_atomic, LogStore, LOG_FILE};
use super::state_machine::SNAPSHOT_FILE;
use super::{QuorumConfig, QuorumError};
use crate::image::MetadataImage;
use crate::store::{MetadataStore, METADATA_LOG_DIR};

pub(crate) const STATE_FILE: &str = "quorum.state";
const META_PROPERTIES: &str = "meta.properties";
const PRE_RAFT: &str = "pre-raft";
const PRE_RAFT_TMP: &str = "pre-raft.tmp";

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct QuorumState {
    pub(crate) version: u32,
    pub(crate) directory_id: Uuid,
    pub(crate) cluster_id: String,
    pub(crate) node_id: i32,
    pub(crate) migration_pending: bool,
}

pub(crate) struct Prepared {
    pub(crate) dir: PathBuf,
    pub(crate) state: QuorumState,
    /// The old image to commit as the first entry.
    pub(crate) migrated: Option<MetadataImage>,
}

fn read_state(dir: &Path) -> Result<Option<QuorumState>, QuorumError> {
    match std::fs::read(dir.join(STATE_FILE)) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| QuorumError::Storage(format!("{}: {e}", dir.join(STATE_FILE).display()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e.into()),
    }
}

pub(crate) fn write_state(dir: &Path, state: &QuorumState) -> Result<(), QuorumError> {
    let bytes =
        serde_json::to_vec_pretty(state).map_err(|e| QuorumError::Storage(e.to_string()))?;
    write_atomic(&dir.join(STATE_FILE), &bytes)?;
    Ok(())
}

/// A properties file's text and its key/value pairs.
type Properties = (String, BTreeMap<String, String>);

fn read_properties(path: &Path) -> Result<Option<Properties>, QuorumError> {
    match std::fs::read_to_string(path) {
        Ok(text) => {
            let props = text
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty() && !l.starts_with('#'))
                .filter_map(|l| l.split_once('='))
                .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
                .collect();
            Ok(Some((text, props)))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// Records the directory id in `meta.properties` (creating it when absent).
fn write_directory_id(cfg: &QuorumConfig, id: Uuid) -> Result<(), QuorumError> {
    let path = cfg.data_dir.join(META_PROPERTIES);
    let text = match read_properties(&path)? {
        Some((mut text, _)) => {
            if !text.ends_with('\n') {
                text.push('\n');
            }
            text.push_str(&format!("directory.id={id}\n"));
            text
        }
        None => format!(
            "#\n#Written by gregor\nversion=1\ncluster.id={}\nnode.id={}\ndirectory.id={id}\n",
            cfg.cluster_id, cfg.node_id
        ),
    };
    write_atomic(&path, text.as_bytes())?;
    Ok(())
}

fn is_ours(name: &str) -> bool {
    [LOG_FILE, SNAPSHOT_FILE, STATE_FILE, PRE_RAFT, PRE_RAFT_TMP].contains(&name)
        || name.ends_with(".tmp")
}

/// Moves the old store's files into `pre-raft/`; true when there were any (or a
/// previous start already moved them).
fn move_old_files(dir: &Path) -> Result<bool, QuorumError> {
    let tmp = dir.join(PRE_RAFT_TMP);
    if tmp.exists() {
        // A crash in the middle of a move: put everything back, then move again.
        for entry in std::fs::read_dir(&tmp)? {
            let entry = entry?;
            std::fs::rename(entry.path(), dir.join(entry.file_name()))?;
        }
        std::fs::remove_dir(&tmp)?;
    }
    if dir.join(PRE_RAFT).is_dir() {
        return Ok(true);
    }
    let old: Vec<_> = std::fs::read_dir(dir)?
        .filter_map(Result::ok)
        .filter(|e| !e.file_name().to_str().is_some_and(is_ours))
        .collect();
    if old.is_empty() {
        return Ok(false);
    }
    std::fs::create_dir(&tmp)?;
    for e in &old {
        std::fs::rename(e.path(), tmp.join(e.file_name()))?;
    }
    File::open(&tmp)?.sync_all()?;
    std::fs::rename(&tmp, dir.join(PRE_RAFT))?;
    File::open(dir)?.sync_all()?;
    Ok(true)
}

/// Checks the directory's identity, creates a new raft state or prepares a migration.
pub(crate) fn prepare(cfg: &QuorumConfig) -> Result<Prepared, QuorumError> {
    let dir = cfg.data_dir.join(METADATA_LOG_DIR);
    std::fs::create_dir_all(&dir)?;
    let state = read_state(&dir)?;
    let meta_id = read_properties(&cfg.data_dir.join(META_PROPERTIES))?
        .and_then(|(_, p)| p.get("directory.id").cloned());
    let state = match (state, meta_id) {
        (None, Some(id)) => {
            return Err(QuorumError::StateLost(format!(
                "{} names directory {id} but its metadata quorum state ({}) is missing; \
                 this voter could vote twice in one term. Restore the directory or remove it \
                 and replace the voter",
                cfg.data_dir.join(META_PROPERTIES).display(),
                dir.join(STATE_FILE).display()
            )))
        }
        (Some(s), Some(id)) if s.directory_id.to_string() != id => {
            return Err(QuorumError::StateLost(format!(
                "the metadata quorum state in {} belongs to directory {}, meta.properties names {id}",
                dir.display(),
                s.directory_id
            )))
        }
        (Some(s), meta_id) => {
            if !dir.join(LOG_FILE).exists() {
                return Err(QuorumError::StateLost(format!(
                    "{} is missing: the vote and log of this voter are lost",
                    dir.join(LOG_FILE).display()
                )));
            }
            if s.cluster_id != cfg.cluster_id {
                return Err(QuorumError::InconsistentClusterId {
                    ours: cfg.cluster_id.clone(),
                    theirs: s.cluster_id,
                });
            }
            if s.node_id != cfg.node_id {
                return Err(QuorumError::Config(format!(
                    "the metadata quorum state in {} is node {}'s, this is node {}",
                    dir.display(),
                    s.node_id,
                    cfg.node_id
                )));
            }
            if meta_id.is_none() {
                write_directory_id(cfg, s.directory_id)?;
            }
            s
        }
        (None, None) => {
            let migrate = move_old_files(&dir)?;
            if migrate && cfg.voters.len() > 1 {
                return Err(QuorumError::Config(format!(
                    "{} holds a metadata log from before the quorum: start this node as the \
                     only voter once to migrate it",
                    dir.display()
                )));
            }
            LogStore::create(&dir)?;
            let s = QuorumState {
                version: 1,
                directory_id: Uuid::new_v4(),
                cluster_id: cfg.cluster_id.clone(),
                node_id: cfg.node_id,
                migration_pending: migrate,
            };
            write_state(&dir, &s)?;
            write_directory_id(cfg, s.directory_id)?;
            s
        }
    };
    // Temp files of writes a crash interrupted.
    for entry in std::fs::read_dir(&dir)? {
        let entry = entry?;
        if entry
            .file_name()
            .to_str()
            .is_some_and(|n| n.ends_with(".tmp"))
            && entry.path().is_file()
        {
            let _ = std::fs::remove_file(entry.path());
        }
    }
    let migrated = if state.migration_pending {
        let store = MetadataStore::open_dir(&dir.join(PRE_RAFT), cfg.clean_shutdown, cfg.log)?;
        let image = store.image();
        store.close()?;
        tracing::info!(
            topics = image.topics.len(),
            offset = image.offset,
            "metadata quorum: migrating the metadata log from before the quorum"
        );
        Some((*image).clone())
    } else {
        None
    };
    Ok(Prepared {
        dir,
        state,
        migrated,
    })
}
