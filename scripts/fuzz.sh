#!/usr/bin/env bash
# Run a fuzz target for a bounded time: scripts/fuzz.sh [SECONDS] [TARGET]
# Targets: decode (voucher texts, default), scan_frame (frames and image files).
# Installs cargo-fuzz from crates.io if missing. Uses RUSTC_BOOTSTRAP=1 so the stable
# toolchain accepts the sanitizer flags (no nightly toolchain on these machines).
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${1:-${FUZZ_SECONDS:-60}}"
target="${2:-decode}"
if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "==> installing cargo-fuzz"
  cargo install cargo-fuzz --locked --quiet
fi
cd rust-core/fuzz
mkdir -p "corpus/$target"
# Seed the corpus: voucher texts for decode, small voucher PNGs for scan_frame, small rosters.
python3 - "$target" <<'PY'
import base64, json, pathlib, hashlib, sys
target = sys.argv[1]
rosters = [
    "beneficiary_id,name,amount,items\nB-1,Amina,2500,\nB-2,\"Otieno, Peter\",,RICE:10:kg;OIL:2\n",
    "\ufeffid,name\nX-001,Jos\u00e9 \u00d1\u00fa\u00f1ez\n",
    "id,amount\nB-1,0\n",
]
for r in rosters if target == "roster" else []:
    data = r.encode()
    (pathlib.Path("corpus") / target / hashlib.sha256(data).hexdigest()[:16]).write_bytes(data)
for p in [] if target == "roster" else sorted(pathlib.Path("../../test-vectors/vouchers").glob("*.json"))[:20]:
    stages = json.loads(p.read_text())["stages"]
    if target == "decode":
        data = stages["text"].encode()
    elif stages.get("qr_png_b64"):
        data = base64.b64decode(stages["qr_png_b64"])
    else:
        continue
    (pathlib.Path("corpus") / target / hashlib.sha256(data).hexdigest()[:16]).write_bytes(data)
PY
echo "==> fuzzing $target for ${secs}s"
set +e
RUSTC_BOOTSTRAP=1 cargo fuzz run "$target" "corpus/$target" -- -max_total_time="$secs" -max_len=65536 -timeout=10 \
  > "fuzz-$target.log" 2>&1
status=$?
set -e
grep -E "^(Done|INFO: seed|SUMMARY|.*panicked|.*ERROR)" "fuzz-$target.log" || true
if [ "$status" -ne 0 ]; then
  echo "fuzz: $target FAILED (exit $status); see rust-core/fuzz/artifacts/$target" >&2
  exit 1
fi
echo "fuzz: $target ran ${secs}s without a crash"
