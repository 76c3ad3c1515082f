"""Many partitions under a low descriptor limit: the broker keeps at most
`log.max.open.files` segment files open (a shared LRU), so 3,000 partitions (9,000
segment files) serve under `ulimit -n 1024`, before and after a `kill -9`.

Without the budget every partition holds three descriptors and the logs past the
limit go offline with "Too many open files"."""
import os
import resource

from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from conftest import Broker, wait_until

TOPICS = 3
PARTITIONS = 1000
NOFILE = 1024
BUDGET = 300


def limit_fds():
    resource.setrlimit(resource.RLIMIT_NOFILE, (NOFILE, NOFILE))


def open_fds(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


def names():
    return [f"many-{t}" for t in range(TOPICS)]


def produce_one_each(bootstrap):
    p = Producer({"bootstrap.servers": bootstrap, "linger.ms": 50, "acks": "all"})
    failures = []

    def report(err, _msg):
        if err is not None:
            failures.append(err)

    for name in names():
        for part in range(PARTITIONS):
            p.produce(name, value=f"{name}/{part}".encode(), partition=part, on_delivery=report)
            p.poll(0)
    assert p.flush(60) == 0, "undelivered records"
    assert not failures, failures[:5]


def read_all(bootstrap):
    """Reads every partition from the start; returns {(topic, partition): value}."""
    c = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": "unused",
            "enable.auto.commit": False,
            "fetch.wait.max.ms": 100,
        }
    )
    c.assign([TopicPartition(n, p, 0) for n in names() for p in range(PARTITIONS)])
    seen = {}

    def got_all():
        for m in c.consume(1000, 0.5):
            assert m.error() is None, m.error()
            seen[(m.topic(), m.partition())] = m.value()
        return len(seen) == TOPICS * PARTITIONS

    try:
        wait_until(got_all, timeout=60, what="a record from every partition")
    finally:
        c.close()
    return seen


def test_3000_partitions_under_ulimit_1024_with_kill9(tmp_path):
    b = Broker(
        tmp_path / "data",
        tmp_path / "broker.log",
        {"log.max.open.files": BUDGET, "auto.create.topics.enable": "false"},
        preexec_fn=limit_fds,
    ).start()
    try:
        admin = AdminClient({"bootstrap.servers": b.bootstrap})
        for name, fut in admin.create_topics(
            [NewTopic(n, PARTITIONS, 1) for n in names()], operation_timeout=60
        ).items():
            fut.result(90)
        produce_one_each(b.bootstrap)
        expected = {(n, p): f"{n}/{p}".encode() for n in names() for p in range(PARTITIONS)}
        assert read_all(b.bootstrap) == expected
        fds = open_fds(b.proc.pid)
        assert fds < BUDGET + 200, f"{fds} descriptors open"

        b.kill9()
        b.start(timeout=60)
        assert read_all(b.bootstrap) == expected
        fds = open_fds(b.proc.pid)
        assert fds < BUDGET + 200, f"{fds} descriptors open after the restart"
        log = (tmp_path / "broker.log").read_text()
        # Every record came back, the descriptors stayed within the budget, and nothing
        # ran out of them (a fetch over thousands of partitions once held a segment
        # file open per partition until its answer was sent; it now pins at most 64).
        assert "Too many open files" not in log
        assert "partition offline" not in log
        assert "cannot be opened" not in log
    finally:
        b.kill9()
