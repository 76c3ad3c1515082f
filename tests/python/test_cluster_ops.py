"""Operating a cluster: leader elections asked through confluent-kafka's AdminClient
(ElectLeaders, preferred and unclean) and the controller's own preferred-leader
balancing (`auto.leader.rebalance.enable`)."""
import json
import subprocess

from confluent_kafka import ElectionType, KafkaError, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from conftest import BIN, wait_until
# The same cluster fixture and short sessions as the other cluster tests.
from test_cluster import FAST, cluster_factory  # noqa: F401 (a pytest fixture)

TOPIC = "ops"


def layout(admin, topic):
    """{partition: (leader, replicas in order, sorted isr)}, or None if not readable now."""
    try:
        md = admin.list_topics(topic=topic, timeout=5)
    except Exception:
        return None
    t = md.topics.get(topic)
    if t is None or t.error is not None or not t.partitions:
        return None
    return {p.id: (p.leader, list(p.replicas), sorted(p.isrs)) for p in t.partitions.values()}


def setup(c, partitions=3):
    admin = AdminClient({"bootstrap.servers": c.bootstrap, "log_level": 3})
    admin.create_topics([NewTopic(TOPIC, partitions, 3)])[TOPIC].result(30)

    def healthy():
        lay = layout(admin, TOPIC)
        return lay if lay and len(lay) == partitions and all(
            sorted(r) == isr for _, r, isr in lay.values()) else None

    return admin, wait_until(healthy, timeout=30, what="the topic with full ISRs")


def move_leadership_away(c, admin, partition, stays_away=True):
    """Stops the preferred leader of `partition` (a controlled shutdown moves its
    leaderships), starts it again and waits until it is back in the partition's ISR.
    Returns it: it is then in sync but no longer leads."""
    preferred = layout(admin, TOPIC)[partition][1][0]
    c.node(preferred).stop()
    wait_until(lambda: (layout(admin, TOPIC) or {}).get(partition, (preferred,))[0] not in (preferred, -1),
               timeout=30, what="leadership moved off the stopped node")
    c.node(preferred).restart()
    wait_until(lambda: preferred in (layout(admin, TOPIC) or {}).get(partition, (0, 0, []))[2],
               timeout=30, what=f"node {preferred} back in the ISR")
    if stays_away:
        assert layout(admin, TOPIC)[partition][0] != preferred, "the restarted node must not take over by itself"
    return preferred


def elect(admin, kind, partitions):
    return admin.elect_leaders(kind, partitions).result(30)


def test_a_preferred_election_gives_leadership_back_and_errors_say_why_not(cluster_factory):
    c = cluster_factory(controllers=3, overrides={**FAST, "auto.leader.rebalance.enable": "false"})
    admin, _ = setup(c)
    preferred = move_leadership_away(c, admin, 0)
    tp = TopicPartition(TOPIC, 0)

    result = elect(admin, ElectionType.PREFERRED, [tp])
    assert list(result.values()) == [None], result
    wait_until(lambda: layout(admin, TOPIC)[0][0] == preferred, timeout=30,
               what=f"node {preferred} leading partition 0 again")

    # Nothing to do now, for either kind: ELECTION_NOT_NEEDED.
    for kind in (ElectionType.PREFERRED, ElectionType.UNCLEAN):
        err = elect(admin, kind, [tp])[tp]
        assert err is not None and err.code() == KafkaError.ELECTION_NOT_NEEDED, (kind, err)
    # An unknown partition.
    missing = TopicPartition(TOPIC, 99)
    err = elect(admin, ElectionType.PREFERRED, [missing])[missing]
    assert err is not None and err.code() == KafkaError.UNKNOWN_TOPIC_OR_PART, err
    # All partitions: every leader is the preferred one, so nothing is listed.
    assert elect(admin, ElectionType.PREFERRED, None) == {}
    # The same through the CLI.
    r = subprocess.run([BIN, "cluster", "elect-leaders", "-b", c.bootstrap, "--topic", TOPIC,
                        "--partition", "0,1", "--output", "json"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == [
        {"topic": TOPIC, "partition": 0, "result": "ElectionNotNeeded"},
        {"topic": TOPIC, "partition": 1, "result": "ElectionNotNeeded"},
    ]


def test_a_preferred_leader_out_of_the_isr_is_not_elected(cluster_factory):
    c = cluster_factory(controllers=3, overrides={**FAST, "auto.leader.rebalance.enable": "false"})
    admin, lay = setup(c, partitions=1)
    preferred = lay[0][1][0]
    c.node(preferred).stop()
    wait_until(lambda: preferred not in (layout(admin, TOPIC) or {0: (0, 0, [preferred])})[0][2],
               timeout=30, what=f"node {preferred} out of the ISR")
    tp = TopicPartition(TOPIC, 0)
    err = elect(admin, ElectionType.PREFERRED, [tp])[tp]
    assert err is not None and err.code() == KafkaError.PREFERRED_LEADER_NOT_AVAILABLE, err


def test_the_controller_gives_leaders_back_to_their_preferred_replica_by_itself(cluster_factory):
    c = cluster_factory(controllers=3, overrides={**FAST, "leader.imbalance.check.interval.seconds": "1"})
    admin, _ = setup(c)
    preferred = move_leadership_away(c, admin, 0, stays_away=False)
    # No election is asked for: the controller finds broker `preferred` 100% imbalanced
    # (over leader.imbalance.per.broker.percentage, 10) and moves its leadership back.
    wait_until(lambda: layout(admin, TOPIC)[0][0] == preferred, timeout=30,
               what=f"node {preferred} leading partition 0 again")


class PartitionStats:
    """librdkafka's statistics (`statistics.interval.ms`): for each partition, the leader
    and the broker the consumer is fetching it from right now."""

    def __init__(self):
        self.latest = {}

    def __call__(self, raw):
        parts = json.loads(raw).get("topics", {}).get(TOPIC, {}).get("partitions", {})
        for p, s in parts.items():
            if int(p) >= 0:
                self.latest[int(p)] = (s.get("leader"), s.get("broker"))


def test_a_consumer_reads_from_the_follower_in_its_rack_and_falls_back_to_the_leader(cluster_factory):
    from confluent_kafka import Consumer, Producer

    racks = {1: "rack-a", 2: "rack-b", 3: "rack-c"}
    c = cluster_factory(
        controllers=3,
        overrides={**FAST, "auto.leader.rebalance.enable": "false",
                   "replica.selector.class": "org.apache.kafka.common.replica.RackAwareReplicaSelector"},
        node_overrides={i: {"broker.rack": r} for i, r in racks.items()},
    )
    admin, lay = setup(c, partitions=1)
    leader, replicas, _ = lay[0]
    follower = next(r for r in replicas if r != leader)
    producer = Producer({"bootstrap.servers": c.bootstrap, "acks": "all", "log_level": 3})
    sent = []

    def produce(n):
        for _ in range(n):
            v = f"m{len(sent)}"
            producer.produce(TOPIC, v.encode(), partition=0)
            sent.append(v)
        assert producer.flush(30) == 0

    stats = PartitionStats()
    consumer = Consumer({
        "bootstrap.servers": c.bootstrap, "group.id": "racked", "auto.offset.reset": "earliest",
        "client.rack": racks[follower], "statistics.interval.ms": 200, "stats_cb": stats,
        "topic.metadata.refresh.interval.ms": 1000, "log_level": 3,
    })
    got = []

    def pump():
        """Polls once (which also serves the statistics callback), keeping what arrives."""
        for m in consumer.consume(100, 0.2):
            if m.error() is None:
                got.append(m.value().decode())

    def consume_until(n, what):
        wait_until(lambda: pump() or len(got) >= n, timeout=60, what=what, interval=0)

    def fetched_from(broker):
        pump()
        return stats.latest.get(0, (None, None))[1] == broker

    try:
        consumer.subscribe([TOPIC])
        produce(200)
        consume_until(200, "the first 200 records")
        # The leader points the consumer at the in-sync follower in its rack, and the
        # consumer fetches from it (librdkafka's statistics name the broker it fetches
        # from and the leader).
        produce(100)
        consume_until(300, "300 records")
        wait_until(lambda: fetched_from(follower) and stats.latest[0][0] == leader, timeout=30, interval=0,
                   what=f"partition 0 fetched from follower {follower} (leader {leader}): {stats.latest}")

        # That follower stops: the consumer goes back to the leader and misses nothing.
        c.node(follower).stop()
        produce(100)
        consume_until(400, "the records produced after the follower stopped")
        assert got == sent, "every record once, in order"
        wait_until(lambda: fetched_from(leader), timeout=30, interval=0,
                   what=f"partition 0 fetched from the leader again: {stats.latest}")
    finally:
        consumer.close()
