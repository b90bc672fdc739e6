#!/usr/bin/env bash
# Our scanner and zxing-cpp (PyPI `zxing-cpp`, the best open-source decoder) on
# ../shared/qr-samples in one run: codes read and median/mean ms per image for both, per set,
# per family and in total, with the ratios (read×: ours/theirs; time×: our median/theirs).
# Both sides time the decode call only, on the same 8-bit grey pixels. Then a criterion
# benchmark of one 1280×720 frame holding a version-10+ voucher.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
if [ ! -x .venv-bench/bin/python ]; then python3 -m venv .venv-bench; fi
.venv-bench/bin/pip install --quiet --disable-pip-version-check zxing-cpp==3.1.1 pillow numpy
cargo build --release --quiet -p evoucher-core --example scan_eval
eval_bin="$root/target/release/examples/scan_eval"
out=$(mktemp -d)
echo "==> ours"
"$eval_bin" > "$out/ours.jsonl"
echo "==> zxing-cpp"
"$eval_bin" --list | .venv-bench/bin/python scripts/zxingcpp_scan.py > "$out/zxingcpp.jsonl"
echo
"$eval_bin" --score "$out/ours.jsonl" "$out/zxingcpp.jsonl"
python3 - "$out/ours.jsonl" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
worst = max(rows, key=lambda r: r["ms"])
print(f"\nslowest image (ours): {worst['ms']:.1f} ms ({worst['file'].split('qr-samples/')[-1]}); budget 200 ms")
PY
if [ "${SKIP_CRITERION:-0}" != "1" ]; then
  cargo bench -p evoucher-core --bench scan -- --noplot
fi
