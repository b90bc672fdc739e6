// The provider app with the Android Gradle plugin, for machines that have the Android SDK.
// NOT BUILT HERE: this workplace has no Android SDK or Gradle able to run the plugin; the APKs
// are built by scripts/build-android.sh (aapt, Kotlin with Maven, R8, apksigner), which is
// what the tests check. Kept in step with pom.xml and the manifest by hand.
plugins {
    id("com.android.application") version "8.7.3"
    id("org.jetbrains.kotlin.android") version "2.2.21"
}

android {
    namespace = "org.evoucher.app"
    compileSdk = 34
    defaultConfig {
        applicationId = "org.evoucher.app"
        minSdk = 24
        targetSdk = 34
        versionCode = 1
        versionName = "0.1.0"
    }
    sourceSets["main"].java.srcDirs("src/main/kotlin")
    buildTypes {
        release {
            isMinifyEnabled = true
            proguardFiles("proguard-rules.pro")
        }
    }
    splits {
        abi {
            isEnable = true
            reset()
            include("arm64-v8a", "x86_64")
            isUniversalApk = true
        }
    }
    compileOptions {
        sourceCompatibility = JavaVersion.VERSION_17
        targetCompatibility = JavaVersion.VERSION_17
    }
    kotlinOptions { jvmTarget = "17" }
    testOptions { unitTests.isIncludeAndroidResources = true }
}

dependencies {
    implementation(project(":sdk"))
    testImplementation("junit:junit:4.13.2")
    testImplementation("org.robolectric:robolectric:4.16")
}
