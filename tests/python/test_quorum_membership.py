"""A growing metadata quorum (KIP-853): a controller started outside the voter set joins
through AddRaftVoter and a voter leaves through RemoveRaftVoter (both asked with the
gregor CLI), while confluent-kafka's AdminClient keeps creating topics; kafka-python's
`describe_metadata_quorum` (DescribeQuorum) shows the voters. The new voter then counts
for the majority: with one original voter killed, topics are still created."""
import subprocess
import threading

from confluent_kafka.admin import AdminClient, NewTopic
from kafka import KafkaAdminClient

from cluster import Node, free_ports
from conftest import BIN, wait_until
from test_cluster import FAST, cluster_factory  # noqa: F401 (a pytest fixture)


def voters(bootstrap):
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        q = admin.describe_metadata_quorum()
    finally:
        admin.close()
    p = q["topics"][0]["partitions"][0]
    return sorted(v["replica_id"] for v in p["current_voters"]), p["leader_id"]


def voters_now(bootstrap):
    """`voters`, or None while a node the client picked is unreachable (kafka-python
    raises instead of trying another one)."""
    try:
        return voters(bootstrap)
    except Exception:  # noqa: BLE001 (asked again by the caller's wait)
        return None


def cli(c, *args):
    return subprocess.run([str(BIN), "cluster", "quorum", *args, "-b", c.bootstrap], capture_output=True,
                          text=True, timeout=120)


class Creator:
    """Creates topics one after another in the background; counts what succeeded and
    keeps what failed for good."""

    def __init__(self, bootstrap):
        self.admin = AdminClient({"bootstrap.servers": bootstrap, "log_level": 3})
        self.created = []
        self.failed = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self):
        i = 0
        while not self.stop.is_set():
            name = f"q{i}"
            try:
                self.admin.create_topics([NewTopic(name, 1, 1)], operation_timeout=30)[name].result(60)
                self.created.append(name)
            except Exception as e:  # noqa: BLE001 (recorded and asserted on)
                if "already exists" not in str(e):
                    self.failed.append((name, str(e)))
            i += 1

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join(90)


def test_a_voter_joins_and_another_leaves_while_topics_are_created(cluster_factory):
    c = cluster_factory(controllers=3, overrides=FAST)
    assert voters(c.bootstrap)[0] == [1, 2, 3]
    # Node 4: a controller whose id is not among the bootstrap voters.
    (port,) = free_ports(1)
    joining = Node(c, 4, None, port, "controller")
    c.node_overrides[4] = {"controller.quorum.voters": "", "controller.quorum.bootstrap.servers": c.voters}
    c.nodes.append(joining)
    joining.spawn().wait_ready(60)
    assert voters(c.bootstrap)[0] == [1, 2, 3], "not a voter before it is added"

    with Creator(c.bootstrap) as creator:
        wait_until(lambda: len(creator.created) >= 5, 30, what="topics created before the change")
        r = cli(c, "add", "4", f"127.0.0.1:{port}")
        assert r.returncode == 0, r.stderr
        assert voters(c.bootstrap)[0] == [1, 2, 3, 4]
        # A voter that does not lead leaves.
        leader = voters(c.bootstrap)[1]
        gone = next(v for v in (1, 2, 3) if v != leader)
        r = cli(c, "remove", str(gone))
        assert r.returncode == 0, r.stderr
        wait_until(lambda: (voters_now(c.bootstrap) or ([],))[0] == sorted({1, 2, 3, 4} - {gone}), 30,
                   what=f"voter {gone} gone")
        before = len(creator.created)
        wait_until(lambda: len(creator.created) >= before + 5, 30, what="topics created after the change")
    assert creator.failed == [], creator.failed[:3]
    # Errors say why: adding a voter twice, removing one that is not there.
    r = cli(c, "add", "4", f"127.0.0.1:{port}")
    assert r.returncode != 0 and "DuplicateVoter" in r.stderr, r.stderr
    r = cli(c, "remove", str(gone))
    assert r.returncode != 0 and "VoterNotFound" in r.stderr, r.stderr

    # The removed node still serves clients with current metadata (it follows the log
    # as an observer): it sees the topics created after it left.
    last = creator.created[-1]
    node = c.node(gone)
    admin = AdminClient({"bootstrap.servers": node.bootstrap, "log_level": 3})
    wait_until(lambda: last in admin.list_topics(timeout=5).topics, 30, what=f"{last} seen on node {gone}")

    # The new voter counts: with another original voter killed, two of the three voters
    # remain and metadata writes go on.
    victim = next(v for v in (1, 2, 3) if v not in (gone, voters(c.bootstrap)[1]))
    c.node(victim).kill9()
    live = AdminClient({"bootstrap.servers": c.bootstrap, "log_level": 3})
    live.create_topics([NewTopic("after-kill", 1, 1)], operation_timeout=30)["after-kill"].result(60)
    assert "after-kill" in live.list_topics(timeout=10).topics
    # On restart the voters come from the log, not the config (which never named 4).
    joining.stop()
    joining.restart(60)
    wait_until(lambda: 4 in (voters_now(c.bootstrap) or ([],))[0], 30,
               what="node 4 still a voter after its restart")
    live.create_topics([NewTopic("after-restart", 1, 1)], operation_timeout=30)["after-restart"].result(60)
