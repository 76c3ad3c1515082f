//! The worker's distributed operations. REST writes (which reach the leader: followers
//! forward them) become records on the config topic and return once this worker's
//! herder applied them; the herder turns the config state and the assignment into
//! running connector objects and task threads.

use std::sync::Arc;

use gregor_connect_api::config::get_i64;
use gregor_connect_api::Props;
use serde_json::{json, Value as J};

use super::cluster::Cluster;
use super::protocol::Assignment;
use super::state::{self as keys, ConfigState, RestartRequest};
use crate::connectors::{self, ConnectorPlugin};
use crate::error::Error;
use crate::runtime::store::TargetState;
use crate::runtime::task::{self, TaskState};
use crate::runtime::{lock, validate, Entry, Worker};

type Records = Vec<(String, Option<Vec<u8>>)>;

/// The connector's task configs, computed on the leader when its config or target
/// state is written (Kafka has the connector's owner compute and the leader write them).
fn task_records(
    name: &str,
    plugin: &ConnectorPlugin,
    config: &Props,
    target: TargetState,
) -> Records {
    let mut configs: Vec<Props> = Vec::new();
    if target != TargetState::Stopped {
        let mut c = (plugin.new_connector)();
        if c.start(config).is_ok() {
            let max = usize::try_from(get_i64(config, "tasks.max", 1))
                .unwrap_or(1)
                .max(1);
            configs = c.task_configs(max);
        }
        c.stop();
    }
    let mut out: Records = configs
        .iter()
        .enumerate()
        .map(|(i, p)| {
            (
                keys::task_config_key(name, i),
                Some(keys::properties_value(p)),
            )
        })
        .collect();
    out.push((
        keys::commit_key(name),
        Some(keys::commit_value(configs.len())),
    ));
    out
}

impl Worker {
    pub(crate) fn cluster_put(
        &self,
        c: &Arc<Cluster>,
        name: &str,
        config: Props,
        allow_update: bool,
        initial: Option<TargetState>,
    ) -> Result<(bool, J), Error> {
        let current = lock(&self.state).get(name).map(|e| e.target);
        if current.is_some() && !allow_update {
            return Err(Error::AlreadyExists(name.into()));
        }
        let v = self.validate(&config)?;
        if !v.errors.is_empty() {
            return Err(Error::BadRequest(validate::invalid_message(&v)));
        }
        let target = current.or(initial).unwrap_or(TargetState::Started);
        let mut records: Records = Vec::new();
        if current.is_none() {
            records.push((keys::target_key(name), Some(keys::target_value(target))));
        }
        records.push((
            keys::connector_key(name),
            Some(keys::properties_value(&config)),
        ));
        records.extend(task_records(name, v.plugin, &config, target));
        c.write_configs(&records)?;
        Ok((current.is_none(), self.info(name)?))
    }

    pub(crate) fn cluster_delete(&self, c: &Arc<Cluster>, name: &str) -> Result<(), Error> {
        let tasks = self.require_entry(name)?.1;
        c.write_configs(&[
            (keys::connector_key(name), None),
            (keys::target_key(name), None),
        ])?;
        // The statuses go too (the status topic is compacted).
        let mut tombstones: Records = vec![(keys::status_connector_key(name), None)];
        tombstones.extend((0..tasks).map(|i| (keys::status_task_key(name, i), None)));
        c.status.send(&tombstones)?;
        Ok(())
    }

    pub(crate) fn cluster_set_target(
        &self,
        c: &Arc<Cluster>,
        name: &str,
        target: TargetState,
    ) -> Result<(), Error> {
        let (previous, config, plugin) = lock(&self.state)
            .get(name)
            .map(|e| (e.target, e.config.clone(), e.plugin))
            .ok_or_else(|| Error::ConnectorNotFound(name.into()))?;
        let mut records: Records = vec![(keys::target_key(name), Some(keys::target_value(target)))];
        // STOPPED has no tasks (Kafka writes an empty task set); leaving it makes them anew.
        if target == TargetState::Stopped || previous == TargetState::Stopped {
            records.extend(task_records(name, plugin, &config, target));
        }
        c.write_configs(&records)?;
        Ok(())
    }

    pub(crate) fn cluster_restart(
        &self,
        c: &Arc<Cluster>,
        name: &str,
        include_tasks: bool,
        only_failed: bool,
    ) -> Result<Option<J>, Error> {
        self.require_entry(name)
            .map_err(|_| Error::NotFound(format!("Unknown connector: {name}")))?;
        let mut planned = self.status(name)?;
        if include_tasks {
            if let Some(ts) = planned["tasks"].as_array_mut() {
                for t in ts
                    .iter_mut()
                    .filter(|t| !only_failed || t["state"] == "FAILED")
                {
                    t["state"] = J::from("RESTARTING");
                }
            }
        }
        if !only_failed || planned["connector"]["state"] == "FAILED" {
            planned["connector"]["state"] = J::from("RESTARTING");
        }
        c.write_configs(&[(
            keys::restart_key(name),
            Some(keys::restart_value(include_tasks, only_failed)),
        )])?;
        Ok((include_tasks || only_failed).then_some(planned))
    }

    /// (target, task count): the connector must exist.
    fn require_entry(&self, name: &str) -> Result<(TargetState, usize), Error> {
        lock(&self.state)
            .get(name)
            .map(|e| (e.target, e.task_configs.len()))
            .ok_or_else(|| Error::ConnectorNotFound(name.into()))
    }

    /// `GET /connectors/{name}/status` from the status topic: who runs what.
    pub(crate) fn cluster_status(&self, c: &Cluster, name: &str) -> Result<J, Error> {
        let (kind, tasks) = {
            let state = lock(&self.state);
            let e = state
                .get(name)
                .ok_or_else(|| Error::ConnectorNotFound(name.into()))?;
            (e.plugin.kind.name(), e.task_configs.len())
        };
        let shape = |v: Option<J>| -> J {
            let v = v.unwrap_or_else(|| json!({"state": "UNASSIGNED", "worker_id": ""}));
            let mut out = json!({"state": v["state"], "worker_id": v["worker_id"]});
            if let Some(t) = v["trace"].as_str() {
                out["trace"] = J::from(t);
            }
            out
        };
        let connector = shape(c.status_of(&keys::status_connector_key(name)));
        let tasks: Vec<J> = (0..tasks)
            .map(|i| {
                let mut t = shape(c.status_of(&keys::status_task_key(name, i)));
                t["id"] = J::from(i);
                t
            })
            .collect();
        Ok(json!({"name": name, "connector": connector, "tasks": tasks, "type": kind}))
    }

    /// Rebalance (eager): stops every connector object and task this worker runs. The
    /// entries keep their task configs (the status shows every task meanwhile).
    pub(crate) fn stop_all_local(&self) {
        let _op = lock(&self.ops);
        let mut threads = Vec::new();
        {
            let mut state = lock(&self.state);
            for e in state.values_mut() {
                for t in e.tasks.values() {
                    t.shared.request_stop();
                }
                if let Some(mut c) = e.connector.take() {
                    c.stop();
                }
                threads.extend(std::mem::take(&mut e.tasks).into_values());
                e.owned = false;
                e.failed = None;
            }
        }
        for t in threads {
            if let Some(h) = t.thread {
                let _ = h.join();
            }
        }
    }

    /// Brings the connector entries in line with the config state: new connectors
    /// appear, deleted ones stop and go, configs, task configs and target states are
    /// updated (local tasks pause or resume at once).
    pub(crate) fn sync_entries(&self, cs: &ConfigState) {
        let _op = lock(&self.ops);
        let gone: Vec<String> = lock(&self.state)
            .keys()
            .filter(|n| !cs.connectors.contains_key(*n))
            .cloned()
            .collect();
        for name in gone {
            self.stop_tasks_and_connector(&name);
            lock(&self.state).remove(&name);
        }
        let mut state = lock(&self.state);
        for (name, config) in &cs.connectors {
            let Some(plugin) = config
                .get("connector.class")
                .and_then(|c| connectors::find(c))
            else {
                tracing::error!("connector {name} has an unknown connector.class; skipped");
                continue;
            };
            let target = cs.target(name);
            let task_configs = cs.tasks.get(name).cloned().unwrap_or_default();
            let e = state
                .entry(name.clone())
                .or_insert_with(|| Entry::new(config.clone(), target, plugin));
            e.config = config.clone();
            e.plugin = plugin;
            e.target = target;
            e.task_configs = task_configs;
            for t in e.tasks.values() {
                t.shared.set_paused(target == TargetState::Paused);
            }
        }
    }

    /// Starts what the assignment gives this worker, source tasks from the offsets the
    /// previous owners stored.
    pub(crate) fn start_assigned(&self, a: &Assignment) {
        let _op = lock(&self.ops);
        let t0 = std::time::Instant::now();
        if let Err(e) = self.offsets.refresh() {
            tracing::error!("cannot read the offsets topic: {e}");
        }
        tracing::debug!("read the offsets topic in {:?}", t0.elapsed());
        let mut state = lock(&self.state);
        for name in &a.connectors {
            let Some(e) = state.get_mut(name) else {
                continue;
            };
            e.owned = true;
            e.failed = None;
            if e.target == TargetState::Stopped {
                continue;
            }
            let mut c = (e.plugin.new_connector)();
            match c.start(&e.config) {
                Ok(()) => e.connector = Some(c),
                Err(err) => e.failed = Some(task::trace(&err)),
            }
        }
        for (name, id) in &a.tasks {
            let Some(e) = state.get_mut(name) else {
                continue;
            };
            let idx = usize::try_from(*id).unwrap_or(usize::MAX);
            let Some(cfg) = e.task_configs.get(idx).cloned() else {
                continue;
            };
            if e.target == TargetState::Stopped {
                continue;
            }
            let paused = e.target == TargetState::Paused;
            let t = self.spawn_task(name, e, *id, cfg, paused);
            e.tasks.insert(idx, t);
        }
    }

    /// Restart requests read from the config topic (KIP-745): each worker restarts what
    /// it runs of the plan, after writing RESTARTING for it (Kafka's
    /// `doRestartConnectorAndTasks`).
    pub(crate) fn restart_local(&self, req: &RestartRequest, a: &Assignment) {
        let status = self.local_statuses();
        let failed = |key: &str| status.iter().any(|(k, s, _)| k == key && s == "FAILED");
        let name = req.connector.as_str();
        let stopped = lock(&self.state)
            .get(name)
            .is_none_or(|e| e.target == TargetState::Stopped);
        if stopped {
            return;
        }
        let connector = a.connectors.iter().any(|c| c == name)
            && (!req.only_failed || failed(&keys::status_connector_key(name)));
        let tasks: Vec<usize> = if req.include_tasks {
            a.tasks
                .iter()
                .filter(|(c, _)| c == name)
                .map(|(_, id)| usize::try_from(*id).unwrap_or(usize::MAX))
                .filter(|i| !req.only_failed || failed(&keys::status_task_key(name, *i)))
                .collect()
        } else {
            Vec::new()
        };
        let mut restarting: Vec<String> = tasks
            .iter()
            .map(|i| keys::status_task_key(name, *i))
            .collect();
        if connector {
            restarting.push(keys::status_connector_key(name));
        }
        if restarting.is_empty() {
            return;
        }
        if let Some(c) = &self.cluster {
            if let Err(e) = c.put_restarting(&self.worker_id, &restarting) {
                tracing::warn!("cannot write RESTARTING for {name}: {e}");
            }
        }
        let _op = lock(&self.ops);
        if connector {
            self.restart_connector_object(name);
        }
        for id in tasks {
            if lock(&self.state)
                .get(name)
                .is_some_and(|e| e.tasks.contains_key(&id))
            {
                self.restart_task(name, id);
            }
        }
    }

    /// `POST /connectors/{name}/tasks/{id}/restart` reaching this worker (Kafka's
    /// `DistributedHerder.restartTask`): 404s for an unknown connector or task; true when
    /// this worker runs the task and restarted it, false when another worker runs it.
    /// Runs under `ops`, so it cannot interleave with a revocation.
    pub(crate) fn restart_assigned_task(&self, name: &str, id: usize) -> Result<bool, Error> {
        let _op = lock(&self.ops);
        let here = {
            let state = lock(&self.state);
            let e = state
                .get(name)
                .ok_or_else(|| Error::NotFound(format!("Unknown connector: {name}")))?;
            if id >= e.task_configs.len() {
                return Err(Error::NotFound(format!("Unknown task: {name}-{id}")));
            }
            e.tasks.contains_key(&id)
        };
        if here {
            tracing::info!("restarting task {name}-{id} (REST request)");
            self.restart_task(name, id);
        }
        Ok(here)
    }

    /// (status key, state, trace) of every connector object and task run here.
    pub(crate) fn local_statuses(&self) -> Vec<(String, String, Option<String>)> {
        let state = lock(&self.state);
        let mut out = Vec::new();
        for (name, e) in state.iter() {
            if e.owned {
                let s = match (&e.failed, e.target) {
                    (Some(_), _) => "FAILED",
                    (None, TargetState::Started) => "RUNNING",
                    (None, TargetState::Paused) => "PAUSED",
                    (None, TargetState::Stopped) => "STOPPED",
                };
                out.push((
                    keys::status_connector_key(name),
                    s.to_string(),
                    e.failed.clone(),
                ));
            }
            for (i, t) in &e.tasks {
                let (s, trace) = t.shared.status();
                let s = match s {
                    TaskState::Running if t.shared.paused() => TaskState::Paused,
                    s => s,
                };
                out.push((keys::status_task_key(name, *i), s.name().to_string(), trace));
            }
        }
        out
    }
}
