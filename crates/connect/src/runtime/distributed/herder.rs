//! The distributed herder's membership loop (Kafka's `DistributedHerder.tick`, eager
//! protocol): revoke everything, read the config topic to its end, join the group with
//! the config offset, let the leader deal the work, start the assignment; then
//! heartbeat, follow the config and status topics, publish this worker's statuses, and
//! rejoin when the coordinator rebalances or the configs change the assignment's
//! inputs (connectors or task configs). On shutdown: stop everything, leave the group.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use gregor_connect_api::Props;
use tokio::sync::watch;

use super::cluster::Cluster;
use super::group::{GroupMember, Timeouts};
use super::protocol::{assign, Assignment, WorkerState, CONNECTOR_TASK};
use super::state::{ConfigState, RestartRequest};
use super::DistError;
use crate::runtime::Worker;

type Shape = (Vec<String>, BTreeMap<String, Vec<Props>>);

fn shape_of(cs: &ConfigState) -> Shape {
    let (names, tasks) = cs.shape();
    (names, tasks.clone())
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, DistError> + Send + 'static,
) -> Result<T, DistError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| DistError::Kafka(format!("herder job failed: {e}")))?
}

struct Herder {
    worker: Arc<Worker>,
    cluster: Arc<Cluster>,
    member: GroupMember,
    assignment: Assignment,
    shape: Shape,
    /// Restart requests read while rebalancing, carried out once the assignment runs.
    pending_restarts: Vec<RestartRequest>,
    /// Whether the config topic was read once: the restart requests found by that first
    /// read are history (Kafka's config store notifies them only once started).
    caught_up: bool,
}

/// Runs the herder until `shutdown` turns true.
pub async fn run(
    worker: Arc<Worker>,
    cluster: Arc<Cluster>,
    bootstrap: String,
    mut shutdown: watch::Receiver<bool>,
) {
    let cfg = cluster.config.clone();
    let member = GroupMember::new(
        &bootstrap,
        &cfg.group_id,
        Timeouts {
            session_ms: cfg.session_timeout_ms,
            heartbeat_ms: cfg.heartbeat_interval_ms,
            rebalance_ms: cfg.rebalance_timeout_ms,
        },
    );
    let mut h = Herder {
        worker,
        cluster,
        member,
        assignment: Assignment::default(),
        shape: Shape::default(),
        pending_restarts: Vec::new(),
        caught_up: false,
    };
    let heartbeat = Duration::from_millis(u64::try_from(cfg.heartbeat_interval_ms).unwrap_or(1000));
    let tick = heartbeat.min(Duration::from_millis(200));
    'outer: while !*shutdown.borrow() {
        let joined = tokio::select! {
            r = h.rebalance() => r,
            _ = shutdown.changed() => break 'outer,
        };
        if let Err(e) = joined {
            tracing::warn!("joining the Connect group failed: {e}; retrying");
            if matches!(e, DistError::Io(_) | DistError::Coordinator(..)) {
                h.member.reset_coordinator();
            }
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(500)) => {}
                _ = shutdown.changed() => break 'outer,
            }
            continue;
        }
        let mut next_heartbeat = Instant::now() + heartbeat;
        loop {
            tokio::select! {
                _ = tokio::time::sleep(tick) => {}
                _ = shutdown.changed() => break 'outer,
            }
            if Instant::now() >= next_heartbeat {
                match h.member.heartbeat().await {
                    Ok(()) => next_heartbeat = Instant::now() + heartbeat,
                    Err(DistError::Rebalance(_, code)) => {
                        tracing::info!("the Connect group is rebalancing (heartbeat error {code})");
                        if code != 27 {
                            h.member.reset_member();
                        }
                        continue 'outer;
                    }
                    Err(e) => {
                        tracing::warn!("heartbeat failed: {e}");
                        h.member.reset_coordinator();
                    }
                }
            }
            match h.follow().await {
                Ok(true) => {
                    tracing::info!("the connectors or their tasks changed; rebalancing");
                    continue 'outer;
                }
                Ok(false) => {}
                Err(e) => tracing::warn!("reading the internal topics failed: {e}"),
            }
        }
    }
    if let Err(e) = h.revoke().await {
        tracing::warn!("stopping the tasks: {e}");
    }
    h.member.leave().await;
}

impl Herder {
    /// One eager rebalance: revoke, join, (lead,) sync, start the assignment.
    async fn rebalance(&mut self) -> Result<(), DistError> {
        self.cluster.set_leader(None, false);
        self.revoke().await?;
        let cs = self.read_configs().await?;
        self.keep_restarts(&cs);
        let metadata = WorkerState {
            url: self.cluster.url.clone(),
            config_offset: cs.offset,
        }
        .encode();
        let joined = self.member.join(metadata).await?;
        let assignments = if joined.leader_id == joined.member_id {
            self.lead(&joined.members, cs.offset).await?
        } else {
            Vec::new()
        };
        let bytes = self.member.sync(assignments).await?;
        let a = Assignment::decode(&bytes)?;
        let mut cs = cs;
        let deadline = Instant::now() + Duration::from_secs(30);
        while cs.offset < a.config_offset {
            if Instant::now() > deadline {
                return Err(DistError::Kafka(format!(
                    "config topic not readable up to offset {}",
                    a.config_offset
                )));
            }
            cs = self.read_configs().await?;
            self.keep_restarts(&cs);
        }
        tracing::info!(
            "joined the Connect group {} generation {} as {} (leader {}): connectors {:?}, tasks {:?}",
            self.cluster.config.group_id,
            joined.generation,
            joined.member_id,
            a.leader,
            a.connectors,
            a.tasks
        );
        self.cluster
            .generation
            .store(joined.generation, std::sync::atomic::Ordering::SeqCst);
        self.cluster.set_leader(
            Some((a.leader.clone(), a.leader_url.clone())),
            a.leader == joined.member_id,
        );
        self.cluster.forget_published();
        self.shape = shape_of(&cs);
        let w = self.worker.clone();
        let started = a.clone();
        let restarts = std::mem::take(&mut self.pending_restarts);
        blocking(move || {
            w.start_assigned(&started);
            for r in &restarts {
                w.restart_local(r, &started);
            }
            Ok(())
        })
        .await?;
        self.assignment = a;
        let t0 = std::time::Instant::now();
        self.publish().await?;
        tracing::debug!("published the statuses in {:?}", t0.elapsed());
        Ok(())
    }

    /// Stops everything this worker runs and reports it UNASSIGNED, as Kafka's workers
    /// do on revocation (written before rejoining, so before the next owner reports).
    async fn revoke(&self) -> Result<(), DistError> {
        let w = self.worker.clone();
        let c = self.cluster.clone();
        blocking(move || {
            let ran = w.local_statuses();
            w.stop_all_local();
            let unassigned = ran
                .into_iter()
                .map(|(k, _, _)| (k, "UNASSIGNED".to_string(), None))
                .collect();
            c.publish(&w.worker_id, unassigned)
        })
        .await
    }

    /// The leader deals the connectors and tasks over the members.
    async fn lead(
        &mut self,
        members: &[(String, bytes::Bytes)],
        my_offset: i64,
    ) -> Result<Vec<(String, Vec<u8>)>, DistError> {
        let mut states = Vec::new();
        for (id, meta) in members {
            states.push((id.clone(), WorkerState::decode(meta)?));
        }
        let max = states
            .iter()
            .map(|(_, s)| s.config_offset)
            .max()
            .unwrap_or(0);
        let cs = if max > my_offset {
            self.read_configs().await?
        } else {
            self.cluster.config_state()
        };
        let ids: Vec<String> = states.iter().map(|(id, _)| id.clone()).collect();
        let plan = assign(&ids, &cs.work());
        let url_of: BTreeMap<&String, &String> =
            states.iter().map(|(id, s)| (id, &s.url)).collect();
        let mut owners = BTreeMap::new();
        for (member, (connectors, tasks)) in &plan {
            let Some(url) = url_of.get(member) else {
                continue;
            };
            for c in connectors {
                owners.insert((c.clone(), CONNECTOR_TASK), (*url).clone());
            }
            for (c, t) in tasks {
                let t = i32::try_from(*t).unwrap_or(i32::MAX);
                owners.insert((c.clone(), t), (*url).clone());
            }
        }
        self.cluster.set_owners(owners);
        Ok(plan
            .into_iter()
            .map(|(member, (connectors, tasks))| {
                let a = Assignment {
                    error: 0,
                    leader: self.member.member_id.clone(),
                    leader_url: self.cluster.url.clone(),
                    config_offset: cs.offset,
                    connectors,
                    tasks,
                };
                (member, a.encode())
            })
            .collect())
    }

    /// Keeps the restart requests read during a rebalance for after it (none from the
    /// worker's first read of the config topic).
    fn keep_restarts(&mut self, cs: &ConfigState) {
        if self.caught_up {
            self.pending_restarts.extend(cs.restarts.iter().cloned());
        }
        self.caught_up = true;
    }

    /// Reads the config topic, applies it to the worker's entries and marks it applied.
    async fn read_configs(&self) -> Result<ConfigState, DistError> {
        let c = self.cluster.clone();
        let w = self.worker.clone();
        blocking(move || {
            let (cs, _) = c.read_configs()?;
            w.sync_entries(&cs);
            c.mark_applied(cs.offset);
            Ok(cs)
        })
        .await
    }

    /// Between rebalances: follow the config and status topics, carry out restart
    /// requests, publish statuses. True when a rebalance is needed.
    async fn follow(&mut self) -> Result<bool, DistError> {
        let c = self.cluster.clone();
        let w = self.worker.clone();
        let a = self.assignment.clone();
        let cs = blocking(move || {
            let (cs, any) = c.read_configs()?;
            if any {
                w.sync_entries(&cs);
                for r in &cs.restarts {
                    w.restart_local(r, &a);
                }
            }
            c.mark_applied(cs.offset);
            Ok(cs)
        })
        .await?;
        if shape_of(&cs) != self.shape {
            return Ok(true);
        }
        self.publish().await?;
        Ok(false)
    }

    async fn publish(&self) -> Result<(), DistError> {
        let c = self.cluster.clone();
        let w = self.worker.clone();
        blocking(move || {
            c.publish(&w.worker_id, w.local_statuses())?;
            c.read_statuses()
        })
        .await
    }
}
