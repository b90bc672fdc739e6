package org.evoucher.sdk

import java.io.File
import java.io.IOException
import java.net.HttpURLConnection
import java.net.URL
import org.json.JSONObject

/**
 * Enrolment and sync with the program server. The core decides what to send and applies every
 * answer to the ledger; this class only carries the requests, over the platform's own HTTP
 * stack (`HttpURLConnection`): on a phone that honours the user's certificate authorities,
 * proxy settings and network security configuration. Connection failures and 5xx answers are
 * retried with backoff; anything else is final. **Blocking**: call it off the main thread.
 */
class ServerSync(
    private val ledger: RedemptionLedger,
    private val connectTimeoutMs: Int = 10_000,
    private val readTimeoutMs: Int = 60_000,
    private val attempts: Int = 4,
) {
    private data class Reply(val status: Int, val etag: String?, val date: String?, val body: String)

    /**
     * Enrol this ledger's device with the one-time [code] shown by the back office. Returns the
     * enrolment and the device **token**: keep it in the app's private storage; it is the
     * device's credential for [sync].
     *
     * @throws SyncException the server refused (a used or unknown code: `status` 4xx) or could not be reached.
     * @throws LedgerException the ledger is already enrolled.
     */
    fun enrol(server: String, code: String): Pair<Enrolment, String> {
        val base = server.trimEnd('/')
        val body = ledger.withHandle { h -> Native.enrolBody(h, code) }
        val r = send(base, null, "POST", "/api/v1/devices/enrol", body, null)
        val j = JSONObject(ledger.withHandle { h -> Native.enrolApply(h, base, r.status, r.body) })
        val e = Enrolment(base, j.getString("device_id"), j.getString("provider_id"), j.optStringOrNull("category"))
        return e to j.getString("token")
    }

    /**
     * Push what waits in the outbox, then fetch the trust list into [trustFile] (atomically) and
     * the revocations. [onProgress] is told how many entries were sent so far.
     */
    fun sync(server: String, token: String, trustFile: File, onProgress: (Int) -> Unit = {}): SyncReport {
        val base = server.trimEnd('/')
        val run = ledger.withHandle { h -> Native.syncNew(h, trustFile.path) }
        try {
            while (true) {
                val next = ledger.withHandle { h -> Native.syncNext(run, h) } ?: break
                val r = send(base, token, JSONObject(next))
                ledger.withHandle { h -> Native.syncAnswer(run, h, r.status, r.etag, r.date, r.body) }
                onProgress(JSONObject(Native.syncReport(run)).getInt("pushed"))
            }
            return SyncReport.from(JSONObject(Native.syncReport(run)))
        } finally {
            Native.syncDestroy(run)
        }
    }

    /**
     * Send the claim outbox (each claim whole: made, its documents uploaded, submitted) and
     * read back this provider's claims. Returns (sent, refused).
     */
    fun sendClaims(server: String, token: String): Pair<Int, Int> {
        val base = server.trimEnd('/')
        val run = Native.claimRunNew()
        try {
            var progress = JSONObject().put("sent", 0).put("refused", 0)
            while (true) {
                val next = ledger.withHandle { h -> Native.claimRunNext(run, h) } ?: break
                val r = send(base, token, JSONObject(next))
                progress = JSONObject(ledger.withHandle { h -> Native.claimRunAnswer(run, h, r.status, r.body) })
            }
            return progress.getInt("sent") to progress.getInt("refused")
        } finally {
            Native.claimRunDestroy(run)
        }
    }

    private fun send(base: String, token: String?, req: JSONObject): Reply = send(
        base, token, req.getString("method"), req.getString("path"), req.optStringOrNull("body"),
        req.optStringOrNull("if_none_match"), req.optStringOrNull("body_file")?.let(::File), req.optStringOrNull("file_name"),
    )

    private fun send(
        base: String, token: String?, method: String, path: String, body: String?, ifNoneMatch: String?,
        file: File? = null, fileName: String? = null,
    ): Reply {
        var wait = 250L
        var last: Exception? = null
        repeat(attempts) { attempt ->
            if (attempt > 0) { Thread.sleep(wait); wait *= 2 }
            try {
                val r = once(base, token, method, path, body, ifNoneMatch, file, fileName)
                if (r.status < 500) return r
                last = SyncException(JSONObject().put("message", "server answered HTTP ${r.status}").put("reason", "status").put("status", r.status).toString())
            } catch (e: IOException) {
                last = e
            }
        }
        val l = last
        if (l is SyncException) throw l
        throw SyncException(JSONObject().put("message", "cannot reach the server: ${l?.javaClass?.simpleName}: ${l?.message}").put("reason", "http").toString())
    }

    private fun once(
        base: String, token: String?, method: String, path: String, body: String?, ifNoneMatch: String?, file: File?, fileName: String?,
    ): Reply {
        val c = URL(base + path).openConnection() as HttpURLConnection
        try {
            c.requestMethod = method
            c.connectTimeout = connectTimeoutMs
            c.readTimeout = readTimeoutMs
            c.useCaches = false
            c.setRequestProperty("User-Agent", "evoucher-android/${BuildInfo.VERSION}")
            c.setRequestProperty("Accept", "application/json")
            if (token != null) c.setRequestProperty("Authorization", "Bearer $token")
            if (ifNoneMatch != null) c.setRequestProperty("If-None-Match", ifNoneMatch)
            if (file != null) {
                c.doOutput = true
                c.setRequestProperty("Content-Type", "application/octet-stream")
                if (fileName != null) c.setRequestProperty("X-File-Name", fileName)
                c.setFixedLengthStreamingMode(file.length())
                c.outputStream.use { out -> file.inputStream().use { it.copyTo(out) } }
            } else if (body != null) {
                val bytes = body.toByteArray(Charsets.UTF_8)
                c.doOutput = true
                c.setRequestProperty("Content-Type", "application/json")
                c.setFixedLengthStreamingMode(bytes.size)
                c.outputStream.use { it.write(bytes) }
            }
            val status = c.responseCode
            val stream = if (status >= 400) c.errorStream else if (status == 304) null else c.inputStream
            val text = stream?.use { it.readBytes().toString(Charsets.UTF_8) } ?: ""
            return Reply(status, c.getHeaderField("ETag"), c.getHeaderField("Date"), text)
        } finally {
            c.disconnect()
        }
    }
}

/** The SDK's version. */
object BuildInfo {
    const val VERSION = "0.1.0"
}
