"""Debian's kcat (librdkafka 2.0.2): metadata, produce with keys and headers, consume."""
import shutil
import subprocess

import pytest

from logfiles import batches

KCAT = shutil.which("kcat") or shutil.which("kafkacat")
pytestmark = pytest.mark.skipif(KCAT is None, reason="kcat is installed by the test command")


def kcat(broker, *args, input=None, timeout=30):
    out = subprocess.run([KCAT, "-b", broker.bootstrap, *args], input=input, capture_output=True, timeout=timeout)
    assert out.returncode == 0, out.stderr.decode()
    return out.stdout.decode()


def test_metadata_lists_broker_and_topics(broker):
    kcat(broker, "-P", "-t", "listed", input=b"x\n")
    out = kcat(broker, "-L")
    assert f"broker 1 at 127.0.0.1:{broker.port} (controller)" in out
    assert 'topic "listed" with 1 partitions' in out


def test_produce_keys_and_headers_then_consume(broker):
    lines = b"".join(b"key%d:value %d\n" % (i, i) for i in range(100))
    kcat(broker, "-P", "-t", "kc", "-K:", "-H", "app=gregor", "-H", "app=twice", input=lines)
    out = kcat(broker, "-C", "-t", "kc", "-e", "-f", "%o|%k|%s|%h\n")
    rows = [r.split("|") for r in out.strip().split("\n")]
    assert len(rows) == 100
    for i, (offset, key, value, headers) in enumerate(rows):
        assert (int(offset), key, value) == (i, f"key{i}", f"value {i}")
        assert headers == "app=gregor,app=twice"


@pytest.mark.parametrize("codec", ["gzip", "snappy", "lz4", "zstd"])
def test_compressed_produce(broker, codec):
    lines = b"".join(b"compressed record number %d\n" % i for i in range(1000))
    kcat(broker, "-P", "-t", f"kc-{codec}", "-z", codec, input=lines)
    out = kcat(broker, "-C", "-t", f"kc-{codec}", "-e", "-f", "%s\n")
    assert out == lines.decode()
    # Stored as the producer sent them. librdkafka sends a batch uncompressed when the
    # codec would not shrink it (a last batch of one short line), so allow a few plain
    # batches, but most must be in the codec.
    stored = [(count, c) for _, count, c, _ in batches(broker.data_dir, f"kc-{codec}")]
    assert {c for _, c in stored} <= {codec, "none"}, stored
    assert max(stored)[1] == codec, f"batches stored as {stored}: the client did not compress"


def test_balanced_consumer_group_resumes_from_commits(broker_factory):
    """kcat -G: librdkafka 2.0.2's classic group protocol (JoinGroup, SyncGroup,
    Heartbeat, OffsetCommit/Fetch, LeaveGroup) against the coordinator."""
    broker = broker_factory({"group.initial.rebalance.delay.ms": "0"})
    kcat(broker, "-P", "-t", "kg", input=b"".join(b"first %d\n" % i for i in range(50)))
    first = kcat(broker, "-G", "kg-group", "-X", "auto.offset.reset=earliest", "-e", "-q", "-f", "%s\n", "kg")
    assert first.split("\n")[:-1] == [f"first {i}" for i in range(50)]
    kcat(broker, "-P", "-t", "kg", input=b"".join(b"second %d\n" % i for i in range(10)))
    # The group committed its position when the first consumer left: only new records.
    second = kcat(broker, "-G", "kg-group", "-X", "auto.offset.reset=earliest", "-e", "-q", "-f", "%s\n", "kg")
    assert second.split("\n")[:-1] == [f"second {i}" for i in range(10)]
