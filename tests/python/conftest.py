"""Fixtures for real-client tests: each test gets its own broker process, data
directory and port (the broker binds port 0 and reports the real port in its ready line).
"""
import os
import re
import select
import signal
import subprocess
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BIN = os.environ.get("GREGOR_BIN", str(ROOT / "target" / "release" / "gregor"))
READY = re.compile(r"gregor broker ready: listening on ([0-9.]+):(\d+)")
# Each listener in the ready line: "127.0.0.1:40001 (SASL_SSL, SASL_SSL)".
LISTENER = re.compile(r"([0-9.]+):(\d+) \((\w+), (\w+)\)")


def wait_until(cond, timeout=30.0, what="condition", interval=0.05):
    """Polls `cond` until it returns a truthy value or the deadline passes."""
    deadline = time.monotonic() + timeout
    while True:
        value = cond()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


class Broker:
    def __init__(self, data_dir: Path, log_path: Path, overrides=None, preexec_fn=None):
        self.data_dir = data_dir
        self.log_path = log_path
        self.overrides = dict(overrides or {})
        # Runs in the child before exec (e.g. to lower its RLIMIT_NOFILE).
        self.preexec_fn = preexec_fn
        self.port = 0
        # Bound port by listener name (several listeners: see test_security).
        self.ports = {}
        self.proc = None

    @property
    def bootstrap(self):
        return f"127.0.0.1:{self.port}"

    def start(self, timeout=30.0):
        args = [BIN, "broker", "--data-dir", str(self.data_dir)]
        if "listeners" not in self.overrides:
            args += ["--listen", f"127.0.0.1:{self.port}"]
        for k, v in self.overrides.items():
            args += ["--override", f"{k}={v}"]
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            args, stdout=subprocess.PIPE, stderr=log, preexec_fn=self.preexec_fn
        )
        deadline = time.monotonic() + timeout
        line = b""
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"broker exited with {self.proc.returncode}; see {self.log_path}")
            ready, _, _ = select.select([self.proc.stdout], [], [], 0.1)
            if ready:
                line = self.proc.stdout.readline()
                m = READY.search(line.decode())
                if m:
                    self.port = int(m.group(2))
                    self.ports = {name: int(port) for _, port, name, _ in LISTENER.findall(line.decode())}
                    return self
        raise RuntimeError(f"broker not ready in {timeout}s (last line {line!r})")

    def stop(self, timeout=30.0):
        """SIGTERM: a clean shutdown that flushes everything."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            rc = self.proc.wait(timeout)
            assert rc == 0, f"broker exited with {rc} on SIGTERM"

    def kill9(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def restart(self):
        self.stop()
        return self.start()


@pytest.fixture
def broker_factory(tmp_path):
    started = []

    def make(overrides=None, name="broker"):
        b = Broker(tmp_path / name, tmp_path / f"{name}.log", overrides)
        started.append(b)
        return b.start()

    yield make
    for b in started:
        b.kill9()


@pytest.fixture
def broker(broker_factory):
    return broker_factory()
