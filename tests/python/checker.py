"""A checker in the spirit of Jepsen's queue workload, for one topic.

Producers send records whose values are unique ids (`p<producer>-<seq>`) and record every
outcome in a History: acknowledged (with the partition and offset the broker gave),
failed definitively (the broker cannot have written it), unknown (a timeout: it may or may
not be in the log), or aborted (a transaction that was aborted). Consumers running during
the test may record what they polled. A final read (read_committed, from the beginning to
each partition's end) gives the log, and check() compares the two:

- lost: acknowledged, not in the log;
- duplicated: one id at two or more offsets;
- unexpected: in the log but never sent, or sent and failed definitively;
- aborted_read (G1a): in the log (read_committed) but its transaction was aborted;
- order: ids of one producer in one partition that are not in send order;
- offset_mismatch: acknowledged at (partition, offset) but found elsewhere;
- polled_missing: polled by a consumer during the run at an offset where the final log
  holds something else or nothing (a read of data that was later lost or replaced).

check() is pure (tests/python/test_checker.py feeds it synthetic histories); the producer
and reader helpers below drive real clients (confluent-kafka) against a cluster.
"""
import threading
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass, field

ACKED, FAILED, UNKNOWN, ABORTED, PENDING = "acked", "failed", "unknown", "aborted", "pending"
KINDS = ("lost", "duplicated", "unexpected", "aborted_read", "order", "offset_mismatch", "polled_missing")


def make_id(producer, seq):
    return f"p{producer}-{seq}"


def parse_id(value):
    """(producer, seq) of an id, or None for a value that is not one."""
    try:
        text = value.decode() if isinstance(value, bytes) else value
        p, s = text[1:].split("-", 1)
        if not text.startswith("p"):
            return None
        return p, int(s)
    except (ValueError, AttributeError, UnicodeDecodeError):
        return None


@dataclass
class Op:
    id: str
    producer: str
    seq: int
    partition: int = None  # the partition it was sent to (None: the client chose)
    status: str = PENDING
    offset: int = None  # the acknowledged offset
    error: str = None


class History:
    """Every send and its outcome, plus what consumers polled. Thread-safe."""

    def __init__(self):
        self._lock = threading.Lock()
        self.ops = {}  # id -> Op
        self.polled = []  # (partition, offset, value)
        # Every error a client reported: (producer, source, error name, retriable, fatal);
        # source is "delivery" (a record's outcome), "client" (librdkafka's error callback:
        # connection trouble it works around itself) or "txn" (a transaction call).
        self.errors = []
        self._counts = defaultdict(int)  # status -> number of ops

    def invoke(self, producer, seq, partition=None):
        op = Op(make_id(producer, seq), str(producer), seq, partition)
        with self._lock:
            self.ops[op.id] = op
            self._counts[PENDING] += 1
        return op

    def _set(self, id, status, error=None):
        with self._lock:
            op = self.ops[id]
            self._counts[op.status] -= 1
            self._counts[status] += 1
            op.status = status
            if error is not None:
                op.error = error
            return op

    def ack(self, id, partition, offset):
        op = self._set(id, ACKED)
        op.partition, op.offset = partition, offset

    def fail(self, id, error=None):
        self._set(id, FAILED, error)

    def unknown(self, id, error=None):
        self._set(id, UNKNOWN, error)

    def abort(self, id):
        self._set(id, ABORTED)

    def resolve_pending(self, error="no outcome"):
        """Sends that never got an answer are unknown."""
        with self._lock:
            pending = [id for id, op in self.ops.items() if op.status == PENDING]
        for id in pending:
            self._set(id, UNKNOWN, error)

    def poll(self, partition, offset, value):
        with self._lock:
            self.polled.append((partition, offset, value.decode() if isinstance(value, bytes) else value))

    def error(self, producer, source, name, retriable=True, fatal=False):
        with self._lock:
            self.errors.append((str(producer), source, name, retriable, fatal))

    def count(self, status):
        with self._lock:
            return self._counts[status]


@dataclass
class Report:
    counts: dict
    examples: dict = field(default_factory=dict)  # kind -> up to 10 descriptions
    acked: int = 0
    failed: int = 0
    unknown: int = 0
    aborted: int = 0
    read: int = 0

    @property
    def ok(self):
        return all(v == 0 for v in self.counts.values())

    def anomalies(self):
        return {k: v for k, v in self.counts.items() if v}

    def summary(self):
        lines = [
            f"acked {self.acked}, failed {self.failed}, unknown {self.unknown}, aborted {self.aborted}, "
            f"records read {self.read}",
            "anomalies: " + (", ".join(f"{k} {v}" for k, v in self.anomalies().items()) or "none"),
        ]
        for kind, ex in self.examples.items():
            lines.append(f"  {kind}: {'; '.join(ex)}")
        return "\n".join(lines)

    def __str__(self):
        return self.summary()


def check(history, log):
    """`log`: {partition: [(offset, value)]}, the final read. Returns a Report."""
    counts = {k: 0 for k in KINDS}
    examples = defaultdict(list)

    def flag(kind, text):
        counts[kind] += 1
        if len(examples[kind]) < 10:
            examples[kind].append(text)

    where = defaultdict(list)  # id -> [(partition, offset)]
    at = {}  # (partition, offset) -> id
    read = 0
    for partition, records in sorted(log.items()):
        for offset, value in records:
            value = value.decode() if isinstance(value, bytes) else value
            where[value].append((partition, offset))
            at[(partition, offset)] = value
            read += 1

    for value, places in where.items():
        if len(places) > 1:
            flag("duplicated", f"{value} at {sorted(places)}")
        op = history.ops.get(value)
        if op is None:
            flag("unexpected", f"{value} at {places[0]} was never sent")
        elif op.status == FAILED:
            flag("unexpected", f"{value} at {places[0]} failed definitively ({op.error})")
        elif op.status == ABORTED:
            flag("aborted_read", f"{value} at {places[0]} belongs to an aborted transaction")

    for op in history.ops.values():
        if op.status != ACKED:
            continue
        places = where.get(op.id)
        if not places:
            flag("lost", f"{op.id} acknowledged at {op.partition}/{op.offset}")
        elif op.offset is not None and (op.partition, op.offset) not in places:
            flag("offset_mismatch", f"{op.id} acknowledged at {op.partition}/{op.offset}, found at {sorted(places)}")

    # Per producer and partition, ids must appear in send order (first occurrence of each).
    for partition, records in sorted(log.items()):
        last = {}  # producer -> (seq, offset)
        seen = set()
        for offset, value in records:
            value = value.decode() if isinstance(value, bytes) else value
            if value in seen:
                continue
            seen.add(value)
            parsed = parse_id(value)
            if parsed is None:
                continue
            producer, seq = parsed
            prev = last.get(producer)
            if prev is not None and seq < prev[0]:
                flag("order", f"p{producer}-{seq} at {partition}/{offset} after p{producer}-{prev[0]} at {partition}/{prev[1]}")
            if prev is None or seq > prev[0]:
                last[producer] = (seq, offset)

    for partition, offset, value in history.polled:
        found = at.get((partition, offset))
        if found != value:
            what = "nothing" if found is None else found
            flag("polled_missing", f"{value} polled at {partition}/{offset}, the final log has {what}")

    return Report(
        counts=counts,
        examples=dict(examples),
        acked=history.count(ACKED),
        failed=history.count(FAILED),
        unknown=history.count(UNKNOWN),
        aborted=history.count(ABORTED),
        read=read,
    )


# --- real clients ---------------------------------------------------------------------

# Errors after which the broker cannot have written the record. Anything else (timeouts,
# transport errors, leadership changes that outlived the retries) leaves it unknown.
DEFINITE = {
    "MSG_SIZE_TOO_LARGE",
    "INVALID_RECORD",
    "RECORD_LIST_TOO_LARGE",
    "INVALID_REQUIRED_ACKS",
    "TOPIC_AUTHORIZATION_FAILED",
    "CLUSTER_AUTHORIZATION_FAILED",
    "_MSG_TIMED_OUT_QUEUE",
    "_PURGE_QUEUE",
}


class ConfluentProducer(threading.Thread):
    """One idempotent acks=all producer (confluent-kafka) sending ids `p<name>-<seq>`
    round-robin over `partitions`, at most `rate` a second, until stop() (or `count`
    records). With `transactional`, records go in transactions of `txn_size`, one in
    `abort_every` aborted on purpose."""

    def __init__(self, history, bootstrap, topic, name, partitions=1, rate=200, count=None,
                 transactional=False, txn_size=10, abort_every=4, config=None):
        super().__init__(daemon=True, name=f"producer-{name}")
        self.history, self.topic, self.name = history, topic, str(name)
        self.partitions, self.rate, self.count = partitions, rate, count
        self.transactional, self.txn_size, self.abort_every = transactional, txn_size, abort_every
        self.conf = {
            "bootstrap.servers": bootstrap,
            "acks": "all",
            "enable.idempotence": True,
            "linger.ms": 5,
            "message.timeout.ms": 60000,
            "request.timeout.ms": 5000,
            "socket.timeout.ms": 5000,
            "reconnect.backoff.max.ms": 500,
            "topic.metadata.refresh.interval.ms": 1000,
            "log_level": 3,
            "error_cb": self._on_error,
            **(config or {}),
        }
        if transactional:
            self.conf["transactional.id"] = f"checker-{name}-{uuid.uuid4().hex[:8]}"
            self.conf["transaction.timeout.ms"] = 60000
        self._halt = threading.Event()
        self.flush_timeout = 90.0
        self.sent = 0
        self.exception = None
        self.died_at = None

    def _on_error(self, err):
        self.history.error(self.name, "client", err.name(), err.retriable(), err.fatal())

    def _on_delivery(self, err, msg):
        id = msg.value().decode()
        if err is None:
            if self.transactional:
                # Written, but committed only with its transaction: the commit decides.
                self.delivered[id] = (msg.partition(), msg.offset())
            else:
                self.history.ack(id, msg.partition(), msg.offset())
        else:
            self.history.error(self.name, "delivery", err.name(), err.retriable(), err.fatal())
            if err.name() in DEFINITE:
                self.history.fail(id, err.name())
            else:
                self.history.unknown(id, err.name())

    def stop(self, flush_timeout=90.0):
        """Stops sending; what was sent gets `flush_timeout` seconds to be answered."""
        self.flush_timeout = flush_timeout
        self._halt.set()

    def run(self):
        from confluent_kafka import Producer

        try:
            self.producer = Producer(self.conf)
            self.delivered = {}
            if self.transactional:
                self._run_transactions()
            else:
                self._run_plain()
        except Exception as e:  # recorded for the test to assert on
            self.exception = e
            self.died_at = time.monotonic()
        finally:
            self.history.resolve_pending()

    def _pace(self, started):
        if self.rate:
            ahead = self.sent / self.rate - (time.monotonic() - started)
            if ahead > 0:
                self._halt.wait(ahead)

    def _send(self, seq):
        partition = seq % self.partitions
        self.history.invoke(self.name, seq, partition)
        while True:
            try:
                self.producer.produce(self.topic, value=make_id(self.name, seq).encode(), partition=partition,
                                      on_delivery=self._on_delivery)
                break
            except BufferError:
                self.producer.poll(0.1)
        self.sent += 1
        self.producer.poll(0)

    def _run_plain(self):
        started = time.monotonic()
        seq = 0
        while not self._halt.is_set() and (self.count is None or seq < self.count):
            self._send(seq)
            seq += 1
            self._pace(started)
        remaining = self.producer.flush(self.flush_timeout)
        if remaining:
            self.history.error(self.name, "delivery", f"{remaining} records undelivered after flush", True, False)

    def _run_transactions(self):
        from confluent_kafka import KafkaException

        self.producer.init_transactions(60)
        started = time.monotonic()
        seq = 0
        txn = 0
        while not self._halt.is_set() and (self.count is None or seq < self.count):
            ids = []
            self.producer.begin_transaction()
            txn += 1
            try:
                for _ in range(self.txn_size):
                    ids.append(make_id(self.name, seq))
                    seq += 1
                    self._send(seq - 1)
                    self._pace(started)
            except KafkaException as e:
                # Refused once the transaction is in error: ending it tells which error.
                err = e.args[0]
                self.history.error(self.name, "txn", err.name(), err.retriable(), err.fatal())
            self._end_transaction(ids, abort=bool(self.abort_every and txn % self.abort_every == 0))

    def _end_transaction(self, ids, abort):
        """Commits (or aborts) and records the outcome of every record in the transaction:
        acknowledged when the commit succeeded, aborted when it was aborted, unknown when
        the commit's outcome cannot be known."""
        from confluent_kafka import KafkaException

        deadline = time.monotonic() + 120
        while True:
            try:
                if abort:
                    self.producer.abort_transaction(60)
                    for id in ids:
                        self.history.abort(id)
                    return
                self.producer.commit_transaction(60)
                self.producer.flush(0)
                for id in ids:
                    where = self.delivered.pop(id, None)
                    if where is None:
                        self.history.unknown(id, "committed without a delivery report")
                    else:
                        self.history.ack(id, *where)
                return
            except KafkaException as e:
                err = e.args[0]
                self.history.error(self.name, "txn", err.name(), err.retriable(), err.fatal())
                if err.fatal() or time.monotonic() > deadline:
                    for id in ids:
                        self.history.unknown(id, err.name())
                    raise
                if err.txn_requires_abort():
                    abort = True
                # Otherwise retriable (e.g. a timeout): the same call is retried.


class ConfluentConsumer(threading.Thread):
    """A consumer polling the topic (all partitions assigned, from the beginning) during
    the run, recording what it reads into the history."""

    def __init__(self, history, bootstrap, topic, partitions, isolation="read_committed"):
        super().__init__(daemon=True, name="consumer")
        self.history, self.topic, self.partitions = history, topic, partitions
        self.conf = {
            "bootstrap.servers": bootstrap,
            "group.id": f"checker-{uuid.uuid4().hex[:8]}",
            "enable.auto.commit": False,
            "isolation.level": isolation,
            "topic.metadata.refresh.interval.ms": 1000,
            "log_level": 3,
        }
        self._halt = threading.Event()
        self.count = 0

    def stop(self):
        self._halt.set()

    def run(self):
        from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

        c = Consumer(self.conf)
        c.assign([TopicPartition(self.topic, p, OFFSET_BEGINNING) for p in range(self.partitions)])
        try:
            while not self._halt.is_set():
                for m in c.consume(500, 0.2):
                    if m.error() is None:
                        self.history.poll(m.partition(), m.offset(), m.value())
                        self.count += 1
        finally:
            c.close()


def read_log(bootstrap, topic, partitions, timeout=90.0, isolation="read_committed"):
    """The final read: a fresh consumer from the beginning of each partition to its end
    (the high watermark, or the last stable offset with read_committed, as of the start of
    the read). Retried from scratch until it completes or the deadline passes, so it also
    waits for the cluster to be able to serve every partition."""
    deadline = time.monotonic() + timeout
    last_error = None
    while time.monotonic() < deadline:
        try:
            return _read_once(bootstrap, topic, partitions, min(30.0, deadline - time.monotonic()), isolation)
        except Exception as e:  # not readable yet: try again until the deadline
            last_error = e
            time.sleep(0.5)
    raise AssertionError(f"the final read of {topic} did not complete in {timeout}s: {last_error}")


def _read_once(bootstrap, topic, partitions, timeout, isolation):
    from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

    c = Consumer({
        "bootstrap.servers": bootstrap,
        "group.id": f"final-{uuid.uuid4().hex[:8]}",
        "enable.auto.commit": False,
        "isolation.level": isolation,
        "enable.partition.eof": True,
        "log_level": 3,
    })
    try:
        deadline = time.monotonic() + timeout
        ends = {}
        for p in range(partitions):
            _, high = c.get_watermark_offsets(TopicPartition(topic, p), timeout=5, cached=False)
            ends[p] = high
        log = {p: [] for p in range(partitions)}
        done = {p for p, end in ends.items() if end == 0}
        c.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(partitions) if p not in done])
        while len(done) < partitions:
            if time.monotonic() > deadline:
                raise TimeoutError(f"read stalled: done {sorted(done)} of {partitions}, ends {ends}")
            for m in c.consume(1000, 0.5):
                err = m.error()
                if err is None:
                    log[m.partition()].append((m.offset(), m.value().decode()))
                    if m.offset() + 1 >= ends[m.partition()]:
                        done.add(m.partition())
                elif err.code() == err._PARTITION_EOF:
                    if m.offset() >= ends[m.partition()]:
                        done.add(m.partition())
                elif not err.retriable() and err.code() != err._TRANSPORT:
                    raise RuntimeError(f"final read: {err}")
        return log
    finally:
        c.close()
