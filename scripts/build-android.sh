#!/usr/bin/env bash
# Build the JNI library for arm64-v8a, armeabi-v7a and x86_64 with cargo-ndk and assemble the
# SDK's AAR with Gradle. Needs: the Android SDK (ANDROID_HOME or ANDROID_SDK_ROOT), an NDK
# (ANDROID_NDK_HOME, or ndk/<version> under the SDK), the rustup targets aarch64-linux-android,
# armv7-linux-androideabi and x86_64-linux-android, cargo-ndk, and Gradle. Where any is missing
# it says exactly which and exits 1 without building anything.
set -euo pipefail
cd "$(dirname "$0")/.."
missing=()
sdk="${ANDROID_HOME:-${ANDROID_SDK_ROOT:-}}"
[ -n "$sdk" ] && [ -d "$sdk" ] || missing+=("Android SDK: set ANDROID_HOME (or ANDROID_SDK_ROOT) to an installed SDK")
ndk="${ANDROID_NDK_HOME:-}"
if [ -z "$ndk" ] && [ -n "$sdk" ] && [ -d "$sdk/ndk" ]; then
  ndk=$(ls -d "$sdk"/ndk/* 2>/dev/null | sort -V | tail -n 1 || true)
fi
[ -n "$ndk" ] && [ -d "$ndk" ] || missing+=("Android NDK: set ANDROID_NDK_HOME, or install one under \$ANDROID_HOME/ndk (sdkmanager 'ndk;27.2.12479018')")
targets=(aarch64-linux-android armv7-linux-androideabi x86_64-linux-android)
installed=$(rustup target list --installed 2>/dev/null || true)
for t in "${targets[@]}"; do
  grep -qx "$t" <<<"$installed" || missing+=("rustup target $t: rustup target add $t")
done
cargo ndk --version >/dev/null 2>&1 || missing+=("cargo-ndk: cargo install cargo-ndk")
command -v gradle >/dev/null 2>&1 || [ -x android/sdk/gradlew ] || missing+=("Gradle 8.9+ on PATH (or a wrapper in android/sdk)")
if [ ${#missing[@]} -gt 0 ]; then
  echo "build-android.sh cannot build the AAR on this machine; missing:" >&2
  for m in "${missing[@]}"; do echo "  - $m" >&2; done
  exit 1
fi
export ANDROID_NDK_HOME="$ndk"
cargo ndk -t arm64-v8a -t armeabi-v7a -t x86_64 -o android/sdk/src/main/jniLibs \
  build --release -p evoucher-jni
cd android/sdk
if [ -x ./gradlew ]; then ./gradlew assembleRelease; else gradle assembleRelease; fi
echo "AAR: $(ls build/outputs/aar/*.aar)"
