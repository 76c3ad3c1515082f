#!/usr/bin/env python3
"""How many metadata entries the ISR changes of a follower failure cost (run by hand, see
BENCHMARKS.md): a 3-node cluster on 127.0.0.1, one topic of N partitions with RF 3; node
3 is paused (SIGSTOP) with a 60 s broker session, so only the leaders' AlterPartition
requests (replica.lag.time.max.ms 1.5 s) take it out of the ISRs. Prints the metadata
log's growth until every partition nodes 1 and 2 lead has shrunk.

    GREGOR_BIN=target/release/gregor .venv/bin/python bench/alter_partition_batch.py /tmp/apb 300
"""
import json
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "python"))
from faults import FaultCluster  # noqa: E402
from conftest import BIN, wait_until  # noqa: E402

parts = int(sys.argv[2])
fc = FaultCluster(Path(sys.argv[1]), overrides={"broker.session.timeout.ms": "60000", "broker.heartbeat.interval.ms": "500", "replica.lag.time.max.ms": "1500"}, netns=False).start()
try:
    fc.create_topic("many", parts, rf=3, min_isr=1)
    fc.wait_healthy("many", parts, full_isr=True, timeout=180)
    layout = fc.layout("many", via=1)
    elsewhere = sorted(p for p, (l, _, _) in layout.items() if l != 3)
    def end():
        r = subprocess.run([BIN, "cluster", "quorum", "-b", fc.node(1).bootstrap, "--output", "json"], capture_output=True, text=True, timeout=30)
        return json.loads(r.stdout)["high_watermark"]
    before = end(); t0 = time.monotonic()
    fc.pause(3)
    def shrunk():
        now = fc.layout("many", via=1)
        return now is not None and all(now[p][2] == sorted(set(now[p][1]) - {3}) for p in elsewhere)
    wait_until(shrunk, timeout=50, what="shrunk")
    print(f"{parts} partitions, {len(elsewhere)} ISR shrinks: {end() - before} metadata entries, all visible after {time.monotonic() - t0:.1f} s (lag time 1.5 s)")
    fc.resume(3)
finally:
    fc.close()
