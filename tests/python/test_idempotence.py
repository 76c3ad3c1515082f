"""Idempotent producers (InitProducerId, sequence checks) with librdkafka and
kafka-python: retries after a broker crash neither duplicate nor reorder."""
import socket
import threading

from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from conftest import wait_until


def send(p, topic, value, cb):
    """Produces to partition 0, waiting out a full local queue."""
    while True:
        try:
            p.produce(topic, value=value, partition=0, on_delivery=cb)
            break
        except BufferError:
            p.poll(0.05)
    p.poll(0)


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
        send(p, "idem", b"%d" % i, cb)
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



class DroppingProxy:
    """A TCP proxy on `listen_port` in front of the broker (which advertises the proxy's
    address) that can cut every open connection at once: the client sees requests
    vanish mid-flight."""

    def __init__(self, listen_port, target_port):
        self.target = ("127.0.0.1", target_port)
        self.listener = socket.socket()
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", listen_port))
        self.listener.listen(64)
        self.conns = []
        self.lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            with self.lock:
                self.conns += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(src, dst):
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                dst.sendall(data)
        except OSError:
            pass
        for s in (src, dst):
            try:
                s.close()
            except OSError:
                pass

    def drop_all(self):
        with self.lock:
            conns, self.conns = self.conns, []
        for s in conns:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        return len(conns)

    def close(self):
        self.listener.close()
        self.drop_all()


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def test_idempotent_producer_survives_dropped_connections_and_a_restart(broker_factory):
    proxy_port = free_port()
    broker = broker_factory({"advertised.listeners": f"PLAINTEXT://127.0.0.1:{proxy_port}"})
    proxy = DroppingProxy(proxy_port, broker.port)
    via = type("Via", (), {"bootstrap": f"127.0.0.1:{proxy_port}"})()
    a = AdminClient({"bootstrap.servers": via.bootstrap})
    a.create_topics([NewTopic("drops", 1, 1)])["drops"].result(30)
    p = Producer({
        "bootstrap.servers": via.bootstrap,
        "enable.idempotence": True,
        "linger.ms": 2,
        "message.timeout.ms": 120000,
        "reconnect.backoff.ms": 20,
        "reconnect.backoff.max.ms": 100,
    })
    acked = [0]
    errors = []

    def cb(err, msg):
        if err is not None:
            errors.append(err)
        else:
            acked[0] += 1

    n = 60_000
    drops = 0
    for i in range(n):
        send(p, "drops", b"%d" % i, cb)
        if i % 5_000 == 2_500:
            # Cut every connection with requests in flight.
            drops += proxy.drop_all()
        if i == n // 2:
            # Once, kill -9 the broker behind the proxy and start it on the same port.
            broker.kill9()
            broker.start()
            proxy.drop_all()
    assert p.flush(120) == 0
    assert errors == [], errors[:3]
    assert drops > 0, "connections were cut"
    values = read_values(via, "drops", n)
    proxy.close()
    assert values == list(range(n)), "no duplicates, no gaps, original order"
