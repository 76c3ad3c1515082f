"""Cluster figures for BENCHMARKS.md: start time, create-topic latency with 1 and 3
voters, time to elect a new controller after kill -9, and metadata propagation delay.

    GREGOR_BIN=target/release/gregor .venv/bin/python bench/cluster_bench.py

Uses the test harness (tests/python/cluster.py) and confluent-kafka's AdminClient."""
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "python"))
from cluster import Cluster  # noqa: E402
from conftest import BIN  # noqa: E402
from confluent_kafka.admin import AdminClient, NewTopic  # noqa: E402


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


def create_latencies(bootstrap, n=100, prefix="lat"):
    a = AdminClient({"bootstrap.servers": bootstrap})
    a.create_topics([NewTopic(f"{prefix}-warm", 1, 1)])[f"{prefix}-warm"].result(30)
    out = []
    for i in range(n):
        name = f"{prefix}-{i}"
        t = time.perf_counter()
        a.create_topics([NewTopic(name, 1, 1)])[name].result(30)
        out.append((time.perf_counter() - t) * 1000)
    return out


def quorum_leader(bootstrap):
    r = subprocess.run([BIN, "cluster", "quorum", "-b", bootstrap, "--output", "json"],
                       capture_output=True, text=True, timeout=60)
    return json.loads(r.stdout)["leader"] if r.returncode == 0 else None


def main():
    root = Path(tempfile.mkdtemp(prefix="gregor-cluster-bench-"))
    rows = {}
    for voters in (1, 3):
        c = Cluster(root / f"v{voters}", controllers=voters)
        t = time.perf_counter()
        c.start()
        rows[f"start, {voters} voter(s) (all nodes ready)"] = f"{(time.perf_counter() - t) * 1000:.0f} ms"
        lat = create_latencies(c.node(1).bootstrap)
        rows[f"create topic, {voters} voter(s): p50 / p99"] = f"{statistics.median(lat):.1f} / {pct(lat, 99):.1f} ms"
        if voters == 3:
            # Propagation: created through node 1, visible in node 3's Metadata.
            a1 = AdminClient({"bootstrap.servers": c.node(1).bootstrap})
            a3 = AdminClient({"bootstrap.servers": c.node(3).bootstrap})
            delays = []
            for i in range(30):
                name = f"prop-{i}"
                a1.create_topics([NewTopic(name, 1, 1)])[name].result(30)
                t = time.perf_counter()
                while name not in a3.list_topics(topic=name, timeout=5).topics or \
                        a3.list_topics(topic=name, timeout=5).topics[name].error is not None:
                    pass
                delays.append((time.perf_counter() - t) * 1000)
            rows["metadata propagation to another broker: p50 / max"] = (
                f"{statistics.median(delays):.1f} / {max(delays):.1f} ms (after the creating broker answered)")
            # Failover: kill -9 the active controller, time until a topic can be created.
            elections = []
            for round_ in range(3):
                leader = quorum_leader(c.node(1).bootstrap if c.node(1).alive() else c.node(2).bootstrap)
                survivors = [n for n in c.nodes if n.id != leader]
                bootstrap = ",".join(n.bootstrap for n in survivors)
                a = AdminClient({"bootstrap.servers": bootstrap})
                c.node(leader).kill9()
                t = time.perf_counter()
                while True:
                    try:
                        a.create_topics([NewTopic(f"fo-{round_}", 1, 1)], request_timeout=5)[f"fo-{round_}"].result(10)
                        break
                    except Exception as e:  # noqa: BLE001
                        if "TOPIC_ALREADY_EXISTS" in str(e):
                            break
                elections.append((time.perf_counter() - t) * 1000)
                c.node(leader).spawn().wait_ready()
            rows["kill -9 of the active controller -> topic creation works again (3 runs)"] = \
                ", ".join(f"{x:.0f} ms" for x in elections)
        c.kill_all()
    for k, v in rows.items():
        print(f"| {k} | {v} |")


if __name__ == "__main__":
    main()
