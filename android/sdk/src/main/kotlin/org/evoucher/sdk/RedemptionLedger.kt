package org.evoucher.sdk

import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.withContext
import org.json.JSONArray
import org.json.JSONObject

/**
 * The device's redemption ledger (SQLite file at [path], with the device key beside it, made on
 * first use). Redemptions happen exactly once, are durable when [redeem] returns, and are
 * hash-chained and signed by the device. A ledger that cannot be opened throws
 * [LedgerException] and is left untouched. Thread-safe. Close it when done.
 */
class RedemptionLedger(path: String) : NativeObject(Native.ledgerOpen(path), Native::ledgerDestroy) {

    /**
     * Verify [text] with [verifier] and record its redemption. **Blocking** (disk write and
     * fsync; use [redeemSuspend] from the main thread).
     *
     * @throws InvalidVoucherException the voucher does not verify.
     * @throws AlreadyRedeemedException a single-use voucher was redeemed before (when, where).
     * @throws InsufficientBalanceException the request exceeds what remains.
     * @throws WrongProviderException, CategoryNotAllowedException, NotYetValidException,
     *   ExpiredException, RevokedException, RedemptionRefusedException the other refusals.
     */
    fun redeem(
        verifier: Verifier,
        text: String,
        provider: String,
        device: String,
        category: String? = null,
        request: RedeemRequest = RedeemRequest.Whole,
        nowEpochSeconds: Long = System.currentTimeMillis() / 1000,
    ): Receipt = withHandle { h ->
        verifier.withHandle { v ->
            val j = JSONObject(Native.ledgerRedeem(h, v, text, provider, category, device, request.toJson(), nowEpochSeconds))
            val remaining = j.getJSONObject("remaining")
            Receipt(
                LedgerEntry.from(j.getJSONObject("entry")),
                if (remaining.isNull("amount")) null else remaining.getLong("amount"),
                remaining.optJSONArray("items").objects().associate { it.getString("code") to it.getLong("quantity") },
            )
        }
    }

    /** [redeem] on [Dispatchers.IO]. */
    suspend fun redeemSuspend(
        verifier: Verifier, text: String, provider: String, device: String, category: String? = null,
        request: RedeemRequest = RedeemRequest.Whole, nowEpochSeconds: Long = System.currentTimeMillis() / 1000,
    ): Receipt = withContext(Dispatchers.IO) { redeem(verifier, text, provider, device, category, request, nowEpochSeconds) }

    /** Undo a redemption by appending a void entry (the original stays). **Blocking**. */
    fun void(entryId: String, provider: String, device: String, nowEpochSeconds: Long = System.currentTimeMillis() / 1000): LedgerEntry =
        withHandle { h -> LedgerEntry.from(JSONObject(Native.ledgerVoid(h, entryId, provider, device, nowEpochSeconds))) }

    /** Entries with sequence number above [afterSeq], in order. **Blocking**. */
    fun entries(afterSeq: Long = 0, limit: Int = 1000): List<LedgerEntry> =
        withHandle { h -> LedgerEntry.list(Native.ledgerEntries(h, afterSeq, limit)) }

    /** Entries the server has not acknowledged yet, in order. **Blocking**. */
    fun outbox(limit: Int = 500): List<LedgerEntry> = withHandle { h -> LedgerEntry.list(Native.ledgerOutbox(h, limit)) }

    /** Record the server's acknowledgement (all or nothing). Returns how many were new. **Blocking**. */
    fun markSynced(entryIds: List<String>, nowEpochSeconds: Long = System.currentTimeMillis() / 1000): Int =
        withHandle { h -> Native.ledgerMarkSynced(h, JSONArray(entryIds).toString(), nowEpochSeconds) }

    /** Add cancelled voucher ids (hex) with their revocation times. **Blocking**. */
    fun addRevocations(revokedAt: Map<String, Long>): Int = withHandle { h ->
        Native.ledgerAddRevocations(h, JSONArray(revokedAt.map { (id, at) -> JSONObject().put("id", id).put("revoked_at", at) }).toString())
    }

    /** Check the hash chain and every device signature. **Blocking** (reads the whole ledger). */
    fun verifyChain(): ChainStatus = withHandle { h ->
        val j = JSONObject(Native.ledgerVerifyChain(h))
        if (j.getBoolean("intact")) ChainStatus(true, j.getLong("entries"), null, null)
        else ChainStatus(false, 0, j.getLong("seq"), j.getString("problem"))
    }

    /**
     * What [redeem] would decide for [text], writing nothing: the verdict the provider sees
     * before confirming (valid with what remains, refused with why, or invalid). **Blocking**.
     */
    fun check(
        verifier: Verifier,
        text: String,
        request: RedeemRequest = RedeemRequest.Whole,
        provider: String? = null,
        category: String? = null,
        nowEpochSeconds: Long = System.currentTimeMillis() / 1000,
    ): Verdict = withHandle { h ->
        verifier.withHandle { v -> Verdict.from(JSONObject(Native.ledgerCheck(h, v, text, provider, category, request.toJson(), nowEpochSeconds))) }
    }

    /** One page of redemptions, newest first, with the totals of all that match. **Blocking**. */
    fun history(filter: HistoryFilter = HistoryFilter()): HistoryPage =
        withHandle { h -> HistoryPage.from(JSONObject(Native.ledgerHistory(h, filter.toJson()))) }

    /**
     * The sync panel: last sync, waiting entries, stale lists (older than [staleAfterSeconds])
     * and clock warnings. **Blocking**.
     */
    fun status(staleAfterSeconds: Long = 3 * 86_400, nowEpochSeconds: Long = System.currentTimeMillis() / 1000): SyncStatus =
        withHandle { h -> SyncStatus.from(JSONObject(Native.ledgerStatus(h, staleAfterSeconds, nowEpochSeconds))) }

    /** Write every entry as CSV to [path] (replaced atomically). Returns the number of entries. **Blocking**. */
    fun exportCsv(path: String): Int = withHandle { h -> Native.ledgerExportCsv(h, path) }

    /**
     * Queue a claim for these redemptions (entry ids), or for every unclaimed accepted one up
     * to [upTo] when [redemptions] is null; with photos or PDFs ([documents]: name to file,
     * kept until sent). The next [ServerSync.sendClaims] sends it. **Blocking**.
     *
     * @throws LedgerException a document is not a JPEG, PNG or PDF, or too large.
     */
    fun queueClaim(
        program: String, redemptions: List<String>?, upTo: Long?, note: String?, documents: Map<String, java.io.File>,
        key: String = java.util.UUID.randomUUID().toString(), nowEpochSeconds: Long = System.currentTimeMillis() / 1000,
    ): QueuedClaim = withHandle { h ->
        val req = JSONObject().put("key", key).put("program", program)
        redemptions?.let { req.put("redemptions", JSONArray(it)) }
        upTo?.let { req.put("up_to", it) }
        note?.let { req.put("note", it) }
        QueuedClaim.from(JSONObject(Native.claimQueue(h, req.toString(), null, docs(documents), nowEpochSeconds)))
    }

    /** Queue the answer to a claim the reviewer returned: a note and more documents. **Blocking**. */
    fun queueAnswer(
        claimId: String, note: String?, documents: Map<String, java.io.File>,
        key: String = java.util.UUID.randomUUID().toString(), nowEpochSeconds: Long = System.currentTimeMillis() / 1000,
    ): QueuedClaim = withHandle { h ->
        val req = JSONObject().put("key", key)
        note?.let { req.put("note", it) }
        QueuedClaim.from(JSONObject(Native.claimQueue(h, req.toString(), claimId, docs(documents), nowEpochSeconds)))
    }

    /** The claim outbox and the claims as the server last listed them. **Blocking**. */
    fun claims(): Claims = withHandle { h -> Claims.from(JSONObject(Native.claimList(h))) }

    private fun docs(d: Map<String, java.io.File>) =
        JSONArray(d.map { (name, f) -> JSONObject().put("name", name).put("path", f.path) }).toString()
}
