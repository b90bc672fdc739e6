package org.evoucher.app

import android.app.Activity
import android.content.Context
import android.content.res.ColorStateList
import android.graphics.Color
import android.graphics.Typeface
import android.graphics.drawable.GradientDrawable
import android.text.InputType
import android.util.TypedValue
import android.view.Gravity
import android.view.View
import android.view.ViewGroup
import android.widget.Button
import android.widget.EditText
import android.widget.LinearLayout
import android.widget.ScrollView
import android.widget.TextView
import java.math.BigDecimal
import java.text.DateFormat
import java.text.NumberFormat
import java.util.Currency
import java.util.Date

/** Colours of the verdicts: readable at arm's length, white text on each (contrast over 4.5:1). */
object Palette {
    const val GREEN = 0xFF1B5E20.toInt()
    const val AMBER = 0xFFB45300.toInt()
    const val RED = 0xFFB71C1C.toInt()
    const val INK = 0xFF212121.toInt()
    const val MUTED = 0xFF5F6368.toInt()
    const val PAPER = 0xFFFAFAFA.toInt()
    const val WARN_BG = 0xFFFFF3E0.toInt()

    /** A button that is off: pale, with grey text (4.7:1), unlike any button that works. */
    const val OFF = 0xFFE0E0E0.toInt()
    const val OFF_INK = 0xFF616161.toInt()
}

/** Every screen: in the chosen language, laid out from code (no layout inflation to pay for). */
abstract class Screen : Activity() {
    override fun attachBaseContext(base: Context) = super.attachBaseContext(Settings.wrap(base))

    val app: App get() = App.of(this)

    fun dp(v: Int): Int = TypedValue.applyDimension(TypedValue.COMPLEX_UNIT_DIP, v.toFloat(), resources.displayMetrics).toInt()

    fun column(pad: Int = 16): LinearLayout = LinearLayout(this).apply {
        orientation = LinearLayout.VERTICAL
        setPadding(dp(pad), dp(pad), dp(pad), dp(pad))
    }

    fun scroll(content: View): ScrollView = ScrollView(this).apply { isFillViewport = true; addView(content) }

    fun text(s: CharSequence, sp: Float = 18f, color: Int = Palette.INK, bold: Boolean = false): TextView = TextView(this).apply {
        text = s
        setTextSize(TypedValue.COMPLEX_UNIT_SP, sp)
        setTextColor(color)
        if (bold) typeface = Typeface.DEFAULT_BOLD
        setPadding(0, dp(4), 0, dp(4))
        textAlignment = View.TEXT_ALIGNMENT_VIEW_START
    }

    /**
     * A large button (at least 56 dp high: a thumb on a moving bus). When it is off
     * (`isEnabled = false`) it turns pale with grey text, whatever its colour when on.
     */
    fun button(s: CharSequence, color: Int = Palette.GREEN, onClick: () -> Unit): Button = Button(this).apply {
        text = s
        isAllCaps = false
        setTextSize(TypedValue.COMPLEX_UNIT_SP, 20f)
        setTextColor(onOff(Color.WHITE, Palette.OFF_INK))
        minHeight = dp(56)
        background = GradientDrawable().apply { cornerRadius = dp(8).toFloat(); setColor(onOff(color, Palette.OFF)) }
        layoutParams = LinearLayout.LayoutParams(ViewGroup.LayoutParams.MATCH_PARENT, ViewGroup.LayoutParams.WRAP_CONTENT).apply { topMargin = dp(12) }
        setOnClickListener { onClick() }
    }

    private fun onOff(on: Int, off: Int) =
        ColorStateList(arrayOf(intArrayOf(-android.R.attr.state_enabled), intArrayOf()), intArrayOf(off, on))

    fun field(hint: String, type: Int = InputType.TYPE_CLASS_TEXT): EditText = EditText(this).apply {
        this.hint = hint
        contentDescription = hint
        inputType = type
        setTextSize(TypedValue.COMPLEX_UNIT_SP, 18f)
        minHeight = dp(56)
        isSingleLine = true
    }

    /** A warning line on a pale background. */
    fun warning(s: CharSequence): TextView = text(s, 16f, Palette.RED, bold = true).apply {
        setBackgroundColor(Palette.WARN_BG)
        setPadding(dp(12), dp(8), dp(12), dp(8))
    }

    fun center(v: TextView): TextView = v.apply { gravity = Gravity.CENTER_HORIZONTAL; textAlignment = View.TEXT_ALIGNMENT_CENTER }
}

/** Amounts and times as the provider reads them, in the screen's language. */
object Fmt {
    fun money(minor: Long, currency: String?): String {
        if (currency == null) return minor.toString()
        return runCatching {
            val c = Currency.getInstance(currency)
            val digits = c.defaultFractionDigits.coerceAtLeast(0)
            val f = NumberFormat.getCurrencyInstance().apply {
                this.currency = c
                minimumFractionDigits = digits
                maximumFractionDigits = digits
            }
            // Exact: minor units as a decimal, never through a double.
            f.format(BigDecimal.valueOf(minor, digits))
        }.getOrElse { "$minor $currency" }
    }

    /** Date and time; the time part never breaks across lines ("8:50" above "AM"). */
    fun time(epochSeconds: Long): String {
        val at = Date(epochSeconds * 1000)
        val both = DateFormat.getDateTimeInstance(DateFormat.MEDIUM, DateFormat.SHORT).format(at)
        val clock = DateFormat.getTimeInstance(DateFormat.SHORT).format(at)
        return both.replace(clock, unbroken(clock))
    }

    /** The same text with its spaces made non-breaking. */
    fun unbroken(s: String): String = s.replace(' ', '\u00A0').replace('\u202F', '\u00A0')

    fun day(epochSeconds: Long): String = DateFormat.getDateInstance(DateFormat.MEDIUM).format(Date(epochSeconds * 1000))
}
