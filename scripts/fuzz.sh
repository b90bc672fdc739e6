#!/usr/bin/env bash
# Run the decoder fuzz target for a bounded time (default 60 s): scripts/fuzz.sh [SECONDS]
# Installs cargo-fuzz from crates.io if missing. Uses RUSTC_BOOTSTRAP=1 so the stable
# toolchain accepts the sanitizer flags (no nightly toolchain on these machines).
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${1:-${FUZZ_SECONDS:-60}}"
if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "==> installing cargo-fuzz"
  cargo install cargo-fuzz --locked --quiet
fi
cd rust-core/fuzz
mkdir -p corpus/decode
# Seed the corpus with the test vectors' texts.
python3 - <<'PY'
import json, pathlib, hashlib
for p in pathlib.Path("../../test-vectors/vouchers").glob("*.json"):
    t = json.loads(p.read_text())["stages"]["text"].encode()
    (pathlib.Path("corpus/decode") / hashlib.sha256(t).hexdigest()[:16]).write_bytes(t)
PY
echo "==> fuzzing decode for ${secs}s"
RUSTC_BOOTSTRAP=1 cargo fuzz run decode corpus/decode -- -max_total_time="$secs" -max_len=8192 2>&1 \
  | grep -E "^(#[0-9]+ +DONE|Done|==|INFO: seed|SUMMARY|.*panicked|.*ERROR)" || true
status=${PIPESTATUS[0]}
if [ "$status" -ne 0 ]; then
  echo "fuzz: decode target FAILED (exit $status); see rust-core/fuzz/artifacts/decode" >&2
  exit 1
fi
echo "fuzz: decode target ran ${secs}s without a crash"
