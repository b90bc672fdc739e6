#!/usr/bin/env bash
# Run a fuzz target for a bounded time: scripts/fuzz.sh [SECONDS] [TARGET]
# Targets: decode (voucher texts, default), scan_frame (frames and image files), roster
# (beneficiary CSV), entries (a phone's push, judged by the rulebook), payable (signed payables),
# answers (a server's answers to a phone's sync and claim runs).
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
entry = {"seq": 1, "id": "e-1", "kind": "redeem", "voucher_id": "01" * 16, "issuer_kid": "00" * 8,
         "provider": "SP-1", "device": "dev-1", "amount": 400, "currency": "KES",
         "items": [{"code": "RICE", "quantity": 3}], "voids": None, "at": 1780000000,
         "voucher_text": "EV1:", "prev_hash": "00" * 32, "hash": "00" * 32, "signature": "00" * 64}
pushes = [
    {"entries": [entry]},
    {"entries": [entry, dict(entry, seq=2, id="e-2", amount=700, items=[]),
                 dict(entry, seq=3, id="e-3", kind="void", voids="e-1", amount=None, currency=None)]},
    {"entries": [dict(entry, amount=18446744073709551615), dict(entry, id="e-4", items=[{"code": "RICE", "quantity": 9223372036854775807}])]},
]
for p in pushes if target == "entries" else []:
    data = json.dumps(p).encode()
    (pathlib.Path("corpus") / target / hashlib.sha256(data).hexdigest()[:16]).write_bytes(data)
for r in rosters if target == "roster" else []:
    data = r.encode()
    (pathlib.Path("corpus") / target / hashlib.sha256(data).hexdigest()[:16]).write_bytes(data)
for p in [] if target in ("roster", "entries") else sorted(pathlib.Path("../../test-vectors/vouchers").glob("*.json"))[:20]:
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
