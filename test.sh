#!/usr/bin/env bash
# Runs the whole test suite. Installs what the tests need first, so it works on a fresh
# Debian machine that has only the Rust toolchain:
#   - Debian packages: kcat (librdkafka 2.0.2), python3 with venv, iproute2, postgresql,
#     chromium
#   - a Python venv (.venv) with pinned confluent-kafka, kafka-python and pytest
#   - Node.js and kafkajs (pinned, in tests/node/node_modules)
# Then: cargo test (release profile, which also builds the broker binary the client
# tests start) and the real-client suites under tests/python.
set -euo pipefail
cd "$(dirname "$0")"

need_apt=()
command -v kcat >/dev/null 2>&1 || need_apt+=(kcat)
# e2fsprogs (mkfs.ext4, e2fsck): test_log_dirs.py fails a disk on a loop-mounted ext4.
command -v mkfs.ext4 >/dev/null 2>&1 || need_apt+=(e2fsprogs)
# iproute2 (`ip`): the fault tests put each cluster node in a network namespace (needs root).
command -v ip >/dev/null 2>&1 || need_apt+=(iproute2)
command -v python3 >/dev/null 2>&1 || need_apt+=(python3)
python3 -c 'import venv, ensurepip' >/dev/null 2>&1 || need_apt+=(python3-venv)
command -v node >/dev/null 2>&1 || need_apt+=(nodejs)
command -v npm >/dev/null 2>&1 || need_apt+=(npm)
# PostgreSQL server binaries for gregor connect's PostgreSQL connector tests (a throwaway
# cluster per test: tests/python/pg_cluster.py); initdb is not on PATH on Debian.
compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || need_apt+=(postgresql)
# Headless Chromium for the web console test (tests/python/test_console.py drives it
# with Playwright; Playwright's own browser download is not used).
[ -x /usr/bin/chromium ] || need_apt+=(chromium)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "== installing Debian packages: ${need_apt[*]}"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

if [ ! -x .venv/bin/python ] || ! .venv/bin/python -c 'import sys' >/dev/null 2>&1; then
  echo "== creating Python venv in .venv"
  rm -rf .venv
  python3 -m venv .venv
fi
.venv/bin/python -m pip install -q --disable-pip-version-check -r tests/python/requirements.txt
echo "== node client (kafkajs) in tests/node"
(cd tests/node && npm install --silent --no-audit --no-fund --no-package-lock >/dev/null)

echo "== cargo test (release)"
cargo test --release --workspace --lib --bins --tests

# Examples have no tests (clippy --all-targets checks them); the streams tests run them as
# programs, so build them once as plain binaries. `--workspace`, as above: the same
# feature set, so no dependency is compiled a second time.
cargo build --release --workspace --examples

echo "== real-client tests (kcat, confluent-kafka, kafka-python)"
# Two workers, whole files each (--dist loadfile keeps a file's fixtures in one process).
# Every fixture picks its own ports, data directories and network namespaces, so files
# never share state. PYTEST_WORKERS=0 runs them one at a time.
GREGOR_BIN="$PWD/target/release/gregor" .venv/bin/python -m pytest -q -p no:cacheprovider \
  -n "${PYTEST_WORKERS:-2}" --dist loadfile tests/python "$@"
