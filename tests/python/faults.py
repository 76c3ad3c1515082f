"""Fault injection for a cluster of combined broker+controller nodes (tests/python/cluster.py).

Each node runs in a network namespace of its own, joined to a bridge in the root namespace
by a veth pair, with an address of its own (10.213.S.11, .12, ...). The test process stays
in the root namespace (the bridge has 10.213.S.1) and reaches every node.

Faults on one node: kill -9, SIGSTOP/SIGCONT, SIGTERM, restart, and a network cut from the
other nodes (and optionally from the clients). A cut makes packets vanish silently, as a
real partition does: the sender's neighbour (ARP) entry for the target's address is pinned
to a MAC address that no interface has, so its frames are dropped on the bridge; nothing
answers, connections hang until their timeouts. Cutting A->B without B->A is a one-way cut.
Only `ip` (iproute2) is needed, no iptables or tc classifiers.

Everything is removed on close() (and at interpreter exit): the processes, the namespaces,
the bridge. Leftovers of a run that was killed (namespaces and bridges named after a pid
that no longer exists) are removed when the next Network is created.
"""
import atexit
import itertools
import os
import random
import shutil
import signal
import subprocess
import threading
import time
from pathlib import Path

from cluster import Cluster
from conftest import wait_until

PREFIX = "gf"
# A locally administered unicast MAC that no interface has: frames sent to it go nowhere.
NOWHERE = "02:00:5e:00:de:ad"
_counter = itertools.count()
_live = set()
_lock = threading.Lock()


def _run(*args, check=True):
    r = subprocess.run(list(args), capture_output=True, text=True, timeout=30)
    if check and r.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed ({r.returncode}): {r.stderr.strip()}")
    return r


def _b36(n):
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    while True:
        n, r = divmod(n, 36)
        out = digits[r] + out
        if n == 0:
            return out


def _owner_alive(name):
    """Names are `gf<pid in base 36>x<n>...`: is that pid still running?"""
    try:
        pid = int(name[len(PREFIX):].split("x", 1)[0], 36)
    except ValueError:
        return True
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True


def netns_available():
    """True when this process may create namespaces and bridges (root with iproute2)."""
    if os.geteuid() != 0 or shutil.which("ip") is None:
        return False
    probe = f"{PREFIX}{_b36(os.getpid())}xprobe"
    if _run("ip", "netns", "add", probe, check=False).returncode != 0:
        return False
    _run("ip", "netns", "del", probe, check=False)
    return True


def sweep_stale():
    """Removes namespaces (and the processes in them) and bridges of dead test runs."""
    r = _run("ip", "netns", "list", check=False)
    for line in r.stdout.splitlines():
        name = line.split()[0] if line.split() else ""
        if name.startswith(PREFIX) and not _owner_alive(name):
            _kill_ns_pids(name)
            _run("ip", "netns", "del", name, check=False)
    r = _run("ip", "-o", "link", "show", "type", "bridge", check=False)
    for line in r.stdout.splitlines():
        parts = line.split(":")
        if len(parts) > 1:
            name = parts[1].strip().split("@")[0]
            if name.startswith(PREFIX) and not _owner_alive(name):
                _run("ip", "link", "del", name, check=False)


def _kill_ns_pids(ns):
    r = _run("ip", "netns", "pids", ns, check=False)
    for pid in r.stdout.split():
        try:
            os.kill(int(pid), signal.SIGKILL)
        except (ProcessLookupError, ValueError):
            pass


def _used_subnets():
    r = _run("ip", "-4", "-o", "addr", "show", check=False)
    return {tok.split("/")[0].rsplit(".", 1)[0] for tok in r.stdout.split() if tok.startswith("10.213.")}


class Network:
    """A bridge and one namespace per node. Node i (1-based) has address hosts[i-1]."""

    def __init__(self, nodes=3):
        sweep_stale()
        self.tag = f"{PREFIX}{_b36(os.getpid())}x{next(_counter)}"
        used = _used_subnets()
        start = os.getpid() % 250
        third = next(
            (1 + (start + k) % 250 for k in range(250) if f"10.213.{1 + (start + k) % 250}" not in used), None
        )
        if third is None:
            raise RuntimeError("no free 10.213.x.0/24 subnet")
        self.gateway = f"10.213.{third}.1"
        self.bridge = f"{self.tag}b"
        self.ids = list(range(1, nodes + 1))
        self.hosts = [f"10.213.{third}.{10 + i}" for i in self.ids]
        self.cuts = set()  # (from, to): node ids, 0 = the clients (the root namespace)
        self._up = False

    def ns(self, node_id):
        return f"{self.tag}n{node_id}"

    def veth(self, node_id):
        return f"{self.tag}v{node_id}"

    def address(self, who):
        return self.gateway if who == 0 else self.hosts[who - 1]

    def exec_prefix(self, node_id):
        return ["ip", "netns", "exec", self.ns(node_id)]

    def up(self):
        with _lock:
            _live.add(self)
        self._up = True
        try:
            _run("ip", "link", "add", self.bridge, "type", "bridge")
            _run("ip", "addr", "add", f"{self.gateway}/24", "dev", self.bridge)
            _run("ip", "link", "set", self.bridge, "up")
            for i in self.ids:
                ns, veth = self.ns(i), self.veth(i)
                _run("ip", "netns", "add", ns)
                _run("ip", "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", ns)
                _run("ip", "link", "set", veth, "master", self.bridge, "up")
                _run("ip", "-n", ns, "addr", "add", f"{self.address(i)}/24", "dev", "eth0")
                _run("ip", "-n", ns, "link", "set", "eth0", "up")
                _run("ip", "-n", ns, "link", "set", "lo", "up")
        except Exception:
            self.down()
            raise
        return self

    # --- cuts -------------------------------------------------------------------------

    def drop(self, src, dst):
        """Packets from `src` to `dst` vanish (ids; 0 = the clients in the root namespace)."""
        dev = self.bridge if src == 0 else "eth0"
        ns = [] if src == 0 else ["-n", self.ns(src)]
        _run("ip", *ns, "neigh", "replace", self.address(dst), "lladdr", NOWHERE, "dev", dev, "nud", "permanent")
        self.cuts.add((src, dst))

    def undrop(self, src, dst):
        dev = self.bridge if src == 0 else "eth0"
        ns = [] if src == 0 else ["-n", self.ns(src)]
        _run("ip", *ns, "neigh", "del", self.address(dst), "dev", dev, check=False)
        self.cuts.discard((src, dst))

    def cut(self, node_id, peers=None, clients=False, one_way=False):
        """Cuts `node_id` from `peers` (default: every other node), both ways unless
        `one_way` (then only node -> peers is dropped), and from the clients if asked."""
        peers = [p for p in (peers or self.ids) if p != node_id]
        if clients:
            peers.append(0)
        for p in peers:
            self.drop(node_id, p)
            if not one_way:
                self.drop(p, node_id)

    def heal(self):
        for src, dst in list(self.cuts):
            self.undrop(src, dst)

    def down(self):
        """Kills whatever still runs in the namespaces and removes them and the bridge."""
        if not self._up:
            return
        self._up = False
        for i in self.ids:
            _kill_ns_pids(self.ns(i))
            _run("ip", "netns", "del", self.ns(i), check=False)
        _run("ip", "link", "del", self.bridge, check=False)
        with _lock:
            _live.discard(self)


@atexit.register
def _down_all():
    for net in list(_live):
        net.down()


def _tail(path, size=4096):
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - size))
            return f.read().decode(errors="replace")
    except OSError:
        return ""


class FaultCluster:
    """A cluster of `nodes` combined broker+controller nodes, each in its own namespace
    (or all on 127.0.0.1 with `netns=False`, where cuts are unavailable), plus a log of
    every fault injected. Use as a context manager, or call close()."""

    def __init__(self, root: Path, nodes=3, overrides=None, netns=True):
        self.root = Path(root)
        self.net = Network(nodes).up() if netns else None
        try:
            self.cluster = Cluster(
                self.root,
                controllers=nodes,
                overrides=overrides,
                hosts=self.net.hosts if self.net else None,
                exec_prefix=self.net.exec_prefix if self.net else None,
            )
        except Exception:
            self.close()
            raise
        self.faults = []  # (seconds since start, kind, node id, detail)
        self.started = time.monotonic()
        self._admin = None

    def start(self, timeout=90.0):
        try:
            self.cluster.start(timeout)
        except Exception:
            self.close()
            raise
        return self

    def close(self):
        self._admin = None
        cluster = getattr(self, "cluster", None)
        if cluster is not None:
            cluster.kill_all()
        if self.net is not None:
            self.net.down()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # --- addressing -------------------------------------------------------------------

    @property
    def nodes(self):
        return self.cluster.nodes

    def node(self, node_id):
        return self.cluster.node(node_id)

    @property
    def bootstrap(self):
        """Every node's address, dead or alive: clients find the live ones themselves."""
        return ",".join(n.bootstrap for n in self.nodes)

    def log_start_offsets(self, topic, partitions):
        """{(node id, partition): log start offset} from each replica's `log-start-offset`
        file (absent: 0). Without retention or DeleteRecords every one must stay 0: a
        replica whose log start moved has dropped data it may later serve as leader."""
        out = {}
        for node in self.nodes:
            for p in range(partitions):
                path = node.data_dir / f"{topic}-{p}" / "log-start-offset"
                try:
                    out[(node.id, p)] = int(path.read_text().strip() or 0)
                except FileNotFoundError:
                    out[(node.id, p)] = 0
        return out

    def log_paths(self):
        return [n.log_path for n in self.nodes]

    def _record(self, kind, node_id, detail=""):
        self.faults.append((round(time.monotonic() - self.started, 2), kind, node_id, detail))

    # --- process faults ---------------------------------------------------------------

    def kill(self, node_id):
        """kill -9."""
        self._record("kill", node_id)
        node = self.node(node_id)
        if node.alive():
            node.proc.send_signal(signal.SIGCONT)
        node.kill9()

    def terminate(self, node_id, timeout=60.0):
        """SIGTERM, waiting for a clean exit (status 0)."""
        self._record("terminate", node_id)
        node = self.node(node_id)
        if node.alive():
            node.proc.send_signal(signal.SIGCONT)
        node.stop(timeout)

    def restart(self, node_id, timeout=90.0, retry_duplicate=False):
        """Starts a stopped or killed node and waits until it is ready. A node restarted
        while its previous incarnation's session is still live is refused by the
        controller (DUPLICATE_BROKER_REGISTRATION) and exits; with `retry_duplicate` it
        is started again until the old session has expired (each refusal is logged as a
        `duplicate_registration` event)."""
        self._record("restart", node_id)
        node = self.node(node_id)
        deadline = time.monotonic() + timeout
        while True:
            try:
                return node.restart(max(1.0, deadline - time.monotonic()))
            except RuntimeError:
                refused = "already registered by another live process" in _tail(node.log_path)
                if not (retry_duplicate and refused and time.monotonic() < deadline):
                    raise
                self._record("duplicate_registration", node_id)
                time.sleep(0.5)  # back off before the next attempt (not a synchronisation)

    def pause(self, node_id):
        self._record("pause", node_id)
        self.node(node_id).pause()

    def resume(self, node_id):
        self._record("resume", node_id)
        self.node(node_id).resume()

    def cut(self, node_id, peers=None, clients=False, one_way=False):
        if self.net is None:
            raise RuntimeError("network cuts need the namespaces (FaultCluster(netns=True), as root)")
        self._record("cut", node_id, f"peers={peers or 'all'} clients={clients} one_way={one_way}")
        self.net.cut(node_id, peers, clients, one_way)

    def heal(self):
        if self.net is not None and self.net.cuts:
            self._record("heal", 0)
            self.net.heal()

    # --- observation ------------------------------------------------------------------

    def admin(self):
        from confluent_kafka.admin import AdminClient

        if self._admin is None:
            self._admin = AdminClient({"bootstrap.servers": self.bootstrap, "socket.timeout.ms": 5000})
        return self._admin

    def create_topic(self, name, partitions=1, rf=3, min_isr=2, config=None):
        from confluent_kafka import KafkaException
        from confluent_kafka.admin import NewTopic

        cfg = {"min.insync.replicas": str(min_isr), **(config or {})}

        def created():
            try:
                self.admin().create_topics([NewTopic(name, partitions, rf, config=cfg)])[name].result(15)
                return True
            except KafkaException as e:
                return "TOPIC_ALREADY_EXISTS" in str(e)

        wait_until(created, timeout=60, what=f"topic {name} created", interval=0.5)
        self.wait_healthy(name, partitions)

    def layout(self, topic, via=None):
        """{partition: (leader, replicas, isr)} as the cluster (or one node) reports it;
        None if the metadata cannot be read now."""
        from confluent_kafka.admin import AdminClient

        if via is None:
            # A node cut off from the quorum still answers with its stale view: ask the
            # live nodes outside every cut first.
            cut = {n for pair in (self.net.cuts if self.net else ()) for n in pair}
            live = [n.id for n in self.nodes if n.alive()]
            for node_id in sorted(live, key=lambda i: i in cut):
                found = self.layout(topic, via=node_id)
                if found is not None:
                    return found
            return None
        try:
            # A fresh client knows only that node, so the request goes to it.
            client = AdminClient({"bootstrap.servers": self.node(via).bootstrap, "log_level": 3})
            md = client.list_topics(topic=topic, timeout=5)
        except Exception:
            return None
        t = md.topics.get(topic)
        if t is None or t.error is not None or not t.partitions:
            return None
        return {p.id: (p.leader, sorted(p.replicas), sorted(p.isrs)) for p in t.partitions.values()}

    def controller(self, timeout=30.0):
        """The active controller (the metadata quorum's leader), as a live node outside
        every cut reports it."""
        import json

        from conftest import BIN

        cut = {n for pair in (self.net.cuts if self.net else ()) for n in pair}

        def ask():
            for node in sorted((n for n in self.nodes if n.alive()), key=lambda n: n.id in cut):
                r = subprocess.run([BIN, "cluster", "quorum", "-b", node.bootstrap, "--output", "json"],
                                   capture_output=True, text=True, timeout=30)
                if r.returncode == 0:
                    leader = json.loads(r.stdout).get("leader")
                    if leader in {n.id for n in self.nodes}:
                        return leader
            return None

        return wait_until(ask, timeout=timeout, what="the active controller", interval=0.5)

    def quorum(self, via):
        """(leader, epoch) of the metadata quorum as node `via` reports it, or None."""
        import json

        from conftest import BIN

        r = subprocess.run([BIN, "cluster", "quorum", "-b", self.node(via).bootstrap, "--output", "json"],
                           capture_output=True, text=True, timeout=30)
        if r.returncode != 0:
            return None
        q = json.loads(r.stdout)
        return q.get("leader"), q.get("epoch")

    def leader_of(self, topic, partition=0):
        layout = self.layout(topic)
        return layout[partition][0] if layout and partition in layout else -1

    def wait_leader(self, topic, partition=0, exclude=(), timeout=60.0):
        """Waits until a live node outside `exclude` leads the partition, and returns its id."""

        def found():
            leader = self.leader_of(topic, partition)
            live = {n.id for n in self.nodes if n.alive()}
            return leader if leader in live and leader not in exclude else None

        return wait_until(found, timeout=timeout, what=f"a leader for {topic}-{partition} outside {exclude}", interval=0.2)

    def wait_healthy(self, topic, partitions=None, full_isr=False, timeout=90.0):
        """Waits until every live node reports every partition with a live leader (and,
        with `full_isr`, every replica in its ISR), all of them the same layout."""

        def healthy():
            # Every live node's view, and the same one: a node that was paused or cut
            # may still answer with what it knew before (its metadata catches up after).
            views = [self.layout(topic, via=n.id) for n in self.nodes if n.alive()]
            layout = views[0] if views else None
            if not layout or any(v != layout for v in views):
                return False
            if partitions is not None and len(layout) != partitions:
                return False
            live = {n.id for n in self.nodes if n.alive()}
            for leader, replicas, isr in layout.values():
                if leader not in live or (full_isr and isr != replicas):
                    return False
            return layout

        return wait_until(healthy, timeout=timeout, what=f"{topic} healthy (full_isr={full_isr})", interval=0.25)


def random_fault(fc: FaultCluster, rng: random.Random, kinds=("kill", "pause", "restart", "cut"), duration=(2.0, 6.0)):
    """One fault on a random node, held for a random duration, then undone and waited on
    (the node ready again). Returns (kind, node id, seconds held)."""
    kinds = [k for k in kinds if k != "cut" or fc.net is not None]
    kind = rng.choice(kinds)
    node_id = rng.choice([n.id for n in fc.nodes])
    held = rng.uniform(*duration)
    until = time.monotonic() + held
    if kind == "kill":
        fc.kill(node_id)
    elif kind == "restart":
        fc.terminate(node_id)
    elif kind == "pause":
        fc.pause(node_id)
    elif kind == "cut":
        fc.cut(node_id, clients=rng.random() < 0.3, one_way=rng.random() < 0.2)
    # The fault's duration, not a synchronisation: the cluster is meant to live with it.
    time.sleep(max(0.0, until - time.monotonic()))
    if kind in ("kill", "restart"):
        fc.restart(node_id, retry_duplicate=True)
    elif kind == "pause":
        fc.resume(node_id)
    elif kind == "cut":
        fc.heal()
    return kind, node_id, round(held, 2)
