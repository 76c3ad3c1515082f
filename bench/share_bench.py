"""Share-group (KIP-932 queue) consumption throughput on ONE partition with 1, 4 and 16
members, against a classic consumer group (one member: a partition has one consumer)
on the same data. Each member is its own process running librdkafka's ShareConsumer
(implicit acknowledgement: every record a poll returns is accepted by the next poll)
or Consumer, against one broker.

    GREGOR_BIN=target/release/gregor .venv/bin/python bench/share_bench.py [RECORDS]

The figure is records/s from the first record any member received to the moment the
members together have received every record (group join excluded). Every member
reports the offsets it got, so duplicates (a record delivered twice) are counted too."""
import multiprocessing as mp
import sys
import tempfile
import time
from pathlib import Path

from confluent_kafka import Consumer, Producer, ShareConsumer
from confluent_kafka.admin import AdminClient, NewTopic

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "python"))
from conftest import Broker  # noqa: E402

RECORDS = int(sys.argv[1]) if len(sys.argv) > 1 else 200_000
OVERRIDES = {"share.auto.offset.reset": "earliest", "group.share.heartbeat.interval.ms": "500"}


def member(kind, bootstrap, group, topic, stop, first, counts, idx, out):
    if kind == "share":
        c = ShareConsumer({"bootstrap.servers": bootstrap, "group.id": group})
    else:
        c = Consumer({"bootstrap.servers": bootstrap, "group.id": group,
                      "auto.offset.reset": "earliest", "enable.auto.commit": True})
    c.subscribe([topic])
    offsets = []
    while not stop.is_set():
        if kind == "share":
            msgs = c.poll(0.2)
        else:
            msgs = c.consume(1000, 0.2)
        got = [m.offset() for m in msgs if m.error() is None]
        if got:
            with first.get_lock():
                if first.value == 0.0:
                    first.value = time.time()
            offsets.extend(got)
            counts[idx] = len(offsets)
    c.close()
    out.put(offsets)


def run(kind, members, bootstrap, topic):
    group = f"{kind}-{members}-{time.time_ns()}"
    stop, first = mp.Event(), mp.Value("d", 0.0)
    counts, out = mp.Array("q", members), mp.Queue()
    procs = [mp.Process(target=member, args=(kind, bootstrap, group, topic, stop, first, counts, i, out))
             for i in range(members)]
    for p in procs:
        p.start()
    deadline = time.monotonic() + 600
    while sum(counts) < RECORDS and time.monotonic() < deadline:
        time.sleep(0.01)  # a benchmark's sampling loop, not test synchronisation
    done = time.time()
    stop.set()
    all_offsets = [out.get(timeout=60) for _ in procs]
    for p in procs:
        p.join(30)
    flat = [o for offs in all_offsets for o in offs]
    seconds = done - first.value
    return {
        "mode": f"{kind} group, {members} member(s)",
        "records": len(set(flat)),
        "duplicates": len(flat) - len(set(flat)),
        "seconds": round(seconds, 2),
        "rate": int(len(set(flat)) / seconds) if seconds > 0 else 0,
        "per_member": [len(o) for o in all_offsets],
    }


def main():
    d = Path(tempfile.mkdtemp())
    b = Broker(d / "broker", d / "broker.log", OVERRIDES).start()
    try:
        admin = AdminClient({"bootstrap.servers": b.bootstrap})
        for f in admin.create_topics([NewTopic("q", 1, 1)]).values():
            f.result(30)
        p = Producer({"bootstrap.servers": b.bootstrap, "linger.ms": 20, "batch.num.messages": 10000})
        for i in range(RECORDS):
            while True:
                try:
                    p.produce("q", value=b"x" * 100)
                    break
                except BufferError:
                    p.poll(0.05)
        assert p.flush(60) == 0
        print("| mode | records | duplicates | seconds | records/s | per member |")
        print("| --- | --- | --- | --- | --- | --- |")
        for kind, members in [("classic", 1), ("share", 1), ("share", 4), ("share", 16)]:
            r = run(kind, members, b.bootstrap, "q")
            spread = f"{min(r['per_member'])}–{max(r['per_member'])}" if members > 1 else "-"
            print(f"| {r['mode']} | {r['records']:,} | {r['duplicates']} | {r['seconds']} | {r['rate']:,} | {spread} |",
                  flush=True)
    finally:
        b.stop()


if __name__ == "__main__":
    main()
