"""Eligible leader replicas (KIP-966) with real clients: three brokers (nodes 2-4) and a
controller-only node 1, so that stopping every broker leaves the metadata quorum up. A
topic with RF 3 and min.insync.replicas 2 gets an idempotent acks=all producer
(confluent-kafka, checker.py); kafka-python's admin client reads DescribeTopicPartitions
(API 75) for the ISR, the ELR and the last known ELR.

A replica that leaves an ISR below min ISR goes to the ELR (the high watermark no longer
moves, so it holds every acknowledged record); once the whole ISR has stopped, an ELR
member that comes back leads (a clean election: no unclean.leader.election), and the
checker finds every acknowledged record once the others are back."""
import pytest
from confluent_kafka.admin import AdminClient, NewTopic
from kafka.admin import KafkaAdminClient

from checker import ACKED, ConfluentProducer, History, check, read_log
from cluster import Cluster
from conftest import wait_until

FAST = {
    "broker.session.timeout.ms": "3000",
    "broker.heartbeat.interval.ms": "500",
    "replica.lag.time.max.ms": "3000",
}
TOPIC = "elr"


@pytest.fixture
def cluster(tmp_path):
    c = Cluster(tmp_path / "c", controllers=1, brokers=3, split=True, overrides=FAST)
    try:
        c.start(90)
        admin = AdminClient({"bootstrap.servers": c.bootstrap})
        topic = NewTopic(TOPIC, 1, replica_assignment=[[2, 3, 4]], config={"min.insync.replicas": "2"})
        admin.create_topics([topic])[TOPIC].result(30)
        yield c
    finally:
        c.kill_all()


def describe(c):
    """Partition 0 as a live broker answers DescribeTopicPartitions: (leader, ISR, ELR,
    last known ELR), or None when no broker answers now."""
    live = [n.bootstrap for n in c.brokers if n.alive()]
    if not live:
        return None
    try:
        admin = KafkaAdminClient(bootstrap_servers=live, request_timeout_ms=5000)
    except Exception:
        return None
    try:
        page = admin.describe_topic_partitions([TOPIC])
    except Exception:
        return None
    finally:
        admin.close()
    for t in page["topics"]:
        for p in t["partitions"]:
            if t["name"] == TOPIC and p["partition_index"] == 0:
                return (
                    p["leader_id"],
                    sorted(p["isr_nodes"]),
                    sorted(p["eligible_leader_replicas"] or []),
                    sorted(p["last_known_elr"] or []),
                )
    return None


def wait_state(c, want, what):
    return wait_until(lambda: describe(c) == want, timeout=60, what=f"{what}: {want} (last {describe(c)})",
                      interval=0.25)


def wait_acks(history, more, what, timeout=60.0):
    target = history.count(ACKED) + more
    wait_until(lambda: history.count(ACKED) >= target, timeout=timeout, what=what, interval=0.1)


def test_an_elr_member_leads_after_the_whole_isr_stopped_and_nothing_acknowledged_is_lost(cluster):
    c = cluster
    wait_state(c, (2, [2, 3, 4], [], []), "the new topic")
    history = History()
    producer = ConfluentProducer(history, c.bootstrap, TOPIC, 0, partitions=1, rate=100)
    producer.start()
    try:
        wait_acks(history, 100, "acks with the full ISR")
        # Clean stops (SIGTERM: controlled shutdown). At min ISR nothing is eligible yet.
        c.node(3).stop()
        wait_state(c, (2, [2, 4], [], []), "3 out of the ISR, still at min ISR")
        wait_acks(history, 100, "acks at min ISR")
        c.node(4).stop()
        wait_state(c, (2, [2], [4], []), "4 out of an ISR below min ISR: eligible")
        acked_before_leader_stop = history.count(ACKED)
        # The leader goes too: the ISR empties, every replica is down.
        c.node(2).stop()
        # An ELR member comes back alone: it leads, as the whole ISR, with 2 still eligible.
        c.node(4).restart(90)
        wait_state(c, (4, [4], [2], []), "4 elected from the ELR")
        # The others come back: the ISR is full again, the ELR cleared.
        c.node(2).restart(90)
        c.node(3).restart(90)
        wait_state(c, (4, [2, 3, 4], [], []), "the ISR full again")
        wait_acks(history, 100, "acks once the ISR is back", timeout=90)
    finally:
        producer.stop(flush_timeout=90)
        producer.join(120)
    assert producer.exception is None, repr(producer.exception)
    report = check(history, read_log(c.bootstrap, TOPIC, 1, timeout=90))
    print(report.summary())
    assert report.ok, f"{report}\nnode logs: {[str(n.log_path) for n in c.nodes]}"
    assert report.acked >= acked_before_leader_stop + 100, report.summary()


def test_a_crashed_broker_leaves_the_elr_and_is_not_elected(cluster):
    c = cluster
    wait_state(c, (2, [2, 3, 4], [], []), "the new topic")
    c.node(3).stop()
    wait_state(c, (2, [2, 4], [], []), "3 out of the ISR")
    # kill -9: fenced when its session expires, and eligible (the ISR is below min ISR).
    c.node(4).kill9()
    wait_state(c, (2, [2], [4], []), "4 fenced into the ELR")
    c.node(2).stop()
    # 4 registers again without its clean-shutdown marker: it may have lost records it
    # had, so it leaves the ELR (for the last known ELR) and does not lead.
    c.node(4).restart(90)
    wait_state(c, (-1, [], [2], [4]), "4 no longer eligible, no leader")
    # 2 stopped cleanly: it leads from the ELR.
    c.node(2).restart(90)
    wait_state(c, (2, [2, 4], [], []), "2 elected from the ELR, then 4 back in sync")
    c.node(3).restart(90)
    wait_state(c, (2, [2, 3, 4], [], []), "the ISR full again")
