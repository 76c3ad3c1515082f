"""Share groups (KIP-932) on a 3-node cluster: acknowledgements live in the replicated
`__share_group_state` topic behind the share coordinator, so killing the broker that
leads the share-partition (and, in one case, the one that coordinates its state too)
loses no acknowledgement: the new leader reads the state back and never redelivers an
accepted record.

librdkafka's ShareConsumer is the client. Every wait is a condition with a deadline.
"""
import time

import pytest

ck = pytest.importorskip("confluent_kafka")
if getattr(ck, "ShareConsumer", None) is None:  # pragma: no cover
    pytest.skip("this confluent-kafka has no ShareConsumer", allow_module_level=True)
from confluent_kafka import Producer, ShareConsumer, AcknowledgeType, TopicCollection
from confluent_kafka.admin import AdminClient, NewTopic

from cluster import Cluster
from conftest import wait_until

STATE_TOPIC = "__share_group_state"
OVERRIDES = {
    "broker.session.timeout.ms": "3000",
    "broker.heartbeat.interval.ms": "500",
    "default.replication.factor": "3",
    "min.insync.replicas": "2",
    "share.auto.offset.reset": "earliest",
    "group.share.heartbeat.interval.ms": "500",
    "share.coordinator.state.topic.num.partitions": "6",
}


@pytest.fixture
def cluster(tmp_path):
    c = Cluster(tmp_path / "c", controllers=3, overrides=OVERRIDES).start()
    yield c
    c.kill_all()


def java_hash(s):
    h = 0
    for ch in s:  # ASCII keys: one UTF-16 unit per character
        h = (31 * h + ord(ch)) & 0xFFFFFFFF
    return h


def share_consumer(bootstrap, group, topic):
    c = ShareConsumer({
        "bootstrap.servers": bootstrap,
        "group.id": group,
        "share.acknowledgement.mode": "explicit",
    })
    c.subscribe([topic])
    return c


def poll(c, timeout=0.3):
    return [m for m in c.poll(timeout) if m.error() is None]


def drain(c, want, timeout=60.0):
    got = []
    deadline = time.monotonic() + timeout
    while len(got) < want:
        assert time.monotonic() < deadline, f"got {len(got)} of {want} records"
        got.extend(poll(c))
    return got


def leader(admin, topic, partition):
    md = admin.list_topics(timeout=10)
    t = md.topics.get(topic)
    if t is None or t.error is not None or partition not in t.partitions:
        return None
    p = t.partitions[partition]
    return p.leader if p.leader >= 0 else None


@pytest.mark.parametrize("coordinator_dies_too", [False, True])
def test_accepted_records_are_not_redelivered_after_the_leader_is_killed(cluster, coordinator_dies_too):
    b = cluster.bootstrap
    admin = AdminClient({"bootstrap.servers": b})
    for f in admin.create_topics([NewTopic("q", 1, 3)]).values():
        f.result(30)
    p = Producer({"bootstrap.servers": b, "acks": "all"})
    sent = [f"r-{i}".encode() for i in range(40)]
    for v in sent:
        p.produce("q", v)
    assert p.flush(30) == 0

    # A first share group creates the state topic; then pick a group whose share
    # coordinator is (or is not) the broker leading q-0, the one that will be killed.
    warm = share_consumer(b, "warm-up", "q")
    drain(warm, 1)
    warm.close()
    wait_until(lambda: leader(admin, STATE_TOPIC, 0), 30, "the share state topic")
    md = admin.list_topics(timeout=10)
    state = md.topics[STATE_TOPIC]
    assert all(len(x.replicas) == 3 for x in state.partitions.values()), "state topic RF"
    topic_id = str(admin.describe_topics(TopicCollection(["q"]))["q"].result(30).topic_id)
    q_leader = leader(admin, "q", 0)

    def coordinator(group):
        key = f"{group}:{topic_id}:0"
        return state.partitions[(java_hash(key) & 0x7FFFFFFF) % len(state.partitions)].leader

    group = next(g for g in (f"queue-{i}" for i in range(200))
                 if (coordinator(g) == q_leader) == coordinator_dies_too)

    c = share_consumer(b, group, "q")
    got = drain(c, 20)
    accepted = got[:20]
    for m in accepted:
        c.acknowledge(m, AcknowledgeType.ACCEPT)
    for m in got[20:]:
        c.acknowledge(m, AcknowledgeType.RELEASE)
    c.commit_sync(30)
    c.close()

    cluster.node(q_leader).kill9()
    wait_until(lambda: leader(admin, "q", 0) not in (None, q_leader), 30, "a new leader of q-0")

    c = share_consumer(cluster.bootstrap, group, "q")
    try:
        rest = drain(c, len(sent) - 20)
        values = [m.value() for m in rest]
        assert sorted(values) == sorted(set(sent) - {m.value() for m in accepted})
        for m in rest:
            c.acknowledge(m, AcknowledgeType.ACCEPT)
        c.commit_sync(30)
        # Nothing else comes: the accepted records are never redelivered.
        assert poll(c, 1.0) == []
    finally:
        c.close()


def test_offsets_are_described_and_reset_across_brokers(cluster):
    """Three partitions led by three brokers: describe (on the group's coordinator)
    shows every share-partition's start offset, asking the other brokers' share
    coordinators; a reset made there is seen by the partitions' leaders; deleting the
    group deletes the state on every share coordinator."""
    import json
    import subprocess
    from conftest import BIN

    b = cluster.bootstrap
    admin = AdminClient({"bootstrap.servers": b})
    for f in admin.create_topics([NewTopic("q3", 3, 3)]).values():
        f.result(30)
    leaders = {leader(admin, "q3", p) for p in range(3)}
    p = Producer({"bootstrap.servers": b, "acks": "all"})
    for i in range(30):
        p.produce("q3", f"r-{i}".encode(), partition=i % 3)
    assert p.flush(30) == 0

    # Implicit acknowledgement: what a poll returned is accepted by the next poll or
    # the commit.
    c = ShareConsumer({"bootstrap.servers": b, "group.id": "spread"})
    c.subscribe(["q3"])
    assert len(drain(c, 30)) == 30
    c.commit_sync(30)
    c.close()

    def describe():
        r = subprocess.run([BIN, "share-group", "describe", "spread", "-b", b, "--output", "json"],
                           capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stderr
        return sorted((o["partition"], o["start_offset"]) for o in json.loads(r.stdout)["offsets"])

    assert len(leaders) > 1, "partition leaders should be spread"
    assert describe() == [(0, 10), (1, 10), (2, 10)]
    r = subprocess.run([BIN, "share-group", "reset-offsets", "spread", "--topic", "q3", "--to", "earliest",
                        "-b", b], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert describe() == [(0, 0), (1, 0), (2, 0)]
    c = ShareConsumer({"bootstrap.servers": b, "group.id": "spread"})
    c.subscribe(["q3"])
    try:
        again = drain(c, 30)
        assert sorted(m.value() for m in again) == sorted(f"r-{i}".encode() for i in range(30))
        c.commit_sync(30)
    finally:
        c.close()
    assert describe() == [(0, 10), (1, 10), (2, 10)]

    # Deleting the group deletes every share-partition's state, on whichever broker's
    # share coordinator holds it: the group's next member starts afresh (earliest).
    r = subprocess.run([BIN, "share-group", "delete", "spread", "-b", b],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr + r.stdout
    c = ShareConsumer({"bootstrap.servers": b, "group.id": "spread"})
    c.subscribe(["q3"])
    try:
        fresh = drain(c, 30)
        assert sorted(m.value() for m in fresh) == sorted(f"r-{i}".encode() for i in range(30))
    finally:
        c.close()
