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


def test_groupless_subscriber_during_auto_creation_reads_everything(broker_factory):
    """A consumer without a group (group_id=None, subscribe) while a producer auto-creates
    the topic: before the topic exists it is UNKNOWN_TOPIC_OR_PARTITION (retriable, so
    kafka-python asks again within its backoff), afterwards every partition is listed,
    so the consumer assigns all four itself and reads every record, whichever comes
    first. (Issue 11 saw one such consumer read nothing for 30 s once under load; this
    covers both orders several times.)"""
    broker = broker_factory({"num.partitions": "4"})
    for i, consumer_first in enumerate([True, False] * 3):
        topic = f"auto-{i}"
        c = KafkaConsumer(bootstrap_servers=broker.bootstrap, group_id=None,
                          auto_offset_reset="earliest", consumer_timeout_ms=100)
        p = KafkaProducer(bootstrap_servers=broker.bootstrap)
        if consumer_first:
            c.subscribe([topic])
            c.poll(timeout_ms=50)
        for k in range(40):
            p.send(topic, b"v%d" % k)
        if not consumer_first:
            c.subscribe([topic])
        p.flush(30)
        p.close()
        got = []

        def more():
            for recs in c.poll(timeout_ms=200).values():
                got.extend(r.value for r in recs)
            return len(got) >= 40

        wait_until(more, 30, f"all records of {topic} (consumer first: {consumer_first})")
        assert sorted(got) == sorted(b"v%d" % k for k in range(40))
        assert {tp.partition for tp in c.assignment()} == {0, 1, 2, 3}
        c.close()
