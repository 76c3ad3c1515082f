//! Primary election through a Kafka consumer group.
//!
//! Every registry process joins the group (`schema-registry` by default) subscribed to
//! the one-partition `_schemas` topic. The group coordinator hands partition 0 to
//! exactly one member: that member is elected. When it dies, the coordinator notices
//! after the session timeout, rebalances, and another member gets the partition. The
//! elected process then announces its URL with a `Primary` record (see `node`); it only
//! accepts writes once it has read that announcement back, so the announcement is
//! ordered after everything the previous primary wrote.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext, Rebalance};
use rdkafka::ClientContext;
use tokio::sync::watch;

struct ElectionContext {
    topic: String,
    elected: watch::Sender<bool>,
}

impl ClientContext for ElectionContext {}

impl ConsumerContext for ElectionContext {
    fn pre_rebalance(&self, _: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Revoke(_) | Rebalance::Error(_) = rebalance {
            self.elected.send_replace(false);
        }
    }

    fn post_rebalance(&self, _: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        match rebalance {
            Rebalance::Assign(tpl) => {
                let owns = tpl.find_partition(&self.topic, 0).is_some();
                tracing::info!("registry election: partition 0 assigned here: {owns}");
                self.elected.send_replace(owns);
            }
            Rebalance::Revoke(_) | Rebalance::Error(_) => {
                self.elected.send_replace(false);
            }
        }
    }
}

/// A running membership; dropping it leaves the group.
pub struct Election {
    pub elected: watch::Receiver<bool>,
    stop: Arc<AtomicBool>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl Election {
    pub fn join(
        config: &ClientConfig,
        topic: &str,
        group: &str,
        session_timeout_ms: u32,
    ) -> anyhow::Result<Election> {
        let (tx, elected) = watch::channel(false);
        let mut c = config.clone();
        c.set("group.id", group)
            .set("enable.auto.commit", "false")
            .set("auto.offset.reset", "latest")
            .set("session.timeout.ms", session_timeout_ms.to_string())
            .set(
                "heartbeat.interval.ms",
                (session_timeout_ms / 6).max(100).to_string(),
            )
            .set("partition.assignment.strategy", "range");
        let consumer: BaseConsumer<ElectionContext> = c.create_with_context(ElectionContext {
            topic: topic.to_string(),
            elected: tx,
        })?;
        consumer.subscribe(&[topic])?;
        let stop = Arc::new(AtomicBool::new(false));
        let t_stop = stop.clone();
        let thread = std::thread::Builder::new()
            .name("registry-election".into())
            .spawn(move || {
                // Polling serves the rebalance callbacks; the records themselves are
                // read by the store's tailer, so they are dropped here.
                while !t_stop.load(Ordering::Relaxed) {
                    let _ = consumer.poll(Duration::from_millis(100));
                }
                // Dropping the consumer closes it: it leaves the group at once, so a
                // clean stop hands the role over without waiting for a session timeout.
                consumer.unsubscribe();
            })?;
        Ok(Election {
            elected,
            stop,
            thread: Mutex::new(Some(thread)),
        })
    }

    /// Leaves the group and waits until it is done.
    pub fn leave(&self) {
        self.stop.store(true, Ordering::Relaxed);
        let thread = match self.thread.lock() {
            Ok(mut g) => g.take(),
            Err(p) => p.into_inner().take(),
        };
        if let Some(t) = thread {
            let _ = t.join();
        }
    }

    pub fn is_elected(&self) -> bool {
        *self.elected.borrow()
    }
}

impl Drop for Election {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}
