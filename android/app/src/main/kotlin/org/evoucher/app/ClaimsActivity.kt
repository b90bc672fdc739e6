package org.evoucher.app

import android.app.AlertDialog
import android.content.Intent
import android.os.Bundle
import android.provider.MediaStore
import android.widget.CheckBox
import android.widget.EditText
import android.widget.LinearLayout
import android.widget.TextView
import java.io.File
import java.util.UUID
import org.evoucher.sdk.Claims
import org.evoucher.sdk.HistoryFilter
import org.evoucher.sdk.HistoryRow
import org.evoucher.sdk.ServerClaim

/**
 * Reimbursement: choose accepted redemptions not yet claimed (or everything up to now), attach
 * photos of receipts, submit. The claim is queued in the ledger and sent now if the network
 * is there, otherwise by the next sync. Below, each claim's state; a returned claim shows the
 * reviewer's question and is answered with a note and more photos.
 */
class ClaimsActivity : Screen() {
    var claims: Claims? = null
        private set
    private lateinit var list: LinearLayout
    private lateinit var form: LinearLayout
    private lateinit var note: EditText
    private lateinit var photosLabel: TextView
    private lateinit var status: TextView
    /** Photos for the claim being made (or the answer being written): name → file. */
    val photos = linkedMapOf<String, File>()
    private var pendingPhoto: File? = null
    private val picked = mutableSetOf<String>()
    private var unclaimed: List<HistoryRow> = emptyList()
    /** The returned claim being answered, if any. */
    private var answering: ServerClaim? = null

    override fun onCreate(savedInstanceState: Bundle?) {
        super.onCreate(savedInstanceState)
        val root = column()
        root.addView(text(getString(R.string.claims), 26f, bold = true))
        form = column(0)
        root.addView(form)
        note = field(getString(R.string.claim_note))
        photosLabel = text("", 16f, Palette.MUTED)
        status = text("", 16f)
        list = column(0)
        root.addView(list)
        setContentView(scroll(root))
        load()
    }

    fun load() {
        App.background({
            app.ledger.claims() to app.ledger.history(HistoryFilter(state = "accepted", limit = 500)).rows
        }) { r ->
            r.onSuccess { (c, rows) ->
                claims = c
                unclaimed = rows
                showForm()
                showList(c)
            }.onFailure { status.text = it.message }
        }
    }

    private fun showForm() {
        form.removeAllViews()
        val a = answering
        if (a != null) {
            form.addView(text(getString(R.string.claim_answer_title, a.id), 20f, bold = true))
            form.addView(warning(a.question ?: ""))
        } else {
            form.addView(text(getString(R.string.claim_new), 20f, bold = true))
            if (unclaimed.isEmpty()) form.addView(text(getString(R.string.claim_nothing), 16f, Palette.MUTED))
            for (row in unclaimed.take(50)) {
                val who = row.beneficiaryName ?: row.beneficiaryId ?: row.entry.voucherId
                val what = row.entry.amount?.let { Fmt.money(it, row.entry.currency) } ?: ""
                form.addView(CheckBox(this).apply {
                    text = "$who · $what · ${Fmt.time(row.entry.at)}"
                    textSize = 16f
                    minHeight = dp(48)
                    isChecked = row.entry.id in picked
                    setOnCheckedChangeListener { _, on -> if (on) picked.add(row.entry.id) else picked.remove(row.entry.id) }
                })
            }
        }
        if (note.parent == null) form.addView(note)
        form.addView(button(getString(R.string.take_photo), Palette.MUTED) { takePhoto() })
        form.addView(button(getString(R.string.from_photo), Palette.MUTED) { pickPhoto() })
        form.addView(photosLabel)
        photosLabel.text = getString(R.string.photos_attached, photos.size)
        // Nothing to claim and no question to answer: the button says so by being off.
        val canSend = a != null || unclaimed.isNotEmpty()
        form.addView(button(getString(if (a != null) R.string.claim_answer else R.string.claim_submit)) { submit() }
            .apply { isEnabled = canSend })
        if (status.parent == null) form.addView(status)
    }

    private fun showList(c: Claims) {
        list.removeAllViews()
        for (q in c.outbox.filter { it.doneAt == null || it.error != null }) {
            val line = if (q.error != null) getString(R.string.claim_refused, q.error) else getString(R.string.claim_queued, q.documents)
            list.addView(text(line, 16f, if (q.error != null) Palette.RED else Palette.MUTED))
        }
        for (s in c.claims) {
            val v = column(8)
            v.addView(text("${s.id} · ${Fmt.money(s.claimed, s.currency)} · ${resources.getQuantityString(R.plurals.claim_lines, s.lines, s.lines)}", 18f, bold = true))
            val state = stateLabel(s)
            v.addView(text(state, 16f, if (s.state == "returned" || s.state == "rejected") Palette.RED else Palette.GREEN))
            if (s.state == "returned") {
                v.addView(text(s.question ?: "", 16f))
                v.addView(button(getString(R.string.claim_answer), Palette.AMBER) { answering = s; photos.clear(); showForm() })
            }
            v.contentDescription = "${s.id}, $state"
            list.addView(v)
        }
    }

    private fun stateLabel(s: ServerClaim): String = when {
        s.payment == "paid" -> getString(R.string.claim_paid)
        s.state == "approved" -> getString(R.string.claim_approved, Fmt.money(s.approved ?: s.claimed, s.currency))
        s.state == "returned" -> getString(R.string.claim_returned)
        s.state == "rejected" -> getString(R.string.claim_rejected, s.reason ?: "")
        else -> getString(R.string.claim_submitted)
    }

    // ------------------------------------------------------------ photos

    private fun takePhoto() {
        val name = "receipt-${UUID.randomUUID()}.jpg"
        pendingPhoto = File(ExportProvider.claimDocs(this), name)
        val i = Intent(MediaStore.ACTION_IMAGE_CAPTURE)
            .putExtra(MediaStore.EXTRA_OUTPUT, ExportProvider.captureUri(name))
            .addFlags(Intent.FLAG_GRANT_WRITE_URI_PERMISSION)
        runCatching { startActivityForResult(i, CAPTURE) }.onFailure { status.text = getString(R.string.no_camera) }
    }

    private fun pickPhoto() {
        runCatching { startActivityForResult(Intent(Intent.ACTION_GET_CONTENT).setType("image/*").addCategory(Intent.CATEGORY_OPENABLE), PICK) }
    }

    @Deprecated("Activity result API of the platform")
    override fun onActivityResult(requestCode: Int, resultCode: Int, data: Intent?) {
        super.onActivityResult(requestCode, resultCode, data)
        if (resultCode != RESULT_OK) return
        when (requestCode) {
            CAPTURE -> pendingPhoto?.takeIf { it.length() > 0 }?.let { photos[it.name] = it }
            PICK -> {
                val uri = data?.data ?: return
                val f = File(ExportProvider.claimDocs(this), "photo-${UUID.randomUUID()}.jpg")
                runCatching { contentResolver.openInputStream(uri)?.use { input -> f.outputStream().use { input.copyTo(it) } } }
                if (f.length() > 0) photos[f.name] = f
            }
        }
        photosLabel.text = getString(R.string.photos_attached, photos.size)
    }

    // ------------------------------------------------------------ submit

    private fun submit() {
        val a = answering
        val text = note.text.toString().trim().ifEmpty { null }
        val program = unclaimed.firstOrNull { it.entry.id in picked }?.program ?: unclaimed.firstOrNull()?.program
        if (a == null && (program == null || unclaimed.isEmpty())) {
            status.text = getString(R.string.claim_nothing)
            return
        }
        val chosen = picked.toList()
        val docs = photos.toMap()
        App.background({
            if (a != null) app.ledger.queueAnswer(a.id, text, docs)
            else app.ledger.queueClaim(program!!, chosen.ifEmpty { null }, if (chosen.isEmpty()) System.currentTimeMillis() / 1000 else null, text, docs)
            // Sent now if the network is there; otherwise the next sync sends it.
            runCatching { Syncer.sendClaims(app) }.exceptionOrNull()
        }) { r ->
            r.onSuccess { failure ->
                status.text = if (failure == null) getString(R.string.claim_sent) else getString(R.string.claim_will_send)
                photos.clear(); picked.clear(); note.setText(""); answering = null
                load()
            }.onFailure { AlertDialog.Builder(this).setMessage(it.message).setPositiveButton(android.R.string.ok, null).show() }
        }
    }

    companion object {
        const val CAPTURE = 21
        const val PICK = 22
    }
}
