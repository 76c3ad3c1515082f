"""The inter-broker listener secured: three nodes whose brokers replicate to each other
over SASL_SSL (TLS verified against a CA, then a SASL login), while clients use a
PLAINTEXT listener. PLAIN with the JAAS `username`/`password`, and SCRAM-SHA-512 whose
credential lives in the metadata log: until it is set the followers' logins are refused
(and nothing is replicated); once set, they catch up byte for byte."""
import re

import pytest
import trustme
from confluent_kafka import Producer
from confluent_kafka.admin import (AdminClient, NewTopic, ScramCredentialInfo, ScramMechanism,
                                   UserScramCredentialUpsertion)

from cluster import Cluster, free_ports
from conftest import wait_until

FAST = {
    "broker.session.timeout.ms": "3000",
    "broker.heartbeat.interval.ms": "500",
}


def secure_cluster(root, mechanism, jaas):
    root.mkdir(parents=True, exist_ok=True)
    ca = trustme.CA()
    ca.issue_cert("localhost", "127.0.0.1").private_key_and_cert_chain_pem.write_to_path(
        str(root / "broker.pem"))
    ca.cert_pem.write_to_path(str(root / "ca.pem"))
    c = Cluster(root / "c", controllers=3, overrides={
        **FAST,
        "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,INTERNAL:SASL_SSL,CONTROLLER:PLAINTEXT",
        "inter.broker.listener.name": "INTERNAL",
        "ssl.keystore.location": str(root / "broker.pem"),
        "ssl.truststore.location": str(root / "ca.pem"),
        "listener.name.internal.sasl.enabled.mechanisms": mechanism,
        "sasl.mechanism.inter.broker.protocol": mechanism,
        f"listener.name.internal.{mechanism.lower()}.sasl.jaas.config": jaas,
    })
    internal = free_ports(len(c.nodes))
    for node, port in zip(c.nodes, internal):
        c.node_overrides[node.id] = {
            "listeners": f"PLAINTEXT://127.0.0.1:{node.port},INTERNAL://127.0.0.1:{port},"
                         f"CONTROLLER://127.0.0.1:{node.controller_port}",
        }
    return c


def partition(admin, topic):
    return admin.list_topics(topic, timeout=10).topics[topic].partitions[0]


def log_bytes(node, topic):
    d = node.data_dir / f"{topic}-0"
    return b"".join(f.read_bytes() for f in sorted(d.glob("*.log")))


def produce(bootstrap, topic, n, acks):
    errors = []
    p = Producer({"bootstrap.servers": bootstrap, "acks": acks, "linger.ms": 5})
    for i in range(n):
        p.produce(topic, key=str(i).encode(), value=f"value-{i}".encode() * 10, partition=0,
                  on_delivery=lambda e, m: errors.append(e) if e else None)
    assert p.flush(60) == 0
    return errors


@pytest.fixture
def cleanup():
    clusters = []
    yield clusters.append
    for c in clusters:
        c.kill_all()


def test_replication_over_sasl_ssl_with_plain(tmp_path, cleanup):
    jaas = ('org.apache.kafka.common.security.plain.PlainLoginModule required '
            'username="broker" password="broker-secret" user_broker="broker-secret";')
    c = secure_cluster(tmp_path, "PLAIN", jaas)
    cleanup(c)
    c.start()
    admin = AdminClient({"bootstrap.servers": c.bootstrap})
    admin.create_topics([NewTopic("r", 1, 3, config={"min.insync.replicas": "3"})])["r"].result(30)
    wait_until(lambda: len(partition(admin, "r").isrs) == 3, 30, what="ISR of 3")
    # acks=all with min.insync.replicas=3: each answer needs both followers to have
    # fetched the batch, over TLS after a PLAIN login.
    assert produce(c.bootstrap, "r", 500, "all") == []
    leader = c.node(partition(admin, "r").leader)
    want = log_bytes(leader, "r")
    assert len(want) > 500 * 60
    wait_until(lambda: all(log_bytes(n, "r") == want for n in c.nodes), 30,
               what="followers holding the leader's bytes")
    # The internal listener really is TLS: a plaintext Kafka client is refused there.
    internal = re.search(r"INTERNAL://127\.0\.0\.1:(\d+)", c.node_overrides[1]["listeners"]).group(1)
    p = Producer({"bootstrap.servers": f"127.0.0.1:{internal}", "message.timeout.ms": 3000})
    errs = []
    p.produce("r", b"x", partition=0, on_delivery=lambda e, m: errs.append(e))
    p.flush(10)
    assert errs and errs[0] is not None


def test_scram_inter_broker_login_waits_for_its_credential(tmp_path, cleanup):
    jaas = ('org.apache.kafka.common.security.scram.ScramLoginModule required '
            'username="broker" password="broker-secret";')
    c = secure_cluster(tmp_path, "SCRAM-SHA-512", jaas)
    cleanup(c)
    c.start()
    admin = AdminClient({"bootstrap.servers": c.bootstrap})
    admin.create_topics([NewTopic("s", 1, 3)])["s"].result(30)
    wait_until(lambda: partition(admin, "s").leader >= 0, 30, what="a leader")
    assert produce(c.bootstrap, "s", 200, "1") == []
    leader = c.node(partition(admin, "s").leader)
    followers = [n for n in c.nodes if n is not leader]
    # No credential yet: the followers' logins are refused and they hold nothing.
    wait_until(lambda: all(b"cannot log in" in n.log_path.read_bytes() for n in followers), 30,
               what="refused inter-broker logins")
    assert all(log_bytes(n, "s") == b"" for n in followers)
    # The credential is a metadata record: once every broker has it, the followers log
    # in with SCRAM-SHA-512 and catch up.
    up = UserScramCredentialUpsertion("broker", ScramCredentialInfo(ScramMechanism.SCRAM_SHA_512, 4096),
                                      b"broker-secret")
    for f in admin.alter_user_scram_credentials([up]).values():
        f.result(30)
    want = log_bytes(leader, "s")
    wait_until(lambda: all(log_bytes(n, "s") == want for n in followers), 60,
               what="followers caught up after the credential was set")
    wait_until(lambda: len(partition(admin, "s").isrs) == 3, 30, what="ISR of 3")


def test_controller_listener_over_mutual_tls(tmp_path, cleanup):
    """The metadata quorum's RPC (votes, log replication, broker registration and
    heartbeats, a broker-only node's metadata fetches) over TLS with client certificates
    required: the cluster forms and serves; a peer without a certificate is refused."""
    import socket
    import ssl

    ca = trustme.CA()
    ca.issue_cert("localhost", "127.0.0.1").private_key_and_cert_chain_pem.write_to_path(
        str(tmp_path / "node.pem"))
    ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    c = Cluster(tmp_path / "c", controllers=3, brokers=1, overrides={
        **FAST,
        "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:SSL",
        "listener.name.controller.ssl.keystore.location": str(tmp_path / "node.pem"),
        "listener.name.controller.ssl.truststore.location": str(tmp_path / "ca.pem"),
        "listener.name.controller.ssl.client.auth": "required",
    })
    cleanup(c)
    c.start()
    admin = AdminClient({"bootstrap.servers": c.bootstrap})
    assert len(admin.list_topics(timeout=10).brokers) == 4
    admin.create_topics([NewTopic("t", 1, 3)])["t"].result(30)
    wait_until(lambda: len(partition(admin, "t").isrs) == 3, 30, what="ISR of 3")
    assert produce(c.bootstrap, "t", 100, "all") == []

    # Without a client certificate the controller listener refuses the peer.
    ctx = ssl.create_default_context(cafile=str(tmp_path / "ca.pem"))
    port = c.node(1).controller_port
    refused = False
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        try:
            with ctx.wrap_socket(raw, server_hostname="127.0.0.1") as s:
                s.sendall(b"\x00\x00\x00\x08\x00\x00\x00\x02{}xx")
                refused = s.recv(16) == b""
        except (ssl.SSLError, ConnectionResetError):
            refused = True
    assert refused
    wait_until(lambda: b"TLS handshake failed" in c.node(1).log_path.read_bytes(), 10,
               what="the refusal logged")
