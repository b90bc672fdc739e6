package org.evoucher.sdk

import java.nio.file.Files
import org.junit.jupiter.api.Tag
import org.junit.jupiter.api.Test

/**
 * Benchmark, not a test (tag `bench`, excluded by default; `scripts/bench-jni.sh` runs it
 * against the release library): a 1280×720 frame scanned through JNI beside the same scan
 * looped inside Rust in the same run (goal: JNI overhead ≤ 5 %), and verify + redeem through
 * JNI per voucher (goal: under 1 ms).
 */
@Tag("bench")
class JniBench {
    @Test
    fun `scan through JNI vs in Rust, and verify plus redeem`() {
        val v = Support.vector("valid-inkind-single")
        val sym = Support.qrLuma(v)
        val (w, h) = 1280 to 720
        val buf = Support.frame(w, h, w, sym, (w - sym.first) / 2, (h - sym.second) / 2)
        check(VoucherScanner.scanOnce(buf, w, h, w).size == 1)
        val n = 2000
        repeat(300) { VoucherScanner.scanOnce(buf, w, h, w) }
        Native.benchScanLoop(buf, w, h, w, 300)
        // Interleave the two measurements to share the machine's state fairly.
        var jvmNs = 0L
        var rustNs = 0L
        repeat(4) {
            val t = System.nanoTime()
            repeat(n / 4) { VoucherScanner.scanOnce(buf, w, h, w) }
            jvmNs += System.nanoTime() - t
            rustNs += Native.benchScanLoop(buf, w, h, w, n / 4)
        }
        val perJvm = jvmNs / n / 1000.0
        val perRust = rustNs / n / 1000.0
        println("scan 1280x720 through JNI : %8.1f µs per frame".format(perJvm))
        println("scan 1280x720 inside Rust : %8.1f µs per frame".format(perRust))
        println("JNI overhead              : %8.2f %%   (goal <= 5 %%)".format((perJvm / perRust - 1) * 100))

        // Distinct single-use vouchers issued by `evoucher issue --csv` (scripts/bench-jni.sh).
        val dir = java.io.File(System.getProperty("evoucher.bench.vouchers") ?: error("run scripts/bench-jni.sh"))
        val texts = dir.resolve("batch/index.csv").readLines().drop(1).map { it.substringAfterLast(',') }
        val jwks = dir.resolve("trust.json").readText()
        Verifier(jwks).use { verifier ->
            RedemptionLedger(Files.createTempDirectory("evoucher-bench").resolve("l.db").toString()).use { l ->
                val warm = 200
                texts.take(warm).forEach { l.redeem(verifier, it, "SP", "d") }
                val rest = texts.drop(warm)
                val t = System.nanoTime()
                rest.forEach { l.redeem(verifier, it, "SP", "d") }
                val per = (System.nanoTime() - t) / rest.size / 1000.0
                println("verify + durable redeem through JNI: %8.1f µs per voucher over %d vouchers   (goal < 1000 µs)".format(per, rest.size))
            }
        }
    }
}
