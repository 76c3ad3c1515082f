"""gregor connect throughput, end to end with real processes: a broker, a PostgreSQL
cluster (tests/python/pg_cluster.py) and a standalone worker.

- file source: N lines in a file -> topic (time from connector creation to the last
  record readable by a consumer);
- PostgreSQL sink: N JSON records already in a topic -> upserted rows (time from
  connector creation until `count(*)` is N);
- PostgreSQL CDC: N rows inserted in one transaction -> change events on the topic
  (time from the COMMIT until the last event is consumed).

    GREGOR_BIN=target/release/gregor .venv/bin/python bench/connect_bench.py [N]
"""
import json
import shutil
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "python"))
from confluent_kafka import Consumer, Producer  # noqa: E402
from conftest import Broker  # noqa: E402
from connect_worker import ConnectWorker  # noqa: E402
from pg_cluster import PgCluster  # noqa: E402

N = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
PLAIN = {
    "key.converter": "org.apache.kafka.connect.json.JsonConverter",
    "key.converter.schemas.enable": "false",
    "value.converter": "org.apache.kafka.connect.json.JsonConverter",
    "value.converter.schemas.enable": "false",
}


def count_records(bootstrap, topic, n, timeout=600):
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": f"b-{uuid.uuid4()}",
                  "auto.offset.reset": "earliest", "topic.metadata.refresh.interval.ms": 200})
    c.subscribe([topic])
    seen = 0
    deadline = time.monotonic() + timeout
    while seen < n and time.monotonic() < deadline:
        seen += sum(1 for m in c.consume(10000, 0.2) if m.error() is None)
    c.close()
    assert seen >= n, f"only {seen} of {n} records on {topic}"
    return time.monotonic()


def wait(cond, timeout=600):
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)
    return time.monotonic()


def main():
    tmp = Path(tempfile.mkdtemp(prefix="connect-bench-"))
    broker = Broker(tmp / "data", tmp / "broker.log").start()
    pg = PgCluster().start()
    worker = ConnectWorker(broker.bootstrap, tmp, extra_props=PLAIN).start()
    try:
        src = tmp / "lines.txt"
        src.write_text("".join(f"line {i:09d} {'x' * 80}\n" for i in range(N)))
        t0 = time.monotonic()
        worker.create("file", {"connector.class": "FileStreamSource", "file": str(src),
                               "topic": "bench-lines", "batch.size": "5000",
                               "value.converter": "org.apache.kafka.connect.storage.StringConverter"})
        t1 = count_records(broker.bootstrap, "bench-lines", N)
        print(f"file source -> topic: {N} lines ({N * 100 / 1e6:.1f} MB) in {t1 - t0:.2f}s = {N / (t1 - t0):,.0f} records/s")

        p = Producer({"bootstrap.servers": broker.bootstrap, "linger.ms": 20, "acks": "all"})
        for i in range(N):
            p.produce("bench-users", key=json.dumps({"id": i}),
                      value=json.dumps({"id": i, "name": f"user-{i}", "score": i * 0.5}))
            if i % 10000 == 0:
                p.poll(0)
        assert p.flush(120) == 0
        t0 = time.monotonic()
        worker.create("sink", {"connector.class": "PostgresSink", "connection.url": pg.url,
                               "connection.user": "postgres", "topics": "bench-users",
                               "insert.mode": "upsert", "pk.mode": "record_key",
                               "auto.create": "true", "batch.size": "3000"})

        def sunk():
            try:
                return pg.sql("SELECT count(*) FROM \"bench-users\"") == [[str(N)]]
            except AssertionError:
                return False
        t1 = wait(sunk)
        print(f"topic -> PostgreSQL sink (upsert by key): {N} rows in {t1 - t0:.2f}s = {N / (t1 - t0):,.0f} rows/s")

        pg.sql("CREATE TABLE cdc_rows (id bigint PRIMARY KEY, name text, score double precision)")
        worker.create("cdc", {"connector.class": "PostgresCdcSource", "connection.url": pg.url,
                              "connection.user": "postgres", "topic.prefix": "bench",
                              "table.include.list": "public.cdc_rows", "batch.size": "20000",
                              "poll.interval.ms": "50"})
        wait(lambda: worker.task_states("cdc") == ["RUNNING"])
        t0 = time.monotonic()
        pg.sql(f"INSERT INTO cdc_rows SELECT g, 'row-' || g, g * 0.5 FROM generate_series(1, {N}) g")
        t1 = count_records(broker.bootstrap, "bench.public.cdc_rows", N)
        print(f"PostgreSQL CDC -> topic: {N} inserted rows in {t1 - t0:.2f}s = {N / (t1 - t0):,.0f} rows/s")
    finally:
        worker.stop()
        pg.stop()
        broker.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
