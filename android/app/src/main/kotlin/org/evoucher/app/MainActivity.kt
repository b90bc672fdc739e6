package org.evoucher.app

import android.content.Intent
import android.os.Bundle
import android.widget.LinearLayout
import android.widget.TextView
import android.widget.Toast
import org.evoucher.sdk.SyncStatus

/** Home: one obvious action (scan), the sync panel with its warnings, and the way to the rest. */
class MainActivity : Screen() {
    private lateinit var panel: LinearLayout
    private lateinit var syncButton: TextView

    override fun onCreate(savedInstanceState: Bundle?) {
        super.onCreate(savedInstanceState)
        val root = column()
        root.addView(text(getString(R.string.app_name), 28f, bold = true))
        root.addView(button(getString(R.string.scan_voucher)) { startActivity(Intent(this, ScanActivity::class.java)) }.apply {
            minHeight = dp(96)
            textSize = 26f
        })
        root.addView(button(getString(R.string.from_photo), Palette.MUTED) {
            startActivity(Intent(this, ScanActivity::class.java).putExtra(ScanActivity.EXTRA_GALLERY, true))
        })
        panel = column(0)
        root.addView(panel)
        syncButton = button(getString(R.string.sync_now), Palette.INK) { syncNow() }
        root.addView(syncButton)
        root.addView(button(getString(R.string.history), Palette.MUTED) { startActivity(Intent(this, HistoryActivity::class.java)) })
        root.addView(button(getString(R.string.claims), Palette.MUTED) { startActivity(Intent(this, ClaimsActivity::class.java)) })
        root.addView(button(getString(R.string.settings), Palette.MUTED) { startActivity(Intent(this, SettingsActivity::class.java)) })
        setContentView(scroll(root))
    }

    override fun onResume() {
        super.onResume()
        refresh()
    }

    fun refresh() {
        App.background({ app.ledger.status(Settings(this).staleDays * 86_400L) }) { r ->
            r.onSuccess { s ->
                if (s.enrolment == null) {
                    startActivity(Intent(this, EnrolActivity::class.java))
                    finish()
                } else show(s)
            }.onFailure { panel.removeAllViews(); panel.addView(warning(it.message ?: it.toString())) }
        }
    }

    private fun show(s: SyncStatus) {
        panel.removeAllViews()
        val e = s.enrolment!!
        panel.addView(text(getString(R.string.enrolled_as, e.provider, e.deviceId), 14f, Palette.MUTED))
        val never = getString(R.string.never)
        panel.addView(text(getString(R.string.last_sync, s.lastSyncAt?.let(Fmt::time) ?: never), 16f))
        panel.addView(text(getString(R.string.waiting, s.waiting), 16f, bold = s.waiting > 0))
        panel.addView(text(getString(R.string.trust_age, s.trustCheckedAt?.let(Fmt::time) ?: never), 14f, Palette.MUTED))
        panel.addView(text(getString(R.string.revocations_age, s.revocationsCheckedAt?.let(Fmt::time) ?: never), 14f, Palette.MUTED))
        if (s.clockSuspect) panel.addView(warning(getString(R.string.clock_wrong)))
        if (s.trustStale) panel.addView(warning(getString(R.string.stale_trust)))
        if (s.revocationsStale) panel.addView(warning(getString(R.string.stale_revocations)))
    }

    private fun syncNow() {
        syncButton.isEnabled = false
        syncButton.text = getString(R.string.syncing)
        App.background({ Syncer.run(app) }) { r ->
            syncButton.isEnabled = true
            syncButton.text = getString(R.string.sync_now)
            val msg = r.fold(
                { Syncer.message(this, it) },
                { getString(R.string.sync_failed, it.message ?: it.toString()) },
            )
            Toast.makeText(this, msg, Toast.LENGTH_LONG).show()
            refresh()
        }
    }
}
