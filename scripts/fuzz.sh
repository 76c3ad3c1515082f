#!/usr/bin/env bash
# Fuzzes request decoding and record-batch validation (the `request_decode` target) for
# a given number of CPU-minutes, starting from the seed corpus in
# fuzz/corpus/request_decode (regenerate it with
# `GREGOR_WRITE_CORPUS=1 cargo test --release -p gregor-protocol --test fuzz_corpus`).
#
# Usage: scripts/fuzz.sh [cpu-minutes]   (default 5)
#
# With cargo-fuzz and a nightly toolchain: libFuzzer (with AddressSanitizer) on one
# core; new inputs go to fuzz/corpus-work/ (ignored), crashes to fuzz/artifacts/.
# Without them (FUZZ_ENGINE=stable forces it): the same target body
# (gregor_protocol::request::fuzz_one) under a stable, proptest-driven mutator over the
# same corpus, one thread, until it has used that much CPU; it prints the executions.
set -euo pipefail
cd "$(dirname "$0")/.."
MINUTES="${1:-5}"
SECS=$(( MINUTES * 60 ))
ENGINE="${FUZZ_ENGINE:-auto}"
if [ "$ENGINE" = auto ]; then
  if cargo +nightly fuzz --version >/dev/null 2>&1; then ENGINE=libfuzzer; else ENGINE=stable; fi
fi
echo "== fuzzing request_decode for $MINUTES CPU-minute(s) with $ENGINE"
if [ "$ENGINE" = libfuzzer ]; then
  mkdir -p fuzz/corpus-work
  cd fuzz
  exec cargo +nightly fuzz run request_decode corpus-work corpus/request_decode -- \
    -max_total_time="$SECS" -print_final_stats=1
fi
# Build, then run the test binary itself: cargo would hold the build directory's lock
# for the whole run.
BIN=$(cargo test --release -p gregor-protocol --test fuzz_corpus --no-run 2>&1 \
  | grep -o 'target/release/deps/fuzz_corpus-[0-9a-f]*' | tail -1)
GREGOR_FUZZ_SECS="$SECS" "$BIN" mutated_corpus_never_panics --nocapture --test-threads=1
