"""Client quotas measured: a producer and a consumer held to their byte-rate quotas,
each next to an unthrottled client on the same broker, in one run. Reported: the
throughput each achieved over the measured span (after a warm-up of one quota window)
and the quota it was given.

    GREGOR_BIN=target/release/gregor .venv/bin/python bench/quota_bench.py [SECONDS]

Defaults: Kafka's quota window (11 samples of 1 s), producer_byte_rate 1 MiB/s for
client id `throttled-producer`, consumer_byte_rate 2 MiB/s for `throttled-consumer`."""
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "python"))
from confluent_kafka import Consumer, Producer, TopicPartition  # noqa: E402
from conftest import BIN, Broker  # noqa: E402

SECONDS = float(sys.argv[1]) if len(sys.argv) > 1 else 20.0
WARMUP = 11.0
PRODUCE_QUOTA = 1 << 20
CONSUME_QUOTA = 2 << 20
VALUE = b"x" * 1024


def produce_for(bootstrap, client_id, topic, seconds, out):
    acked = [0]
    p = Producer({"bootstrap.servers": bootstrap, "client.id": client_id, "linger.ms": 5,
                  "queue.buffering.max.kbytes": 4096})

    def ack(err, msg):
        if err is None:
            acked[0] += len(msg.value())
    start = time.monotonic()
    marks = {}
    while time.monotonic() - start < seconds:
        try:
            p.produce(topic, VALUE, on_delivery=ack)
        except BufferError:
            p.poll(0.01)
        p.poll(0)
        t = time.monotonic() - start
        if t >= WARMUP and "from" not in marks:
            marks["from"] = (t, acked[0])
    p.flush(60)
    end = (time.monotonic() - start, acked[0])
    t0, b0 = marks.get("from", (0.0, 0))
    out[client_id] = (end[1] - b0) / max(end[0] - t0, 1e-9)


def consume_for(bootstrap, client_id, topic, seconds, out):
    c = Consumer({"bootstrap.servers": bootstrap, "client.id": client_id, "group.id": client_id,
                  "enable.auto.commit": False})
    c.assign([TopicPartition(topic, 0, 0)])
    got = 0
    start = time.monotonic()
    mark = None
    while time.monotonic() - start < seconds:
        for m in c.consume(1000, 0.2):
            if not m.error():
                got += len(m.value())
        if mark is None and time.monotonic() - start >= WARMUP:
            mark = (time.monotonic() - start, got)
    end = (time.monotonic() - start, got)
    c.close()
    t0, b0 = mark or (0.0, 0)
    out[client_id] = (end[1] - b0) / max(end[0] - t0, 1e-9)


def main():
    d = Path(tempfile.mkdtemp())
    b = Broker(d / "broker", d / "broker.log").start()
    try:
        def quota(*args):
            subprocess.run([BIN, "quota", "set", *args, "-b", b.bootstrap], check=True,
                           capture_output=True)
        quota("--client-id", "throttled-producer", f"producer_byte_rate={PRODUCE_QUOTA}")
        quota("--client-id", "throttled-consumer", f"consumer_byte_rate={CONSUME_QUOTA}")
        seconds = WARMUP + SECONDS
        out = {}
        threads = [threading.Thread(target=produce_for, args=(b.bootstrap, cid, f"t-{cid}", seconds, out))
                   for cid in ("throttled-producer", "free-producer")]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        # The free producer's topic holds far more than either consumer can read in time.
        threads = [threading.Thread(target=consume_for, args=(b.bootstrap, cid, "t-free-producer", seconds, out))
                   for cid in ("throttled-consumer", "free-consumer")]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        mib = 1 << 20
        print(f"throttled producer: {out['throttled-producer'] / mib:.2f} MiB/s (quota {PRODUCE_QUOTA / mib:.0f})")
        print(f"free producer:      {out['free-producer'] / mib:.2f} MiB/s")
        print(f"throttled consumer: {out['throttled-consumer'] / mib:.2f} MiB/s (quota {CONSUME_QUOTA / mib:.0f})")
        print(f"free consumer:      {out['free-consumer'] / mib:.2f} MiB/s")
    finally:
        b.kill9()
        shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    main()
