package org.evoucher.sdk

import java.nio.file.Files
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertFalse
import org.junit.jupiter.api.Assertions.assertNull
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.assertThrows

/** The calls the provider app makes besides redeeming: verdict, history, status; and sync errors. */
class PhoneTest {
    private fun ctx(name: String) = Support.vector(name).let {
        Triple(it.getJSONObject("context").getJSONObject("jwks").toString(), it.getJSONObject("stages").getString("text"), it.getJSONObject("context").getLong("clock"))
    }

    private fun tmpLedger() = Files.createTempDirectory("evoucher-sdk").resolve("shop.db").toString()

    @Test
    fun `check gives the verdict before redeeming and writes nothing`() {
        val (jwks, text, now) = ctx("valid-cash-single")
        Verifier(jwks).use { v ->
            RedemptionLedger(tmpLedger()).use { l ->
                val ok = l.check(v, text, provider = "SP-1", nowEpochSeconds = now)
                assertTrue(ok is Verdict.Ok, "$ok")
                assertEquals(0L, (ok as Verdict.Ok).remainingAmount)
                assertEquals(0, l.entries().size)
                l.redeem(v, text, "SP-1", "phone-1", nowEpochSeconds = now)
                val again = l.check(v, text, provider = "SP-1", nowEpochSeconds = now + 60)
                assertTrue(again is Verdict.Refused, "$again")
                again as Verdict.Refused
                assertEquals("already_redeemed", again.reason)
                assertEquals(now, again.details.getLong("at"))
                val forged = l.check(v, text.dropLast(3) + "AAA", nowEpochSeconds = now)
                assertTrue(forged is Verdict.Invalid, "$forged")
            }
        }
    }

    @Test
    fun `history and status`() {
        val (jwks, text, now) = ctx("valid-cash-single")
        Verifier(jwks).use { v ->
            RedemptionLedger(tmpLedger()).use { l ->
                val r = l.redeem(v, text, "SP-1", "phone-1", nowEpochSeconds = now)
                val page = l.history()
                assertEquals(1, page.count)
                assertEquals("waiting", page.rows[0].state)
                assertEquals(r.entry.id, page.rows[0].entry.id)
                assertEquals(mapOf(r.entry.currency!! to 2500L), page.totals)
                l.void(r.entry.id, "SP-1", "phone-1", now + 10)
                assertEquals("voided", l.history(HistoryFilter(state = "voided")).rows.single().state)
                assertEquals(0, l.history(HistoryFilter(search = "nobody")).count)
                val s = l.status(nowEpochSeconds = now + 20)
                assertEquals(2L, s.waiting)
                assertTrue(s.trustStale)
                assertNull(s.enrolment)
                assertFalse(s.clockSuspect)
                assertEquals(listOf("before_last_entry"), l.status(nowEpochSeconds = now - 100).clockWarnings)
                val csv = Files.createTempFile("ledger", ".csv")
                assertEquals(2, l.exportCsv(csv.toString()))
                val lines = Files.readAllLines(csv)
                assertEquals(3, lines.size)
                assertTrue(lines[0].startsWith("seq,id,kind,voucher_id"))
                assertTrue(lines[2].contains(",void,"))
            }
        }
    }

    @Test
    fun `an unreachable server is a SyncException and enrols nothing`() {
        RedemptionLedger(tmpLedger()).use { l ->
            val e = assertThrows<SyncException> { ServerSync(l, connectTimeoutMs = 500, attempts = 1).enrol("http://127.0.0.1:9", "CODE") }
            assertEquals("http", e.reason)
            assertNull(l.status().enrolment)
        }
    }
}
