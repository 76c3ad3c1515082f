"""gregor-streams throughput: records/s of a stateless map/filter topology and of a
windowed count (1 s tumbling windows, 1,000 keys), next to a plain consume→produce loop on
the same client (rdkafka), each reading the same preloaded input from one broker.

    cargo build --release -p gregor-streams --examples
    GREGOR_BIN=target/release/gregor .venv/bin/python bench/streams_bench.py [RECORDS]

Each mode runs as its own process and consumer group on a fresh input copy; the figure is
timed inside the process from the first record read to the last record written and
flushed (so group join and start-up are excluded, the final commit included)."""
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "python"))
from conftest import Broker  # noqa: E402

RECORDS = int(sys.argv[1]) if len(sys.argv) > 1 else 300_000
EXAMPLES = Path(os.environ.get("GREGOR_EXAMPLES_DIR", ROOT / "target" / "release" / "examples"))
PARTITIONS = 2


def main():
    d = Path(tempfile.mkdtemp())
    b = Broker(d / "broker", d / "broker.log").start()
    try:
        admin = AdminClient({"bootstrap.servers": b.bootstrap})
        modes = ["plain", "map-filter", "windowed-count"]
        topics = [NewTopic(f"in-{m}", PARTITIONS, 1) for m in modes] + [NewTopic(f"out-{m}", PARTITIONS, 1) for m in modes]
        for f in admin.create_topics(topics).values():
            f.result(30)
        value = b"x" * 100
        for m in modes:
            p = Producer({"bootstrap.servers": b.bootstrap, "linger.ms": 20, "batch.num.messages": 10000})
            for i in range(RECORDS):
                while True:
                    try:
                        p.produce(f"in-{m}", key=f"k{i % 1000}".encode(), value=value)
                        break
                    except BufferError:
                        p.poll(0.05)
            assert p.flush(60) == 0
        results = []
        for m in modes:
            out = subprocess.run(
                [str(EXAMPLES / "bench"), "--brokers", b.bootstrap, "--mode", m, "--input", f"in-{m}",
                 "--output", f"out-{m}", "--count", str(RECORDS), "--app-id", f"bench-{m}",
                 "--state-dir", str(d / "state")],
                capture_output=True, text=True, timeout=600, check=True,
            )
            results.append(json.loads(out.stdout.strip().splitlines()[-1]))
        print(f"| mode | records | seconds | records/s |")
        print(f"| --- | --- | --- | --- |")
        for r in results:
            print(f"| {r['mode']} | {r['records']:,} | {r['seconds']} | {int(r['records_per_s']):,} |")
    finally:
        b.kill9()
        shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    main()
