"""A consume-transform-produce application for test_transactions.py: reads `input`,
writes `out-<value>` to `output` and commits its input offsets in the same transaction
(send_offsets_to_transaction). Exits once `total` inputs have been committed. Run it,
kill -9 it, run it again: the output read with read_committed holds each result once.

    python txn_processor.py BOOTSTRAP TOTAL BATCH
"""
import sys

from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition

bootstrap, total, batch = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])

producer = Producer({
    "bootstrap.servers": bootstrap,
    "transactional.id": "ctp-app",
    "linger.ms": 5,
})
# Fences any previous instance and aborts its open transaction.
producer.init_transactions(30)
consumer = Consumer({
    "bootstrap.servers": bootstrap,
    "group.id": "ctp",
    # Static membership: the restarted instance takes its partitions back at once.
    "group.instance.id": "ctp-1",
    "session.timeout.ms": 10000,
    "enable.auto.commit": False,
    "auto.offset.reset": "earliest",
    "isolation.level": "read_committed",
})
consumer.subscribe(["input"])

def committed_so_far():
    tp = consumer.committed([TopicPartition("input", 0)], timeout=10)[0]
    return max(tp.offset, 0)

done = committed_so_far()
print(f"starting at {done}", flush=True)
while done < total:
    msgs = [m for m in consumer.consume(batch, timeout=1.0) if not m.error()]
    if not msgs:
        continue
    producer.begin_transaction()
    for m in msgs:
        producer.produce("output", value=b"out-" + m.value(), partition=0)
    last = msgs[-1]
    offsets = [TopicPartition("input", 0, last.offset() + 1)]
    producer.send_offsets_to_transaction(offsets, consumer.consumer_group_metadata(), 30)
    try:
        producer.commit_transaction(30)
    except KafkaException as e:
        if e.args[0].txn_requires_abort():
            producer.abort_transaction(30)
            # Rewind to the last committed position and redo.
            consumer.seek(TopicPartition("input", 0, committed_so_far()))
            continue
        raise
    done = last.offset() + 1
    print(f"committed {done}", flush=True)
consumer.close()
print("finished", flush=True)
