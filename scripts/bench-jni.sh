#!/usr/bin/env bash
# JNI benchmark on the JVM: a 1280×720 frame scanned through JNI beside the same scan looped in
# Rust in the same run (overhead goal ≤ 5 %), and verify + durable redeem per voucher through
# JNI (goal < 1 ms). Uses the release build of the JNI library.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet -p evoucher-jni -p evoucher
work=$(mktemp -d)
ev="$PWD/target/release/evoucher"
"$ev" keygen --out "$work/issuer.jwk" > "$work/trust.json" 2>/dev/null
python3 -c "print('beneficiary_id'); [print(f'BEN-{i:05}') for i in range(2200)]" > "$work/ben.csv"
"$ev" issue --key "$work/issuer.jwk" --iss https://bench.example --program bench --amount 1000 \
  --currency KES --csv "$work/ben.csv" --out-dir "$work/batch" > /dev/null
cd android/sdk
mvn -B -q -ntp test -Dtest=JniBench -DexcludedGroups=none -Dsurefire.failIfNoSpecifiedTests=false \
  -Devoucher.native.lib="$PWD/../../target/release/libevoucher_jni.so" \
  -Devoucher.bench.vouchers="$work" -DargLine="-Devoucher.native.lib=$PWD/../../target/release/libevoucher_jni.so -Devoucher.repo=$PWD/../.. -Devoucher.bench.vouchers=$work"
cat target/surefire-reports/org.evoucher.sdk.JniBench-output.txt 2>/dev/null || true
