"""Reassignment figures for BENCHMARKS.md, in one run on one machine: a 3-node cluster
(three processes), a 1-partition topic `big` filled with SIZE_MB of 1 KiB records on
broker 1, then moved 1 -> 2 without a throttle and 2 -> 3 with one, each while
`gregor bench produce` (librdkafka, acks=all, 1 KiB records) writes to a RF 3 topic
`live` for WINDOW_S seconds; and the same producer with nothing moving, as the baseline.
Reported: the move's time and bytes/s, and the producer's throughput and ack latency.

    GREGOR_BIN=target/release/gregor .venv/bin/python bench/reassign_bench.py [SIZE_MB] [THROTTLE_MB_S] [PACE]

Uses the test harness (tests/python/cluster.py) and the gregor CLI
(`cluster reassign execute --wait`)."""
import json
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "python"))
from cluster import Cluster  # noqa: E402
from conftest import BIN, wait_until  # noqa: E402
from confluent_kafka.admin import AdminClient, NewTopic  # noqa: E402

SIZE_MB = int(sys.argv[1]) if len(sys.argv) > 1 else 300
THROTTLE = int(sys.argv[2]) * 1_000_000 if len(sys.argv) > 2 else 20_000_000
# Records/s for the producer (0: as fast as it can, which measures throughput; a pace
# below saturation measures the ack latency clients see).
PACE = int(sys.argv[3]) if len(sys.argv) > 3 else 0
WINDOW_S = 8


def run_json(args, timeout=900):
    r = subprocess.run([BIN, *args], capture_output=True, text=True, timeout=timeout)
    if r.returncode != 0:
        raise RuntimeError(f"{args}: {r.stderr}")
    return json.loads(r.stdout.strip().splitlines()[-1])


def produce(bootstrap, topic, seconds, count=100_000_000):
    return run_json(["bench", "produce", "-b", bootstrap, "--topic", topic, "--acks", "all",
                     "--size", "1024", "--count", str(count), "--duration", str(seconds), "--rate", str(PACE),
                     "--output", "json", "--quiet", "-X", "linger.ms=5"])


def move(c, to, throttle):
    plan = c.root / f"plan-{to}.json"
    plan.write_text(json.dumps({"version": 1, "partitions": [{"topic": "big", "partition": 0, "replicas": [to]}]}))
    args = ["cluster", "reassign", "execute", "--plan", str(plan), "--wait", "--output", "json",
            "-b", c.bootstrap]
    if throttle:
        args += ["--throttle", str(throttle)]
    started = time.monotonic()
    run_json(args)
    return time.monotonic() - started


def log_size(node):
    return sum(f.stat().st_size for f in (node.data_dir / "big-0").glob("*.log"))


def during_move(c, to, throttle):
    """Moves `big` to broker `to` while producing to `live`; (seconds, bytes, producer)."""
    size = log_size(next(n for n in c.nodes if (n.data_dir / "big-0").is_dir()))
    result = {}
    t = threading.Thread(target=lambda: result.update(produce(c.bootstrap, "live", WINDOW_S)))
    t.start()
    secs = move(c, to, throttle)
    t.join()
    return secs, size, result


def main():
    root = Path(tempfile.mkdtemp(prefix="gregor-reassign-bench-"))
    c = Cluster(root, controllers=3, overrides={"auto.leader.rebalance.enable": "false"}).start()
    rows = []
    try:
        admin = AdminClient({"bootstrap.servers": c.bootstrap})
        admin.create_topics([NewTopic("big", 1, replica_assignment=[[1]]),
                             NewTopic("live", 3, 3, config={"min.insync.replicas": "2"})])["big"].result(30)
        wait_until(lambda: all(p.leader >= 0 and len(p.isrs) == 3
                               for p in admin.list_topics("live", timeout=5).topics["live"].partitions.values()),
                   30, what="live with full ISRs")
        run_json(["bench", "produce", "-b", c.bootstrap, "--topic", "big", "--acks", "1", "--size", "1024",
                  "--count", str(SIZE_MB * 1000), "--output", "json", "--quiet", "-X", "linger.ms=20"])
        base = produce(c.bootstrap, "live", WINDOW_S)
        rows.append(("nothing moving", None, None, base))
        secs, size, prod = during_move(c, 2, None)
        rows.append(("move 1 -> 2, no throttle", secs, size, prod))
        secs, size, prod = during_move(c, 3, THROTTLE)
        rows.append((f"move 2 -> 3, throttle {THROTTLE / 1e6:.0f} MB/s", secs, size, prod))
    finally:
        c.kill_all()
    print(f"| while | move time s | move MB/s | producer MB/s | ack p50 ms | p99 ms | errors |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for what, secs, size, p in rows:
        mv = f"{secs:.1f} | {size / secs / 1e6:.1f}" if secs else "- | -"
        lat = p["latency_ms"]
        print(f"| {what} | {mv} | {p['mb_per_sec']:.1f} | {lat['p50']:.2f} | {lat['p99']:.2f} | {p['errors']} |")


if __name__ == "__main__":
    main()
