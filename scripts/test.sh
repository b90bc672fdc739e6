#!/usr/bin/env bash
# Every test evoucher has, on a fresh machine: installs what it needs, then runs
#   rustfmt and clippy checks, the Rust tests (unit, vectors, cross-vectors, property, CLI,
#   server processes under load), the scanner on the shared QR samples, the server's database
#   tests a second time on a real PostgreSQL, the Kotlin SDK through JNI on the JVM, the
#   independent Python cross-checks and OpenAPI checks, the back office in a real browser
#   (Debian's chromium) with an OpenID Connect provider, the Android build (JNI library for
#   arm64-v8a, APK, AAR) and the app's screens on the JVM (Robolectric), a compile of the optional camera
#   feature, and bounded fuzz runs (voucher texts, camera frames, rosters, pushed entries,
#   what a phone reads from a server,
#   signed payables). Ends with one line of totals.
# Environment: FUZZ_SECONDS (default 30; 0 skips fuzzing); PROPTEST_RNG_SEED (default fixed).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
export CARGO_TERM_COLOR=never
# A one-off build gains nothing from incremental state but its gigabytes on disk.
export CARGO_INCREMENTAL=0
# Property tests draw the same cases on every run of this command, so that CI's verdict on a
# commit can be reproduced. scripts/props-soak.sh draws fresh cases, and many more of them.
export PROPTEST_RNG_SEED="${PROPTEST_RNG_SEED:-20261127}"
started=$(date +%s)

# Everything printed also goes to a log, from which the totals are counted at the end.
logdir=$(mktemp -d /tmp/evoucher-test.XXXXXX)
exec > >(tee "$logdir/all.log") 2>&1

step() { printf '\n==> %s (%s)\n' "$*" "$(date -u +%H:%M:%S)"; }

pgdir=""
finish() {
  local rc=$?
  [ -n "$pgdir" ] && { scripts/pg.sh stop "$pgdir"; rm -rf "$pgdir"; }
  sleep 1 # let tee write the last lines to the log before they are counted
  # Totals: Rust ("test result: …"), Kotlin (surefire's summary lines), Python (pytest),
  # browser (node --test).
  python3 - "$logdir/all.log" "$rc" "$(( $(date +%s) - started ))" <<'PY' || true
import re, sys
text = open(sys.argv[1], errors="replace").read()
rc, secs = int(sys.argv[2]), int(sys.argv[3])
rust = [tuple(map(int, m)) for m in re.findall(r"test result: \w+\. (\d+) passed; (\d+) failed; (\d+) ignored", text)]
r = [sum(x[i] for x in rust) for i in range(3)]
kt = re.findall(r"Tests run: (\d+), Failures: (\d+), Errors: (\d+), Skipped: (\d+)\s*$", text, re.M)
# One summary line per Maven run (the SDK's, the app's).
k = [sum(int(t[0]) - sum(map(int, t[1:])) for t in kt), sum(int(t[1]) + int(t[2]) for t in kt), sum(int(t[3]) for t in kt)]
py = [0, 0, 0]
for m in re.finditer(r"^=*\s*(\d+ (?:passed|failed|skipped)(?:, \d+ (?:passed|failed|skipped|errors?))*) in [\d.]+s", text, re.M):
    for n, what in re.findall(r"(\d+) (passed|failed|skipped|errors?)", m.group(1)):
        py[{"passed": 0, "failed": 1, "skipped": 2}.get(what, 1)] += int(n)
# Node's test runner (the browser tests) ends with "# pass N", "# fail N", "# skipped N".
nd = [sum(int(n) for n in re.findall(rf"^# {w} (\d+)\s*$", text, re.M)) for w in ("pass", "fail", "skipped")]
tot = [r[i] + k[i] + py[i] + nd[i] for i in range(3)]
print(f"\n==> totals: {tot[0]} passed, {tot[1]} failed, {tot[2]} skipped "
      f"(Rust {r[0]}/{r[1]}/{r[2]}, Kotlin {k[0]}/{k[1]}/{k[2]}, Python {py[0]}/{py[1]}/{py[2]}, "
      f"browser {nd[0]}/{nd[1]}/{nd[2]}; "
      f"passed/failed/skipped) in {secs // 60} min {secs % 60} s; "
      + ("all tests passed" if rc == 0 else f"FAILED (exit {rc})"))
PY
  rm -rf "$logdir"
}
trap finish EXIT

step "checking tools"
need_apt=()
command -v cargo >/dev/null || { echo "Rust (cargo) is required: see README" >&2; exit 2; }
command -v python3 >/dev/null || need_apt+=(python3)
python3 -c 'import venv, ensurepip' 2>/dev/null || need_apt+=(python3-venv)
command -v cc >/dev/null || need_apt+=(build-essential)
# libclang: bindgen builds the V4L bindings of the optional `camera` feature, compiled below.
dpkg -s libclang-dev >/dev/null 2>&1 || need_apt+=(libclang-dev)
# The Kotlin SDK builds with Maven on JDK 17 (JVM tests against the host build of the JNI lib).
command -v mvn >/dev/null || need_apt+=(maven)
command -v javac >/dev/null || need_apt+=(openjdk-17-jdk-headless)
command -v nm >/dev/null || need_apt+=(binutils)
# poppler renders the server's voucher letters (pdftoppm at 150 dpi) for the scanner to read back
# and lists the fonts they embed (pdffonts).
command -v pdftoppm >/dev/null || need_apt+=(poppler-utils)
command -v psql >/dev/null || need_apt+=(postgresql)
# The back office is tested in Debian's chromium, driven from Node by playwright-core (npm).
command -v chromium >/dev/null || need_apt+=(chromium)
command -v node >/dev/null || need_apt+=(nodejs)
command -v npm >/dev/null || need_apt+=(npm)
# curl runs the walk-through in docs/server.md as written.
command -v curl >/dev/null || need_apt+=(curl)
# setpriv runs a read-only-ledger test as an unprivileged user when the tests run as root.
command -v setpriv >/dev/null || need_apt+=(util-linux)
# Noto fonts: letters for names in other scripts (Cyrillic, Arabic, Ethiopic, Devanagari).
[ -f /usr/share/fonts/truetype/noto/NotoSansEthiopic-Regular.ttf ] || need_apt+=(fonts-noto-core)
if [ ${#need_apt[@]} -gt 0 ]; then
  step "installing ${need_apt[*]} (apt-get)"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}"
fi
rustup component list --installed 2>/dev/null | grep -q rustfmt || rustup component add rustfmt clippy || true

if [ ! -d ../shared/vectors ]; then
  echo "../shared (test data beside the repository) is missing" >&2
  exit 2
fi

step "rustfmt"
cargo fmt --all -- --check

step "clippy"
cargo clippy --workspace --all-targets --quiet -- -D warnings

step "cargo test"
cargo test --workspace

# The same test binaries again (`--workspace`, so nothing is rebuilt: `-p` would resolve other
# features and build the server and the CLI a second time), each test on a fresh database of its
# own on a throwaway cluster. Every server test file runs; of the CLI's, those that start
# `evoucher serve` on the test database (the others use SQLite files of their own).
step "server tests again on PostgreSQL (Debian package, a throwaway cluster on loopback)"
pgdir=$(mktemp -d /tmp/evoucher-pg.XXXXXX)
pg_url=$(scripts/pg.sh start "$pgdir" ${EVOUCHER_PG_PORT:-})
server_tests=()
for f in server/tests/*.rs; do server_tests+=(--test "$(basename "$f" .rs)"); done
EVOUCHER_TEST_POSTGRES="$pg_url" cargo test --workspace "${server_tests[@]}"
EVOUCHER_TEST_POSTGRES="$pg_url" cargo test --workspace --test cli --test server --test reimbursement -- \
  server_killed_mid_push two_server_processes twenty_devices people_commands a_phone_claims

step "camera feature compiles (webcam scanning through nokhwa/V4L)"
cargo check --quiet -p evoucher --features camera

# `mvn test` in $1 under -Xcheck:jni: fails on a failed test or any JNI warning.
jvm_tests() {
  local log
  log=$(mktemp)
  (cd "$1" && mvn -B -ntp test) 2>&1 | tee "$log" | grep -E "Tests run:|BUILD|ERROR|WARNING in native method|FATAL ERROR" || true
  if grep -qE "WARNING in native method|FATAL ERROR in native method" "$log" "$1"/target/surefire-reports/*.txt 2>/dev/null; then
    echo "JNI warnings under -Xcheck:jni (see above)" >&2
    exit 1
  fi
  grep -q "BUILD SUCCESS" "$log" || { echo "$2 tests failed" >&2; exit 1; }
}

step "Kotlin SDK on the JVM through JNI (-Xcheck:jni; any JNI warning fails)"
cargo build --quiet -p evoucher-jni
jvm_tests android/sdk "Kotlin SDK"

step "Android: the JNI library for a phone (arm64-v8a), the app's APK, the SDK's AAR (scripts/build-android.sh)"
ABIS=arm64-v8a bash scripts/build-android.sh

step "Android app on the JVM (Robolectric, the host JNI library, a real evoucher serve; screenshots)"
cargo build --quiet -p evoucher -p evoucher-jni
jvm_tests android/app "Android app"
echo "screenshots: android/app/target/screenshots"

step "python: cross-checks (cbor2, cryptography, PyJWT) and the OpenAPI checks (not our code)"
if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
.venv/bin/pip install --quiet --disable-pip-version-check -r test-vectors/python/requirements.txt \
  -r server/tests/python/requirements.txt
cargo build --quiet -p evoucher
# test-vectors/python: cross-checks; server/tests/python: the OpenAPI document validated and
# every documented operation fed malformed input against the real `evoucher serve`.
EVOUCHER_BIN="$root/target/debug/evoucher" .venv/bin/python -m pytest -q test-vectors/python server/tests/python

step "back office in a real browser (chromium driven by playwright-core; an OpenID Connect provider)"
npm ci --prefix server/tests/browser --no-audit --no-fund --loglevel=error
# One file at a time (each starts its own server; the first clears the screenshots).
EVOUCHER_BIN="$root/target/debug/evoucher" CHROMIUM="$(command -v chromium)" \
  node --test --test-concurrency=1 server/tests/browser/backoffice.test.mjs \
  server/tests/browser/oidc.test.mjs server/tests/browser/claims.test.mjs

fuzz_secs="${FUZZ_SECONDS:-30}"
if [ "$fuzz_secs" != "0" ]; then
  step "fuzz (${fuzz_secs}s per target)"
  scripts/fuzz.sh "$fuzz_secs" decode
  scripts/fuzz.sh "$fuzz_secs" scan_frame
  scripts/fuzz.sh "$fuzz_secs" roster
  scripts/fuzz.sh "$fuzz_secs" entries
  scripts/fuzz.sh "$fuzz_secs" payable
  scripts/fuzz.sh "$fuzz_secs" answers
fi
