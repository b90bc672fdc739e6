#!/usr/bin/env bash
# End-to-end voucher verification beside a bare Ed25519 verify of the same signature.
# Prints both medians and the ratio; goal: ratio <= 1.3.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo bench -p evoucher-core --bench verify -- --noplot "$@"
python3 - <<'PY'
import json, pathlib
base = pathlib.Path("target/criterion/verify")
def median(name):
    return json.loads((base / name / "new" / "estimates.json").read_text())["median"]["point_estimate"]
e2e, bare = median("voucher_end_to_end"), median("ed25519_strict_only")
ratio = e2e / bare
print(f"voucher end to end : {e2e/1000:8.2f} µs (median)")
print(f"ed25519 strict only: {bare/1000:8.2f} µs (median)")
print(f"ratio              : {ratio:8.3f}x   goal <= 1.30x  {'MET' if ratio <= 1.3 else 'NOT MET'}")
PY
