package org.evoucher.app

import android.content.Context
import android.content.res.Configuration
import java.util.Locale

/** What the provider can change (Settings screen). */
class Settings(private val c: Context) {
    private val p get() = App.of(c).prefs

    var language: String
        get() = p.getString("language", "") ?: ""
        set(v) { p.edit().putString("language", v).apply() }
    var sound: Boolean
        get() = p.getBoolean("sound", true)
        set(v) { p.edit().putBoolean("sound", v).apply() }
    var vibration: Boolean
        get() = p.getBoolean("vibration", true)
        set(v) { p.edit().putBoolean("vibration", v).apply() }
    /** Lists older than this many days are stale. */
    var staleDays: Int
        get() = p.getInt("stale_days", 3)
        set(v) { p.edit().putInt("stale_days", v.coerceIn(1, 60)).apply() }

    companion object {
        val LANGUAGES = listOf("", "en", "fr", "es", "ar")

        /** [base] in the chosen language (or the phone's). */
        fun wrap(base: Context): Context {
            val lang = base.getSharedPreferences("evoucher", Context.MODE_PRIVATE).getString("language", "") ?: ""
            if (lang.isEmpty()) return base
            val locale = Locale.forLanguageTag(lang)
            Locale.setDefault(locale)
            val conf = Configuration(base.resources.configuration)
            conf.setLocale(locale)
            conf.setLayoutDirection(locale)
            return base.createConfigurationContext(conf)
        }
    }
}
