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

/** One sync: the ledger's report, and what became of the claim outbox. */
data class SyncOutcome(val report: SyncReport, val claimsSent: Int, val claimsRefused: Int, val claimsError: String?)

/** One sync of the app's ledger with its server, whoever asks (the button, the job). */
object Syncer {
    private val lock = Any()

    /** The server and the device token, or why this phone cannot sync. */
    private fun credentials(app: App): Pair<String, String> {
        val e = app.ledger.status().enrolment ?: throw LedgerException("{\"message\":\"this phone is not enrolled\",\"reason\":\"ledger\"}")
        val token = app.token ?: throw LedgerException("{\"message\":\"this phone has no device token: enrol it again\",\"reason\":\"ledger\"}")
        return e.server to token
    }

    /**
     * Redemptions out, trust list and revocations in, then the claim outbox. A claim outbox that
     * could not be sent does not undo the sync: it is reported (and the claims stay queued for
     * the next sync), so that neither the provider nor the background job takes it for sent.
     */
    fun run(app: App): SyncOutcome = synchronized(lock) {
        val (server, token) = credentials(app)
        val report = ServerSync(app.ledger).sync(server, token, app.trustFile)
        // Claims after redemptions: the server claims only what it has accepted.
        ServerSync(app.ledger).runCatching { sendClaims(server, token) }.fold(
            { (sent, refused) -> SyncOutcome(report, sent, refused, null) },
            { SyncOutcome(report, 0, 0, it.message ?: it.toString()) },
        )
    }

    /** What the provider is told after a sync. */
    fun message(c: Context, o: SyncOutcome): String = buildList {
        add(c.getString(R.string.sync_done, o.report.pushed, o.report.accepted, o.report.conflicts))
        if (o.claimsSent > 0) add(c.resources.getQuantityString(R.plurals.claims_sent, o.claimsSent, o.claimsSent))
        if (o.claimsRefused > 0) add(c.resources.getQuantityString(R.plurals.claims_refused, o.claimsRefused, o.claimsRefused))
        o.claimsError?.let { add(c.getString(R.string.claims_not_sent, it)) }
    }.joinToString("\n")

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
            // A claim outbox left unsent counts as a failure: the platform retries with backoff.
            val ok = runCatching { Syncer.run(App.of(this)) }.getOrNull()?.claimsError == null
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
