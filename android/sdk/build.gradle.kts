// The Kotlin SDK as an Android library (AAR), for machines with the Android SDK and Gradle.
// NOT BUILT HERE: scripts/build-android.sh builds the AAR without Gradle (android/build/maven)
// and copies the JNI library of each ABI into src/main/jniLibs/<abi>/ for this file to use.
// The same sources are built and tested on the JVM with Maven (pom.xml).
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
