package org.evoucher.app

import android.Manifest
import android.app.AlertDialog
import android.content.Intent
import android.view.View
import android.widget.Button
import android.widget.EditText
import android.widget.TextView
import android.view.ViewGroup
import java.io.File
import org.evoucher.sdk.Verdict
import org.json.JSONArray
import org.json.JSONObject
import org.junit.AfterClass
import org.junit.Assert.assertEquals
import org.junit.Assert.assertFalse
import org.junit.Assert.assertNotNull
import org.junit.Assert.assertNull
import org.junit.Assert.assertTrue
import org.junit.BeforeClass
import org.junit.FixMethodOrder
import org.junit.Test
import org.junit.runner.RunWith
import org.junit.runners.MethodSorters
import org.robolectric.Robolectric
import org.robolectric.RobolectricTestRunner
import org.robolectric.RuntimeEnvironment
import org.robolectric.Shadows.shadowOf
import org.robolectric.annotation.Config
import org.robolectric.shadows.ShadowDialog

/**
 * The provider's day, screen by screen, on the JVM: the app's real code, the real JNI library
 * (host build), a real `evoucher serve` on loopback. Each step leaves a screenshot.
 * The steps share one phone (the app's files) and one server, in order.
 */
@RunWith(RobolectricTestRunner::class)
@Config(sdk = [34], qualifiers = "w360dp-h720dp-xhdpi")
@FixMethodOrder(MethodSorters.NAME_ASCENDING)
class AppWalkTest {
    private val app get() = RuntimeEnvironment.getApplication() as App

    private fun texts(v: View): List<String> = when (v) {
        is ViewGroup -> (0 until v.childCount).flatMap { texts(v.getChildAt(it)) }
        is TextView -> listOf(v.text.toString())
        else -> emptyList()
    }

    private fun screen(a: android.app.Activity) = texts(a.window.decorView).joinToString("\n")

    private fun button(a: android.app.Activity, label: String): Button =
        allViews(a.window.decorView).filterIsInstance<Button>().first { it.text.toString() == label }

    private fun allViews(v: View): List<View> = listOf(v) + if (v is ViewGroup) (0 until v.childCount).flatMap { allViews(v.getChildAt(it)) } else emptyList()

    /** The phone's files live under the app's files dir, which Robolectric makes new for each test: keep them across steps. */
    private fun restorePhone() {
        val files = app.filesDir
        phoneFiles.listFiles()?.forEach { it.copyTo(File(files, it.name), overwrite = true) }
        token?.let { app.token = it }
    }

    private fun savePhone() {
        phoneFiles.deleteRecursively(); phoneFiles.mkdirs()
        app.filesDir.listFiles()?.filter { it.isFile }?.forEach { it.copyTo(File(phoneFiles, it.name)) }
        token = app.token
    }

    private fun verdictFor(text: String): VerdictActivity {
        val a = Robolectric.buildActivity(VerdictActivity::class.java, Intent(app, VerdictActivity::class.java).putExtra(VerdictActivity.EXTRA_TEXT, text)).setup().get()
        Bench.settle()
        return a
    }

    @Test
    fun a_enrol_by_scanning_the_back_office_code() {
        val main = Robolectric.buildActivity(MainActivity::class.java).setup().get()
        Bench.settle()
        val next = shadowOf(main).nextStartedActivity
        assertEquals("an unenrolled phone is sent to enrolment", EnrolActivity::class.java.name, next.component?.className)
        val enrol = Robolectric.buildActivity(EnrolActivity::class.java).setup().get()
        Bench.shot(enrol, "01-enrol")
        button(enrol, enrol.getString(R.string.scan_enrolment)).performClick()
        val req = shadowOf(enrol).nextStartedActivityForResult
        assertEquals(ScanActivity::class.java.name, req.intent.component?.className)
        assertTrue(req.intent.getBooleanExtra(ScanActivity.EXTRA_RAW, false))
        // What the back office's QR code holds (docs/back-office.md).
        val qr = "evoucher:enrol?server=" + java.net.URLEncoder.encode(server.base, "UTF-8") + "&code=" + code
        shadowOf(enrol).receiveResult(req.intent, android.app.Activity.RESULT_OK, Intent().putExtra(ScanActivity.RESULT_TEXT, qr))
        Bench.settle()
        assertNotNull("the device token is kept", app.token)
        assertTrue("the first sync fetched the trust list", app.trustFile.exists())
        val s = app.ledger.status()
        assertEquals("SP-1", s.enrolment?.provider)
        assertTrue(!s.trustStale && !s.revocationsStale)
        savePhone()
    }

    @Test
    fun b_home_shows_the_sync_panel() {
        restorePhone()
        val main = Robolectric.buildActivity(MainActivity::class.java).setup().get()
        Bench.settle()
        val t = screen(main)
        assertTrue(t, t.contains(main.getString(R.string.waiting, 0)))
        assertTrue(t, !t.contains(main.getString(R.string.stale_trust)))
        Bench.shot(main, "02-home")
        // Amounts are exact at any size (a double would show .75 here).
        assertTrue(Fmt.money(123_456_789_012_345_678L, "KES"), Fmt.money(123_456_789_012_345_678L, "KES").endsWith("1,234,567,890,123,456.78"))
        assertTrue(Fmt.money(1_050L, "KES"), Fmt.money(1_050L, "KES").endsWith("10.50"))
        assertTrue(Fmt.money(7L, "JPY"), Fmt.money(7L, "JPY").endsWith("7"))
    }

    @Test
    fun c_scan_a_camera_frame_then_redeem() {
        restorePhone()
        shadowOf(app).grantPermissions(Manifest.permission.CAMERA)
        val scan = Robolectric.buildActivity(ScanActivity::class.java).setup().get()
        // Robolectric's phone has no camera: the screen says so and shows no torch.
        assertTrue(screen(scan).contains(scan.getString(R.string.no_camera)))
        assertFalse(allViews(scan.window.decorView).filterIsInstance<Button>()
            .any { it.text.toString() == scan.getString(R.string.torch) && it.visibility == View.VISIBLE })
        Bench.shot(scan, "03-scan")
        val (frame, w, stride) = Bench.frameWith(server.bytes("/api/v1/vouchers/${vouchers[0].getString("id")}/qr.png"))
        scan.feedFrame(frame, w, 720, stride, 90)
        Bench.settle()
        val next = shadowOf(scan).nextStartedActivity
        assertEquals(VerdictActivity::class.java.name, next.component?.className)
        val text = next.getStringExtra(VerdictActivity.EXTRA_TEXT)!!
        assertEquals(vouchers[0].getString("text"), text)

        val v = verdictFor(text)
        assertTrue("${v.verdict}", v.verdict is Verdict.Ok)
        val t = screen(v)
        assertTrue(t, t.contains(v.getString(R.string.verdict_valid)) && t.contains("Amina Yusuf") && t.contains("B-1"))
        Bench.shot(v, "04-verdict-valid")
        button(v, v.getString(R.string.confirm_redeem)).performClick()
        Bench.settle()
        val receipt = v.receipt!!
        assertEquals(5000L, receipt.entry.amount)
        assertTrue(screen(v).contains(receipt.entry.id))
        Bench.shot(v, "05-receipt")

        val again = verdictFor(text)
        val r = again.verdict as Verdict.Refused
        assertEquals("already_redeemed", r.reason)
        val why = screen(again)
        assertTrue(why, why.contains(again.getString(R.string.verdict_refused)) && why.contains("SP-1"))
        // The time of the first redemption is one unbreakable piece ("8:50 AM", not "8:50" over "AM").
        val clock = java.text.DateFormat.getTimeInstance(java.text.DateFormat.SHORT).format(java.util.Date(receipt.entry.at * 1000))
        assertTrue(clock, clock.contains(' ') || clock.contains('\u202F'))
        assertTrue(why, why.contains(Fmt.unbroken(clock)) && !why.contains(clock))
        Bench.shot(again, "06-verdict-already-redeemed")
        savePhone()
    }

    @Test
    fun d_partial_voucher_asks_how_much() {
        restorePhone()
        val v = verdictFor(partial.getString("text"))
        val ok = v.verdict as Verdict.Ok
        assertTrue(ok.voucher.partial)
        assertEquals(8000L, ok.balanceAmount)
        assertTrue(screen(v).contains(v.getString(R.string.verdict_choose)))
        val amount = allViews(v.window.decorView).filterIsInstance<EditText>().single()
        assertEquals("80.00", amount.text.toString())
        amount.setText("30.50")
        Bench.shot(v, "07-verdict-partial")
        button(v, v.getString(R.string.confirm_redeem)).performClick()
        Bench.settle()
        assertEquals(3050L, v.receipt!!.entry.amount)
        assertEquals(4950L, v.receipt!!.remainingAmount)
        Bench.shot(v, "08-receipt-partial")
        savePhone()
    }

    @Test
    fun e_photo_from_the_gallery_forged_and_expired() {
        restorePhone()
        val scan = Robolectric.buildActivity(ScanActivity::class.java).setup().get()
        val png = server.bytes("/api/v1/vouchers/${vouchers[1].getString("id")}/qr.png")
        assertTrue(scan.scanBitmap(android.graphics.BitmapFactory.decodeByteArray(png, 0, png.size)))
        Bench.settle()
        assertEquals(vouchers[1].getString("text"), shadowOf(scan).nextStartedActivity.getStringExtra(VerdictActivity.EXTRA_TEXT))

        // A voucher whose signature does not match its contents (a test vector, against its
        // own trust list), and one that expired last January (issued with the CLI).
        val forged = JSONObject(File(Server.repo, "test-vectors/vouchers/signature-tampered-payload.json").readText())
        val jwks = JSONObject(server.cli("keygen", "--out", "old.jwk", "--json")).get("jwks").toString()
        val expired = JSONObject(
            server.cli("issue", "--key", "old.jwk", "--iss", "https://old.example", "--program", "old", "--beneficiary", "B-9",
                "--amount", "1000", "--currency", "KES", "--valid-from", "2026-01-01T00:00:00Z", "--valid-until", "2026-02-01T00:00:00Z", "--json"),
        )
        for ((trust, text, stage, shot) in listOf(
            listOf(forged.getJSONObject("context").getJSONObject("jwks").toString(), forged.getJSONObject("stages").getString("text"), "signature", "09-verdict-forged"),
            listOf(jwks, expired.getString("text"), "expired", "10-verdict-expired"),
        )) {
            app.trustFile.writeText(trust)
            val v = verdictFor(text)
            assertEquals("$stage: ${v.verdict}", stage, (v.verdict as? Verdict.Invalid)?.stage)
            val t = screen(v)
            assertTrue(t, t.contains(v.getString(R.string.verdict_refused)))
            assertTrue(t, t.contains(v.why(v.verdict)))
            Bench.shot(v, shot)
        }
    }

    @Test
    fun f_history_filters_search_and_void() {
        restorePhone()
        val h = Robolectric.buildActivity(HistoryActivity::class.java).setup().get()
        Bench.settle()
        assertEquals(2, h.page!!.count)
        val t = screen(h)
        assertTrue(t, t.contains(h.getString(R.string.state_waiting)))
        Bench.shot(h, "11-history")
        val search = allViews(h.window.decorView).filterIsInstance<EditText>().single()
        search.setText("B-1")
        Bench.settle()
        assertEquals(1, h.page!!.count)
        val row = h.page!!.rows.single()
        h.confirmVoid(row)
        val dialog = ShadowDialog.getLatestDialog() as AlertDialog
        assertTrue(dialog.isShowing)
        Bench.shot(dialog.window!!.decorView, "12-history-void-confirm")
        // The action that gives the voucher back is red.
        assertEquals(Palette.RED, dialog.getButton(AlertDialog.BUTTON_POSITIVE).currentTextColor)
        dialog.getButton(AlertDialog.BUTTON_POSITIVE).performClick()
        Bench.settle()
        assertEquals("voided", h.page!!.rows.single().state)
        search.setText("")
        Bench.settle()
        assertEquals(2, h.page!!.count)
        assertEquals(mapOf("KES" to 3050L), h.page!!.totals)
        savePhone()
    }

    @Test
    fun g_sync_now_sends_everything() {
        restorePhone()
        val main = Robolectric.buildActivity(MainActivity::class.java).setup().get()
        Bench.settle()
        assertTrue(screen(main).contains(main.getString(R.string.waiting, 3)))
        button(main, main.getString(R.string.sync_now)).performClick()
        Bench.settle()
        assertTrue(screen(main), screen(main).contains(main.getString(R.string.waiting, 0)))
        // The provider is told what the sync did, and nothing of claims (there were none).
        val told = org.robolectric.shadows.ShadowToast.getTextOfLatestToast()
        assertTrue(told, Regex("Sent 3, accepted \\d+, conflicts 0\\.").matches(told))
        val (st, list) = server.call("GET", "/api/v1/redemptions?limit=100")
        assertEquals(200, st)
        val got = list.getJSONArray("redemptions")
        assertEquals("two redemptions and a void reached the server", 3, got.length())
        savePhone()
    }

    @Test
    fun h_stale_lists_and_a_wrong_clock_are_warned_of() {
        restorePhone()
        val state = File(app.ledgerFile.path + ".sync.json")
        val j = JSONObject(state.readText())
        val now = System.currentTimeMillis() / 1000
        j.put("trust_checked_at", now - 10 * 86_400).put("revocations_checked_at", now - 10 * 86_400).put("server_offset", -7200)
        state.writeText(j.toString())
        val main = Robolectric.buildActivity(MainActivity::class.java).setup().get()
        Bench.settle()
        val t = screen(main)
        for (w in listOf(R.string.stale_trust, R.string.stale_revocations, R.string.clock_wrong)) assertTrue(t, t.contains(main.getString(w)))
        Bench.shot(main, "13-home-warnings")
        // A verdict made under a suspect clock says so.
        val v = verdictFor(vouchers[2].getString("text"))
        assertTrue(screen(v).contains(v.getString(R.string.clock_wrong)))
    }

    @Test
    fun i_other_apps_get_a_verified_voucher_and_plain_scans() {
        restorePhone()
        val png = server.bytes("/api/v1/vouchers/${vouchers[2].getString("id")}/qr.png")
        val (frame, w, stride) = Bench.frameWith(png)
        val verify = Robolectric.buildActivity(ScanIntentActivity::class.java, Intent(ScanIntentActivity.ACTION_VERIFY)).setup().get()
        verify.feedFrame(frame, w, 720, stride, 90)
        Bench.settle()
        val r = shadowOf(verify).resultIntent
        assertEquals(android.app.Activity.RESULT_OK, shadowOf(verify).resultCode)
        assertEquals("ok", r.getStringExtra("verdict"))
        assertTrue(r.getBooleanExtra("valid", false))
        assertEquals(vouchers[2].getString("id"), r.getStringExtra("voucher_id"))
        assertEquals(r.getStringExtra("voucher_id"), r.getStringExtra("value"))
        assertEquals("B-3", r.getStringExtra("beneficiary_id"))
        assertEquals(5000L, r.getLongExtra("amount", 0))
        assertEquals("KES", r.getStringExtra("currency"))
        assertEquals("nothing was redeemed", 0, app.ledger.history(org.evoucher.sdk.HistoryFilter(search = "B-3")).count)

        val text = vouchers[2].getString("text")
        for (action in listOf("org.idpass.smartscanner.odk.QRCODE_SCAN", "org.idpass.smartscanner.QRCODE_SCAN", "com.google.zxing.client.android.SCAN")) {
            val (f2, _, _) = Bench.frameWith(png)
            val ask = Intent(action).apply { if (action.contains(".odk.")) putExtra("prefix", "voucher_") }
            val s = Robolectric.buildActivity(ScanIntentActivity::class.java, ask).setup().get()
            s.feedFrame(f2, w, 720, stride, 0)
            Bench.settle()
            val out = shadowOf(s).resultIntent
            assertEquals(text, out.getStringExtra("value"))
            assertEquals(text, out.getStringExtra("SCAN_RESULT"))
            // SmartScanner's own layout, for callers written against it; ZXing's callers get none of it.
            val smart = action.startsWith("org.idpass")
            assertEquals(action, if (smart) text else null, out.getBundleExtra("result")?.getString("qr_code_text"))
            assertEquals(action, if (smart) "qrcode" else null, out.getBundleExtra("result")?.getString("mode"))
            val prefix = if (action.contains(".odk.")) "voucher_" else ""
            assertEquals(action, if (smart) text else null, out.getStringExtra(prefix + "qr_code_text"))
        }
    }

    @Test
    fun j_settings_and_arabic_right_to_left() {
        restorePhone()
        val s = Robolectric.buildActivity(SettingsActivity::class.java).setup().get()
        Bench.settle()
        assertTrue(screen(s).contains("SP-1"))
        Bench.shot(s, "14-settings")
        button(s, s.getString(R.string.export_ledger)).performClick()
        Bench.settle()
        val chooser = shadowOf(s).nextStartedActivity
        val send = chooser.getParcelableExtra<Intent>(Intent.EXTRA_INTENT)!!
        val uri = send.getParcelableExtra<android.net.Uri>(Intent.EXTRA_STREAM)!!
        assertEquals("content", uri.scheme)
        val csv = File(s.cacheDir, "export/evoucher-ledger.csv").readLines()
        assertEquals(1 + 3, csv.size)

        Settings(app).language = "ar"
        val main = Robolectric.buildActivity(MainActivity::class.java).setup().get()
        Bench.settle()
        assertEquals(View.LAYOUT_DIRECTION_RTL, main.window.decorView.layoutDirection)
        assertTrue(screen(main).contains("مسح القسيمة"))
        Bench.shot(main, "15-home-arabic")
        val v = verdictFor(vouchers[0].getString("text"))
        assertTrue("its redemption was voided: valid again", screen(v).contains("صالح"))
        Bench.shot(v, "16-verdict-arabic")
        Settings(app).language = ""
    }

    @Test
    fun k_claims_with_a_photo_returned_and_answered() {
        restorePhone()
        val c = Robolectric.buildActivity(ClaimsActivity::class.java).setup().get()
        Bench.settle()
        // The partial redemption is accepted and unclaimed (the other was voided).
        val boxes = allViews(c.window.decorView).filterIsInstance<android.widget.CheckBox>()
        assertEquals(1, boxes.size)
        boxes[0].performClick()
        takePhoto(c)
        assertEquals(1, c.photos.size)
        allViews(c.window.decorView).filterIsInstance<EditText>().single().setText("Week 48 pharmacy receipts")
        Bench.shot(c, "17-claim-new")
        button(c, c.getString(R.string.claim_submit)).performClick()
        Bench.settle()
        val mine = c.claims!!.claims.single()
        assertEquals("submitted", mine.state)
        assertEquals(3050L, mine.claimed)
        assertTrue(screen(c).contains(c.getString(R.string.claim_submitted)))
        // Everything is claimed now: the claim line counts its redemption in words, and the
        // submit button is off.
        assertTrue(screen(c).contains(c.resources.getQuantityString(R.plurals.claim_lines, 1, 1)))
        val off = button(c, c.getString(R.string.claim_submit))
        assertFalse(off.isEnabled)
        // Off looks off: pale with grey text, unlike the grey photo buttons that work.
        fun fill(b: Button) = (b.background as android.graphics.drawable.GradientDrawable).color!!.getColorForState(b.drawableState, 0)
        assertEquals(Palette.OFF, fill(off))
        assertEquals(Palette.OFF_INK, off.currentTextColor)
        assertEquals(Palette.MUTED, fill(button(c, c.getString(R.string.take_photo))))

        // The accountant asks a question; the phone hears it at its next sync.
        val acct = server.person("acct", "accountant")
        val (st, d, _) = server.callAs(acct, "POST", "/api/v1/claims/${mine.id}/decision",
            JSONObject().put("stage", 1).put("decision", "return").put("reason", "The receipt is cut off: send all of it."))
        assertEquals(d.toString(), 200, st)
        val synced = Syncer.run(app)
        assertNull(synced.claimsError)
        // A claim outbox that could not be sent is reported, not taken for sent.
        val unsent = Syncer.message(app, synced.copy(claimsSent = 0, claimsError = "timeout"))
        assertTrue(unsent, unsent.contains(app.getString(R.string.claims_not_sent, "timeout")))
        val sent = Syncer.message(app, synced.copy(claimsSent = 2, claimsRefused = 1, claimsError = null))
        assertTrue(sent, sent.contains("2 claims sent.") && sent.contains("1 claim refused"))
        c.load()
        Bench.settle()
        assertEquals("returned", c.claims!!.claims.single().state)
        assertTrue(screen(c).contains("The receipt is cut off"))
        Bench.shot(c, "18-claim-returned")
        button(c, c.getString(R.string.claim_answer)).performClick()
        takePhoto(c)
        button(c, c.getString(R.string.claim_answer)).performClick()
        Bench.settle()
        val answered = c.claims!!.claims.single()
        assertEquals("submitted", answered.state)
        val (_, full, _) = server.callAs(acct, "GET", "/api/v1/claims/${mine.id}")
        assertEquals("both photos reached the server", 2, full.getJSONArray("documents").length())
        Bench.shot(c, "19-claim-answered")

        val h = Robolectric.buildActivity(HistoryActivity::class.java).setup().get()
        Bench.settle()
        assertTrue(h.page!!.rows.any { it.state == "claimed" })
        savePhone()
    }

    private var photosTaken = 0

    @Test
    fun l_an_openg2p_jwt_voucher_is_read_like_ours() {
        restorePhone()
        // An OpenG2P PBMS voucher: a JWT signed RS256, its key in the program's JWKS.
        val kp = java.security.KeyPairGenerator.getInstance("RSA").apply { initialize(2048) }.generateKeyPair()
        val pub = kp.public as java.security.interfaces.RSAPublicKey
        val b64 = java.util.Base64.getUrlEncoder().withoutPadding()
        fun unsigned(b: java.math.BigInteger) = b.toByteArray().dropWhile { it == 0.toByte() }.toByteArray()
        val jwk = JSONObject().put("kty", "RSA").put("kid", "pbms-1").put("alg", "RS256").put("use", "sig")
            .put("n", b64.encodeToString(unsigned(pub.modulus))).put("e", b64.encodeToString(unsigned(pub.publicExponent))).put("currency", "PHP")
        app.trustFile.writeText(JSONObject().put("keys", JSONArray().put(jwk)).toString())
        val now = System.currentTimeMillis() / 1000
        val header = JSONObject().put("alg", "RS256").put("kid", "pbms-1").put("typ", "JWT")
        val claims = JSONObject().put("iss", "https://g2p.example.gov/api/v1/payments").put("sub", "12").put("iat", now - 3600)
            .put("exp", now + 30 * 86_400).put("amount", "5000.0").put("type", "voucher").put("code", "ABC123").put("bName", "Juan dela Cruz")
        val input = b64.encodeToString(header.toString().toByteArray()) + "." + b64.encodeToString(claims.toString().toByteArray())
        val sig = java.security.Signature.getInstance("SHA256withRSA").apply { initSign(kp.private); update(input.toByteArray()) }.sign()
        val jwt = input + "." + b64.encodeToString(sig)

        val v = verdictFor(jwt)
        val ok = v.verdict as Verdict.Ok
        assertEquals("Juan dela Cruz", ok.voucher.beneficiaryName)
        assertEquals(500000L, ok.voucher.amount)
        assertTrue(screen(v).contains("Juan dela Cruz"))
        Bench.shot(v, "20-verdict-openg2p")
        button(v, v.getString(R.string.confirm_redeem)).performClick()
        Bench.settle()
        assertEquals(500000L, v.receipt!!.entry.amount)
        assertTrue((verdictFor(jwt).verdict as Verdict.Refused).reason == "already_redeemed")
    }

    /** Take a photo as the camera app would: it writes a JPEG to the URI it was given. */
    private fun takePhoto(c: ClaimsActivity) {
        button(c, c.getString(R.string.take_photo)).performClick()
        val req = shadowOf(c).nextStartedActivityForResult
        assertEquals(android.provider.MediaStore.ACTION_IMAGE_CAPTURE, req.intent.action)
        val out = req.intent.getParcelableExtra<android.net.Uri>(android.provider.MediaStore.EXTRA_OUTPUT)!!
        val bmp = android.graphics.Bitmap.createBitmap(320, 480, android.graphics.Bitmap.Config.ARGB_8888)
        // Each photo its own picture (the server keeps a document once by its SHA-256).
        android.graphics.Canvas(bmp).drawColor(android.graphics.Color.rgb(255, 255, 255 - 40 * photosTaken++))
        app.contentResolver.openOutputStream(out)!!.use { bmp.compress(android.graphics.Bitmap.CompressFormat.JPEG, 80, it) }
        shadowOf(c).receiveResult(req.intent, android.app.Activity.RESULT_OK, Intent())
        Bench.settle()
    }

    companion object {
        lateinit var server: Server
        lateinit var code: String
        lateinit var vouchers: List<JSONObject>
        lateinit var partial: JSONObject
        val phoneFiles: File = kotlin.io.path.createTempDirectory("evoucher-phone").toFile()
        var token: String? = null

        @BeforeClass @JvmStatic
        fun serve() {
            server = Server()
            fun ok(r: Pair<Int, JSONObject>): JSONObject { assertTrue(r.second.toString(), r.first in 200..299); return r.second }
            ok(server.call("POST", "/api/v1/programs", JSONObject().put("id", "food").put("name", "Food").put("issuer", "https://food.example").put("currency", "KES").put("amount", 5000)))
            ok(server.call("POST", "/api/v1/programs", JSONObject().put("id", "medic").put("name", "Medicines").put("issuer", "https://medic.example").put("currency", "KES").put("amount", 8000).put("partial", true)))
            ok(server.call("POST", "/api/v1/providers", JSONObject().put("id", "SP-1").put("name", "Duka la Amani").put("category", "grocery")
                .put("payout", JSONObject().put("kind", "bank").put("holder", "Duka la Amani").put("number", "0123 4567 8901").put("bank", "Equity Bank"))))
            code = ok(server.call("POST", "/api/v1/providers/SP-1/enrolment-codes", JSONObject())).getString("code")
            val people = JSONArray((1..3).map { JSONObject().put("id", "B-$it").put("name", if (it == 1) "Amina Yusuf" else "Person $it") })
            val issued = ok(server.call("POST", "/api/v1/programs/food/vouchers", JSONObject().put("beneficiaries", people))).getJSONArray("vouchers")
            vouchers = (0 until issued.length()).map { issued.getJSONObject(it) }
            partial = ok(server.call("POST", "/api/v1/programs/medic/vouchers", JSONObject().put("beneficiaries", JSONArray().put(JSONObject().put("id", "P-1"))))).getJSONArray("vouchers").getJSONObject(0)
        }

        @AfterClass @JvmStatic
        fun stop() {
            server.close()
            phoneFiles.deleteRecursively()
        }
    }
}
