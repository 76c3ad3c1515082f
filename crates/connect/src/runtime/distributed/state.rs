//! What the internal topics hold, in Kafka Connect's key and value formats.
//!
//! `connect-configs` (one partition, read in order by every worker):
//! - `connector-<name>` → `{"properties": {...}}`; a tombstone deletes the connector.
//! - `target-state-<name>` → `{"state": "STARTED"|"PAUSED", "state.v2": "STARTED"|"PAUSED"|"STOPPED"}`.
//! - `task-<name>-<n>` → `{"properties": {...}}`, pending until
//! - `commit-<name>` → `{"tasks": N}` makes tasks 0..N the connector's task configs.
//! - `restart-connector-<name>` → `{"include-tasks": bool, "only-failed": bool}`.
//!
//! `connect-status`: `status-connector-<name>` / `status-task-<name>-<n>` →
//! `{"state", "trace", "worker_id", "generation"}`.
//!
//! `connect-offsets`: key `["<connector>", {<source partition>}]`, value the offset.

use std::collections::BTreeMap;

use gregor_connect_api::Props;
use serde_json::{json, Value as J};

use crate::runtime::store::TargetState;

/// A restart request read from the config topic.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RestartRequest {
    pub connector: String,
    pub include_tasks: bool,
    pub only_failed: bool,
}

/// The config topic's content, as applied so far.
#[derive(Clone, Debug, Default)]
pub struct ConfigState {
    /// The config topic's end offset this state was read to.
    pub offset: i64,
    pub connectors: BTreeMap<String, Props>,
    pub targets: BTreeMap<String, TargetState>,
    pub tasks: BTreeMap<String, Vec<Props>>,
    pending: BTreeMap<String, BTreeMap<u32, Props>>,
    /// Restart requests read since the caller last took them.
    pub restarts: Vec<RestartRequest>,
}

fn properties(v: &[u8]) -> Option<Props> {
    let j: J = serde_json::from_slice(v).ok()?;
    let obj = j.get("properties")?.as_object()?;
    Some(
        obj.iter()
            .filter_map(|(k, v)| v.as_str().map(|s| (k.clone(), s.to_string())))
            .collect(),
    )
}

/// `task-<name>-<n>` → (name, n); the name may itself contain dashes.
fn task_key(rest: &str) -> Option<(String, u32)> {
    let (name, n) = rest.rsplit_once('-')?;
    Some((name.to_string(), n.parse().ok()?))
}

impl ConfigState {
    /// Applies one record of the config topic.
    pub fn apply(&mut self, key: &str, value: Option<&[u8]>) {
        if let Some(name) = key.strip_prefix("connector-") {
            match value.and_then(properties) {
                Some(p) => {
                    self.connectors.insert(name.to_string(), p);
                }
                None => {
                    self.connectors.remove(name);
                    self.targets.remove(name);
                    self.tasks.remove(name);
                    self.pending.remove(name);
                }
            }
        } else if let Some(name) = key.strip_prefix("target-state-") {
            let state = value
                .and_then(|v| serde_json::from_slice::<J>(v).ok())
                .and_then(|j| {
                    j.get("state.v2")
                        .or_else(|| j.get("state"))
                        .and_then(J::as_str)
                        .map(str::to_string)
                });
            let t = match state.as_deref() {
                Some("PAUSED") => TargetState::Paused,
                Some("STOPPED") => TargetState::Stopped,
                _ => TargetState::Started,
            };
            self.targets.insert(name.to_string(), t);
        } else if let Some(rest) = key.strip_prefix("task-") {
            if let (Some((name, n)), Some(p)) = (task_key(rest), value.and_then(properties)) {
                self.pending.entry(name).or_default().insert(n, p);
            }
        } else if let Some(name) = key.strip_prefix("commit-") {
            let n = value
                .and_then(|v| serde_json::from_slice::<J>(v).ok())
                .and_then(|j| j.get("tasks").and_then(J::as_u64))
                .unwrap_or(0);
            let mut pending = self.pending.remove(name).unwrap_or_default();
            let configs: Vec<Props> = (0..u32::try_from(n).unwrap_or(0))
                .map(|i| pending.remove(&i).unwrap_or_default())
                .collect();
            self.tasks.insert(name.to_string(), configs);
        } else if let Some(name) = key.strip_prefix("restart-connector-") {
            let j = value
                .and_then(|v| serde_json::from_slice::<J>(v).ok())
                .unwrap_or(J::Null);
            self.restarts.push(RestartRequest {
                connector: name.to_string(),
                include_tasks: j["include-tasks"].as_bool().unwrap_or(false),
                only_failed: j["only-failed"].as_bool().unwrap_or(false),
            });
        }
    }

    pub fn target(&self, name: &str) -> TargetState {
        self.targets
            .get(name)
            .copied()
            .unwrap_or(TargetState::Started)
    }

    /// Connectors with their committed task counts, sorted by name (the assignor's
    /// input).
    pub fn work(&self) -> Vec<(String, u32)> {
        self.connectors
            .keys()
            .map(|c| {
                let n = self.tasks.get(c).map_or(0, Vec::len);
                (c.clone(), u32::try_from(n).unwrap_or(u32::MAX))
            })
            .collect()
    }

    /// What decides the assignment: connector names and task configs. A change in it
    /// calls for a rebalance; a target-state change does not.
    pub fn shape(&self) -> (Vec<String>, &BTreeMap<String, Vec<Props>>) {
        (self.connectors.keys().cloned().collect(), &self.tasks)
    }
}

pub fn connector_key(name: &str) -> String {
    format!("connector-{name}")
}

pub fn target_key(name: &str) -> String {
    format!("target-state-{name}")
}

pub fn task_config_key(name: &str, n: usize) -> String {
    format!("task-{name}-{n}")
}

pub fn commit_key(name: &str) -> String {
    format!("commit-{name}")
}

pub fn restart_key(name: &str) -> String {
    format!("restart-connector-{name}")
}

pub fn properties_value(p: &Props) -> Vec<u8> {
    json!({ "properties": p }).to_string().into_bytes()
}

pub fn target_value(t: TargetState) -> Vec<u8> {
    let (v1, v2) = match t {
        TargetState::Started => ("STARTED", "STARTED"),
        // Workers that predate STOPPED read it as PAUSED (Kafka's compatibility).
        TargetState::Paused | TargetState::Stopped => ("PAUSED", "PAUSED"),
    };
    let v2 = if t == TargetState::Stopped {
        "STOPPED"
    } else {
        v2
    };
    json!({ "state": v1, "state.v2": v2 })
        .to_string()
        .into_bytes()
}

pub fn commit_value(n: usize) -> Vec<u8> {
    json!({ "tasks": n }).to_string().into_bytes()
}

pub fn restart_value(include_tasks: bool, only_failed: bool) -> Vec<u8> {
    json!({"include-tasks": include_tasks, "only-failed": only_failed})
        .to_string()
        .into_bytes()
}

pub fn status_connector_key(name: &str) -> String {
    format!("status-connector-{name}")
}

pub fn status_task_key(name: &str, n: usize) -> String {
    format!("status-task-{name}-{n}")
}

pub fn status_value(state: &str, trace: Option<&str>, worker_id: &str, generation: i32) -> Vec<u8> {
    json!({"state": state, "trace": trace, "worker_id": worker_id, "generation": generation})
        .to_string()
        .into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn props(k: &str, v: &str) -> Props {
        [(k.to_string(), v.to_string())].into_iter().collect()
    }

    #[test]
    fn tasks_become_visible_on_commit_and_tombstone_deletes() {
        let mut s = ConfigState::default();
        s.apply(
            "connector-my-src",
            Some(&properties_value(&props("a", "1"))),
        );
        s.apply("task-my-src-0", Some(&properties_value(&props("t", "0"))));
        s.apply("task-my-src-1", Some(&properties_value(&props("t", "1"))));
        assert_eq!(s.work(), vec![("my-src".to_string(), 0)]);
        s.apply("commit-my-src", Some(&commit_value(2)));
        assert_eq!(s.work(), vec![("my-src".to_string(), 2)]);
        assert_eq!(s.tasks["my-src"][1]["t"], "1");
        s.apply(
            "target-state-my-src",
            Some(&target_value(TargetState::Stopped)),
        );
        assert_eq!(s.target("my-src"), TargetState::Stopped);
        s.apply(
            "restart-connector-my-src",
            Some(&restart_value(true, false)),
        );
        assert!(s.restarts[0].include_tasks && !s.restarts[0].only_failed);
        s.apply("connector-my-src", None);
        assert!(s.work().is_empty());
        assert_eq!(s.target("my-src"), TargetState::Started);
    }

    #[test]
    fn target_state_v1_only_is_read() {
        let mut s = ConfigState::default();
        s.apply("target-state-x", Some(br#"{"state":"PAUSED"}"#));
        assert_eq!(s.target("x"), TargetState::Paused);
    }
}
