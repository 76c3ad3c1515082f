"""`--log-format json`: every line a long-running command writes to stderr is one JSON
object with level, target and message (tracing-subscriber's json formatter)."""
import json
import re
import select
import signal
import subprocess
import time

from confluent_kafka.admin import AdminClient, NewTopic

from conftest import BIN

READY = re.compile(r"gregor broker ready: listening on ([0-9.]+):(\d+)")


def test_broker_logs_one_json_object_per_line(tmp_path):
    proc = subprocess.Popen(
        [BIN, "broker", "--log-format", "json", "--data-dir", str(tmp_path / "data"),
         "--listen", "127.0.0.1:0"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 30
        line = b""
        while not READY.search(line.decode()):
            assert proc.poll() is None, proc.stderr.read().decode()
            assert time.monotonic() < deadline, "broker not ready in 30 s"
            if select.select([proc.stdout], [], [], 0.1)[0]:
                line = proc.stdout.readline()
        # A client request: proof the broker is serving (so its signal handler is in
        # place) and a few more log lines.
        port = READY.search(line.decode()).group(2)
        admin = AdminClient({"bootstrap.servers": f"127.0.0.1:{port}"})
        for f in admin.create_topics([NewTopic("logged", 1, 1)]).values():
            f.result(30)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
        assert proc.returncode == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    lines = err.decode().splitlines()
    # At least the shutdown lines.
    assert len(lines) >= 2, err
    for raw in lines:
        event = json.loads(raw)
        assert event["level"] in {"TRACE", "DEBUG", "INFO", "WARN", "ERROR"}, event
        assert event["target"], event
        assert isinstance(event["message"], str), event
    messages = [json.loads(raw)["message"] for raw in lines]
    assert any("stopped cleanly" in m for m in messages), messages
