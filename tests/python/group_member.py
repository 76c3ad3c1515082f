"""A group member run as its own process, so a test can kill -9 it.

Usage: group_member.py BOOTSTRAP GROUP TOPIC OUTFILE SESSION_TIMEOUT_MS

It consumes TOPIC in GROUP and, for each record, appends the value to OUTFILE (flushed)
and then commits that record's offset synchronously: commits follow processing, so a
crash can repeat at most the record in flight on each partition.
"""
import sys

from confluent_kafka import Consumer, KafkaError

bootstrap, group, topic, outfile, session = sys.argv[1:6]
c = Consumer({
    "bootstrap.servers": bootstrap,
    "group.id": group,
    "auto.offset.reset": "earliest",
    "enable.auto.commit": False,
    "session.timeout.ms": int(session),
    "heartbeat.interval.ms": 300,
})
c.subscribe([topic])
with open(outfile, "a") as out:
    while True:
        for m in c.consume(10, timeout=0.1):
            if m.error():
                if m.error().code() != KafkaError._PARTITION_EOF:
                    print(m.error(), file=sys.stderr)
                continue
            out.write(m.value().decode() + "\n")
            out.flush()
            c.commit(message=m, asynchronous=False)
