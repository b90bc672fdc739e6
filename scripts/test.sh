#!/usr/bin/env bash
# Every test evoucher has, on a fresh machine: installs what it needs, then runs
#   rustfmt and clippy checks, the Rust tests (unit, vectors, cross-vectors, property, CLI),
#   the scanner on the shared QR samples, the independent Python cross-checks (cbor2,
#   cryptography, PyJWT), the server's tests a second time on a real PostgreSQL, a compile of the optional camera feature, and bounded fuzz runs.
# Environment: FUZZ_SECONDS (default 30; 0 skips fuzzing).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
export CARGO_TERM_COLOR=never

step() { printf '\n==> %s\n' "$*"; }

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

step "server tests again on PostgreSQL (Debian package, a throwaway cluster on loopback)"
pgdir=$(mktemp -d /tmp/evoucher-pg.XXXXXX)
pg_url=$(scripts/pg.sh start "$pgdir" ${EVOUCHER_PG_PORT:-})
trap 'scripts/pg.sh stop "$pgdir"; rm -rf "$pgdir"' EXIT
EVOUCHER_TEST_POSTGRES="$pg_url" cargo test -p evoucher-server
EVOUCHER_TEST_POSTGRES="$pg_url" cargo test -p evoucher --test cli server_

step "camera feature compiles (webcam scanning through nokhwa/V4L)"
cargo check --quiet -p evoucher --features camera

step "Kotlin SDK on the JVM through JNI (-Xcheck:jni; any JNI warning fails)"
cargo build --quiet -p evoucher-jni
log=$(mktemp)
(cd android/sdk && mvn -B -ntp test) 2>&1 | tee "$log" | grep -E "Tests run:|BUILD|ERROR|WARNING in native method|FATAL ERROR" || true
if grep -qE "WARNING in native method|FATAL ERROR in native method" "$log" android/sdk/target/surefire-reports/*.txt 2>/dev/null; then
  echo "JNI warnings under -Xcheck:jni (see above)" >&2
  exit 1
fi
grep -q "BUILD SUCCESS" "$log" || { echo "Kotlin SDK tests failed" >&2; exit 1; }

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

fuzz_secs="${FUZZ_SECONDS:-30}"
if [ "$fuzz_secs" != "0" ]; then
  step "fuzz (${fuzz_secs}s per target)"
  scripts/fuzz.sh "$fuzz_secs" decode
  scripts/fuzz.sh "$fuzz_secs" scan_frame
  scripts/fuzz.sh "$fuzz_secs" roster
fi

step "all tests passed"
