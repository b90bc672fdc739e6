#!/usr/bin/env bash
# The camera-stream benchmark: what a provider's phone sees. Sequences of 720p and 1080p
# Y-plane frames (row padding included) of our EV1 voucher and OpenG2P's 924-character JWT
# under motion blur, defocus, perspective, low light with sensor noise, glare, a screen
# (moiré) and JPEG artefacts, plus frames with no code, made by the deterministic generator in
# rust-core/examples/scan_stream/gen.rs (nothing is checked in). Ours through a ScanSession as
# the app feeds it (the default: the retry ladder spread over frames, the step that last read
# tried first), ours with the whole ladder on every frame, and zxing-cpp on the same frames.
# Prints frames until the first correct read, share of frames read, wrong reads, and median /
# p95 ms per frame. Raw per-frame results stay in target/bench-stream/.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x .venv-bench/bin/python ]; then python3 -m venv .venv-bench; fi
.venv-bench/bin/pip install --quiet --disable-pip-version-check zxing-cpp==3.1.1 pillow numpy
cargo build --release --quiet -p evoucher-core --example scan_stream
bin=target/release/examples/scan_stream
out=target/bench-stream
mkdir -p "$out"
echo "==> ours (session default)"
"$bin" run --label ours > "$out/ours.jsonl"
echo "==> ours (whole ladder every frame)"
"$bin" run --per-frame 99 --label ours-whole-ladder > "$out/ours-whole.jsonl"
echo "==> zxing-cpp"
"$bin" emit | .venv-bench/bin/python scripts/zxingcpp_stream.py > "$out/zxingcpp.jsonl"
echo
"$bin" score "$out/ours.jsonl" "$out/ours-whole.jsonl" "$out/zxingcpp.jsonl"
