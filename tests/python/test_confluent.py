"""confluent-kafka (librdkafka 2.16): codecs, record fields, sizes, timestamps, topics."""
import random

import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from conftest import wait_until
from logfiles import batches


def producer(broker, **extra):
    conf = {"bootstrap.servers": broker.bootstrap, "linger.ms": 5}
    conf.update(extra)
    return Producer(conf)


def consumer(broker, **extra):
    conf = {"bootstrap.servers": broker.bootstrap, "group.id": "test", "enable.auto.commit": False, "enable.partition.eof": True}
    conf.update(extra)
    return Consumer(conf)


def create_topic(broker, name, partitions=1, config=None):
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    fs = admin.create_topics([NewTopic(name, num_partitions=partitions, replication_factor=1, config=config or {})])
    fs[name].result(30)


def produce_all(p, topic, records, **kw):
    """Produces (key, value, extra) tuples and returns delivery reports in order."""
    reports = []

    def cb(err, msg):
        reports.append((err, msg))

    for key, value, extra in records:
        while True:
            try:
                p.produce(topic, key=key, value=value, on_delivery=cb, **extra, **kw)
                break
            except BufferError:
                p.poll(0.1)
        p.poll(0)
    assert p.flush(60) == 0
    return reports


def consume_all(c, tp_list, expected, timeout=60):
    """Reads until `expected` messages arrived, or fails at the deadline."""
    c.assign(tp_list)
    out = []

    def more():
        for m in c.consume(1000, timeout=0.5):
            if m.error() is None:
                out.append(m)
            elif m.error().code() != KafkaError._PARTITION_EOF:
                raise KafkaException(m.error())
        return len(out) >= expected

    wait_until(more, timeout, f"{expected} messages")
    return out


@pytest.mark.parametrize("codec", ["none", "gzip", "snappy", "lz4", "zstd"])
def test_100k_records_round_trip_byte_identical(broker, codec):
    topic = f"codec-{codec}"
    create_topic(broker, topic)
    rng = random.Random(codec)
    records = [(b"key-%d" % i, rng.randbytes(rng.randint(1, 200)), {}) for i in range(100_000)]
    reports = produce_all(producer(broker, **{"compression.type": codec}), topic, records)
    assert [r[0] for r in reports if r[0] is not None] == []
    assert sorted(m.offset() for _, m in reports) == list(range(100_000))
    msgs = consume_all(consumer(broker), [TopicPartition(topic, 0, 0)], 100_000)
    assert [m.offset() for m in msgs] == list(range(100_000))
    assert [(m.key(), m.value()) for m in msgs] == [(k, v) for k, v, _ in records]
    # The broker stores what the producer sent. librdkafka sends a batch uncompressed
    # when the codec would not shrink it (these values are random bytes), so a few
    # batches may be plain; every other batch must be stored in the producer's codec.
    stored = [(count, c) for _, count, c, _ in batches(broker.data_dir, topic)]
    assert {c for _, c in stored} <= {codec, "none"}, stored
    assert sum(n for n, c in stored if c == codec) * 2 > 100_000, stored


def test_null_keys_values_headers_and_timestamps(broker):
    topic = "fields"
    create_topic(broker, topic)
    records = [
        (None, b"no key", {"timestamp": 1_600_000_000_000}),
        (b"tombstone", None, {"timestamp": 1_600_000_000_001}),
        (None, None, {}),
        (b"k", b"v", {"headers": [("h", b"1"), ("h", b"2"), ("empty", b""), ("null", None)], "timestamp": 1_600_000_000_003}),
    ]
    produce_all(producer(broker), topic, records)
    msgs = consume_all(consumer(broker), [TopicPartition(topic, 0, 0)], 4)
    assert [(m.key(), m.value()) for m in msgs] == [(k, v) for k, v, _ in records]
    assert msgs[0].timestamp()[1] == 1_600_000_000_000
    assert msgs[1].timestamp()[1] == 1_600_000_000_001
    assert msgs[3].headers() == [("h", b"1"), ("h", b"2"), ("empty", b""), ("null", None)]
    assert msgs[2].headers() is None


def test_one_mib_records_and_message_too_large(broker):
    topic = "big"
    create_topic(broker, topic, config={"max.message.bytes": str(2 * 1024 * 1024)})
    p = producer(broker, **{"message.max.bytes": 10 * 1024 * 1024, "linger.ms": 0})
    mib = [(b"k%d" % i, bytes([i]) * (1024 * 1024), {}) for i in range(5)]
    reports = produce_all(p, topic, mib)
    assert all(err is None for err, _ in reports), reports
    too_big = produce_all(p, topic, [(b"huge", b"x" * (3 * 1024 * 1024), {})])
    assert too_big[0][0] is not None and too_big[0][0].code() == KafkaError.MSG_SIZE_TOO_LARGE
    msgs = consume_all(consumer(broker), [TopicPartition(topic, 0, 0)], 5)
    assert [m.value() for m in msgs] == [v for _, v, _ in mib]


def test_offsets_for_times(broker):
    topic = "times"
    create_topic(broker, topic)
    base = 1_700_000_000_000
    records = [(b"k", b"v%d" % i, {"timestamp": base + i * 1000}) for i in range(50)]
    produce_all(producer(broker, **{"linger.ms": 0}), topic, records)
    c = consumer(broker)
    found = c.offsets_for_times([TopicPartition(topic, 0, base + 10_500)], timeout=10)
    assert found[0].offset == 11
    exact = c.offsets_for_times([TopicPartition(topic, 0, base + 20_000)], timeout=10)
    assert exact[0].offset == 20
    past_end = c.offsets_for_times([TopicPartition(topic, 0, base + 999_999)], timeout=10)
    assert past_end[0].offset == -1
    assert c.get_watermark_offsets(TopicPartition(topic, 0), timeout=10) == (0, 50)


def test_auto_created_and_explicit_topics(broker):
    reports = produce_all(producer(broker), "auto-made", [(None, b"hello", {})])
    assert reports[0][0] is None
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    md = admin.list_topics(timeout=10)
    assert "auto-made" in md.topics and len(md.topics["auto-made"].partitions) == 1

    create_topic(broker, "explicit", partitions=4, config={"retention.ms": "1000000"})
    md = admin.list_topics(timeout=10)
    assert len(md.topics["explicit"].partitions) == 4
    with pytest.raises(KafkaException) as e:
        create_topic(broker, "explicit")
    assert e.value.args[0].code() == KafkaError.TOPIC_ALREADY_EXISTS
    with pytest.raises(KafkaException) as e:
        create_topic(broker, "bad-config", config={"retention.ms": "soon"})
    assert e.value.args[0].code() == KafkaError.INVALID_CONFIG
    with pytest.raises(KafkaException) as e:
        create_topic(broker, "bad name!")
    assert e.value.args[0].code() == KafkaError.TOPIC_EXCEPTION

    fs = admin.delete_topics(["explicit"])
    fs["explicit"].result(30)
    wait_until(lambda: "explicit" not in admin.list_topics(timeout=10).topics, 10, "topic deletion")
    assert not (broker.data_dir / "explicit-0").exists()
    with pytest.raises(KafkaException) as e:
        admin.delete_topics(["explicit"])["explicit"].result(30)
    assert e.value.args[0].code() == KafkaError.UNKNOWN_TOPIC_OR_PART


def test_records_survive_clean_restart(broker):
    topic = "restart"
    create_topic(broker, topic, partitions=2)
    records = [(b"%d" % i, b"value-%d" % i, {"partition": i % 2}) for i in range(2000)]
    produce_all(producer(broker, acks="all"), topic, records)
    broker.restart()
    assert (broker.data_dir / ".kafka_cleanshutdown").exists() is False
    msgs = consume_all(consumer(broker), [TopicPartition(topic, 0, 0), TopicPartition(topic, 1, 0)], 2000)
    assert sorted(m.value() for m in msgs) == sorted(v for _, v, _ in records)


def test_log_append_time_and_max_timestamp(broker):
    from confluent_kafka import TIMESTAMP_LOG_APPEND_TIME
    from confluent_kafka.admin import OffsetSpec
    import time

    create_topic(broker, "lat", config={"message.timestamp.type": "LogAppendTime"})
    before = int(time.time() * 1000)
    produce_all(producer(broker), "lat", [(b"k", b"v%d" % i, {"timestamp": 1000 + i}) for i in range(10)])
    after = int(time.time() * 1000)
    msgs = consume_all(consumer(broker), [TopicPartition("lat", 0, 0)], 10)
    for m in msgs:
        kind, ts = m.timestamp()
        assert kind == TIMESTAMP_LOG_APPEND_TIME
        assert before <= ts <= after

    # KIP-734: the offset of the record with the largest timestamp, not the last one.
    create_topic(broker, "maxts")
    produce_all(producer(broker, **{"linger.ms": 0}), "maxts", [(b"k", b"v", {"timestamp": t}) for t in [5000, 9000, 7000, 8000]])
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    tp = TopicPartition("maxts", 0)
    res = admin.list_offsets({tp: OffsetSpec.max_timestamp()})[tp].result(30)
    assert (res.offset, res.timestamp) == (1, 9000)
    assert admin.list_offsets({tp: OffsetSpec.earliest()})[tp].result(30).offset == 0
    assert admin.list_offsets({tp: OffsetSpec.latest()})[tp].result(30).offset == 4
