package org.evoucher.sdk

import org.json.JSONObject

/**
 * Base of the SDK's exceptions. The native bridge throws them with a JSON object as the
 * message; [reason] is its stable code and [details] the whole object (for example
 * `at`, `provider`, `device` and `entry_id` of [AlreadyRedeemedException]).
 */
open class VoucherException(json: String) : RuntimeException(parse(json).optString("message", json)) {
    val details: JSONObject = parse(json)
    val reason: String = details.optString("reason", "unknown")

    private companion object {
        fun parse(json: String): JSONObject = runCatching { JSONObject(json) }.getOrElse { JSONObject().put("message", json) }
    }
}

/** The voucher failed verification at [stage] (`signature`, `expired`, `kid`, ...). */
class InvalidVoucherException(json: String) : VoucherException(json) {
    val stage: String = details.optString("stage")
}
class AlreadyRedeemedException(json: String) : VoucherException(json) {
    val redeemedAt: Long = details.optLong("at")
    val provider: String = details.optString("provider")
    val device: String = details.optString("device")
    val entryId: String = details.optString("entry_id")
}
class InsufficientBalanceException(json: String) : VoucherException(json)
class WrongProviderException(json: String) : VoucherException(json)
class CategoryNotAllowedException(json: String) : VoucherException(json)
class NotYetValidException(json: String) : VoucherException(json)
class ExpiredException(json: String) : VoucherException(json)
class RevokedException(json: String) : VoucherException(json)
/** Other refusals: unknown item, no cash value, whole-only voucher, malformed request. */
class RedemptionRefusedException(json: String) : VoucherException(json)
/** The ledger could not be opened, read or written (it is never deleted or recreated). */
class LedgerException(json: String) : VoucherException(json)
/** The trust store (JWKS) could not be used. */
class TrustStoreException(json: String) : VoucherException(json)
/** Internal JNI failure. */
class NativeException(json: String) : VoucherException(json)
/** A panic inside the native library, turned into an exception (the VM is never aborted). */
class NativePanicException(json: String) : VoucherException(json)
/**
 * Talking to the program server failed: [reason] is `http` (no connection), `status` (the
 * server refused; [status] holds the HTTP status), `protocol` (an unexpected answer) or `ledger`.
 */
class SyncException(json: String) : VoucherException(json) {
    val status: Int? = if (details.has("status") && !details.isNull("status")) details.getInt("status") else null
}
