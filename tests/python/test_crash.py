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
