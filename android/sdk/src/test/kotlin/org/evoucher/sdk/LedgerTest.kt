package org.evoucher.sdk

import java.nio.file.Files
import java.util.concurrent.Executors
import java.util.concurrent.TimeUnit
import java.util.concurrent.atomic.AtomicLong
import kotlinx.coroutines.runBlocking
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.assertThrows

class LedgerTest {
    private fun ctx(name: String) = Support.vector(name).let {
        Triple(it.getJSONObject("context").getJSONObject("jwks").toString(), it.getJSONObject("stages").getString("text"), it.getJSONObject("context").getLong("clock"))
    }

    private fun tmpLedger() = Files.createTempDirectory("evoucher-sdk").resolve("shop.db").toString()

    @Test
    fun `redeem then redeem again is AlreadyRedeemed, with when and where`() {
        val (jwks, text, now) = ctx("valid-cash-single")
        Verifier(jwks).use { v ->
            RedemptionLedger(tmpLedger()).use { l ->
                val r = l.redeem(v, text, provider = "SP-1", device = "phone-1", nowEpochSeconds = now)
                assertEquals(2500L, r.entry.amount)
                assertEquals(0L, r.remainingAmount)
                val e = assertThrows<AlreadyRedeemedException> { l.redeem(v, text, "SP-1", "phone-2", nowEpochSeconds = now + 60) }
                assertEquals("already_redeemed", e.reason)
                assertEquals(now, e.redeemedAt)
                assertEquals("phone-1", e.device)
                assertEquals(r.entry.id, e.entryId)
                // A void frees it; the ledger keeps both entries and its chain holds.
                l.void(r.entry.id, "SP-1", "phone-1", now + 120)
                runBlocking { l.redeemSuspend(v, text, "SP-1", "phone-1", nowEpochSeconds = now + 180) }
                assertEquals(listOf("redeem", "void", "redeem"), l.entries().map { it.kind })
                assertEquals(ChainStatus(true, 3, null, null), l.verifyChain())
                assertEquals(3, l.outbox().size)
                assertEquals(3, l.markSynced(l.outbox().map { it.id }, now))
                assertEquals(0, l.outbox().size)
            }
        }
    }

    @Test
    fun `refusals are typed`() {
        val (jwks, text, now) = ctx("valid-full")
        Verifier(jwks).use { v ->
            RedemptionLedger(tmpLedger()).use { l ->
                assertThrows<WrongProviderException> { l.redeem(v, text, "SP-9", "d", "grocery", nowEpochSeconds = now) }
                assertThrows<CategoryNotAllowedException> { l.redeem(v, text, "SP-0042", "d", "bakery", nowEpochSeconds = now) }
                assertThrows<InsufficientBalanceException> {
                    l.redeem(v, text, "SP-0042", "d", "grocery", RedeemRequest.Amount(5001), now)
                }
                val id = (v.verify(text, now) as VerificationResult.Valid).voucher.id
                l.addRevocations(mapOf(id to now - 1))
                assertThrows<RevokedException> { l.redeem(v, text, "SP-0042", "d", "grocery", nowEpochSeconds = now) }
                val bad = assertThrows<InvalidVoucherException> { l.redeem(v, text.dropLast(3) + "AAA", "SP-0042", "d", nowEpochSeconds = now) }
                assertTrue(bad.stage.isNotEmpty())
                assertEquals(0, l.entries().size, "refusals write nothing")
            }
        }
    }

    @Test
    fun `16 threads never over-redeem a partial voucher`() {
        val (jwks, text, now) = ctx("valid-cash-partial") // 10000 minor units
        Verifier(jwks).use { v ->
            RedemptionLedger(tmpLedger()).use { l ->
                val drawn = AtomicLong()
                val pool = Executors.newFixedThreadPool(16)
                repeat(16) {
                    pool.submit {
                        repeat(10) {
                            try {
                                drawn.addAndGet(l.redeem(v, text, "SP-1", "t$it", request = RedeemRequest.Amount(70), nowEpochSeconds = now).entry.amount!!)
                            } catch (_: InsufficientBalanceException) {
                            }
                        }
                    }
                }
                pool.shutdown()
                assertTrue(pool.awaitTermination(120, TimeUnit.SECONDS))
                assertEquals(9940L, drawn.get(), "142 draws of 70 fit in 10000")
                assertEquals(9940L, l.entries(limit = 1000).sumOf { it.amount ?: 0 })
                assertTrue(l.verifyChain().intact)
            }
        }
    }

    @Test
    fun `close twice is harmless and use after close is IllegalStateException`() {
        val (jwks, text, now) = ctx("valid-cash-single")
        val v = Verifier(jwks)
        val l = RedemptionLedger(tmpLedger())
        l.close()
        l.close()
        assertThrows<IllegalStateException> { l.entries() }
        assertThrows<IllegalStateException> { RedemptionLedger(tmpLedger()).use { it.redeem(v.also { it.close() }, text, "SP", "d", nowEpochSeconds = now) } }
        v.close()
        assertThrows<IllegalStateException> { v.verify(text) }
        VoucherScanner().apply { close(); close() }
        // Handles of 0 reaching native code are refused there too.
        assertThrows<IllegalStateException> { Native.ledgerEntries(0, 0, 1) }
    }

    @Test
    fun `bad arguments are exceptions, never crashes`() {
        val (jwks, _, now) = ctx("valid-cash-single")
        Verifier(jwks).use { v ->
            RedemptionLedger(tmpLedger()).use { l ->
                v.withHandle { vh -> l.withHandle { lh ->
                    assertThrows<IllegalArgumentException> { Native.ledgerRedeem(lh, vh, null, "SP", null, "d", null, now) }
                    assertThrows<IllegalArgumentException> { Native.ledgerRedeem(lh, vh, "EV1:X", null, null, "d", null, now) }
                    assertThrows<IllegalArgumentException> { Native.ledgerRedeem(lh, vh, "EV1:X", "SP", null, "d", "{not json", now) }
                    assertThrows<IllegalArgumentException> { Native.ledgerEntries(lh, 0, -5) }
                    assertThrows<IllegalArgumentException> { Native.ledgerMarkSynced(lh, "nope", now) }
                    assertThrows<IllegalArgumentException> { Native.verifierVerify(vh, null, now) }
                } }
                assertThrows<IllegalArgumentException> { Native.ledgerOpen(null) }
                assertThrows<IllegalArgumentException> { Native.verifierNew(null) }
                assertThrows<LedgerException> { l.markSynced(listOf("no-such-entry")) }
            }
        }
        val corrupt = Files.createTempFile("evoucher", ".db")
        Files.write(corrupt, ByteArray(4096) { 7 })
        assertThrows<LedgerException> { RedemptionLedger(corrupt.toString()) }
        assertTrue(Files.readAllBytes(corrupt).all { it == 7.toByte() }, "left untouched")
    }
}
