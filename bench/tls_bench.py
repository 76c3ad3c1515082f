"""TLS vs plaintext, in one run on one broker: the same confluent-kafka (librdkafka)
producer and consumer over the PLAINTEXT listener and over the SSL listener (TLS 1.3,
rustls on the broker), and over SASL_SSL with SCRAM-SHA-512 (authentication once per
connection, then the same TLS). Reported per listener: produce MB/s and records/s
(acks=all, 1 KiB records, lz4 off), and consume MB/s of the same records.

    GREGOR_BIN=target/release/gregor .venv/bin/python bench/tls_bench.py [RECORDS]

Certificates come from trustme (throwaway CA)."""
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "python"))
import trustme  # noqa: E402
from confluent_kafka import Consumer, Producer, TopicPartition  # noqa: E402
from confluent_kafka.admin import (AdminClient, ScramCredentialInfo, ScramMechanism,  # noqa: E402
                                   UserScramCredentialUpsertion)
from conftest import Broker  # noqa: E402

RECORDS = int(sys.argv[1]) if len(sys.argv) > 1 else 300_000
SIZE = 1024


def produce(config, topic):
    p = Producer({**config, "acks": "all", "linger.ms": 5, "batch.size": 1_000_000,
                  "queue.buffering.max.messages": 1_000_000})
    value = b"x" * SIZE
    start = time.monotonic()
    for i in range(RECORDS):
        while True:
            try:
                p.produce(topic, value)
                break
            except BufferError:
                p.poll(0.01)
    assert p.flush(120) == 0
    return time.monotonic() - start


def consume(config, topic):
    c = Consumer({**config, "group.id": f"bench-{topic}", "enable.auto.commit": False,
                  "fetch.max.bytes": 52_428_800, "max.partition.fetch.bytes": 10_485_760})
    c.assign([TopicPartition(topic, 0, 0)])
    got = 0
    start = time.monotonic()
    while got < RECORDS:
        for m in c.consume(10_000, 1.0):
            if not m.error():
                got += 1
    elapsed = time.monotonic() - start
    c.close()
    return elapsed


def main():
    d = Path(tempfile.mkdtemp())
    ca = trustme.CA()
    ca.issue_cert("localhost", "127.0.0.1").private_key_and_cert_chain_pem.write_to_path(str(d / "broker.pem"))
    ca.cert_pem.write_to_path(str(d / "ca.pem"))
    b = Broker(d / "data", d / "broker.log", {
        "listeners": "PLAINTEXT://127.0.0.1:0,SSL://127.0.0.1:0,SASL_SSL://127.0.0.1:0",
        "ssl.keystore.location": str(d / "broker.pem"),
    }).start()
    try:
        admin = AdminClient({"bootstrap.servers": f"127.0.0.1:{b.ports['PLAINTEXT']}"})
        admin.alter_user_scram_credentials(
            [UserScramCredentialUpsertion("bench", ScramCredentialInfo(ScramMechanism.SCRAM_SHA_512, 4096),
                                          b"bench-pw")])["bench"].result(20)
        tls = {"ssl.ca.location": str(d / "ca.pem")}
        runs = [
            ("PLAINTEXT", {"bootstrap.servers": f"127.0.0.1:{b.ports['PLAINTEXT']}"}),
            ("SSL", {"bootstrap.servers": f"127.0.0.1:{b.ports['SSL']}", "security.protocol": "SSL", **tls}),
            ("SASL_SSL", {"bootstrap.servers": f"127.0.0.1:{b.ports['SASL_SSL']}", "security.protocol": "SASL_SSL",
                          "sasl.mechanism": "SCRAM-SHA-512", "sasl.username": "bench", "sasl.password": "bench-pw",
                          **tls}),
        ]
        mb = RECORDS * SIZE / 1e6
        print(f"{RECORDS} records of {SIZE} B ({mb:.0f} MB) per listener")
        print(f"{'listener':<10} {'produce MB/s':>12} {'records/s':>10} {'consume MB/s':>12}")
        for name, config in runs:
            topic = f"bench-{name.lower()}"
            p = produce(config, topic)
            c = consume(config, topic)
            print(f"{name:<10} {mb / p:>12.1f} {RECORDS / p:>10.0f} {mb / c:>12.1f}")
    finally:
        b.stop()
        shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    main()
