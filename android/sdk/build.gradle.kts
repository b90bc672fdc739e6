// The Kotlin SDK as an Android library (AAR). Needs the Android SDK and Gradle; the JNI
// libraries for each ABI are built by scripts/build-android.sh (cargo-ndk) into
// src/main/jniLibs/<abi>/libevoucher_jni.so. On machines without the SDK the same sources are
// built and tested on the JVM with Maven (pom.xml).
plugins {
    id("com.android.library") version "8.7.3"
    id("org.jetbrains.kotlin.android") version "2.2.21"
}

android {
    namespace = "org.evoucher.sdk"
    compileSdk = 35
    defaultConfig {
        minSdk = 24
        consumerProguardFiles("consumer-rules.pro")
    }
    sourceSets["main"].java.srcDirs("src/main/kotlin")
    sourceSets["main"].jniLibs.srcDirs("src/main/jniLibs")
    compileOptions {
        sourceCompatibility = JavaVersion.VERSION_17
        targetCompatibility = JavaVersion.VERSION_17
    }
    kotlinOptions { jvmTarget = "17" }
}

dependencies {
    implementation("org.jetbrains.kotlinx:kotlinx-coroutines-android:1.10.2")
    // org.json is part of the Android platform.
}
