package org.evoucher.app

import android.content.Intent
import android.net.Uri
import android.os.Bundle
import android.text.InputType
import android.widget.EditText
import android.widget.TextView
import org.evoucher.sdk.ServerSync

/**
 * Enrolment: scan the code the back office shows (`evoucher:enrol?server=…&code=…`) or type
 * the server and the one-time code. The device key is the ledger's; the token goes to the
 * app's private storage; the first sync fetches the trust list and the revocations.
 */
class EnrolActivity : Screen() {
    private lateinit var server: EditText
    private lateinit var code: EditText
    private lateinit var status: TextView

    override fun onCreate(savedInstanceState: Bundle?) {
        super.onCreate(savedInstanceState)
        val root = column()
        root.addView(text(getString(R.string.enrol_title), 26f, bold = true))
        root.addView(text(getString(R.string.enrol_hint), 16f, Palette.MUTED))
        root.addView(button(getString(R.string.scan_enrolment)) {
            startActivityForResult(Intent(this, ScanActivity::class.java).putExtra(ScanActivity.EXTRA_RAW, true), SCAN)
        })
        server = field(getString(R.string.server_address), InputType.TYPE_CLASS_TEXT or InputType.TYPE_TEXT_VARIATION_URI)
        code = field(getString(R.string.enrolment_code))
        root.addView(server)
        root.addView(code)
        root.addView(button(getString(R.string.enrol), Palette.INK) { enrol() })
        status = text("", 16f)
        root.addView(status)
        setContentView(scroll(root))
    }

    @Deprecated("Activity result API of the platform")
    override fun onActivityResult(requestCode: Int, resultCode: Int, data: Intent?) {
        super.onActivityResult(requestCode, resultCode, data)
        if (requestCode == SCAN && resultCode == RESULT_OK) {
            val parsed = parse(data?.getStringExtra(ScanActivity.RESULT_TEXT) ?: "")
            if (parsed == null) {
                status.text = getString(R.string.not_enrolment_code)
            } else {
                server.setText(parsed.first)
                code.setText(parsed.second)
                enrol()
            }
        }
    }

    fun enrol() {
        val s = server.text.toString().trim()
        val c = code.text.toString().trim()
        if (s.isEmpty() || c.isEmpty()) return
        status.text = getString(R.string.syncing)
        App.background({
            val (_, token) = ServerSync(app.ledger).enrol(s, c)
            app.token = token
            runCatching { Syncer.run(app) } // offline right after enrolling: the job syncs later
        }) { r ->
            r.onSuccess {
                startActivity(Intent(this, MainActivity::class.java).addFlags(Intent.FLAG_ACTIVITY_CLEAR_TOP))
                finish()
            }.onFailure { status.text = getString(R.string.enrol_failed, it.message ?: it.toString()) }
        }
    }

    companion object {
        const val SCAN = 1

        /** `evoucher:enrol?server=…&code=…` → (server, code); null for anything else. */
        fun parse(text: String): Pair<String, String>? {
            if (!text.startsWith("evoucher:enrol?")) return null
            val u = Uri.parse("evoucher://enrol?" + text.substringAfter('?'))
            val s = u.getQueryParameter("server") ?: return null
            val c = u.getQueryParameter("code") ?: return null
            if (!(s.startsWith("https://") || s.startsWith("http://")) || c.isBlank()) return null
            return s to c
        }
    }
}
