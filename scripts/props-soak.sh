#!/usr/bin/env bash
# The property tests with fresh random cases, many of them: what the test command (which draws
# the same cases on every run) cannot find. Runs ROUNDS rounds (default 5) of PROPTEST_CASES
# cases (default 5000) per property, each round with a new seed, and prints the seed of any
# round that fails, so that `PROPTEST_RNG_SEED=<seed> cargo test ...` replays it.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${ROUNDS:-5}
export PROPTEST_CASES=${PROPTEST_CASES:-5000}
targets=(-p evoucher-core --lib --test props --test ledger --test payable --test rules)
server=(-p evoucher-server --test letters_props)
cargo test --release --no-run -q "${targets[@]}"
cargo test --release --no-run -q "${server[@]}"
failed=0
for round in $(seq 1 "$rounds"); do
  seed=$(od -An -N8 -tu8 /dev/urandom | tr -d ' ')
  echo "==> round $round of $rounds: PROPTEST_RNG_SEED=$seed, $PROPTEST_CASES cases"
  if ! PROPTEST_RNG_SEED=$seed cargo test --release -q "${targets[@]}" \
     || ! PROPTEST_RNG_SEED=$seed cargo test --release -q "${server[@]}"; then
    echo "FAILED with PROPTEST_RNG_SEED=$seed" >&2
    failed=1
  fi
done
exit $failed
