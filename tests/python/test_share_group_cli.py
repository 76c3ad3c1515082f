"""`gregor consume --share-group` and `gregor share-group list/describe/reset-offsets/
delete` (KIP-932) against the broker, alongside librdkafka's ShareConsumer: the CLI's
members share a queue with it, accepted records are not delivered again, and the admin
commands show and move the share-partition start offset."""
import json
import subprocess
import time
import uuid

import pytest
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic

from conftest import BIN

ck = pytest.importorskip("confluent_kafka")
if getattr(ck, "ShareConsumer", None) is None:  # pragma: no cover
    pytest.skip("this confluent-kafka has no ShareConsumer", allow_module_level=True)

BASE = {"share.auto.offset.reset": "earliest", "group.share.heartbeat.interval.ms": "500"}


def gregor(b, *args, check=True):
    r = subprocess.run([BIN, *args, "-b", b.bootstrap], capture_output=True, text=True, timeout=120)
    if check:
        assert r.returncode == 0, f"gregor {' '.join(args)}: {r.stderr}"
    return r


def setup(b, n):
    topic, group = f"jobs-{uuid.uuid4().hex[:6]}", f"w-{uuid.uuid4().hex[:6]}"
    admin = AdminClient({"bootstrap.servers": b.bootstrap})
    for f in admin.create_topics([NewTopic(topic, 1, 1)]).values():
        f.result(30)
    p = Producer({"bootstrap.servers": b.bootstrap})
    for i in range(n):
        p.produce(topic, f"job-{i}".encode())
    assert p.flush(30) == 0
    return topic, group


def describe(b, group):
    return json.loads(gregor(b, "share-group", "describe", group, "--output", "json").stdout)


def test_cli_members_share_a_queue_with_librdkafka(broker_factory):
    b = broker_factory(BASE)
    topic, group = setup(b, 30)
    first = gregor(b, "consume", topic, "--share-group", group, "-c", "10", "-f", "%o %s\\n").stdout.split("\n")
    first = [line for line in first if line]
    assert [line.split()[1] for line in first] == [f"job-{i}" for i in range(10)]
    # The ten printed records were accepted: the start offset moved past them.
    d = describe(b, group)
    assert d["state"] == "Empty" and d["members"] == []
    assert [(o["partition"], o["start_offset"], o["lag"]) for o in d["offsets"]] == [(0, 10, 20)]

    # librdkafka's ShareConsumer in the same group gets exactly the other twenty.
    c = ck.ShareConsumer({"bootstrap.servers": b.bootstrap, "group.id": group})
    c.subscribe([topic])
    got = []
    deadline = time.monotonic() + 60
    try:
        while len(got) < 20:
            assert time.monotonic() < deadline, f"got {len(got)} of 20"
            got.extend(m.value().decode() for m in c.poll(0.5) if m.error() is None)
    finally:
        c.close()
    assert sorted(got) == sorted(f"job-{i}" for i in range(10, 30))

    listed = json.loads(gregor(b, "share-group", "list", "--output", "json").stdout)
    assert {"group": group, "state": "Empty"} in listed


def test_cli_reset_offsets_and_delete(broker_factory):
    b = broker_factory(BASE)
    topic, group = setup(b, 12)
    out = gregor(b, "consume", topic, "--share-group", group, "-e").stdout.split()
    assert out == [f"job-{i}" for i in range(12)]
    assert describe(b, group)["offsets"][0]["start_offset"] == 12
    # Back to offset 4: those records are delivered again, to the next member.
    r = gregor(b, "share-group", "reset-offsets", group, "--topic", topic, "--to", "4")
    assert f"{topic}-0 start offset 4" in r.stdout
    assert describe(b, group)["offsets"][0]["start_offset"] == 4
    again = gregor(b, "consume", topic, "--share-group", group, "-e").stdout.split()
    assert again == [f"job-{i}" for i in range(4, 12)]
    gregor(b, "share-group", "delete", group)
    listed = json.loads(gregor(b, "share-group", "list", "--output", "json").stdout)
    assert all(g["group"] != group for g in listed)
    r = gregor(b, "share-group", "describe", group, check=False)
    assert r.returncode != 0 and "GroupIdNotFound" in r.stderr
