package org.evoucher.app

import android.app.Activity
import android.graphics.Bitmap
import android.graphics.BitmapFactory
import android.graphics.Canvas
import android.os.Looper
import java.io.File
import java.net.HttpURLConnection
import java.net.URL
import java.nio.ByteBuffer
import java.util.concurrent.TimeUnit
import org.json.JSONObject
import org.robolectric.Shadows.shadowOf

/**
 * What the app's tests stand on: a real `evoucher serve` on loopback (the debug build of the
 * CLI), its admin API, real voucher QR images turned into camera frames, and screenshots.
 */
class Server : AutoCloseable {
    val dir: File = kotlin.io.path.createTempDirectory("evoucher-app-server").toFile()
    private val process: Process
    val base: String

    init {
        val bin = File(repo, "target/debug/evoucher")
        check(bin.canExecute()) { "build the CLI first: cargo build -p evoucher ($bin)" }
        val pb = ProcessBuilder(bin.path, "serve", "--listen", "127.0.0.1:0").directory(dir).redirectError(File(dir, "stderr.log"))
        pb.environment()["EVOUCHER_ADMIN_TOKEN"] = ADMIN
        pb.environment()["EVOUCHER_MASTER_KEY"] = "44".repeat(32)
        process = pb.start()
        val line = process.inputStream.bufferedReader().readLine() ?: error("serve printed nothing: " + File(dir, "stderr.log").readText())
        base = line.trim().removePrefix("listening on ")
    }

    /** An admin API call; returns (status, JSON body). */
    fun call(method: String, path: String, body: JSONObject? = null): Pair<Int, JSONObject> =
        callAs(ADMIN, method, path, body).let { it.first to it.second }

    /** A call with another bearer token, or with session headers. */
    fun callAs(token: String?, method: String, path: String, body: JSONObject? = null, headers: Map<String, String> = emptyMap()): Triple<Int, JSONObject, Map<String, List<String>>> {
        val c = URL(base + path).openConnection() as HttpURLConnection
        c.requestMethod = method
        token?.let { c.setRequestProperty("Authorization", "Bearer $it") }
        headers.forEach { (k, v) -> c.setRequestProperty(k, v) }
        if (body != null) {
            c.doOutput = true
            c.setRequestProperty("Content-Type", "application/json")
            c.outputStream.use { it.write(body.toString().toByteArray()) }
        }
        val status = c.responseCode
        val text = (if (status >= 400) c.errorStream else c.inputStream)?.use { it.readBytes().toString(Charsets.UTF_8) } ?: ""
        return Triple(status, if (text.startsWith("{")) JSONObject(text) else JSONObject().put("text", text), c.headerFields.filterKeys { it != null })
    }

    /** A person with [role] (made by the admin, signed in, password changed) and an API token of theirs. */
    fun person(name: String, role: String): String {
        val otp = call("POST", "/api/v1/users", JSONObject().put("name", name).put("role", role)).second.getString("one_time_password")
        val (st, s, h) = callAs(null, "POST", "/api/v1/session", JSONObject().put("name", name).put("password", otp))
        check(st == 200) { "session: $s" }
        val cookie = h.entries.first { it.key.equals("set-cookie", true) }.value.first().substringBefore(';')
        val auth = mapOf("Cookie" to cookie, "X-CSRF-Token" to s.getString("csrf"), "Origin" to base)
        check(callAs(null, "POST", "/api/v1/me/password", JSONObject().put("current", otp).put("new", "$name-password-123"), auth).first == 204)
        val (st2, t, _) = callAs(null, "POST", "/api/v1/me/tokens", JSONObject().put("name", "t"), auth)
        check(st2 == 201) { "token: $t" }
        return t.getString("token")
    }

    fun bytes(path: String): ByteArray {
        val c = URL(base + path).openConnection() as HttpURLConnection
        c.setRequestProperty("Authorization", "Bearer $ADMIN")
        return c.inputStream.use { it.readBytes() }
    }

    /** Run the `evoucher` CLI in the server's folder; its standard output. */
    fun cli(vararg args: String): String {
        val p = ProcessBuilder(listOf(File(repo, "target/debug/evoucher").path) + args).directory(dir).redirectErrorStream(true).start()
        val out = p.inputStream.bufferedReader().readText()
        check(p.waitFor() == 0) { "evoucher ${args.joinToString(" ")}: $out" }
        return out
    }

    override fun close() {
        process.destroy()
        if (!process.waitFor(5, TimeUnit.SECONDS)) process.destroyForcibly()
        dir.deleteRecursively()
    }

    companion object {
        const val ADMIN = "app-tests-admin-token-0123456789abcdef"
        val repo = File(System.getProperty("evoucher.repo") ?: "../..")
    }
}

object Bench {
    /** Run what the app queued in the background and what that posted back, until quiet. */
    fun settle() {
        repeat(4) {
            App.drain()
            shadowOf(Looper.getMainLooper()).idle()
        }
    }

    /** A 1280×720 camera frame (the Y plane, rows padded to 1344 bytes) with [png]'s QR code in it. */
    fun frameWith(png: ByteArray): Triple<ByteBuffer, Int, Int> {
        val bmp = BitmapFactory.decodeByteArray(png, 0, png.size) ?: error("not an image")
        val (sym, sw, sh) = ScanActivity.luma(bmp)
        val w = 1280
        val h = 720
        val stride = 1344
        check(sw <= w && sh <= h) { "symbol ${sw}x$sh does not fit" }
        val buf = ByteBuffer.allocateDirect(stride * h)
        for (i in 0 until stride * h) buf.put(i, 190.toByte())
        val x0 = (w - sw) / 2
        val y0 = (h - sh) / 2
        for (y in 0 until sh) for (x in 0 until sw) buf.put((y0 + y) * stride + x0 + x, sym.get(y * sw + x))
        return Triple(buf, w, stride)
    }

    /** Save what [a] shows as `<name>.png` in the screenshots folder. */
    fun shot(a: Activity, name: String): File = shot(a.window.decorView, name)

    /** Save what [v] (a window's decor view: an activity's, a dialog's) shows. */
    fun shot(v: android.view.View, name: String): File {
        settle()
        // Robolectric's clock is paused: end the state animations (a ticked box) before drawing.
        v.jumpDrawablesToCurrentState()
        val bmp = Bitmap.createBitmap(v.width.coerceAtLeast(1), v.height.coerceAtLeast(1), Bitmap.Config.ARGB_8888)
        v.draw(Canvas(bmp))
        val dir = File(System.getProperty("evoucher.screenshots") ?: "target/screenshots").apply { mkdirs() }
        val f = File(dir, "$name.png")
        f.outputStream().use { bmp.compress(Bitmap.CompressFormat.PNG, 100, it) }
        return f
    }
}
