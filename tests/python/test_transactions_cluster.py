"""Transactions on a 3-node cluster where the transaction coordinator and the group
coordinator are different brokers, as they usually are: a consume-transform-produce loop
with confluent-kafka's send_offsets_to_transaction (AddOffsetsToTxn on the transaction
coordinator, TxnOffsetCommit on the group coordinator, which verifies with the other
broker over the inter-broker AddPartitionsToTxn) commits its output and its offsets
together."""
import pytest
from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, ConfigResource, ConfigSource, NewTopic, ResourceType

from cluster import Cluster
from conftest import wait_until

FAST = {
    "broker.session.timeout.ms": "3000",
    "broker.heartbeat.interval.ms": "500",
    "default.replication.factor": "3",
    "min.insync.replicas": "2",
}


@pytest.fixture
def cluster(tmp_path):
    c = Cluster(tmp_path / "c", controllers=3, overrides=FAST).start()
    yield c
    c.kill_all()


def java_hash(s):
    h = 0
    for ch in s:  # ids here are ASCII: one UTF-16 unit per character
        h = (31 * h + ord(ch)) & 0xFFFFFFFF
    return h


def coordinator(md, topic, key):
    """The leader of `key`'s partition of an internal topic (Kafka's partitionFor)."""
    parts = md.topics[topic].partitions
    return parts[(java_hash(key) & 0x7FFFFFFF) % len(parts)].leader


def test_send_offsets_to_transaction_with_coordinators_on_different_brokers(cluster):
    b = cluster.bootstrap
    admin = AdminClient({"bootstrap.servers": b})
    for f in admin.create_topics([NewTopic("in", 1, 3), NewTopic("out", 1, 3)]).values():
        f.result(30)
    # Both internal topics exist once a transactional producer and a group have run.
    warm = Producer({"bootstrap.servers": b, "transactional.id": "warm-up"})
    warm.init_transactions(30)
    # __transaction_state carries its own min ISR, transaction.state.log.min.isr (2), as
    # Kafka creates it: a topic config, not the broker default it would otherwise take.
    r = ConfigResource(ResourceType.TOPIC, "__transaction_state")
    entry = admin.describe_configs([r])[r].result(30)["min.insync.replicas"]
    assert (entry.value, entry.source) == ("2", ConfigSource.DYNAMIC_TOPIC_CONFIG.value)
    src = Producer({"bootstrap.servers": b, "acks": "all"})
    for i in range(20):
        src.produce("in", key=str(i).encode(), value=f"v{i}".encode())
    assert src.flush(30) == 0
    probe = Consumer({"bootstrap.servers": b, "group.id": "warm-up"})
    probe.commit(offsets=[TopicPartition("in", 0, 0)], asynchronous=False)
    probe.close()

    md = admin.list_topics(timeout=10)
    txn_id, group = next(
        (f"txn-{i}", f"group-{j}")
        for i in range(50) for j in range(50)
        if coordinator(md, "__transaction_state", f"txn-{i}") != coordinator(md, "__consumer_offsets", f"group-{j}")
    )

    consumer = Consumer({"bootstrap.servers": b, "group.id": group, "enable.auto.commit": False,
                         "auto.offset.reset": "earliest", "isolation.level": "read_committed"})
    consumer.subscribe(["in"])
    producer = Producer({"bootstrap.servers": b, "transactional.id": txn_id})
    producer.init_transactions(30)
    seen = []

    def batch():
        for m in consumer.consume(100, 0.2):
            if not m.error():
                seen.append(m)
        return len(seen) >= 20

    wait_until(batch, 30, "the input records")
    producer.begin_transaction()
    for m in seen:
        producer.produce("out", key=m.key(), value=m.value().upper())
    producer.send_offsets_to_transaction(consumer.position(consumer.assignment()),
                                         consumer.consumer_group_metadata(), 30)
    producer.commit_transaction(30)
    consumer.close()

    # The offsets were committed with the transaction...
    check = Consumer({"bootstrap.servers": b, "group.id": group, "isolation.level": "read_committed"})
    wait_until(lambda: check.committed([TopicPartition("in", 0)], timeout=10)[0].offset == 20, 30,
               "the transaction's offsets committed")
    check.close()
    # ...and its output is visible to read_committed consumers.
    reader = Consumer({"bootstrap.servers": b, "group.id": "reader", "auto.offset.reset": "earliest",
                       "isolation.level": "read_committed", "enable.partition.eof": True})
    reader.assign([TopicPartition("out", 0, 0)])
    out = []

    def drained():
        for m in reader.consume(100, 0.2):
            if m.error() and m.error().code() == KafkaError._PARTITION_EOF:
                return len(out) == 20
            if not m.error():
                out.append(m.value())
        return False

    wait_until(drained, 30, "the committed output")
    assert sorted(out) == sorted(f"V{i}".encode() for i in range(20))
    reader.close()
