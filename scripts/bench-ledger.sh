#!/usr/bin/env bash
# Ledger benchmarks: criterion (durable redeem beside a bare durable SQLite insert, history
# lookup), then the scale run with 1,000,000 redemptions already in the ledger (prefill cached
# in target/bench-ledger/; EVOUCHER_BENCH_ROWS changes the size).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo bench -p evoucher-core --bench ledger -- --noplot
cargo bench -p evoucher-core --bench ledger_scale
