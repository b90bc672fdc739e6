package org.evoucher.app

import android.content.Intent
import android.os.Bundle
import android.text.InputType
import android.view.View
import android.widget.AdapterView
import android.widget.ArrayAdapter
import android.widget.Spinner
import android.widget.Switch
import android.widget.Toast
import java.io.File

/** Server, provider and device; language; sound and vibration; stale limit; export; about. */
class SettingsActivity : Screen() {
    override fun onCreate(savedInstanceState: Bundle?) {
        super.onCreate(savedInstanceState)
        val s = Settings(this)
        val root = column()
        root.addView(text(getString(R.string.settings), 26f, bold = true))

        root.addView(text(getString(R.string.language), 18f, bold = true))
        val names = listOf(getString(R.string.language_system), "English", "Français", "Español", "العربية")
        root.addView(Spinner(this).apply {
            adapter = ArrayAdapter(this@SettingsActivity, android.R.layout.simple_spinner_dropdown_item, names)
            minimumHeight = dp(56)
            contentDescription = getString(R.string.language)
            setSelection(Settings.LANGUAGES.indexOf(s.language).coerceAtLeast(0), false)
            onItemSelectedListener = object : AdapterView.OnItemSelectedListener {
                override fun onItemSelected(p: AdapterView<*>?, v: View?, pos: Int, id: Long) {
                    if (Settings.LANGUAGES[pos] != s.language) { s.language = Settings.LANGUAGES[pos]; recreate() }
                }
                override fun onNothingSelected(p: AdapterView<*>?) {}
            }
        })
        root.addView(switch(getString(R.string.sound), s.sound) { s.sound = it })
        root.addView(switch(getString(R.string.vibration), s.vibration) { s.vibration = it })
        root.addView(text(getString(R.string.stale_days), 16f))
        root.addView(field(getString(R.string.stale_days), InputType.TYPE_CLASS_NUMBER).apply {
            setText(s.staleDays.toString())
            setOnFocusChangeListener { _, has -> if (!has) text.toString().toIntOrNull()?.let { s.staleDays = it } }
        })
        root.addView(button(getString(R.string.export_ledger), Palette.INK) { export() })

        root.addView(text(getString(R.string.about), 18f, bold = true))
        val about = text("", 14f, Palette.MUTED)
        root.addView(about)
        setContentView(scroll(root))
        App.background({ app.ledger.status() }) { r ->
            r.onSuccess { st ->
                about.text = getString(
                    R.string.about_text, VERSION, org.evoucher.sdk.BuildInfo.VERSION,
                    st.enrolment?.let { "${it.deviceId} (${it.provider})" } ?: "-", st.enrolment?.server ?: "-",
                )
            }
        }
    }

    private fun switch(label: String, on: Boolean, set: (Boolean) -> Unit) = Switch(this).apply {
        text = label
        textSize = 18f
        isChecked = on
        minHeight = dp(56)
        setOnCheckedChangeListener { _, v -> set(v) }
    }

    /** The ledger as CSV in the app's cache, offered to any app that takes text/csv. */
    private fun export() {
        val dir = File(cacheDir, "export").apply { mkdirs() }
        val f = File(dir, "evoucher-ledger.csv")
        App.background({ app.ledger.exportCsv(f.path); f.readText() }) { r ->
            r.onSuccess { csv ->
                val send = Intent(Intent.ACTION_SEND).setType("text/csv")
                    .putExtra(Intent.EXTRA_SUBJECT, f.name)
                    .putExtra(Intent.EXTRA_TEXT, csv)
                    .putExtra(Intent.EXTRA_STREAM, ExportProvider.uri(f.name))
                    .addFlags(Intent.FLAG_GRANT_READ_URI_PERMISSION)
                runCatching { startActivity(Intent.createChooser(send, getString(R.string.export_ledger))) }
            }.onFailure { Toast.makeText(this, it.message, Toast.LENGTH_LONG).show() }
        }
    }

    companion object {
        const val VERSION = "0.1.0"
    }
}
