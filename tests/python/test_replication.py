"""Replicated partitions seen by real clients on a 3-node cluster: followers hold the
leader's bytes, min.insync.replicas refuses writes the ISR cannot hold, and a broker that
was killed comes back, catches up and rejoins the ISR. (The fault scenarios with the
checker are test_replication_faults.py.)"""
import time

import pytest
from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from cluster import Cluster
from conftest import wait_until

FAST = {
    "broker.session.timeout.ms": "3000",
    "broker.heartbeat.interval.ms": "500",
    "replica.lag.time.max.ms": "3000",
}


@pytest.fixture
def cluster(tmp_path):
    c = Cluster(tmp_path / "c", controllers=3, overrides=FAST).start()
    yield c
    c.kill_all()


_admins = {}


def admin(bootstrap):
    if bootstrap not in _admins:
        _admins[bootstrap] = AdminClient({"bootstrap.servers": bootstrap})
    return _admins[bootstrap]


def partition(bootstrap, topic, p=0):
    return admin(bootstrap).list_topics(topic, timeout=10).topics[topic].partitions[p]


def produce(bootstrap, topic, n, **conf):
    errors = []
    p = Producer({"bootstrap.servers": bootstrap, "acks": "all", "enable.idempotence": True, **conf})
    for i in range(n):
        p.produce(topic, key=str(i).encode(), value=f"value-{i}".encode() * 10, partition=0,
                  on_delivery=lambda e, m: errors.append(e) if e else None)
    assert p.flush(60) == 0
    return errors


def log_bytes(node, topic, p=0):
    d = node.data_dir / f"{topic}-{p}"
    return b"".join(f.read_bytes() for f in sorted(d.glob("*.log")))


def test_followers_hold_the_leaders_bytes(cluster):
    admin(cluster.bootstrap).create_topics([NewTopic("r", 1, 3)])["r"].result(30)
    wait_until(lambda: len(partition(cluster.bootstrap, "r").isrs) == 3, 20)
    assert produce(cluster.bootstrap, "r", 2000, **{"linger.ms": 5}) == []
    leader = cluster.node(partition(cluster.bootstrap, "r").leader)
    # acks=all answered once every ISR member had the batch: the followers' logs are the
    # leader's bytes (leader epochs included), as soon as they have fetched once more.
    want = log_bytes(leader, "r")
    assert len(want) > 2000 * 60
    wait_until(lambda: all(log_bytes(n, "r") == want for n in cluster.nodes), 20)


def test_min_insync_replicas_refuses_what_the_isr_cannot_hold(cluster):
    admin(cluster.bootstrap).create_topics(
        [NewTopic("m", 1, 3, config={"min.insync.replicas": "3"})])["m"].result(30)
    wait_until(lambda: len(partition(cluster.bootstrap, "m").isrs) == 3, 20)
    assert produce(cluster.bootstrap, "m", 10) == []
    p0 = partition(cluster.bootstrap, "m")
    victim = next(r for r in p0.replicas if r != p0.leader)
    cluster.node(victim).kill9()
    # Fenced after the session timeout: it leaves the ISR.
    wait_until(lambda: len(partition(cluster.bootstrap, "m").isrs) == 2, 30)
    errors = produce(cluster.bootstrap, "m", 1, **{"enable.idempotence": False, "retries": 0})
    assert [e.code() for e in errors] == [KafkaError.NOT_ENOUGH_REPLICAS]
    # acks=1 is not held to min.insync.replicas.
    assert produce(cluster.bootstrap, "m", 1, **{"enable.idempotence": False, "acks": "1"}) == []


def test_a_killed_broker_catches_up_and_rejoins_the_isr(cluster):
    admin(cluster.bootstrap).create_topics(
        [NewTopic("k", 1, 3, config={"min.insync.replicas": "2"})])["k"].result(30)
    wait_until(lambda: len(partition(cluster.bootstrap, "k").isrs) == 3, 20)
    assert produce(cluster.bootstrap, "k", 500) == []
    p0 = partition(cluster.bootstrap, "k")
    victim = cluster.node(next(r for r in p0.replicas if r != p0.leader))
    victim.kill9()
    wait_until(lambda: victim.id not in partition(cluster.bootstrap, "k").isrs, 30)
    # Written while it was down: it must fetch them when it is back.
    assert produce(cluster.bootstrap, "k", 500) == []
    victim.spawn().wait_ready(60)
    wait_until(lambda: victim.id in partition(cluster.bootstrap, "k").isrs, 60)
    leader = cluster.node(partition(cluster.bootstrap, "k").leader)
    want = log_bytes(leader, "k")
    wait_until(lambda: log_bytes(victim, "k") == want, 20)
    # A SIGTERM on the leader moves the leadership to another ISR member before the
    # process exits (controlled shutdown); every acknowledged record is read back there.
    leader.stop()
    assert partition(cluster.bootstrap, "k").leader != leader.id
    c = Consumer({"bootstrap.servers": cluster.bootstrap, "group.id": "k",
                  "auto.offset.reset": "earliest", "enable.auto.commit": False})
    c.assign([TopicPartition("k", 0, 0)])
    seen = []
    deadline = time.monotonic() + 30
    while len(seen) < 1000 and time.monotonic() < deadline:
        m = c.poll(0.5)
        if m is not None and not m.error():
            seen.append(m.offset())
    c.close()
    assert seen == list(range(1000))
