"""KIP-951 leader discovery with a real client: when a partition's leadership moves, the
old leader's NOT_LEADER_OR_FOLLOWER answer to a Produce (v10+) or a Fetch (v12+) names the
new leader, its epoch and its endpoint, and librdkafka moves to it from that answer
(its METADATAUPDATE debug line) rather than only after a Metadata round trip."""
import logging
import re

from confluent_kafka import Consumer, Producer, TopicPartition, ElectionType

from conftest import wait_until
from test_cluster import FAST, cluster_factory  # noqa: F401 (a pytest fixture)
from test_cluster_ops import TOPIC, elect, layout, move_leadership_away, setup


class Lines(logging.Handler):
    """Keeps every librdkafka log line a client hands to its Python logger."""

    def __init__(self, name):
        super().__init__(logging.DEBUG)
        self.lines = []
        self.log = logging.getLogger(name)
        self.log.setLevel(logging.DEBUG)
        self.log.propagate = False
        self.log.addHandler(self)

    def emit(self, record):
        self.lines.append(record.getMessage())

    def hint_applied(self, since, leader):
        """The lines after `since` in which a Produce/Fetch answer's leader hint updated
        partition 0's leader to `leader` (librdkafka's rd_kafka_metadata_update_op)."""
        pat = re.compile(rf"METADATAUPDATE.*{TOPIC}\(.*\)\[0\]: updated with leader {leader} and epoch (\d+)")
        return [m for m in (pat.search(line) for line in self.lines[since:]) if m]


def test_clients_follow_the_leader_named_in_produce_and_fetch_answers(cluster_factory):
    c = cluster_factory(controllers=3, overrides={**FAST, "auto.leader.rebalance.enable": "false"})
    admin, _ = setup(c, partitions=1)
    preferred = move_leadership_away(c, admin, 0)
    old_leader = layout(admin, TOPIC)[0][0]
    tp = TopicPartition(TOPIC, 0)

    plog, clog = Lines("hints-producer"), Lines("hints-consumer")
    producer = Producer({"bootstrap.servers": c.bootstrap, "acks": "all", "enable.idempotence": True,
                         "linger.ms": 0, "debug": "metadata"}, logger=plog.log)
    consumer = Consumer({"bootstrap.servers": c.bootstrap, "group.id": "hints", "enable.auto.commit": False,
                         "fetch.wait.max.ms": 500, "debug": "metadata"}, logger=clog.log)
    delivered = []

    def send(value):
        producer.produce(TOPIC, value=value, partition=0,
                         on_delivery=lambda err, msg: delivered.append((err, msg.value(), msg.offset())))
        assert producer.flush(30) == 0
        err, got, offset = delivered[-1]
        assert err is None and got == value, (err, got)
        return offset

    # Both clients work against the old leader first.
    first = send(b"before")
    consumer.assign([TopicPartition(TOPIC, 0, first)])
    read = []

    def read_until(value):
        m = consumer.poll(0.2)
        if m is not None and m.error() is None:
            read.append(m.value())
        return value in read

    wait_until(lambda: read_until(b"before"), timeout=30, what="the consumer reading from the old leader")
    p_mark, c_mark = len(plog.lines), len(clog.lines)

    # The preferred replica takes leadership back; neither client has asked for metadata.
    assert list(elect(admin, ElectionType.PREFERRED, [tp]).values()) == [None]
    wait_until(lambda: (layout(admin, TOPIC) or {}).get(0, (None,))[0] == preferred, timeout=30,
               what=f"node {preferred} leading again")

    # The producer's next batch goes to the old leader, whose refusal names the new one;
    # the retry goes there and is acknowledged.
    after = send(b"after")
    assert after == first + 1, (first, after)
    produced_hint = wait_until(lambda: plog.hint_applied(p_mark, preferred), timeout=10,
                               what=f"the producer applying the Produce answer's hint (leader {preferred})")
    # The consumer's fetch at the old leader is refused the same way, and it reads on
    # from the new leader.
    wait_until(lambda: read_until(b"after"), timeout=30, what="the consumer reading from the new leader")
    fetched_hint = wait_until(lambda: clog.hint_applied(c_mark, preferred), timeout=10,
                              what=f"the consumer applying the Fetch answer's hint (leader {preferred})")
    assert read == [b"before", b"after"], read
    # The hints carry the new leader epoch, newer than the one the clients knew.
    assert int(produced_hint[0].group(1)) >= 1 and int(fetched_hint[0].group(1)) >= 1
    assert old_leader != preferred
    consumer.close()
