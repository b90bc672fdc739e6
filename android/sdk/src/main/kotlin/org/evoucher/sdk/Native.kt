package org.evoucher.sdk

import java.nio.ByteBuffer

/**
 * The JNI entry points of `libevoucher_jni`. Internal: use [Verifier], [VoucherScanner] and
 * [RedemptionLedger]. Every function here has exactly one exported native symbol and the other
 * way round (checked by `NativeSymbolsTest`). Structured results are JSON strings.
 */
internal object Native {
    init {
        val explicit = System.getProperty("evoucher.native.lib")
        if (explicit != null) System.load(explicit) else System.loadLibrary("evoucher_jni")
    }

    @JvmStatic external fun verifierNew(jwks: String?): Long
    @JvmStatic external fun verifierDestroy(handle: Long)
    @JvmStatic external fun verifierVerify(handle: Long, text: String?, now: Long): String

    @JvmStatic external fun scannerNew(budgetMs: Int, forgetAfterFrames: Int): Long
    @JvmStatic external fun scannerDestroy(handle: Long)
    @JvmStatic external fun scannerFeed(handle: Long, buffer: ByteBuffer?, width: Int, height: Int, rowStride: Int, rotation: Int): String?
    @JvmStatic external fun scanFrame(buffer: ByteBuffer?, width: Int, height: Int, rowStride: Int, rotation: Int, budgetMs: Int): String
    @JvmStatic external fun benchScanLoop(buffer: ByteBuffer?, width: Int, height: Int, rowStride: Int, iterations: Int): Long

    @JvmStatic external fun ledgerOpen(path: String?): Long
    @JvmStatic external fun ledgerDestroy(handle: Long)
    @JvmStatic external fun ledgerRedeem(
        handle: Long, verifier: Long, text: String?, provider: String?, category: String?,
        device: String?, request: String?, now: Long,
    ): String
    @JvmStatic external fun ledgerVoid(handle: Long, entryId: String?, provider: String?, device: String?, now: Long): String
    @JvmStatic external fun ledgerEntries(handle: Long, afterSeq: Long, limit: Int): String
    @JvmStatic external fun ledgerOutbox(handle: Long, limit: Int): String
    @JvmStatic external fun ledgerMarkSynced(handle: Long, idsJson: String?, now: Long): Int
    @JvmStatic external fun ledgerAddRevocations(handle: Long, json: String?): Int
    @JvmStatic external fun ledgerVerifyChain(handle: Long): String
    @JvmStatic external fun ledgerStats(handle: Long): String

    @JvmStatic external fun ledgerCheck(
        handle: Long, verifier: Long, text: String?, provider: String?, category: String?, request: String?, now: Long,
    ): String
    @JvmStatic external fun ledgerHistory(handle: Long, filter: String?): String
    @JvmStatic external fun ledgerExportCsv(handle: Long, path: String?): Int
    @JvmStatic external fun ledgerStatus(handle: Long, staleAfter: Long, now: Long): String
    @JvmStatic external fun enrolBody(handle: Long, code: String?): String
    @JvmStatic external fun enrolApply(handle: Long, server: String?, status: Int, body: String?): String

    @JvmStatic external fun syncNew(ledger: Long, trustPath: String?): Long
    @JvmStatic external fun syncDestroy(handle: Long)
    @JvmStatic external fun syncNext(handle: Long, ledger: Long): String?
    @JvmStatic external fun syncAnswer(handle: Long, ledger: Long, status: Int, etag: String?, date: String?, body: String?)
    @JvmStatic external fun syncReport(handle: Long): String

    @JvmStatic external fun claimQueue(handle: Long, request: String?, claimId: String?, documents: String?, now: Long): String
    @JvmStatic external fun claimList(handle: Long): String
    @JvmStatic external fun claimRunNew(): Long
    @JvmStatic external fun claimRunDestroy(handle: Long)
    @JvmStatic external fun claimRunNext(handle: Long, ledger: Long): String?
    @JvmStatic external fun claimRunAnswer(handle: Long, ledger: Long, status: Int, body: String?): String

    /** Boundary self-test: 0 → 42, 1 → a panic (as [NativePanicException]), 2 → [LedgerException]. */
    @JvmStatic external fun selfTest(kind: Int): Int
}
