//! One registry process: the shared state, the store, the election, and the write path.
//!
//! Architecture invariants:
//! - The log is the truth: the state only changes by applying records read back from
//!   `_schemas`, never by a write's own hand.
//! - Writes happen only on the primary, one at a time (`write_lock`), each decided
//!   against a state caught up to the log end, so ids come from the highest id ever
//!   written and are never reused.
//! - A write is answered only after its records were read back (read-your-writes);
//!   forwarded writes also wait on the forwarding process (see `forward`).

use std::sync::{Arc, MutexGuard};
use std::time::Duration;

use serde_json::Value;

use crate::election::Election;
use crate::error::{RegistryError, Result};
use crate::model::{PrimaryValue, Record, RecordKey};
use crate::service::Plan;
use crate::state::State;
use crate::store::Store;

pub struct Node {
    pub store: Store,
    pub election: Election,
    /// This process's URL as other processes reach it (what it announces).
    pub url: String,
    write_lock: tokio::sync::Mutex<()>,
    pub(crate) http: crate::forward::Client,
}

impl Node {
    pub fn new(store: Store, election: Election, url: String) -> Node {
        Node {
            store,
            election,
            url,
            write_lock: tokio::sync::Mutex::new(()),
            http: crate::forward::client(),
        }
    }

    pub fn state(&self) -> MutexGuard<'_, State> {
        match self.store.state().lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        }
    }

    /// The primary's URL as last announced in the log.
    pub fn primary_url(&self) -> Option<String> {
        self.state().primary.clone()
    }

    /// Elected, and its own announcement is the latest one in the log.
    pub fn is_primary(&self) -> bool {
        self.election.is_elected() && self.primary_url().as_deref() == Some(self.url.as_str())
    }

    /// Runs a write on this process: catch up, decide, append, read back. The answer
    /// and the offset of the last record appended (if any).
    pub async fn execute(
        &self,
        plan: impl FnOnce(&State) -> Result<Plan>,
    ) -> Result<(Value, Option<i64>)> {
        let _serial = self.write_lock.lock().await;
        self.store.catch_up().await?;
        let plan = {
            let st = self.state();
            plan(&st)?
        };
        let offset = self.store.append(plan.records).await?;
        if let Some(offset) = offset {
            self.store.wait_applied(offset).await?;
        }
        if let Some((subject, version, id)) = plan.expect {
            let st = self.state();
            let held = st
                .all_versions(&subject)
                .and_then(|vs| vs.get(&version))
                .is_some_and(|v| v.id == id);
            if !held {
                return Err(RegistryError::Store(format!(
                    "the registration of {subject} version {version} lost to a concurrent write; retry"
                )));
            }
        }
        Ok((plan.response, offset))
    }

    /// While elected, makes sure the latest announcement in the log is this process's.
    pub async fn announce_loop(self: Arc<Self>) {
        let mut elected = self.election.elected.clone();
        loop {
            if *elected.borrow_and_update() && self.primary_url().as_deref() != Some(&self.url) {
                let url = self.url.clone();
                let result = self
                    .execute(|_| {
                        Ok(Plan {
                            records: vec![Record::put(RecordKey::Primary, &PrimaryValue { url })],
                            response: Value::Null,
                            expect: None,
                        })
                    })
                    .await;
                match result {
                    Ok(_) => tracing::info!("registry: primary at {}", self.url),
                    Err(e) => tracing::warn!("registry: cannot announce primary: {e}"),
                }
            }
            // Re-check on a change of election, and now and then in case another
            // process's stale announcement landed after this one's.
            let _ = tokio::time::timeout(Duration::from_secs(1), elected.changed()).await;
        }
    }
}
