"""Parity with Kafka 4.x as real clients see it: the config sources of the broker
resource, and kafka-python 3 recognising a current broker from its ApiVersions and then
using the newest versions it knows (Produce v13 and OffsetCommit/OffsetFetch v10 by topic
id, ListOffsets v11, ...) for real work."""
from confluent_kafka.admin import AdminClient, ConfigResource, ConfigSource, ResourceType
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import ConfigResource as KpConfigResource
from kafka.admin import ConfigResourceType, KafkaAdminClient, NewTopic
from kafka.protocol.consumer import (FetchRequest, ListOffsetsRequest, OffsetCommitRequest,
                                     OffsetFetchRequest)
from kafka.protocol.producer import ProduceRequest

from conftest import wait_until


def test_broker_configs_report_static_and_default_sources(broker_factory):
    # --override, and the listener and log dir the fixture passes as --listen/--data-dir.
    broker = broker_factory({"num.partitions": "3"})
    res = ConfigResource(ResourceType.BROKER, "1")
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    d = admin.describe_configs([res])[res].result(30)
    static = ConfigSource.STATIC_BROKER_CONFIG.value
    default = ConfigSource.DEFAULT_CONFIG.value
    assert (d["num.partitions"].value, d["num.partitions"].source) == ("3", static)
    # The configured value, as Kafka reports it (the fixture asks for port 0).
    assert (d["listeners"].value, d["listeners"].source) == ("PLAINTEXT://127.0.0.1:0", static)
    assert (d["log.dirs"].value, d["log.dirs"].source) == (str(broker.data_dir), static)
    assert (d["log.segment.bytes"].value, d["log.segment.bytes"].source) == ("1073741824", default)
    assert d["log.segment.bytes"].is_default and not d["num.partitions"].is_default

    # Synonyms, every layer in precedence order (confluent-kafka keys them by name, so
    # read them with kafka-python, which keeps the list).
    kp = KafkaAdminClient(bootstrap_servers=broker.bootstrap)
    got = kp.describe_configs([KpConfigResource(ConfigResourceType.BROKER, "1")],
                              include_synonyms=True, config_filter="all")["broker"]["1"]

    def synonyms(name):
        return [(s["name"], s["value"], s["source"]) for s in got[name]["synonyms"]]

    assert synonyms("num.partitions") == [
        ("num.partitions", "3", "STATIC_BROKER_CONFIG"),
        ("num.partitions", "1", "DEFAULT_CONFIG"),
    ]
    assert synonyms("log.dirs")[0] == ("log.dirs", str(broker.data_dir), "STATIC_BROKER_CONFIG")
    assert synonyms("log.dirs")[1][2] == "DEFAULT_CONFIG"
    assert synonyms("log.segment.bytes") == [("log.segment.bytes", "1073741824", "DEFAULT_CONFIG")]
    assert got["num.partitions"]["config_source"] == "STATIC_BROKER_CONFIG"
    kp.close()


def test_kafka_python_recognises_a_current_broker_and_uses_the_new_versions(broker):
    admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap)
    # kafka-python infers the broker from ApiVersions: (4, 3) needs DescribeLogDirs v5,
    # (4, 2) ListOffsets v11, (4, 1) Produce v13.
    assert admin._client.check_version() == (4, 3)
    data = admin._client._manager.broker_version_data
    for api, want in [(0, 13), (2, 11), (8, 10), (9, 10), (1, 18), (3, 13)]:
        assert data.api_versions[api][1] == want, (api, data.api_versions[api])
    # ... and what it will send: its own maxima are these, so the work below uses them.
    for req, want in [(ProduceRequest, 13), (OffsetCommitRequest, 10), (OffsetFetchRequest, 10),
                      (ListOffsetsRequest, 11), (FetchRequest, 18)]:
        assert data.api_version(req) == want, req
    admin.create_topics([NewTopic("par", num_partitions=2, replication_factor=1)])

    p = KafkaProducer(bootstrap_servers=broker.bootstrap, acks="all", enable_idempotence=False)
    assert p.config["api_version"] == (4, 3)
    metas = [p.send("par", value=b"v%d" % i, partition=i % 2) for i in range(200)]
    p.flush(30)
    assert sorted((m.get(30).partition, m.get(30).offset) for m in metas) == sorted(
        (i % 2, i // 2) for i in range(200))
    p.close()

    c = KafkaConsumer("par", bootstrap_servers=broker.bootstrap, group_id="par-g",
                      auto_offset_reset="earliest", enable_auto_commit=False)
    got = []

    def more():
        for records in c.poll(timeout_ms=500).values():
            got.extend(records)
        return len(got) >= 200

    wait_until(more, 60, "200 records via kafka-python")
    assert sorted(r.value for r in got) == sorted(b"v%d" % i for i in range(200))
    c.commit()  # OffsetCommit v10, by topic id
    tps = [TopicPartition("par", i) for i in range(2)]
    assert {tp: c.committed(tp) for tp in tps} == {tp: 100 for tp in tps}  # OffsetFetch v10
    assert c.end_offsets(tps) == {tp: 100 for tp in tps}  # ListOffsets v11
    assert c.beginning_offsets(tps) == {tp: 0 for tp in tps}
    c.close()

    # A second consumer of the group starts from the committed offsets.
    c2 = KafkaConsumer(bootstrap_servers=broker.bootstrap, group_id="par-g", enable_auto_commit=False)
    assert {tp: c2.committed(tp) for tp in tps} == {tp: 100 for tp in tps}
    c2.close()
    admin.close()
