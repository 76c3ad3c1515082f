#!/usr/bin/env python3
"""Soak test of replicated partitions under random faults, run by hand (see RELIABILITY.md).

A 3-node cluster (combined broker+controller nodes, each in its own network namespace:
run as root), a topic with RF 3 and min.insync.replicas 2, idempotent acks=all producers
and a consumer running all along, optionally a transactional producer on a second topic.
N random faults (kill -9, SIGSTOP, SIGTERM+restart, network cut) on random nodes, each held
a few seconds and undone, with a quiet interval between them. At the end: a final read of
each topic and the checker's report (tests/python/checker.py). Exit status 0 when the
checker found nothing.

    sudo GREGOR_BIN=target/release/gregor .venv/bin/python bench/soak.py --faults 20 --seed 7
"""
import argparse
import json
import os
import random
import signal
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "python"))

from checker import ACKED, ConfluentConsumer, ConfluentProducer, History, check, read_log  # noqa: E402
from faults import FaultCluster, random_fault  # noqa: E402


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--faults", type=int, default=10, help="number of faults to inject")
    ap.add_argument("--seed", type=int, default=None, help="random seed (printed; reuse it to replay the schedule)")
    ap.add_argument("--kinds", default="kill,pause,restart,cut", help="fault kinds to draw from")
    ap.add_argument("--hold", type=float, nargs=2, default=(2.0, 8.0), metavar=("MIN", "MAX"),
                    help="seconds each fault is held")
    ap.add_argument("--quiet", type=float, default=5.0, help="seconds of normal operation between faults")
    ap.add_argument("--partitions", type=int, default=3)
    ap.add_argument("--producers", type=int, default=2)
    ap.add_argument("--rate", type=int, default=200, help="records per second per producer")
    ap.add_argument("--txn", action="store_true", help="also run a transactional producer on a second topic")
    ap.add_argument("--txn-debug", action="store_true",
                    help="librdkafka debug (eos,msg,protocol) of the transactional producer, on stderr")
    ap.add_argument("--session-ms", type=int, default=3000, help="broker.session.timeout.ms")
    ap.add_argument("--lag-ms", type=int, default=3000, help="replica.lag.time.max.ms")
    ap.add_argument("--no-netns", action="store_true", help="all nodes on 127.0.0.1 (no cuts; no root needed)")
    ap.add_argument("--dir", default=None, help="where node data and logs go (kept); default a temp dir")
    ap.add_argument("--json", default=None, help="also write the results to this file")
    return ap.parse_args()


def main():
    args = parse_args()
    seed = args.seed if args.seed is not None else random.randrange(1 << 30)
    rng = random.Random(seed)
    root = Path(args.dir or tempfile.mkdtemp(prefix="gregor-soak-"))
    kinds = tuple(k for k in args.kinds.split(",") if k)
    if args.no_netns:
        kinds = tuple(k for k in kinds if k != "cut")
    # A SIGTERM to the soak still tears the cluster and the namespaces down.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    overrides = {
        "broker.session.timeout.ms": str(args.session_ms),
        "broker.heartbeat.interval.ms": str(max(100, args.session_ms // 6)),
        "replica.lag.time.max.ms": str(args.lag_ms),
    }
    print(f"soak: seed {seed}, {args.faults} faults of {kinds}, data and logs in {root}", flush=True)
    started = time.monotonic()
    stalls = []
    with FaultCluster(root, overrides=overrides, netns=not args.no_netns) as fc:
        fc.start()
        fc.create_topic("soak", args.partitions, rf=3, min_isr=2)
        topics = {"soak": History()}
        threads = [ConfluentProducer(topics["soak"], fc.bootstrap, "soak", i, args.partitions, args.rate)
                   for i in range(args.producers)]
        threads.append(ConfluentConsumer(topics["soak"], fc.bootstrap, "soak", args.partitions))
        if args.txn:
            fc.create_topic("soak-txn", args.partitions, rf=3, min_isr=2)
            topics["soak-txn"] = History()
            threads.append(ConfluentProducer(topics["soak-txn"], fc.bootstrap, "soak-txn", "t", args.partitions,
                                             args.rate // 2, transactional=True,
                                             config={"debug": "eos,msg,protocol", "log_level": 7}
                                             if args.txn_debug else None))
            threads.append(ConfluentConsumer(topics["soak-txn"], fc.bootstrap, "soak-txn", args.partitions))
        for t in threads:
            t.start()

        def acked():
            return sum(h.count(ACKED) for h in topics.values())

        try:
            for i in range(args.faults):
                time.sleep(args.quiet)  # normal operation between faults (the schedule, not a sync)
                before = acked()
                kind, node, held = random_fault(fc, rng, kinds, tuple(args.hold))
                # Production must go on once the fault is undone.
                deadline = time.monotonic() + 60
                while acked() < before + 50 and time.monotonic() < deadline:
                    time.sleep(0.2)
                if acked() < before + 50:
                    stalls.append((i, kind, node))
                print(f"[{time.monotonic() - started:7.1f}s] fault {i + 1}/{args.faults}: {kind} node {node} "
                      f"for {held}s; acked {acked()}", flush=True)
        finally:
            for t in threads:
                t.stop()
            for t in threads:
                t.join(120)
        died = [t for t in threads if getattr(t, "exception", None) is not None]
        for t in died:
            print(f"{t.name} stopped at {t.died_at - started:.1f}s on {t.exception!r}", flush=True)
        fc.heal()
        results = {}
        for topic, history in topics.items():
            log = read_log(fc.bootstrap, topic, args.partitions, timeout=120)
            report = check(history, log)
            results[topic] = report
            print(f"\n== {topic}\n{report.summary()}", flush=True)
            errors = {}
            for _, source, name, retriable, fatal in history.errors:
                key = f"{source} {name}{' (fatal)' if fatal else '' if retriable else ' (not retriable)'}"
                errors[key] = errors.get(key, 0) + 1
            print("client errors:", json.dumps(errors, sort_keys=True))
        faults = [f for f in fc.faults if f[1] in ("kill", "pause", "terminate", "cut")]
        dups = sum(1 for f in fc.faults if f[1] == "duplicate_registration")
        print(f"\nfaults injected: {len(faults)} ({', '.join(f'{k} {sum(1 for f in faults if f[1] == k)}' for k in ('kill', 'pause', 'terminate', 'cut'))})")
        print(f"restarts refused as DUPLICATE_BROKER_REGISTRATION: {dups}")
        print(f"production stalled > 60 s after a fault: {len(stalls)} {stalls}")
        print(f"producers stopped by an error: {len(died)}")
        print(f"elapsed {time.monotonic() - started:.0f}s; node logs in {root}")
        if args.json:
            Path(args.json).write_text(json.dumps({
                "seed": seed,
                "faults": fc.faults,
                "stalls": stalls,
                "producers_stopped": [f"{t.name}: {t.exception!r}" for t in died],
                "topics": {t: {"counts": r.counts, "acked": r.acked, "unknown": r.unknown, "failed": r.failed,
                               "aborted": r.aborted, "read": r.read, "examples": r.examples}
                           for t, r in results.items()},
            }, indent=1))
        return 0 if all(r.ok for r in results.values()) and not stalls and not died else 1


if __name__ == "__main__":
    if os.geteuid() != 0 and "--no-netns" not in sys.argv:
        sys.exit("soak.py needs root for the network namespaces (or pass --no-netns)")
    sys.exit(main())
