#!/usr/bin/env bash
# Runs the benchmark matrix of BENCHMARKS.md against a fresh local broker and prints a
# Markdown table. Usage: scripts/bench-matrix.sh [data-dir]   (default: a temp dir)
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -q
G="$PWD/target/release/gregor"
DATA="${1:-$(mktemp -d)}"
PORT=19555
"$G" broker --data-dir "$DATA" --listen "127.0.0.1:$PORT" >/dev/null 2>"$DATA.broker.log" &
BROKER=$!
trap 'kill $BROKER 2>/dev/null; wait $BROKER 2>/dev/null || true' EXIT
for _ in $(seq 100); do "$G" bench produce -b 127.0.0.1:$PORT --topic warmup --count 1 --quiet >/dev/null 2>&1 && break; sleep 0.1; done
rss() { awk '/VmRSS/ {print $2/1024 " MB"}' /proc/$BROKER/status; }
echo "idle RSS after start: $(rss)"
echo
echo "| records | size | partitions | acks | produce msgs/s | produce MB/s | consume msgs/s | consume MB/s |"
echo "| --- | --- | --- | --- | --- | --- | --- | --- |"
for size in 100 1024; do
  count=$(( size == 100 ? 5000000 : 1000000 ))
  for parts in 1 4; do
    for acks in 1 all; do
      topic="m-$size-$parts-$acks"
      p=$("$G" bench produce -b 127.0.0.1:$PORT --topic "$topic" --partitions "$parts" --count "$count" --size "$size" --acks "$acks" --linger-ms 5 --output json --quiet)
      c=$("$G" bench consume -b 127.0.0.1:$PORT --topic "$topic" --count "$count" --output json --quiet)
      python3 - "$p" "$c" "$count" "$size" "$parts" "$acks" <<'PY'
import json, sys
p, c = json.loads(sys.argv[1]), json.loads(sys.argv[2])
count, size, parts, acks = sys.argv[3:]
print(f"| {int(count):,} | {size} B | {parts} | {acks} | {p['msgs_per_sec']:,.0f} | {p['mb_per_sec']:.1f} | {c['msgs_per_sec']:,.0f} | {c['mb_per_sec']:.1f} |")
PY
    done
  done
done
echo
echo "RSS after the matrix: $(rss)"
echo
echo "end-to-end latency at 10k msg/s, 100 B, 1 partition, acks=1, linger 0:"
"$G" bench e2e -b 127.0.0.1:$PORT --topic e2e --rate 10000 --count 100000 --quiet
