"""A cluster of broker processes (KRaft on openraft) used by real clients:
confluent-kafka (librdkafka), kafka-python, kcat and the gregor CLI (rdkafka)."""
import json
import subprocess
import time

import pytest
from confluent_kafka import Consumer, KafkaException, Producer
from confluent_kafka.admin import AdminClient, NewTopic

from cluster import Cluster
from conftest import BIN, wait_until

# Short sessions so fencing is seen in seconds, not Kafka's 9 s.
FAST = {"broker.session.timeout.ms": "3000", "broker.heartbeat.interval.ms": "500"}


@pytest.fixture
def cluster_factory(tmp_path):
    made = []

    def make(**kw):
        c = Cluster(tmp_path / f"cluster{len(made)}", **kw)
        made.append(c)
        return c.start()

    yield make
    _admins.clear()
    for c in made:
        c.kill_all()


_admins = {}


def admin(bootstrap):
    """One AdminClient per bootstrap list, kept alive so its futures complete."""
    if bootstrap not in _admins:
        _admins[bootstrap] = AdminClient({"bootstrap.servers": bootstrap})
    return _admins[bootstrap]


def broker_ids(bootstrap):
    md = admin(bootstrap).list_topics(timeout=10)
    return sorted(md.brokers)


def create(bootstrap, name, partitions, rf):
    admin(bootstrap).create_topics([NewTopic(name, partitions, rf)])[name].result(30)


def topic_layout(bootstrap, name):
    md = admin(bootstrap).list_topics(topic=name, timeout=10)
    t = md.topics[name]
    assert t.error is None, t.error
    return {p.id: (p.leader, sorted(p.replicas), sorted(p.isrs)) for p in t.partitions.values()}


def produce(bootstrap, topic, values):
    p = Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 5})
    for v in values:
        p.produce(topic, value=v)
    assert p.flush(30) == 0


def consume_all(bootstrap, topic, n, group="g"):
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "auto.offset.reset": "earliest"})
    c.subscribe([topic])
    got = []
    deadline = time.monotonic() + 60
    while len(got) < n and time.monotonic() < deadline:
        m = c.poll(0.5)
        if m is not None and m.error() is None:
            got.append(m.value())
    c.close()
    return got


def controller_of(bootstrap):
    """The active controller: the quorum's leader (brokers name themselves as the
    controller to clients, since they forward admin requests)."""
    r = subprocess.run([BIN, "cluster", "quorum", "-b", bootstrap, "--output", "json"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)["leader"]


def test_three_nodes_form_one_cluster_and_share_topics(cluster_factory):
    c = cluster_factory(controllers=3)
    for node in c.brokers:
        # Every broker lists every broker: the metadata is the quorum's, not its own.
        assert broker_ids(node.bootstrap) == [1, 2, 3]
    # Created through node 2 (forwarded to the controller wherever it is).
    create(c.node(2).bootstrap, "rf3", 6, 3)
    layouts = [topic_layout(n.bootstrap, "rf3") for n in c.brokers]
    assert layouts[0] == layouts[1] == layouts[2]
    layout = layouts[0]
    assert all(replicas == [1, 2, 3] and isr == [1, 2, 3] for _, replicas, isr in layout.values())
    # Leaders are spread: each broker leads two of the six partitions.
    leaders = sorted(leader for leader, _, _ in layout.values())
    assert leaders == [1, 1, 2, 2, 3, 3]
    # A replication factor beyond the live brokers is refused.
    with pytest.raises(KafkaException) as e:
        create(c.node(3).bootstrap, "rf4", 1, 4)
    assert "INVALID_REPLICATION_FACTOR" in str(e.value)
    # Records go to each partition's leader and come back through a group.
    values = [b"v%d" % i for i in range(300)]
    produce(c.node(1).bootstrap, "rf3", values)
    assert sorted(consume_all(c.node(3).bootstrap, "rf3", 300)) == sorted(values)
    # kcat and kafka-python see the same cluster.
    out = subprocess.run(["kcat", "-b", c.node(3).bootstrap, "-L", "-J"], capture_output=True, text=True, check=True)
    md = json.loads(out.stdout)
    assert sorted(b["id"] for b in md["brokers"]) == [1, 2, 3]
    from kafka import KafkaAdminClient

    ka = KafkaAdminClient(bootstrap_servers=c.node(1).bootstrap)
    try:
        desc = ka.describe_topics(["rf3"])[0]
        assert len(desc["partitions"]) == 6
        assert {p.get("leader_id", p.get("leader")) for p in desc["partitions"]} == {1, 2, 3}
    finally:
        ka.close()


def test_the_gregor_cli_creates_and_describes_through_any_node(cluster_factory):
    c = cluster_factory(controllers=3)
    run = lambda *a: subprocess.run([BIN, *a], capture_output=True, text=True, timeout=60)
    r = run("topic", "create", "cli", "-p", "3", "-r", "3", "-b", c.node(3).bootstrap)
    assert r.returncode == 0, r.stderr
    r = run("cluster", "info", "-b", c.node(1).bootstrap, "--output", "json")
    assert r.returncode == 0, r.stderr
    info = json.loads(r.stdout)
    assert sorted(b["id"] for b in info["brokers"]) == [1, 2, 3]
    r = run("cluster", "quorum", "-b", c.node(2).bootstrap, "--output", "json")
    assert r.returncode == 0, r.stderr
    q = json.loads(r.stdout)
    voters = sorted(x["node"] for x in q["replicas"] if x["status"] in ("Leader", "Follower"))
    assert voters == [1, 2, 3]
    assert q["leader"] in (1, 2, 3) and q["high_watermark"] > 0


def test_killing_the_active_controller_elects_another(cluster_factory):
    c = cluster_factory(controllers=3)
    create(c.bootstrap, "before", 1, 3)
    old = controller_of(c.node(1).bootstrap)
    c.node(old).kill9()
    started = time.monotonic()
    survivors = [n for n in c.brokers if n.alive()]
    bootstrap = ",".join(n.bootstrap for n in survivors)

    def created():
        try:
            admin(bootstrap).create_topics([NewTopic("after", 1, 2)], request_timeout=5)["after"].result(10)
            return True
        except KafkaException as e:
            # A retry of a creation that committed before its answer was lost.
            return "TOPIC_ALREADY_EXISTS" in str(e)
        except Exception:  # the future timed out: try again
            return False

    wait_until(created, timeout=60, what="topic creation after the controller was killed")
    print(f"topic creation worked again {time.monotonic() - started:.2f}s after kill -9 of the controller")
    new = controller_of(bootstrap)
    assert new != old
    # The killed node comes back into the same cluster with its metadata.
    c.node(old).spawn().wait_ready()
    wait_until(lambda: broker_ids(c.node(old).bootstrap) == [1, 2, 3], timeout=60, what="all three brokers listed")
    assert "after" in admin(c.node(old).bootstrap).list_topics(timeout=10).topics


def test_a_paused_broker_is_fenced_and_comes_back(cluster_factory):
    c = cluster_factory(controllers=3, overrides=FAST)
    create(c.bootstrap, "f", 3, 3)
    controller = controller_of(c.node(1).bootstrap)
    victim = next(n for n in c.brokers if n.id != controller)
    others = ",".join(n.bootstrap for n in c.brokers if n is not victim)
    victim.pause()
    try:
        wait_until(lambda: victim.id not in broker_ids(others), timeout=30, what="the paused broker fenced")
        # It no longer leads anything, and it left every ISR.
        layout = topic_layout(others, "f")
        assert all(leader != victim.id and victim.id not in isr for leader, _, isr in layout.values()), layout
    finally:
        victim.resume()
    wait_until(lambda: victim.id in broker_ids(others), timeout=30, what="the broker unfenced after resuming")


def test_the_whole_cluster_restarts_with_its_metadata(cluster_factory):
    c = cluster_factory(controllers=3)
    create(c.bootstrap, "keep", 4, 3)
    admin(c.bootstrap).create_topics([NewTopic("keep2", 2, 1, config={"retention.ms": "123456"})])["keep2"].result(30)
    before = topic_layout(c.bootstrap, "keep")
    c.stop()
    c.start()
    after = topic_layout(c.bootstrap, "keep")
    assert {p: r for p, (_, r, _) in after.items()} == {p: r for p, (_, r, _) in before.items()}
    from confluent_kafka.admin import ConfigResource, ResourceType

    r = ConfigResource(ResourceType.TOPIC, "keep2")
    cfg = admin(c.bootstrap).describe_configs([r])[r].result(30)
    assert cfg["retention.ms"].value == "123456"


def test_dedicated_controllers_and_brokers(cluster_factory):
    c = cluster_factory(controllers=3, brokers=3, split=True)
    assert [n.id for n in c.brokers] == [4, 5, 6]
    for node in c.brokers:
        assert broker_ids(node.bootstrap) == [4, 5, 6]
    create(c.node(5).bootstrap, "split", 3, 3)
    produce(c.node(4).bootstrap, "split", [b"a", b"b", b"c"])
    assert sorted(consume_all(c.node(6).bootstrap, "split", 3)) == [b"a", b"b", b"c"]


def test_misconfiguration_is_a_clear_startup_error(tmp_path):
    def start(*overrides):
        args = [BIN, "broker", "--data-dir", str(tmp_path / "bad"), "--listen", "127.0.0.1:0"]
        for o in overrides:
            args += ["--override", o]
        return subprocess.run(args, capture_output=True, text=True, timeout=30)

    r = start("controller.quorum.voters=1@nohostport")
    assert r.returncode != 0 and "controller.quorum.voters" in r.stderr
    r = start("controller.quorum.voters=2@127.0.0.1:1", "listeners=PLAINTEXT://127.0.0.1:0,CONTROLLER://127.0.0.1:0")
    assert r.returncode != 0 and "not a voter" in r.stderr
    # A data directory formatted for one cluster refuses another cluster id.
    ok = subprocess.Popen([BIN, "broker", "--data-dir", str(tmp_path / "d"), "--listen", "127.0.0.1:0"], stdout=subprocess.PIPE)
    ok.stdout.readline()
    ok.terminate()
    ok.wait(30)
    args = [BIN, "broker", "--data-dir", str(tmp_path / "d"), "--listen", "127.0.0.1:0", "--override", "cluster.id=AAAAAAAAAAAAAAAAAAAAAA"]
    r = subprocess.run(args, capture_output=True, text=True, timeout=30)
    assert r.returncode != 0 and "INCONSISTENT_CLUSTER_ID" in r.stderr
