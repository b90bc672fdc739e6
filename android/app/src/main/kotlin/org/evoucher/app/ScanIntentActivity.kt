package org.evoucher.app

import android.content.Intent
import android.os.Bundle
import org.evoucher.sdk.Verdict

/**
 * The scanner for other apps (ODK Collect forms, case-management apps), answering the same kind
 * of intents as ID PASS SmartScanner and the ZXing barcode scanner, plus our own verification:
 *
 * - `org.idpass.smartscanner.QRCODE_SCAN`, `org.idpass.smartscanner.odk.QRCODE_SCAN`,
 *   `com.google.zxing.client.android.SCAN`: the QR code's text, as `value` (ODK),
 *   `SCAN_RESULT` and `SCAN_RESULT_FORMAT` (ZXing), and for SmartScanner's actions as
 *   SmartScanner returns it (`result` bundle, `mode`, `qr_code_text`).
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
            setResult(RESULT_OK, plain(intent, text))
            finish()
        }
    }

    companion object {
        const val ACTION_VERIFY = "org.evoucher.action.VERIFY_VOUCHER"

        /**
         * A plain scan's answer: the text as `value` (ODK) and `SCAN_RESULT` (ZXing); for
         * SmartScanner's QR actions also as SmartScanner answers: a `result` bundle holding
         * `mode` = `qrcode` and `qr_code_text`, and the same keys at the top level, each behind
         * the caller's `prefix` extra if it gave one (ODK field-list groups).
         */
        fun plain(request: Intent, text: String): Intent {
            val out = Intent().putExtra("value", text).putExtra("SCAN_RESULT", text).putExtra("SCAN_RESULT_FORMAT", "QR_CODE")
            if (request.action in SMARTSCANNER_QR) {
                val result = Bundle().apply { putString("mode", "qrcode"); putString("qr_code_text", text) }
                out.putExtra("result", result)
                val prefix = request.getStringExtra("prefix") ?: ""
                for (key in result.keySet()) out.putExtra(prefix + key, result.getString(key))
            }
            return out
        }

        private val SMARTSCANNER_QR = setOf("org.idpass.smartscanner.QRCODE_SCAN", "org.idpass.smartscanner.odk.QRCODE_SCAN")

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
