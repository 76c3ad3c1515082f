"""Share groups (KIP-932, queues) with librdkafka's ShareConsumer.

Every wait is a condition with a deadline; nothing sleeps to synchronise.
"""
import time
import uuid

import pytest
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic

ck = pytest.importorskip("confluent_kafka")
ShareConsumer = getattr(ck, "ShareConsumer", None)
if ShareConsumer is None:  # pragma: no cover
    pytest.skip("this confluent-kafka has no ShareConsumer", allow_module_level=True)
AcknowledgeType = ck.AcknowledgeType

BASE = {
    "share.auto.offset.reset": "earliest",
    "group.share.heartbeat.interval.ms": "500",
}


def create_topic(b, name, partitions=1):
    admin = AdminClient({"bootstrap.servers": b.bootstrap})
    for f in admin.create_topics([NewTopic(name, partitions, 1)]).values():
        f.result(30)


def produce(b, topic, n, prefix="m"):
    p = Producer({"bootstrap.servers": b.bootstrap, "linger.ms": 5})
    values = [f"{prefix}-{i}".encode() for i in range(n)]
    for v in values:
        p.produce(topic, v)
    assert p.flush(30) == 0
    return values


def consumer(b, group, topic, **extra):
    conf = {
        "bootstrap.servers": b.bootstrap,
        "group.id": group,
    }
    conf.update(extra)
    c = ShareConsumer(conf)
    c.subscribe([topic])
    return c


def poll_records(c, timeout=0.5):
    out = []
    for m in c.poll(timeout):
        if m.error() is None:
            out.append(m)
    return out


def drain_until(consumers, cond, timeout=60.0, what="records"):
    """Polls every consumer in turn until `cond(received)` holds; returns
    {index: [messages]}."""
    got = {i: [] for i in range(len(consumers))}
    deadline = time.monotonic() + timeout
    while not cond(got):
        if time.monotonic() > deadline:
            counts = {i: len(v) for i, v in got.items()}
            raise AssertionError(f"timed out waiting for {what}; got {counts}")
        for i, c in enumerate(consumers):
            got[i].extend(poll_records(c, 0.2))
    return got


def delivery_count(m):
    f = getattr(m, "delivery_count", None)
    return f() if callable(f) else f


def test_two_consumers_share_one_partition_exactly_once(broker_factory):
    b = broker_factory(BASE)
    topic, group = f"q-{uuid.uuid4().hex[:8]}", f"sg-{uuid.uuid4().hex[:8]}"
    create_topic(b, topic)
    sent = produce(b, topic, 300)
    cs = [consumer(b, group, topic, **{"max.poll.records": 7}) for _ in range(2)]
    try:
        got = drain_until(cs, lambda g: sum(len(v) for v in g.values()) >= len(sent))
        values = [m.value() for v in got.values() for m in v]
        assert sorted(values) == sorted(sent), "every record exactly once"
        assert len(set(values)) == len(values)
        assert all(len(v) > 0 for v in got.values()), {i: len(v) for i, v in got.items()}
        # Nothing more arrives: everything was accepted (implicitly, on the next poll).
        for c in cs:
            c.commit_sync(10)
        extra = [m for c in cs for m in poll_records(c, 1.0)]
        assert extra == []
    finally:
        for c in cs:
            c.close()


def test_release_redelivers_and_reject_does_not(broker_factory):
    b = broker_factory(BASE)
    topic, group = f"q-{uuid.uuid4().hex[:8]}", f"sg-{uuid.uuid4().hex[:8]}"
    create_topic(b, topic)
    produce(b, topic, 2, prefix="r")
    c = consumer(b, group, topic, **{"share.acknowledgement.mode": "explicit"})
    try:
        first = drain_until([c], lambda g: len(g[0]) >= 2)[0]
        by_value = {m.value(): m for m in first}
        assert set(by_value) == {b"r-0", b"r-1"}
        assert [delivery_count(m) for m in first] == [1, 1]
        c.acknowledge(by_value[b"r-0"], AcknowledgeType.RELEASE)
        c.acknowledge(by_value[b"r-1"], AcknowledgeType.REJECT)
        c.commit_sync(10)
        again = drain_until([c], lambda g: len(g[0]) >= 1)[0]
        assert [m.value() for m in again] == [b"r-0"]
        assert delivery_count(again[0]) == 2
        c.acknowledge(again[0], AcknowledgeType.ACCEPT)
        c.commit_sync(10)
        assert poll_records(c, 1.5) == [], "a rejected or accepted record came back"
    finally:
        c.close()


def test_unacknowledged_records_go_to_another_consumer_after_the_lock(broker_factory):
    b = broker_factory({**BASE, "group.share.record.lock.duration.ms": "3000"})
    topic, group = f"q-{uuid.uuid4().hex[:8]}", f"sg-{uuid.uuid4().hex[:8]}"
    create_topic(b, topic)
    sent = produce(b, topic, 5, prefix="k")
    a = consumer(b, group, topic, **{"share.acknowledgement.mode": "explicit"})
    held = drain_until([a], lambda g: len(g[0]) >= len(sent))[0]
    assert sorted(m.value() for m in held) == sorted(sent)
    taken_at = time.monotonic()
    # a holds them and never acknowledges; b joins and gets them once a's locks expire.
    c2 = consumer(b, group, topic)
    try:
        got = drain_until([c2], lambda g: len(g[0]) >= len(sent), timeout=30)[0]
        assert time.monotonic() - taken_at >= 2.5, "delivered before the lock expired"
        assert sorted(m.value() for m in got) == sorted(sent)
        counts = [delivery_count(m) for m in got]
        assert counts == [2] * len(sent), counts
    finally:
        c2.close()
        a.close()


def test_closing_a_consumer_releases_its_records(broker_factory):
    b = broker_factory(BASE)
    topic, group = f"q-{uuid.uuid4().hex[:8]}", f"sg-{uuid.uuid4().hex[:8]}"
    create_topic(b, topic)
    sent = produce(b, topic, 4, prefix="c")
    a = consumer(b, group, topic, **{"share.acknowledgement.mode": "explicit"})
    drain_until([a], lambda g: len(g[0]) >= len(sent))
    a.close()  # leaves the group without acknowledging: released at once
    c2 = consumer(b, group, topic)
    try:
        got = drain_until([c2], lambda g: len(g[0]) >= len(sent), timeout=10)[0]
        assert sorted(m.value() for m in got) == sorted(sent)
    finally:
        c2.close()


def test_delivery_count_limit_archives(broker_factory):
    b = broker_factory({**BASE, "group.share.delivery.count.limit": "2"})
    topic, group = f"q-{uuid.uuid4().hex[:8]}", f"sg-{uuid.uuid4().hex[:8]}"
    create_topic(b, topic)
    produce(b, topic, 1, prefix="d")
    c = consumer(b, group, topic, **{"share.acknowledgement.mode": "explicit"})
    try:
        deliveries = 0
        for n in (1, 2):
            got = drain_until([c], lambda g: len(g[0]) >= 1)[0]
            assert [m.value() for m in got] == [b"d-0"]
            assert delivery_count(got[0]) == n
            deliveries += 1
            c.acknowledge(got[0], AcknowledgeType.RELEASE)
            c.commit_sync(10)
        assert deliveries == 2
        assert poll_records(c, 1.5) == [], "delivered past the delivery count limit"
    finally:
        c.close()


def test_accepted_records_survive_a_restart(broker_factory):
    b = broker_factory(BASE)
    topic, group = f"q-{uuid.uuid4().hex[:8]}", f"sg-{uuid.uuid4().hex[:8]}"
    create_topic(b, topic)
    sent = produce(b, topic, 20, prefix="p")
    c = consumer(b, group, topic, **{"share.acknowledgement.mode": "explicit"})
    got = drain_until([c], lambda g: len(g[0]) >= 10)[0]
    accepted = got[:10]
    for m in accepted:
        c.acknowledge(m, AcknowledgeType.ACCEPT)
    for m in got[10:]:
        c.acknowledge(m, AcknowledgeType.RELEASE)
    c.commit_sync(10)
    c.close()
    b.restart()
    c = consumer(b, group, topic)
    try:
        rest = drain_until([c], lambda g: len(g[0]) >= len(sent) - 10, timeout=60)[0]
        values = [m.value() for m in rest]
        assert sorted(values) == sorted(set(sent) - {m.value() for m in accepted})
        assert poll_records(c, 1.0) == []
    finally:
        c.close()


HOLDER = r"""
import sys, time
from confluent_kafka import ShareConsumer
c = ShareConsumer({"bootstrap.servers": sys.argv[1], "group.id": sys.argv[2],
                   "share.acknowledgement.mode": "explicit"})
c.subscribe([sys.argv[3]])
want, got = int(sys.argv[4]), 0
deadline = time.monotonic() + 60
while got < want and time.monotonic() < deadline:
    msgs = [m for m in c.poll(0.5) if m.error() is None]
    got += len(msgs)
print("HELD" if got >= want else "SHORT", got, flush=True)
sys.stdin.read()  # hold them until killed
"""


def test_a_killed_consumer_records_go_to_another_after_the_lock(broker_factory, tmp_path):
    import subprocess
    import sys

    b = broker_factory({**BASE, "group.share.record.lock.duration.ms": "3000"})
    topic, group = f"q-{uuid.uuid4().hex[:8]}", f"sg-{uuid.uuid4().hex[:8]}"
    create_topic(b, topic)
    sent = produce(b, topic, 5, prefix="x")
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, b.bootstrap, group, topic, str(len(sent))],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    try:
        line = holder.stdout.readline().decode()
        assert line.startswith("HELD"), line
        holder.kill()
        holder.wait(10)
        c = consumer(b, group, topic)
        try:
            got = drain_until([c], lambda g: len(g[0]) >= len(sent), timeout=30)[0]
            assert sorted(m.value() for m in got) == sorted(sent)
            assert [delivery_count(m) for m in got] == [2] * len(sent)
        finally:
            c.close()
    finally:
        if holder.poll() is None:
            holder.kill()


def test_a_member_whose_session_times_out_gives_back_its_records(broker_factory):
    """Locks far longer than the session: the records come back when the killed
    member's session expires (group.share.session.timeout.ms), not the locks."""
    import subprocess
    import sys

    b = broker_factory(
        {
            **BASE,
            "group.share.record.lock.duration.ms": "120000",
            "group.share.session.timeout.ms": "3000",
        }
    )
    topic, group = f"q-{uuid.uuid4().hex[:8]}", f"sg-{uuid.uuid4().hex[:8]}"
    create_topic(b, topic)
    sent = produce(b, topic, 3, prefix="s")
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, b.bootstrap, group, topic, str(len(sent))],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    try:
        line = holder.stdout.readline().decode()
        assert line.startswith("HELD"), line
        holder.kill()
        holder.wait(10)
        c = consumer(b, group, topic)
        try:
            got = drain_until([c], lambda g: len(g[0]) >= len(sent), timeout=30)[0]
            assert sorted(m.value() for m in got) == sorted(sent)
            assert [delivery_count(m) for m in got] == [2] * len(sent)
        finally:
            c.close()
    finally:
        if holder.poll() is None:
            holder.kill()


def test_read_committed_share_group_skips_aborted_transactions(broker_factory):
    b = broker_factory({**BASE, "share.isolation.level": "read_committed"})
    topic, group = f"q-{uuid.uuid4().hex[:8]}", f"sg-{uuid.uuid4().hex[:8]}"
    create_topic(b, topic)
    p = Producer({"bootstrap.servers": b.bootstrap, "transactional.id": f"tx-{group}"})
    p.init_transactions(30)
    p.begin_transaction()
    for i in range(3):
        p.produce(topic, f"aborted-{i}".encode())
    p.flush(30)
    p.abort_transaction(30)
    p.begin_transaction()
    for i in range(2):
        p.produce(topic, f"committed-{i}".encode())
    p.commit_transaction(30)
    produce(b, topic, 1, prefix="plain")
    c = consumer(b, group, topic)
    try:
        got = drain_until([c], lambda g: len(g[0]) >= 3)[0]
        assert sorted(m.value() for m in got) == [b"committed-0", b"committed-1", b"plain-0"]
        assert poll_records(c, 1.0) == []
    finally:
        c.close()


def test_a_killed_consumer_records_go_back_when_its_connection_closes(broker_factory):
    """The locks and the member's session are long (two minutes): the records a killed
    consumer held reach another at once because its share session ends with its
    connection, as in Kafka."""
    import subprocess
    import sys

    b = broker_factory({**BASE, "group.share.record.lock.duration.ms": "120000",
                        "group.share.session.timeout.ms": "120000"})
    topic, group = f"q-{uuid.uuid4().hex[:8]}", f"sg-{uuid.uuid4().hex[:8]}"
    create_topic(b, topic)
    sent = produce(b, topic, 5, prefix="y")
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, b.bootstrap, group, topic, str(len(sent))],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    try:
        line = holder.stdout.readline().decode()
        assert line.startswith("HELD"), line
        holder.kill()
        holder.wait(10)
        c = consumer(b, group, topic)
        try:
            # Well inside the two-minute lock and session timeout.
            got = drain_until([c], lambda g: len(g[0]) >= len(sent), timeout=30)[0]
            assert sorted(m.value() for m in got) == sorted(sent)
            assert [delivery_count(m) for m in got] == [2] * len(sent)
        finally:
            c.close()
    finally:
        if holder.poll() is None:
            holder.kill()
