"""A full disk: produce gets KAFKA_STORAGE_ERROR, nothing acknowledged is lost, the
broker keeps serving, recovers once space is freed, and stops and restarts cleanly.
The data directory is a 4 MiB tmpfs (the test command runs as root, which mounting
needs)."""
import os
import subprocess

import pytest
from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from conftest import Broker, wait_until


@pytest.fixture
def small_disk(tmp_path):
    mnt = tmp_path / "disk"
    mnt.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root (the test command runs as root)")
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mnt)], check=True)
    yield mnt
    subprocess.run(["umount", "-l", str(mnt)], check=False)


def produce(broker, topic, n, start=0):
    p = Producer({"bootstrap.servers": broker.bootstrap, "linger.ms": 5, "message.timeout.ms": 5000, "retries": 0})
    acked, errors = [], []

    def cb(err, msg):
        if err is None:
            acked.append(int(msg.value()[:8]))
        else:
            errors.append(err)

    for i in range(start, start + n):
        while True:
            try:
                p.produce(topic, value=b"%08d" % i + b"x" * 200, on_delivery=cb)
                break
            except BufferError:
                p.poll(0.05)
        p.poll(0)
    p.flush(30)
    return acked, errors


def read_all(broker, topic):
    c = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "r", "enable.partition.eof": True})
    c.assign([TopicPartition(topic, 0, 0)])
    got, done = [], []

    def more():
        for m in c.consume(1000, timeout=0.2):
            if m.error():
                done.append(m.error().code() == KafkaError._PARTITION_EOF)
            else:
                got.append(int(m.value()[:8]))
        return bool(done)

    wait_until(more, 30, "read to the end")
    c.close()
    return got


def test_full_disk_refuses_writes_loses_nothing_and_recovers(small_disk, tmp_path):
    # A ballast file the "operator" deletes later to free space.
    ballast = small_disk / "ballast"
    ballast.write_bytes(b"\0" * (1 << 20))
    broker = Broker(small_disk / "data", tmp_path / "broker.log").start()
    try:
        a = AdminClient({"bootstrap.servers": broker.bootstrap})
        a.create_topics([NewTopic("fill", 1, 1)])["fill"].result(30)
        acked, errors = produce(broker, "fill", 40_000)
        assert errors, "the disk filled up"
        assert all(e.code() == KafkaError.KAFKA_STORAGE_ERROR for e in errors), errors[:2]
        assert set(acked) <= set(read_all(broker, "fill")), "every acknowledged record is readable"
        assert "fill" in a.list_topics(timeout=10).topics, "the broker keeps serving"

        # Space comes back: producing works again, with no restart.
        ballast.unlink()
        more, errors2 = produce(broker, "fill", 500, start=100_000)
        assert len(more) == 500 and not errors2, errors2[:2]
        broker.stop()  # SIGTERM must still exit 0
        broker.start()
        assert set(acked + more) <= set(read_all(broker, "fill"))
    finally:
        broker.kill9()
