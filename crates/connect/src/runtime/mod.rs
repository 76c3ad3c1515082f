//! The worker (standalone herder): connector lifecycle, task threads, status and
//! offsets.
//!
//! Concurrency: every mutating operation holds `ops` for its whole duration (they are
//! serialised, as Kafka's herder does on one thread) and runs on a blocking thread, so
//! it may join task threads. `state` is held only for short sections, never across a
//! join, so status reads answer while an operation is in progress.
//!
//! Layout: `store` (offset and config files), `validate`, `task` (worker/thread shared
//! state), `source` and `sink` (task threads), `errors` (tolerance and DLQ),
//! `offsets` (KIP-875 endpoints).

pub mod distributed;
pub mod eos;
pub mod errors;
mod offsets;
pub mod sink;
pub mod source;
pub mod store;
pub mod task;
pub mod validate;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;

use gregor_connect_api::config::get_i64;
use gregor_connect_api::{Connector, ConnectorType, Props};
use rdkafka::config::ClientConfig;
use serde_json::{json, Value as J};

use self::store::{ConfigStore, OffsetStore, StoredConnector, TargetState};
use self::task::{TaskContext, TaskShared, TaskState};
use crate::connectors::{self, ConnectorPlugin};
use crate::error::Error;
use crate::transforms::Chain;

struct Task {
    shared: Arc<TaskShared>,
    thread: Option<JoinHandle<()>>,
}

struct Entry {
    config: Props,
    target: TargetState,
    plugin: &'static ConnectorPlugin,
    connector: Option<Box<dyn Connector>>,
    /// The connector object's failure trace (connector state FAILED).
    failed: Option<String>,
    task_configs: Vec<Props>,
    /// The task threads this worker runs, by task id (all of them standalone; the
    /// assigned ones in distributed mode).
    tasks: BTreeMap<usize, Task>,
    /// Distributed mode: this worker runs the connector object (its assignment).
    owned: bool,
}

/// A standalone worker.
pub struct Worker {
    pub worker_id: String,
    pub cluster_id: String,
    /// Worker properties (converter defaults).
    worker_props: Props,
    client: ClientConfig,
    offsets: Arc<OffsetStore>,
    configs: ConfigStore,
    ops: Mutex<()>,
    state: Mutex<BTreeMap<String, Entry>>,
    /// Distributed mode: the group, the internal topics and the leader.
    cluster: Option<Arc<distributed::cluster::Cluster>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Worker {
    pub fn new(
        worker_id: String,
        cluster_id: String,
        worker_props: Props,
        client: ClientConfig,
        offsets: OffsetStore,
        configs: ConfigStore,
    ) -> Self {
        Worker {
            worker_id,
            cluster_id,
            worker_props,
            client,
            offsets: Arc::new(offsets),
            configs,
            ops: Mutex::new(()),
            state: Mutex::new(BTreeMap::new()),
            cluster: None,
        }
    }

    /// A distributed worker: configs, offsets and status live in the cluster's topics.
    pub fn distributed(
        worker_id: String,
        cluster_id: String,
        worker_props: Props,
        client: ClientConfig,
        offsets: OffsetStore,
        cluster: Arc<distributed::cluster::Cluster>,
    ) -> Self {
        let mut w = Worker::new(
            worker_id,
            cluster_id,
            worker_props,
            client,
            offsets,
            ConfigStore::new(None),
        );
        w.cluster = Some(cluster);
        w
    }

    /// The group state, in distributed mode.
    pub fn cluster(&self) -> Option<&Arc<distributed::cluster::Cluster>> {
        self.cluster.as_ref()
    }

    /// Starts the connectors stored by a previous run, each in its stored target state.
    pub fn start_stored(&self) -> Result<(), Error> {
        let _op = lock(&self.ops);
        for (name, stored) in self.configs.load()? {
            let Some(plugin) = stored
                .config
                .get("connector.class")
                .and_then(|c| connectors::find(c))
            else {
                tracing::error!("stored connector {name} has an unknown connector.class; skipped");
                continue;
            };
            lock(&self.state).insert(
                name.clone(),
                Entry::new(stored.config, stored.target, plugin),
            );
            self.start_connector(&name);
        }
        Ok(())
    }

    fn persist(&self) -> Result<(), Error> {
        let all: BTreeMap<String, StoredConnector> = lock(&self.state)
            .iter()
            .map(|(n, e)| {
                (
                    n.clone(),
                    StoredConnector {
                        config: e.config.clone(),
                        target: e.target,
                    },
                )
            })
            .collect();
        self.configs.save(&all)
    }

    /// Connector names, sorted.
    pub fn list(&self) -> Vec<String> {
        lock(&self.state).keys().cloned().collect()
    }

    /// `GET /connectors/{name}`: name, config, tasks and type.
    pub fn info(&self, name: &str) -> Result<J, Error> {
        let state = lock(&self.state);
        let e = state
            .get(name)
            .ok_or_else(|| Error::ConnectorNotFound(name.into()))?;
        Ok(e.info(name))
    }

    pub fn config(&self, name: &str) -> Result<Props, Error> {
        let state = lock(&self.state);
        let e = state
            .get(name)
            .ok_or_else(|| Error::ConnectorNotFound(name.into()))?;
        Ok(e.config.clone())
    }

    /// `GET /connectors/{name}/tasks`.
    pub fn tasks(&self, name: &str) -> Result<J, Error> {
        let state = lock(&self.state);
        let e = state
            .get(name)
            .ok_or_else(|| Error::ConnectorNotFound(name.into()))?;
        Ok(J::Array(
            e.task_configs
                .iter()
                .enumerate()
                .map(|(i, c)| json!({"id": {"connector": name, "task": i}, "config": c}))
                .collect(),
        ))
    }

    /// `GET /connectors/{name}/status`.
    pub fn status(&self, name: &str) -> Result<J, Error> {
        if let Some(c) = &self.cluster {
            return self.cluster_status(c, name);
        }
        let state = lock(&self.state);
        let e = state
            .get(name)
            .ok_or_else(|| Error::ConnectorNotFound(name.into()))?;
        Ok(e.status(name, &self.worker_id))
    }

    /// `GET /connectors/{name}/tasks/{id}/status`.
    pub fn task_status(&self, name: &str, id: usize) -> Result<J, Error> {
        let status = self.status(name)?;
        status["tasks"]
            .as_array()
            .and_then(|ts| ts.get(id).cloned())
            .ok_or_else(|| Error::TaskNotFound(format!("{name}-{id}")))
    }

    /// Validates a config (`PUT /connector-plugins/{plugin}/config/validate`).
    pub fn validate(&self, config: &Props) -> Result<validate::Validation, Error> {
        validate::validate(&self.worker_props, config)
    }

    /// Creates a connector, or replaces its config when `allow_update`. Nothing starts
    /// when the config is invalid. Returns whether it was created, and its info.
    /// `initial` (KIP-980 `initial_state`) applies only when the connector is created.
    pub fn put(
        &self,
        name: &str,
        mut config: Props,
        allow_update: bool,
        initial: Option<TargetState>,
    ) -> Result<(bool, J), Error> {
        if name.trim().is_empty() {
            return Err(Error::BadRequest("Connector name is required".into()));
        }
        match config.get("name") {
            Some(n) if n != name => {
                return Err(Error::BadRequest(format!(
                    "Connector name configuration ({n}) doesn't match connector name in the URL ({name})"
                )))
            }
            _ => {
                config.insert("name".into(), name.to_string());
            }
        }
        if let Some(c) = self.cluster.clone() {
            return self.cluster_put(&c, name, config, allow_update, initial);
        }
        let _op = lock(&self.ops);
        let exists = lock(&self.state).contains_key(name);
        if exists && !allow_update {
            return Err(Error::AlreadyExists(name.into()));
        }
        let v = self.validate(&config)?;
        if !v.errors.is_empty() {
            return Err(Error::BadRequest(validate::invalid_message(&v)));
        }
        let target = if exists {
            self.stop_tasks_and_connector(name);
            lock(&self.state)
                .get(name)
                .map_or(TargetState::Started, |e| e.target)
        } else {
            initial.unwrap_or(TargetState::Started)
        };
        lock(&self.state).insert(name.to_string(), Entry::new(config, target, v.plugin));
        self.persist()?;
        self.start_connector(name);
        Ok((!exists, self.info(name)?))
    }

    /// `DELETE /connectors/{name}`. Offsets are kept (as in Kafka).
    pub fn delete(&self, name: &str) -> Result<(), Error> {
        if let Some(c) = self.cluster.clone() {
            return self.cluster_delete(&c, name);
        }
        let _op = lock(&self.ops);
        self.require(name)?;
        self.stop_tasks_and_connector(name);
        lock(&self.state).remove(name);
        self.persist()
    }

    /// `PUT .../pause`, `.../resume`, `.../stop`.
    pub fn set_target(&self, name: &str, target: TargetState) -> Result<(), Error> {
        if let Some(c) = self.cluster.clone() {
            return self.cluster_set_target(&c, name, target);
        }
        let _op = lock(&self.ops);
        let previous = self.require(name)?;
        if let Some(e) = lock(&self.state).get_mut(name) {
            e.target = target;
        }
        self.persist()?;
        match (previous, target) {
            (_, TargetState::Stopped) => self.stop_tasks_and_connector(name),
            (TargetState::Stopped, _) => self.start_connector(name),
            (_, t) => {
                if let Some(e) = lock(&self.state).get(name) {
                    for t2 in e.tasks.values() {
                        t2.shared.set_paused(t == TargetState::Paused);
                    }
                }
            }
        }
        Ok(())
    }

    /// `POST /connectors/{name}/restart`. Without `include_tasks` only the connector
    /// object restarts and `None` is returned (204); otherwise the status with the
    /// instances being restarted shown as RESTARTING (202).
    pub fn restart(
        &self,
        name: &str,
        include_tasks: bool,
        only_failed: bool,
    ) -> Result<Option<J>, Error> {
        if let Some(c) = self.cluster.clone() {
            return self.cluster_restart(&c, name, include_tasks, only_failed);
        }
        let _op = lock(&self.ops);
        self.require(name)?;
        let mut planned = self.status(name)?;
        let connector_failed = planned["connector"]["state"] == "FAILED";
        let restart_connector = !only_failed || connector_failed;
        let mut restart_tasks: Vec<usize> = Vec::new();
        if include_tasks {
            if let Some(ts) = planned["tasks"].as_array_mut() {
                for (i, t) in ts.iter_mut().enumerate() {
                    if !only_failed || t["state"] == "FAILED" {
                        t["state"] = J::from("RESTARTING");
                        if let Some(o) = t.as_object_mut() {
                            o.remove("trace");
                        }
                        restart_tasks.push(i);
                    }
                }
            }
        }
        if restart_connector {
            planned["connector"]["state"] = J::from("RESTARTING");
            planned["connector"]
                .as_object_mut()
                .map(|o| o.remove("trace"));
        }
        let stopped = lock(&self.state)
            .get(name)
            .is_some_and(|e| e.target == TargetState::Stopped);
        if !stopped {
            if restart_connector {
                self.restart_connector_object(name);
            }
            for id in restart_tasks {
                self.restart_task(name, id);
            }
        }
        Ok((include_tasks || only_failed).then_some(planned))
    }

    /// `POST /connectors/{name}/tasks/{id}/restart`.
    pub fn restart_one_task(&self, name: &str, id: usize) -> Result<(), Error> {
        if self.cluster.is_some() {
            // Distributed: the REST layer routes the request to the task's worker.
            return match self.restart_assigned_task(name, id)? {
                true => Ok(()),
                false => Err(Error::Conflict(format!(
                    "Cannot restart task since it is not assigned to this member: {name}-{id}"
                ))),
            };
        }
        let _op = lock(&self.ops);
        self.require(name)?;
        let known = lock(&self.state)
            .get(name)
            .is_some_and(|e| e.tasks.contains_key(&id));
        if !known {
            return Err(Error::TaskNotFound(format!("{name}-{id}")));
        }
        self.restart_task(name, id);
        Ok(())
    }

    fn require(&self, name: &str) -> Result<TargetState, Error> {
        lock(&self.state)
            .get(name)
            .map(|e| e.target)
            .ok_or_else(|| Error::ConnectorNotFound(name.into()))
    }

    /// Stops every connector's tasks (worker shutdown).
    pub fn shutdown(&self) {
        let _op = lock(&self.ops);
        for name in self.list() {
            self.stop_tasks_and_connector(&name);
        }
    }

    fn restart_connector_object(&self, name: &str) {
        let mut state = lock(&self.state);
        if let Some(e) = state.get_mut(name) {
            if let Some(mut c) = e.connector.take() {
                c.stop();
            }
            e.failed = None;
            let mut c = (e.plugin.new_connector)();
            match c.start(&e.config) {
                Ok(()) => e.connector = Some(c),
                Err(err) => e.failed = Some(task::trace(&err)),
            }
        }
    }

    fn restart_task(&self, name: &str, id: usize) {
        let old = lock(&self.state).get_mut(name).and_then(|e| {
            e.tasks.get_mut(&id).map(|t| {
                t.shared.request_stop();
                t.thread.take()
            })
        });
        if let Some(Some(h)) = old {
            let _ = h.join();
        }
        let mut state = lock(&self.state);
        if let Some(e) = state.get_mut(name) {
            if let Some(cfg) = e.task_configs.get(id).cloned() {
                let paused = e.target == TargetState::Paused;
                let t = self.spawn_task(name, e, u32::try_from(id).unwrap_or(0), cfg, paused);
                e.tasks.insert(id, t);
            }
        }
    }

    /// Stops the tasks (joining their threads) and the connector object.
    fn stop_tasks_and_connector(&self, name: &str) {
        let tasks = match lock(&self.state).get_mut(name) {
            Some(e) => {
                for t in e.tasks.values() {
                    t.shared.request_stop();
                }
                if let Some(mut c) = e.connector.take() {
                    c.stop();
                }
                e.task_configs.clear();
                std::mem::take(&mut e.tasks)
            }
            None => BTreeMap::new(),
        };
        for t in tasks.into_values() {
            if let Some(h) = t.thread {
                let _ = h.join();
            }
        }
    }

    /// Starts the connector object and its tasks per the target state.
    fn start_connector(&self, name: &str) {
        let mut state = lock(&self.state);
        let Some(e) = state.get_mut(name) else {
            return;
        };
        e.failed = None;
        if e.target == TargetState::Stopped {
            return;
        }
        let mut c = (e.plugin.new_connector)();
        if let Err(err) = c.start(&e.config) {
            e.failed = Some(task::trace(&err));
            return;
        }
        let max = usize::try_from(get_i64(&e.config, "tasks.max", 1))
            .unwrap_or(1)
            .max(1);
        e.task_configs = c.task_configs(max);
        e.connector = Some(c);
        let paused = e.target == TargetState::Paused;
        let configs = e.task_configs.clone();
        e.tasks = configs
            .into_iter()
            .enumerate()
            .map(|(i, cfg)| {
                (
                    i,
                    self.spawn_task(name, e, u32::try_from(i).unwrap_or(0), cfg, paused),
                )
            })
            .collect();
    }

    fn spawn_task(&self, name: &str, e: &Entry, id: u32, task_props: Props, paused: bool) -> Task {
        let shared = TaskShared::new(paused);
        let fail = |why: String| {
            shared.fail(why);
            Task {
                shared: shared.clone(),
                thread: None,
            }
        };
        let (kc, kp) = validate::converter_settings(&self.worker_props, &e.config, "key");
        let (vc, vp) = validate::converter_settings(&self.worker_props, &e.config, "value");
        let built = (|| {
            Ok::<_, gregor_connect_api::ConnectError>((
                crate::converters::create(&kc, &kp, true)?,
                crate::converters::create(&vc, &vp, false)?,
                Chain::from_config(&e.config)?,
                errors::ErrorHandler::new(name, id, &e.config, &self.client)?,
            ))
        })();
        let (key_converter, value_converter, chain, errs) = match built {
            Ok(b) => b,
            Err(err) => return fail(task::trace(&err)),
        };
        let eos = match self.eos_task(name, e, id) {
            Ok(eos) => eos,
            Err(why) => return fail(why),
        };
        let ctx = TaskContext {
            connector: name.to_string(),
            worker_id: self.worker_id.clone(),
            task_id: id,
            task_props,
            client: self.client.clone(),
            key_converter,
            value_converter,
            chain,
            errors: errs,
            offsets: self.offsets.clone(),
            shared: shared.clone(),
            eos,
        };
        let plugin = e.plugin;
        let spawned = std::thread::Builder::new()
            .name(format!("task-{name}-{id}"))
            .spawn(
                move || match (plugin.kind, plugin.new_source_task, plugin.new_sink_task) {
                    (ConnectorType::Source, Some(new), _) => source::run(ctx, new()),
                    (ConnectorType::Sink, _, Some(new)) => sink::run(ctx, new()),
                    _ => ctx.shared.fail(format!(
                    "org.apache.kafka.connect.errors.ConnectException: plugin {} has no task class",
                    plugin.class
                )),
                },
            );
        match spawned {
            Ok(h) => Task {
                shared,
                thread: Some(h),
            },
            Err(err) => fail(format!(
                "java.lang.OutOfMemoryError: cannot start task thread: {err}"
            )),
        }
    }
}

impl Worker {
    /// A source task of a distributed worker with `exactly.once.source.support=enabled`
    /// runs transactionally; anything else as before (at-least-once).
    fn eos_task(&self, name: &str, e: &Entry, id: u32) -> Result<Option<task::EosTask>, String> {
        let Some(c) = &self.cluster else {
            return Ok(None);
        };
        if e.plugin.kind != ConnectorType::Source
            || c.config.exactly_once_source != eos::WorkerSupport::Enabled
        {
            return Ok(None);
        }
        let boundary = eos::TransactionBoundary::from_config(&self.worker_props, &e.config)
            .map_err(|(_, m)| format!("org.apache.kafka.common.config.ConfigException: {m}"))?;
        let offset_topic = self
            .offsets
            .topic()
            .unwrap_or(&c.config.offset_topic)
            .to_string();
        Ok(Some(task::EosTask {
            transactional_id: eos::transactional_id(&c.config.group_id, name, id),
            offset_topic,
            boundary,
        }))
    }
}

impl Entry {
    fn new(config: Props, target: TargetState, plugin: &'static ConnectorPlugin) -> Self {
        Entry {
            config,
            target,
            plugin,
            connector: None,
            failed: None,
            task_configs: Vec::new(),
            tasks: BTreeMap::new(),
            owned: false,
        }
    }

    fn info(&self, name: &str) -> J {
        json!({
            "name": name,
            "config": self.config,
            "tasks": (0..self.task_configs.len()).map(|i| json!({"connector": name, "task": i})).collect::<Vec<_>>(),
            "type": self.plugin.kind.name(),
        })
    }

    fn status(&self, name: &str, worker_id: &str) -> J {
        let mut connector = json!({
            "state": match (&self.failed, self.target) {
                (Some(_), _) => "FAILED",
                (None, TargetState::Started) => "RUNNING",
                (None, TargetState::Paused) => "PAUSED",
                (None, TargetState::Stopped) => "STOPPED",
            },
            "worker_id": worker_id,
        });
        if let Some(t) = &self.failed {
            connector["trace"] = J::from(t.clone());
        }
        let tasks: Vec<J> = self
            .tasks
            .iter()
            .map(|(i, t)| {
                let (state, trace) = t.shared.status();
                let state = match state {
                    TaskState::Running if t.shared.paused() => TaskState::Paused,
                    s => s,
                };
                let mut j = json!({"id": i, "state": state.name(), "worker_id": worker_id});
                if let Some(tr) = trace {
                    j["trace"] = J::from(tr);
                }
                j
            })
            .collect();
        json!({"name": name, "connector": connector, "tasks": tasks, "type": self.plugin.kind.name()})
    }
}
