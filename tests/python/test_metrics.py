"""The Prometheus endpoint (`metrics.listener`) under real client traffic: counters with
Kafka's JMX-exporter names move as confluent-kafka produces and consumes, the state
gauges match the topic, and the output parses with the Prometheus text-format parser."""
import socket
import urllib.error
import urllib.request

from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient, NewTopic
from prometheus_client.parser import text_string_to_metric_families

from cluster import Cluster, free_ports
from conftest import wait_until

PARTITIONS = 3
N = 200
VALUE_SIZE = 100


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(url):
    """(status, body) of a GET; HTTP errors are answers too."""
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def scrape(base):
    """Every sample as {(name, frozenset(labels)): value}, parsed by prometheus_client."""
    status, body = get(f"{base}/metrics")
    assert status == 200, body
    samples = {}
    for family in text_string_to_metric_families(body):
        for s in family.samples:
            samples[(s.name, frozenset(s.labels.items()))] = s.value
    return samples


def value(samples, name, **labels):
    return samples.get((name, frozenset((k, str(v)) for k, v in labels.items())))


def requests(samples, api):
    """Requests of `api` counted, all versions together."""
    return sum(
        v for (name, labels), v in samples.items()
        if name == "kafka_network_requestmetrics_requests_total" and ("request", api) in labels
    )


def produce(bootstrap, topic, n, tag):
    p = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5, "acks": "all"})
    for i in range(n):
        p.produce(topic, key=f"{tag}-{i}".encode(), value=b"v" * VALUE_SIZE, partition=i % PARTITIONS)
    assert p.flush(30) == 0


def consume(bootstrap, topic, n):
    c = Consumer({
        "bootstrap.servers": bootstrap,
        "group.id": "metrics-test",
        "auto.offset.reset": "earliest",
        "enable.auto.commit": False,
    })
    c.subscribe([topic])
    got = []
    try:
        wait_until(
            lambda: got.extend(m for m in c.consume(50, 0.5) if not m.error()) or len(got) >= n,
            timeout=60,
            what=f"{n} records consumed",
        )
    finally:
        c.close()
    return got


def test_metrics_move_with_client_traffic(broker_factory):
    port = free_port()
    broker = broker_factory({"metrics.listener": f"127.0.0.1:{port}"})
    base = f"http://127.0.0.1:{port}"

    assert get(f"{base}/health/live")[0] == 200
    wait_until(lambda: get(f"{base}/health/ready")[0] == 200, what="ready endpoint")
    assert get(f"{base}/nothing-here")[0] == 404

    topic = "metered"
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    admin.create_topics([NewTopic(topic, PARTITIONS, 1)])[topic].result(30)

    before = scrape(base)
    produce_before = requests(before, "Produce")

    produce(broker.bootstrap, topic, N, "a")
    after_produce = wait_until(
        lambda: (s := scrape(base)) and value(s, "kafka_server_brokertopicmetrics_messagesin_total", topic=topic) == N and s,
        what="messagesin to reach N",
    )
    bytes_in = value(after_produce, "kafka_server_brokertopicmetrics_bytesin_total", topic=topic)
    # Batches carry headers, keys and varints on top of the values, but not a great deal
    # more at this batch size.
    assert N * VALUE_SIZE <= bytes_in < 3 * N * VALUE_SIZE, bytes_in
    # The all-topics series (no topic label) counts at least this topic.
    assert value(after_produce, "kafka_server_brokertopicmetrics_messagesin_total") >= N
    assert value(after_produce, "kafka_server_brokertopicmetrics_bytesin_total") >= bytes_in

    produced = requests(after_produce, "Produce")
    assert produced >= 1
    assert produced > produce_before
    assert any(
        name == "kafka_network_requestmetrics_totaltimems_count" and ("request", "Produce") in labels and v >= 1
        for (name, labels), v in after_produce.items()
    )

    # Gauges from broker state: one node, so it hosts and leads every partition.
    assert value(after_produce, "kafka_server_replicamanager_partitioncount") >= PARTITIONS
    assert value(after_produce, "kafka_server_replicamanager_leadercount") >= PARTITIONS
    assert value(after_produce, "kafka_server_replicamanager_underreplicatedpartitions") == 0
    assert value(after_produce, "kafka_controller_kafkacontroller_offlinepartitionscount") == 0
    assert value(after_produce, "kafka_controller_kafkacontroller_activecontrollercount") == 1
    ends = [value(after_produce, "kafka_log_log_logendoffset", topic=topic, partition=p) for p in range(PARTITIONS)]
    assert sum(ends) == N, ends
    assert all(value(after_produce, "kafka_log_log_size", topic=topic, partition=p) > 0 for p in range(PARTITIONS))
    topic_partitions = {
        dict(labels)["partition"]
        for (name, labels), _ in after_produce.items()
        if name == "kafka_log_log_logendoffset" and dict(labels).get("topic") == topic
    }
    assert topic_partitions == {str(p) for p in range(PARTITIONS)}

    # Consumers' fetches count as bytes out: all N records are sent at least once.
    assert len(consume(broker.bootstrap, topic, N)) >= N
    after_consume = wait_until(
        lambda: (s := scrape(base))
        and (value(s, "kafka_server_brokertopicmetrics_bytesout_total", topic=topic) or 0) >= bytes_in
        and s,
        what="bytesout to cover what was produced",
    )
    assert value(after_consume, "kafka_server_brokertopicmetrics_bytesout_total") >= bytes_in

    # A second round moves the counters by the same order again.
    produce(broker.bootstrap, topic, N, "b")
    again = wait_until(
        lambda: (s := scrape(base)) and value(s, "kafka_server_brokertopicmetrics_messagesin_total", topic=topic) == 2 * N and s,
        what="messagesin to reach 2N",
    )
    grown = value(again, "kafka_server_brokertopicmetrics_bytesin_total", topic=topic) - bytes_in
    assert N * VALUE_SIZE <= grown < 3 * N * VALUE_SIZE, grown
    ends = [value(again, "kafka_log_log_logendoffset", topic=topic, partition=p) for p in range(PARTITIONS)]
    assert sum(ends) == 2 * N, ends



def group_series(samples, name, group, topic):
    """{partition: value} of a consumer-group series for `group` and `topic`."""
    out = {}
    for (n, labels), v in samples.items():
        d = dict(labels)
        if n == name and d.get("consumergroup") == group and d.get("topic") == topic:
            out[int(d["partition"])] = v
    return out


def test_consumer_group_lag_is_end_offset_minus_committed(broker_factory):
    port = free_port()
    broker = broker_factory({"metrics.listener": f"127.0.0.1:{port}"})
    base = f"http://127.0.0.1:{port}"
    topic, group = "lagged", "lag-test"
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    admin.create_topics([NewTopic(topic, PARTITIONS, 1)])[topic].result(30)

    produce(broker.bootstrap, topic, N, "a")
    c = Consumer({
        "bootstrap.servers": broker.bootstrap,
        "group.id": group,
        "auto.offset.reset": "earliest",
        "enable.auto.commit": False,
    })
    c.subscribe([topic])
    got = []
    try:
        wait_until(
            lambda: got.extend(m for m in c.consume(50, 0.5) if not m.error()) or len(got) >= N,
            timeout=60,
            what=f"{N} records consumed",
        )
        c.commit(asynchronous=False)
        # The idle consumer's fetches wait in the Fetch purgatory for data; its group is
        # Stable on the coordinator.
        wait_until(
            lambda: (s := scrape(base))
            and (value(s, "kafka_server_delayedoperationpurgatory_purgatorysize", delayedOperation="Fetch") or 0) >= 1
            and value(s, "kafka_coordinator_group_groupmetadatamanager_numgroupsstable") == 1
            and value(s, "kafka_coordinator_group_groupmetadatamanager_numgroups") == 1,
            what="a parked fetch and one Stable group",
        )
    finally:
        c.close()

    # Everything consumed and committed: no lag, committed offsets at the log ends.
    caught_up = wait_until(
        lambda: (s := scrape(base))
        and sum(group_series(s, "kafka_consumergroup_current_offset", group, topic).values()) == N
        and s,
        what="committed offsets to show",
    )
    lag = group_series(caught_up, "kafka_consumergroup_lag", group, topic)
    assert set(lag) == set(range(PARTITIONS)) and sum(lag.values()) == 0, lag

    # The consumer is gone; what is produced now is lag, partition by partition.
    produce(broker.bootstrap, topic, N, "b")
    behind = wait_until(
        lambda: (s := scrape(base))
        and sum(group_series(s, "kafka_consumergroup_lag", group, topic).values()) == N
        and s,
        what="lag to reach N",
    )
    # Its only member left: the group is Empty, and nothing is parked any more.
    assert value(behind, "kafka_coordinator_group_groupmetadatamanager_numgroupsempty") == 1
    assert value(behind, "kafka_server_delayedoperationpurgatory_purgatorysize", delayedOperation="Produce") == 0
    lag = group_series(behind, "kafka_consumergroup_lag", group, topic)
    committed = group_series(behind, "kafka_consumergroup_current_offset", group, topic)
    for p in range(PARTITIONS):
        end = value(behind, "kafka_log_log_logendoffset", topic=topic, partition=p)
        assert lag[p] == end - committed[p], (p, lag, committed, end)


def test_cluster_counts_leaders_once_and_not_followers_fetches(tmp_path):
    """Three nodes, a topic replicated to all: the active controller is one node,
    leaders add up to the partitions, produced records are counted once (by their
    leaders), and followers' fetches are not bytes out."""
    ports = free_ports(3)
    c = Cluster(
        tmp_path / "c",
        controllers=3,
        overrides={"broker.session.timeout.ms": "3000", "broker.heartbeat.interval.ms": "500"},
        node_overrides={i + 1: {"metrics.listener": f"127.0.0.1:{ports[i]}"} for i in range(3)},
    ).start()
    try:
        bases = [f"http://127.0.0.1:{p}" for p in ports]
        topic = "replicated"
        admin = AdminClient({"bootstrap.servers": c.bootstrap})
        admin.create_topics([NewTopic(topic, PARTITIONS, 3)])[topic].result(30)
        produce(c.bootstrap, topic, N, "r")

        def settled():
            scrapes = [scrape(b) for b in bases]
            for s in scrapes:
                ends = [value(s, "kafka_log_log_logendoffset", topic=topic, partition=p) for p in range(PARTITIONS)]
                if None in ends or sum(ends) != N:
                    return None
                if value(s, "kafka_server_replicamanager_underreplicatedpartitions") != 0:
                    return None
            return scrapes

        scrapes = wait_until(settled, timeout=60, what="every replica at the log end, ISRs full")
        assert sum(value(s, "kafka_controller_kafkacontroller_activecontrollercount") for s in scrapes) == 1
        assert sum(value(s, "kafka_controller_kafkacontroller_offlinepartitionscount") for s in scrapes) == 0
        for s in scrapes:
            assert value(s, "kafka_server_replicamanager_partitioncount") >= PARTITIONS
        for s in scrapes:
            # Followers hold the topic's partitions too: every node has all three series.
            assert all(
                value(s, "kafka_log_log_size", topic=topic, partition=p) > 0 for p in range(PARTITIONS)
            )
        assert sum(value(s, "kafka_server_replicamanager_leadercount") for s in scrapes) >= PARTITIONS
        # Produced records are counted once, by the partitions' leaders.
        assert sum(value(s, "kafka_server_brokertopicmetrics_messagesin_total", topic=topic) or 0 for s in scrapes) == N
        # Replication is not consumption.
        assert sum(value(s, "kafka_server_brokertopicmetrics_bytesout_total", topic=topic) or 0 for s in scrapes) == 0
        assert all(get(f"{b}/health/ready")[0] == 200 for b in bases)

        # A follower killed and restarted rejoins the ISR through its leaders'
        # AlterPartition: counted as ISR expansions there.
        victim = next(i for i, s in enumerate(scrapes)
                      if value(s, "kafka_controller_kafkacontroller_activecontrollercount") == 0)
        assert sum(value(s, "kafka_server_replicamanager_isrexpands_total") for s in scrapes) == 0
        c.node(victim + 1).kill9()
        others = [b for i, b in enumerate(bases) if i != victim]
        wait_until(lambda: any(value(scrape(b), "kafka_server_replicamanager_underreplicatedpartitions") > 0
                               for b in others), timeout=30, what="the killed follower out of the ISR")
        c.node(victim + 1).restart()
        wait_until(lambda: (scrapes := [scrape(b) for b in bases])
                   and all(value(s, "kafka_server_replicamanager_underreplicatedpartitions") == 0 for s in scrapes)
                   and sum(value(s, "kafka_server_replicamanager_isrexpands_total") for s in scrapes) >= 1,
                   timeout=60, what="the restarted follower back in the ISR, counted as expansions")
    finally:
        c.kill_all()
