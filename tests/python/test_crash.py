"""kill -9 while producing with acks=all: every acknowledged record is there after
restart, in order, and no partial batch is served."""
import threading

import pytest
from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from conftest import wait_until


@pytest.mark.parametrize("config", [{}, {"flush.messages": "1"}], ids=["page-cache", "fsync-each-batch"])
def test_acked_records_survive_kill_9(broker, config):
    topic = "crash"
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    admin.create_topics([NewTopic(topic, 1, 1, config=config)])[topic].result(30)
    acked = []
    lock = threading.Lock()

    def on_delivery(err, msg):
        if err is None:
            with lock:
                acked.append(int(msg.value()))

    p = Producer({"bootstrap.servers": broker.bootstrap, "acks": "all", "linger.ms": 2, "message.timeout.ms": 5000, "retries": 0})
    sent = 0
    # Keep producing until well past the point of the kill.
    for i in range(200_000):
        try:
            p.produce(topic, value=b"%d" % i, on_delivery=on_delivery)
            sent += 1
        except BufferError:
            p.poll(0.05)
        p.poll(0)
        if i == 50_000:
            wait_until(lambda: p.poll(0.05) >= 0 and len(acked) > 20_000, 30, "acks before the kill")
            broker.kill9()
    p.flush(30)
    assert len(acked) > 20_000
    broker.start()

    c = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "x", "enable.auto.commit": False, "enable.partition.eof": True})
    c.assign([TopicPartition(topic, 0, 0)])
    values = []
    done = []

    def more():
        for m in c.consume(1000, timeout=0.5):
            if m.error() is None:
                values.append(int(m.value()))
            elif m.error().code() == KafkaError._PARTITION_EOF:
                done.append(True)
        return done

    wait_until(more, 60, "end of the recovered log")
    # Order is kept, with no gap and no duplicate; every acknowledged record is present.
    assert values == list(range(len(values)))
    assert len(values) == len(set(values))
    missing = set(acked) - set(values)
    assert not missing, f"{len(missing)} acknowledged records lost"


def test_a_partition_whose_log_cannot_open_is_offline_and_the_rest_serve(broker):
    """A damaged partition directory no longer stops the broker: that partition is
    offline (LEADER_NOT_AVAILABLE in Metadata, KAFKA_STORAGE_ERROR on requests), every
    other partition serves, and the partition returns once its directory is repaired."""
    import json
    import os
    import subprocess

    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    for f in admin.create_topics([NewTopic("good", 1, 1), NewTopic("bad", 1, 1)]).values():
        f.result(30)
    p = Producer({"bootstrap.servers": broker.bootstrap})
    for t in ("good", "bad"):
        p.produce(t, value=b"before", partition=0)
    assert p.flush(30) == 0
    broker.stop()
    seg = broker.data_dir / "bad-0" / ("0" * 20 + ".log")
    os.rename(seg, str(seg) + ".saved")
    os.mkdir(seg)  # a directory where the segment file should be: the log cannot open
    broker.start()
    md = subprocess.run(["kcat", "-b", broker.bootstrap, "-L", "-J"], capture_output=True, timeout=60, check=True)
    topics = {t["topic"]: t for t in json.loads(md.stdout)["topics"]}
    assert topics["bad"]["partitions"][0]["leader"] == -1
    assert topics["good"]["partitions"][0]["leader"] >= 0
    # The healthy topic keeps working.
    p = Producer({"bootstrap.servers": broker.bootstrap, "message.timeout.ms": 3000})
    p.produce("good", value=b"after", partition=0)
    errors = []
    p.produce("bad", value=b"lost?", partition=0, on_delivery=lambda err, m: errors.append(err))
    p.flush(30)
    assert len(errors) == 1 and errors[0] is not None, "the offline partition refuses the write"
    c = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "off", "enable.partition.eof": True})
    c.assign([TopicPartition("good", 0, 0)])
    got = []
    wait_until(lambda: got.extend(m.value() for m in c.consume(10, timeout=0.2) if not m.error()) or len(got) >= 2,
               30, "the good topic's records")
    c.close()
    assert got == [b"before", b"after"]
    # Repaired: after a restart the partition serves its data again.
    broker.stop()
    os.rmdir(seg)
    os.rename(str(seg) + ".saved", seg)
    broker.start()
    c = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "off2"})
    c.assign([TopicPartition("bad", 0, 0)])
    got = []
    wait_until(lambda: got.extend(m.value() for m in c.consume(10, timeout=0.2) if not m.error()) or len(got) >= 1,
               30, "the repaired partition's record")
    c.close()
    assert got == [b"before"]
