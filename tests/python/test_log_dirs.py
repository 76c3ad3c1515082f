"""Several log directories per broker (log.dirs=a,b; Kafka's JBOD): a directory whose
disk fails goes offline while the broker and its other directory keep serving.

The failing directory is a small ext4 file system on a loop device; `mount -o
remount,abort` aborts it as a disk error does (ext4 then answers every write with
EROFS, open files included, which a plain `remount,ro` refuses while files are open for
writing). Mounting needs root (the test command runs as root)."""
import os
import subprocess

import pytest
from confluent_kafka import KafkaError, Producer
from confluent_kafka.admin import AdminClient, NewTopic
from kafka import KafkaAdminClient

from checker import ACKED, ConfluentProducer, History, check, read_log
from cluster import Cluster
from conftest import Broker, wait_until

STORAGE_ERROR = 56


@pytest.fixture
def failing_disk(tmp_path):
    """A 64 MiB ext4 file system mounted at tmp_path/disk; unmounted at the end even if
    the test failed (callers stop their brokers first)."""
    if os.geteuid() != 0:
        pytest.skip("mounting a loop file system needs root (the test command runs as root)")
    image, mnt = tmp_path / "disk.img", tmp_path / "disk"
    mnt.mkdir()
    with open(image, "wb") as f:
        f.truncate(64 << 20)
    subprocess.run(["mkfs.ext4", "-q", "-F", str(image)], check=True, capture_output=True)
    r = subprocess.run(["mount", "-o", "loop", str(image), str(mnt)], capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a loop device here: {r.stderr.strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def fail_disk(mnt):
    subprocess.run(["mount", "-o", "remount,abort", str(mnt)], check=True)


def repair_disk(mnt):
    """The disk repaired: the aborted file system unmounted, its image copied and
    checked (a copy, since another mount namespace on the machine may still hold the
    aborted superblock alive) and mounted again. Its broker must be stopped."""
    subprocess.run(["umount", str(mnt)], check=True)
    fixed = mnt.parent / "disk-repaired.img"
    subprocess.run(["cp", "--sparse=always", str(mnt.parent / "disk.img"), str(fixed)], check=True)
    r = subprocess.run(["e2fsck", "-fy", str(fixed)], capture_output=True, text=True)
    assert r.returncode in (0, 1), r.stdout + r.stderr
    subprocess.run(["mount", "-o", "loop", str(fixed), str(mnt)], check=True)


def partitions_in(dir_path, topic):
    return sorted(int(n.rsplit("-", 1)[1]) for n in os.listdir(dir_path) if n.rsplit("-", 1)[0] == topic)


def log_dirs_of(bootstrap, broker_id):
    """{path: (error code, total bytes, {(topic, partition): size})} from kafka-python's
    DescribeLogDirs to one broker."""
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=10000)
    try:
        answer = admin.describe_log_dirs(brokers=[broker_id])
    finally:
        admin.close()
    out = {}
    for broker_answer in answer:
        for r in broker_answer["log_dirs"]:
            sizes = {(t["name"], p["partition_index"]): p["partition_size"]
                     for t in r["topics"] for p in t["partitions"]}
            out[r["log_dir"]] = (r["error_code"], r.get("total_bytes", -1), sizes)
    return out


def test_failed_dir_goes_offline_others_serve_and_nothing_acked_is_lost(tmp_path, failing_disk):
    topic, partitions = "jbod", 6
    root = tmp_path / "cluster"
    cluster = Cluster(root, controllers=3, node_overrides={
        1: {"log.dirs": f"{root / 'node-1'},{failing_disk}"},
    })
    try:
        cluster.start()
        admin = AdminClient({"bootstrap.servers": cluster.bootstrap})
        admin.create_topics([NewTopic(topic, partitions, 3, config={"min.insync.replicas": "2"})])[topic].result(30)

        def layout():
            try:
                md = AdminClient({"bootstrap.servers": cluster.bootstrap, "log_level": 3}).list_topics(topic, timeout=5)
            except Exception:
                return None
            t = md.topics.get(topic)
            if t is None or t.error is not None or len(t.partitions) != partitions:
                return None
            return {p.id: (p.leader, sorted(p.isrs)) for p in t.partitions.values()}

        wait_until(lambda: (l := layout()) and all(len(isr) == 3 and leader > 0 for leader, isr in l.values()),
                   60, "every partition led, full ISR")
        bad = partitions_in(failing_disk, topic)
        good = partitions_in(root / "node-1", topic)
        assert bad and good, f"node 1's replicas spread over both dirs: {bad} / {good}"
        assert sorted(bad + good) == list(range(partitions))

        history = History()
        producers = [ConfluentProducer(history, cluster.bootstrap, topic, i, partitions, rate=150) for i in range(2)]
        for p in producers:
            p.start()
        try:
            wait_until(lambda: history.count(ACKED) >= 200, 45, "acks before the failure")
            fail_disk(failing_disk)

            def moved():
                l = layout()
                return l and all(l[p][0] not in (1, -1) and 1 not in l[p][1] for p in bad) \
                    and all(1 in l[p][1] for p in good) and l
            after = wait_until(moved, 60, "the failed dir's partitions moved off node 1")
            assert cluster.node(1).alive(), "the broker stays up"
            # Production goes on, on every partition (the good dir's too).
            target = history.count(ACKED) + 300
            wait_until(lambda: history.count(ACKED) >= target, 60, "acks after the failure")

            dirs = log_dirs_of(cluster.node(1).bootstrap, 1)
            failed = [v for k, v in dirs.items() if os.path.realpath(k) == os.path.realpath(failing_disk)]
            served = [v for k, v in dirs.items() if os.path.realpath(k) == os.path.realpath(root / "node-1")]
            assert failed and failed[0][0] == STORAGE_ERROR, dirs
            assert served and served[0][0] == 0 and served[0][1] > 0, dirs
            assert {(topic, p) for p in good} <= set(served[0][2]), dirs
            assert any(served[0][2][(topic, p)] > 0 for p in good), dirs

            # Metadata lists node 1 as an offline replica of the failed dir's partitions.
            ka = KafkaAdminClient(bootstrap_servers=cluster.node(2).bootstrap)
            try:
                described = ka.describe_topics([topic])
            finally:
                ka.close()
            offline = {p["partition_index"]: p["offline_replicas"] for p in described[0]["partitions"]}
            assert all(1 in offline[p] for p in bad), offline
            assert all(1 not in offline[p] for p in good), offline
        finally:
            for p in producers:
                p.stop(flush_timeout=60)
            for p in producers:
                p.join(90)
        for p in producers:
            assert p.exception is None, repr(p.exception)
        report = check(history, read_log(cluster.bootstrap, topic, partitions, timeout=60))
        print(report.summary(), "layout after the failure:", after)
        assert report.ok, report
        assert report.acked >= 500, report
        fatal = [e for e in history.errors if e[4] or not e[3]]
        assert not fatal, fatal[:5]

        # The disk replaced, the broker restarted: its replicas come back and rejoin the ISR.
        cluster.node(1).kill9()
        repair_disk(failing_disk)
        cluster.node(1).restart()
        wait_until(lambda: (l := layout()) and all(len(isr) == 3 for _, isr in l.values()),
                   60, "node 1 back in every ISR")
        assert partitions_in(failing_disk, topic) == bad
    finally:
        cluster.kill_all()


def test_single_node_failed_dir_answers_storage_error_other_dir_serves(tmp_path, failing_disk):
    topic = "single"
    broker = Broker(tmp_path / "data", tmp_path / "broker.log",
                    {"log.dirs": f"{tmp_path / 'data'},{failing_disk}"})
    broker.start()
    try:
        admin = AdminClient({"bootstrap.servers": broker.bootstrap})
        admin.create_topics([NewTopic(topic, 2, 1)])[topic].result(30)
        bad = partitions_in(failing_disk, topic)
        good = partitions_in(tmp_path / "data", topic)
        assert len(bad) == 1 and len(good) == 1, (bad, good)

        def produce(partition, n, timeout_ms):
            p = Producer({"bootstrap.servers": broker.bootstrap, "message.timeout.ms": timeout_ms,
                          "retries": 0, "linger.ms": 0, "log_level": 3})
            outcomes = []
            for i in range(n):
                p.produce(topic, value=b"v%d" % i, partition=partition,
                          on_delivery=lambda err, msg: outcomes.append(err))
            p.flush(30)
            return outcomes

        assert produce(bad[0], 5, 10000) == [None] * 5
        fail_disk(failing_disk)
        errors = produce(bad[0], 3, 3000)
        codes = {e.code() for e in errors if e is not None}
        assert len(errors) == 3 and None not in errors, errors
        # The first answer is KAFKA_STORAGE_ERROR; once the controller has moved the
        # partition off the broker's failed dir it has no leader and sends time out.
        assert KafkaError.KAFKA_STORAGE_ERROR in codes, errors
        assert codes <= {KafkaError.KAFKA_STORAGE_ERROR, KafkaError._MSG_TIMED_OUT,
                         KafkaError.LEADER_NOT_AVAILABLE, KafkaError.NOT_LEADER_FOR_PARTITION}, errors
        assert produce(good[0], 5, 10000) == [None] * 5, "the other dir keeps serving"
        assert broker.proc.poll() is None, "the broker stays up"

        def dir_states():
            dirs = log_dirs_of(broker.bootstrap, 1)
            return {os.path.realpath(k): v[0] for k, v in dirs.items()}
        states = wait_until(lambda: (s := dir_states()).get(os.path.realpath(failing_disk)) == STORAGE_ERROR and s,
                            30, "the failed dir reported offline")
        assert states[os.path.realpath(tmp_path / "data")] == 0, states
    finally:
        broker.kill9()
