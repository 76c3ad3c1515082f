#!/usr/bin/env bash
# Log-cleaner benchmark for BENCHMARKS.md: fills a compacted topic, lets the cleaner
# compact it, and measures producing to another topic while the cleaner works.
# Usage: scripts/bench-cleaner.sh   (needs the test venv: ./test.sh creates it)
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -q
G="$PWD/target/release/gregor"
PY="$PWD/.venv/bin/python"
DATA="$(mktemp -d)"
PORT=19556
B=127.0.0.1:$PORT
"$G" broker --data-dir "$DATA" --listen "$B" -o log.cleaner.backoff.ms=60000 >/dev/null 2>"$DATA.broker.log" &
BROKER=$!
trap 'kill $BROKER 2>/dev/null; wait $BROKER 2>/dev/null || true' EXIT
for _ in $(seq 100); do "$G" bench produce -b $B --topic warmup --count 1 --quiet >/dev/null 2>&1 && break; sleep 0.1; done
"$PY" - "$B" <<'PY'
import sys
from confluent_kafka.admin import AdminClient, NewTopic
a = AdminClient({"bootstrap.servers": sys.argv[1]})
a.create_topics([NewTopic("compacted", 1, 1, config={"cleanup.policy": "compact", "segment.bytes": str(16 << 20)})])["compacted"].result(30)
PY
echo "== filling: 5,000,000 x 100 B records over 10,000 keys"
"$G" bench produce -b $B --topic compacted --count 5000000 --size 100 --keys 10000 --quiet
echo "size before: $(du -sm "$DATA/compacted-0" | cut -f1) MB"
echo "== baseline: producing to another topic with the cleaner idle"
"$G" bench produce -b $B --topic other --count 3000000 --size 100 --quiet --output json
echo "== the cleaner runs (config change wakes nothing: restart with a short backoff)"
kill $BROKER; wait $BROKER 2>/dev/null || true
"$G" broker --data-dir "$DATA" --listen "$B" -o log.cleaner.backoff.ms=100 >/dev/null 2>"$DATA.broker2.log" &
BROKER=$!
for _ in $(seq 100); do "$G" bench produce -b $B --topic warmup --count 1 --quiet >/dev/null 2>&1 && break; sleep 0.1; done
echo "== producing while the cleaner works"
"$G" bench produce -b $B --topic other2 --count 3000000 --size 100 --quiet --output json
for _ in $(seq 600); do grep -q "cleaned log" "$DATA.broker2.log" && break; sleep 0.1; done
grep "cleaned log" "$DATA.broker2.log" | sed 's/\x1b\[[0-9;]*m//g' | tail -3
echo "size after: $(du -sm "$DATA/compacted-0" | cut -f1) MB"
