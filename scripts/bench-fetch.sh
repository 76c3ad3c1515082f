#!/usr/bin/env bash
# Consume throughput and broker CPU per GB fetched, for one or more broker binaries side
# by side on the same data directory (written once; consumers assign partitions from the
# beginning, so runs change nothing, and every run reads the same segments from the page
# cache).
#
# Usage: scripts/bench-fetch.sh [BROKER_BIN...]   (default: target/release/gregor)
# The load generators are always this tree's: `gregor bench consume` (librdkafka, every
# record parsed) and `gregor bench fetch-raw` (Fetch requests walking only batch
# headers: what the broker can serve, without a client's per-record work).
# Env: RUNS (3), COUNT_1K (1000000), COUNT_100 (5000000).
set -euo pipefail
cd "$(dirname "$0")/.."
G="$PWD/target/release/gregor"
[ -x "$G" ] || cargo build --release -q -p gregor
BINS=("$@")
[ ${#BINS[@]} -gt 0 ] || BINS=("$G")
RUNS="${RUNS:-3}"
COUNT_1K="${COUNT_1K:-1000000}"
COUNT_100="${COUNT_100:-5000000}"
PORT=19556
WORK=$(mktemp -d)
trap 'kill $BROKER 2>/dev/null || true; rm -rf "$WORK"' EXIT
BROKER=0

start() { # bin datadir
  "$1" broker --data-dir "$2" --listen "127.0.0.1:$PORT" >/dev/null 2>"$2.log" &
  BROKER=$!
  for _ in $(seq 200); do
    "$G" bench produce -b 127.0.0.1:$PORT --topic warmup --count 1 --quiet >/dev/null 2>&1 && return
    sleep 0.05
  done
  echo "broker did not start" >&2; exit 1
}
stop() { kill "$BROKER"; wait "$BROKER" 2>/dev/null || true; }
cpu() { # utime+stime of the broker in seconds
  awk -v hz="$(getconf CLK_TCK)" '{print ($14+$15)/hz}' "/proc/$BROKER/stat"
}

# The data, written once with this tree's broker.
SEED="$WORK/seed"
start "$G" "$SEED"
"$G" bench produce -b 127.0.0.1:$PORT --topic f1k --count "$COUNT_1K" --size 1024 --acks 1 --linger-ms 5 --quiet >/dev/null
"$G" bench produce -b 127.0.0.1:$PORT --topic f100 --count "$COUNT_100" --size 100 --acks 1 --linger-ms 5 --quiet >/dev/null
stop

echo "| broker | client | records | size | run | msgs/s | MB/s | broker CPU s | broker CPU s per GB |"
echo "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"
for bin in "${BINS[@]}"; do
  name=$(basename "$(dirname "$(dirname "$(dirname "$bin")")")")
  for spec in "f1k $COUNT_1K 1024" "f100 $COUNT_100 100"; do
    set -- $spec
    topic=$1 count=$2 size=$3
    for client in consume fetch-raw; do
    for run in $(seq "$RUNS"); do
      start "$bin" "$SEED"
      before=$(cpu)
      if [ "$client" = consume ]; then
        out=$("$G" bench consume -b 127.0.0.1:$PORT --topic "$topic" --count "$count" --output json --quiet)
      else
        out=$("$G" bench fetch-raw -b 127.0.0.1:$PORT --topic "$topic" --count "$count" --output json)
      fi
      after=$(cpu)
      stop
      python3 - "$name" "$client" "$count" "$size" "$run" "$out" "$before" "$after" <<'PY'
import json, sys
name, client, count, size, run, out, before, after = sys.argv[1:]
c = json.loads(out)
cpu = float(after) - float(before)
gb = int(count) * int(size) / 1e9
print(f"| {name} | {client} | {int(count):,} | {size} B | {run} | {c['msgs_per_sec']:,.0f} | {c['mb_per_sec']:.1f} | {cpu:.2f} | {cpu / gb:.2f} |")
PY
    done
    done
  done
done
