//! The group coordinator's pure parts.
//!
//! - [`records`]: the `__consumer_offsets` key and value schemas (Kafka's own), and
//!   which partition owns a group id (`partition_for`, Kafka's `abs(hashCode) % n`).

pub mod records;
