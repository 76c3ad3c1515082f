"""Idempotent producers (InitProducerId, sequence checks) with librdkafka and
kafka-python: retries after a broker crash neither duplicate nor reorder."""
import threading

from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from conftest import wait_until


def read_values(broker, topic, expected):
    c = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "check", "enable.auto.commit": False})
    c.assign([TopicPartition(topic, 0, 0)])
    out = []

    def more():
        for m in c.consume(1000, timeout=0.2):
            if not m.error():
                out.append(int(m.value()))
        return len(out) >= expected

    wait_until(more, 60, f"{expected} records")
    # Nothing beyond: read once more briefly.
    for m in c.consume(1000, timeout=0.5):
        if not m.error():
            out.append(int(m.value()))
    c.close()
    return out


def test_idempotent_producer_survives_broker_kill_without_duplicates(broker):
    a = AdminClient({"bootstrap.servers": broker.bootstrap})
    a.create_topics([NewTopic("idem", 1, 1)])["idem"].result(30)
    p = Producer({
        "bootstrap.servers": broker.bootstrap,
        "enable.idempotence": True,
        "linger.ms": 2,
        "message.timeout.ms": 120000,
        "reconnect.backoff.ms": 50,
        "reconnect.backoff.max.ms": 200,
    })
    errors = []
    acked = [0]
    lock = threading.Lock()

    def cb(err, msg):
        with lock:
            if err is not None:
                errors.append(err)
            else:
                acked[0] += 1

    n = 60_000
    killed = False
    for i in range(n):
        while True:
            try:
                p.produce("idem", value=b"%d" % i, partition=0, on_delivery=cb)
                break
            except BufferError:
                p.poll(0.05)
        p.poll(0)
        if not killed and i == n // 2:
            # Crash the broker with batches in flight, then bring it back on its port.
            wait_until(lambda: (p.poll(0), acked[0] > 1000)[1], 30, "some acks before the crash")
            broker.kill9()
            broker.start()
            killed = True
    assert p.flush(120) == 0
    assert errors == [], errors[:3]
    values = read_values(broker, "idem", n)
    assert values == list(range(n)), "no duplicates, no gaps, original order"


def test_kafka_python_default_idempotent_producer(broker):
    """kafka-python's default producer is idempotent (InitProducerId + sequences)."""
    from kafka import KafkaProducer

    a = AdminClient({"bootstrap.servers": broker.bootstrap})
    a.create_topics([NewTopic("kpi", 1, 1)])["kpi"].result(30)
    p = KafkaProducer(bootstrap_servers=broker.bootstrap, acks="all", enable_idempotence=True, linger_ms=1)
    futures = [p.send("kpi", value=b"%d" % i) for i in range(2000)]
    p.flush(30)
    assert [f.get(timeout=30).offset for f in futures] == list(range(2000))
    p.close()
    assert read_values(broker, "kpi", 2000) == list(range(2000))
