"""gregor-streams foreign-key table-table join (the `fk_join` example) against a real broker:
orders (3 partitions, keyed by order id, default librdkafka partitioner) joined to
customers (2 partitions, keyed by customer id, murmur2 like Java's default) by the
order's customer id. Checked: the exact final enriched value of every order through a
customer update fanning out to its orders, foreign-key changes (to another customer, to
null), order and customer deletes, inner and left join, at-least-once and exactly-once,
and a restart that restores every store (subscriptions included) from the changelogs.

The example binaries are built by test.sh (`cargo build --release --workspace --examples`);
GREGOR_EXAMPLES_DIR overrides where they are looked for.
"""
import json
import os
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from conftest import ROOT, wait_until

EXAMPLES = Path(os.environ.get("GREGOR_EXAMPLES_DIR", ROOT / "target" / "release" / "examples"))


class App:
    """One run of the fk_join example, logging to a file."""

    def __init__(self, tmp_path, args, instance):
        path = EXAMPLES / "fk_join"
        if not path.exists():
            pytest.fail(f"{path} missing: build with cargo build --release -p gregor-streams --examples")
        self.cmd = [str(path)] + args
        self.log_path = tmp_path / f"fk_join-{instance}.log"
        self.log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(self.cmd, stdout=self.log, stderr=self.log)

    def text(self):
        return self.log_path.read_text(errors="replace")

    def alive(self):
        assert self.proc.poll() is None, f"example exited: {self.text()[-3000:]}"
        return True

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        assert self.proc.wait(30) == 0, self.text()[-2000:]
        self.log.close()


class Reader:
    """Reads every partition of a topic from the beginning (read_committed)."""

    def __init__(self, bootstrap, topic):
        self.c = Consumer({
            "bootstrap.servers": bootstrap,
            "group.id": f"reader-{topic}-{time.monotonic_ns()}",
            "enable.auto.commit": False,
            "isolation.level": "read_committed",
        })
        parts = self.c.list_topics(topic, timeout=10).topics[topic].partitions
        self.c.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in parts])
        self.records = []

    def finals(self):
        """order id -> its last enriched value (None for a tombstone)."""
        for m in self.c.consume(500, 0.1):
            if m.error():
                if m.error().code() != KafkaError._PARTITION_EOF:
                    raise AssertionError(m.error())
                continue
            self.records.append((m.partition(), m.offset(), m.key().decode(), m.value()))
        # A key is always written to one partition, so offsets order its values.
        out = {}
        for _, _, k, v in sorted(self.records):
            out[k] = None if v is None else json.loads(v)
        return out


def produce(bootstrap, topic, records, **config):
    p = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5, **config})
    for key, value in records:
        p.produce(topic, key=key.encode(), value=None if value is None else json.dumps(value).encode())
    assert p.flush(30) == 0


def order(customer_id, item, amount):
    return {"customer_id": customer_id, "item": item, "amount": amount}


def customer(name, tier):
    return {"name": name, "tier": tier}


def enriched(o, c):
    return {**o, "customer_name": c and c["name"], "tier": c and c["tier"]}


@pytest.mark.parametrize("guarantee,left_join", [("at_least_once", False), ("exactly_once_v2", True)])
def test_fk_join_orders_customers(broker, tmp_path, guarantee, left_join):
    bootstrap = broker.bootstrap
    admin = AdminClient({"bootstrap.servers": bootstrap})
    for f in admin.create_topics([NewTopic("orders", 3, 1), NewTopic("customers", 2, 1),
                                  NewTopic("orders-enriched", 2, 1)]).values():
        f.result(30)
    app_id = f"fk-{guarantee}"
    state = tmp_path / "state"
    args = ["--brokers", bootstrap, "--app-id", app_id, "--state-dir", str(state),
            "--guarantee", guarantee, "--commit-interval-ms", "200", "--session-timeout-ms", "6000"]
    if left_join:
        args.append("--left-join")
    app = App(tmp_path, args, "a")
    out = Reader(bootstrap, "orders-enriched")
    customers = {}
    orders = {}

    def put_customers(*kvs):
        # murmur2: the registration topic (keyed by customer id) must match customers.
        produce(bootstrap, "customers", kvs, partitioner="murmur2_random")
        for k, v in kvs:
            customers[k] = v

    def put_orders(*kvs):
        # librdkafka's default (CRC32) partitioner: orders need not be partitioned like Java.
        produce(bootstrap, "orders", kvs)
        for k, v in kvs:
            orders[k] = v

    def expected():
        """The join of the current tables, per order that has had a result."""
        exp = {}
        for oid, o in orders.items():
            c = customers.get(o["customer_id"]) if o and o["customer_id"] else None
            if o is None:
                exp[oid] = None
            elif c is not None or left_join:
                exp[oid] = enriched(o, c)
            else:
                exp[oid] = None
        return exp

    def converged(what):
        def check():
            app.alive()
            got = out.finals()
            exp = expected()
            # Orders that never had a result may be absent instead of a tombstone.
            return all(got.get(k) == v for k, v in exp.items()) and set(got) <= set(exp)
        wait_until(check, 30, what)

    # Phase 1: three customers, six orders (o6 references a customer that does not exist).
    put_customers(("c1", customer("Ann", "gold")), ("c2", customer("Bob", "silver")),
                  ("c3", customer("Cy", "bronze")))
    put_orders(("o1", order("c1", "book", 10.0)), ("o2", order("c1", "pen", 2.5)),
               ("o3", order("c1", "ink", 4.0)), ("o4", order("c2", "lamp", 30.0)),
               ("o5", order("c2", "desk", 120.0)), ("o6", order("c9", "cup", 3.0)))
    converged("phase 1 results")
    first = out.finals()
    assert first["o1"] == enriched(orders["o1"], customers["c1"])
    assert first.get("o6") == (enriched(orders["o6"], None) if left_join else None)

    # The internal topics: registration co-partitioned with customers, response with orders.
    topics = admin.list_topics(timeout=10).topics
    registration = [t for t in topics if re.fullmatch(rf"{app_id}-KTABLE-FK-JOIN-SUBSCRIPTION-REGISTRATION-\d+-topic", t)]
    response = [t for t in topics if re.fullmatch(rf"{app_id}-KTABLE-FK-JOIN-SUBSCRIPTION-RESPONSE-\d+-topic", t)]
    assert len(registration) == 1 and len(response) == 1, sorted(topics)
    assert len(topics[registration[0]].partitions) == 2
    assert len(topics[response[0]].partitions) == 3
    subscription_changelog = [t for t in topics if "SUBSCRIPTION-STATE-STORE" in t and t.endswith("-changelog")]
    assert len(subscription_changelog) == 1 and len(topics[subscription_changelog[0]].partitions) == 2

    if guarantee == "exactly_once_v2":
        # Restart without local state: every store, subscriptions included, comes back
        # from its changelog before the next records are processed.
        app.stop()
        shutil.rmtree(state)
        app = App(tmp_path, args, "b")

    # Phase 2: a customer update fans out to its orders, o4 moves to another customer,
    # o2 loses its customer, o5 is deleted, o6's customer appears.
    put_customers(("c1", customer("Ann Smith", "platinum")), ("c9", customer("Nine", "gold")))
    put_orders(("o4", order("c3", "lamp", 30.0)), ("o2", order(None, "pen", 2.5)), ("o5", None))
    converged("phase 2 results")
    got = out.finals()
    for oid in ("o1", "o3"):
        assert got[oid]["customer_name"] == "Ann Smith" and got[oid]["tier"] == "platinum"
    assert got["o4"] == enriched(orders["o4"], customers["c3"])
    assert got["o5"] is None
    assert got["o2"] == (enriched(orders["o2"], None) if left_join else None)

    # Phase 3: deleting a customer removes (inner) or empties (left) its orders' results;
    # updating c3 reaches o4, which subscribed to it when its foreign key changed; c2 has
    # no subscribers left.
    put_customers(("c1", None), ("c3", customer("Cy Young", "gold")), ("c2", customer("Bobby", "gold")))
    converged("phase 3 results")
    got = out.finals()
    assert got["o4"]["customer_name"] == "Cy Young"
    for oid in ("o1", "o3"):
        assert got[oid] == (enriched(orders[oid], None) if left_join else None)
    assert all(v is None or v["customer_name"] != "Bobby" for v in got.values())

    if guarantee == "exactly_once_v2":
        restored = sum(int(n) for n in re.findall(r"restored=(\d+)", app.text()))
        assert restored > 0, "the restarted instance restored its stores from the changelogs"
    app.stop()
    out.c.close()
