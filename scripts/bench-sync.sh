#!/usr/bin/env bash
# Sync ingest and issuance of the real server (release build, its own process), on SQLite and on
# PostgreSQL (a throwaway cluster from the Debian package, scripts/pg.sh): redemptions per second
# through POST /api/v1/sync/redemptions in batches of 500 with the server's CPU and memory, beside
# a bare batched INSERT of the same rows; and the time to import, issue and download the PNGs of
# EVOUCHER_BENCH_ISSUE (default 100,000) vouchers, beside signing + rendering them in-process.
# Environment: EVOUCHER_BENCH_REDEMPTIONS (20,000), EVOUCHER_BENCH_DEVICES (8),
# EVOUCHER_BENCH_ISSUE (100,000; 0 skips), EVOUCHER_BENCH_PG=0 skips PostgreSQL.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet -p evoucher
dbs="sqlite://"
if [ "${EVOUCHER_BENCH_PG:-1}" != "0" ]; then
  pgdir=$(mktemp -d /tmp/evoucher-bench-pg.XXXXXX)
  url=$(scripts/pg.sh start "$pgdir" ${EVOUCHER_PG_PORT:-})
  trap 'scripts/pg.sh stop "$pgdir"; rm -rf "$pgdir"' EXIT
  dbs="$dbs $url"
fi
EVOUCHER_BIN="$PWD/target/release/evoucher" EVOUCHER_BENCH_DATABASES="$dbs" \
  cargo bench --quiet -p evoucher-server --bench sync
