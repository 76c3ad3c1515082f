"""Transactions with real clients: librdkafka (confluent-kafka, and kcat reading with
read_committed) and kafka-python. Commit and abort visibility, the last stable offset
under interleaved transactions, consume-transform-produce with the application killed
mid-stream, zombie fencing, timeouts, and a broker crash mid-transaction."""
import select
import subprocess
import sys
import time
from pathlib import Path

import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from conftest import wait_until

HERE = Path(__file__).resolve().parent


def create(broker, *topics):
    a = AdminClient({"bootstrap.servers": broker.bootstrap})
    for t, f in a.create_topics([NewTopic(t, 1, 1) for t in topics]).items():
        f.result(30)


def txn_producer(broker, tid, **extra):
    conf = {"bootstrap.servers": broker.bootstrap, "transactional.id": tid, "linger.ms": 1}
    conf.update(extra)
    p = Producer(conf)
    p.init_transactions(30)
    return p


def read(broker, topic, isolation, settle=1.0, expect=None):
    """Every value in partition 0 visible at `isolation`: reads until `expect` values
    arrived (if given), then until nothing new comes for `settle` seconds."""
    c = Consumer({
        "bootstrap.servers": broker.bootstrap,
        "group.id": f"reader-{time.monotonic_ns()}",
        "isolation.level": isolation,
        "enable.auto.commit": False,
        "enable.partition.eof": True,
    })
    c.assign([TopicPartition(topic, 0, 0)])
    out = []
    if expect is not None:
        def enough():
            out.extend(m.value() for m in c.consume(1000, timeout=0.2) if not m.error())
            return len(out) >= expect
        wait_until(enough, 60, f"{expect} records from {topic}")
    quiet_until = time.monotonic() + settle
    while time.monotonic() < quiet_until:
        for m in c.consume(1000, timeout=0.1):
            if not m.error():
                out.append(m.value())
                quiet_until = time.monotonic() + settle
    c.close()
    return out


def committed_end(broker, topic):
    """The end offset a read_committed consumer sees (the last stable offset)."""
    c = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "w", "isolation.level": "read_committed"})
    lo, hi = c.get_watermark_offsets(TopicPartition(topic, 0), timeout=10, cached=False)
    c.close()
    return hi


def test_commit_is_visible_and_abort_is_not(broker):
    create(broker, "vis")
    p = txn_producer(broker, "vis-1")
    p.begin_transaction()
    for i in range(10):
        p.produce("vis", value=b"c%d" % i, partition=0)
    p.commit_transaction(30)
    p.begin_transaction()
    for i in range(10):
        p.produce("vis", value=b"a%d" % i, partition=0)
    assert p.flush(30) == 0  # in the log, not yet decided
    p.abort_transaction(30)
    p.begin_transaction()
    p.produce("vis", value=b"c-last", partition=0)
    p.commit_transaction(30)
    committed = [b"c%d" % i for i in range(10)] + [b"c-last"]
    aborted = [b"a%d" % i for i in range(10)]
    assert read(broker, "vis", "read_committed", expect=11) == committed
    assert read(broker, "vis", "read_uncommitted", expect=21) == committed[:10] + aborted + [b"c-last"]
    # kcat (librdkafka 2.0.2) filters the aborted transaction the same way.
    out = subprocess.run(
        ["kcat", "-C", "-b", broker.bootstrap, "-t", "vis", "-p", "0", "-o", "beginning", "-e",
         "-X", "isolation.level=read_committed", "-f", "%s\n"],
        capture_output=True, timeout=60, check=True,
    ).stdout.decode().split()
    assert out == [v.decode() for v in committed]


def test_interleaved_transactions_block_read_committed_exactly_at_the_lso(broker):
    create(broker, "inter")
    p1 = txn_producer(broker, "inter-1")
    p2 = txn_producer(broker, "inter-2")
    plain = Producer({"bootstrap.servers": broker.bootstrap})
    plain.produce("inter", value=b"before", partition=0)
    plain.flush(30)
    p1.begin_transaction()
    p1.produce("inter", value=b"p1-a", partition=0)
    p1.flush(30)                                   # offset 1: p1's transaction starts here
    p2.begin_transaction()
    p2.produce("inter", value=b"p2-a", partition=0)
    p2.flush(30)                                   # offset 2: p2's starts here
    p1.produce("inter", value=b"p1-b", partition=0)
    p1.flush(30)
    assert committed_end(broker, "inter") == 1, "the LSO is p1's first offset"
    assert read(broker, "inter", "read_committed") == [b"before"]
    p1.commit_transaction(30)
    assert committed_end(broker, "inter") == 2, "now p2's first offset"
    # Exactly up to the LSO: p1's first record is below it, its second (and the
    # commit marker) above, behind p2's open transaction.
    assert read(broker, "inter", "read_committed") == [b"before", b"p1-a"]
    p2.abort_transaction(30)
    end = committed_end(broker, "inter")
    assert end == 6, "everything is decided: 4 records and 2 markers"
    assert read(broker, "inter", "read_committed", expect=3) == [b"before", b"p1-a", b"p1-b"]


def test_zombie_is_fenced(broker):
    create(broker, "zombie")
    old = txn_producer(broker, "zombie-app")
    old.begin_transaction()
    old.produce("zombie", value=b"from-zombie", partition=0)
    assert old.flush(30) == 0
    new = txn_producer(broker, "zombie-app")   # fences `old`, aborts its transaction
    new.begin_transaction()
    new.produce("zombie", value=b"from-new", partition=0)
    new.commit_transaction(30)
    with pytest.raises(KafkaException) as e:
        old.produce("zombie", value=b"late", partition=0)
        old.commit_transaction(30)
    err = e.value.args[0]
    assert err.fatal() or err.code() in (KafkaError._FENCED, KafkaError.PRODUCER_FENCED,
                                         KafkaError.INVALID_PRODUCER_EPOCH), err
    assert read(broker, "zombie", "read_committed", expect=1) == [b"from-new"]


def test_transaction_timeouts_are_validated_and_enforced(broker_factory):
    broker = broker_factory({"transaction.max.timeout.ms": "60000"})
    create(broker, "slow")
    with pytest.raises(KafkaException) as e:
        txn_producer(broker, "too-long", **{"transaction.timeout.ms": 120000})
    assert e.value.args[0].code() == KafkaError.INVALID_TRANSACTION_TIMEOUT
    p = txn_producer(broker, "stuck", **{"transaction.timeout.ms": 2000})
    group = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "stuck-group"})
    p.begin_transaction()
    p.produce("slow", value=b"never-committed", partition=0)
    p.send_offsets_to_transaction([TopicPartition("slow", 0, 7)], group.consumer_group_metadata(), 30)
    assert p.flush(30) == 0
    assert committed_end(broker, "slow") == 0
    # The coordinator aborts it after 2 s; readers are unblocked past the abort marker.
    wait_until(lambda: committed_end(broker, "slow") == 2, 30, "the stuck transaction to be aborted")
    with pytest.raises(KafkaException):
        p.commit_transaction(30)
    assert read(broker, "slow", "read_committed") == []
    # Its offsets were dropped, not left pending: a stable-offset reader is not stuck.
    reader = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "stuck-group",
                       "isolation.level": "read_committed"})
    assert reader.committed([TopicPartition("slow", 0)], timeout=10)[0].offset < 0
    reader.close()
    group.close()


def test_broker_crash_mid_transaction(broker_factory):
    broker = broker_factory({"transaction.max.timeout.ms": "60000"})
    create(broker, "crash")
    # 1. The broker dies with a transaction open; the producer commits after the restart.
    p = txn_producer(broker, "survivor", **{"transaction.timeout.ms": 60000, "reconnect.backoff.ms": 50})
    p.begin_transaction()
    for i in range(100):
        p.produce("crash", value=b"s%d" % i, partition=0)
    assert p.flush(30) == 0
    broker.kill9()
    broker.start()
    p.commit_transaction(60)
    # 2. Another transaction is open when the broker dies, and its producer is gone too:
    # after the restart it is aborted when it times out, never half-visible.
    z = txn_producer(broker, "orphan", **{"transaction.timeout.ms": 3000})
    z.begin_transaction()
    for i in range(50):
        z.produce("crash", value=b"o%d" % i, partition=0)
    assert z.flush(30) == 0
    broker.kill9()
    broker.start()
    wait_until(lambda: committed_end(broker, "crash") == 152, 30, "the orphan transaction to be aborted")
    assert read(broker, "crash", "read_committed", expect=100) == [b"s%d" % i for i in range(100)]


def test_consume_transform_produce_exactly_once_across_kill_9(broker):
    create(broker, "input", "output")
    total = 100_000
    p = Producer({"bootstrap.servers": broker.bootstrap, "linger.ms": 20, "batch.num.messages": 10000})
    for i in range(total):
        while True:
            try:
                p.produce("input", value=b"%d" % i, partition=0)
                break
            except BufferError:
                p.poll(0.05)
    assert p.flush(60) == 0
    cmd = [sys.executable, str(HERE / "txn_processor.py"), broker.bootstrap, str(total), "500"]
    first = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    # Let it commit a good part, then kill it mid-stream (its current transaction is
    # open or being committed).
    progress = [0]

    def advanced():
        ready, _, _ = select.select([first.stdout], [], [], 0.5)
        if ready:
            line = first.stdout.readline()
            assert line, "the processor exited early"
            if line.startswith("committed"):
                progress[0] = int(line.split()[1])
        return progress[0] >= total // 3

    wait_until(advanced, 120, "a third of the input processed")
    first.kill()
    first.wait(10)
    second = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert second.returncode == 0, second.stderr[-2000:]
    assert "finished" in second.stdout
    out = read(broker, "output", "read_committed", expect=total)
    assert len(out) == total, f"{len(out)} results"
    assert sorted(int(v[4:]) for v in out) == list(range(total)), "each input's result exactly once"


def test_kafka_python_transactions_and_read_committed(broker):
    from kafka import KafkaConsumer, KafkaProducer, TopicPartition as KTP

    create(broker, "kp-txn")
    p = KafkaProducer(bootstrap_servers=broker.bootstrap, transactional_id="kp-1")
    p.init_transactions()
    p.begin_transaction()
    for i in range(5):
        p.send("kp-txn", value=b"k%d" % i, partition=0)
    p.commit_transaction()
    p.begin_transaction()
    for i in range(5):
        p.send("kp-txn", value=b"x%d" % i, partition=0)
    p.flush()
    p.abort_transaction()
    p.close()
    c = KafkaConsumer(bootstrap_servers=broker.bootstrap, isolation_level="read_committed",
                      enable_auto_commit=False, consumer_timeout_ms=3000)
    tp = KTP("kp-txn", 0)
    c.assign([tp])
    c.seek_to_beginning(tp)
    got = [m.value for m in c]
    assert got == [b"k%d" % i for i in range(5)]
    assert c.end_offsets([tp])[tp] == 12
    c.close()


def test_kafka_python_send_offsets_to_transaction(broker):
    """kafka-python's AddOffsetsToTxn/TxnOffsetCommit: the group's offset moves only
    when the transaction commits."""
    from kafka import KafkaConsumer, KafkaProducer, TopicPartition as KTP
    from kafka.structs import OffsetAndMetadata

    create(broker, "kp-in", "kp-out")
    tp = KTP("kp-in", 0)

    def committed():
        c = KafkaConsumer(bootstrap_servers=broker.bootstrap, group_id="kp-group",
                          enable_auto_commit=False, isolation_level="read_committed")
        got = c.committed(tp)
        c.close()
        return got

    p = KafkaProducer(bootstrap_servers=broker.bootstrap, transactional_id="kp-offsets")
    p.init_transactions()
    p.begin_transaction()
    p.send("kp-out", value=b"r1", partition=0)
    p.send_offsets_to_transaction({tp: OffsetAndMetadata(10, "", -1)}, "kp-group")
    p.abort_transaction()
    assert committed() is None, "an aborted transaction commits no offset"
    p.begin_transaction()
    p.send("kp-out", value=b"r2", partition=0)
    p.send_offsets_to_transaction({tp: OffsetAndMetadata(20, "", -1)}, "kp-group")
    p.commit_transaction()
    p.close()
    assert committed() == 20


def test_crash_between_prepare_and_markers_completes_after_restart(broker_factory, monkeypatch):
    """The broker dies right after storing PrepareCommit, before any marker (a fault
    hook, GREGOR_CRASH_AT, aborts the process there). After the restart the coordinator
    finds the prepared transaction and finishes it: every record and the offsets sent
    with it become visible together."""
    monkeypatch.setenv("GREGOR_CRASH_AT", "txn-after-prepare")
    broker = broker_factory()
    monkeypatch.delenv("GREGOR_CRASH_AT")
    create(broker, "prep", "prep-in")
    p = txn_producer(broker, "prepared", **{"reconnect.backoff.ms": 50})
    group = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "prep-group"})
    p.begin_transaction()
    for i in range(100):
        p.produce("prep", value=b"p%d" % i, partition=0)
    p.send_offsets_to_transaction([TopicPartition("prep-in", 0, 42)], group.consumer_group_metadata(), 30)
    assert p.flush(30) == 0
    with pytest.raises(KafkaException):
        p.commit_transaction(5)
    broker.proc.wait(30)
    assert broker.proc.returncode != 0, "the fault hook crashed the broker"
    broker.start()
    wait_until(lambda: committed_end(broker, "prep") == 101, 30, "the prepared transaction's markers")
    assert read(broker, "prep", "read_committed", expect=100) == [b"p%d" % i for i in range(100)]
    c = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "prep-group",
                  "isolation.level": "read_committed"})
    got = c.committed([TopicPartition("prep-in", 0)], timeout=10)[0].offset
    c.close()
    assert got == 42, "the offsets committed with the transaction"
    group.close()


def test_gregor_txn_cli_shows_what_holds_the_lso(broker):
    """`gregor txn` (list, describe, producers) on a transaction librdkafka left open."""
    import json

    from conftest import BIN

    def cli(*args):
        out = subprocess.run([BIN, *args, "-b", broker.bootstrap, "--output", "json"],
                             capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stderr
        return json.loads(out.stdout)

    create(broker, "held")
    plain = Producer({"bootstrap.servers": broker.bootstrap})
    plain.produce("held", value=b"x", partition=0)
    plain.flush(30)
    p = txn_producer(broker, "holder")
    p.begin_transaction()
    p.produce("held", value=b"open", partition=0)
    assert p.flush(30) == 0
    listed = cli("txn", "list", "--state", "Ongoing")
    assert [t["transactional_id"] for t in listed] == ["holder"]
    (d,) = cli("txn", "describe", "holder")
    assert d["state"] == "Ongoing" and d["partitions"] == ["held-0"]
    producers = cli("txn", "producers", "held")
    holding = [x for x in producers if x["current_txn_start_offset"] >= 0]
    assert [(x["producer_id"], x["current_txn_start_offset"]) for x in holding] == [(d["producer_id"], 1)]
    p.commit_transaction(30)
    (d,) = cli("txn", "describe", "holder")
    assert d["state"] == "CompleteCommit" and d["partitions"] == []
    assert all(x["current_txn_start_offset"] == -1 for x in cli("txn", "producers", "held"))


def test_concurrent_producers_random_commits_and_aborts(broker):
    """Four transactional producers on the same three partitions, each running 40
    transactions that commit or abort at random (seeded), concurrently. read_committed
    sees exactly the committed records, each once and in each producer's order per
    partition; read_uncommitted sees everything."""
    import random
    import threading

    a = AdminClient({"bootstrap.servers": broker.bootstrap})
    a.create_topics([NewTopic("mix", 3, 1)])["mix"].result(30)
    committed, everything = set(), set()
    lock = threading.Lock()
    failures = []

    def run(n):
        rng = random.Random(n)
        try:
            p = txn_producer(broker, f"mix-{n}")
            for t in range(40):
                p.begin_transaction()
                values = [b"%d-%d-%d" % (n, t, i) for i in range(rng.randint(1, 30))]
                for i, v in enumerate(values):
                    p.produce("mix", value=v, partition=(i + t) % 3)
                commit = rng.random() < 0.6
                if commit:
                    p.commit_transaction(30)
                else:
                    assert p.flush(30) == 0  # written, then aborted
                    p.abort_transaction(30)
                with lock:
                    everything.update(values)
                    if commit:
                        committed.update(values)
        except Exception as e:  # noqa: BLE001 - reported below
            failures.append(e)

    threads = [threading.Thread(target=run, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    assert not failures, failures[:1]

    def read_all(isolation, expect):
        c = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": f"mix-{isolation}",
                      "isolation.level": isolation, "enable.auto.commit": False})
        c.assign([TopicPartition("mix", p, 0) for p in range(3)])
        got = []

        def more():
            got.extend((m.partition(), m.value()) for m in c.consume(1000, timeout=0.2) if not m.error())
            return len(got) >= expect
        wait_until(more, 60, f"{expect} records at {isolation}")
        got.extend((m.partition(), m.value()) for m in c.consume(1000, timeout=1.0) if not m.error())
        c.close()
        return got

    seen = read_all("read_committed", len(committed))
    values = [v for _, v in seen]
    assert len(values) == len(set(values)) == len(committed)
    assert set(values) == committed, "no aborted record leaks, no committed one is missing"
    # Per producer and partition, records arrive in the order they were produced.
    for part in range(3):
        for n in range(4):
            mine = [v for p, v in seen if p == part and v.startswith(b"%d-" % n)]
            keys = [tuple(int(x) for x in v.split(b"-")[1:]) for v in mine]
            assert keys == sorted(keys)
    assert {v for _, v in read_all("read_uncommitted", len(everything))} == everything


def test_compaction_of_a_transactional_topic(broker_factory):
    """A compacted topic written by a transactional producer: after the cleaner runs,
    read_committed sees the newest committed value of each key (an aborted write never
    shadows it), and aborted records are gone even for read_uncommitted readers."""
    from test_admin import checkpoint, roll_with_sentinel
    from test_admin import create as create_with_config

    broker = broker_factory({"log.cleaner.backoff.ms": "100"})
    create_with_config(broker, "txc", config={
        "cleanup.policy": "compact", "segment.bytes": "16384", "segment.ms": "500",
        "min.cleanable.dirty.ratio": "0.01", "delete.retention.ms": "0", "file.delete.delay.ms": "0",
    })
    p = txn_producer(broker, "compacting")
    keys = [b"k%d" % i for i in range(20)]
    latest = {}
    for t in range(30):
        p.begin_transaction()
        for k in keys:
            p.produce("txc", key=k, value=b"t%d" % t, partition=0)
        if t % 3 == 1:
            assert p.flush(30) == 0
            p.abort_transaction(30)
        else:
            p.commit_transaction(30)
            latest.update({k: b"t%d" % t for k in keys})
    # The very last writes of every key are aborted.
    p.begin_transaction()
    for k in keys:
        p.produce("txc", key=k, value=b"aborted-last", partition=0)
    assert p.flush(30) == 0
    p.abort_transaction(30)
    sentinel = roll_with_sentinel(broker, "txc")
    wait_until(lambda: checkpoint(broker, "txc") >= sentinel, 60, "the cleaner to reach the sentinel")

    def values(isolation):
        c = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": f"txc-{isolation}",
                      "isolation.level": isolation, "enable.partition.eof": True})
        c.assign([TopicPartition("txc", 0, 0)])
        out, done = [], []

        def more():
            for m in c.consume(1000, timeout=0.2):
                if m.error():
                    done.append(m.error().code() == KafkaError._PARTITION_EOF)
                elif m.key() != b"sentinel":
                    out.append((m.key(), m.value()))
            return bool(done)

        wait_until(more, 60, f"txc read to the end at {isolation}")
        c.close()
        return out

    committed = values("read_committed")
    assert dict(committed) == latest, "the newest committed value of every key"
    assert len(committed) == len(keys), "each key once"
    uncommitted = values("read_uncommitted")
    assert not [v for _, v in uncommitted if v == b"aborted-last" or int(v[1:]) % 3 == 1], \
        "aborted records are gone from the cleaned log"


def test_kafka_python_admin_lists_and_describes_transactions(broker):
    """kafka-python's admin client (its own protocol code) on ListTransactions,
    DescribeTransactions and DescribeProducers while librdkafka holds a transaction open."""
    from kafka import TopicPartition as KTP
    from kafka.admin import KafkaAdminClient

    create(broker, "admin-txn")
    p = txn_producer(broker, "admin-open")
    p.begin_transaction()
    p.produce("admin-txn", value=b"open", partition=0)
    assert p.flush(30) == 0
    admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap)
    listed = [t for ts in admin.list_transactions(state_filters=["Ongoing"]).values() for t in ts]
    assert [t.transactional_id for t in listed] == ["admin-open"], listed
    described = admin.describe_transactions(["admin-open"])["admin-open"]
    assert "ONGOING" in str(described.state).upper(), described
    assert described.topic_partitions == {KTP("admin-txn", 0)}
    state = admin.describe_producers([KTP("admin-txn", 0)])[KTP("admin-txn", 0)]
    starts = [s.current_transaction_start_offset for s in state.active_producers]
    assert starts == [0], state
    p.commit_transaction(30)
    state = admin.describe_producers([KTP("admin-txn", 0)])[KTP("admin-txn", 0)]
    assert [s.current_transaction_start_offset for s in state.active_producers] == [-1]
    assert not [t for ts in admin.list_transactions(state_filters=["Ongoing"]).values() for t in ts]
    admin.close()
