//! Fetch from the closest replica (KIP-392): which replica a consumer should read a
//! partition from, as Kafka's `RackAwareReplicaSelector` decides it on the leader.
//!
//! A consumer that names its rack (`client.rack`, Fetch v11+) is pointed, through
//! `preferred_read_replica`, at an in-sync follower in that rack, the one with the most
//! data; the leader keeps serving it when the leader is in that rack itself, or no such
//! follower has the offset asked for. The follower then serves the consumer below its own
//! high watermark; when it leaves the ISR or stops, the consumer's fetches there fail and
//! it goes back to the leader, which chooses again.

use gregor_metadata::image::MetadataImage;

use crate::partition::Partition;

/// The follower `p`'s leader should send a consumer in `client_rack` to, reading from
/// `fetch_offset`; `None` to keep it on the leader.
pub fn preferred_read_replica(
    image: &MetadataImage,
    p: &Partition,
    client_rack: &str,
    fetch_offset: i64,
) -> Option<i32> {
    if client_rack.is_empty() || !p.is_leader() {
        return None;
    }
    let rack_of = |id: i32| image.brokers.get(&id).and_then(|b| b.rack.as_deref());
    let me = p.replica_id();
    if rack_of(me) == Some(client_rack) {
        return None;
    }
    let assignment = p.assignment();
    p.follower_log_ends()
        .into_iter()
        .filter(|&(id, log_end)| {
            assignment.isr.contains(&id)
                && log_end >= fetch_offset
                && fetch_offset >= p.log_start_offset()
                && rack_of(id) == Some(client_rack)
                && image
                    .brokers
                    .get(&id)
                    .is_some_and(|b| !b.fenced && !b.in_controlled_shutdown)
        })
        .max_by_key(|&(id, log_end)| (log_end, -id))
        .map(|(id, _)| id)
}
