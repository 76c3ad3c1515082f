"""Feature levels (KIP-584) and transactions on a broker with transaction.version 2.

No client available here speaks transactions v2 (KIP-890 part 2): kafka-python 3.0.12
caps EndTxn at v3 and Produce at v9, and librdkafka 2.16 (confluent-kafka, kcat's
2.0.2 too) has no transaction.version support, so both use the v1 protocol. The v2
protocol itself (EndTxn v5 epoch bumps, implicit adds) is proven at the wire in
crates/broker/tests/transactions_v2.rs. Here real clients see the finalized levels,
change them, and keep transacting with the v1 protocol on the same broker, before
and after the level changes.
"""
import json
import subprocess
import time

from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from conftest import BIN, wait_until


def create(broker, *topics):
    a = AdminClient({"bootstrap.servers": broker.bootstrap})
    for t, f in a.create_topics([NewTopic(t, 1, 1) for t in topics]).items():
        f.result(30)


def cli(broker, *args, check=True):
    out = subprocess.run([BIN, *args, "-b", broker.bootstrap, "--output", "json"],
                         capture_output=True, text=True, timeout=60)
    if check:
        assert out.returncode == 0, out.stderr
    return out


def cli_levels(broker):
    got = json.loads(cli(broker, "cluster", "features").stdout)
    return {f["name"]: f["finalized"] for f in got["features"]}, got["finalized_epoch"]


def kp_features(broker):
    from kafka import KafkaAdminClient

    admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap)
    try:
        return admin.describe_features(), admin
    except Exception:
        admin.close()
        raise


def read_committed(broker, topic, expect):
    c = Consumer({
        "bootstrap.servers": broker.bootstrap,
        "group.id": f"reader-{time.monotonic_ns()}",
        "isolation.level": "read_committed",
        "enable.auto.commit": False,
    })
    c.assign([TopicPartition(topic, 0, 0)])
    out = []

    def enough():
        out.extend(m.value() for m in c.consume(1000, timeout=0.2) if not m.error())
        return len(out) >= expect

    wait_until(enough, 60, f"{expect} committed records from {topic}")
    # Whatever else arrives within a second would be a record that should not be seen.
    deadline = time.monotonic() + 1.0
    while time.monotonic() < deadline:
        out.extend(m.value() for m in c.consume(1000, timeout=0.1) if not m.error())
    c.close()
    return out


def test_clients_see_and_change_the_finalized_levels(broker):
    """kafka-python's describe_features/update_features and `gregor cluster features`
    agree on a new cluster's levels (Kafka 4.2's: metadata.version 29,
    transaction.version 2, group.version 1), and changes are seen by both."""
    feats, admin = kp_features(broker)
    try:
        assert feats["transaction.version"]["supported"] == (0, 2)
        assert feats["transaction.version"]["finalized"] == (2, 2)
        assert feats["group.version"]["finalized"] == (1, 1)
        assert feats["metadata.version"]["supported"] == (7, 29)
        assert feats["metadata.version"]["finalized"] == (29, 29)
        epoch = feats["transaction.version"]["finalized_epoch"]
        assert epoch is not None and epoch >= 0
        levels, cli_epoch = cli_levels(broker)
        assert levels == {"metadata.version": 29, "transaction.version": 2, "group.version": 1,
                          "eligible.leader.replicas.version": 1}
        assert cli_epoch == epoch

        # kafka-python downgrades transaction.version (a safe downgrade).
        assert admin.update_features({"transaction.version": ("SAFE_DOWNGRADE", 1)}) == {
            "transaction.version": "OK"}
        levels, later = cli_levels(broker)
        assert levels["transaction.version"] == 1 and later > cli_epoch
        feats = admin.describe_features()
        assert feats["transaction.version"]["finalized"] == (1, 1)
        # A refused change: the whole request fails with INVALID_UPDATE_VERSION.
        try:
            admin.update_features({"transaction.version": ("UPGRADE", 3)})
            raise AssertionError("transaction.version 3 was accepted")
        except AssertionError:
            raise
        except Exception as e:  # kafka-python raises the broker's error class
            assert "InvalidUpdateVersion" in type(e).__name__ or "INVALID_UPDATE_VERSION" in str(e), e
    finally:
        admin.close()

    # The CLI upgrades it back; a dry run and a refusal change nothing.
    out = cli(broker, "cluster", "features", "upgrade", "--feature", "transaction.version=2",
              "--dry-run")
    assert json.loads(out.stdout) == {"dry_run": True,
                                      "updated": [{"name": "transaction.version", "level": 2}]}
    assert cli_levels(broker)[0]["transaction.version"] == 1
    bad = cli(broker, "cluster", "features", "upgrade", "--feature", "transaction.version=3",
              check=False)
    assert bad.returncode == 1
    assert bad.stderr.startswith("gregor: cannot update features: InvalidUpdateVersion: "
                                 "Invalid update version 3 for feature transaction.version."), bad.stderr
    bad = cli(broker, "cluster", "features", "upgrade", "--feature", "transaction.version=1x",
              check=False)
    assert bad.returncode == 1 and "the level is not a number" in bad.stderr
    cli(broker, "cluster", "features", "upgrade", "--feature", "transaction.version=2")
    assert cli_levels(broker)[0]["transaction.version"] == 2
    text = subprocess.run([BIN, "cluster", "features", "-b", broker.bootstrap],
                          capture_output=True, text=True, timeout=60, check=True).stdout
    rows = [line.split() for line in text.splitlines()]
    assert rows[0] == ["FEATURE", "SUPPORTED", "FINALIZED"]
    assert ["transaction.version", "0-2", "2"] in rows


def test_levels_survive_a_restart(broker):
    cli(broker, "cluster", "features", "downgrade", "--feature", "transaction.version=0")
    cli(broker, "cluster", "features", "downgrade", "--feature", "group.version=0")
    before = cli_levels(broker)
    assert before[0] == {"metadata.version": 29, "transaction.version": 0, "group.version": 0,
                         "eligible.leader.replicas.version": 1}
    broker.restart()
    after = cli_levels(broker)
    # Same levels; the epoch (the metadata offset) only grows, as the restarted broker's
    # registration is metadata too.
    assert after[0] == before[0]
    assert after[1] >= before[1]


def test_v1_clients_transact_on_a_transactions_v2_broker(broker):
    """confluent-kafka (librdkafka 2.16) and kafka-python use the v1 protocol
    (AddPartitionsToTxn, EndTxn below v5) against a broker with transaction.version 2:
    commits and aborts work, read_committed sees exactly the committed records, and
    the epoch does not move between transactions (no v2 bump for v1 requests). Then
    the same after a downgrade to transaction.version 1."""
    from kafka import KafkaProducer

    create(broker, "tv2-ck", "tv2-kp")
    assert cli_levels(broker)[0]["transaction.version"] == 2

    def describe(tid):
        (d,) = json.loads(cli(broker, "txn", "describe", tid).stdout)
        return d

    def confluent_round(tid, tag):
        p = Producer({"bootstrap.servers": broker.bootstrap, "transactional.id": tid,
                      "linger.ms": 1})
        p.init_transactions(30)
        epoch = describe(tid)["producer_epoch"]
        for n, commit in enumerate([True, False, True]):
            p.begin_transaction()
            for i in range(3):
                p.produce("tv2-ck", value=b"%s-%d-%d" % (tag, n, i), partition=0)
            if commit:
                p.commit_transaction(30)
            else:
                assert p.flush(30) == 0
                p.abort_transaction(30)
            d = describe(tid)
            assert d["state"] == ("CompleteCommit" if commit else "CompleteAbort")
            assert d["producer_epoch"] == epoch, "a v1 end does not bump the epoch"

    def kafka_python_round(tid, tag):
        p = KafkaProducer(bootstrap_servers=broker.bootstrap, transactional_id=tid)
        p.init_transactions()
        epoch = describe(tid)["producer_epoch"]
        for n, commit in enumerate([False, True]):
            p.begin_transaction()
            for i in range(3):
                p.send("tv2-kp", value=b"%s-%d-%d" % (tag, n, i), partition=0)
            p.flush()
            if commit:
                p.commit_transaction()
            else:
                p.abort_transaction()
            assert describe(tid)["producer_epoch"] == epoch
        p.close()

    confluent_round("ck-1", b"a")
    kafka_python_round("kp-1", b"a")
    cli(broker, "cluster", "features", "downgrade", "--feature", "transaction.version=1")
    confluent_round("ck-2", b"b")
    kafka_python_round("kp-2", b"b")

    want_ck = [b"%s-%d-%d" % (tag, n, i) for tag in (b"a", b"b") for n in (0, 2) for i in range(3)]
    assert read_committed(broker, "tv2-ck", len(want_ck)) == want_ck
    want_kp = [b"%s-1-%d" % (tag, i) for tag in (b"a", b"b") for i in range(3)]
    assert read_committed(broker, "tv2-kp", len(want_kp)) == want_kp
