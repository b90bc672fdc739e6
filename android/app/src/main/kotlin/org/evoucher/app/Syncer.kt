package org.evoucher.app

import android.app.job.JobInfo
import android.app.job.JobParameters
import android.app.job.JobScheduler
import android.app.job.JobService
import android.content.ComponentName
import android.content.Context
import org.evoucher.sdk.LedgerException
import org.evoucher.sdk.ServerSync
import org.evoucher.sdk.SyncReport

/** One sync of the app's ledger with its server, whoever asks (the button, the job). */
object Syncer {
    private val lock = Any()

    /** The server and the device token, or why this phone cannot sync. */
    private fun credentials(app: App): Pair<String, String> {
        val e = app.ledger.status().enrolment ?: throw LedgerException("{\"message\":\"this phone is not enrolled\",\"reason\":\"ledger\"}")
        val token = app.token ?: throw LedgerException("{\"message\":\"this phone has no device token: enrol it again\",\"reason\":\"ledger\"}")
        return e.server to token
    }

    /** Redemptions out, trust list and revocations in, then the claim outbox. */
    fun run(app: App): SyncReport = synchronized(lock) {
        val (server, token) = credentials(app)
        val report = ServerSync(app.ledger).sync(server, token, app.trustFile)
        // Claims after redemptions: the server claims only what it has accepted.
        runCatching { ServerSync(app.ledger).sendClaims(server, token) }
        report
    }

    /** Send the claim outbox now. Returns (sent, refused). */
    fun sendClaims(app: App): Pair<Int, Int> = synchronized(lock) {
        val (server, token) = credentials(app)
        ServerSync(app.ledger).sendClaims(server, token)
    }
}

/**
 * Sync in the background whenever a network is there: a periodic job (every hour, the
 * platform's exponential backoff after a failure), kept across reboots.
 */
class SyncJobService : JobService() {
    @Volatile private var worker: Thread? = null

    override fun onStartJob(params: JobParameters): Boolean {
        worker = Thread {
            val ok = runCatching { Syncer.run(App.of(this)) }.isSuccess
            jobFinished(params, !ok)
        }.apply { start() }
        return true
    }

    override fun onStopJob(params: JobParameters): Boolean {
        worker?.interrupt()
        return true
    }

    companion object {
        const val JOB_ID = 4711

        fun schedule(c: Context) {
            val js = c.getSystemService(JobScheduler::class.java) ?: return
            if (js.getPendingJob(JOB_ID) != null) return
            js.schedule(
                JobInfo.Builder(JOB_ID, ComponentName(c, SyncJobService::class.java))
                    .setRequiredNetworkType(JobInfo.NETWORK_TYPE_ANY)
                    .setPeriodic(60 * 60 * 1000L)
                    .setBackoffCriteria(60_000L, JobInfo.BACKOFF_POLICY_EXPONENTIAL)
                    .setPersisted(true)
                    .build(),
            )
        }
    }
}
