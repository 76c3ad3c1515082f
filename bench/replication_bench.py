"""Replication figures for BENCHMARKS.md, in one run on one machine: a 3-node cluster
(three processes), topics with replication factor 1 and 3 (min.insync.replicas 2), and
`gregor bench produce` (librdkafka) at acks=1 and acks=all with 100 B and 1 KiB records:
throughput and ack latency. Then the failover gap: an idempotent acks=all producer
(confluent-kafka) writes continuously, the partition leader is killed with kill -9, and
the time from the kill to the first acknowledged write sent after it is measured.

    GREGOR_BIN=target/release/gregor .venv/bin/python bench/replication_bench.py

Uses the test harness (tests/python/cluster.py)."""
import json
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "python"))
from cluster import Cluster  # noqa: E402
from conftest import BIN  # noqa: E402
from confluent_kafka import Producer  # noqa: E402
from confluent_kafka.admin import AdminClient, NewTopic  # noqa: E402

SESSION_MS = 3000


def bench(bootstrap, topic, acks, size, count):
    r = subprocess.run(
        [BIN, "bench", "produce", "-b", bootstrap, "--topic", topic, "--acks", acks,
         "--size", str(size), "--count", str(count), "--output", "json", "--quiet",
         "-X", "linger.ms=5"],
        capture_output=True, text=True, timeout=600)
    if r.returncode != 0:
        raise RuntimeError(r.stderr)
    return json.loads(r.stdout.strip().splitlines()[-1])


def failover_gap(c, admin, topic):
    """Kill -9 the leader of partition 0 while producing; ms from the kill to the first
    ack of a record sent after it."""
    p = Producer({"bootstrap.servers": c.bootstrap, "acks": "all", "enable.idempotence": True,
                  "linger.ms": 0, "retry.backoff.ms": 20, "retry.backoff.max.ms": 100,
                  "topic.metadata.refresh.interval.ms": 1000})
    acked_after = []
    killed_at = [None]
    stop = threading.Event()

    def on_delivery(err, msg):
        if err is None and killed_at[0] is not None:
            sent = float(msg.value().decode())
            if sent > killed_at[0]:
                acked_after.append(time.monotonic())

    def run():
        while not stop.is_set():
            p.produce(topic, value=str(time.monotonic()).encode(), partition=0, on_delivery=on_delivery)
            p.poll(0.002)
        p.flush(30)

    t = threading.Thread(target=run)
    t.start()
    time.sleep(2)
    leader = admin.list_topics(topic, timeout=10).topics[topic].partitions[0].leader
    killed_at[0] = time.monotonic()
    c.node(leader).kill9()
    deadline = time.monotonic() + 60
    while not acked_after and time.monotonic() < deadline:
        time.sleep(0.01)
    stop.set()
    t.join()
    return (acked_after[0] - killed_at[0]) * 1000 if acked_after else None, leader


def main():
    root = Path(tempfile.mkdtemp(prefix="gregor-repl-bench-"))
    c = Cluster(root, controllers=3, overrides={
        "broker.session.timeout.ms": str(SESSION_MS),
        "broker.heartbeat.interval.ms": "500",
    }).start()
    rows = []
    try:
        admin = AdminClient({"bootstrap.servers": c.bootstrap})
        for name, rf in (("rf1", 1), ("rf3", 3)):
            admin.create_topics([NewTopic(name, 3, rf, config={"min.insync.replicas": str(min(rf, 2))})])[name].result(30)
        time.sleep(1)
        for size, count in ((100, 1_000_000), (1024, 300_000)):
            for acks in ("1", "all"):
                for topic in ("rf1", "rf3"):
                    r = bench(c.bootstrap, topic, acks, size, count)
                    lat = r["latency_ms"]
                    rows.append((topic.upper().replace("RF", "RF="), acks, size, r["msgs_per_sec"],
                                 r["mb_per_sec"], lat["p50"], lat["p99"], lat["p999"], r["errors"]))
                    print(rows[-1], flush=True)
        admin.create_topics([NewTopic("failover", 1, 3, config={"min.insync.replicas": "2"})])["failover"].result(30)
        time.sleep(1)
        gap, leader = failover_gap(c, admin, "failover")
    finally:
        c.kill_all()
    print("| RF | acks | record | msgs/s | MB/s | ack p50 ms | p99 ms | p99.9 ms | errors |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for rf, acks, size, mps, mbps, p50, p99, p999, errs in rows:
        print(f"| {rf} | {acks} | {size} B | {mps:,.0f} | {mbps:.1f} | {p50:.2f} | {p99:.2f} | {p999:.2f} | {errs} |")
    print(f"\nleader kill -9 (node {leader}) to the first acks=all write acknowledged after it: "
          f"{gap:.0f} ms (broker.session.timeout.ms={SESSION_MS})" if gap else "no write acknowledged after the kill")


if __name__ == "__main__":
    main()
