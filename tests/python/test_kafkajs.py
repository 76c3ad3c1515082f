"""kafkajs (pure JavaScript, its own protocol implementation and API versions) against
the broker: admin, produce, a consumer group, committed offsets."""
import json
import shutil
import subprocess
from pathlib import Path

import pytest

NODE_DIR = Path(__file__).resolve().parents[1] / "node"


def test_kafkajs_produce_group_consume_and_offsets(broker_factory):
    node = shutil.which("node")
    if node is None or not (NODE_DIR / "node_modules" / "kafkajs").exists():
        pytest.fail("node and kafkajs are installed by the test command (./test.sh)")
    broker = broker_factory({"group.initial.rebalance.delay.ms": "0"})
    out = subprocess.run([node, str(NODE_DIR / "roundtrip.js"), broker.bootstrap], capture_output=True, timeout=120)
    assert out.returncode == 0, out.stderr.decode()[-2000:]
    result = json.loads(out.stdout.decode().strip().splitlines()[-1])
    assert result == {"got": 300, "unique": 300, "headersOk": True, "committed": 300}, result
