"""gregor-streams on a 3-node cluster: every topic (input, output, repartition, changelog,
__consumer_offsets, __transaction_state) has three replicas, and an exactly-once word count
keeps exact counts while the broker leading most of its partitions is killed with SIGKILL
and later comes back.

The example binaries are built by test.sh (`cargo build --release -p gregor-streams
--examples`); see test_streams.py for the single-broker tests.
"""
from collections import Counter

import pytest
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic

from cluster import Cluster
from conftest import wait_until
from test_streams import Reader, counts_by_word, finals, true_counts, wordcount

FAST = {
    "broker.session.timeout.ms": "3000",
    "broker.heartbeat.interval.ms": "500",
    "replica.lag.time.max.ms": "3000",
    "default.replication.factor": "3",
    "min.insync.replicas": "2",
}


@pytest.fixture
def cluster(tmp_path):
    c = Cluster(tmp_path / "c", controllers=3, overrides=FAST).start()
    yield c
    c.kill_all()


def produce_all(bootstrap, lines):
    p = Producer({"bootstrap.servers": bootstrap, "acks": "all", "enable.idempotence": True, "linger.ms": 5})
    for i, line in enumerate(lines):
        p.produce("lines", key=f"k{i}".encode(), value=line.encode())
    assert p.flush(60) == 0


def leaders(bootstrap):
    """node id -> partitions it leads, over every topic (internal ones included)."""
    md = AdminClient({"bootstrap.servers": bootstrap}).list_topics(timeout=10)
    led = Counter()
    for t in md.topics.values():
        for p in t.partitions.values():
            if p.leader >= 0:
                led[p.leader] += 1
    return led, md


def test_exactly_once_word_count_survives_a_broker_kill(cluster, tmp_path):
    admin = AdminClient({"bootstrap.servers": cluster.bootstrap})
    for f in admin.create_topics([NewTopic("lines", 2, 3), NewTopic("counts", 2, 3)]).values():
        f.result(30)
    lines = [f"w{i % 11} x{i % 5} y{i % 3}" for i in range(600)]
    eos = ["--guarantee", "exactly_once_v2"]
    app = wordcount(tmp_path, cluster.bootstrap, "wc-cluster", tmp_path / "state", eos, commit_ms=300).start()
    committed = Reader(cluster.bootstrap, "counts")

    produce_all(cluster.bootstrap, lines[:200])
    wait_until(lambda: app.alive() and finals(counts_by_word(committed.poll())) == true_counts(lines[:200]),
               60, "first counts committed")

    # The application's internal topics exist now, replicated like every other topic.
    led, md = leaders(cluster.bootstrap)
    internal = [t for t in md.topics if t.startswith("wc-cluster-")]
    assert any(t.endswith("-repartition") for t in internal), internal
    assert any(t.endswith("-changelog") for t in internal), internal
    for t in internal + ["__consumer_offsets", "__transaction_state"]:
        for p in md.topics[t].partitions.values():
            assert len(p.replicas) == 3, (t, p.id, p.replicas)

    victim = cluster.node(led.most_common(1)[0][0])
    victim.kill9()
    survivors = ",".join(n.bootstrap for n in cluster.brokers if n.alive())
    wait_until(lambda: victim.id not in leaders(survivors)[0], 30, "leaderships moved off the killed broker")

    produce_all(survivors, lines[200:400])
    victim.restart()
    produce_all(cluster.bootstrap, lines[400:])

    expected = true_counts(lines)
    wait_until(lambda: app.alive() and finals(counts_by_word(committed.poll())) == expected, 90,
               "final counts after the kill")
    # Exactly once across the failover: each word's counts are 1, 2, ..., n, in order.
    for word, values in counts_by_word(committed.records).items():
        assert values == list(range(1, expected[word] + 1)), (word, values)
    app.stop()
    committed.close()
