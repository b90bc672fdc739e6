package org.evoucher.app

import android.content.Intent
import org.evoucher.sdk.Verdict

/**
 * The scanner for other apps (ODK Collect forms, case-management apps), answering the same kind
 * of intents as ID PASS SmartScanner and the ZXing barcode scanner, plus our own verification:
 *
 * - `org.idpass.smartscanner.QRCODE_SCAN`, `org.idpass.smartscanner.odk.QRCODE_SCAN`,
 *   `com.google.zxing.client.android.SCAN`: the QR code's text, as `value` (ODK),
 *   `SCAN_RESULT` and `SCAN_RESULT_FORMAT` (ZXing).
 * - `org.evoucher.action.VERIFY_VOUCHER`: the code verified offline against this phone's trust
 *   list and ledger (nothing is redeemed), its fields as extras (docs/android.md lists them);
 *   `value` is the voucher id, so a single ODK question captures a verified voucher.
 */
class ScanIntentActivity : ScanActivity() {
    override fun onCode(text: String) {
        if (intent.action == ACTION_VERIFY) {
            App.background({ answer(app, text) }) { r ->
                setResult(RESULT_OK, r.getOrElse { Intent().putExtra("verdict", "invalid").putExtra("reason", "error") })
                finish()
            }
        } else {
            setResult(RESULT_OK, Intent().putExtra("value", text).putExtra("SCAN_RESULT", text).putExtra("SCAN_RESULT_FORMAT", "QR_CODE"))
            finish()
        }
    }

    companion object {
        const val ACTION_VERIFY = "org.evoucher.action.VERIFY_VOUCHER"

        /** The extras of a verification answer. */
        fun answer(app: App, text: String): Intent {
            val v = app.verifier()
            val verdict = if (v == null) Verdict.Invalid("kid", "no trust list yet") else app.ledger.check(v, text)
            val out = Intent().putExtra("text", text)
            val voucher = when (verdict) {
                is Verdict.Ok -> verdict.voucher
                is Verdict.Refused -> verdict.voucher
                is Verdict.Invalid -> null
            }
            out.putExtra("verdict", when (verdict) { is Verdict.Ok -> "ok"; is Verdict.Refused -> "refused"; is Verdict.Invalid -> "invalid" })
            out.putExtra("valid", verdict is Verdict.Ok)
            when (verdict) {
                is Verdict.Refused -> out.putExtra("reason", verdict.reason)
                is Verdict.Invalid -> out.putExtra("reason", verdict.stage)
                is Verdict.Ok -> {}
            }
            if (verdict is Verdict.Ok) verdict.balanceAmount?.let { out.putExtra("remaining", it) }
            if (voucher != null) {
                out.putExtra("value", voucher.id)
                out.putExtra("voucher_id", voucher.id)
                out.putExtra("beneficiary_id", voucher.beneficiaryId)
                voucher.beneficiaryName?.let { out.putExtra("beneficiary_name", it) }
                out.putExtra("program", voucher.program)
                voucher.amount?.let { out.putExtra("amount", it) }
                voucher.currency?.let { out.putExtra("currency", it) }
                out.putExtra("valid_until", voucher.validUntil)
            }
            return out
        }
    }
}
