"""A `gregor connect` worker process for tests: standalone mode against a broker, on a
free port, its offsets and connector configs in files under the test's tmp dir, ready
once its ready line is printed and `GET /` answers. Talks to it with `requests`, the
way operators script Kafka Connect."""
import re
import select
import signal
import subprocess
import time

import requests

from conftest import BIN

READY = re.compile(r"gregor connect ready: listening on ([0-9.]+):(\d+)")


class ConnectWorker:
    def __init__(self, bootstrap, work_dir, extra_props=None, port=0, cwd=None):
        self.bootstrap = bootstrap
        # The process's working directory (relative paths in connector configs).
        self.cwd = cwd
        self.work_dir = work_dir
        self.props_path = work_dir / "worker.properties"
        self.log_path = work_dir / "connect.log"
        self.offsets_file = work_dir / "connect.offsets"
        props = {
            "bootstrap.servers": bootstrap,
            "offset.storage.file.filename": str(self.offsets_file),
            "key.converter": "org.apache.kafka.connect.storage.StringConverter",
            "value.converter": "org.apache.kafka.connect.storage.StringConverter",
        }
        props.update(extra_props or {})
        self.props_path.write_text("".join(f"{k}={v}\n" for k, v in props.items()))
        self.port = port
        self.proc = None

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout=60.0):
        args = [BIN, "connect", "--listen", f"127.0.0.1:{self.port}", str(self.props_path)]
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=log, cwd=self.cwd)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"worker exited with {self.proc.returncode}; see {self.log_path}")
            ready, _, _ = select.select([self.proc.stdout], [], [], 0.1)
            if ready:
                m = READY.search(self.proc.stdout.readline().decode())
                if m:
                    # Keep the port: a restart binds the same one.
                    self.port = int(m.group(2))
                    break
        else:
            raise RuntimeError(f"worker not ready in {timeout}s; see {self.log_path}")
        while time.monotonic() < deadline:
            try:
                if requests.get(self.url + "/", timeout=5).status_code == 200:
                    return self
            except requests.ConnectionError:
                pass
            time.sleep(0.05)
        raise RuntimeError("worker does not answer GET /")

    def get(self, path, **kw):
        return requests.get(self.url + path, timeout=60, **kw)

    def post(self, path, body=None, **kw):
        return requests.post(self.url + path, json=body, timeout=60, **kw)

    def put(self, path, body=None, **kw):
        return requests.put(self.url + path, json=body, timeout=60, **kw)

    def patch(self, path, body=None, **kw):
        return requests.patch(self.url + path, json=body, timeout=60, **kw)

    def delete(self, path, **kw):
        return requests.delete(self.url + path, timeout=60, **kw)

    def create(self, name, config):
        r = self.post("/connectors", {"name": name, "config": config})
        assert r.status_code == 201, r.text
        return r.json()

    def status(self, name):
        return self.get(f"/connectors/{name}/status").json()

    def task_states(self, name):
        return [t["state"] for t in self.status(name).get("tasks", [])]

    def stop(self, timeout=30.0):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            rc = self.proc.wait(timeout)
            assert rc == 0, f"worker exited with {rc} on SIGTERM; see {self.log_path}"

    def kill9(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


def distributed_props(group, **overrides):
    """Worker properties for a distributed worker of `group` (Kafka's
    connect-distributed.properties names), with short session timeouts so a dead worker
    is noticed in seconds, and internal topics sized for a one-broker test cluster."""
    props = {
        "group.id": group,
        "config.storage.topic": f"{group}-configs",
        "offset.storage.topic": f"{group}-offsets",
        "status.storage.topic": f"{group}-status",
        "config.storage.replication.factor": "1",
        "offset.storage.replication.factor": "1",
        "status.storage.replication.factor": "1",
        "offset.storage.partitions": "3",
        "status.storage.partitions": "2",
        "session.timeout.ms": "6000",
        "heartbeat.interval.ms": "500",
        "rebalance.timeout.ms": "15000",
    }
    props.update(overrides)
    return props
