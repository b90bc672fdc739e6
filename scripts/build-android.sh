#!/usr/bin/env bash
# Builds the provider app and the SDK for Android without Gradle or the Android SDK:
#   1. the JNI library (android/jni) for each ABI, with $ANDROID_NDK_HOME when there is one,
#      otherwise with ../shared/android-sysroot and Debian's clang-19/lld-19;
#   2. the SDK (Maven) and the app's resources (aapt: R.java and the resource table);
#   3. the app's Kotlin (Maven, against the framework jar org.robolectric:android-all);
#   4. dex and shrink with R8 (com.android.tools:r8 from Maven Central);
#   5. one APK per ABI and a universal one: aapt add, zipalign, apksigner (a debug key made on
#      the spot, or the release key from EVOUCHER_KEYSTORE / EVOUCHER_KEYSTORE_PASS /
#      EVOUCHER_KEY_ALIAS), checked with `apksigner verify` and `aapt dump badging`;
#   6. the SDK as an AAR with a POM in a local Maven repository folder (android/build/maven).
# Out: android/build/apk/evoucher-<abi>.apk, evoucher-universal.apk; android/build/maven.
# Environment: ABIS (default "arm64-v8a x86_64"), SKIP_APP_TESTS=1 (default; scripts/test.sh
# runs the app's tests itself), PROFILE (release).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
abis=${ABIS:-"arm64-v8a x86_64"}
out=$root/android/build
api=24
compile_sdk_jar_version=14-robolectric-10818077
r8_version=8.5.35
mkdir -p "$out"
step() { printf '\n==> %s (%s)\n' "$*" "$(date -u +%H:%M:%S)"; }

step "tools"
need=()
command -v clang-19 >/dev/null || need+=(clang-19)
command -v ld.lld-19 >/dev/null || need+=(lld-19)
command -v llvm-strip-19 >/dev/null || need+=(llvm-19)
command -v aapt >/dev/null || need+=(aapt)
command -v zipalign >/dev/null || need+=(zipalign)
command -v apksigner >/dev/null || need+=(apksigner)
command -v mvn >/dev/null || need+=(maven)
command -v keytool >/dev/null || need+=(openjdk-17-jdk-headless)
command -v zip >/dev/null || need+=(zip)
command -v unzip >/dev/null || need+=(unzip)
if [ ${#need[@]} -gt 0 ]; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}"
fi

triple_of() {
  case $1 in
    arm64-v8a) echo aarch64-linux-android ;;
    x86_64) echo x86_64-linux-android ;;
    *) echo "unknown ABI $1" >&2; exit 2 ;;
  esac
}

# ---------------------------------------------------------------- 1. JNI library
sysroot=""
if [ -z "${ANDROID_NDK_HOME:-}" ]; then
  sysroot=$(cd ../shared/android-sysroot/sysroot 2>/dev/null && pwd) || {
    echo "no ANDROID_NDK_HOME and no ../shared/android-sysroot: cannot link for Android" >&2
    exit 2
  }
fi
wrappers=$out/toolchain
mkdir -p "$wrappers"
for abi in $abis; do
  t=$(triple_of "$abi")
  rustup target list --installed | grep -qx "$t" || rustup target add "$t"
  if [ -n "${ANDROID_NDK_HOME:-}" ]; then
    cc=$(ls "$ANDROID_NDK_HOME"/toolchains/llvm/prebuilt/*/bin/"$t$api"-clang | head -1)
    ar=$(ls "$ANDROID_NDK_HOME"/toolchains/llvm/prebuilt/*/bin/llvm-ar | head -1)
    strip=$(ls "$ANDROID_NDK_HOME"/toolchains/llvm/prebuilt/*/bin/llvm-strip | head -1)
  else
    # The linker wrapper's name must end in -clang (rustc passes raw ld flags to a *-ld).
    cc=$wrappers/$t$api-clang
    printf '#!/bin/sh\nexec clang-19 --target=%s%s --sysroot=%s -fuse-ld=lld "$@"\n' "$t" "$api" "$sysroot" >"$cc"
    printf '#!/bin/sh\nexec clang-19 --target=%s%s --sysroot=%s -fuse-ld=lld -Wl,--no-undefined "$@"\n' \
      "$t" "$api" "$sysroot" >"$cc-link-clang"
    chmod +x "$cc" "$cc-link-clang"
    ar=llvm-ar-19
    strip=llvm-strip-19
  fi
  step "JNI library for $abi ($t)"
  u=$(echo "$t" | tr 'a-z-' 'A-Z_')
  l=$(echo "$t" | tr '-' '_')
  linker=$cc
  [ -z "${ANDROID_NDK_HOME:-}" ] && linker=$cc-link-clang
  env "CC_$l=$cc" "AR_$l=$ar" "CARGO_TARGET_${u}_LINKER=$linker" \
    cargo build --release --quiet --target "$t" -p evoucher-jni
  mkdir -p "$out/lib/$abi" "android/sdk/src/main/jniLibs/$abi"
  "$strip" --strip-unneeded -o "$out/lib/$abi/libevoucher_jni.so" "target/$t/release/libevoucher_jni.so"
  # For the Gradle build (android/sdk/build.gradle.kts), on machines that have one.
  cp "$out/lib/$abi/libevoucher_jni.so" "android/sdk/src/main/jniLibs/$abi/"
  ls -l "$out/lib/$abi/libevoucher_jni.so" | awk '{print "   " $5 " bytes"}'
done

# ---------------------------------------------------------------- 2. SDK, resources
step "SDK (Maven, JVM tests skipped here: scripts/test.sh runs them)"
(cd android/sdk && mvn -B -ntp -q install -DskipTests)
framework=$HOME/.m2/repository/org/robolectric/android-all/$compile_sdk_jar_version/android-all-$compile_sdk_jar_version.jar
[ -f "$framework" ] || (cd android/app && mvn -B -ntp -q dependency:get -Dartifact=org.robolectric:android-all:$compile_sdk_jar_version -Dtransitive=false)

step "resources (aapt): R.java and the resource table"
app=android/app
gen=$app/target/generated-sources/aapt
rm -rf "$gen" && mkdir -p "$gen" "$app/target/test-config"
aapt package -f -m --auto-add-overlay -J "$gen" -M "$app/src/main/AndroidManifest.xml" -S "$app/src/main/res" \
  -I "$framework" --min-sdk-version $api --target-sdk-version 34 --version-code 1 --version-name 0.1.0 \
  -F "$out/resources.ap_"
# What Robolectric reads to load the app's resources and manifest in the tests.
mkdir -p "$app/target/test-config/com/android/tools"
cat >"$app/target/test-config/com/android/tools/test_config.properties" <<EOF
android_merged_manifest=$root/$app/src/main/AndroidManifest.xml
android_resource_apk=$out/resources.ap_
android_custom_package=org.evoucher.app
EOF

# ---------------------------------------------------------------- 3. app classes
step "app (Maven: Kotlin against the framework jar)"
(cd "$app" && mvn -B -ntp -q package -DskipTests=${SKIP_APP_TESTS:-true})

# ---------------------------------------------------------------- 4. dex (R8)
step "dex and shrink (R8 $r8_version)"
r8=$HOME/.m2/repository/com/android/tools/r8/$r8_version/r8-$r8_version.jar
[ -f "$r8" ] || (cd "$app" && mvn -B -ntp -q dependency:get -Dartifact=com.android.tools:r8:$r8_version -Dtransitive=false)
rm -rf "$out/dex" && mkdir -p "$out/dex"
jars=("$app/target/evoucher-app-0.1.0.jar")
for j in "$app"/target/runtime-jars/*.jar; do
  case $(basename "$j") in
    annotations-*.jar) ;; # compile-time only
    json-*.jar) ;; # org.json is part of Android
    *) jars+=("$j") ;;
  esac
done
# android-all holds the framework without java.*: those come from the JDK (R8 reads a JDK home).
jdk=${JAVA_HOME:-$(dirname "$(dirname "$(readlink -f "$(command -v javac)")")")}
java -cp "$r8" com.android.tools.r8.R8 --release --min-api $api --lib "$framework" --lib "$jdk" \
  --pg-conf "$app/proguard-rules.pro" --pg-conf android/sdk/consumer-rules.pro \
  --output "$out/dex" "${jars[@]}" 2> >(grep -v "^Warning: Resource 'META-INF/" >&2)
ls -l "$out/dex/classes.dex" | awk '{print "   classes.dex: " $5 " bytes"}'

# ---------------------------------------------------------------- 5. APKs
keystore=${EVOUCHER_KEYSTORE:-$out/debug.keystore}
pass=${EVOUCHER_KEYSTORE_PASS:-android}
alias=${EVOUCHER_KEY_ALIAS:-androiddebugkey}
if [ -z "${EVOUCHER_KEYSTORE:-}" ] && [ ! -f "$keystore" ]; then
  keytool -genkeypair -keystore "$keystore" -storepass "$pass" -keypass "$pass" -alias "$alias" \
    -keyalg RSA -keysize 2048 -validity 10000 -dname "CN=evoucher debug" >/dev/null 2>&1
fi
mkdir -p "$out/apk"
package_apk() { # name, abis...
  local name=$1; shift
  local work=$out/pack-$name
  rm -rf "$work" && mkdir -p "$work"
  cp "$out/resources.ap_" "$work/unsigned.apk"
  cp "$out/dex/classes.dex" "$work/"
  (cd "$work" && aapt add unsigned.apk classes.dex >/dev/null)
  for abi in "$@"; do
    mkdir -p "$work/lib/$abi"
    cp "$out/lib/$abi/libevoucher_jni.so" "$work/lib/$abi/"
    # Deflated (the manifest has extractNativeLibs="true"): the download on prepaid data is
    # what counts, and the installer unpacks it once (docs/android.md).
    (cd "$work" && zip -q -9 unsigned.apk "lib/$abi/libevoucher_jni.so")
  done
  zipalign -f -p 4 "$work/unsigned.apk" "$work/aligned.apk"
  apksigner sign --ks "$keystore" --ks-pass "pass:$pass" --ks-key-alias "$alias" \
    --min-sdk-version $api --out "$out/apk/evoucher-$name.apk" "$work/aligned.apk"
  apksigner verify --min-sdk-version $api "$out/apk/evoucher-$name.apk"
  aapt dump badging "$out/apk/evoucher-$name.apk" | grep -E "^(package|sdkVersion|native-code)" | sed 's/^/   /'
  rm -rf "$work"
  printf '   %s: %s bytes\n' "evoucher-$name.apk" "$(stat -c %s "$out/apk/evoucher-$name.apk")"
}
step "APKs"
for abi in $abis; do package_apk "$abi" "$abi"; done
# shellcheck disable=SC2086
[ "$(echo $abis | wc -w)" -gt 1 ] && package_apk universal $abis

# ---------------------------------------------------------------- 6. AAR + POM
step "SDK as an AAR in a local Maven repository (android/build/maven)"
aar=$out/aar && rm -rf "$aar" && mkdir -p "$aar"
cp android/sdk/src/main/AndroidManifest.xml "$aar/"
cp android/sdk/target/evoucher-sdk-0.1.0.jar "$aar/classes.jar"
cp android/sdk/consumer-rules.pro "$aar/proguard.txt"
: >"$aar/R.txt"
for abi in $abis; do mkdir -p "$aar/jni/$abi" && cp "$out/lib/$abi/libevoucher_jni.so" "$aar/jni/$abi/"; done
repo=$out/maven/org/evoucher/evoucher-sdk/0.1.0
mkdir -p "$repo"
(cd "$aar" && rm -f "$repo/evoucher-sdk-0.1.0.aar" && zip -q -r "$repo/evoucher-sdk-0.1.0.aar" .)
cat >"$repo/evoucher-sdk-0.1.0.pom" <<'EOF'
<?xml version="1.0" encoding="UTF-8"?>
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>org.evoucher</groupId>
  <artifactId>evoucher-sdk</artifactId>
  <version>0.1.0</version>
  <packaging>aar</packaging>
  <dependencies>
    <dependency>
      <groupId>org.jetbrains.kotlin</groupId>
      <artifactId>kotlin-stdlib</artifactId>
      <version>2.2.21</version>
    </dependency>
    <dependency>
      <groupId>org.jetbrains.kotlinx</groupId>
      <artifactId>kotlinx-coroutines-android</artifactId>
      <version>1.10.2</version>
    </dependency>
  </dependencies>
</project>
EOF
for f in "$repo"/*.aar "$repo"/*.pom; do sha1sum "$f" | cut -d' ' -f1 >"$f.sha1"; done
ls -l "$repo" | awk 'NR>1 {print "   " $9 ": " $5 " bytes"}'
step "done: android/build/apk, android/build/maven"
