"""ACLs through a real client (confluent-kafka's AdminClient: CreateAcls, DescribeAcls,
DeleteAcls) and through `gregor acl`: bindings come back exactly as created, filters
select what Kafka's would (ANY, MATCH, PREFIXED, by principal), invalid bindings get
INVALID_REQUEST, deletes return what they removed, and ACLs survive a restart that
loads them from a metadata snapshot."""
import json
import subprocess

import pytest
from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import (
    AclBinding,
    AclBindingFilter,
    AclOperation,
    AclPermissionType,
    AdminClient,
    NewTopic,
    ResourcePatternType,
    ResourceType,
)

from conftest import BIN, wait_until
# The cluster fixture of the other cluster tests.
from test_cluster import cluster_factory  # noqa: F401 (a pytest fixture)

T = ResourceType
P = ResourcePatternType
OP = AclOperation
ALLOW = AclPermissionType.ALLOW
DENY = AclPermissionType.DENY


# The tests' admin clients connect over PLAINTEXT, as User:ANONYMOUS: a super user here,
# since the ACLs they create (on the cluster too) are enforced.
SUPER = {"super.users": "User:ANONYMOUS"}


@pytest.fixture
def broker(broker_factory):
    return broker_factory(SUPER)


def admin(b):
    return AdminClient({"bootstrap.servers": b.bootstrap})


def create(a, bindings):
    """Creates bindings; returns {binding: None or KafkaError}."""
    out = {}
    for binding, f in a.create_acls(bindings, request_timeout=15).items():
        try:
            f.result(timeout=20)
            out[binding] = None
        except KafkaException as e:
            out[binding] = e.args[0]
    return out


def describe(a, flt):
    return set(a.describe_acls(flt, request_timeout=15).result(timeout=20))


def delete(a, filters):
    fs = a.delete_acls(filters, request_timeout=15)
    return {flt: set(f.result(timeout=20)) for flt, f in fs.items()}


def any_filter(**kw):
    args = dict(
        restype=T.ANY, name=None, resource_pattern_type=P.ANY, principal=None, host=None,
        operation=OP.ANY, permission_type=AclPermissionType.ANY,
    )
    args.update(kw)
    return AclBindingFilter(**args)


ORDERS_EU = AclBinding(T.TOPIC, "orders-eu", P.LITERAL, "User:alice", "*", OP.READ, ALLOW)
ORDERS_PREFIX = AclBinding(T.TOPIC, "orders-", P.PREFIXED, "User:alice", "*", OP.WRITE, ALLOW)
ALL_TOPICS = AclBinding(T.TOPIC, "*", P.LITERAL, "User:*", "10.0.0.1", OP.DESCRIBE, ALLOW)
OTHER_TOPIC = AclBinding(T.TOPIC, "payments", P.LITERAL, "User:bob", "*", OP.ALL, DENY)
GROUP = AclBinding(T.GROUP, "billing", P.LITERAL, "User:alice", "*", OP.READ, ALLOW)
CLUSTER = AclBinding(T.BROKER, "kafka-cluster", P.LITERAL, "User:ops", "*", OP.ALTER_CONFIGS, ALLOW)
TXN = AclBinding(T.TRANSACTIONAL_ID, "app-", P.PREFIXED, "User:alice", "*", OP.WRITE, ALLOW)
EVERYTHING = {ORDERS_EU, ORDERS_PREFIX, ALL_TOPICS, OTHER_TOPIC, GROUP, CLUSTER, TXN}


def test_created_acls_are_described_back_and_filters_select_as_kafka(broker):
    a = admin(broker)
    results = create(a, list(EVERYTHING))
    assert results == {b: None for b in EVERYTHING}
    # Creating an existing binding again is success, and still one ACL.
    assert create(a, [ORDERS_EU]) == {ORDERS_EU: None}

    assert describe(a, any_filter()) == EVERYTHING
    # MATCH: every ACL that applies to topic orders-eu (exact, wildcard, prefix).
    match = any_filter(restype=T.TOPIC, name="orders-eu", resource_pattern_type=P.MATCH)
    assert describe(a, match) == {ORDERS_EU, ORDERS_PREFIX, ALL_TOPICS}
    # ANY with a name: that name exactly, whatever the pattern type.
    exact = any_filter(restype=T.TOPIC, name="orders-eu", resource_pattern_type=P.ANY)
    assert describe(a, exact) == {ORDERS_EU}
    assert describe(a, any_filter(resource_pattern_type=P.PREFIXED)) == {ORDERS_PREFIX, TXN}
    assert describe(a, any_filter(principal="User:alice")) == {ORDERS_EU, ORDERS_PREFIX, GROUP, TXN}
    assert describe(a, any_filter(restype=T.GROUP)) == {GROUP}
    assert describe(a, any_filter(permission_type=DENY)) == {OTHER_TOPIC}
    assert describe(a, any_filter(operation=OP.ALTER_CONFIGS)) == {CLUSTER}
    assert describe(a, any_filter(host="10.0.0.1")) == {ALL_TOPICS}
    assert describe(a, any_filter(restype=T.TOPIC, name="nothing-here")) == set()


def test_invalid_bindings_get_invalid_request(broker):
    a = admin(broker)
    bad_cluster = AclBinding(T.BROKER, "not-the-cluster", P.LITERAL, "User:ops", "*", OP.ALTER, ALLOW)
    bad_principal = AclBinding(T.TOPIC, "t", P.LITERAL, "alice", "*", OP.READ, ALLOW)
    good = AclBinding(T.TOPIC, "t", P.LITERAL, "User:alice", "*", OP.READ, ALLOW)
    results = create(a, [bad_cluster, bad_principal, good])
    assert results[good] is None
    for b in (bad_cluster, bad_principal):
        assert results[b] is not None, b
        assert results[b].code() == KafkaError.INVALID_REQUEST, results[b]
    assert "kafka-cluster" in results[bad_cluster].str()
    assert "principalType:principalName" in results[bad_principal].str()
    # Only the valid one was created.
    assert describe(a, any_filter()) == {good}


def test_delete_returns_the_deleted_bindings_and_they_are_gone(broker):
    a = admin(broker)
    assert all(e is None for e in create(a, list(EVERYTHING)).values())
    prefixed = any_filter(resource_pattern_type=P.PREFIXED)
    bob = any_filter(principal="User:bob")
    nothing = any_filter(principal="User:nobody")
    deleted = delete(a, [prefixed, bob, nothing])
    assert deleted[prefixed] == {ORDERS_PREFIX, TXN}
    assert deleted[bob] == {OTHER_TOPIC}
    assert deleted[nothing] == set()
    assert describe(a, any_filter()) == EVERYTHING - {ORDERS_PREFIX, TXN, OTHER_TOPIC}
    # MATCH deletes what applies to a name: the literal and the wildcard.
    match = any_filter(restype=T.TOPIC, name="orders-eu", resource_pattern_type=P.MATCH)
    assert delete(a, [match])[match] == {ORDERS_EU, ALL_TOPICS}
    assert describe(a, any_filter()) == {GROUP, CLUSTER}
    # Deleting again finds nothing.
    assert delete(a, [match])[match] == set()


def snapshot_files(b):
    return list(b.data_dir.rglob("raft.snapshot"))


def test_acls_survive_a_restart_from_a_snapshot(broker_factory):
    # A snapshot is asked for after every entry: the ACLs are read back from a snapshot
    # (the log below it is gone), and a delete after it from the log on top.
    b = broker_factory({"metadata.log.max.record.bytes.between.snapshots": "1", **SUPER})
    a = admin(b)
    assert all(e is None for e in create(a, list(EVERYTHING)).values())
    nudges = []

    def snapshot_has_acls():
        if any(f.read_bytes().count(b"AccessControlEntryRecord") == len(EVERYTHING)
               for f in snapshot_files(b)):
            return True
        # A snapshot asked for while one is being built is not taken again until the
        # next entry: make one (a topic) so the ACLs' entry gets its snapshot.
        name = f"nudge-{len(nudges)}"
        nudges.append(name)
        a.create_topics([NewTopic(name, 1, 1)])[name].result(20)
        return False

    wait_until(snapshot_has_acls, what="a metadata snapshot holding the ACLs", interval=0.2)
    bob = any_filter(principal="User:bob")
    assert delete(a, [bob]) == {bob: {OTHER_TOPIC}}
    b.restart()
    assert describe(admin(b), any_filter()) == EVERYTHING - {OTHER_TOPIC}


def gregor(b, *args):
    r = subprocess.run([BIN, "acl", *args, "-b", b.bootstrap, "--output", "json"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def test_cli_round_trip(broker):
    created = gregor(broker, "create", "--allow-principal", "User:carol", "--deny-principal", "User:dave",
                     "--operation", "read", "--operation", "describe", "--topic", "cli-",
                     "--resource-pattern-type", "prefixed")
    assert len(created) == 4
    a = admin(broker)
    want = {
        AclBinding(T.TOPIC, "cli-", P.PREFIXED, principal, "*", op, perm)
        for principal, perm in (("User:carol", ALLOW), ("User:dave", DENY))
        for op in (OP.READ, OP.DESCRIBE)
    }
    assert describe(a, any_filter()) == want

    listed = gregor(broker, "list", "--topic", "cli-", "--resource-pattern-type", "prefixed")
    assert {(x["principal"], x["operation"], x["permission"]) for x in listed} == {
        ("User:carol", "READ", "ALLOW"), ("User:carol", "DESCRIBE", "ALLOW"),
        ("User:dave", "READ", "DENY"), ("User:dave", "DESCRIBE", "DENY"),
    }
    assert {(x["resource_type"], x["resource_name"], x["pattern_type"], x["host"]) for x in listed} == {
        ("TOPIC", "cli-", "PREFIXED", "*")
    }
    # MATCH on a topic name finds the prefixed ACLs too.
    assert len(gregor(broker, "list", "--topic", "cli-x", "--resource-pattern-type", "match")) == 4

    deleted = gregor(broker, "delete", "--topic", "cli-", "--resource-pattern-type", "prefixed",
                     "--principal", "User:dave")
    assert {(x["principal"], x["operation"]) for x in deleted} == {("User:dave", "READ"), ("User:dave", "DESCRIBE")}
    assert len(gregor(broker, "list")) == 2

    # An invalid ACL fails the command with Kafka's error.
    r = subprocess.run([BIN, "acl", "create", "-b", broker.bootstrap, "--allow-principal", "carol",
                        "--operation", "read", "--topic", "t"], capture_output=True, text=True, timeout=60)
    assert r.returncode != 0
    assert "INVALID_REQUEST" in r.stderr or "InvalidRequest" in r.stderr, r.stderr


def test_acls_through_non_controller_brokers_reach_every_broker(cluster_factory):
    """Writes forwarded to the active controller; reads from each broker's own image
    (voters and a broker-only node alike); a forwarded DeleteAcls still lists what it
    removed."""
    from test_cluster import controller_of

    c = cluster_factory(controllers=3, brokers=1, overrides=SUPER)
    leader = controller_of(c.bootstrap)
    others = [n for n in c.brokers if n.id != leader]
    writer, deleter = others[0], others[-1]
    wa = AdminClient({"bootstrap.servers": writer.bootstrap})
    assert all(e is None for e in create(wa, list(EVERYTHING)).values())
    for node in c.brokers:
        na = AdminClient({"bootstrap.servers": node.bootstrap})
        wait_until(lambda: describe(na, any_filter()) == EVERYTHING, timeout=30,
                   what=f"node {node.id} describing the ACLs")
    da = AdminClient({"bootstrap.servers": deleter.bootstrap})
    alice = any_filter(principal="User:alice")
    assert delete(da, [alice])[alice] == {ORDERS_EU, ORDERS_PREFIX, GROUP, TXN}
    for node in c.brokers:
        na = AdminClient({"bootstrap.servers": node.bootstrap})
        wait_until(lambda: describe(na, any_filter()) == {ALL_TOPICS, OTHER_TOPIC, CLUSTER},
                   timeout=30, what=f"node {node.id} seeing the delete")
