//! Running a topology.
//!
//! Layout:
//! - `task.rs`: a task (sub-topology × partition): processors, stores, dispatch
//! - `test_driver.rs`: `TopologyTestDriver` (no broker)
//! - `kafka.rs`: `KafkaStreams` (consumer group, producer, the stream thread's loop)
//! - `commit.rs`: committing, and rewinding after a failed exactly-once commit
//! - `restore.rs`: reading changelogs back into stores
//! - `topics.rs`: creating internal topics

mod commit;
pub(crate) mod kafka;
pub(crate) mod restore;
pub(crate) mod task;
pub(crate) mod test_driver;
pub(crate) mod topics;
