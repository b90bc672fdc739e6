package org.evoucher.app

import android.app.Application
import android.content.Context
import android.content.SharedPreferences
import android.os.Handler
import android.os.Looper
import java.io.File
import java.util.concurrent.ExecutorService
import java.util.concurrent.Executors
import org.evoucher.sdk.RedemptionLedger
import org.evoucher.sdk.Verifier

/**
 * The app's single state: the ledger (opened once, kept open), the verifier built from the
 * trust list that sync keeps in the app's files, and the settings. Work that touches the disk
 * or the network runs on one background thread, in order.
 */
class App : Application() {
    val ledgerFile: File get() = File(filesDir, "ledger.db")
    val trustFile: File get() = File(filesDir, "trust.json")
    val prefs: SharedPreferences get() = getSharedPreferences("evoucher", Context.MODE_PRIVATE)

    val ledger: RedemptionLedger by lazy { RedemptionLedger(ledgerFile.path) }

    @Volatile private var verifierFor: Long = -1
    @Volatile private var cachedVerifier: Verifier? = null

    /** The verifier for the trust list now on disk (rebuilt when sync replaced it); null before the first sync. */
    @Synchronized
    fun verifier(): Verifier? {
        val f = trustFile
        if (!f.exists()) return null
        val stamp = f.lastModified() xor f.length()
        if (cachedVerifier == null || stamp != verifierFor) {
            cachedVerifier?.close()
            cachedVerifier = Verifier(f.readText())
            verifierFor = stamp
        }
        return cachedVerifier
    }

    /** The device token (the credential enrolment gave); kept in the app's private storage only. */
    var token: String?
        get() = prefs.getString("token", null)
        set(v) { prefs.edit().putString("token", v).apply() }

    override fun onCreate() {
        super.onCreate()
        SyncJobService.schedule(this)
    }

    companion object {
        private val io: ExecutorService = Executors.newSingleThreadExecutor { r -> Thread(r, "evoucher-io").apply { isDaemon = true } }
        private val main = Handler(Looper.getMainLooper())

        /** Run [work] in the background, then [done] on the main thread with its result or error. */
        fun <T> background(work: () -> T, done: (Result<T>) -> Unit) {
            io.execute {
                val r = runCatching(work)
                main.post { done(r) }
            }
        }

        /** Wait until the background work queued so far has run (tests). */
        fun drain() {
            io.submit {}.get()
        }

        fun of(c: Context): App = c.applicationContext as App
    }
}
