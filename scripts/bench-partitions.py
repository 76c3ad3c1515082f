#!/usr/bin/env python3
"""Many-partitions benchmark for BENCHMARKS.md ("Many partitions").

For each size (default 1,000, 10,000 and 50,000 partitions, as topics of 1,000
partitions each) on a fresh data directory, with the broker under `ulimit -n 20000`:
create the topics with the Kafka protocol (confluent-kafka AdminClient), produce one
record to every partition, fetch every one back, restart cleanly (SIGTERM), then
`kill -9` and restart, reading everything back after each restart. Prints create
time, produce-to-all time, fetch-all time, stop and restart times, broker RSS and
open descriptors (`ls /proc/PID/fd | wc -l`).

Usage: scripts/bench-partitions.py [SIZES...]
  (release binary: cargo build --release -p gregor; python with confluent-kafka,
   e.g. /work/main/.venv/bin/python scripts/bench-partitions.py 1000 10000 50000)
"""
import os
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "python"))

from confluent_kafka import Consumer, Producer, TopicPartition  # noqa: E402
from confluent_kafka.admin import AdminClient, NewTopic  # noqa: E402

from conftest import Broker  # noqa: E402

NOFILE = 20000
PER_TOPIC = 1000


def limit_fds():
    resource.setrlimit(resource.RLIMIT_NOFILE, (NOFILE, NOFILE))


def rss_mb(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def fds(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


def topics_for(n):
    return [(f"p{n}-{t}", min(PER_TOPIC, n - t * PER_TOPIC)) for t in range((n + PER_TOPIC - 1) // PER_TOPIC)]


def create(bootstrap, topics):
    admin = AdminClient({"bootstrap.servers": bootstrap})
    for name, parts in topics:
        admin.create_topics([NewTopic(name, parts, 1)], operation_timeout=120)[name].result(300)


def produce(bootstrap, topics):
    # One producer per topic (1,000 partitions): librdkafka's producer slows down
    # superlinearly with the partitions one instance holds (one producer for all: 0.1 s
    # at 1,000 partitions, 8.6 s at 10,000, over 5 minutes at 50,000), which would
    # measure the client, not the broker.
    errors = []
    for name, parts in topics:
        p = Producer({"bootstrap.servers": bootstrap, "linger.ms": 20, "acks": "all"})
        for part in range(parts):
            p.produce(name, value=b"v", partition=part, on_delivery=lambda e, _m: e and errors.append(e))
        left = p.flush(600)
        assert left == 0 and not errors, (left, errors[:3])


def fetch_all(bootstrap, topics):
    want = sum(parts for _, parts in topics)
    c = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": "bench",
            "enable.auto.commit": False,
            "fetch.wait.max.ms": 100,
            "topic.metadata.refresh.interval.ms": 600000,
        }
    )
    c.assign([TopicPartition(n, p, 0) for n, parts in topics for p in range(parts)])
    seen = set()
    deadline = time.monotonic() + 900
    while len(seen) < want:
        assert time.monotonic() < deadline, f"read {len(seen)} of {want} partitions"
        for m in c.consume(10000, 1.0):
            if m.error() is None:
                seen.add((m.topic(), m.partition()))
    c.close()


def timed(f, *args):
    t = time.monotonic()
    f(*args)
    return time.monotonic() - t


def run(n):
    work = Path(tempfile.mkdtemp(prefix=f"gregor-parts-{n}-"))
    b = Broker(work / "data", work / "broker.log", {"auto.create.topics.enable": "false"}, preexec_fn=limit_fds)
    topics = topics_for(n)
    row = {"partitions": n}
    try:
        b.start(timeout=600)
        row["create_s"] = timed(create, b.bootstrap, topics)
        row["rss_created_mb"] = rss_mb(b.proc.pid)
        row["fds_created"] = fds(b.proc.pid)
        row["produce_s"] = timed(produce, b.bootstrap, topics)
        row["fetch_s"] = timed(fetch_all, b.bootstrap, topics)
        row["rss_mb"] = rss_mb(b.proc.pid)
        row["fds"] = fds(b.proc.pid)
        t = time.monotonic()
        b.stop(timeout=900)
        row["stop_s"] = time.monotonic() - t
        t = time.monotonic()
        b.start(timeout=900)
        row["clean_restart_s"] = time.monotonic() - t
        row["rss_restarted_mb"] = rss_mb(b.proc.pid)
        row["fetch_after_clean_s"] = timed(fetch_all, b.bootstrap, topics)
        b.kill9()
        t = time.monotonic()
        b.start(timeout=900)
        row["kill9_restart_s"] = time.monotonic() - t
        row["fetch_after_kill9_s"] = timed(fetch_all, b.bootstrap, topics)
        row["rss_end_mb"] = rss_mb(b.proc.pid)
        row["fds_end"] = fds(b.proc.pid)
    finally:
        b.kill9()
        print(" ".join(f"{k}={v:.1f}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items()), flush=True)
        # Removing 250,000 files can take minutes on a disk mounted with discard.
        shutil.rmtree(work, ignore_errors=True)


def main():
    sizes = [int(a) for a in sys.argv[1:]] or [1000, 10000, 50000]
    for n in sizes:
        run(n)


if __name__ == "__main__":
    main()
