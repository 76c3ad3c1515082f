"""Moving partitions between brokers (KIP-455): reassignments asked through kafka-python's
KafkaAdminClient (AlterPartitionReassignments / ListPartitionReassignments) and the
gregor CLI (`cluster reassign`, `cluster decommission`, `cluster unregister`), under
live confluent-kafka producers and consumers that must see nothing lost and no error
other than retriable ones."""
import json
import subprocess
import threading
import time

from confluent_kafka import Consumer, KafkaError, Producer
from confluent_kafka.admin import AdminClient, ConfigResource, NewTopic
from kafka import KafkaAdminClient, TopicPartition

from conftest import BIN, wait_until
from test_cluster import FAST, cluster_factory  # noqa: F401 (a pytest fixture)
from test_cluster_ops import layout

SETTINGS = {**FAST, "replica.lag.time.max.ms": "3000", "auto.leader.rebalance.enable": "false"}


def cli(c, *args, check=True):
    r = subprocess.run([str(BIN), "cluster", *args, "-b", c.bootstrap], capture_output=True, text=True,
                       timeout=180)
    if check:
        assert r.returncode == 0, (args, r.stdout, r.stderr)
    return r


class Load:
    """A confluent-kafka producer (acks=all, idempotent) writing numbered records to
    every partition of `topic` in the background, and the acknowledged offsets it got."""

    def __init__(self, bootstrap, topic, value_size=100):
        self.producer = Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 5,
                                  "enable.idempotence": True, "log_level": 3})
        self.topic = topic
        self.value = b"x" * value_size
        self.acked = {}  # value -> (partition, offset)
        self.errors = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.sent = 0

    def on_delivery(self, err, msg):
        if err is not None:
            self.errors.append(err)
        else:
            self.acked[msg.key().decode()] = (msg.partition(), msg.offset())

    def run(self):
        while not self.stop.is_set():
            for _ in range(20):
                self.producer.produce(self.topic, key=str(self.sent).encode(), value=self.value,
                                      on_delivery=self.on_delivery)
                self.sent += 1
            self.producer.poll(0.01)

    def __enter__(self):
        self.thread.start()
        return self

    def finish(self):
        self.stop.set()
        self.thread.join(10)
        assert self.producer.flush(60) == 0
        return self

    def __exit__(self, *exc):
        self.stop.set()


def read_all(bootstrap, topic, want, group):
    """Every record of `topic` from the start, until `want` keys were seen (or 60 s)."""
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "auto.offset.reset": "earliest",
                  "enable.auto.commit": False, "log_level": 3})
    c.subscribe([topic])
    seen = {}
    deadline = time.monotonic() + 60
    while len(seen) < want and time.monotonic() < deadline:
        m = c.poll(0.5)
        if m is None:
            continue
        assert m.error() is None or m.error().retriable() or m.error().code() == KafkaError._PARTITION_EOF, m.error()
        if m.error() is None:
            seen[m.key().decode()] = (m.partition(), m.offset())
    c.close()
    return seen


def partition_dirs(node, topic):
    return sorted(p.name for p in node.data_dir.glob(f"{topic}-*") if p.is_dir())


def test_a_partition_moves_to_other_brokers_under_live_traffic(cluster_factory):
    c = cluster_factory(controllers=3, brokers=1, overrides=SETTINGS)
    admin = AdminClient({"bootstrap.servers": c.bootstrap, "log_level": 3})
    admin.create_topics([NewTopic("mv", 2, replica_assignment=[[1, 2], [2, 3]])])["mv"].result(30)
    wait_until(lambda: (layout(admin, "mv") or {}).get(0, (0, 0, []))[2] == [1, 2], 30, what="mv-0 in sync")
    kadmin = KafkaAdminClient(bootstrap_servers=c.bootstrap)
    with Load(c.bootstrap, "mv") as load:
        wait_until(lambda: len(load.acked) > 2000, 30, what="records acknowledged before the move")
        # Partition 0 goes from brokers 1,2 to 3,4: every replica, the leader included.
        result = kadmin.alter_partition_reassignments({TopicPartition("mv", 0): [3, 4]})
        assert result == {TopicPartition("mv", 0): None}, result
        wait_until(lambda: layout(admin, "mv")[0][1] == [3, 4] and layout(admin, "mv")[0][0] in (3, 4),
                   60, what="mv-0 on brokers 3 and 4")
        assert kadmin.list_partition_reassignments() == {}
        before = len(load.acked)
        wait_until(lambda: len(load.acked) > before + 2000, 30, what="records acknowledged after the move")
        load.finish()
    assert load.errors == [], load.errors[:5]
    # The old replicas' logs are gone; the new ones hold the partition.
    wait_until(lambda: "mv-0" not in partition_dirs(c.node(1), "mv") + partition_dirs(c.node(2), "mv"), 30,
               what="the old replicas deleted")
    assert "mv-0" in partition_dirs(c.node(3), "mv") and "mv-0" in partition_dirs(c.node(4), "mv")
    # Every acknowledged record is read back, where it was acknowledged.
    seen = read_all(c.bootstrap, "mv", len(load.acked), "mv-check")
    missing = [k for k in load.acked if k not in seen]
    assert missing == [], f"{len(missing)} acknowledged records lost, e.g. {missing[:5]}"
    assert all(seen[k] == load.acked[k] for k in load.acked)
    kadmin.close()


def test_an_ongoing_move_is_listed_and_can_be_cancelled(cluster_factory):
    c = cluster_factory(controllers=3, overrides=SETTINGS)
    admin = AdminClient({"bootstrap.servers": c.bootstrap, "log_level": 3})
    admin.create_topics([NewTopic("cx", 1, replica_assignment=[[1]])])["cx"].result(30)
    with Load(c.bootstrap, "cx", value_size=1000) as load:
        wait_until(lambda: len(load.acked) > 3000, 30, what="3 MB written")
        load.finish()
    # A move throttled to 20 KB/s takes minutes: it is still going when asked.
    plan = {"version": 1, "partitions": [{"topic": "cx", "partition": 0, "replicas": [2]}]}
    path = c.root / "cx.json"
    path.write_text(json.dumps(plan))
    cli(c, "reassign", "execute", "--plan", str(path), "--throttle", "20000")
    kadmin = KafkaAdminClient(bootstrap_servers=c.bootstrap)
    ongoing = kadmin.list_partition_reassignments()
    assert ongoing == {TopicPartition("cx", 0): {"replicas": [2, 1], "adding_replicas": [2],
                                                 "removing_replicas": [1]}}, ongoing
    assert cli(c, "reassign", "verify", "--plan", str(path), check=False).returncode == 1
    # Cancel through kafka-python: back to broker 1 alone, the copy on 2 deleted.
    assert kadmin.alter_partition_reassignments({TopicPartition("cx", 0): None}) == {TopicPartition("cx", 0): None}
    wait_until(lambda: layout(admin, "cx")[0][1] == [1], 30, what="cx-0 back on broker 1 only")
    assert kadmin.list_partition_reassignments() == {}
    wait_until(lambda: partition_dirs(c.node(2), "cx") == [], 30, what="the cancelled copy deleted")
    # Nothing moving: a second cancel says so.
    err = kadmin.alter_partition_reassignments({TopicPartition("cx", 0): None})[TopicPartition("cx", 0)]
    assert err is not None and err.errno == 85, err  # NO_REASSIGNMENT_IN_PROGRESS
    # A target naming an unknown broker is refused: INVALID_REPLICA_ASSIGNMENT.
    err = kadmin.alter_partition_reassignments({TopicPartition("cx", 0): [1, 9]})[TopicPartition("cx", 0)]
    assert err is not None and err.errno == 39, err
    kadmin.close()


def test_a_throttled_move_stays_under_its_rate(cluster_factory):
    c = cluster_factory(controllers=3, overrides=SETTINGS)
    admin = AdminClient({"bootstrap.servers": c.bootstrap, "log_level": 3})
    admin.create_topics([NewTopic("th", 1, replica_assignment=[[1]])])["th"].result(30)
    with Load(c.bootstrap, "th", value_size=1000) as load:
        wait_until(lambda: len(load.acked) > 3000, 30, what="3 MB written")
        load.finish()
    size = sum(f.stat().st_size for f in (c.node(1).data_dir / "th-0").glob("*.log"))
    rate = 1_000_000
    plan = c.root / "th.json"
    plan.write_text(json.dumps({"version": 1, "partitions": [{"topic": "th", "partition": 0, "replicas": [2]}]}))
    started = time.monotonic()
    r = cli(c, "reassign", "execute", "--plan", str(plan), "--throttle", str(rate), "--wait", "--output", "json")
    elapsed = time.monotonic() - started
    assert json.loads(r.stdout.strip().splitlines()[-1])["done"] is True, r.stdout
    assert layout(admin, "th")[0][1] == [2]
    measured = size / elapsed
    assert measured <= rate * 1.25, f"{size} bytes moved in {elapsed:.1f} s: {measured:.0f} B/s over {rate}"
    # --wait removed the throttle once done.
    described = admin.describe_configs([ConfigResource("TOPIC", "th")])
    configs = list(described.values())[0].result(10)
    assert configs["leader.replication.throttled.replicas"].value in ("", None)


def test_a_broker_is_decommissioned_and_unregistered(cluster_factory):
    c = cluster_factory(controllers=3, brokers=1, overrides=SETTINGS)
    admin = AdminClient({"bootstrap.servers": c.bootstrap, "log_level": 3})
    admin.create_topics([NewTopic("dc", 4, 2)])["dc"].result(30)
    wait_until(lambda: any(4 in r for _, r, _ in (layout(admin, "dc") or {0: (0, [], [])}).values()), 30,
               what="a replica on broker 4")
    with Load(c.bootstrap, "dc") as load:
        wait_until(lambda: len(load.acked) > 1000, 30, what="records acknowledged")
        cli(c, "decommission", "4")
        load.finish()
    assert load.errors == [], load.errors[:5]
    lay = layout(admin, "dc")
    assert all(4 not in replicas and len(replicas) == 2 for _, replicas, _ in lay.values()), lay
    wait_until(lambda: partition_dirs(c.node(4), "dc") == [], 30, what="broker 4 emptied")
    # A live broker is not unregistered; a stopped one is.
    r = cli(c, "unregister", "4", check=False)
    assert r.returncode != 0 and "still live" in r.stderr, r.stderr
    c.node(4).stop()
    cli(c, "unregister", "4")
    wait_until(lambda: sorted(admin.list_topics(timeout=5).brokers) == [1, 2, 3], 30, what="broker 4 gone")
    seen = read_all(c.bootstrap, "dc", len(load.acked), "dc-check")
    assert [k for k in load.acked if k not in seen] == []
