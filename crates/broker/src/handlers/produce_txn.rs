//! Produce v12+ under transactions v2 (KIP-890 part 2): a transactional batch adds its
//! partition to the producer's transaction, as Kafka's broker does through its
//! AddPartitionsToTxn manager, so a v2 client never sends AddPartitionsToTxn. Not an
//! API of its own: Produce calls it before it appends, and the produce path's
//! verification then finds the partitions in the transaction (or answers with the
//! coordinator's refusal: a fenced epoch, a transaction being ended).
//!
//! Nothing is added for a request Produce will refuse: without WRITE on the
//! transactional id, none of it; without WRITE on a topic, none of that topic's
//! partitions (Kafka adds partitions only after authorizing the produce).

use std::sync::Arc;

use gregor_protocol::batch::BatchHeader;
use gregor_protocol::kp::messages::ProduceRequest;

use super::{produce, AclOperation, RequestContext, ResourceType};
use crate::broker::Broker;

/// The first Produce version whose transactional batches join their transaction
/// implicitly.
const FIRST_V2_VERSION: i16 = 12;

/// Adds the partitions of `req`'s transactional batches that are not yet in their
/// transaction. Only for Produce v12+ with a transactional id and `transaction.version`
/// 2 finalized; older clients keep AddPartitionsToTxn and the strict verification.
pub async fn add_implicitly(broker: &Arc<Broker>, version: i16, req: &ProduceRequest) {
    add(broker, version, req, &|_| true).await;
}

/// [`add_implicitly`] for a request Produce will serve: nothing without WRITE on the
/// transactional id, and only the partitions of topics the principal may WRITE.
pub async fn add_authorized(broker: &Arc<Broker>, ctx: &RequestContext, req: &ProduceRequest) {
    if produce::transactional_id_authorized(ctx, req) {
        refresh_coordinator(broker, req).await;
        let writable = |topic: &str| ctx.allowed(AclOperation::Write, ResourceType::Topic, topic);
        add(broker, ctx.version(), req, &writable).await;
    }
}

/// Before a transactional produce is verified against this broker's coordinator state
/// (any version): when the id's `__transaction_state` partition is led here again after
/// another broker led it, the state that broker wrote is replayed first, so the
/// verification never judges a batch by a previous leadership's view (a bumped epoch
/// would look fenced, an added partition missing).
async fn refresh_coordinator(broker: &Arc<Broker>, req: &ProduceRequest) {
    let Some(id) = req.transactional_id.as_ref().filter(|t| !t.is_empty()) else {
        return;
    };
    if !produce::has_transactional_records(req) {
        return;
    }
    if let Err(e) = broker.txns.ensure_current(id).await {
        tracing::debug!(transactional_id = %id.as_str(), error = %e, "transaction state not replayed before a produce");
    }
}

async fn add(
    broker: &Arc<Broker>,
    version: i16,
    req: &ProduceRequest,
    writable: &(dyn Fn(&str) -> bool + Sync),
) {
    if version < FIRST_V2_VERSION {
        return;
    }
    let Some(id) = req.transactional_id.as_ref().filter(|t| !t.is_empty()) else {
        return;
    };
    if !crate::txn::v2_finalized(&broker.metadata) {
        return;
    }
    let image = broker.metadata.image();
    let mut producer = None;
    // Every transactional partition of the request (hosted here, one producer), and
    // those of them not yet in the transaction this broker knows of.
    let mut all = Vec::new();
    let mut wanted = Vec::new();
    for topic in &req.topic_data {
        // v13 names topics by id.
        let name = if topic.name.0.is_empty() {
            match image.topic_by_id(&topic.topic_id) {
                Some(t) => t.name.clone(),
                None => continue,
            }
        } else {
            topic.name.0.to_string()
        };
        if !writable(&name) {
            continue;
        }
        for pd in &topic.partition_data {
            let Some(h) = pd.records.as_ref().and_then(|r| BatchHeader::parse(r).ok()) else {
                continue;
            };
            if !h.is_transactional() || h.is_control() {
                continue;
            }
            if broker.replicas.partition(&name, pd.index).is_none() {
                continue;
            }
            let (pid, epoch) = *producer.get_or_insert((h.producer_id, h.producer_epoch));
            if (h.producer_id, h.producer_epoch) != (pid, epoch) {
                continue; // one producer per request; the verification refuses the rest
            }
            all.push((name.clone(), pd.index));
            if broker
                .txns
                .verify_produce(id, pid, epoch, &name, pd.index)
                .is_err()
            {
                wanted.push((name.clone(), pd.index));
            }
        }
    }
    let Some((pid, epoch)) = producer else { return };
    if let Some(coordinator) = broker.txns.coordinator_elsewhere(id) {
        // Another broker coordinates the id: it adds the partitions (the inter-broker
        // AddPartitionsToTxn, v4+), as Kafka's AddPartitionsToTxnManager does. Every
        // transactional partition of the request is named; ones already in the
        // transaction are no change there.
        let missing = broker.txns.not_yet_added_remotely(pid, epoch, all);
        if missing.is_empty() {
            return;
        }
        let added = crate::txn::remote::add_partitions(
            &broker.host,
            coordinator,
            id.as_str(),
            pid,
            epoch,
            missing.clone(),
            false,
        )
        .await;
        match added {
            Ok(()) => broker.txns.added_remotely(pid, epoch, &missing),
            Err(e) => {
                tracing::debug!(transactional_id = %id.as_str(), coordinator, error = %e, "implicit add to a transaction refused")
            }
        }
        return;
    }
    if wanted.is_empty() {
        return;
    }
    if let Err(e) = broker
        .txns
        .add_partitions(id, pid, epoch, wanted, false)
        .await
    {
        tracing::debug!(transactional_id = %id.as_str(), error = %e, "implicit add to a transaction refused");
    }
}
