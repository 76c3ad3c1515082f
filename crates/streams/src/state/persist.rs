//! The task's local database: one redb file per task (`<state.dir>/<application.id>/<task>/
//! state.redb`), one table per store plus a `checkpoints` table mapping each store to the
//! last changelog offset its persisted contents include. Data and checkpoint are written
//! in one redb transaction, so after a crash the file is always a consistent prefix of the
//! changelog and restoration resumes right after the checkpoint.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use redb::{Database, ReadableTable, TableDefinition};

use super::{Map, Store};
use crate::error::{Result, StreamsError};

const CHECKPOINTS: TableDefinition<'static, &str, i64> = TableDefinition::new("checkpoints");

fn table(name: &str) -> TableDefinition<'_, &'static [u8], &'static [u8]> {
    TableDefinition::new(name)
}

fn err(e: impl std::fmt::Display) -> StreamsError {
    StreamsError::store("local database", e)
}

/// A task's redb database (or nothing, for the test driver without a state dir).
pub(crate) struct LocalState {
    db: Option<Database>,
    dir: Option<PathBuf>,
}

impl LocalState {
    pub(crate) fn in_memory() -> Self {
        LocalState {
            db: None,
            dir: None,
        }
    }

    pub(crate) fn open(dir: &Path) -> Result<Self> {
        std::fs::create_dir_all(dir)?;
        let db = Database::create(dir.join("state.redb")).map_err(err)?;
        Ok(LocalState {
            db: Some(db),
            dir: Some(dir.to_path_buf()),
        })
    }

    /// The persisted contents of a store and its checkpoint (the last changelog offset
    /// they include), if any.
    pub(crate) fn load(&self, store: &str) -> Result<(Map, Option<i64>)> {
        let mut map = Map::new();
        let Some(db) = &self.db else {
            return Ok((map, None));
        };
        let tx = db.begin_read().map_err(err)?;
        let checkpoint = match tx.open_table(CHECKPOINTS) {
            Ok(t) => t.get(store).map_err(err)?.map(|v| v.value()),
            Err(redb::TableError::TableDoesNotExist(_)) => None,
            Err(e) => return Err(err(e)),
        };
        match tx.open_table(table(store)) {
            Ok(t) => {
                for entry in t.iter().map_err(err)? {
                    let (k, v) = entry.map_err(err)?;
                    map.insert(k.value().to_vec(), v.value().to_vec());
                }
            }
            Err(redb::TableError::TableDoesNotExist(_)) => {}
            Err(e) => return Err(err(e)),
        }
        Ok((map, checkpoint))
    }

    /// Writes every store's dirty entries and the given checkpoints in one transaction.
    pub(crate) fn flush(
        &self,
        stores: &mut [&mut Store],
        checkpoints: &HashMap<String, i64>,
    ) -> Result<()> {
        let Some(db) = &self.db else {
            for s in stores.iter_mut() {
                s.dirty.clear();
            }
            return Ok(());
        };
        let tx = db.begin_write().map_err(err)?;
        {
            for s in stores.iter_mut() {
                let mut t = tx.open_table(table(&s.spec.name)).map_err(err)?;
                for (k, v) in std::mem::take(&mut s.dirty) {
                    match v {
                        Some(v) => {
                            t.insert(k.as_slice(), v.as_slice()).map_err(err)?;
                        }
                        None => {
                            t.remove(k.as_slice()).map_err(err)?;
                        }
                    }
                }
            }
            let mut c = tx.open_table(CHECKPOINTS).map_err(err)?;
            for (store, offset) in checkpoints {
                c.insert(store.as_str(), *offset).map_err(err)?;
            }
        }
        tx.commit().map_err(err)?;
        Ok(())
    }

    pub(crate) fn dir(&self) -> Option<&Path> {
        self.dir.as_deref()
    }
}
