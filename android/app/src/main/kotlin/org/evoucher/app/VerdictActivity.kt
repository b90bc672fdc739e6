package org.evoucher.app

import android.content.Intent
import android.graphics.Color
import android.os.Bundle
import android.text.InputType
import android.widget.EditText
import android.widget.LinearLayout
import org.evoucher.sdk.RedeemRequest
import org.evoucher.sdk.Receipt
import org.evoucher.sdk.Verdict
import org.evoucher.sdk.Voucher
import org.evoucher.sdk.VoucherException

/**
 * The verdict, full screen, readable at arm's length: green (valid: who, what, until when),
 * amber (valid, choose how much of a partial voucher), red (why not, in plain words). Confirm
 * redeems; the receipt shows the redemption id and what remains.
 */
class VerdictActivity : Screen() {
    lateinit var verdict: Verdict
        private set
    var receipt: Receipt? = null
        private set
    private var clockSuspect = false
    private val amountFields = mutableMapOf<String, EditText>()

    override fun onCreate(savedInstanceState: Bundle?) {
        super.onCreate(savedInstanceState)
        val text = intent.getStringExtra(EXTRA_TEXT) ?: return finish()
        App.background({
            val v = app.verifier()
            clockSuspect = app.ledger.status(Settings(this).staleDays * 86_400L).clockSuspect
            if (v == null) Verdict.Invalid("kid", "no trust list yet") else app.ledger.check(v, text)
        }) { r ->
            verdict = r.getOrElse { Verdict.Invalid("input", it.message ?: "") }
            show(text)
        }
    }

    private fun show(text: String) {
        val v = verdict
        val (color, title, outcome) = when {
            v is Verdict.Ok && v.voucher.partial -> Triple(Palette.AMBER, getString(R.string.verdict_choose), Outcome.CHOOSE)
            v is Verdict.Ok -> Triple(Palette.GREEN, getString(R.string.verdict_valid), Outcome.VALID)
            else -> Triple(Palette.RED, getString(R.string.verdict_refused), Outcome.REFUSED)
        }
        val root = column(20).apply { setBackgroundColor(color) }
        root.addView(center(text(title, 40f, Color.WHITE, bold = true)).apply { contentDescription = title })
        if (clockSuspect) root.addView(warning(getString(R.string.clock_wrong)))
        when (v) {
            is Verdict.Ok -> {
                details(root, v.voucher)
                if (v.voucher.partial) {
                    v.balanceAmount?.let { root.addView(line(getString(R.string.remaining), Fmt.money(it, v.voucher.currency))) }
                    for ((code, q) in v.balanceItems) root.addView(line(getString(R.string.remaining), "$code × $q"))
                    v.balanceAmount?.let { balance ->
                        root.addView(text(getString(R.string.amount_to_redeem), 18f, Color.WHITE))
                        val f = field(getString(R.string.amount_to_redeem), InputType.TYPE_CLASS_NUMBER or InputType.TYPE_NUMBER_FLAG_DECIMAL).apply {
                            setText(minorToText(balance, v.voucher.currency)); setTextColor(Color.WHITE)
                        }
                        amountFields[""] = f
                        root.addView(f)
                    }
                    for ((code, q) in v.balanceItems) {
                        amountFields[code] = field(code, InputType.TYPE_CLASS_NUMBER).apply { setText(q.toString()); setTextColor(Color.WHITE) }
                        root.addView(amountFields[code])
                    }
                }
                root.addView(button(getString(R.string.confirm_redeem), Palette.INK) { redeem(text, v.voucher) })
            }
            is Verdict.Refused -> {
                root.addView(text(why(v), 24f, Color.WHITE, bold = true))
                details(root, v.voucher)
            }
            is Verdict.Invalid -> root.addView(text(why(v), 24f, Color.WHITE, bold = true))
        }
        root.addView(button(getString(if (v is Verdict.Ok) R.string.cancel else R.string.scan_next), Palette.MUTED) { next() })
        setContentView(scroll(root))
        Feedback.give(this, outcome)
    }

    private fun details(root: LinearLayout, v: Voucher) {
        root.addView(text(v.beneficiaryName ?: v.beneficiaryId, 30f, Color.WHITE, bold = true))
        root.addView(line(getString(R.string.beneficiary), v.beneficiaryId))
        root.addView(line(getString(R.string.program), v.program))
        v.amount?.let { root.addView(line(getString(R.string.value), Fmt.money(it, v.currency))) }
        if (v.items.isNotEmpty()) root.addView(line(getString(R.string.items), v.items.joinToString { "${it.description ?: it.code} × ${it.quantity}${it.unit?.let { u -> " $u" } ?: ""}" }))
        root.addView(line(getString(R.string.valid_until), Fmt.day(v.validUntil)))
    }

    private fun line(label: String, value: String) = text("$label: $value", 20f, Color.WHITE)

    /** The refusal in plain words. */
    fun why(v: Verdict): String = when (v) {
        is Verdict.Refused -> when (v.reason) {
            "already_redeemed" -> getString(R.string.why_already_redeemed, Fmt.time(v.details.optLong("at")), v.details.optString("provider"), v.details.optString("device"))
            "expired" -> getString(R.string.why_expired, Fmt.time(v.details.optLong("exp", v.voucher.validUntil)))
            "not_yet_valid" -> getString(R.string.why_not_yet_valid, Fmt.time(v.details.optLong("nbf", v.voucher.validFrom)))
            "revoked" -> getString(R.string.why_revoked)
            "wrong_provider" -> getString(R.string.why_wrong_provider)
            "category_not_allowed" -> getString(R.string.why_category)
            "exhausted", "insufficient_balance", "insufficient_items" -> getString(R.string.why_balance)
            else -> v.message
        }
        is Verdict.Invalid -> when (v.stage) {
            "signature", "claims", "alg" -> getString(R.string.why_forged)
            "kid" -> getString(R.string.why_unknown_issuer)
            "expired" -> getString(R.string.why_expired, v.at?.let(Fmt::time) ?: "")
            "not_yet_valid" -> getString(R.string.why_not_yet_valid, v.at?.let(Fmt::time) ?: "")
            else -> getString(R.string.why_not_voucher)
        }
        is Verdict.Ok -> ""
    }

    private fun redeem(text: String, voucher: Voucher) {
        val request = if (!voucher.partial) RedeemRequest.Whole
        else if (voucher.amount != null) {
            val minor = textToMinor(amountFields[""]?.text?.toString() ?: "", voucher.currency) ?: return
            RedeemRequest.Amount(minor)
        } else RedeemRequest.Items(amountFields.filterKeys { it.isNotEmpty() }.mapValues { it.value.text.toString().toLongOrNull() ?: 0 }.filterValues { it > 0 })
        App.background({
            val verifier = app.verifier() ?: error("no trust list")
            app.ledger.redeem(verifier, text, provider = "", device = "", request = request)
        }) { r ->
            r.onSuccess { showReceipt(it, voucher) }.onFailure { e ->
                val root = column(20).apply { setBackgroundColor(Palette.RED) }
                root.addView(center(text(getString(R.string.verdict_refused), 40f, Color.WHITE, bold = true)))
                root.addView(text((e as? VoucherException)?.message ?: e.toString(), 22f, Color.WHITE))
                root.addView(button(getString(R.string.scan_next), Palette.MUTED) { next() })
                setContentView(scroll(root))
                Feedback.give(this, Outcome.REFUSED)
            }
        }
    }

    private fun showReceipt(r: Receipt, voucher: Voucher) {
        receipt = r
        val root = column(20).apply { setBackgroundColor(Palette.GREEN) }
        root.addView(center(text(getString(R.string.redeemed), 40f, Color.WHITE, bold = true)))
        root.addView(text(voucher.beneficiaryName ?: voucher.beneficiaryId, 28f, Color.WHITE, bold = true))
        r.entry.amount?.let { root.addView(line(getString(R.string.value), Fmt.money(it, r.entry.currency))) }
        for ((code, q) in r.entry.items) root.addView(line(getString(R.string.items), "$code × $q"))
        if (voucher.partial) {
            r.remainingAmount?.let { root.addView(line(getString(R.string.remaining), Fmt.money(it, voucher.currency))) }
            for ((code, q) in r.remainingItems) root.addView(line(getString(R.string.remaining), "$code × $q"))
        }
        root.addView(text(getString(R.string.receipt_id, r.entry.id), 16f, Color.WHITE))
        root.addView(text(Fmt.time(r.entry.at), 16f, Color.WHITE))
        if (clockSuspect) root.addView(warning(getString(R.string.redeemed_suspect_clock)))
        root.addView(button(getString(R.string.scan_next), Palette.INK) { next() })
        setContentView(scroll(root))
        Feedback.give(this, Outcome.VALID)
    }

    private fun next() {
        startActivity(Intent(this, ScanActivity::class.java))
        finish()
    }

    companion object {
        const val EXTRA_TEXT = "text"

        private fun digits(currency: String?): Int =
            runCatching { java.util.Currency.getInstance(currency).defaultFractionDigits.coerceAtLeast(0) }.getOrDefault(0)

        fun minorToText(minor: Long, currency: String?): String {
            val d = digits(currency)
            if (d == 0) return minor.toString()
            val s = minor.toString().padStart(d + 1, '0')
            return s.dropLast(d) + "." + s.takeLast(d)
        }

        /** "12.50" → 1250 for a currency with two decimals; null if it is not an amount. */
        fun textToMinor(s: String, currency: String?): Long? {
            val t = s.trim().replace(',', '.')
            if (!Regex("^\\d+(\\.\\d*)?$").matches(t)) return null
            val d = digits(currency)
            val whole = t.substringBefore('.')
            val frac = t.substringAfter('.', "")
            if (frac.length > d) return null
            return (whole + frac.padEnd(d, '0')).toLongOrNull()?.takeIf { it > 0 }
        }
    }
}
