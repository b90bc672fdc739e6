package org.evoucher.app

import android.content.Context
import android.media.AudioManager
import android.media.ToneGenerator
import android.os.Build
import android.os.VibrationEffect
import android.os.Vibrator

/** A distinct sound and vibration per outcome, each of which the settings can turn off. */
enum class Outcome { VALID, CHOOSE, REFUSED }

object Feedback {
    fun give(c: Context, o: Outcome) {
        val s = Settings(c)
        if (s.sound) runCatching {
            val tg = ToneGenerator(AudioManager.STREAM_NOTIFICATION, 90)
            when (o) {
                Outcome.VALID -> tg.startTone(ToneGenerator.TONE_PROP_ACK, 200)
                Outcome.CHOOSE -> tg.startTone(ToneGenerator.TONE_PROP_BEEP2, 300)
                Outcome.REFUSED -> tg.startTone(ToneGenerator.TONE_SUP_ERROR, 700)
            }
        }
        if (s.vibration) runCatching {
            val v = c.getSystemService(Vibrator::class.java) ?: return@runCatching
            val pattern = when (o) {
                Outcome.VALID -> longArrayOf(0, 80)
                Outcome.CHOOSE -> longArrayOf(0, 80, 120, 80)
                Outcome.REFUSED -> longArrayOf(0, 400, 150, 400)
            }
            if (Build.VERSION.SDK_INT >= 26) v.vibrate(VibrationEffect.createWaveform(pattern, -1))
            else @Suppress("DEPRECATION") v.vibrate(pattern, -1)
        }
    }
}
