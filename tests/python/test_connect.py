"""gregor connect (standalone worker) driven the way operators drive Kafka Connect:
REST with curl and requests, data in and out with confluent-kafka, files on disk.
Every wait is a condition with a deadline."""
import json
import subprocess
import uuid

import pytest
from confluent_kafka import Consumer, Producer

from conftest import wait_until
from connect_worker import ConnectWorker

SOURCE = "org.apache.kafka.connect.file.FileStreamSourceConnector"
SINK = "org.apache.kafka.connect.file.FileStreamSinkConnector"


@pytest.fixture
def worker_factory(broker, tmp_path):
    workers = []

    def make(sub="w", **kw):
        d = tmp_path / sub
        d.mkdir(exist_ok=True)
        w = ConnectWorker(broker.bootstrap, d, **kw).start()
        workers.append(w)
        return w

    yield make
    for w in workers:
        w.kill9()


@pytest.fixture
def worker(worker_factory):
    return worker_factory()


def curl(method, url, body=None):
    """(status, parsed JSON or None) of a curl request, as a shell script would make it."""
    args = ["curl", "-sS", "-X", method, "-H", "Content-Type: application/json",
            "-w", "\n%{http_code}", url]
    if body is not None:
        args += ["-d", json.dumps(body)]
    out = subprocess.run(args, capture_output=True, check=True, text=True).stdout
    text, _, code = out.rpartition("\n")
    return int(code), (json.loads(text) if text.strip() else None)


def consume(bootstrap, topic, count, timeout=30.0):
    """The first `count` records of `topic` (fewer if the deadline passes)."""
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": f"t-{uuid.uuid4()}",
                  "auto.offset.reset": "earliest", "enable.auto.commit": False,
                  "topic.metadata.refresh.interval.ms": 500})
    c.subscribe([topic])
    out = []
    try:
        wait_until(lambda: _poll_into(c, out) >= count, timeout, f"{count} records on {topic}")
    except AssertionError:
        pass
    finally:
        c.close()
    return out


def _poll_into(c, out):
    out.extend(m for m in c.consume(num_messages=5000, timeout=0.2) if m.error() is None)
    return len(out)


def produce(bootstrap, topic, values):
    p = Producer({"bootstrap.servers": bootstrap, "acks": "all"})
    for v in values:
        p.produce(topic, value=v if v is None or isinstance(v, bytes) else v.encode())
    assert p.flush(30) == 0


def file_lines(path):
    return path.read_text().splitlines() if path.exists() else []


def test_rest_api_shapes_errors_and_lifecycle(worker, tmp_path):
    base = worker.url
    code, root = curl("GET", base + "/")
    assert code == 200 and root["version"] and root["kafka_cluster_id"]

    # An invalid config: 400 with every error, and nothing created or started.
    code, err = curl("POST", base + "/connectors", {
        "name": "bad", "config": {"connector.class": "FileStreamSource", "topic": "a,b",
                                  "batch.size": "x"}})
    assert code == 400 and err["error_code"] == 400
    assert 'Missing required configuration "file" which has no default value.' in err["message"]
    assert "Invalid value x for configuration batch.size: Not a number of type INT" in err["message"]
    assert "requires definition of a single topic" in err["message"]
    assert curl("GET", base + "/connectors") == (200, [])
    code, err = curl("POST", base + "/connectors", {
        "name": "bad", "config": {"connector.class": "com.example.Nope"}})
    assert code == 400 and "Failed to find any class" in err["message"]
    code, err = curl("POST", base + "/connectors", {"name": "bad", "config": {
        "connector.class": SINK, "file": str(tmp_path / "o"), "topics": "t",
        "transforms": "x", "transforms.x.type": "org.apache.kafka.connect.transforms.Nope"}})
    assert code == 400 and "Class org.apache.kafka.connect.transforms.Nope could not be found" in err["message"]
    assert worker.get("/connectors").json() == []

    # validate: 200 with per-setting errors.
    r = worker.put("/connector-plugins/FileStreamSink/config/validate",
                   {"connector.class": SINK, "name": "v", "topics": "t"})
    assert r.status_code == 200
    v = r.json()
    assert v["name"] == SINK and v["error_count"] == 1
    by_name = {c["definition"]["name"]: c["value"] for c in v["configs"]}
    assert by_name["file"]["errors"] == ['Missing required configuration "file" which has no default value.']
    assert by_name["topics"]["errors"] == []
    plugins = worker.get("/connector-plugins").json()
    assert {p["class"]: p["type"] for p in plugins} == {
        SINK: "sink", SOURCE: "source",
        "io.gregor.connect.postgres.PostgresSinkConnector": "sink",
        "io.gregor.connect.postgres.PostgresCdcSourceConnector": "source"}
    all_plugins = worker.get("/connector-plugins", params={"connectorsOnly": "false"}).json()
    assert any(p["class"] == "org.apache.kafka.connect.transforms.RegexRouter" for p in all_plugins)

    src = tmp_path / "in.txt"
    src.write_text("")
    config = {"connector.class": "FileStreamSource", "file": str(src), "topic": "life"}
    info = worker.create("life", config)
    assert info == {"name": "life", "config": dict(config, name="life"),
                    "tasks": [{"connector": "life", "task": 0}], "type": "source"}
    r = worker.post("/connectors", {"name": "life", "config": config})
    assert r.status_code == 409 and r.json()["error_code"] == 409
    r = worker.get("/connectors/nope/status")
    assert r.status_code == 404 and r.json() == {"error_code": 404, "message": "Connector nope not found"}
    wait_until(lambda: worker.task_states("life") == ["RUNNING"], 30, "task RUNNING")
    st = worker.status("life")
    assert st["connector"] == {"state": "RUNNING", "worker_id": f"127.0.0.1:{worker.port}"}
    assert st["type"] == "source"
    expanded = worker.get("/connectors?expand=status&expand=info").json()
    assert expanded["life"]["status"]["connector"]["state"] == "RUNNING"
    assert expanded["life"]["info"]["type"] == "source"
    assert worker.get("/connectors/life/tasks").json() == [
        {"id": {"connector": "life", "task": 0}, "config": dict(config, name="life")}]

    # Config update: 200 (201 only on create through PUT).
    r = worker.put("/connectors/life/config", dict(config, **{"batch.size": "10"}))
    assert r.status_code == 200 and r.json()["config"]["batch.size"] == "10"
    r = worker.put("/connectors/other/config", dict(config, topic="other"))
    assert r.status_code == 201
    assert worker.delete("/connectors/other").status_code == 204
    # KIP-980: created STOPPED, no task runs.
    r = worker.post("/connectors", {"name": "cold", "config": config, "initial_state": "STOPPED"})
    assert r.status_code == 201 and r.json()["tasks"] == []
    assert worker.status("cold")["connector"]["state"] == "STOPPED"
    r = worker.post("/connectors", {"name": "x", "config": config, "initial_state": "SLEEPING"})
    assert r.status_code == 400
    assert worker.delete("/connectors/cold").status_code == 204

    assert worker.put("/connectors/life/pause").status_code == 202
    wait_until(lambda: worker.status("life")["connector"]["state"] == "PAUSED"
               and worker.task_states("life") == ["PAUSED"], 30, "PAUSED")
    assert worker.put("/connectors/life/resume").status_code == 202
    wait_until(lambda: worker.task_states("life") == ["RUNNING"], 30, "RUNNING again")

    # Offsets can be changed only when STOPPED (KIP-875).
    r = worker.delete("/connectors/life/offsets")
    assert r.status_code == 400 and "STOPPED" in r.json()["message"]
    assert worker.post("/connectors/life/restart").status_code == 204
    r = worker.post("/connectors/life/restart", params={"includeTasks": "true"})
    assert r.status_code == 202
    assert r.json()["tasks"][0]["state"] == "RESTARTING"
    wait_until(lambda: worker.task_states("life") == ["RUNNING"], 30, "RUNNING after restart")
    assert worker.put("/connectors/life/stop").status_code == 204
    assert worker.status("life")["connector"]["state"] == "STOPPED"
    assert worker.status("life")["tasks"] == []
    r = worker.patch("/connectors/life/offsets", {"offsets": [
        {"partition": {"filename": str(src)}, "offset": {"position": 0}}]})
    assert r.status_code == 200
    assert r.json() == {"message": "The offsets for this connector have been altered successfully"}
    assert worker.get("/connectors/life/offsets").json() == {"offsets": [
        {"partition": {"filename": str(src)}, "offset": {"position": 0}}]}
    r = worker.delete("/connectors/life/offsets")
    assert r.json() == {"message": "The offsets for this connector have been reset successfully"}
    assert worker.get("/connectors/life/offsets").json() == {"offsets": []}

    assert curl("DELETE", base + "/connectors/life") == (204, None)
    assert curl("GET", base + "/connectors/life")[0] == 404
    assert curl("GET", base + "/connectors") == (200, [])


def test_file_source_to_topic_through_transforms(worker, broker, tmp_path):
    src = tmp_path / "in.txt"
    lines = [f"line {i} \u00e9" for i in range(50)]
    src.write_text("".join(l + "\n" for l in lines[:30]))
    worker.create("src", {
        "connector.class": "FileStreamSource", "file": str(src), "topic": "lines-raw",
        "value.converter": "org.apache.kafka.connect.json.JsonConverter",
        "value.converter.schemas.enable": "false",
        "transforms": "hoist,insert,route,mask",
        "transforms.hoist.type": "org.apache.kafka.connect.transforms.HoistField$Value",
        "transforms.hoist.field": "line",
        "transforms.insert.type": "org.apache.kafka.connect.transforms.InsertField$Value",
        "transforms.insert.static.field": "origin",
        "transforms.insert.static.value": "file",
        "transforms.insert.topic.field": "source_topic",
        "transforms.route.type": "org.apache.kafka.connect.transforms.RegexRouter",
        "transforms.route.regex": "(.*)-raw",
        "transforms.route.replacement": "$1-clean",
        # Applies only to topics matching the predicate: none here (negated).
        "transforms.mask.type": "org.apache.kafka.connect.transforms.MaskField$Value",
        "transforms.mask.fields": "line",
        "transforms.mask.predicate": "isclean",
        "transforms.mask.negate": "true",
        "predicates": "isclean",
        "predicates.isclean.type": "org.apache.kafka.connect.transforms.predicates.TopicNameMatches",
        "predicates.isclean.pattern": ".*-clean",
    })
    # A partial last line is not read until its newline arrives.
    with src.open("a") as f:
        f.write("".join(l + "\n" for l in lines[30:]) + "partial")
    msgs = consume(broker.bootstrap, "lines-clean", len(lines))
    values = [json.loads(m.value()) for m in msgs]
    assert values == [{"line": l, "source_topic": "lines-raw", "origin": "file"} for l in lines]
    assert consume(broker.bootstrap, "lines-clean", len(lines) + 1, timeout=1.5)[len(lines):] == []
    with src.open("a") as f:
        f.write(" end\n")
    msgs = consume(broker.bootstrap, "lines-clean", len(lines) + 1)
    assert json.loads(msgs[-1].value())["line"] == "partial end"
    offsets = worker.get("/connectors/src/offsets").json()["offsets"]
    assert offsets == [{"partition": {"filename": str(src)},
                        "offset": {"position": len(src.read_bytes())}}]


def test_topic_to_file_sink_with_filter_and_dead_letter_queue(worker, broker, tmp_path):
    out = tmp_path / "out.txt"
    produce(broker.bootstrap, "orders", ['"one"', '{"a": 1}', "not json", '"two"', None])
    produce(broker.bootstrap, "noise", ['"dropped"'])
    worker.create("sink", {
        "connector.class": "FileStreamSink", "file": str(out), "topics": "orders,noise",
        "value.converter": "org.apache.kafka.connect.json.JsonConverter",
        "value.converter.schemas.enable": "false",
        "errors.tolerance": "all",
        "errors.log.enable": "true",
        "errors.deadletterqueue.topic.name": "orders-dlq",
        "errors.deadletterqueue.context.headers.enable": "true",
        "transforms": "drop,tomb",
        "transforms.drop.type": "org.apache.kafka.connect.transforms.Filter",
        "transforms.drop.predicate": "noise",
        "transforms.tomb.type": "org.apache.kafka.connect.transforms.Filter",
        "transforms.tomb.predicate": "tombstone",
        "predicates": "noise,tombstone",
        "predicates.noise.type": "org.apache.kafka.connect.transforms.predicates.TopicNameMatches",
        "predicates.noise.pattern": "noise",
        "predicates.tombstone.type": "org.apache.kafka.connect.transforms.predicates.RecordIsTombstone",
    })
    wait_until(lambda: len(file_lines(out)) >= 3, 30, "3 lines in the sink file")
    assert file_lines(out) == ["one", '{"a":1}', "two"]
    dlq = consume(broker.bootstrap, "orders-dlq", 1)
    assert [m.value() for m in dlq] == [b"not json"]
    headers = {k: v.decode() for k, v in dlq[0].headers()}
    assert headers["__connect.errors.topic"] == "orders"
    assert headers["__connect.errors.offset"] == "2"
    assert headers["__connect.errors.connector.name"] == "sink"
    assert headers["__connect.errors.stage"] == "VALUE_CONVERTER"
    assert headers["__connect.errors.exception.class.name"] == "org.apache.kafka.connect.errors.DataException"
    assert worker.task_states("sink") == ["RUNNING"]
    # Offsets are committed once flushed: the consumer group is at the log end.
    wait_until(lambda: {(o["partition"]["kafka_topic"], o["offset"]["kafka_offset"])
                        for o in worker.get("/connectors/sink/offsets").json()["offsets"]}
               == {("orders", 5), ("noise", 1)}, 30, "sink offsets committed")


def test_bad_record_with_tolerance_none_fails_the_task_with_a_trace(worker, broker, tmp_path):
    out = tmp_path / "out.txt"
    produce(broker.bootstrap, "strict", ['{"schema": {"type": "string", "optional": false}, "payload": "ok"}',
                                         '{"plain": "json"}'])
    worker.create("strict", {
        "connector.class": SINK, "file": str(out), "topics": "strict",
        "value.converter": "org.apache.kafka.connect.json.JsonConverter",
    })
    wait_until(lambda: worker.task_states("strict") == ["FAILED"], 30, "task FAILED")
    task = worker.status("strict")["tasks"][0]
    assert "Tolerance exceeded in error handler" in task["trace"]
    assert "schemas.enable" in task["trace"]
    # The bad record is never written, and no offset is committed past it.
    assert "plain" not in (out.read_text() if out.exists() else "")
    assert worker.get("/connectors/strict/offsets").json() == {"offsets": []}
    r = worker.post("/connectors/strict/restart", params={"includeTasks": "true", "onlyFailed": "true"})
    assert r.status_code == 202
    body = r.json()
    assert body["connector"]["state"] == "RUNNING" and body["tasks"][0]["state"] == "RESTARTING"
    wait_until(lambda: worker.task_states("strict") == ["FAILED"], 30, "FAILED again on the same record")


def test_kill9_and_restart_loses_no_line(worker_factory, broker, tmp_path):
    w = worker_factory("crash")
    src = tmp_path / "big.txt"
    first = [f"record-{i:05d}" for i in range(20000)]
    src.write_text("".join(l + "\n" for l in first))
    w.create("big", {"connector.class": SOURCE, "file": str(src), "topic": "big", "batch.size": "200"})
    # Kill while the source is part-way through the file.
    wait_until(lambda: w.get("/connectors/big/offsets").json()["offsets"], 30, "first offsets stored")
    w.kill9()
    stored = json.loads(w.offsets_file.read_text())["big"][0]["offset"]["position"]
    assert 0 < stored
    more = [f"record-{i:05d}" for i in range(20000, 21000)]
    with src.open("a") as f:
        f.write("".join(l + "\n" for l in more))
    # Same port, same files: the connector comes back from the stored config.
    w.start()
    wait_until(lambda: w.task_states("big") == ["RUNNING"], 30, "connector restored after kill -9")
    expected = first + more
    # Read until every line was seen (duplicates, at-least-once, are allowed).
    c = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": f"t-{uuid.uuid4()}",
                  "auto.offset.reset": "earliest", "enable.auto.commit": False})
    c.subscribe(["big"])
    msgs = []
    missing = set(expected)

    def read_more():
        for m in c.consume(num_messages=5000, timeout=0.2):
            if m.error() is None:
                msgs.append(m)
                missing.discard(m.value().decode())
        return not missing
    try:
        wait_until(read_more, 60, "every line of the file on the topic")
    finally:
        c.close()
    # Per-partition order holds within what each run produced: the last record is last.
    assert msgs[-1].value().decode() == expected[-1]
    w.stop()


@pytest.fixture
def pg():
    from pg_cluster import PgCluster
    cluster = PgCluster().start()
    yield cluster
    cluster.stop()


JSON_PLAIN = {
    "key.converter": "org.apache.kafka.connect.json.JsonConverter",
    "key.converter.schemas.enable": "false",
    "value.converter": "org.apache.kafka.connect.json.JsonConverter",
    "value.converter.schemas.enable": "false",
}


def test_postgres_sink_upserts_and_deletes_by_key(worker, broker, pg):
    p = Producer({"bootstrap.servers": broker.bootstrap, "acks": "all"})
    for key, value in [({"id": 1}, {"id": 1, "name": "ann", "score": 1.5}),
                       ({"id": 2}, {"id": 2, "name": "bob", "score": 2.0}),
                       ({"id": 3}, {"id": 3, "name": "it's", "score": 0.0}),
                       ({"id": 1}, {"id": 1, "name": "ann2", "score": 3.0}),
                       ({"id": 2}, None)]:
        p.produce("users", key=json.dumps(key), value=None if value is None else json.dumps(value))
    assert p.flush(30) == 0
    # Validation names the rule: delete needs record_key.
    r = worker.post("/connectors", {"name": "pgsink", "config": dict(JSON_PLAIN, **{
        "connector.class": "PostgresSink", "connection.url": pg.url, "topics": "users",
        "delete.enabled": "true", "pk.mode": "record_value", "pk.fields": "id"})})
    assert r.status_code == 400 and "Delete support only works with pk.mode=record_key" in r.json()["message"]
    worker.create("pgsink", dict(JSON_PLAIN, **{
        "connector.class": "io.gregor.connect.postgres.PostgresSinkConnector",
        "connection.url": pg.url, "connection.user": "postgres", "topics": "users",
        "insert.mode": "upsert", "pk.mode": "record_key", "delete.enabled": "true",
        "auto.create": "true", "table.name.format": "app_${topic}"}))
    expected = [["1", "ann2", "3"], ["3", "it's", "0"]]
    wait_until(lambda: _table(pg) == expected, 30, "upserted and deleted rows")
    p.produce("users", key=json.dumps({"id": 4}), value=json.dumps({"id": 4, "name": "dan", "score": 4}))
    assert p.flush(30) == 0
    wait_until(lambda: _table(pg) == expected + [["4", "dan", "4"]], 30, "a later row")
    assert worker.task_states("pgsink") == ["RUNNING"]


def _table(pg):
    try:
        return pg.sql("SELECT id, name, score FROM app_users ORDER BY id")
    except AssertionError:
        return None


def test_postgres_cdc_snapshot_then_changes_in_order(worker, broker, pg):
    pg.sql("CREATE TABLE items (id int PRIMARY KEY, name text, qty bigint, ok boolean)")
    pg.sql("INSERT INTO items VALUES (1, 'apple', 10, true)")
    pg.sql("CREATE TABLE bulk (id int PRIMARY KEY)")
    pg.sql("INSERT INTO bulk SELECT generate_series(1, 25)")
    worker.create("cdc", dict(JSON_PLAIN, **{
        "connector.class": "PostgresCdcSource", "connection.url": pg.url,
        "connection.user": "postgres", "topic.prefix": "pg", "batch.size": "10",
        "table.include.list": "public.bulk,public.items", "poll.interval.ms": "50"}))
    # The snapshot reads `batch.size` rows per poll: 25 rows in 3 fetches.
    bulk = consume(broker.bootstrap, "pg.public.bulk", 25)
    assert [json.loads(m.key())["id"] for m in bulk] == list(range(1, 26))
    assert {json.loads(m.value())["op"] for m in bulk} == {"r"}
    wait_until(lambda: worker.get("/connectors/cdc/offsets").json()["offsets"], 30, "snapshot stored")
    pg.sql("INSERT INTO items VALUES (2, 'pear', 5, false)")
    pg.sql("UPDATE items SET qty = 11 WHERE id = 1")
    pg.sql("BEGIN; DELETE FROM items WHERE id = 2; INSERT INTO items VALUES (3, 'fig', 1, NULL); COMMIT")
    msgs = consume(broker.bootstrap, "pg.public.items", 6)
    events = [(json.loads(m.key()), None if m.value() is None else json.loads(m.value())) for m in msgs]
    assert [(k["id"], v and v["op"]) for k, v in events] == [
        (1, "r"), (2, "c"), (1, "u"), (2, "d"), (2, None), (3, "c")]
    assert events[0][1]["after"] == {"id": 1, "name": "apple", "qty": 10, "ok": True}
    assert events[0][1]["before"] is None
    assert events[2][1]["after"]["qty"] == 11
    assert events[3][1]["before"]["id"] == 2 and events[3][1]["after"] is None
    src = events[1][1]["source"]
    assert (src["connector"], src["db"], src["schema"], src["table"]) == ("postgresql", "postgres", "public", "items")
    assert src["lsn"] > 0 and src["txId"] > 0 and src["ts_ms"] > 0
    # Delete and insert of one transaction share its LSN.
    assert events[3][1]["source"]["lsn"] == events[5][1]["source"]["lsn"]
    # The slot is advanced once Kafka has the records: nothing is pending in it.
    wait_until(lambda: slot_drained(pg, "gregor_connect", "gregor_connect"), 30, "slot advanced")


def test_file_sink_waits_for_its_topic_pauses_and_survives_kill9(worker_factory, broker, tmp_path):
    w = worker_factory("sinkcrash")
    out = tmp_path / "late.txt"
    w.create("late", {"connector.class": SINK, "file": str(out), "topics": "late"})
    wait_until(lambda: w.task_states("late") == ["RUNNING"], 30, "sink RUNNING before its topic exists")
    produce(broker.bootstrap, "late", ["a", "b", "c"])
    wait_until(lambda: file_lines(out) == ["a", "b", "c"], 30, "first lines")
    assert w.task_states("late") == ["RUNNING"]
    assert w.put("/connectors/late/pause").status_code == 202
    wait_until(lambda: w.task_states("late") == ["PAUSED"], 30, "sink PAUSED")
    produce(broker.bootstrap, "late", ["d", "e"])
    assert w.put("/connectors/late/resume").status_code == 202
    wait_until(lambda: file_lines(out) == list("abcde"), 30, "lines after resume")
    w.kill9()
    produce(broker.bootstrap, "late", ["f", "g"])
    w.start()
    wait_until(lambda: file_lines(out)[-2:] == ["f", "g"], 30, "lines after kill -9 and restart")
    lines = file_lines(out)
    # At-least-once: every line, in order of first appearance.
    assert list(dict.fromkeys(lines)) == list("abcdefg")


def slot_drained(pg, slot, publication):
    """Whether a logical slot has no change left to hand out. The connector reads the
    slot itself every poll; a peek that meets one of its reads is refused ("is active
    for PID") and counts as not yet."""
    try:
        return pg.sql(
            f"SELECT count(*) FROM pg_logical_slot_peek_binary_changes('{slot}', NULL, NULL, "
            f"'proto_version', '1', 'publication_names', '{publication}')") == [["0"]]
    except AssertionError as e:
        if "is active for PID" in str(e):
            return False
        raise


def test_postgres_cdc_resumes_after_kill9_without_loss_or_replay(worker_factory, broker, pg):
    w = worker_factory("cdccrash")
    pg.sql("CREATE TABLE t (id int PRIMARY KEY, v text)")
    w.create("cdc2", dict(JSON_PLAIN, **{
        "connector.class": "PostgresCdcSource", "connection.url": pg.url,
        "connection.user": "postgres", "topic.prefix": "crash", "slot.name": "crash_slot",
        "publication.name": "crash_pub", "table.include.list": "t", "poll.interval.ms": "50"}))
    wait_until(lambda: w.task_states("cdc2") == ["RUNNING"], 30, "CDC RUNNING")
    for i in (1, 2, 3):
        pg.sql(f"INSERT INTO t VALUES ({i}, 'v{i}')")
    wait_until(lambda: slot_drained(pg, "crash_slot", "crash_pub"), 30,
               "three changes delivered and the slot advanced")
    w.kill9()
    pg.sql("INSERT INTO t VALUES (4, 'v4')")
    pg.sql("UPDATE t SET v = 'w1' WHERE id = 1")
    w.start()
    msgs = consume(broker.bootstrap, "crash.public.t", 5)
    # Nothing replayed: a bounded look for a sixth event finds none.
    assert len(consume(broker.bootstrap, "crash.public.t", 6, timeout=3)) == 5
    got = [(json.loads(m.key())["id"], json.loads(m.value())["op"]) for m in msgs]
    assert got == [(1, "c"), (2, "c"), (3, "c"), (4, "c"), (1, "u")]
    assert json.loads(msgs[-1].value())["after"] == {"id": 1, "v": "w1"}
    # The stopped connector's state and config survive a restart too.
    assert w.put("/connectors/cdc2/stop").status_code == 204
    w.kill9()
    w.start()
    assert w.status("cdc2")["connector"]["state"] == "STOPPED"
    assert w.get("/connectors/cdc2/config").json()["slot.name"] == "crash_slot"
