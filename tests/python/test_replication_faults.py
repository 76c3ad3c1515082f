"""Replicated partitions under faults (RF 3, min.insync.replicas 2, acks=all, idempotent
producers): a 3-node cluster in network namespaces (faults.py), a fault injected while
producers run, then a final read checked by checker.py. Each scenario asserts that the
checker finds nothing: no acknowledged record lost, no duplicate, nothing unexpected, no
order or offset anomaly. Node logs stay in the test's tmp dir (named in every failure)."""
import subprocess
import time

import pytest

from checker import ABORTED, ACKED, ConfluentConsumer, ConfluentProducer, History, check, make_id, read_log
from conftest import wait_until
from faults import FaultCluster, netns_available

# Faults resolve in seconds: fenced after 3 s without a heartbeat, out of the ISR after 3 s behind.
FAST = {
    "broker.session.timeout.ms": "3000",
    "broker.heartbeat.interval.ms": "500",
    "replica.lag.time.max.ms": "3000",
}
TOPIC = "faults"
PARTITIONS = 3


@pytest.fixture
def fault_cluster(tmp_path):
    assert netns_available(), "these tests run as root with iproute2 (network namespaces)"
    made = []

    def make(**kw):
        fc = FaultCluster(tmp_path / f"cluster{len(made)}", overrides={**FAST, **kw.pop("overrides", {})}, **kw)
        made.append(fc)
        fc.start()
        fc.create_topic(TOPIC, PARTITIONS, rf=3, min_isr=2)
        return fc

    yield make
    for fc in made:
        fc.close()


class Workload:
    """Idempotent producers (and one consumer recording what it polls) on TOPIC."""

    def __init__(self, fc, producers=2, rate=150, consumer=True):
        self.fc = fc
        self.history = History()
        self.producers = [
            ConfluentProducer(self.history, fc.bootstrap, TOPIC, i, PARTITIONS, rate) for i in range(producers)
        ]
        self.consumer = ConfluentConsumer(self.history, fc.bootstrap, TOPIC, PARTITIONS) if consumer else None

    def __enter__(self):
        for t in self.producers + ([self.consumer] if self.consumer else []):
            t.start()
        try:
            self.wait_acks(100, "acks before the fault")
        except BaseException:
            self.__exit__(AssertionError)
            raise
        return self

    def __exit__(self, exc_type, *_):
        for p in self.producers:
            p.stop(flush_timeout=90 if exc_type is None else 5)
        if self.consumer:
            self.consumer.stop()
        for t in self.producers + ([self.consumer] if self.consumer else []):
            t.join(120)

    def acked(self):
        return self.history.count(ACKED)

    def wait_acks(self, more, what, timeout=45.0):
        """Waits until `more` further records are acknowledged: production goes on."""
        target = self.acked() + more
        wait_until(lambda: self.acked() >= target, timeout=timeout, what=what, interval=0.1)

    def check(self):
        assert all(not p.is_alive() for p in self.producers), "a producer did not finish"
        for p in self.producers:
            assert p.exception is None, f"producer {p.name}: {p.exception!r}"
        log = read_log(self.fc.bootstrap, TOPIC, PARTITIONS, timeout=90)
        report = check(self.history, log)
        print(report.summary())
        print("faults:", self.fc.faults)
        return report


def explain(fc, report):
    return f"{report}\nfaults: {fc.faults}\nnode logs: {[str(p) for p in fc.log_paths()]}"


def assert_clean(fc, report, min_acked=200, recovered=None):
    """The checker found nothing, enough was acknowledged, and (when given) the cluster
    recovered in time: `recovered` is None or what it failed to do."""
    assert report.ok, explain(fc, report)
    assert report.acked >= min_acked, explain(fc, report)
    assert recovered is None, f"{recovered}\n{explain(fc, report)}"
    # No retention, no DeleteRecords: no replica may have dropped the head of its log
    # (a replica that did would lose it for everyone on becoming leader).
    moved = {k: v for k, v in fc.log_start_offsets(TOPIC, PARTITIONS).items() if v != 0}
    assert not moved, f"log start offsets moved on (node, partition): {moved}\n{explain(fc, report)}"


def recover(fc, w=None):
    """Waits until every partition has its full ISR again (and, with a workload, until
    production goes on). Returns None, or what did not happen, so that the checker still
    runs and its findings come first."""
    try:
        fc.wait_healthy(TOPIC, PARTITIONS, full_isr=True, timeout=45)
        if w is not None:
            w.wait_acks(100, "acks with every replica back in the ISR")
    except AssertionError as e:
        return f"the cluster did not recover: {e}; layout {fc.layout(TOPIC)}"
    return None


def test_kill_9_of_a_partition_leader_loses_nothing(fault_cluster):
    fc = fault_cluster()
    with Workload(fc) as w:
        leader = fc.wait_leader(TOPIC, 0)
        fc.kill(leader)
        new = fc.wait_leader(TOPIC, 0, exclude=(leader,), timeout=30)
        assert new != leader
        w.wait_acks(150, "acks after the leader was killed")
        fc.restart(leader)
        recovered = recover(fc, w)
    assert_clean(fc, w.check(), recovered=recovered)


def test_two_leader_kills_in_turn_lose_nothing(fault_cluster):
    """Kill the leader, bring it back (it truncates its unacknowledged tail and rejoins the
    ISR), then kill the next leader: whichever replica leads last must hold everything."""
    fc = fault_cluster()
    with Workload(fc) as w:
        killed = []
        for _ in range(2):
            leader = fc.wait_leader(TOPIC, 0, exclude=tuple(killed[-1:]))
            fc.kill(leader)
            killed.append(leader)
            fc.wait_leader(TOPIC, 0, exclude=(leader,), timeout=30)
            w.wait_acks(150, f"acks after node {leader} was killed")
            fc.restart(leader)
            recovered = recover(fc, w)
            if recovered:
                break
    assert_clean(fc, w.check(), recovered=recovered)


def test_a_paused_leader_is_replaced_and_acknowledges_nothing_the_new_leader_lacks(fault_cluster):
    fc = fault_cluster()
    with Workload(fc) as w:
        leader = fc.wait_leader(TOPIC, 0)
        fc.pause(leader)
        try:
            # Longer than the session timeout: the others fence it and elect a new leader.
            fc.wait_leader(TOPIC, 0, exclude=(leader,), timeout=30)
            w.wait_acks(150, "acks while the old leader is paused")
        finally:
            fc.resume(leader)
        # The zombie wakes up believing it leads: whatever it acknowledges now must survive.
        w.wait_acks(150, "acks after the old leader resumed")
        recovered = recover(fc, w)
    assert_clean(fc, w.check(), recovered=recovered)


def test_a_voter_paused_past_its_election_timeout_rejoins_without_an_election(fault_cluster):
    """Pre-vote (KIP-996): a voter paused longer than the election timeout wakes up with
    its election timer expired. Before raising the term it asks whether it could win, is
    told no (the others still hear from the controller) and follows: the controller and
    its epoch stay, and the woken node's metadata catches up at once. Without pre-vote its
    higher term would depose the controller and leave the cluster without one until a
    new election."""
    fc = fault_cluster()
    controller = fc.controller()
    before = wait_until(lambda: fc.quorum(controller), timeout=30, what="the quorum's state")
    voter = next(n.id for n in fc.nodes if n.id != controller)
    fc.pause(voter)
    try:
        # Long enough for every election timer to run out (and more): the partitions'
        # leaders drop the paused node from their ISRs.
        wait_until(lambda: all(voter not in isr for _, _, isr in (fc.layout(TOPIC, via=controller) or {0: (0, 0, [voter])}).values()),
                   timeout=30, what=f"node {voter} out of every ISR", interval=0.25)
    finally:
        fc.resume(voter)
    fc.wait_healthy(TOPIC, PARTITIONS, full_isr=True, timeout=45)
    assert fc.quorum(voter) == before, f"node {voter} after resuming: {fc.quorum(voter)}, before: {before}"
    assert fc.quorum(controller) == before, f"an election happened: {fc.quorum(controller)}, before: {before}"


def test_a_rolling_restart_under_load_shows_only_retriable_errors(fault_cluster):
    fc = fault_cluster()
    recovered = None
    with Workload(fc) as w:
        for node in fc.nodes:
            fc.terminate(node.id)
            fc.restart(node.id)
            # An operator waits for the full ISR before the next restart.
            recovered = recover(fc, w)
            if recovered:
                break
    report = w.check()
    assert_clean(fc, report, recovered=recovered)
    # Every send was acknowledged: the producers retried whatever went wrong, and never
    # reached a fatal state. Connection errors from the nodes restarting are expected.
    bad = [e for e in w.history.errors if e[1] != "client" or e[4]]
    assert not bad, f"errors seen on sends: {bad}\n{explain(fc, report)}"
    assert report.failed == report.unknown == 0, explain(fc, report)


def cut_leader(fc, partition, **cut):
    """Cuts `partition`'s leader from the other nodes under load, waits for a new leader
    and more acks, heals, and returns the checker's report and the recovery."""
    with Workload(fc) as w:
        leader = fc.wait_leader(TOPIC, partition)
        # Clients still reach the cut node: it may go on taking writes as a zombie leader.
        fc.cut(leader, **cut)
        try:
            fc.wait_leader(TOPIC, partition, exclude=(leader,), timeout=30)
            w.wait_acks(150, "acks from the majority side")
        finally:
            fc.heal()
        recovered = recover(fc, w)
    return w.check(), recovered


def test_a_leader_cut_from_its_followers_loses_no_acknowledged_write(fault_cluster):
    """The leader of a partition, not the active controller, cut from both other nodes."""
    fc = fault_cluster()
    controller = fc.controller()
    layout = fc.wait_healthy(TOPIC, PARTITIONS)
    partition = next(p for p, (leader, _, _) in sorted(layout.items()) if leader != controller)
    report, recovered = cut_leader(fc, partition)
    assert_clean(fc, report, recovered=recovered)


def test_the_active_controller_cut_off_while_leading_loses_nothing(fault_cluster):
    """The node that is both the active controller and a partition's leader, cut from both
    other nodes: the two others elect a controller, which fences the cut node only and
    moves its leaderships."""
    fc = fault_cluster()
    controller = fc.controller()
    layout = fc.wait_healthy(TOPIC, PARTITIONS)
    partition = next(p for p, (leader, _, _) in sorted(layout.items()) if leader == controller)
    report, recovered = cut_leader(fc, partition)
    assert_clean(fc, report, recovered=recovered)


def test_a_leader_cut_from_the_controller_only_is_fenced_and_loses_nothing(fault_cluster):
    """The leader of a partition loses the controller but still reaches its followers and
    the clients. Its session expires, the controller moves the leadership, and the old
    leader, which never hears of it, must not acknowledge anything the new leader lacks."""
    fc = fault_cluster()
    controller = fc.controller()
    layout = fc.wait_healthy(TOPIC, PARTITIONS)
    partition, leader = next((p, l) for p, (l, _, _) in sorted(layout.items()) if l != controller)
    with Workload(fc) as w:
        fc.cut(leader, peers=[controller])
        try:
            fc.wait_leader(TOPIC, partition, exclude=(leader,), timeout=30)
            w.wait_acks(150, "acks after the leadership moved")
        finally:
            fc.heal()
        recovered = recover(fc, w)
    assert_clean(fc, w.check(), recovered=recovered)


def test_transactions_through_a_leader_kill_read_nothing_aborted(fault_cluster):
    """A transactional producer (one transaction in three aborted on purpose) through a
    kill -9 of partition 0's leader: read_committed returns every committed record once
    and in order, and no aborted one (G1a)."""
    fc = fault_cluster()
    h = History()
    p = ConfluentProducer(h, fc.bootstrap, TOPIC, "t", PARTITIONS, rate=150, transactional=True,
                          txn_size=9, abort_every=3)
    p.start()
    try:
        wait_until(lambda: h.count(ACKED) >= 60 and h.count(ABORTED) >= 9, timeout=45,
                   what="transactions committed and aborted before the fault")
        leader = fc.wait_leader(TOPIC, 0)
        fc.kill(leader)
        fc.wait_leader(TOPIC, 0, exclude=(leader,), timeout=30)
        target = h.count(ACKED) + 90
        wait_until(lambda: h.count(ACKED) >= target, timeout=60, what="commits after the kill")
        fc.restart(leader)
        recovered = recover(fc)
    finally:
        p.stop(flush_timeout=30)
        p.join(180)
    assert p.exception is None, f"the transactional producer stopped: {p.exception!r}"
    report = check(h, read_log(fc.bootstrap, TOPIC, PARTITIONS))
    print(report.summary())
    assert report.aborted > 0, explain(fc, report)
    assert_clean(fc, report, min_acked=150, recovered=recovered)


def test_kafka_python_producing_through_a_leader_kill(fault_cluster):
    from kafka import KafkaProducer
    from kafka.errors import KafkaTimeoutError

    fc = fault_cluster()
    h = History()
    producer = KafkaProducer(
        bootstrap_servers=fc.bootstrap.split(","),
        acks="all",
        enable_idempotence=True,
        retries=2**31 - 1,
        request_timeout_ms=5000,
        delivery_timeout_ms=60000,
        metadata_max_age_ms=1000,
        reconnect_backoff_max_ms=500,
        linger_ms=5,
    )

    def outcome(id):
        def ok(md):
            h.ack(id, md.partition, md.offset)

        def failed(exc):
            h.unknown(id, type(exc).__name__)

        return ok, failed

    def send(seq):
        partition = seq % PARTITIONS
        h.invoke("kp", seq, partition)
        ok, failed = outcome(make_id("kp", seq))
        f = producer.send(TOPIC, value=make_id("kp", seq).encode(), partition=partition)
        f.add_callback(ok)
        f.add_errback(failed)

    try:
        seq = 0
        for seq in range(300):
            send(seq)
        producer.flush(30)
        leader = fc.wait_leader(TOPIC, 0)
        fc.kill(leader)
        for seq in range(300, 900):
            send(seq)
            if seq % 50 == 0:
                time.sleep(0.05)  # spread the sends over the failover (pacing, not synchronisation)
        try:
            producer.flush(90)
        except KafkaTimeoutError:
            pass
        fc.restart(leader)
        fc.wait_healthy(TOPIC, PARTITIONS)
    finally:
        producer.close(10)
    h.resolve_pending("kafka-python gave no outcome")
    report = check(h, read_log(fc.bootstrap, TOPIC, PARTITIONS))
    print(report.summary())
    assert_clean(fc, report, min_acked=300)


def test_kcat_producing_through_a_leader_kill(fault_cluster):
    fc = fault_cluster()
    h = History()
    proc = subprocess.Popen(
        ["kcat", "-P", "-b", fc.bootstrap, "-t", TOPIC, "-p", "0",
         "-X", "acks=all", "-X", "enable.idempotence=true", "-X", "message.timeout.ms=60000",
         "-X", "request.timeout.ms=5000", "-X", "topic.metadata.refresh.interval.ms=1000"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    leader = fc.wait_leader(TOPIC, 0)
    for seq in range(1000):
        h.invoke("kc", seq, 0)
        proc.stdin.write(f"{make_id('kc', seq)}\n".encode())
        if seq == 400:
            proc.stdin.flush()
            wait_until(lambda: (read_log(fc.bootstrap, TOPIC, PARTITIONS, timeout=10)[0] or [(0, None)])[-1][0] > 50,
                       timeout=30, what="kcat's first records written")
            fc.kill(leader)
    out, err = proc.communicate(timeout=120)  # closes stdin: kcat delivers the rest and exits
    # kcat exits 0 only if every record was delivered; it does not report offsets.
    assert proc.returncode == 0, err.decode()
    for seq in range(1000):
        h.ack(make_id("kc", seq), 0, None)
    fc.restart(leader)
    fc.wait_healthy(TOPIC, PARTITIONS)
    report = check(h, read_log(fc.bootstrap, TOPIC, PARTITIONS))
    print(report.summary())
    assert_clean(fc, report, min_acked=1000)


def test_kafkajs_producing_through_a_leader_kill(fault_cluster):
    """kafkajs (its own protocol implementation) with an idempotent acks=-1 producer:
    the leader of partition 0 is killed once 300 records are acknowledged; every
    acknowledgement is then checked against the log."""
    import shutil
    import threading
    from pathlib import Path

    node = shutil.which("node")
    script = Path(__file__).resolve().parents[1] / "node" / "failover.js"
    assert node and (script.parent / "node_modules" / "kafkajs").exists(), "installed by ./test.sh"
    fc = fault_cluster()
    h = History()
    total = 900
    for seq in range(total):
        h.invoke("kj", seq, (seq // 10) % PARTITIONS)
    leader = fc.wait_leader(TOPIC, 0)
    proc = subprocess.Popen([node, str(script), fc.bootstrap, TOPIC, str(PARTITIONS), str(total), make_id("kj", "")[:-1], "30"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    acked = [0]

    def outcomes():
        for line in proc.stdout:
            kind, seq, *rest = line.split()
            id = make_id("kj", int(seq))
            if kind == "A":
                h.ack(id, int(rest[0]), int(rest[1]))
                acked[0] += 1
            else:
                h.unknown(id, rest[0])

    reader = threading.Thread(target=outcomes, daemon=True)
    reader.start()
    try:
        wait_until(lambda: acked[0] >= 300 or proc.poll() is not None, timeout=60, what="kafkajs's first acks")
        fc.kill(leader)
        at_kill = acked[0]
        proc.wait(timeout=180)
        reader.join(10)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, proc.stderr.read()[-2000:]
    assert at_kill <= total - 300, f"the kill came after {at_kill} of {total} acks: not mid-stream"
    fc.restart(leader)
    fc.wait_healthy(TOPIC, PARTITIONS)
    h.resolve_pending("kafkajs gave no outcome")
    report = check(h, read_log(fc.bootstrap, TOPIC, PARTITIONS))
    print(report.summary())
    assert_clean(fc, report, min_acked=600)


def test_isr_changes_of_many_partitions_reach_the_controller_as_few_metadata_entries(tmp_path):
    """AlterPartition (API 56) carries every pending ISR change of a leader in one
    request, committed as one metadata entry: a follower that stops fetching leaves the
    ISR of the 20-odd partitions two other leaders lead in a handful of entries, not one
    entry per partition (Kafka's AlterPartitionManager batching)."""
    import json

    from conftest import BIN

    overrides = {"broker.session.timeout.ms": "30000", "broker.heartbeat.interval.ms": "500",
                 "replica.lag.time.max.ms": "1500"}
    fc = FaultCluster(tmp_path / "many", overrides=overrides, netns=False).start()
    try:
        fc.create_topic("many", 30, rf=3, min_isr=1)
        fc.wait_healthy("many", 30, full_isr=True)
        layout = fc.layout("many", via=1)
        elsewhere = sorted(p for p, (leader, _, _) in layout.items() if leader != 3)
        assert len(elsewhere) >= 15, layout

        def metadata_end():
            r = subprocess.run([BIN, "cluster", "quorum", "-b", fc.node(1).bootstrap, "--output", "json"],
                               capture_output=True, text=True, timeout=30)
            assert r.returncode == 0, r.stderr
            return json.loads(r.stdout)["high_watermark"]

        before = metadata_end()
        fc.pause(3)

        def shrunk():
            now = fc.layout("many", via=1)
            return now is not None and all(now[p][2] == sorted(set(now[p][1]) - {3}) for p in elsewhere)

        # Long before node 3's session (30 s) expires, so the controller has not fenced it:
        # the leaders asked.
        wait_until(shrunk, timeout=20, what="node 3 out of the ISR of the partitions nodes 1 and 2 lead")
        entries = metadata_end() - before
        # One request per leader in the common case; a change submitted while a request
        # is in flight goes in the next one.
        assert 1 <= entries <= 6, f"{entries} metadata entries for {len(elsewhere)} ISR changes"
        fc.resume(3)
        fc.wait_healthy("many", 30, full_isr=True)
    finally:
        fc.close()
