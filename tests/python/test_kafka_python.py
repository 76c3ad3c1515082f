"""kafka-python: produce and consume (it negotiates its own versions, and uses fetch
sessions)."""
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import KafkaAdminClient, NewTopic

from conftest import wait_until


def test_produce_and_consume(broker):
    admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap)
    admin.create_topics([NewTopic("kp", num_partitions=3, replication_factor=1)])
    # Idempotence (InitProducerId) arrives with the exactly-once work; plain acks=all here.
    p = KafkaProducer(bootstrap_servers=broker.bootstrap, acks="all", linger_ms=5, enable_idempotence=False)
    futures = [p.send("kp", key=b"k%d" % i, value=b"v%d" % i, partition=i % 3) for i in range(3000)]
    p.flush(30)
    metas = [f.get(timeout=30) for f in futures]
    assert sorted((m.partition, m.offset) for m in metas) == sorted((i % 3, i // 3) for i in range(3000))

    c = KafkaConsumer(bootstrap_servers=broker.bootstrap, enable_auto_commit=False, consumer_timeout_ms=5000)
    tps = [TopicPartition("kp", i) for i in range(3)]
    c.assign(tps)
    c.seek_to_beginning(*tps)
    got = []

    def more():
        for records in c.poll(timeout_ms=500).values():
            got.extend(records)
        return len(got) >= 3000

    wait_until(more, 60, "3000 records via kafka-python")
    assert sorted(r.value for r in got) == sorted(b"v%d" % i for i in range(3000))
    per_partition = {}
    for r in got:
        per_partition.setdefault(r.partition, []).append(r.offset)
    assert all(offs == sorted(offs) for offs in per_partition.values())
    assert c.end_offsets(tps) == {tp: 1000 for tp in tps}
    c.close()
    p.close()
