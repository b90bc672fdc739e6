package org.evoucher.sdk

import org.json.JSONArray
import org.json.JSONObject

/** One in-kind entitlement line. */
data class VoucherItem(val code: String, val quantity: Long, val unit: String?, val description: String?)

/** A verified voucher: who and what it is for. Amounts are in minor units of [currency]. */
data class Voucher(
    val id: String,
    val issuer: String,
    val program: String,
    val cycle: String?,
    val beneficiaryId: String,
    val beneficiaryName: String?,
    val amount: Long?,
    val currency: String?,
    val items: List<VoucherItem>,
    /** True when the voucher is drawn down over several visits; false for single use. */
    val partial: Boolean,
    /** The only provider allowed to redeem, if restricted. */
    val provider: String?,
    val categories: List<String>,
    val issuedAt: Long,
    val validFrom: Long,
    val validUntil: Long,
) {
    internal companion object {
        fun from(j: JSONObject): Voucher {
            val value = j.optJSONObject("value")
            return Voucher(
                id = j.getString("id"),
                issuer = j.getString("iss"),
                program = j.getString("program"),
                cycle = j.optStringOrNull("cycle"),
                beneficiaryId = j.getJSONObject("beneficiary").getString("id"),
                beneficiaryName = j.getJSONObject("beneficiary").optStringOrNull("name"),
                amount = value?.getLong("amount"),
                currency = value?.getString("currency"),
                items = j.optJSONArray("items").objects().map {
                    VoucherItem(it.getString("code"), it.getLong("quantity"), it.optStringOrNull("unit"), it.optStringOrNull("description"))
                },
                partial = j.optString("rule") == "partial",
                provider = j.optStringOrNull("aud"),
                categories = j.optJSONArray("categories").strings(),
                issuedAt = j.getLong("iat"),
                validFrom = if (j.has("nbf")) j.getLong("nbf") else j.getLong("iat"),
                validUntil = j.getLong("exp"),
            )
        }
    }
}

/** The outcome of [Verifier.verify]. */
sealed class VerificationResult {
    /** Signature, issuer key and validity all check out. */
    data class Valid(val voucher: Voucher, val keyId: String, val format: String) : VerificationResult()

    /** Refused at [stage] (`prefix`, `base45`, `zlib`, `cose`, `jws`, `alg`, `kid`, `signature`, `claims`, `not_yet_valid`, `expired`, `input`). */
    data class Invalid(val stage: String, val reason: String) : VerificationResult()

    internal companion object {
        fun from(j: JSONObject): VerificationResult =
            if (j.getBoolean("valid")) Valid(Voucher.from(j.getJSONObject("voucher")), j.getString("kid"), j.getString("format"))
            else Invalid(j.getString("stage"), j.getString("error"))
    }
}

/** A point in frame coordinates. */
data class Point(val x: Float, val y: Float)

/** A decoded QR code: its payload, its text when UTF-8, and its corners in the frame. */
class ScannedCode(val text: String?, val bytes: ByteArray, val corners: List<Point>) {
    override fun toString() = "ScannedCode(text=$text, ${bytes.size} bytes)"

    internal companion object {
        fun list(json: String): List<ScannedCode> = JSONArray(json).objects().map { c ->
            val hex = c.getString("bytes_hex")
            ScannedCode(
                c.optStringOrNull("text"),
                ByteArray(hex.length / 2) { i -> hex.substring(2 * i, 2 * i + 2).toInt(16).toByte() },
                c.getJSONArray("corners").let { a -> (0 until a.length()).map { i -> a.getJSONArray(i).let { p -> Point(p.getDouble(0).toFloat(), p.getDouble(1).toFloat()) } } },
            )
        }
    }
}

/** What to redeem. */
sealed class RedeemRequest {
    /** The whole voucher (for a partial voucher: everything that remains). */
    object Whole : RedeemRequest()

    /** An amount in minor units (partial vouchers). */
    data class Amount(val minorUnits: Long) : RedeemRequest()

    /** Items by code with quantities (partial vouchers). */
    data class Items(val quantities: Map<String, Long>) : RedeemRequest()

    internal fun toJson(): String = when (this) {
        Whole -> JSONObject().put("kind", "whole")
        is Amount -> JSONObject().put("kind", "amount").put("amount", minorUnits)
        is Items -> JSONObject().put("kind", "items").put("items", JSONArray(quantities.map { (c, q) -> JSONObject().put("code", c).put("quantity", q) }))
    }.toString()
}

/** An entry of the redemption ledger (append-only, hash-chained, signed by the device). */
data class LedgerEntry(
    val seq: Long,
    val id: String,
    /** `redeem` or `void`. */
    val kind: String,
    val voucherId: String,
    val provider: String,
    val device: String,
    val amount: Long?,
    val currency: String?,
    val items: Map<String, Long>,
    /** For a void: the id of the voided redemption. */
    val voids: String?,
    val at: Long,
    val hash: String,
) {
    internal companion object {
        fun from(j: JSONObject) = LedgerEntry(
            seq = j.getLong("seq"),
            id = j.getString("id"),
            kind = j.getString("kind"),
            voucherId = j.getString("voucher_id"),
            provider = j.getString("provider"),
            device = j.getString("device"),
            amount = if (j.isNull("amount")) null else j.getLong("amount"),
            currency = j.optStringOrNull("currency"),
            items = j.optJSONArray("items").objects().associate { it.getString("code") to it.getLong("quantity") },
            voids = j.optStringOrNull("voids"),
            at = j.getLong("at"),
            hash = j.getString("hash"),
        )

        fun list(json: String) = JSONArray(json).objects().map(::from)
    }
}

/** The receipt of a redemption, with what remains on the voucher. */
data class Receipt(val entry: LedgerEntry, val remainingAmount: Long?, val remainingItems: Map<String, Long>)

/** Result of [RedemptionLedger.verifyChain]. */
data class ChainStatus(val intact: Boolean, val entries: Long, val brokenAtSeq: Long?, val problem: String?)

internal fun JSONObject.optStringOrNull(key: String): String? = if (has(key) && !isNull(key)) getString(key) else null

internal fun JSONArray?.objects(): List<JSONObject> = if (this == null) emptyList() else (0 until length()).map { getJSONObject(it) }

internal fun JSONArray?.strings(): List<String> = if (this == null) emptyList() else (0 until length()).map { getString(it) }
