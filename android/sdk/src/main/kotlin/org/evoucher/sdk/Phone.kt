package org.evoucher.sdk

import org.json.JSONObject

/** What a redemption of a scanned voucher would do, before the provider confirms. */
sealed class Verdict {
    /**
     * Valid and redeemable: [balanceAmount]/[balanceItems] are what the voucher holds now,
     * [remainingAmount]/[remainingItems] what would remain after the request checked.
     */
    data class Ok(
        val voucher: Voucher,
        val balanceAmount: Long?,
        val balanceItems: Map<String, Long>,
        val remainingAmount: Long?,
        val remainingItems: Map<String, Long>,
    ) : Verdict()

    /**
     * Valid but refused: [reason] is the stable code (`already_redeemed`, `expired`,
     * `not_yet_valid`, `revoked`, `wrong_provider`, `category_not_allowed`,
     * `insufficient_balance`, …) and [details] its fields (`at`, `provider`, `device` of an
     * earlier redemption).
     */
    data class Refused(val voucher: Voucher, val reason: String, val message: String, val details: JSONObject) : Verdict()

    /**
     * Not a voucher this phone can trust: [stage] is where it failed (`signature`, `kid`,
     * `expired`, …); [at] is the expiry (or start) time for `expired` (`not_yet_valid`).
     */
    data class Invalid(val stage: String, val message: String, val at: Long? = null) : Verdict()

    internal companion object {
        fun from(j: JSONObject): Verdict {
            val verified = j.getJSONObject("verified")
            val v = VerificationResult.from(verified)
            return when {
                v is VerificationResult.Invalid -> Invalid(v.stage, v.reason, if (verified.has("at")) verified.getLong("at") else null)
                j.getString("verdict") == "refused" -> {
                    val r = j.getJSONObject("refusal")
                    Refused((v as VerificationResult.Valid).voucher, r.getString("reason"), r.getString("message"), r)
                }
                else -> {
                    val rem = j.getJSONObject("remaining")
                    val bal = j.getJSONObject("balance")
                    Ok((v as VerificationResult.Valid).voucher, bal.amount(), bal.items(), rem.amount(), rem.items())
                }
            }
        }
    }
}

private fun JSONObject.amount(): Long? = if (isNull("amount")) null else getLong("amount")

private fun JSONObject.items(): Map<String, Long> =
    optJSONArray("items").objects().associate { it.getString("code") to it.getLong("quantity") }

/** What the history shows: every field optional. Times in seconds since the epoch. */
data class HistoryFilter(
    val from: Long? = null,
    val until: Long? = null,
    /** `waiting`, `accepted`, `claimed`, `paid`, `conflict`, `suspect`, `invalid` or `voided`. */
    val state: String? = null,
    /** A voucher id (or its start) or a beneficiary id. */
    val search: String? = null,
    val beforeSeq: Long? = null,
    val limit: Int? = null,
) {
    internal fun toJson(): String = JSONObject().apply {
        from?.let { put("from", it) }
        until?.let { put("until", it) }
        state?.let { put("state", it) }
        search?.let { put("search", it) }
        beforeSeq?.let { put("before_seq", it) }
        limit?.let { put("limit", it) }
    }.toString()
}

/** One redemption in the history. */
data class HistoryRow(
    val entry: LedgerEntry,
    /** `waiting`, `accepted`, `claimed`, `paid`, `conflict`, `suspect`, `invalid`, `synced` or `voided`. */
    val state: String,
    val reason: String?,
    val voidedBy: String?,
    val beneficiaryId: String?,
    val beneficiaryName: String?,
    val program: String?,
)

/** A page of the history and the totals (per currency, minor units) of every matching redemption. */
data class HistoryPage(val rows: List<HistoryRow>, val totals: Map<String, Long>, val count: Int) {
    internal companion object {
        fun from(j: JSONObject) = HistoryPage(
            j.getJSONArray("rows").objects().map {
                HistoryRow(
                    LedgerEntry.from(it.getJSONObject("entry")), it.getString("state"), it.optStringOrNull("reason"),
                    it.optStringOrNull("voided_by"), it.optStringOrNull("beneficiary_id"), it.optStringOrNull("beneficiary_name"),
                    it.optStringOrNull("program"),
                )
            },
            (0 until j.getJSONArray("totals").length()).associate { i ->
                j.getJSONArray("totals").getJSONArray(i).let { it.getString(0) to it.getLong(1) }
            },
            j.getInt("count"),
        )
    }
}

/** The device's enrolment as the ledger records it (the token is kept by the app, not here). */
data class Enrolment(val server: String, val deviceId: String, val provider: String, val category: String?)

/** The sync panel. */
data class SyncStatus(
    val now: Long,
    val lastSyncAt: Long?,
    val waiting: Long,
    val trustCheckedAt: Long?,
    val revocationsCheckedAt: Long?,
    val trustStale: Boolean,
    val revocationsStale: Boolean,
    /** `before_trust_check`, `before_last_entry`, `far_from_server` (with [clockOffset]). */
    val clockWarnings: List<String>,
    /** The server's clock minus the phone's at the last sync, when it was far off. */
    val clockOffset: Long?,
    val enrolment: Enrolment?,
    val devicePublicKey: String,
    val entries: Long,
) {
    val clockSuspect: Boolean get() = clockWarnings.isNotEmpty()

    internal companion object {
        private fun JSONObject.optLongOrNull(k: String): Long? = if (has(k) && !isNull(k)) getLong(k) else null

        fun from(j: JSONObject): SyncStatus {
            val clock = j.getJSONArray("clock").objects()
            return SyncStatus(
                j.getLong("now"), j.optLongOrNull("last_sync_at"), j.getLong("waiting"),
                j.optLongOrNull("trust_checked_at"), j.optLongOrNull("revocations_checked_at"),
                j.getBoolean("trust_stale"), j.getBoolean("revocations_stale"),
                clock.map { it.getString("kind") },
                clock.firstOrNull { it.has("offset") }?.getLong("offset"),
                j.optJSONObject("enrolment")?.let {
                    Enrolment(it.getString("server"), it.getString("device_id"), it.getString("provider"), it.optStringOrNull("category"))
                },
                j.getString("device_public"),
                j.getJSONObject("stats").getLong("entries"),
            )
        }
    }
}

/** What a sync did. */
data class SyncReport(
    val pushed: Int, val accepted: Int, val conflicts: Int, val invalid: Int, val suspect: Int,
    val trustUpdated: Boolean, val revocationsAdded: Int, val remaining: Int,
    /** The server refused an entry as a link of the device's chain; sync stopped there. */
    val rejected: String?,
) {
    internal companion object {
        fun from(j: JSONObject) = SyncReport(
            j.getInt("pushed"), j.getInt("accepted"), j.getInt("conflicts"), j.getInt("invalid"), j.getInt("suspect"),
            j.getBoolean("trust_updated"), j.getInt("revocations_added"), j.getInt("remaining"), j.optStringOrNull("rejected"),
        )
    }
}

/** A claim (or an answer to a returned claim) waiting in the outbox, or sent. */
data class QueuedClaim(
    val key: String,
    /** `claim` or `answer`. */
    val kind: String,
    val program: String?,
    val claimId: String?,
    val documents: Int,
    val createdAt: Long,
    val doneAt: Long?,
    /** Why the server refused it (then [doneAt] is set too). */
    val error: String?,
) {
    internal companion object {
        fun from(j: JSONObject) = QueuedClaim(
            j.getString("key"), j.getString("kind"), j.optStringOrNull("program"), j.optStringOrNull("claim_id"),
            j.getJSONArray("documents").length(), j.getLong("created_at"),
            if (j.isNull("done_at")) null else j.getLong("done_at"), j.optStringOrNull("error"),
        )
    }
}

/** A claim as the server has it. Amounts in minor units of [currency]. */
data class ServerClaim(
    val id: String,
    val program: String,
    /** `draft`, `submitted`, `returned`, `approved`, `rejected`, `withdrawn`, … */
    val state: String,
    val currency: String,
    val claimed: Long,
    val approved: Long?,
    val lines: Int,
    /** The reviewer's question on a returned claim. */
    val question: String?,
    val reason: String?,
    /** The payable's state (`pending`, `paid`, `failed`) once approved. */
    val payment: String?,
    val createdAt: Long,
)

/** The claims screen: what waits to be sent and what the server has. */
data class Claims(val outbox: List<QueuedClaim>, val claims: List<ServerClaim>) {
    internal companion object {
        fun from(j: JSONObject) = Claims(
            j.getJSONArray("outbox").objects().map(QueuedClaim::from),
            j.getJSONArray("claims").objects().map {
                ServerClaim(
                    it.getString("id"), it.getString("program"), it.getString("state"), it.getString("currency"),
                    it.getLong("claimed"), if (it.isNull("approved")) null else it.getLong("approved"), it.getInt("line_count"),
                    it.optStringOrNull("question"), it.optStringOrNull("reason"),
                    it.optJSONObject("payable")?.optStringOrNull("state"), it.getLong("created_at"),
                )
            },
        )
    }
}
