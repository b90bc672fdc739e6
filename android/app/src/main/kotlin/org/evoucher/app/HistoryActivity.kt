package org.evoucher.app

import android.app.AlertDialog
import android.os.Bundle
import android.text.Editable
import android.text.TextWatcher
import android.util.TypedValue
import android.view.View
import android.view.ViewGroup
import android.widget.AdapterView
import android.widget.ArrayAdapter
import android.widget.BaseAdapter
import android.widget.LinearLayout
import android.widget.ListView
import android.widget.Spinner
import android.widget.TextView
import android.widget.Toast
import java.util.Calendar
import org.evoucher.sdk.HistoryFilter
import org.evoucher.sdk.HistoryPage
import org.evoucher.sdk.HistoryRow

/**
 * Every redemption with its state (waiting to sync, accepted, conflict, suspect, invalid,
 * voided), filtered by day and state, searched by voucher or beneficiary id, with the totals of
 * what matches; a redemption is voided from here, after a confirmation.
 */
class HistoryActivity : Screen() {
    var page: HistoryPage? = null
        private set
    private var today = true
    private var state: String? = null
    private var search: String? = null
    private lateinit var totals: TextView
    private lateinit var empty: TextView
    private val rows = mutableListOf<HistoryRow>()
    private lateinit var adapter: BaseAdapter
    private lateinit var dayButton: TextView

    override fun onCreate(savedInstanceState: Bundle?) {
        super.onCreate(savedInstanceState)
        val root = column(12)
        root.addView(text(getString(R.string.history), 26f, bold = true))
        val filters = LinearLayout(this).apply { orientation = LinearLayout.HORIZONTAL }
        dayButton = button(getString(R.string.today), Palette.INK) {
            today = !today
            dayButton.text = getString(if (today) R.string.today else R.string.all_days)
            load()
        }
        filters.addView(dayButton, LinearLayout.LayoutParams(0, ViewGroup.LayoutParams.WRAP_CONTENT, 1f).apply { marginEnd = dp(8) })
        val labels = listOf(getString(R.string.all_states)) + STATES.map { stateLabel(it) }
        val spinner = Spinner(this).apply {
            adapter = ArrayAdapter(this@HistoryActivity, android.R.layout.simple_spinner_dropdown_item, labels)
            minimumHeight = dp(56)
            contentDescription = getString(R.string.all_states)
            onItemSelectedListener = object : AdapterView.OnItemSelectedListener {
                override fun onItemSelected(p: AdapterView<*>?, v: View?, pos: Int, id: Long) {
                    val s = if (pos == 0) null else STATES[pos - 1]
                    if (s != state) { state = s; load() }
                }
                override fun onNothingSelected(p: AdapterView<*>?) {}
            }
        }
        filters.addView(spinner, LinearLayout.LayoutParams(0, ViewGroup.LayoutParams.WRAP_CONTENT, 1f))
        root.addView(filters)
        root.addView(field(getString(R.string.search_hint)).apply {
            addTextChangedListener(object : TextWatcher {
                override fun beforeTextChanged(s: CharSequence?, a: Int, b: Int, c: Int) {}
                override fun onTextChanged(s: CharSequence?, a: Int, b: Int, c: Int) {}
                override fun afterTextChanged(s: Editable?) { search = s?.toString()?.trim()?.ifEmpty { null }; load() }
            })
        })
        totals = text("", 18f, bold = true)
        root.addView(totals)
        empty = text(getString(R.string.nothing_yet), 16f, Palette.MUTED)
        root.addView(empty)
        adapter = object : BaseAdapter() {
            override fun getCount() = rows.size
            override fun getItem(i: Int) = rows[i]
            override fun getItemId(i: Int) = rows[i].entry.seq
            override fun getView(i: Int, convert: View?, parent: ViewGroup?): View = rowView(rows[i])
        }
        val list = ListView(this).apply {
            adapter = this@HistoryActivity.adapter
            setOnItemClickListener { _, _, i, _ -> confirmVoid(rows[i]) }
        }
        root.addView(list, LinearLayout.LayoutParams(ViewGroup.LayoutParams.MATCH_PARENT, 0, 1f))
        setContentView(root)
        load()
    }

    fun load() {
        val filter = HistoryFilter(from = if (today) startOfDay() else null, state = state, search = search, limit = 200)
        App.background({ app.ledger.history(filter) }) { r ->
            r.onSuccess { p ->
                page = p
                rows.clear(); rows.addAll(p.rows)
                adapter.notifyDataSetChanged()
                val sum = p.totals.entries.joinToString(" + ") { (c, a) -> Fmt.money(a, c) }.ifEmpty { "0" }
                totals.text = getString(R.string.total, sum, p.count)
                empty.visibility = if (p.count == 0) View.VISIBLE else View.GONE
            }.onFailure { totals.text = it.message }
        }
    }

    private fun rowView(r: HistoryRow): View {
        val v = column(8)
        val who = r.beneficiaryName ?: r.beneficiaryId ?: r.entry.voucherId
        val what = r.entry.amount?.let { Fmt.money(it, r.entry.currency) } ?: r.entry.items.entries.joinToString { "${it.key} × ${it.value}" }
        v.addView(text("$who · $what", 18f, bold = true))
        val color = when (r.state) {
            "accepted", "synced", "claimed", "paid" -> Palette.GREEN
            "waiting" -> Palette.MUTED
            "voided" -> Palette.MUTED
            else -> Palette.RED
        }
        v.addView(text("${Fmt.time(r.entry.at)} · ${stateLabel(r.state)}${r.reason?.let { " · $it" } ?: ""}", 14f, color))
        v.minimumHeight = dp(56)
        v.contentDescription = "$who, $what, ${stateLabel(r.state)}"
        return v
    }

    fun confirmVoid(r: HistoryRow) {
        if (r.state == "voided") return
        val who = r.beneficiaryName ?: r.beneficiaryId ?: r.entry.voucherId
        AlertDialog.Builder(this, android.R.style.Theme_Material_Light_Dialog_Alert)
            .setTitle(R.string.void_title_fallback)
            .setMessage(getString(R.string.void_confirm, who))
            .setPositiveButton(R.string.void_action) { _, _ -> void(r) }
            .setNegativeButton(R.string.cancel, null)
            .show()
            .apply {
                // Voiding gives the voucher back: the action that does it is red and large, and
                // the message is as large as the rest of the app's text.
                findViewById<TextView>(android.R.id.message)?.setTextSize(TypedValue.COMPLEX_UNIT_SP, 18f)
                for ((which, color) in listOf(AlertDialog.BUTTON_POSITIVE to Palette.RED, AlertDialog.BUTTON_NEGATIVE to Palette.INK)) {
                    getButton(which)?.apply { setTextColor(color); setTextSize(TypedValue.COMPLEX_UNIT_SP, 18f); isAllCaps = false }
                }
            }
    }


    private fun void(r: HistoryRow) {
        App.background({ app.ledger.void(r.entry.id, provider = "", device = "") }) { res ->
            Toast.makeText(this, res.fold({ getString(R.string.voided_done) }, { it.message ?: it.toString() }), Toast.LENGTH_LONG).show()
            load()
        }
    }

    private fun stateLabel(s: String): String = when (s) {
        "waiting" -> getString(R.string.state_waiting)
        "accepted" -> getString(R.string.state_accepted)
        "conflict" -> getString(R.string.state_conflict)
        "suspect" -> getString(R.string.state_suspect)
        "invalid" -> getString(R.string.state_invalid)
        "voided" -> getString(R.string.state_voided)
        "claimed" -> getString(R.string.state_claimed)
        "paid" -> getString(R.string.state_paid)
        else -> getString(R.string.state_synced)
    }

    companion object {
        val STATES = listOf("waiting", "accepted", "claimed", "paid", "conflict", "suspect", "invalid", "voided")

        fun startOfDay(): Long = Calendar.getInstance().apply {
            set(Calendar.HOUR_OF_DAY, 0); set(Calendar.MINUTE, 0); set(Calendar.SECOND, 0); set(Calendar.MILLISECOND, 0)
        }.timeInMillis / 1000
    }
}
