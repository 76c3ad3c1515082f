"""gregor-streams examples against a real broker: exact word counts, event-time windows
with out-of-order and late records, exactly-once across a kill -9, state restored from the
changelog, and two instances sharing (and rebalancing) the work.

The example binaries are built by test.sh (`cargo build --release --workspace --examples`;
`-p gregor-streams` works too); GREGOR_EXAMPLES_DIR overrides where they are looked for.
"""
import json
import os
import re
import shutil
import signal
import subprocess
import time
from collections import defaultdict
from pathlib import Path

import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from conftest import ROOT, wait_until

EXAMPLES = Path(os.environ.get("GREGOR_EXAMPLES_DIR", ROOT / "target" / "release" / "examples"))


def example(name):
    path = EXAMPLES / name
    if not path.exists():
        pytest.fail(f"{path} missing: build with cargo build --release -p gregor-streams --examples")
    return str(path)


class App:
    """One instance of an example, logging to a file."""

    def __init__(self, tmp_path, name, args, instance="a"):
        self.cmd = [example(name)] + args
        self.log_path = tmp_path / f"{name}-{instance}.log"
        self.proc = None

    def start(self):
        self.log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(self.cmd, stdout=self.log, stderr=self.log)
        return self

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        assert self.proc.wait(30) == 0, self.text()[-2000:]

    def kill9(self):
        self.proc.kill()
        self.proc.wait(10)

    def text(self):
        return self.log_path.read_text(errors="replace")

    def assigned(self):
        """The tasks of the last assignment this instance logged."""
        found = re.findall(r"tasks assigned: \[([^\]]*)\]", self.text())
        if not found:
            return None
        return sorted(t.strip() for t in found[-1].split(",") if t.strip())

    def alive(self):
        assert self.proc.poll() is None, f"example exited: {self.text()[-3000:]}"
        return True


def create_topics(bootstrap, names, partitions):
    admin = AdminClient({"bootstrap.servers": bootstrap})
    futures = admin.create_topics([NewTopic(n, partitions, 1) for n in names])
    for f in futures.values():
        f.result(30)


def produce(bootstrap, topic, records):
    """records: (key, value, timestamp or None)."""
    p = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})
    for key, value, ts in records:
        kwargs = {"timestamp": ts} if ts is not None else {}
        p.produce(topic, key=key, value=value, **kwargs)
    assert p.flush(30) == 0


class Reader:
    """Reads a topic from the beginning, accumulating (partition, offset, key, value)."""

    def __init__(self, bootstrap, topic, isolation="read_committed"):
        self.c = Consumer({
            "bootstrap.servers": bootstrap,
            "group.id": f"reader-{topic}-{time.monotonic_ns()}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            "isolation.level": isolation,
        })
        parts = self.c.list_topics(topic, timeout=10).topics[topic].partitions
        self.c.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in parts])
        self.records = []

    def poll(self):
        for m in self.c.consume(500, 0.1):
            if m.error():
                if m.error().code() != KafkaError._PARTITION_EOF:
                    raise AssertionError(m.error())
                continue
            self.records.append((m.partition(), m.offset(), m.key(), m.value()))
        return self.records

    def close(self):
        self.c.close()


def counts_by_word(records):
    """word -> the counts written for it, in order (a word always maps to one partition)."""
    seq = defaultdict(list)
    for _, _, k, v in sorted(records, key=lambda r: (r[0], r[1])):
        seq[k.decode()].append(int.from_bytes(v, "big", signed=True))
    return seq


def true_counts(lines):
    c = defaultdict(int)
    for line in lines:
        for w in re.split(r"[^0-9A-Za-z]+", line):
            if w:
                c[w.lower()] += 1
    return dict(c)


def wordcount(tmp_path, bootstrap, app_id, state, extra=(), instance="a", commit_ms=200):
    return App(tmp_path, "wordcount", [
        "--brokers", bootstrap, "--app-id", app_id, "--state-dir", str(state),
        "--input", "lines", "--output", "counts", "--commit-interval-ms", str(commit_ms),
        "--session-timeout-ms", "6000", *extra,
    ], instance)


def finals(seq):
    return {w: vals[-1] for w, vals in seq.items()}


LINES = [f"the quick fox {i % 7} jumps over the lazy dog {i % 3}" for i in range(60)]


def test_wordcount_exact_counts(broker, tmp_path):
    create_topics(broker.bootstrap, ["lines", "counts"], 2)
    app = wordcount(tmp_path, broker.bootstrap, "wc", tmp_path / "state", ["--print-store"]).start()
    records = [(None, l.encode(), None) for l in LINES]
    # Not UTF-8: the examples run with log-and-continue, so it is skipped, not fatal.
    records.insert(10, (None, b"\xff\xfe broken", None))
    produce(broker.bootstrap, "lines", records)
    reader = Reader(broker.bootstrap, "counts")
    expected = true_counts(LINES)
    wait_until(lambda: app.alive() and finals(counts_by_word(reader.poll())) == expected, 30, "final word counts")
    # No failure happened: every update was written once, in order.
    for word, values in counts_by_word(reader.records).items():
        assert values == list(range(1, expected[word] + 1)), word
    # The repartition and changelog topics were created by the application.
    topics = AdminClient({"bootstrap.servers": broker.bootstrap}).list_topics(timeout=10).topics
    assert "wc-counts-repartition" in topics and "wc-counts-changelog" in topics
    assert len(topics["wc-counts-changelog"].partitions) == 2
    app.stop()
    assert "skipping a record that cannot be deserialized" in app.text()
    # The interactive query of the running instance's store (all partitions are local).
    store = re.findall(r"^STORE (.*)$", app.text(), re.M)
    assert store and json.loads(store[-1]) == expected
    reader.close()


def test_pageviews_windows_out_of_order_and_late(broker, tmp_path):
    """Final counts per page and minute, each emitted once. The application restarts in the
    middle: the suppression buffer comes back from its store, and stream time from the
    committed offsets' metadata, so a late record after the restart is still dropped."""
    create_topics(broker.bootstrap, ["pageviews", "pageviews-per-minute"], 1)
    args = ["--brokers", broker.bootstrap, "--state-dir", str(tmp_path / "state"),
            "--commit-interval-ms", "200", "--grace-ms", "10000"]
    app = App(tmp_path, "pageviews", args).start()
    base = (int(time.time() * 1000) // 60000 - 30) * 60000
    before_restart = [
        ("home", 1_000), ("about", 10_000), ("home", 30_000),
        ("home", 61_000),   # window 2; stream time 61 s
        ("home", 20_000),   # out of order, inside the grace of window 1 (closes at 70 s)
        ("home", 75_000),   # stream time 75 s: window 1 closes
    ]
    after_restart = [
        ("home", 5_000),    # late, past grace: dropped
        ("about", 50_000),  # late, past grace: dropped
        ("other", 300_000), # stream time 300 s: window 2 closes
    ]
    reader = Reader(broker.bootstrap, "pageviews-per-minute")

    def results():
        out = []
        for _, _, k, v in reader.poll():
            out.append(((k[:-8].decode(), int.from_bytes(k[-8:], "big")), int.from_bytes(v, "big")))
        return out

    produce(broker.bootstrap, "pageviews", [(b"user", p.encode(), base + t) for p, t in before_restart])
    wait_until(lambda: app.alive() and len(results()) == 2, 30, "window 1 final counts")
    assert dict(results()) == {("home", base): 3, ("about", base): 1}
    app.stop()
    app = App(tmp_path, "pageviews", args, instance="b").start()
    produce(broker.bootstrap, "pageviews", [(b"user", p.encode(), base + t) for p, t in after_restart])
    expected = {("home", base): 3, ("about", base): 1, ("home", base + 60_000): 2}
    wait_until(lambda: app.alive() and len(results()) >= len(expected), 30, "window 2 final count")
    # The flush record's window never closes, so nothing else can come; a late record
    # accepted after the restart would have re-emitted window 1 with a wrong count.
    out = results()
    assert dict(out) == expected
    assert len(out) == len(expected), out
    app.stop()
    reader.close()


def test_exactly_once_survives_kill9(broker, tmp_path):
    """Phase 1 is committed (the first instance stops cleanly). The second instance commits
    every 3 s; it is killed with SIGKILL as soon as phase 2 output shows up uncommitted:
    the words were committed to the repartition topic, their counts are in an open
    transaction. The third (same state dir, so same transactional.id) fences and aborts it
    and counts again from the committed offsets and changelog."""
    create_topics(broker.bootstrap, ["lines", "counts"], 2)
    state = tmp_path / "state"
    eos = ["--guarantee", "exactly_once_v2"]
    lines = [f"alpha beta {i % 5} gamma{i % 4}" for i in range(300)]
    committed = Reader(broker.bootstrap, "counts")
    uncommitted = Reader(broker.bootstrap, "counts", "read_uncommitted")

    app = wordcount(tmp_path, broker.bootstrap, "wc-eos", state, eos).start()
    produce(broker.bootstrap, "lines", [(None, l.encode(), None) for l in lines[:100]])
    wait_until(lambda: app.alive() and finals(counts_by_word(committed.poll())) == true_counts(lines[:100]), 30, "phase 1 committed")
    app.stop()

    app = wordcount(tmp_path, broker.bootstrap, "wc-eos", state, eos, instance="b", commit_ms=3000).start()
    produce(broker.bootstrap, "lines", [(None, l.encode(), None) for l in lines[100:]])
    wait_until(lambda: app.alive() and len(uncommitted.poll()) > len(committed.poll()), 30, "phase 2 output inside an open transaction")
    app.kill9()

    app = wordcount(tmp_path, broker.bootstrap, "wc-eos", state, eos, instance="c").start()
    expected = true_counts(lines)
    wait_until(lambda: app.alive() and finals(counts_by_word(committed.poll())) == expected, 60, "final counts after restart")
    # Exactly once: each count of each word committed once, none skipped, none repeated.
    for word, values in counts_by_word(committed.records).items():
        assert values == list(range(1, expected[word] + 1)), (word, values)
    # The killed instance's output is in the log, but only in an aborted transaction.
    wait_until(lambda: len(uncommitted.poll()) > len(committed.records), 10, "aborted output read uncommitted")
    app.stop()
    committed.close()
    uncommitted.close()


def test_state_restored_from_changelog_when_state_dir_is_lost(broker, tmp_path):
    create_topics(broker.bootstrap, ["lines", "counts"], 2)
    state = tmp_path / "state"
    app = wordcount(tmp_path, broker.bootstrap, "wc-restore", state).start()
    first = LINES[:30]
    produce(broker.bootstrap, "lines", [(None, l.encode(), None) for l in first])
    reader = Reader(broker.bootstrap, "counts")
    wait_until(lambda: app.alive() and finals(counts_by_word(reader.poll())) == true_counts(first), 30, "first counts")
    app.stop()
    shutil.rmtree(state)
    app = wordcount(tmp_path, broker.bootstrap, "wc-restore", state, instance="b").start()
    wait_until(lambda: app.alive() and app.assigned(), 30, "assignment after restart")
    restored = sum(int(n) for n in re.findall(r"restored=(\d+)", app.text()))
    assert restored > 0, "the counts store was restored from its changelog"
    produce(broker.bootstrap, "lines", [(None, l.encode(), None) for l in LINES[30:]])
    wait_until(lambda: app.alive() and finals(counts_by_word(reader.poll())) == true_counts(LINES), 30, "continued counts")
    app.stop()
    reader.close()


def test_two_instances_share_partitions_and_rebalance(broker, tmp_path):
    create_topics(broker.bootstrap, ["lines", "counts"], 4)
    a = wordcount(tmp_path, broker.bootstrap, "wc-two", tmp_path / "state-a", instance="a").start()
    wait_until(lambda: a.alive() and a.assigned() and len(a.assigned()) == 8, 30, "first instance owns all 8 tasks")
    b = wordcount(tmp_path, broker.bootstrap, "wc-two", tmp_path / "state-b", instance="b").start()

    def split():
        ta, tb = a.assigned() or [], b.assigned() or []
        return ta and tb and len(ta) + len(tb) == 8 and not set(ta) & set(tb)

    wait_until(lambda: a.alive() and b.alive() and split(), 40, "tasks split between the two instances")
    first = LINES[:30]
    produce(broker.bootstrap, "lines", [(f"k{i}".encode(), l.encode(), None) for i, l in enumerate(first)])
    reader = Reader(broker.bootstrap, "counts")
    wait_until(lambda: finals(counts_by_word(reader.poll())) == true_counts(first), 30, "counts from two instances")
    b.stop()
    wait_until(lambda: a.alive() and len(a.assigned()) == 8, 40, "survivor takes every task")
    produce(broker.bootstrap, "lines", [(f"k{i}".encode(), l.encode(), None) for i, l in enumerate(LINES[30:])])
    wait_until(lambda: a.alive() and finals(counts_by_word(reader.poll())) == true_counts(LINES), 30, "counts after rebalance")
    restored = sum(int(n) for n in re.findall(r"restored=(\d+)", a.text()))
    assert restored > 0, "the survivor restored the other instance's stores from the changelogs"
    a.stop()
    reader.close()


def test_orders_enriched_stream_table_left_join(broker, tmp_path):
    create_topics(broker.bootstrap, ["orders", "customers", "orders-enriched"], 2)
    app = App(tmp_path, "orders_enriched", [
        "--brokers", broker.bootstrap, "--state-dir", str(tmp_path / "state"), "--commit-interval-ms", "200",
    ]).start()
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    changelog_topic = "streams-orders-enriched-customers-changelog"
    wait_until(lambda: app.alive() and changelog_topic in admin.list_topics(timeout=10).topics, 30, "changelog topic created")
    changelog = Reader(broker.bootstrap, changelog_topic)
    enriched = Reader(broker.bootstrap, "orders-enriched")

    def customer(cid, name, tier):
        return (cid.encode(), json.dumps({"name": name, "tier": tier}).encode(), None)

    def order(oid, cid, amount):
        return (oid.encode(), json.dumps({"order_id": oid, "customer_id": cid, "amount": amount}).encode(), None)

    produce(broker.bootstrap, "customers", [customer("c1", "Ada", "gold"), customer("c2", "Bob", "silver")])
    # The table is materialized once its changelog holds both customers.
    wait_until(lambda: app.alive() and len(changelog.poll()) == 2, 30, "customers table materialized")
    produce(broker.bootstrap, "orders", [order("o1", "c1", 10.5), order("o2", "c2", 3.0), order("o3", "c9", 1.0)])
    wait_until(lambda: len(enriched.poll()) == 3, 30, "three enriched orders")
    produce(broker.bootstrap, "customers", [customer("c1", "Ada L.", "platinum")])
    wait_until(lambda: len(changelog.poll()) == 3, 30, "customer update materialized")
    produce(broker.bootstrap, "orders", [order("o4", "c1", 7.0)])
    wait_until(lambda: len(enriched.poll()) == 4, 30, "fourth enriched order")
    got = {json.loads(v)["order_id"]: (k.decode(), json.loads(v)) for _, _, k, v in enriched.records}
    assert got["o1"] == ("c1", {"order_id": "o1", "customer_id": "c1", "amount": 10.5, "customer_name": "Ada", "tier": "gold"})
    assert got["o2"][1]["customer_name"] == "Bob"
    assert got["o3"] == ("c9", {"order_id": "o3", "customer_id": "c9", "amount": 1.0, "customer_name": None, "tier": None})
    assert got["o4"][1]["customer_name"] == "Ada L." and got["o4"][1]["tier"] == "platinum"
    app.stop()
    changelog.close()
    enriched.close()


def test_payments_split_and_aggregate(broker, tmp_path):
    topics = ["payments", "payments-approved", "payments-denied", "card-totals"]
    create_topics(broker.bootstrap, topics, 1)
    app = App(tmp_path, "payments", [
        "--brokers", broker.bootstrap, "--state-dir", str(tmp_path / "state"), "--commit-interval-ms", "200",
    ]).start()
    payments = [
        ("p1", "card-a", 100.0, "FR"), ("p2", "card-a", 5000.0, "FR"), ("p3", "card-b", 20.0, "US"),
        ("p4", "card-a", 50.0, "DE"), ("p5", "card-b", 30.0, "NL"),
    ]
    produce(broker.bootstrap, "payments", [
        (card.encode(), json.dumps({"id": pid, "card": card, "amount": amt, "country": c}).encode(), None)
        for pid, card, amt, c in payments
    ])
    readers = {t: Reader(broker.bootstrap, t) for t in topics[1:]}
    wait_until(lambda: app.alive() and len(readers["card-totals"].poll()) == 3, 30, "three approved payments aggregated")
    wait_until(lambda: len(readers["payments-approved"].poll()) == 3 and len(readers["payments-denied"].poll()) == 2, 30, "split")
    ids = lambda t: sorted(json.loads(v)["id"] for _, _, _, v in readers[t].records)
    assert ids("payments-approved") == ["p1", "p4", "p5"]
    assert ids("payments-denied") == ["p2", "p3"]
    totals = {k.decode(): json.loads(v) for _, _, k, v in readers["card-totals"].records}
    assert totals == {"card-a": {"count": 2, "total": 150.0}, "card-b": {"count": 1, "total": 30.0}}
    app.stop()
    for r in readers.values():
        r.close()


def test_exactly_once_when_an_instance_is_killed_and_the_other_takes_over(broker, tmp_path):
    """Two exactly-once instances share four partitions; the second never commits (60 s
    interval), so whatever it processed is in its open transaction when it is killed with
    SIGKILL. The survivor takes its tasks after the session timeout, restores their stores
    from the changelogs (read_committed: without that transaction, which the broker aborts
    at its timeout) and reprocesses from the committed offsets: each count exactly once."""
    create_topics(broker.bootstrap, ["lines", "counts"], 4)
    eos = ["--guarantee", "exactly_once_v2"]
    a = wordcount(tmp_path, broker.bootstrap, "wc-eos2", tmp_path / "state-a", eos, instance="a").start()
    wait_until(lambda: a.alive() and a.assigned() and len(a.assigned()) == 8, 30, "first instance owns all tasks")
    b = wordcount(tmp_path, broker.bootstrap, "wc-eos2", tmp_path / "state-b", eos, instance="b", commit_ms=60000).start()
    wait_until(lambda: a.alive() and b.alive() and b.assigned() and len(a.assigned()) + len(b.assigned()) == 8, 40, "tasks split")
    lines = [f"w{i % 13} x{i % 7} y{i % 3}" for i in range(400)]
    committed = Reader(broker.bootstrap, "counts")
    uncommitted = Reader(broker.bootstrap, "counts", "read_uncommitted")
    produce(broker.bootstrap, "lines", [(f"k{i}".encode(), l.encode(), None) for i, l in enumerate(lines[:200])])
    wait_until(lambda: len(uncommitted.poll()) > len(committed.poll()) and len(committed.records) > 0, 60, "a committed, b open")
    b.kill9()
    produce(broker.bootstrap, "lines", [(f"k{i}".encode(), l.encode(), None) for i, l in enumerate(lines[200:])])
    expected = true_counts(lines)
    wait_until(lambda: a.alive() and finals(counts_by_word(committed.poll())) == expected, 60, "final counts on the survivor")
    for word, values in counts_by_word(committed.records).items():
        assert values == list(range(1, expected[word] + 1)), (word, values)
    assert len(a.assigned()) == 8
    a.stop()
    committed.close()
    uncommitted.close()


def txn_states(bootstrap):
    """transactional id -> state, from `gregor txn list` (ListTransactions)."""
    from conftest import BIN
    out = subprocess.run([BIN, "txn", "list", "-b", bootstrap, "--output", "json"],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    return {t["transactional_id"]: t["state"] for t in json.loads(out.stdout)}


def test_exactly_once_rewinds_when_its_transaction_was_aborted_under_it(broker, tmp_path):
    """The instance is paused (SIGSTOP) with a transaction open until the broker aborts
    that transaction at its timeout. When it resumes, its commit fails; it aborts, drops
    its tasks' uncommitted state, reads the input again from the committed offsets and
    carries on: each count still exactly once, and the application keeps running."""
    create_topics(broker.bootstrap, ["lines", "counts"], 2)
    eos = ["--guarantee", "exactly_once_v2", "--transaction-timeout-ms", "2000"]
    app = wordcount(tmp_path, broker.bootstrap, "wc-rewind", tmp_path / "state", eos, commit_ms=1500).start()
    committed = Reader(broker.bootstrap, "counts")
    uncommitted = Reader(broker.bootstrap, "counts", "read_uncommitted")
    lines = [f"a{i % 4} b{i % 3}" for i in range(200)]
    produce(broker.bootstrap, "lines", [(None, l.encode(), None) for l in lines[:100]])
    wait_until(lambda: app.alive() and finals(counts_by_word(committed.poll())) == true_counts(lines[:100]),
               30, "first counts committed")

    produce(broker.bootstrap, "lines", [(None, l.encode(), None) for l in lines[100:]])
    wait_until(lambda: len(uncommitted.poll()) > len(committed.poll()), 30, "output inside an open transaction")
    app.proc.send_signal(signal.SIGSTOP)
    try:
        wait_until(lambda: any(t.startswith("wc-rewind-") and s == "CompleteAbort"
                               for t, s in txn_states(broker.bootstrap).items()),
                   30, "the broker aborted the paused instance's transaction")
    finally:
        app.proc.send_signal(signal.SIGCONT)

    expected = true_counts(lines)
    wait_until(lambda: app.alive() and finals(counts_by_word(committed.poll())) == expected, 60,
               "final counts after the rewind")
    for word, values in counts_by_word(committed.records).items():
        assert values == list(range(1, expected[word] + 1)), (word, values)
    assert "rewinding to the last commit" in app.text()
    app.stop()
    committed.close()
    uncommitted.close()
