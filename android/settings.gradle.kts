// The SDK and the app together, for machines with the Android SDK and Gradle (not built here:
// scripts/build-android.sh is the build this repository tests).
pluginManagement {
    repositories { google(); mavenCentral(); gradlePluginPortal() }
}
dependencyResolutionManagement {
    repositories { google(); mavenCentral() }
}
rootProject.name = "evoucher-android"
include(":sdk", ":app")
