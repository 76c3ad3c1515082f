//! What a worker and one of its task threads share: the desired state (pause, stop)
//! set by the worker, and the reported state (RUNNING, PAUSED, FAILED + trace) set by
//! the thread. Plus everything a task thread needs to run.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use gregor_connect_api::{ConnectError, Props};
use rdkafka::config::ClientConfig;

use super::errors::ErrorHandler;
use super::store::OffsetStore;
use crate::converters::Converter;
use crate::transforms::Chain;

/// A task's state as the REST API shows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TaskState {
    Unassigned,
    Running,
    Paused,
    Failed,
}

impl TaskState {
    pub fn name(self) -> &'static str {
        match self {
            TaskState::Unassigned => "UNASSIGNED",
            TaskState::Running => "RUNNING",
            TaskState::Paused => "PAUSED",
            TaskState::Failed => "FAILED",
        }
    }
}

/// Shared between the worker and one task thread.
pub struct TaskShared {
    status: Mutex<(TaskState, Option<String>)>,
    paused: AtomicBool,
    stop: AtomicBool,
}

impl TaskShared {
    pub fn new(paused: bool) -> Arc<Self> {
        Arc::new(TaskShared {
            status: Mutex::new((TaskState::Unassigned, None)),
            paused: AtomicBool::new(paused),
            stop: AtomicBool::new(false),
        })
    }

    pub fn status(&self) -> (TaskState, Option<String>) {
        self.status
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    pub fn set(&self, state: TaskState) {
        let mut s = self.status.lock().unwrap_or_else(|p| p.into_inner());
        if s.0 != TaskState::Failed {
            *s = (state, None);
        }
    }

    /// Marks the task FAILED with a trace; the thread then ends.
    pub fn fail(&self, trace: String) {
        tracing::error!("task failed: {trace}");
        *self.status.lock().unwrap_or_else(|p| p.into_inner()) = (TaskState::Failed, Some(trace));
    }

    pub fn set_paused(&self, paused: bool) {
        self.paused.store(paused, Ordering::SeqCst);
    }

    pub fn paused(&self) -> bool {
        self.paused.load(Ordering::SeqCst)
    }

    pub fn request_stop(&self) {
        self.stop.store(true, Ordering::SeqCst);
    }

    pub fn stopping(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }

    /// While paused: reports PAUSED and waits a little; returns true if the caller
    /// should skip this round.
    pub fn idle_if_paused(&self) -> bool {
        if self.paused() {
            self.set(TaskState::Paused);
            std::thread::sleep(Duration::from_millis(50));
            true
        } else {
            if self.status().0 == TaskState::Paused {
                self.set(TaskState::Running);
            }
            false
        }
    }
}

/// A Java-style trace for the status API: exception class, message, cause.
pub fn trace(err: &ConnectError) -> String {
    format!("{}: {err}", err.class_name())
}

/// Everything a task thread runs with.
pub struct TaskContext {
    pub connector: String,
    /// The worker's id (`host:port`), stable across restarts of the worker.
    pub worker_id: String,
    pub task_id: u32,
    pub task_props: Props,
    pub client: ClientConfig,
    pub key_converter: Box<dyn Converter>,
    pub value_converter: Box<dyn Converter>,
    pub chain: Chain,
    pub errors: ErrorHandler,
    pub offsets: Arc<OffsetStore>,
    pub shared: Arc<TaskShared>,
    /// Set when the source task runs exactly-once (KIP-618).
    pub eos: Option<EosTask>,
}

/// How an exactly-once source task produces: its transactional id, where its offsets
/// go (in the same transactions as its records), when it commits.
#[derive(Clone, Debug)]
pub struct EosTask {
    pub transactional_id: String,
    pub offset_topic: String,
    pub boundary: super::eos::TransactionBoundary,
}
