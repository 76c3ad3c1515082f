#!/usr/bin/env python3
"""Reproduces, with confluent-kafka (librdkafka) unmodified, the transactional producer's
reuse of a written sequence number that killed the producer in the seed 101 soak
(RELIABILITY.md, "Seed 101, 100 faults"). A client-side behaviour: the broker answers as
Kafka's ProducerStateManager does.

A 3-node cluster in network namespaces (run as root), topic `r` (RF 3). In transaction 2 a
record `x` reaches the partition leader and is written, but the leader's packets to the
client vanish, so its answer is lost. `abort_transaction(8)` starts while `x` is in flight:
librdkafka sends nothing in the abort state, the request times out (possibly persisted),
`x` goes back to the queue, and the abort's flush times out. After the network is healed
the abort is called again: it purges `x` and advances the partition's base sequence past
it as if it had never been written. The next transaction's first batch on the partition
reuses `x`'s sequence:

    --records 2   a batch of 2 records: OUT_OF_ORDER_SEQUENCE_NUMBER, fatal
                  ("sequence desynchronization", as in the soak);
    --records 1   a batch of 1 record, the exact bounds of `x`'s batch: answered as a
                  duplicate with `x`'s offset, the commit succeeds, and the committed
                  record is not in the partition (read_committed shows it missing).

    sudo GREGOR_BIN=target/release/gregor .venv/bin/python bench/txn_sequence_reuse.py --records 1
"""
import argparse
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "python"))

from checker import read_log  # noqa: E402
from conftest import wait_until  # noqa: E402
from faults import FaultCluster  # noqa: E402

FAST = {
    "broker.session.timeout.ms": "3000",
    "broker.heartbeat.interval.ms": "500",
    "replica.lag.time.max.ms": "3000",
}


def say(*parts):
    print(f"[{time.strftime('%H:%M:%S')}]", *parts, flush=True)


def segment_size(fc, node_id):
    path = fc.node(node_id).data_dir / "r-0" / "00000000000000000000.log"
    return path.stat().st_size if path.exists() else 0


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--records", type=int, default=2, choices=(1, 2),
                    help="records in the next transaction's batch (default 2)")
    ap.add_argument("--dir", help="keep the node data and logs here (default: a temporary directory)")
    args = ap.parse_args()

    from confluent_kafka import KafkaException, Producer

    root = Path(args.dir) if args.dir else Path(tempfile.mkdtemp(prefix="txn-seq-reuse-"))
    delivered = []

    def on_delivery(err, msg):
        delivered.append((msg.value().decode(), err.name() if err else "ok", msg.offset()))

    with FaultCluster(root, overrides=FAST) as fc:
        fc.start()
        fc.create_topic("r", 1, rf=3, min_isr=2)
        fc.wait_healthy("r", full_isr=True)
        leader = fc.leader_of("r", 0)
        p = Producer({
            "bootstrap.servers": fc.bootstrap,
            "transactional.id": f"seq-reuse-{uuid.uuid4().hex[:8]}",
            "acks": "all",
            "linger.ms": 50,
            "request.timeout.ms": 3000,
            "socket.timeout.ms": 3000,
            "message.timeout.ms": 120000,
            "transaction.timeout.ms": 120000,
            "log_level": 3,
        })
        p.init_transactions(30)
        p.begin_transaction()
        p.produce("r", b"first", partition=0, on_delivery=on_delivery)
        p.commit_transaction(30)

        p.begin_transaction()
        # Registers the partition in the transaction while the leader still answers.
        p.produce("r", b"w", partition=0, on_delivery=on_delivery)
        p.flush(10)
        before = segment_size(fc, leader)
        fc.net.drop(leader, 0)
        say(f"node {leader} leads r-0; its packets to the clients now vanish")
        p.produce("r", b"x", partition=0, on_delivery=on_delivery)
        p.poll(0)
        wait_until(lambda: segment_size(fc, leader) > before, timeout=20, what="x in the leader's log")
        say("x is written on the leader; its answer is lost")
        try:
            p.abort_transaction(8)
            say("abort_transaction returned at once (not the case under study)")
        except KafkaException as e:
            say("abort_transaction:", e.args[0].name(), "-", e.args[0].str()[:80])
        fc.heal()
        p.abort_transaction(30)
        say("abort_transaction called again: done")

        p.begin_transaction()
        names = [f"y{i}" for i in range(1, args.records + 1)]
        for name in names:
            p.produce("r", name.encode(), partition=0, on_delivery=on_delivery)
        try:
            p.commit_transaction(30)
            say("next transaction committed")
        except KafkaException as e:
            say("next transaction:", "FATAL" if e.args[0].fatal() else "", e.args[0].name(), "-", e.args[0].str())
        say("delivery reports (value, result, offset):", delivered)
        committed = [v for _, v in read_log(fc.bootstrap, "r", 1)[0]]
        say("read_committed:", committed)
        missing = [n for n, result, _ in delivered if n.startswith("y") and result == "ok" and n not in committed]
        if missing:
            say("reported delivered in a committed transaction but not in the partition:", missing)
        say("node data and logs in", root)


if __name__ == "__main__":
    main()
