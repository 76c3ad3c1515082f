"""Security on the wire with real clients: TLS (server and mutual), SASL/PLAIN and
SASL/SCRAM-SHA-256/512 on SASL_PLAINTEXT and SASL_SSL listeners, SCRAM credentials
managed through the admin API, and what wrong or hostile clients get.

One broker serves five listeners at once: PLAINTEXT, SASL_PLAINTEXT, SSL, SASL_SSL and
MTLS (SSL with ssl.client.auth=required). Certificates come from a throwaway CA
(trustme)."""
import json
import logging
import shutil
import socket
import ssl
import struct
import subprocess
import time
from pathlib import Path

import pytest
import trustme
from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import (AdminClient, ScramCredentialInfo, ScramMechanism,
                                   UserScramCredentialDeletion, UserScramCredentialUpsertion)
from kafka import KafkaConsumer, KafkaProducer
from kafka.errors import KafkaError as KafkaPythonError

from conftest import wait_until

NODE_DIR = Path(__file__).resolve().parents[1] / "node"
JAAS = ('org.apache.kafka.common.security.plain.PlainLoginModule required '
        'user_alice="alice-secret" user_admin="admin-secret";')


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    d = tmp_path_factory.mktemp("pki")
    ca = trustme.CA()
    server = ca.issue_cert("localhost", "127.0.0.1")
    client = ca.issue_cert("alice@example.com", common_name="alice")
    server.private_key_and_cert_chain_pem.write_to_path(str(d / "broker.pem"))
    ca.cert_pem.write_to_path(str(d / "ca.pem"))
    client.cert_chain_pems[0].write_to_path(str(d / "client.pem"))
    client.private_key_pem.write_to_path(str(d / "client.key"))
    return {"dir": d, "ca": str(d / "ca.pem"), "keystore": str(d / "broker.pem"),
            "client_cert": str(d / "client.pem"), "client_key": str(d / "client.key"), "authority": ca}


def secure_overrides(pki, **extra):
    o = {
        "listeners": ("PLAINTEXT://127.0.0.1:0,SASL_PLAINTEXT://127.0.0.1:0,SSL://127.0.0.1:0,"
                      "SASL_SSL://127.0.0.1:0,MTLS://127.0.0.1:0"),
        "listener.security.protocol.map": ("PLAINTEXT:PLAINTEXT,SASL_PLAINTEXT:SASL_PLAINTEXT,SSL:SSL,"
                                           "SASL_SSL:SASL_SSL,MTLS:SSL"),
        "ssl.keystore.location": pki["keystore"],
        "listener.name.mtls.ssl.client.auth": "required",
        "listener.name.mtls.ssl.truststore.location": pki["ca"],
        "listener.name.sasl_plaintext.plain.sasl.jaas.config": JAAS,
        "listener.name.sasl_ssl.plain.sasl.jaas.config": JAAS,
    }
    o.update(extra)
    return o


@pytest.fixture
def secure(broker_factory, pki):
    return broker_factory(secure_overrides(pki))


def conf(broker, listener, pki, mechanism=None, user=None, password=None):
    c = {"bootstrap.servers": f"127.0.0.1:{broker.ports[listener]}", "security.protocol": {
        "SASL_PLAINTEXT": "SASL_PLAINTEXT", "SSL": "SSL", "SASL_SSL": "SASL_SSL", "MTLS": "SSL",
        "PLAINTEXT": "PLAINTEXT"}[listener]}
    if listener in ("SSL", "SASL_SSL", "MTLS"):
        c["ssl.ca.location"] = pki["ca"]
    if mechanism:
        c.update({"sasl.mechanism": mechanism, "sasl.username": user, "sasl.password": password})
    return c


def roundtrip(config, topic, n=10):
    """Produces n records and reads them back; returns the values read."""
    p = Producer(config)
    for i in range(n):
        p.produce(topic, f"{topic}-{i}".encode())
    assert p.flush(20) == 0
    c = Consumer({**config, "group.id": f"{topic}-g", "auto.offset.reset": "earliest"})
    c.assign([TopicPartition(topic, 0, 0)])
    got = []
    deadline = time.monotonic() + 20
    while len(got) < n and time.monotonic() < deadline:
        m = c.poll(0.5)
        if m is not None and not m.error():
            got.append(m.value().decode())
    c.close()
    return got


def refused(config, timeout=5):
    """What a client is told when it asks for metadata (None if it got in): its error
    callbacks (where librdkafka reports authentication failures) and the exception."""
    errors = []
    p = Producer({**config, "error_cb": lambda e: errors.append(str(e))})
    deadline = time.monotonic() + timeout
    while True:
        try:
            p.list_topics(timeout=0.5)
            return None
        except KafkaException as e:
            p.poll(0)  # error callbacks are served by poll
            if errors or time.monotonic() > deadline:
                return " | ".join(errors + [str(e)])


def test_tls_listener_serves_real_clients_and_advertises_itself(secure, pki):
    got = roundtrip(conf(secure, "SSL", pki), "tls-t")
    assert got == [f"tls-t-{i}" for i in range(10)]
    md = Producer(conf(secure, "SSL", pki)).list_topics(timeout=10)
    # Metadata names each broker by the endpoint of the listener the client is on.
    assert [(b.host, b.port) for b in md.brokers.values()] == [("127.0.0.1", secure.ports["SSL"])]
    out = subprocess.run(["kcat", "-C", "-b", f"127.0.0.1:{secure.ports['SSL']}", "-t", "tls-t", "-e",
                          "-X", "security.protocol=SSL", "-X", f"ssl.ca.location={pki['ca']}"],
                         capture_output=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.decode().split() == got


def test_mutual_tls_requires_a_trusted_client_certificate(secure, pki):
    assert refused(conf(secure, "MTLS", pki)) is not None
    with_cert = {**conf(secure, "MTLS", pki), "ssl.certificate.location": pki["client_cert"],
                 "ssl.key.location": pki["client_key"]}
    assert roundtrip(with_cert, "mtls-t", 3) == ["mtls-t-0", "mtls-t-1", "mtls-t-2"]
    # A certificate from another CA is refused.
    other = trustme.CA().issue_cert("mallory")
    d = pki["dir"]
    other.cert_chain_pems[0].write_to_path(str(d / "mallory.pem"))
    other.private_key_pem.write_to_path(str(d / "mallory.key"))
    assert refused({**conf(secure, "MTLS", pki), "ssl.certificate.location": str(d / "mallory.pem"),
                    "ssl.key.location": str(d / "mallory.key")}) is not None


def test_sasl_plain_with_every_client(secure, pki, caplog):
    for listener in ("SASL_PLAINTEXT", "SASL_SSL"):
        c = conf(secure, listener, pki, "PLAIN", "alice", "alice-secret")
        assert len(roundtrip(c, f"plain-{listener.lower()}")) == 10
        assert "Invalid username or password" in refused(conf(secure, listener, pki, "PLAIN", "alice", "nope"))
        assert "Invalid username or password" in refused(conf(secure, listener, pki, "PLAIN", "eve", "x"))
    port = secure.ports["SASL_PLAINTEXT"]
    kp = dict(bootstrap_servers=f"127.0.0.1:{port}", security_protocol="SASL_PLAINTEXT",
              sasl_mechanism="PLAIN", sasl_plain_username="alice", sasl_plain_password="alice-secret")
    prod = KafkaProducer(**kp)
    for i in range(5):
        prod.send("plain-kp", f"kp-{i}".encode()).get(timeout=20)
    prod.close()
    cons = KafkaConsumer("plain-kp", auto_offset_reset="earliest", consumer_timeout_ms=20000, **kp)
    got = []
    for m in cons:
        got.append(m.value.decode())
        if len(got) == 5:
            break
    assert got == [f"kp-{i}" for i in range(5)]
    cons.close()
    # kafka-python keeps retrying a refused login until its bootstrap timeout; the
    # broker's answer is in its log.
    with caplog.at_level(logging.ERROR, logger="kafka"):
        with pytest.raises(KafkaPythonError):
            KafkaProducer(**{**kp, "sasl_plain_password": "wrong"}, bootstrap_timeout_ms=2000)
    assert "SaslAuthenticationFailedError" in caplog.text
    kc = ["kcat", "-b", f"127.0.0.1:{port}", "-X", "security.protocol=SASL_PLAINTEXT",
          "-X", "sasl.mechanism=PLAIN", "-X", "sasl.username=alice", "-X", "sasl.password=alice-secret"]
    out = subprocess.run(kc + ["-C", "-t", "plain-kp", "-e"], capture_output=True, timeout=60)
    assert out.returncode == 0 and out.stdout.decode().split() == [f"kp-{i}" for i in range(5)]
    assert node(secure.ports["SASL_SSL"], "plain-kjs", {"ssl": {"ca": pki["ca"]},
                "sasl": {"mechanism": "plain", "username": "alice", "password": "alice-secret"}}) == \
        {"got": 20, "unique": 20}
    assert node(port, "plain-kjs2", {"sasl": {"mechanism": "plain", "username": "alice",
                                              "password": "bad"}}) == {"error": "KafkaJSSASLAuthenticationError"}


def node(port, topic, options):
    exe = shutil.which("node")
    if exe is None or not (NODE_DIR / "node_modules" / "kafkajs").exists():
        pytest.fail("node and kafkajs are installed by the test command (./test.sh)")
    out = subprocess.run([exe, str(NODE_DIR / "secure.js"), f"127.0.0.1:{port}", topic, json.dumps(options)],
                         capture_output=True, timeout=120)
    assert out.returncode in (0, 2), out.stderr.decode()
    return json.loads(out.stdout.decode().strip().splitlines()[-1])


def test_scram_credentials_are_managed_by_the_admin_api_and_authenticate(broker_factory, pki):
    b = broker_factory(secure_overrides(pki))
    admin = AdminClient({"bootstrap.servers": f"127.0.0.1:{b.ports['PLAINTEXT']}"})
    ups = [UserScramCredentialUpsertion("bob", ScramCredentialInfo(ScramMechanism.SCRAM_SHA_256, 4096), b"bob-pw"),
           UserScramCredentialUpsertion("bob", ScramCredentialInfo(ScramMechanism.SCRAM_SHA_512, 8192), b"bob-pw"),
           UserScramCredentialUpsertion("carol", ScramCredentialInfo(ScramMechanism.SCRAM_SHA_512, 4096), b"c-pw")]
    for f in admin.alter_user_scram_credentials(ups).values():
        assert f.result() is None
    described = admin.describe_user_scram_credentials(["bob"])["bob"].result()
    assert sorted((i.mechanism, i.iterations) for i in described.scram_credential_infos) == \
        [(ScramMechanism.SCRAM_SHA_256, 4096), (ScramMechanism.SCRAM_SHA_512, 8192)]
    everyone = admin.describe_user_scram_credentials().result()
    assert sorted(everyone) == ["bob", "carol"]
    with pytest.raises(KafkaException, match="RESOURCE_NOT_FOUND"):
        admin.describe_user_scram_credentials(["nobody"])["nobody"].result()
    few = UserScramCredentialUpsertion("dan", ScramCredentialInfo(ScramMechanism.SCRAM_SHA_256, 1000), b"x")
    with pytest.raises(KafkaException, match="UNACCEPTABLE_CREDENTIAL"):
        admin.alter_user_scram_credentials([few])["dan"].result()
    with pytest.raises(KafkaException, match="RESOURCE_NOT_FOUND"):
        admin.alter_user_scram_credentials(
            [UserScramCredentialDeletion("dan", ScramMechanism.SCRAM_SHA_256)])["dan"].result()

    for mech in ("SCRAM-SHA-256", "SCRAM-SHA-512"):
        for listener in ("SASL_PLAINTEXT", "SASL_SSL"):
            c = conf(b, listener, pki, mech, "bob", "bob-pw")
            assert len(roundtrip(c, f"scram-{mech[-3:]}-{listener.lower()}", 5)) == 5
        assert "invalid credentials" in refused(conf(b, "SASL_PLAINTEXT", pki, mech, "bob", "wrong"))
    # An unknown user gets the same answer as a wrong password.
    assert "invalid credentials" in refused(conf(b, "SASL_PLAINTEXT", pki, "SCRAM-SHA-256", "carol", "c-pw"))

    port = b.ports["SASL_PLAINTEXT"]
    prod = KafkaProducer(bootstrap_servers=f"127.0.0.1:{port}", security_protocol="SASL_PLAINTEXT",
                         sasl_mechanism="SCRAM-SHA-256", sasl_plain_username="bob", sasl_plain_password="bob-pw")
    prod.send("scram-kp", b"from-kafka-python").get(timeout=20)
    prod.close()
    # kcat's librdkafka (2.0) has the doubled-nonce bug fixed in 2.6.1; it gets in too.
    out = subprocess.run(["kcat", "-C", "-b", f"127.0.0.1:{port}", "-t", "scram-kp", "-e",
                          "-X", "security.protocol=SASL_PLAINTEXT", "-X", "sasl.mechanism=SCRAM-SHA-512",
                          "-X", "sasl.username=bob", "-X", "sasl.password=bob-pw"], capture_output=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.decode().split() == ["from-kafka-python"]
    assert node(b.ports["SASL_SSL"], "scram-kjs", {"ssl": {"ca": pki["ca"]},
                "sasl": {"mechanism": "scram-sha-512", "username": "carol", "password": "c-pw"}}) == \
        {"got": 20, "unique": 20}

    # Deleting one mechanism's credential ends logins with it, not with the other.
    delete = [UserScramCredentialDeletion("bob", ScramMechanism.SCRAM_SHA_256)]
    assert admin.alter_user_scram_credentials(delete)["bob"].result() is None
    assert refused(conf(b, "SASL_PLAINTEXT", pki, "SCRAM-SHA-256", "bob", "bob-pw")) is not None
    assert refused(conf(b, "SASL_PLAINTEXT", pki, "SCRAM-SHA-512", "bob", "bob-pw")) is None
    # Credentials are metadata: they survive a restart.
    b.restart()
    assert refused(conf(b, "SASL_SSL", pki, "SCRAM-SHA-512", "bob", "bob-pw")) is None
    assert refused(conf(b, "SASL_SSL", pki, "SCRAM-SHA-256", "bob", "bob-pw")) is not None


# --- raw wire: what a client that does not follow the protocol gets -----------------

def request(key, version, body, correlation=1, client_id=b"raw"):
    header = struct.pack(">hhih", key, version, correlation, len(client_id)) + client_id
    if (key, version) in ((36, 2), (18, 3)):
        header += b"\x00"  # flexible header: no tagged fields
    payload = header + body
    return struct.pack(">i", len(payload)) + payload


def read_frame(sock):
    head = recv_exact(sock, 4)
    if head is None:
        return None
    return recv_exact(sock, struct.unpack(">i", head)[0])


def recv_exact(sock, n):
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            return None
        data += chunk
    return data


def closed(sock, timeout=10):
    """Whether the broker ends the connection (after at most a little data, such as a
    TLS alert) within the timeout."""
    sock.settimeout(timeout)
    received = 0
    try:
        while received < 4096:
            chunk = sock.recv(4096)
            if not chunk:
                return True
            received += len(chunk)
        return False
    except ConnectionResetError:
        return True
    except socket.timeout:
        return False


def kstring(s):
    return struct.pack(">h", len(s)) + s


def metadata_v1():
    return request(3, 1, struct.pack(">i", 0))


def plain_v1_login(sock, user, password):
    """SaslHandshake v1 + SaslAuthenticate v1 with PLAIN; returns (error, lifetime_ms)."""
    sock.sendall(request(17, 1, kstring(b"PLAIN")))
    resp = read_frame(sock)
    assert struct.unpack(">h", resp[4:6])[0] == 0
    token = b"\0" + user + b"\0" + password
    sock.sendall(request(36, 1, struct.pack(">i", len(token)) + token, correlation=2))
    resp = read_frame(sock)[4:]
    error = struct.unpack(">h", resp[:2])[0]
    msg_len = struct.unpack(">h", resp[2:4])[0]
    rest = resp[4 + max(msg_len, 0):]
    token_len = struct.unpack(">i", rest[:4])[0]
    lifetime = struct.unpack(">q", rest[4 + token_len:12 + token_len])[0]
    return error, lifetime


def test_unauthenticated_and_hostile_connections_are_closed_and_others_unaffected(secure, pki):
    sasl_port = secure.ports["SASL_PLAINTEXT"]
    # A request other than the SASL ones before authenticating closes the connection.
    s = socket.create_connection(("127.0.0.1", sasl_port))
    s.sendall(metadata_v1())
    assert closed(s)
    # A huge frame before authenticating: refused at the length prefix (512 KiB bound).
    s = socket.create_connection(("127.0.0.1", sasl_port))
    s.sendall(struct.pack(">i", 50 << 20) + b"\0" * 1024)
    assert closed(s)
    # Plaintext Kafka to a TLS port, TLS to a plaintext port.
    s = socket.create_connection(("127.0.0.1", secure.ports["SSL"]))
    s.sendall(metadata_v1())
    assert closed(s)
    ctx = ssl.create_default_context(cafile=pki["ca"])
    with pytest.raises((ssl.SSLError, ConnectionResetError, OSError)):
        with socket.create_connection(("127.0.0.1", secure.ports["PLAINTEXT"])) as raw:
            raw.settimeout(10)
            ctx.wrap_socket(raw, server_hostname="localhost")
    # A TLS handshake that stops halfway (nothing sent) and a SASL exchange that stops
    # after the handshake hold nothing others need.
    stalled_tls = socket.create_connection(("127.0.0.1", secure.ports["SSL"]))
    stalled_sasl = socket.create_connection(("127.0.0.1", sasl_port))
    stalled_sasl.sendall(request(17, 1, kstring(b"SCRAM-SHA-256")))
    assert read_frame(stalled_sasl) is not None
    # A wrong password: SASL_AUTHENTICATION_FAILED (58), then the connection ends.
    s = socket.create_connection(("127.0.0.1", sasl_port))
    assert plain_v1_login(s, b"alice", b"wrong")[0] == 58
    s.sendall(metadata_v1())
    assert closed(s)
    # An unknown mechanism: UNSUPPORTED_SASL_MECHANISM (33) with the enabled list.
    s = socket.create_connection(("127.0.0.1", sasl_port))
    s.sendall(request(17, 1, kstring(b"GSSAPI")))
    resp = read_frame(s)
    assert struct.unpack(">h", resp[4:6])[0] == 33 and b"SCRAM-SHA-256" in resp and b"PLAIN" in resp
    # SASL on a listener without it: ILLEGAL_SASL_STATE (34).
    s = socket.create_connection(("127.0.0.1", secure.ports["PLAINTEXT"]))
    s.sendall(request(17, 1, kstring(b"PLAIN")))
    assert struct.unpack(">h", read_frame(s)[4:6])[0] == 34
    for listener in ("SSL", "SASL_PLAINTEXT"):
        mech = ("PLAIN", "alice", "alice-secret") if listener.startswith("SASL") else (None, None, None)
        assert refused(conf(secure, listener, pki, *mech)) is None
    stalled_tls.close()
    stalled_sasl.close()


def test_sasl_handshake_v0_with_bare_tokens(secure):
    """Older clients (kafka-python 2.0, Sarama) send the PLAIN token without a header."""
    s = socket.create_connection(("127.0.0.1", secure.ports["SASL_PLAINTEXT"]))
    s.sendall(request(17, 0, kstring(b"PLAIN")))
    assert struct.unpack(">h", read_frame(s)[4:6])[0] == 0
    token = b"\0alice\0alice-secret"
    s.sendall(struct.pack(">i", len(token)) + token)
    assert read_frame(s) == b""  # an empty token back: authenticated
    s.sendall(metadata_v1())
    resp = read_frame(s)
    assert resp is not None and struct.unpack(">i", resp[:4])[0] == 1


def test_a_session_expires_without_reauthentication(broker_factory, pki):
    b = broker_factory(secure_overrides(pki, **{"connections.max.reauth.ms": "1500"}))
    port = b.ports["SASL_PLAINTEXT"]
    s = socket.create_connection(("127.0.0.1", port))
    started = time.monotonic()
    assert plain_v1_login(s, b"alice", b"alice-secret") == (0, 1500)

    def still_served():
        s.sendall(metadata_v1())
        s.settimeout(10)
        return read_frame(s) is not None

    # Requests flow until the session lifetime, then the connection is closed.
    wait_until(lambda: not still_served(), 10, "the expired session to be closed")
    assert time.monotonic() - started >= 1.4
    # A client that re-authenticates (librdkafka, KIP-368) keeps going past the lifetime.
    c = conf(b, "SASL_PLAINTEXT", pki, "PLAIN", "alice", "alice-secret")
    p = Producer(c)
    errors = []
    deadline = time.monotonic() + 4
    sent = 0
    while time.monotonic() < deadline:
        p.produce("reauth-t", b"x", on_delivery=lambda err, msg: err and errors.append(err))
        sent += 1
        p.poll(0.1)
    assert p.flush(20) == 0
    assert errors == []
    got = Consumer({**c, "group.id": "reauth-g"}).get_watermark_offsets(TopicPartition("reauth-t", 0), timeout=10)
    assert got[1] == sent


def test_certificates_are_reloaded_without_a_restart(broker_factory, pki, tmp_path):
    keystore = tmp_path / "rotating.pem"
    shutil.copy(pki["keystore"], keystore)
    b = broker_factory(secure_overrides(pki, **{"ssl.keystore.location": str(keystore)}))
    port = b.ports["SSL"]

    def served_serial():
        ctx = ssl.create_default_context(cafile=pki["ca"])
        with socket.create_connection(("127.0.0.1", port)) as raw:
            with ctx.wrap_socket(raw, server_hostname="localhost") as tls:
                return tls.getpeercert()["serialNumber"]

    first = served_serial()
    renewed = pki["authority"].issue_cert("localhost", "127.0.0.1")
    staging = tmp_path / "staging.pem"
    renewed.private_key_and_cert_chain_pem.write_to_path(str(staging))
    staging.replace(keystore)  # atomic, as cert-manager and certbot rotate files
    wait_until(lambda: served_serial() != first, 10, "the renewed certificate to be served")


# --- ACLs enforced, with real clients --------------------------------------------------

def test_acls_decide_what_each_principal_may_do(broker_factory, pki):
    from confluent_kafka.admin import (AclBinding, AclOperation, AclPermissionType, NewTopic,
                                       ResourcePatternType, ResourceType)
    jaas = JAAS.replace(";", ' user_eve="eve-secret";')
    b = broker_factory(secure_overrides(pki, **{
        "allow.everyone.if.no.acl.found": "false", "super.users": "User:admin",
        "listener.name.sasl_plaintext.plain.sasl.jaas.config": jaas}))
    as_user = lambda user, pw: conf(b, "SASL_PLAINTEXT", pki, "PLAIN", user, pw)
    admin = AdminClient(as_user("admin", "admin-secret"))
    for f in admin.create_topics([NewTopic("orders", 1, 1), NewTopic("secret", 1, 1)]).values():
        f.result(20)

    def allow(op, rtype, name, principal="User:alice", permission=AclPermissionType.ALLOW):
        return AclBinding(rtype, name, ResourcePatternType.LITERAL, principal, "*", op, permission)

    grants = [allow(AclOperation.WRITE, ResourceType.TOPIC, "orders"),
              allow(AclOperation.READ, ResourceType.TOPIC, "orders"),
              allow(AclOperation.READ, ResourceType.GROUP, "billing")]
    for f in admin.create_acls(grants).values():
        assert f.result(20) is None

    alice = as_user("alice", "alice-secret")
    eve = as_user("eve", "eve-secret")
    # Metadata shows each principal only the topics it may describe.
    assert set(Producer(alice).list_topics(timeout=10).topics) == {"orders"}
    assert set(Producer(eve).list_topics(timeout=10).topics) == set()
    assert len(roundtrip_group(alice, "orders", "billing")) == 5

    def produce_error(config, topic):
        errors = []
        p = Producer({**config, "message.timeout.ms": 5000})
        p.produce(topic, b"x", on_delivery=lambda err, msg: errors.append(err))
        p.flush(15)
        return errors[0].name() if errors and errors[0] else None

    assert produce_error(alice, "secret") == "TOPIC_AUTHORIZATION_FAILED"
    assert produce_error(eve, "orders") == "TOPIC_AUTHORIZATION_FAILED"
    # eve may not read with alice's group; alice may not read with another group.
    assert consume_error(eve, "orders", "billing") in ("TOPIC_AUTHORIZATION_FAILED", "GROUP_AUTHORIZATION_FAILED")
    assert consume_error(alice, "orders", "other") == "GROUP_AUTHORIZATION_FAILED"
    # Admin operations need cluster or topic rights.
    eve_admin, alice_admin = AdminClient(eve), AdminClient(alice)
    with pytest.raises(KafkaException, match="TOPIC_AUTHORIZATION_FAILED"):
        eve_admin.create_topics([NewTopic("eves", 1, 1)])["eves"].result(20)
    with pytest.raises(KafkaException, match="CLUSTER_AUTHORIZATION_FAILED"):
        list(alice_admin.create_acls([allow(AclOperation.ALL, ResourceType.TOPIC, "*")]).values())[0].result(20)
    # kafka-python: alice reads, eve is refused.
    kp = dict(bootstrap_servers=f"127.0.0.1:{b.ports['SASL_PLAINTEXT']}", security_protocol="SASL_PLAINTEXT",
              sasl_mechanism="PLAIN", sasl_plain_username="alice", sasl_plain_password="alice-secret")
    # billing's offsets are at the end already: the record kafka-python writes is next.
    mine = KafkaProducer(**kp)
    mine.send("orders", b"kp-alice").get(timeout=20)
    mine.close()
    cons = KafkaConsumer("orders", group_id="billing", auto_offset_reset="earliest", consumer_timeout_ms=20000, **kp)
    first = next(iter(cons))
    assert first.value == b"kp-alice"
    cons.close()
    prod = KafkaProducer(**{**kp, "sasl_plain_username": "eve", "sasl_plain_password": "eve-secret"}, retries=0)
    with pytest.raises(KafkaPythonError, match="TopicAuthorizationFailed"):
        prod.send("orders", b"x").get(timeout=20)
    prod.close()
    # A DENY beats the ALLOW.
    deny = allow(AclOperation.READ, ResourceType.TOPIC, "orders", permission=AclPermissionType.DENY)
    assert list(admin.create_acls([deny]).values())[0].result(20) is None
    assert consume_error(alice, "orders", "billing") == "TOPIC_AUTHORIZATION_FAILED"


def roundtrip_group(config, topic, group, n=5):
    p = Producer(config)
    for i in range(n):
        p.produce(topic, f"{topic}-{i}".encode())
    assert p.flush(20) == 0
    c = Consumer({**config, "group.id": group, "auto.offset.reset": "earliest"})
    c.subscribe([topic])
    got = []
    deadline = time.monotonic() + 30
    while len(got) < n and time.monotonic() < deadline:
        m = c.poll(0.5)
        if m is not None and not m.error():
            got.append(m.value().decode())
    c.close()
    return got


def consume_error(config, topic, group):
    """The first error a group consumer gets (its name), or None after 15 s of nothing."""
    c = Consumer({**config, "group.id": group, "auto.offset.reset": "earliest"})
    c.subscribe([topic])
    deadline = time.monotonic() + 15
    try:
        while time.monotonic() < deadline:
            m = c.poll(0.5)
            if m is not None and m.error():
                return m.error().name()
    finally:
        c.close()
    return None


# --- OAUTHBEARER: JWTs checked against a JWKS file ------------------------------------

def test_oauthbearer_tokens_are_validated_against_the_jwks(broker_factory, pki, tmp_path):
    import jwt
    from cryptography.hazmat.primitives.asymmetric import rsa
    from jwt.algorithms import RSAAlgorithm

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwk = json.loads(RSAAlgorithm.to_jwk(key.public_key()))
    jwk.update({"kid": "k1", "alg": "RS256", "use": "sig"})
    (tmp_path / "jwks.json").write_text(json.dumps({"keys": [jwk]}))
    b = broker_factory(secure_overrides(pki, **{
        "listener.name.sasl_ssl.sasl.enabled.mechanisms": "OAUTHBEARER,SCRAM-SHA-512",
        "sasl.oauthbearer.jwks.endpoint.url": f"file://{tmp_path / 'jwks.json'}",
        "sasl.oauthbearer.expected.audience": "gregor",
        "sasl.oauthbearer.expected.issuer": "https://idp.test"}))

    def token(sub="svc-orders", signer=key, kid="k1", aud="gregor", iss="https://idp.test", ttl=300):
        now = int(time.time())
        claims = {"sub": sub, "aud": aud, "iss": iss, "iat": now, "exp": now + ttl}
        # librdkafka is told a future expiry even for the expired token: it refuses to
        # send a token it knows has expired, and the broker's check is what is tested.
        return jwt.encode(claims, signer, algorithm="RS256", headers={"kid": kid}), now + 300

    def oauth_conf(tok):
        return {**conf(b, "SASL_SSL", pki), "sasl.mechanism": "OAUTHBEARER",
                "oauth_cb": lambda _cfg: (tok[0], float(tok[1]))}

    good = token()
    assert len(roundtrip(oauth_conf(good), "oauth-t", 3)) == 3
    for bad in (token(signer=other), token(aud="someone-else"), token(iss="https://evil"),
                token(ttl=-120), token(kid="unknown")):
        assert "invalid_token" in refused(oauth_conf(bad)), bad
    # kafka-python with a token provider.
    from kafka.net.sasl.oauth import AbstractTokenProvider

    class Provider(AbstractTokenProvider):
        def token(self):
            return good[0]

    prod = KafkaProducer(bootstrap_servers=f"127.0.0.1:{b.ports['SASL_SSL']}", security_protocol="SASL_SSL",
                         ssl_cafile=pki["ca"], sasl_mechanism="OAUTHBEARER", sasl_oauth_token_provider=Provider())
    prod.send("oauth-t", b"from-kafka-python").get(timeout=20)
    prod.close()


def test_cli_admin_commands_speak_tls_and_sasl(secure, pki):
    """`gregor user|quota|acl` reach a SASL_SSL, SASL_PLAINTEXT or mTLS listener with the
    same -X properties librdkafka takes; a wrong password is a clear failure."""
    from conftest import BIN

    def gregor(listener, *args, extra=()):
        props = {
            "SASL_SSL": ["security.protocol=SASL_SSL", f"ssl.ca.location={pki['ca']}",
                         "sasl.mechanism=PLAIN", "sasl.username=admin", "sasl.password=admin-secret"],
            "SASL_PLAINTEXT": ["security.protocol=sasl_plaintext", "sasl.mechanisms=PLAIN",
                               "sasl.username=alice", "sasl.password=alice-secret"],
            "MTLS": ["security.protocol=ssl", f"ssl.ca.location={pki['ca']}",
                     f"ssl.certificate.location={pki['client_cert']}",
                     f"ssl.key.location={pki['client_key']}"],
        }[listener]
        cmd = [BIN, *args, "-b", f"127.0.0.1:{secure.ports[listener]}", "--output", "json"]
        for p in [*props, *extra]:
            cmd += ["-X", p]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=30)

    r = gregor("SASL_SSL", "user", "scram", "set", "bob", "--password", "bob-secret",
               "--mechanism", "SCRAM-SHA-256")
    assert r.returncode == 0, r.stderr
    # bob's new credential logs the CLI in with SCRAM over SASL_SSL.
    r = gregor("SASL_SSL", "user", "scram", "list",
               extra=["sasl.mechanism=SCRAM-SHA-256", "sasl.username=bob", "sasl.password=bob-secret"])
    assert r.returncode == 0, r.stderr
    assert [u["user"] for u in json.loads(r.stdout)] == ["bob"]
    r = gregor("SASL_PLAINTEXT", "quota", "set", "--client-id", "etl", "producer_byte_rate=4096")
    assert r.returncode == 0, r.stderr
    r = gregor("MTLS", "quota", "describe")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == [{"entity": "client-id=etl", "key": "producer_byte_rate", "value": 4096.0}]
    r = gregor("MTLS", "acl", "list")
    assert r.returncode == 0, r.stderr
    # The Rust rdkafka crate (gregor produce/consume; its librdkafka is built without
    # OpenSSL, so SASL/PLAIN without TLS) with the same flags.
    cmd = [BIN, "produce", "cli-secure", "-K", ":", "-b", f"127.0.0.1:{secure.ports['SASL_PLAINTEXT']}",
           "-X", "security.protocol=SASL_PLAINTEXT", "-X", "sasl.mechanism=PLAIN",
           "-X", "sasl.username=alice", "-X", "sasl.password=alice-secret"]
    r = subprocess.run(cmd, input="k1:one\nk2:two\n", capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    r = gregor("SASL_PLAINTEXT", "consume", "cli-secure", "--from", "beginning", "--count", "2")
    assert r.returncode == 0, r.stderr
    got = [json.loads(line) for line in r.stdout.splitlines() if line.strip()]
    assert [(m["key"], m["value"]) for m in got] == [("k1", "one"), ("k2", "two")], r.stdout
    # A wrong password and a missing CA are refused with a clear message.
    r = gregor("SASL_SSL", "acl", "list", extra=["sasl.password=wrong"])
    assert r.returncode != 0 and "authentication failed" in r.stderr.lower(), r.stderr
    r = gregor("SASL_PLAINTEXT", "acl", "list", extra=["security.protocol=ssl"])
    assert r.returncode != 0 and "ssl.ca.location" in r.stderr, r.stderr


def test_an_encrypted_private_key_is_opened_with_ssl_key_password(broker_factory, pki, tmp_path):
    from cryptography.hazmat.primitives import serialization

    from conftest import Broker

    server = pki["authority"].issue_cert("localhost", "127.0.0.1")
    key = serialization.load_pem_private_key(server.private_key_pem.bytes(), None)
    encrypted = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                  serialization.BestAvailableEncryption(b"store-pass"))
    store = tmp_path / "encrypted.pem"
    store.write_bytes(encrypted + b"".join(c.bytes() for c in server.cert_chain_pems))
    assert b"ENCRYPTED PRIVATE KEY" in store.read_bytes()
    overrides = {"listeners": "SSL://127.0.0.1:0", "listener.security.protocol.map": "SSL:SSL",
                 "ssl.keystore.location": str(store), "ssl.key.password": "store-pass"}
    b = broker_factory(overrides)
    config = {"bootstrap.servers": f"127.0.0.1:{b.ports['SSL']}", "security.protocol": "SSL",
              "ssl.ca.location": pki["ca"]}
    assert roundtrip(config, "enc-key", 3) == ["enc-key-0", "enc-key-1", "enc-key-2"]
    # A wrong password stops the broker at startup with a clear message.
    wrong = Broker(tmp_path / "wrong", tmp_path / "wrong.log", {**overrides, "ssl.key.password": "nope"})
    with pytest.raises(RuntimeError):
        wrong.start(timeout=20)
    assert b"ssl.key.password" in (tmp_path / "wrong.log").read_bytes()
