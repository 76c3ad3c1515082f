"""KIP-848 membership survives a broker restart: confluent-kafka (librdkafka 2.16)
consumers with group.protocol=consumer keep their member epochs and partitions through a
clean restart and a kill -9 of the broker, so none of them is fenced, loses or gives up a
partition, and every record produced across the restarts is read exactly once."""
from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient, NewTopic

from conftest import wait_until

OVERRIDES = {
    "group.initial.rebalance.delay.ms": "0",
    "group.consumer.heartbeat.interval.ms": "300",
    # Long enough that the members outlive a restart, as with Kafka's default 45 s.
    "group.consumer.session.timeout.ms": "45000",
}


def produce(broker, topic, values, partitions):
    p = Producer({"bootstrap.servers": broker.bootstrap, "linger.ms": 5})
    for i in values:
        p.produce(topic, value=b"%d" % i, partition=i % partitions)
    assert p.flush(30) == 0


def test_kip848_members_keep_epochs_and_assignments_across_restarts(broker_factory):
    broker = broker_factory(OVERRIDES)
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    admin.create_topics([NewTopic("r848", num_partitions=4, replication_factor=1)])["r848"].result(30)
    events = []
    got = {"a": [], "b": []}

    def member(name):
        c = Consumer({
            "bootstrap.servers": broker.bootstrap,
            "group.id": "r848-g",
            "group.protocol": "consumer",
            "auto.offset.reset": "earliest",
            # librdkafka's reconnect backoff, kept short so the test follows the broker.
            "reconnect.backoff.max.ms": 500,
        })
        c.subscribe(
            ["r848"],
            on_assign=lambda c, p: events.append((name, "assign", sorted(x.partition for x in p))),
            on_revoke=lambda c, p: events.append((name, "revoke", sorted(x.partition for x in p))),
            on_lost=lambda c, p: events.append((name, "lost", sorted(x.partition for x in p))),
        )
        return c

    a, b = member("a"), member("b")

    def poll():
        for name, c in (("a", a), ("b", b)):
            for m in c.consume(50, timeout=0.1):
                if not m.error():
                    got[name].append((m.partition(), int(m.value())))

    def split():
        poll()
        return len(a.assignment()) == 2 and len(b.assignment()) == 2

    wait_until(split, 60, "two partitions each")
    parts = {"a": {tp.partition for tp in a.assignment()}, "b": {tp.partition for tp in b.assignment()}}
    assert parts["a"].isdisjoint(parts["b"])
    settled = len(events)
    members = {m.member_id for m in admin.describe_consumer_groups(["r848-g"])["r848-g"].result(30).members}
    assert len(members) == 2

    values = list(range(0, 200))
    produce(broker, "r848", values, 4)

    def read(n):
        poll()
        return len(got["a"]) + len(got["b"]) >= n

    wait_until(lambda: read(200), 60, "the first 200 records")

    for restart in ("clean", "kill9"):
        if restart == "clean":
            broker.stop()
        else:
            broker.kill9()
        broker.start()
        new = list(range(len(values), len(values) + 200))
        values += new
        produce(broker, "r848", new, 4)
        wait_until(lambda: read(len(values)), 60, f"the records produced after the {restart} restart")
        # Heartbeats went on at the members' old epochs: nobody was fenced, nothing moved.
        assert events[settled:] == [], (restart, events[settled:])
        assert {tp.partition for tp in a.assignment()} == parts["a"]
        assert {tp.partition for tp in b.assignment()} == parts["b"]
        # A new admin client: the old one's connection died with the broker, and its
        # reconnect backoff is not what this test is about.
        admin = AdminClient({"bootstrap.servers": broker.bootstrap})
        desc = admin.describe_consumer_groups(["r848-g"])["r848-g"].result(60)
        assert {m.member_id for m in desc.members} == members, restart

    # Each member read only its own partitions, and every record exactly once.
    for name in ("a", "b"):
        assert {p for p, _ in got[name]} <= parts[name], name
    everything = sorted(v for name in got for _, v in got[name])
    assert everything == values
    a.close()
    b.close()
