#!/usr/bin/env python3
"""SIGTERM of a partition leader under acks=all load (run by hand, see RELIABILITY.md):
a 3-node cluster on 127.0.0.1, one RF 3 partition, an idempotent confluent-kafka
producer; prints the delivery latency of the records sent from 0.5 s before to 8 s
after the signal.

    GREGOR_BIN=target/release/gregor .venv/bin/python bench/clean_stop_latency.py /tmp/cs1
"""
import statistics
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "python"))
from faults import FaultCluster  # noqa: E402
from confluent_kafka import Producer  # noqa: E402

root = Path(sys.argv[1])
fc = FaultCluster(root, overrides={"broker.session.timeout.ms": "9000", "broker.heartbeat.interval.ms": "500"}, netns=False).start()
try:
    fc.create_topic("cs", 1, rf=3, min_isr=2)
    fc.wait_healthy("cs", 1, full_isr=True)
    leader = fc.leader_of("cs", 0)
    p = Producer({"bootstrap.servers": fc.bootstrap, "acks": "all", "enable.idempotence": True, "linger.ms": 0, "log_level": 2})
    lat, errs = [], []
    def cb(err, msg, t0):
        (errs.append(str(err)) if err else lat.append((t0, time.monotonic() - t0)))
    stop_at = None
    t_end = time.monotonic() + 12
    n = 0
    while time.monotonic() < t_end:
        t0 = time.monotonic()
        p.produce("cs", value=b"x" * 100, partition=0, on_delivery=lambda e, m, t0=t0: cb(e, m, t0))
        n += 1
        p.poll(0)
        if stop_at is None and time.monotonic() > t_end - 9:
            stop_at = time.monotonic()
            threading.Thread(target=fc.terminate, args=(leader,), daemon=True).start()
        p.poll(0.005)
    p.flush(60)
    around = [l for t0, l in lat if stop_at - 0.5 <= t0 <= stop_at + 8]
    print(f"leader {leader} SIGTERM; sent {n}, delivered {len(lat)}, errors {len(errs)} {set(errs)}")
    print(f"latency around the stop: max {max(around)*1000:.0f} ms, p99 {sorted(around)[int(len(around)*0.99)]*1000:.0f} ms, median {statistics.median(around)*1000:.1f} ms, n {len(around)}")
    print(f"new leader {fc.wait_leader('cs', 0, exclude=(leader,))}")
finally:
    fc.close()
