#!/usr/bin/env bash
# Reimbursement at scale on the real server (release build, its own process), on SQLite and on
# PostgreSQL (a throwaway cluster from the Debian package, scripts/pg.sh): a claim of
# EVOUCHER_BENCH_CLAIM_LINES (default 10,000) redemptions made with a photo, submitted, read
# whole, approved twice, its payable PDF written and checked by `evoucher payable verify`; each
# step's time, the server's CPU and memory, the verifier's peak memory, beside the sync of the
# same redemptions measured in the same run. EVOUCHER_BENCH_PG=0 skips PostgreSQL.
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
  cargo bench --quiet -p evoucher-server --bench claims
