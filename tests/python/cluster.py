"""A cluster of broker processes on 127.0.0.1 for real-client tests: combined
broker+controller nodes (the voters) and, optionally, broker-only nodes. Ports are
picked free up front, since every voter must know the others' controller addresses."""
import os
import signal
import socket
import subprocess
import time
import uuid
from pathlib import Path

from conftest import BIN, READY, wait_until


def free_ports(n):
    socks = []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def cluster_id():
    import base64

    return base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")


class Node:
    def __init__(self, cluster, node_id, port, controller_port, roles, host="127.0.0.1", exec_prefix=()):
        self.cluster = cluster
        self.id = node_id
        self.port = port
        self.controller_port = controller_port
        self.roles = roles
        # The address it listens on and advertises (its own network namespace's, in faults.py),
        # and the command its process is started under (e.g. `ip netns exec <ns>`).
        self.host = host
        self.exec_prefix = list(exec_prefix)
        self.proc = None
        self.data_dir = cluster.root / f"node-{node_id}"
        self.log_path = cluster.root / f"node-{node_id}.log"

    @property
    def bootstrap(self):
        return f"{self.host}:{self.port}"

    @property
    def is_broker(self):
        return "broker" in self.roles

    def args(self):
        parts = []
        if self.is_broker:
            parts.append(f"PLAINTEXT://{self.host}:{self.port}")
        if self.controller_port:
            parts.append(f"CONTROLLER://{self.host}:{self.controller_port}")
        listeners = ",".join(parts)
        overrides = {
            "node.id": str(self.id),
            "process.roles": self.roles,
            "listeners": listeners,
            "controller.quorum.voters": self.cluster.voters,
            "cluster.id": self.cluster.cluster_id,
        }
        overrides.update(self.cluster.overrides)
        overrides.update(self.cluster.node_overrides.get(self.id, {}))
        args = [*self.exec_prefix, BIN, "broker", "--data-dir", str(self.data_dir)]
        for k, v in overrides.items():
            args += ["--override", f"{k}={v}"]
        return args

    def spawn(self):
        """Starts the process without waiting for it to be ready."""
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(self.args(), stdout=subprocess.PIPE, stderr=log)
        return self

    def wait_ready(self, timeout=60.0):
        """A broker prints its ready line once registered and unfenced; a
        controller-only node once its quorum member is up."""
        import select

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"node {self.id} exited with {self.proc.returncode}; see {self.log_path}")
            ready, _, _ = select.select([self.proc.stdout], [], [], 0.1)
            if ready:
                line = self.proc.stdout.readline()
                if READY.search(line.decode()) or b"ready" in line:
                    return self
        raise RuntimeError(f"node {self.id} not ready in {timeout}s; see {self.log_path}")

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout=30.0):
        if self.alive():
            self.proc.send_signal(signal.SIGTERM)
            rc = self.proc.wait(timeout)
            assert rc == 0, f"node {self.id} exited with {rc} on SIGTERM; see {self.log_path}"

    def kill9(self):
        if self.alive():
            self.proc.kill()
            self.proc.wait(10)

    def pause(self):
        self.proc.send_signal(signal.SIGSTOP)

    def resume(self):
        self.proc.send_signal(signal.SIGCONT)

    def restart(self, timeout=60.0):
        """Starts the process again (after a kill or a stop) and waits until it is ready."""
        assert not self.alive(), f"node {self.id} is still running"
        return self.spawn().wait_ready(timeout)


class Cluster:
    """`controllers` combined (or controller-only, with `split`) voters, plus
    `brokers` broker-only nodes."""

    def __init__(self, root: Path, controllers=3, brokers=0, split=False, overrides=None, node_overrides=None,
                 hosts=None, exec_prefix=None):
        """`hosts[i]` is node i+1's address (default 127.0.0.1) and `exec_prefix(node_id)`
        the command list its process runs under (default none)."""
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        self.cluster_id = cluster_id()
        self.overrides = dict(overrides or {})
        self.node_overrides = dict(node_overrides or {})
        n = controllers + brokers
        ports = free_ports(n + controllers)
        client_ports, controller_ports = ports[:n], ports[n:]
        hosts = list(hosts or ["127.0.0.1"] * n)
        prefix = exec_prefix or (lambda _node_id: [])
        self.voters = ",".join(f"{i + 1}@{hosts[i]}:{controller_ports[i]}" for i in range(controllers))
        self.nodes = []
        for i in range(n):
            if i < controllers:
                roles = "controller" if split else "broker,controller"
                self.nodes.append(Node(self, i + 1, client_ports[i], controller_ports[i], roles, hosts[i], prefix(i + 1)))
            else:
                self.nodes.append(Node(self, i + 1, client_ports[i], None, "broker", hosts[i], prefix(i + 1)))

    def start(self, timeout=60.0):
        for node in self.nodes:
            node.spawn()
        for node in self.nodes:
            node.wait_ready(timeout)
        return self

    @property
    def brokers(self):
        return [n for n in self.nodes if n.is_broker]

    @property
    def bootstrap(self):
        return ",".join(n.bootstrap for n in self.brokers if n.alive())

    def node(self, node_id):
        return next(n for n in self.nodes if n.id == node_id)

    def stop(self):
        for node in self.nodes:
            if node.alive():
                node.proc.send_signal(signal.SIGTERM)
        for node in self.nodes:
            if node.proc is not None:
                try:
                    node.proc.wait(30)
                except subprocess.TimeoutExpired:
                    node.proc.kill()

    def kill_all(self):
        for node in self.nodes:
            if node.alive():
                node.proc.send_signal(signal.SIGCONT)
                node.kill9()
