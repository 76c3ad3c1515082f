"""gregor connect in distributed mode: workers sharing a group.id form a Connect group,
share connectors and tasks, keep configs, source offsets and status in compacted
topics, and move work when a worker dies or leaves. Driven the way operators drive
Kafka Connect (requests against any worker), data checked with confluent-kafka. Every
wait is a condition with a deadline."""
import collections
import json
import uuid

import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

from conftest import wait_until
from connect_worker import ConnectWorker, distributed_props

SOURCE = "org.apache.kafka.connect.file.FileStreamSourceConnector"
SINK = "org.apache.kafka.connect.file.FileStreamSinkConnector"


@pytest.fixture
def broker(broker_factory):
    """A broker that forms new groups at once (no initial rebalance delay), so group
    formation does not dominate the tests' wall time."""
    return broker_factory({"group.initial.rebalance.delay.ms": "0"})


@pytest.fixture
def cluster(broker, tmp_path):
    """start(n) starts n workers of one group; the workers are killed at the end."""
    workers = []
    group = f"connect-{uuid.uuid4().hex[:8]}"

    def start(n, **overrides):
        for _ in range(n):
            d = tmp_path / f"w{len(workers)}"
            d.mkdir(exist_ok=True)
            w = ConnectWorker(broker.bootstrap, d, distributed_props(group, **overrides)).start()
            workers.append(w)
        return workers

    start.group = group
    start.workers = workers
    yield start
    for w in workers:
        w.kill9()


def worker_id(w):
    return f"127.0.0.1:{w.port}"


def statuses(w, name):
    r = w.get(f"/connectors/{name}/status")
    return r.json() if r.status_code == 200 else None


def running_on(w, name, ids=None):
    """The worker ids running the connector's tasks, when all are RUNNING."""
    s = statuses(w, name)
    if not s or not s["tasks"] or any(t["state"] != "RUNNING" for t in s["tasks"]):
        return None
    owners = [t["worker_id"] for t in s["tasks"]]
    return owners if ids is None or set(owners) <= set(ids) else None


def group_formed(bootstrap, group, workers):
    """The Connect group is stable with every worker in it, and every worker reaches
    the leader. librdkafka's DescribeGroups refuses non-consumer groups, so this asks
    with the older ListGroups-style call, which shows any classic group."""
    import warnings
    from confluent_kafka.admin import AdminClient
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        found = AdminClient({"bootstrap.servers": bootstrap}).list_groups(group, timeout=10)
    if len(found) != 1:
        return False
    g = found[0]
    if (g.state, g.protocol_type, g.protocol) != ("Stable", "connect", "default") \
            or len(g.members) != len(workers):
        return False
    # A write to an unknown connector reaches the leader through any worker: 404.
    return all(w.put("/connectors/no-such-connector/pause").status_code == 404 for w in workers)


def read_values(bootstrap, topic, expected, timeout):
    """Reads `topic` until every expected value was seen; returns a Counter of values.
    Assigns every partition (no consumer group, so no rebalance delay)."""
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": f"t-{uuid.uuid4()}",
                  "enable.auto.commit": False})
    parts = wait_until(lambda: c.list_topics(topic, timeout=5).topics[topic].partitions, 30,
                       f"{topic} exists")
    c.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in parts])
    seen = collections.Counter()
    missing = set(expected)

    def more():
        for m in c.consume(num_messages=5000, timeout=0.2):
            if m.error() is None:
                v = m.value().decode()
                seen[v] += 1
                missing.discard(v)
        return not missing
    try:
        wait_until(more, timeout, f"every line on {topic} ({len(missing)} missing)")
    finally:
        c.close()
    return seen


def write_lines(path, lines, mode="w"):
    with path.open(mode) as f:
        f.write("".join(l + "\n" for l in lines))


def test_workers_share_connectors_created_through_a_follower(cluster, broker, tmp_path):
    workers = cluster(3)
    wait_until(lambda: group_formed(broker.bootstrap, cluster.group, workers), 30,
               "the group formed")
    # Each worker names the same leader; writes to a follower are forwarded to it.
    files = {}
    for i in range(3):
        src = tmp_path / f"in-{i}.txt"
        write_lines(src, [f"c{i}-line-{n}" for n in range(100)])
        files[f"src-{i}"] = src
    follower = workers[-1]
    for name, src in files.items():
        r = follower.post("/connectors", {"name": name, "config": {
            "connector.class": SOURCE, "file": str(src), "topic": name, "tasks.max": "2"}})
        assert r.status_code == 201, r.text
        assert r.json()["name"] == name
    # A duplicate through another follower: 409 from the leader.
    r = workers[1].post("/connectors", {"name": "src-0", "config": {
        "connector.class": SOURCE, "file": str(files["src-0"]), "topic": "src-0"}})
    assert r.status_code == 409, r.text
    # Every worker knows every connector, and its config.
    for w in workers:
        wait_until(lambda w=w: sorted(w.get("/connectors").json()) == sorted(files), 15,
                   f"connectors listed on {w.url}")
        assert w.get("/connectors/src-1/config").json()["file"] == str(files["src-1"])
    # All tasks run, spread over the workers (three connectors and three tasks over
    # three workers: round-robin gives each worker a task), and every worker's status
    # says where.
    ids = [worker_id(w) for w in workers]

    def owners():
        o = {n: running_on(workers[0], n, ids) for n in files}
        return o if all(o.values()) and len({v[0] for v in o.values()}) == 3 else None
    placed = wait_until(owners, 30, "every task running, one per worker")
    for name in files:
        for w in workers:
            wait_until(lambda w=w, n=name: running_on(w, n) == placed[name], 10,
                       "the same status on every worker")
        s = statuses(workers[1], name)
        assert s["type"] == "source" and s["connector"]["state"] == "RUNNING"
        assert s["connector"]["worker_id"] in ids
    for name, src in files.items():
        seen = read_values(broker.bootstrap, name, src.read_text().splitlines(), 30)
        assert sum(seen.values()) == 100


def test_kill9_moves_the_source_task_and_loses_no_line(cluster, broker, tmp_path):
    workers = cluster(2)
    wait_until(lambda: group_formed(broker.bootstrap, cluster.group, workers), 30,
               "the group formed")
    src = tmp_path / "big.txt"
    lines = [f"record-{i:05d}" for i in range(30000)]
    write_lines(src, lines)
    workers[0].create("big", {"connector.class": SOURCE, "file": str(src), "topic": "big",
                              "batch.size": "500"})
    ids = [worker_id(w) for w in workers]
    owner = wait_until(lambda: running_on(workers[1], "big", ids), 30, "task running")[0]
    victim = next(w for w in workers if worker_id(w) == owner)
    survivor = next(w for w in workers if w is not victim)
    # Kill the task's worker part-way through the file.
    wait_until(lambda: survivor.get("/connectors/big/offsets").json()["offsets"], 30,
               "first offsets stored in the offsets topic")
    victim.kill9()
    # The victim died part-way: the stored position is inside the file.
    [stored] = survivor.get("/connectors/big/offsets").json()["offsets"]
    assert stored["partition"] == {"filename": str(src)}
    assert 0 < stored["offset"]["position"] < src.stat().st_size
    more = [f"record-{i:05d}" for i in range(30000, 31000)]
    write_lines(src, more, "a")
    # After the session timeout the survivor runs the task, from the stored offset.
    wait_until(lambda: running_on(survivor, "big") == [worker_id(survivor)], 40,
               "the task moved to the survivor")
    seen = read_values(broker.bootstrap, "big", lines + more, 60)
    assert set(seen) == set(lines + more)
    duplicates = sum(seen.values()) - len(lines + more)
    # At-least-once: at most the batch produced after the last stored offset (one
    # batch.size) repeats.
    assert duplicates <= 500
    print(f"kill -9 takeover: {len(lines + more)} lines, {duplicates} duplicates")


def test_restart_of_all_workers_keeps_configs_and_resumes_from_stored_offsets(
        cluster, broker, tmp_path):
    workers = cluster(2)
    wait_until(lambda: group_formed(broker.bootstrap, cluster.group, workers), 30,
               "the group formed")
    src = tmp_path / "in.txt"
    first = [f"a-{i}" for i in range(500)]
    write_lines(src, first)
    workers[1].create("keep", {"connector.class": SOURCE, "file": str(src), "topic": "keep"})
    out = tmp_path / "out.txt"
    workers[0].create("drain", {"connector.class": SINK, "file": str(out), "topics": "keep"})
    read_values(broker.bootstrap, "keep", first, 30)
    wait_until(lambda: out.exists() and len(out.read_text().splitlines()) >= 500, 30,
               "the sink wrote the first lines")
    for w in workers:
        w.stop()
    more = [f"b-{i}" for i in range(300)]
    write_lines(src, more, "a")
    for w in workers:
        w.start()
    wait_until(lambda: group_formed(broker.bootstrap, cluster.group, workers), 30,
               "the group formed again")
    for w in workers:
        assert sorted(w.get("/connectors").json()) == ["drain", "keep"]
        assert w.get("/connectors/keep/config").json()["file"] == str(src)
    seen = read_values(broker.bootstrap, "keep", first + more, 40)
    # Clean shutdown: the source resumed exactly where it stopped.
    assert sum(seen.values()) == 800, [v for v, n in seen.items() if n > 1][:5]
    # The sink resumed from its group's committed offsets: every line once in the file.
    wait_until(lambda: len(out.read_text().splitlines()) >= 800, 30, "the sink caught up")
    assert sorted(out.read_text().splitlines()) == sorted(first + more)
    # The stored configs are Kafka's records in the config topic.
    c = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": f"t-{uuid.uuid4()}",
                  "auto.offset.reset": "earliest", "enable.auto.commit": False})
    c.subscribe([f"{cluster.group}-configs"])
    keys = {}

    def more_keys():
        for m in c.consume(num_messages=100, timeout=0.2):
            if m.error() is None:
                keys[m.key().decode()] = m.value()
        return {"connector-keep", "target-state-keep", "task-keep-0", "commit-keep"} <= set(keys)
    try:
        wait_until(more_keys, 20, "Kafka's config records")
    finally:
        c.close()
    assert json.loads(keys["connector-keep"])["properties"]["file"] == str(src)
    assert json.loads(keys["commit-keep"]) == {"tasks": 1}


def test_delete_and_pause_through_a_follower_act_everywhere(cluster, broker, tmp_path):
    workers = cluster(2)
    wait_until(lambda: group_formed(broker.bootstrap, cluster.group, workers), 30,
               "the group formed")
    src = tmp_path / "in.txt"
    write_lines(src, ["x"])
    workers[0].create("gone", {"connector.class": SOURCE, "file": str(src), "topic": "gone"})
    wait_until(lambda: running_on(workers[1], "gone"), 30, "running")
    # Pause through the other worker: the task pauses wherever it runs.
    assert workers[1].put("/connectors/gone/pause").status_code == 202
    for w in workers:
        wait_until(lambda w=w: w.task_states("gone") == ["PAUSED"], 15, "paused everywhere")
    assert workers[0].put("/connectors/gone/resume").status_code == 202
    wait_until(lambda: workers[1].task_states("gone") == ["RUNNING"], 15, "resumed")
    follower = workers[1]
    r = follower.delete("/connectors/gone")
    assert r.status_code == 204, r.text
    for w in workers:
        wait_until(lambda w=w: w.get("/connectors").json() == [], 15, "deleted everywhere")
        assert w.get("/connectors/gone/status").status_code == 404
