#!/usr/bin/env bash
# Produce latency on a compacted partition while the cleaner rewrites and swaps it, for
# BENCHMARKS.md ("Compaction swaps and produce latency").
# Fills a compacted topic (16 MiB segments) with 4,000,000 x 100 B records over 2,000,000
# keys with compaction held off (min.compaction.lag.ms = 1 h), measures a rate-limited
# produce to that same partition (baseline), then lets the cleaner loose
# (min.compaction.lag.ms = 0, min.cleanable.dirty.ratio = 0.01, so it re-cleans whenever a
# segment rolls) and measures the same produce while it cleans and swaps.
# Usage: scripts/bench-cleaner-swap.sh [BROKER_BINARY]   (the broker to measure, default
#        target/release/gregor, which is also the load generator; PY=python with
#        confluent-kafka, default .venv/bin/python)
set -euo pipefail
cd "$(dirname "$0")/.."
G="$PWD/target/release/gregor"
BROKER_BIN="${1:-$G}"
PY="${PY:-$PWD/.venv/bin/python}"
DATA="$(mktemp -d)"
PORT=19557
B=127.0.0.1:$PORT
"$BROKER_BIN" broker --data-dir "$DATA" --listen "$B" -o log.cleaner.backoff.ms=100 >/dev/null 2>"$DATA.broker.log" &
BROKER=$!
trap 'kill $BROKER 2>/dev/null; wait $BROKER 2>/dev/null || true; rm -rf "$DATA" "$DATA.broker.log"' EXIT
for _ in $(seq 200); do "$G" bench produce -b $B --topic warmup --count 1 --quiet >/dev/null 2>&1 && break; sleep 0.1; done
topic_config() {
"$PY" - "$B" "$@" <<'PY'
import sys
from confluent_kafka.admin import AdminClient, NewTopic, ConfigResource, ConfigEntry, AlterConfigOpType
a = AdminClient({"bootstrap.servers": sys.argv[1]})
configs = dict(kv.split("=", 1) for kv in sys.argv[3:])
if sys.argv[2] == "create":
    a.create_topics([NewTopic("compacted", 1, 1, config=configs)])["compacted"].result(30)
else:
    r = ConfigResource("topic", "compacted", incremental_configs=[
        ConfigEntry(k, v, incremental_operation=AlterConfigOpType.SET) for k, v in configs.items()])
    for f in a.incremental_alter_configs([r]).values():
        f.result(30)
PY
}
topic_config create cleanup.policy=compact segment.bytes=16777216 min.compaction.lag.ms=3600000 min.cleanable.dirty.ratio=0.01
echo "== filling: 4,000,000 x 100 B records over 2,000,000 keys"
"$G" bench produce -b $B --topic compacted --count 4000000 --size 100 --keys 2000000 --quiet
echo "size before: $(du -sm "$DATA/compacted-0" | cut -f1) MB"
echo "== baseline: 20,000 msgs/s for 40 s to the compacted partition, cleaner held off"
"$G" bench produce -b $B --topic compacted --rate 20000 --count 800000 --size 100 --keys 2000000 --quiet --output json
topic_config alter min.compaction.lag.ms=0
echo "== the same while the cleaner compacts and swaps that partition"
"$G" bench produce -b $B --topic compacted --rate 20000 --count 800000 --size 100 --keys 2000000 --quiet --output json
sed 's/\x1b\[[0-9;]*m//g' "$DATA.broker.log" | grep "cleaned log" | sed 's/^.*cleaned log/cleaned log/'
echo "size after: $(du -sm "$DATA/compacted-0" | cut -f1) MB"
