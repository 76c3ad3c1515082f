"""Consumer groups with real clients: confluent-kafka (librdkafka 2.16) and kafka-python,
against the group coordinator. Each test has its own broker; the broker's initial
rebalance delay is 0 and its minimum session timeout 1 s so timeouts stay short."""
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from confluent_kafka import Consumer, ConsumerGroupTopicPartitions, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from conftest import wait_until

GROUP_OVERRIDES = {"group.initial.rebalance.delay.ms": "0", "group.min.session.timeout.ms": "1000"}
MEMBER = Path(__file__).with_name("group_member.py")


def start(broker_factory, **extra):
    return broker_factory({**GROUP_OVERRIDES, **extra})


def create_topic(broker, name, partitions):
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    admin.create_topics([NewTopic(name, num_partitions=partitions, replication_factor=1)])[name].result(30)


def produce(broker, topic, n, partitions, start_at=0):
    p = Producer({"bootstrap.servers": broker.bootstrap, "linger.ms": 5})
    for i in range(start_at, start_at + n):
        p.produce(topic, key=b"%d" % i, value=b"%d" % i, partition=i % partitions)
        if i % 1000 == 0:
            p.poll(0)
    assert p.flush(30) == 0


def group_consumer(broker, group, **extra):
    conf = {
        "bootstrap.servers": broker.bootstrap,
        "group.id": group,
        "auto.offset.reset": "earliest",
        "enable.auto.commit": False,
        "session.timeout.ms": 6000,
        "heartbeat.interval.ms": 500,
    }
    conf.update(extra)
    return Consumer(conf)


class Poller:
    """Polls several consumers in one thread and records what each one received."""

    def __init__(self, consumers, commit=False):
        self.consumers = consumers
        self.commit = commit
        self.got = {id(c): [] for c in consumers}

    def step(self, timeout=0.05):
        for c in self.consumers:
            for m in c.consume(500, timeout=timeout):
                if m.error():
                    if m.error().code() != KafkaError._PARTITION_EOF:
                        raise KafkaException(m.error())
                    continue
                self.got[id(c)].append((m.partition(), m.offset(), m.value()))
                if self.commit:
                    c.commit(message=m, asynchronous=False)

    def all_values(self):
        return [v for rs in self.got.values() for (_, _, v) in rs]


def test_three_consumers_cover_six_partitions_exactly_once(broker_factory):
    broker = start(broker_factory)
    create_topic(broker, "cover", 6)
    consumers = [group_consumer(broker, "cover-g") for _ in range(3)]
    for c in consumers:
        c.subscribe(["cover"])
    poller = Poller(consumers)

    def balanced():
        poller.step()
        assigned = [sorted(tp.partition for tp in c.assignment()) for c in consumers]
        flat = sorted(p for a in assigned for p in a)
        return flat == list(range(6)) and all(len(a) == 2 for a in assigned)

    wait_until(balanced, 60, "every partition assigned exactly once, two per member")
    # Produced once the group is stable: from here on each record has one owner.
    produce(broker, "cover", 6000, 6)

    def all_read():
        poller.step()
        return len(poller.all_values()) >= 6000

    wait_until(all_read, 60, "all 6000 records")
    values = poller.all_values()
    assert sorted(values) == sorted(b"%d" % i for i in range(6000)), "each record exactly once"
    # Each member saw only its own partitions.
    for c in consumers:
        mine = {tp.partition for tp in c.assignment()}
        assert {p for p, _, _ in poller.got[id(c)]} <= mine
    for c in consumers:
        c.close()
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    wait_until(lambda: admin.describe_consumer_groups(["cover-g"])["cover-g"].result(10).state.name == "EMPTY", 30, "group empty after close")


def test_killed_consumer_partitions_move_and_nothing_is_lost(broker_factory, tmp_path):
    broker = start(broker_factory)
    create_topic(broker, "crashy", 4)
    out = tmp_path / "member.out"
    child = subprocess.Popen(
        [sys.executable, str(MEMBER), broker.bootstrap, "crashy-g", "crashy", str(out), "2000"],
        stdout=subprocess.DEVNULL,
        stderr=open(tmp_path / "member.err", "wb"),
    )
    try:
        survivor = group_consumer(broker, "crashy-g", **{"session.timeout.ms": 2000})
        survivor.subscribe(["crashy"])
        poller = Poller([survivor], commit=True)
        # Produce only once the two members share the partitions, so the child has
        # records to process when it is killed.
        wait_until(lambda: (poller.step(), len(survivor.assignment()) == 2)[1], 60, "two partitions each")
        produce(broker, "crashy", 4000, 4)

        def child_has_some():
            poller.step()
            return out.exists() and len(out.read_text().split()) >= 20

        wait_until(child_has_some, 60, "the child member to consume")
        child.send_signal(signal.SIGKILL)
        child.wait(10)

        def survivor_owns_all():
            poller.step()
            return len(survivor.assignment()) == 4

        # After the child's session (2 s) expires, the survivor gets every partition.
        wait_until(survivor_owns_all, 60, "partitions to move to the survivor")

        def all_read():
            poller.step()
            child_vals = set(out.read_text().split())
            mine = {v.decode() for v in poller.all_values()}
            return len(child_vals | mine) >= 4000

        wait_until(all_read, 60, "every record consumed by someone")
        child_vals = out.read_text().split()
        mine = [v.decode() for v in poller.all_values()]
        assert set(child_vals) | set(mine) == {str(i) for i in range(4000)}, "no record lost"
        # The child commits after each record it writes down, so at most the one record
        # in flight when it died is consumed twice per partition it owned.
        dupes = set(child_vals) & set(mine)
        assert len(dupes) <= 4, f"duplicates beyond the uncommitted window: {len(dupes)}"
        survivor.close()
    finally:
        child.kill()
        child.wait(10)


def test_group_resumes_from_committed_offsets_after_broker_restart(broker_factory):
    broker = start(broker_factory)
    create_topic(broker, "resume", 2)
    produce(broker, "resume", 200, 2)
    c = group_consumer(broker, "resume-g")
    c.subscribe(["resume"])
    got = []

    def read(n):
        def cond():
            for m in c.consume(100, timeout=0.2):
                if not m.error():
                    got.append(m)
            return len(got) >= n
        return cond

    wait_until(read(200), 60, "first 200 records")
    c.commit(asynchronous=False)
    committed = c.committed([TopicPartition("resume", 0), TopicPartition("resume", 1)], timeout=10)
    assert sorted(tp.offset for tp in committed) == [100, 100]
    c.close()

    broker.restart()
    produce(broker, "resume", 100, 2, start_at=200)
    c = group_consumer(broker, "resume-g")
    c.subscribe(["resume"])
    got = []
    wait_until(read(100), 60, "the 100 records produced after the commit")
    assert sorted(int(m.value()) for m in got) == list(range(200, 300)), "resumed exactly at the committed offsets"
    meta = c.committed([TopicPartition("resume", 0)], timeout=10)
    assert meta[0].offset == 100
    c.close()


def test_commit_metadata_round_trips(broker_factory):
    broker = start(broker_factory)
    create_topic(broker, "meta", 1)
    c = group_consumer(broker, "meta-g")
    c.commit(offsets=[TopicPartition("meta", 0, 42, metadata="checkpoint-7")], asynchronous=False)
    got = c.committed([TopicPartition("meta", 0)], timeout=10)
    assert (got[0].offset, got[0].metadata) == (42, "checkpoint-7")
    # Unknown topic: a per-partition error, not a broken group.
    try:
        c.commit(offsets=[TopicPartition("no-such-topic", 0, 1)], asynchronous=False)
        raise AssertionError("commit to an unknown topic must fail")
    except KafkaException as e:
        assert e.args[0].code() in (KafkaError.UNKNOWN_TOPIC_OR_PART, KafkaError._INVALID_ARG) or "UNKNOWN_TOPIC" in str(e)
    got = c.committed([TopicPartition("meta", 0)], timeout=10)
    assert got[0].offset == 42
    c.close()


def test_cooperative_sticky_revokes_only_what_moves(broker_factory):
    broker = start(broker_factory)
    create_topic(broker, "coop", 6)
    events = {"a_revoked": [], "a_assigned": []}

    def on_assign(consumer, parts):
        events["a_assigned"].append(sorted(p.partition for p in parts))

    def on_revoke(consumer, parts):
        events["a_revoked"].append(sorted(p.partition for p in parts))

    conf = {"partition.assignment.strategy": "cooperative-sticky"}
    a = group_consumer(broker, "coop-g", **conf)
    a.subscribe(["coop"], on_assign=on_assign, on_revoke=on_revoke)
    poller = Poller([a])
    wait_until(lambda: (poller.step(), len(a.assignment()) == 6)[1], 60, "A owns all six")
    b = group_consumer(broker, "coop-g", **conf)
    b.subscribe(["coop"])
    poller.consumers.append(b)
    poller.got[id(b)] = []

    def split():
        poller.step()
        return len(a.assignment()) == 3 and len(b.assignment()) == 3

    wait_until(split, 60, "three partitions each")
    # A gave up exactly the three that moved, and never all six.
    revoked = [p for r in events["a_revoked"] for p in r]
    assert len(revoked) == 3, events
    assert set(revoked).isdisjoint({tp.partition for tp in a.assignment()})
    a.close()
    b.close()


def test_static_member_restart_causes_no_rebalance(broker_factory):
    broker = start(broker_factory)
    create_topic(broker, "static", 4)
    assigns = {"b": 0}

    def b_assigned(consumer, parts):
        assigns["b"] += 1

    def member(instance, **kw):
        return group_consumer(broker, "static-g", **{"group.instance.id": instance, "session.timeout.ms": 10000}, **kw)

    a = member("a")
    b = member("b")
    a.subscribe(["static"])
    b.subscribe(["static"], on_assign=b_assigned)
    poller = Poller([a, b])
    wait_until(lambda: (poller.step(), len(a.assignment()) + len(b.assignment()) == 4 and len(a.assignment()) == 2)[1], 60, "two each")
    a_parts = sorted(tp.partition for tp in a.assignment())
    b_parts = sorted(tp.partition for tp in b.assignment())
    b_assigns = assigns["b"]
    # A static member's close does not leave the group (KIP-345); it comes back within
    # its session timeout under the same group.instance.id.
    a.close()
    a = member("a")
    a.subscribe(["static"])
    poller.consumers[0] = a
    poller.got[id(a)] = []
    wait_until(lambda: (poller.step(), len(a.assignment()) == 2)[1], 30, "A back with its partitions")
    assert sorted(tp.partition for tp in a.assignment()) == a_parts
    # B kept heartbeating through it all and was never revoked or reassigned.
    deadline = time.monotonic() + 2
    while time.monotonic() < deadline:
        poller.step()
    assert assigns["b"] == b_assigns
    assert sorted(tp.partition for tp in b.assignment()) == b_parts
    a.close()
    b.close()


def test_admin_list_describe_and_delete(broker_factory):
    broker = start(broker_factory)
    create_topic(broker, "adm", 2)
    produce(broker, "adm", 20, 2)
    c = group_consumer(broker, "adm-g", **{"client.id": "adm-client"})
    c.subscribe(["adm"])
    wait_until(lambda: (c.consume(10, timeout=0.2), len(c.assignment()) == 2)[1], 60, "assignment")
    c.commit(offsets=[TopicPartition("adm", 0, 5), TopicPartition("adm", 1, 7)], asynchronous=False)
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})

    listed = admin.list_consumer_groups().result(30)
    assert "adm-g" in {g.group_id for g in listed.valid}
    # The states filter (ListGroups v4+).
    from confluent_kafka import ConsumerGroupState
    stable = admin.list_consumer_groups(states={ConsumerGroupState.STABLE}).result(30)
    assert "adm-g" in {g.group_id for g in stable.valid}
    empty = admin.list_consumer_groups(states={ConsumerGroupState.EMPTY}).result(30)
    assert "adm-g" not in {g.group_id for g in empty.valid}
    desc = admin.describe_consumer_groups(["adm-g"])["adm-g"].result(30)
    assert desc.state.name == "STABLE"
    assert desc.partition_assignor == "range"
    assert len(desc.members) == 1
    m = desc.members[0]
    assert m.client_id == "adm-client"
    assert sorted(tp.partition for tp in m.assignment.topic_partitions) == [0, 1]

    offsets = admin.list_consumer_group_offsets([ConsumerGroupTopicPartitions("adm-g")])["adm-g"].result(30)
    assert sorted((tp.partition, tp.offset) for tp in offsets.topic_partitions) == [(0, 5), (1, 7)]

    # A group with a member cannot be deleted.
    res = admin.delete_consumer_groups(["adm-g"])["adm-g"]
    try:
        res.result(30)
        raise AssertionError("deleting a non-empty group must fail")
    except KafkaException as e:
        assert e.args[0].code() == KafkaError.NON_EMPTY_GROUP
    c.close()
    wait_until(lambda: admin.describe_consumer_groups(["adm-g"])["adm-g"].result(10).state.name == "EMPTY", 30, "empty group")
    admin.delete_consumer_groups(["adm-g"])["adm-g"].result(30)
    listed = admin.list_consumer_groups().result(30)
    assert "adm-g" not in {g.group_id for g in listed.valid}
    offsets = admin.list_consumer_group_offsets([ConsumerGroupTopicPartitions("adm-g")])["adm-g"].result(30)
    assert all(tp.offset < 0 for tp in offsets.topic_partitions)


def test_kafka_python_group_commit_and_offset_delete(broker_factory):
    from kafka import KafkaConsumer, TopicPartition as KTP
    from kafka.admin import KafkaAdminClient

    broker = start(broker_factory)
    create_topic(broker, "kpg", 3)
    produce(broker, "kpg", 300, 3)
    c = KafkaConsumer("kpg", bootstrap_servers=broker.bootstrap, group_id="kpg-g", auto_offset_reset="earliest", enable_auto_commit=False, session_timeout_ms=6000, heartbeat_interval_ms=500)
    got = []

    def more():
        for recs in c.poll(timeout_ms=200).values():
            got.extend(recs)
        return len(got) >= 300

    wait_until(more, 60, "300 records in a kafka-python group")
    assert sorted(int(r.value) for r in got) == list(range(300))
    c.commit()
    assert {tp.partition: c.committed(tp) for tp in [KTP("kpg", p) for p in range(3)]} == {0: 100, 1: 100, 2: 100}
    admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap)
    group = admin.describe_groups(["kpg-g"])["kpg-g"]
    assert group["group_state"] == "Stable" and len(group["members"]) == 1, group
    # Batched OffsetFetch (v8, KIP-709) for two groups in one request.
    both = admin.list_group_offsets({"kpg-g": None, "no-such-group": [KTP("kpg", 0)]})
    assert {tp.partition: om.offset for tp, om in both["kpg-g"].items()} == {0: 100, 1: 100, 2: 100}
    assert [om.offset for om in both["no-such-group"].values()] == [-1]
    # OffsetDelete while the group consumes the topic is refused per partition.
    busy = admin.delete_group_offsets("kpg-g", [KTP("kpg", 0)])
    assert busy[KTP("kpg", 0)].__name__ == "GroupSubscribedToTopicError", busy
    c.close()
    wait_until(lambda: admin.describe_groups(["kpg-g"])["kpg-g"]["group_state"] == "Empty", 30, "empty group")
    # OffsetDelete on an empty group removes just the named partition's offset.
    done = admin.delete_group_offsets("kpg-g", [KTP("kpg", 0)])
    assert done[KTP("kpg", 0)].__name__ == "NoError", done
    left = admin.list_group_offsets({"kpg-g": None})["kpg-g"]
    assert sorted(tp.partition for tp in left) == [1, 2]
    admin.close()


def test_kip_394_member_id_required_then_join(broker_factory):
    """kafka-python joins with JoinGroup v4+ too; check the two-step join at the wire
    level through what a client sees: a member id that starts with its client id."""
    broker = start(broker_factory)
    create_topic(broker, "kip394", 1)
    c = group_consumer(broker, "kip394-g", **{"client.id": "my-client"})
    c.subscribe(["kip394"])
    wait_until(lambda: (c.consume(1, timeout=0.2), len(c.assignment()) == 1)[1], 60, "assignment")
    assert c.memberid().startswith("my-client-")
    c.close()


def test_kip848_consumer_protocol_assign_join_leave_commit(broker_factory):
    """group.protocol=consumer (KIP-848): the broker assigns; a join revokes only what
    moves; a leave hands partitions back; commits carry the member epoch."""
    broker = start(broker_factory, **{"group.consumer.heartbeat.interval.ms": "300"})
    create_topic(broker, "k848", 4)
    produce(broker, "k848", 400, 4)
    revoked = []
    def consumer848(**extra):
        c = Consumer({
            "bootstrap.servers": broker.bootstrap,
            "group.id": "k848-g",
            "group.protocol": "consumer",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            **extra,
        })
        return c

    a = consumer848()
    a.subscribe(["k848"], on_revoke=lambda c, parts: revoked.append(sorted(p.partition for p in parts)))
    got = []

    def a_reads_all():
        for m in a.consume(100, timeout=0.2):
            if not m.error():
                got.append(m)
        return len(got) >= 400 and len(a.assignment()) == 4

    wait_until(a_reads_all, 60, "A assigned all four partitions and reading them")
    assert sorted(int(m.value()) for m in got) == list(range(400))
    a.commit(asynchronous=False)
    assert sorted(tp.offset for tp in a.committed([TopicPartition("k848", p) for p in range(4)], timeout=10)) == [100] * 4

    b = consumer848()
    b.subscribe(["k848"])

    def split():
        a.consume(10, timeout=0.1)
        b.consume(10, timeout=0.1)
        return len(a.assignment()) == 2 and len(b.assignment()) == 2

    wait_until(split, 60, "the broker to split the partitions 2/2")
    mine = {tp.partition for tp in a.assignment()}
    theirs = {tp.partition for tp in b.assignment()}
    assert mine.isdisjoint(theirs) and mine | theirs == {0, 1, 2, 3}
    # Incremental: A gave up exactly the two partitions that moved, nothing more.
    assert [p for r in revoked for p in r] == sorted(theirs), revoked

    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    desc = admin.describe_consumer_groups(["k848-g"])["k848-g"].result(30)
    assert desc.type.name == "CONSUMER", desc
    assert len(desc.members) == 2
    listed = admin.list_consumer_groups().result(30)
    assert "k848-g" in {g.group_id for g in listed.valid}

    # B leaves (epoch -1): A gets everything back without waiting for a timeout.
    b.close()
    wait_until(lambda: (a.consume(10, timeout=0.1), len(a.assignment()) == 4)[1], 30, "A to own all four again")
    produce(broker, "k848", 40, 4, start_at=400)
    more = []
    wait_until(lambda: (more.extend(m for m in a.consume(100, timeout=0.2) if not m.error()), len(more) >= 40)[1], 30, "the 40 new records")
    assert sorted(int(m.value()) for m in more) == list(range(400, 440)), "resumed from the commits, no repeats"
    a.close()


def test_consumer_offsets_topic_uses_kafkas_record_schemas(broker_factory):
    """Tools that read __consumer_offsets decode Kafka's OffsetCommitKey (v1) and
    OffsetCommitValue (v3) schemas: read the topic with a plain consumer and decode."""
    import struct

    broker = start(broker_factory)
    create_topic(broker, "schema", 1)
    c = group_consumer(broker, "schema-g")
    c.commit(offsets=[TopicPartition("schema", 0, 1234, metadata="m")], asynchronous=False)
    c.close()
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    md = admin.list_topics(timeout=10)
    assert len(md.topics["__consumer_offsets"].partitions) == 50

    reader = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "reader", "enable.auto.commit": False, "enable.partition.eof": True})
    reader.assign([TopicPartition("__consumer_offsets", p, 0) for p in range(50)])
    found = []
    eofs = set()

    def read():
        for m in reader.consume(100, timeout=0.2):
            if m.error():
                if m.error().code() == KafkaError._PARTITION_EOF:
                    eofs.add(m.partition())
                continue
            key = m.key()
            (kv,) = struct.unpack_from(">h", key, 0)
            if kv != 1:
                continue
            glen = struct.unpack_from(">h", key, 2)[0]
            group = key[4:4 + glen].decode()
            tlen = struct.unpack_from(">h", key, 4 + glen)[0]
            topic = key[6 + glen:6 + glen + tlen].decode()
            (partition,) = struct.unpack_from(">i", key, 6 + glen + tlen)
            value = m.value()
            vv, offset, epoch, mlen = struct.unpack_from(">hqih", value, 0)
            # librdkafka sends the commit metadata string with its C terminator.
            meta = value[16:16 + mlen].decode().rstrip("\x00")
            found.append((group, topic, partition, vv, offset, meta))
        return len(eofs) == 50

    wait_until(read, 30, "every __consumer_offsets partition read")
    assert ("schema-g", "schema", 0, 3, 1234, "m") in found
    reader.close()


def test_kip848_regex_subscription_is_matched_by_the_broker(broker_factory):
    broker = start(broker_factory, **{"group.consumer.heartbeat.interval.ms": "300"})
    for t in ("rx-a", "rx-b", "other"):
        create_topic(broker, t, 1)
    c = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "rx-g", "group.protocol": "consumer"})
    c.subscribe(["^rx-.*"])
    wait_until(lambda: (c.consume(1, timeout=0.1), {tp.topic for tp in c.assignment()} == {"rx-a", "rx-b"})[1], 30, "both rx- topics assigned")
    # A topic created later that matches joins the assignment.
    create_topic(broker, "rx-c", 1)
    wait_until(lambda: (c.consume(1, timeout=0.1), {tp.topic for tp in c.assignment()} == {"rx-a", "rx-b", "rx-c"})[1], 60, "the new matching topic assigned")
    c.close()


def test_deleting_a_topic_drops_its_committed_offsets(broker_factory):
    broker = start(broker_factory)
    create_topic(broker, "gone", 1)
    c = group_consumer(broker, "gone-g")
    c.commit(offsets=[TopicPartition("gone", 0, 7)], asynchronous=False)
    assert c.committed([TopicPartition("gone", 0)], timeout=10)[0].offset == 7
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    admin.delete_topics(["gone"])["gone"].result(30)
    # The internal offsets topic itself cannot be deleted.
    try:
        admin.delete_topics(["__consumer_offsets"])["__consumer_offsets"].result(30)
        raise AssertionError("deleting __consumer_offsets must fail")
    except KafkaException as e:
        assert e.args[0].code() == KafkaError.INVALID_REQUEST
    wait_until(lambda: "gone" not in admin.list_topics(timeout=10).topics, 10, "topic deletion")
    create_topic(broker, "gone", 1)
    # A topic created again under the name starts without the old position.
    assert c.committed([TopicPartition("gone", 0)], timeout=10)[0].offset < 0
    c.close()


def test_kip848_static_member_restart_keeps_its_partitions(broker_factory):
    """A static member (group.instance.id) leaving with epoch -2 keeps its partitions
    for its session; coming back, it takes them over and the other member is untouched."""
    broker = start(broker_factory, **{"group.consumer.heartbeat.interval.ms": "300"})
    create_topic(broker, "s848", 4)
    b_events = []

    def member(iid, **kw):
        c = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "s848-g", "group.protocol": "consumer", "group.instance.id": iid})
        c.subscribe(["s848"], **kw)
        return c

    a = member("a")
    b = member("b", on_assign=lambda c, p: b_events.append(("assign", len(p))), on_revoke=lambda c, p: b_events.append(("revoke", len(p))))

    def split():
        a.consume(1, timeout=0.1)
        b.consume(1, timeout=0.1)
        return len(a.assignment()) == 2 and len(b.assignment()) == 2

    wait_until(split, 60, "two partitions each")
    a_parts = sorted(p.partition for p in a.assignment())
    b_parts = sorted(p.partition for p in b.assignment())
    seen = list(b_events)
    a.close()
    a = member("a")
    wait_until(lambda: (a.consume(1, timeout=0.1), b.consume(1, timeout=0.1), len(a.assignment()) == 2)[2], 60, "A back")
    assert sorted(p.partition for p in a.assignment()) == a_parts
    assert sorted(p.partition for p in b.assignment()) == b_parts
    assert b_events == seen, "B was neither revoked nor reassigned"
    a.close()
    b.close()
