"""gregor connect in distributed mode, operations across workers: a task restart is
routed to the worker running the task (Kafka's DistributedHerder.restartTask with
forwarding), KIP-745 restarts of failed instances happen on whichever worker runs them,
status writes are fenced by generation so a worker dropped from the group cannot
overwrite the new owner's status, and the PostgreSQL CDC source and sink survive a
kill -9 of the CDC task's worker. Driven with requests, checked with confluent-kafka
(the status topic, Kafka's records) and psql. Every wait is a condition with a deadline."""
import collections
import json
import os
import shutil
import signal
import threading
import time
import uuid

import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

from conftest import wait_until
from connect_worker import ConnectWorker, distributed_props
from test_connect_distributed import group_formed, running_on, statuses, worker_id, write_lines

SOURCE = "org.apache.kafka.connect.file.FileStreamSourceConnector"
SINK = "org.apache.kafka.connect.file.FileStreamSinkConnector"


@pytest.fixture
def broker(broker_factory):
    return broker_factory({"group.initial.rebalance.delay.ms": "0"})


@pytest.fixture
def cluster(broker, tmp_path):
    """start(n) starts n workers of one group, each in its own working directory (its
    work dir), so a relative file path names a different file on each worker."""
    workers = []
    group = f"connect-{uuid.uuid4().hex[:8]}"

    def start(n, **overrides):
        for _ in range(n):
            d = tmp_path / f"w{len(workers)}"
            d.mkdir(exist_ok=True)
            w = ConnectWorker(broker.bootstrap, d, distributed_props(group, **overrides), cwd=d)
            workers.append(w.start())
        return workers

    start.group = group
    yield start
    for w in workers:
        if w.proc and w.proc.poll() is None:
            os.kill(w.proc.pid, signal.SIGCONT)
        w.kill9()


def status_records(bootstrap, topic):
    """Every record of the status topic, (key, value or None), in each key's order
    (a key always lives in one partition), read up to the end offsets."""
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": f"t-{uuid.uuid4()}",
                  "enable.auto.commit": False})
    try:
        parts = c.list_topics(topic, timeout=10).topics[topic].partitions
        ends = {p: c.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] for p in parts}
        c.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in parts])
        pos = {p: 0 for p in parts}
        out = []

        def more():
            for m in c.consume(num_messages=1000, timeout=0.2):
                if m.error() is None:
                    pos[m.partition()] = m.offset() + 1
                    out.append((m.key().decode(), m.value() and json.loads(m.value())))
            return all(pos[p] >= ends[p] for p in parts)
        wait_until(more, 30, f"{topic} read to its end")
        return out
    finally:
        c.close()


def task_split(w, name):
    """{state: task status} when the connector has one RUNNING and one FAILED task."""
    s = statuses(w, name)
    if not s or len(s["tasks"]) != 2:
        return None
    by_state = {t["state"]: t for t in s["tasks"]}
    return by_state if set(by_state) == {"RUNNING", "FAILED"} else None


def test_task_restart_is_routed_to_its_worker_and_only_failed_tasks_restart(cluster, broker):
    w0, w1 = workers = cluster(2)
    wait_until(lambda: group_formed(broker.bootstrap, cluster.group, workers), 30, "the group formed")
    # Two sink tasks write `out/sink.txt` relative to their worker's directory, which
    # exists only on w0: the task there runs, the one on w1 fails at start. (Round-robin
    # puts the connector's two tasks on different workers.)
    (w0.work_dir / "out").mkdir()
    w0.create("mixed", {"connector.class": SINK, "file": "out/sink.txt", "topics": "mixed-in",
                        "tasks.max": "2"})
    split = wait_until(lambda: task_split(w1, "mixed"), 30, "one task RUNNING, one FAILED")
    assert split["RUNNING"]["worker_id"] == worker_id(w0)
    assert split["FAILED"]["worker_id"] == worker_id(w1)
    assert "Couldn't find or create file 'out/sink.txt'" in split["FAILED"]["trace"]
    failed, running = split["FAILED"]["id"], split["RUNNING"]["id"]

    # Kafka's 404 bodies, from either worker.
    for w in workers:
        r = w.post("/connectors/nope/tasks/0/restart")
        assert (r.status_code, r.json()) == (404, {"error_code": 404, "message": "Unknown connector: nope"})
        r = w.post("/connectors/mixed/tasks/2/restart")
        assert (r.status_code, r.json()) == (404, {"error_code": 404, "message": "Unknown task: mixed-2"})
    # A worker that does not run the task and may not forward (`forward=false`: the
    # request's last hop, as after a rebalance moved the task): 409, as Kafka.
    r = w0.post(f"/connectors/mixed/tasks/{failed}/restart", params={"forward": "false"})
    assert (r.status_code, r.json()) == (409, {
        "error_code": 409,
        "message": "Cannot complete request because of a conflicting operation (e.g. worker rebalance)"})

    # Fix the cause on w1, restart through w0 (not the task's worker): 204 once w1 has
    # restarted it, and it runs there.
    (w1.work_dir / "out").mkdir()
    r = w0.post(f"/connectors/mixed/tasks/{failed}/restart")
    assert (r.status_code, r.content) == (204, b""), r.text
    both = sorted([worker_id(w0), worker_id(w1)])
    wait_until(lambda: sorted(running_on(w0, "mixed") or []) == both, 15, "both tasks RUNNING")
    assert statuses(w1, "mixed")["tasks"][failed]["worker_id"] == worker_id(w1)
    # Through the task's own worker too.
    assert w1.post(f"/connectors/mixed/tasks/{failed}/restart").status_code == 204

    # KIP-745: break w1's task again, then restart only failed instances through w0.
    shutil.rmtree(w1.work_dir / "out")
    assert w1.post(f"/connectors/mixed/tasks/{failed}/restart").status_code == 204
    wait_until(lambda: task_split(w0, "mixed"), 15, "w1's task FAILED again")
    (w1.work_dir / "out").mkdir()
    r = w0.post("/connectors/mixed/restart", params={"includeTasks": "true", "onlyFailed": "true"})
    assert r.status_code == 202, r.text
    body = r.json()
    assert body["connector"]["state"] == "RUNNING"
    assert {t["id"]: t["state"] for t in body["tasks"]} == {failed: "RESTARTING", running: "RUNNING"}
    wait_until(lambda: sorted(running_on(w1, "mixed") or []) == both, 15, "both tasks RUNNING again")
    # The status topic says what restarted, and where: RESTARTING (Kafka's onRestart)
    # was written for the failed task only, by its worker, in the current generation.
    records = status_records(broker.bootstrap, f"{cluster.group}-status")
    restarting = [(k, v["worker_id"]) for k, v in records if v and v["state"] == "RESTARTING"]
    assert restarting == [(f"status-task-mixed-{failed}", worker_id(w1))]
    # Data still flows to both files (the topic's partitions are shared by the tasks).
    from confluent_kafka import Producer
    p = Producer({"bootstrap.servers": broker.bootstrap})
    for i in range(20):
        p.produce("mixed-in", f"m-{i}")
    assert p.flush(30) == 0

    def lines():
        out = []
        for w in workers:
            f = w.work_dir / "out" / "sink.txt"
            out += f.read_text().splitlines() if f.exists() else []
        return sorted(out)
    wait_until(lambda: lines() == sorted(f"m-{i}" for i in range(20)), 30, "every record in a file")


def test_a_worker_paused_past_its_session_cannot_overwrite_the_new_owners_status(
        cluster, broker, tmp_path):
    workers = cluster(2)
    wait_until(lambda: group_formed(broker.bootstrap, cluster.group, workers), 30, "the group formed")
    src = tmp_path / "in.txt"
    write_lines(src, ["a", "b"])
    workers[0].create("z", {"connector.class": SOURCE, "file": str(src), "topic": "z"})
    ids = [worker_id(w) for w in workers]
    owner = wait_until(lambda: running_on(workers[1], "z", ids), 30, "task running")[0]
    victim = next(w for w in workers if worker_id(w) == owner)
    survivor = next(w for w in workers if w is not victim)
    key = "status-task-z-0"
    os.kill(victim.proc.pid, signal.SIGSTOP)
    try:
        # Past the session timeout (6 s) the group drops the victim; the survivor runs
        # the task in a new generation.
        wait_until(lambda: running_on(survivor, "z") == [worker_id(survivor)], 40,
                   "the task moved to the survivor")
        moved = [v for k, v in status_records(broker.bootstrap, f"{cluster.group}-status")
                 if k == key and v and v["state"] == "RUNNING" and v["worker_id"] == worker_id(survivor)]
        generation = moved[-1]["generation"]
        stale_generation = max(v["generation"] for k, v in status_records(
            broker.bootstrap, f"{cluster.group}-status") if k == key and v and v["worker_id"] == owner)
        assert stale_generation < generation
    finally:
        os.kill(victim.proc.pid, signal.SIGCONT)
    # The victim wakes, finds it left the group, stops its task (it would write
    # UNASSIGNED for it: fenced) and rejoins; the group rebalances once more. Until it
    # is whole again, no status read shows the victim's stale write.
    seen = []

    def rejoined():
        s = statuses(survivor, "z")
        if s and s["tasks"]:
            seen.append((s["tasks"][0]["state"], s["tasks"][0]["worker_id"]))
        return group_formed(broker.bootstrap, cluster.group, workers)
    wait_until(rejoined, 40, "the resumed worker rejoined the group")
    assert ("UNASSIGNED", owner) not in seen, seen
    # The victim logged the write it did not make.
    log = victim.log_path.read_text()
    assert f"not writing status UNASSIGNED of {key} for generation {stale_generation}" in log
    # The status topic: after the new owner's RUNNING, nothing of an older generation.
    records = [v for k, v in status_records(broker.bootstrap, f"{cluster.group}-status") if k == key]
    first = next(i for i, v in enumerate(records)
                 if v and v["state"] == "RUNNING" and v["generation"] == generation)
    assert [v for v in records[first:] if v and v["generation"] < generation] == []
    # The new generation runs the task (eager round-robin over the members' random ids
    # decides which worker): its RUNNING, of a newer generation, is the key's last record.
    def settled():
        recs = [v for k, v in status_records(broker.bootstrap, f"{cluster.group}-status") if k == key]
        last = recs[-1]
        return (len(recs), last) if last and last["state"] == "RUNNING" \
            and last["generation"] > generation else None
    count, last = wait_until(settled, 30, "the task RUNNING in the generation after the rejoin")
    wait_until(lambda: all(running_on(w, "z") == [last["worker_id"]] for w in workers), 15,
               "every worker shows the new generation's owner")
    # A bounded stability check, documented: for 3 s after that nothing more is written
    # for the task (no late stale write lands) and every worker keeps showing it.
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline:
        for w in workers:
            assert running_on(w, "z") == [last["worker_id"]], statuses(w, "z")
        time.sleep(0.2)
    recs = [v for k, v in status_records(broker.bootstrap, f"{cluster.group}-status") if k == key]
    assert len(recs) == count and recs[-1] == last


@pytest.fixture
def pg():
    from pg_cluster import PgCluster
    c = PgCluster().start()
    yield c
    c.stop()


JSON_PLAIN = {
    "key.converter": "org.apache.kafka.connect.json.JsonConverter",
    "key.converter.schemas.enable": "false",
    "value.converter": "org.apache.kafka.connect.json.JsonConverter",
    "value.converter.schemas.enable": "false",
}


def read_events(bootstrap, topic, done, timeout):
    """Reads `topic` (every partition, from the start) until `done(events)`; events are
    (key dict, value dict or None for a tombstone)."""
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": f"t-{uuid.uuid4()}",
                  "enable.auto.commit": False})
    parts = wait_until(lambda: c.list_topics(topic, timeout=5).topics[topic].partitions, 30,
                       f"{topic} exists")
    c.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in parts])
    events = []

    def more():
        for m in c.consume(num_messages=5000, timeout=0.2):
            if m.error() is None:
                events.append((json.loads(m.key()), m.value() and json.loads(m.value())))
        return done(events)
    try:
        wait_until(more, timeout, f"every change on {topic}")
    finally:
        c.close()
    return events


def topic_size(bootstrap, topic):
    """The number of records in `topic` (sum of its partitions' end offsets)."""
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": f"t-{uuid.uuid4()}"})
    try:
        parts = c.list_topics(topic, timeout=10).topics[topic].partitions
        return sum(c.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] for p in parts)
    finally:
        c.close()


def test_postgres_cdc_and_sink_on_two_workers_survive_kill9_of_the_cdc_worker(cluster, broker, pg):
    pg.sql("CREATE TABLE src (id int PRIMARY KEY, v text, n bigint)")
    pg.sql("CREATE TABLE dst (id int PRIMARY KEY, v text, n bigint)")
    # 210 rows, not a multiple of batch.size: the CDC source marks the snapshot complete
    # on its last row, which a FETCH returning a full batch does not recognise.
    pg.sql("INSERT INTO src SELECT g, 'snap-' || g, g FROM generate_series(1, 210) g")
    workers = cluster(2)
    wait_until(lambda: group_formed(broker.bootstrap, cluster.group, workers), 30, "the group formed")
    # The sink applies each change's `after` row; a delete (after = null) and its
    # tombstone delete the row by key.
    workers[1].create("pgsink", dict(JSON_PLAIN, **{
        "connector.class": "PostgresSink", "connection.url": pg.url, "connection.user": "postgres",
        "topics": "dist.public.src", "insert.mode": "upsert", "pk.mode": "record_key",
        "delete.enabled": "true", "table.name.format": "dst",
        "transforms": "after",
        "transforms.after.type": "org.apache.kafka.connect.transforms.ExtractField$Value",
        "transforms.after.field": "after"}))
    wait_until(lambda: running_on(workers[0], "pgsink"), 30, "the sink running")
    # Created second, so no rebalance restarts the CDC task during its snapshot.
    workers[0].create("cdc", dict(JSON_PLAIN, **{
        "connector.class": "PostgresCdcSource", "connection.url": pg.url,
        "connection.user": "postgres", "topic.prefix": "dist", "slot.name": "dist_slot",
        "publication.name": "dist_pub", "table.include.list": "public.src",
        "poll.interval.ms": "50", "batch.size": "50"}))
    rows = lambda table: pg.sql(f"SELECT id, v, n FROM {table} ORDER BY id")
    wait_until(lambda: len(rows("dst")) == 210, 60, "the snapshot copied by the sink")
    wait_until(lambda: [o["offset"].get("snapshot_completed") for o in
                        workers[1].get("/connectors/cdc/offsets").json()["offsets"]] == [True],
               30, "the snapshot's completion stored in the offsets topic")
    ids = [worker_id(w) for w in workers]
    owner = wait_until(lambda: running_on(workers[0], "cdc", ids), 30, "CDC running")[0]
    victim = next(w for w in workers if worker_id(w) == owner)
    survivor = next(w for w in workers if w is not victim)

    # A writer inserts, updates and deletes, one transaction each, across the kill.
    inserted, updated, deleted = [], [], []
    progress = threading.Event()
    failure = []

    def write():
        try:
            live = list(range(1, 211))
            for i in range(211, 611):
                pg.sql(f"INSERT INTO src VALUES ({i}, 'ins-{i}', {i})")
                inserted.append(i)
                live.append(i)
                if i % 3 == 0:
                    k = live[(i * 7) % len(live)]
                    pg.sql(f"UPDATE src SET v = 'upd-{i}', n = n + 1 WHERE id = {k}")
                    updated.append(k)
                if i % 5 == 0:
                    k = live.pop((i * 11) % len(live))
                    pg.sql(f"DELETE FROM src WHERE id = {k}")
                    deleted.append(k)
                if i == 310:
                    progress.set()
        except Exception as e:  # reported below
            failure.append(e)
            progress.set()
    writer = threading.Thread(target=write)
    writer.start()
    assert progress.wait(120) and not failure, failure
    # Mid-stream: the source has delivered part of the stream when its worker dies.
    victim.kill9()
    delivered = topic_size(broker.bootstrap, "dist.public.src")
    writer.join(180)
    assert not writer.is_alive() and not failure, failure
    # The survivor takes the CDC task over and resumes from the stored LSN.
    wait_until(lambda: running_on(survivor, "cdc") == [worker_id(survivor)], 60,
               "the CDC task moved to the survivor")
    expected = rows("src")
    wait_until(lambda: rows("dst") == expected, 90, "the sink's table equals the source table")

    # Every change is on the topic (at-least-once): each insert, update and delete.
    n_changes = 210 + len(inserted) + len(updated) + len(deleted)

    def complete(events):
        ops = collections.Counter(v["op"] for _, v in events if v)
        return sum(1 for _, v in events if v) >= n_changes and ops["d"] >= len(deleted)
    events = read_events(broker.bootstrap, "dist.public.src", complete, 60)
    changes = [(v["op"], k["id"], v["source"]["lsn"]) for k, v in events if v]
    unique = set(changes)
    by_op = collections.defaultdict(list)
    for op, i, lsn in unique:
        by_op[op].append(i)
    # No re-snapshot: each of the 210 initial rows was read once, before the kill.
    assert sorted(i for op, i, _ in changes if op == "r") == list(range(1, 211))
    assert sorted(by_op["c"]) == inserted
    assert sorted(by_op["d"]) == sorted(deleted)
    assert sorted(by_op["u"]) == sorted(updated)
    duplicates = len(changes) - len(unique)
    # The kill was mid-stream: past the snapshot, short of the end.
    assert 210 < delivered < len(events), (delivered, len(events))
    tombstones = sum(1 for _, v in events if v is None)
    assert tombstones >= len(deleted)
    print(f"PostgreSQL CDC kill -9 takeover: {len(unique)} changes "
          f"({len(inserted)} inserts, {len(updated)} updates, {len(deleted)} deletes), "
          f"{duplicates} duplicates, {delivered} records on the topic at the kill")
