"""What incremental replica fetch sessions (KIP-227 between brokers) save, for
BENCHMARKS.md: a 3-node cluster (three processes) with many RF 3 partitions, most of
them idle, measured once per broker binary given, in one run:

- idle: CPU seconds the three brokers use while nothing is produced (the followers'
  parked fetches and their answers are all that runs);
- light load: an acks=all producer (confluent-kafka, linger 0) writing to a few
  partitions at a fixed rate: CPU seconds, and the ack latency p50/p99, which includes
  a replication round trip.

    GREGOR_BIN=target/release/gregor .venv/bin/python bench/replica_sessions_bench.py \\
        [--partitions 3000] [--seconds 20] [--bin before=/path/to/older/gregor ...]

Without --bin it measures GREGOR_BIN only."""
import argparse
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "python"))
import cluster as cluster_mod  # noqa: E402
from cluster import Cluster  # noqa: E402
from conftest import BIN  # noqa: E402
from confluent_kafka import Producer  # noqa: E402
from confluent_kafka.admin import AdminClient, NewTopic  # noqa: E402

TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(c):
    total = 0
    for n in c.nodes:
        with open(f"/proc/{n.proc.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / TICK


def wait_full_isr(admin, topic, partitions, timeout=180):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        md = admin.list_topics(topic, timeout=30).topics[topic]
        full = [p for p in md.partitions.values() if len(p.isrs) == 3 and p.leader >= 0]
        if len(full) == partitions:
            return
        time.sleep(0.5)
    raise TimeoutError("partitions not fully replicated in time")


def light_load(bootstrap, topic, seconds, rate, hot):
    p = Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 0})
    lat = []
    lock = threading.Lock()

    def cb(err, msg, sent):
        if err is None:
            with lock:
                lat.append((time.monotonic() - sent) * 1000)

    end = time.monotonic() + seconds
    i = 0
    while time.monotonic() < end:
        sent = time.monotonic()
        p.produce(topic, b"x" * 100, partition=i % hot, on_delivery=lambda e, m, s=sent: cb(e, m, s))
        i += 1
        p.poll(0)
        delay = i / rate - (time.monotonic() - (end - seconds))
        if delay > 0:
            time.sleep(delay)
    p.flush(60)
    lat.sort()
    pick = lambda q: lat[min(len(lat) - 1, int(q * len(lat)))] if lat else float("nan")  # noqa: E731
    return len(lat), pick(0.5), pick(0.99)


def measure(binary, partitions, seconds, rate, hot):
    cluster_mod.BIN = binary
    root = Path(tempfile.mkdtemp(prefix="gregor-sessions-bench-"))
    c = Cluster(root, controllers=3).start()
    try:
        admin = AdminClient({"bootstrap.servers": c.bootstrap})
        admin.create_topics([NewTopic("many", partitions, 3, config={"min.insync.replicas": "2"})])["many"].result(60)
        wait_full_isr(admin, "many", partitions)
        before = cpu_seconds(c)
        time.sleep(seconds)  # the measured idle interval, not synchronisation
        idle = cpu_seconds(c) - before
        before = cpu_seconds(c)
        acked, p50, p99 = light_load(c.bootstrap, "many", seconds, rate, hot)
        loaded = cpu_seconds(c) - before
        return idle, loaded, acked, p50, p99
    finally:
        c.kill_all()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--partitions", type=int, default=3000)
    ap.add_argument("--seconds", type=float, default=20)
    ap.add_argument("--rate", type=float, default=500, help="records/s of the light load")
    ap.add_argument("--hot", type=int, default=10, help="partitions the light load writes to")
    ap.add_argument("--bin", action="append", default=[], metavar="NAME=PATH")
    a = ap.parse_args()
    bins = [b.split("=", 1) for b in a.bin] or [["gregor", BIN]]
    rows = []
    for name, path in bins:
        r = measure(path, a.partitions, a.seconds, a.rate, a.hot)
        rows.append((name, *r))
        print(rows[-1], flush=True)
    print(f"\n{a.partitions} partitions, RF 3, 3 nodes; {a.seconds:.0f} s idle, then {a.seconds:.0f} s of "
          f"{a.rate:.0f} acks=all records/s to {a.hot} partitions")
    print("| binary | CPU s idle (3 brokers) | CPU s under load | acked | ack p50 ms | ack p99 ms |")
    print("| --- | --- | --- | --- | --- | --- |")
    for name, idle, loaded, acked, p50, p99 in rows:
        print(f"| {name} | {idle:.1f} | {loaded:.1f} | {acked} | {p50:.1f} | {p99:.1f} |")


if __name__ == "__main__":
    main()
