package org.evoucher.sdk

import kotlinx.coroutines.runBlocking
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.assertThrows

class VerifierTest {
    private fun runAll(dir: String): Int {
        var valid = 0
        val all = Support.vectors(dir)
        assertTrue(all.size >= 20, "vectors in $dir")
        for (v in all) {
            val name = v.getString("name")
            val expected = v.getJSONObject("expected")
            Verifier(v.getJSONObject("context").getJSONObject("jwks").toString()).use { verifier ->
                val r = verifier.verify(v.getJSONObject("stages").getString("text"), v.getJSONObject("context").getLong("clock"))
                if (expected.getBoolean("valid")) {
                    assertTrue(r is VerificationResult.Valid, "$name: $r")
                    valid++
                } else {
                    assertTrue(r is VerificationResult.Invalid, "$name: $r")
                    assertEquals(expected.getString("failed_stage"), (r as VerificationResult.Invalid).stage, name)
                }
            }
        }
        return valid
    }

    @Test
    fun `every EV1 vector gives the same result as in Rust`() {
        assertTrue(runAll("vouchers") >= 8)
    }

    @Test
    fun `every OpenG2P JWT vector gives the same result as in Rust`() {
        assertEquals(3, runAll("jwt"))
    }

    @Test
    fun `a valid voucher maps to the Kotlin model`() {
        val v = Support.vector("valid-full")
        Verifier(v.getJSONObject("context").getJSONObject("jwks").toString()).use { verifier ->
            val r = verifier.verify(v.getJSONObject("stages").getString("text"), v.getJSONObject("context").getLong("clock")) as VerificationResult.Valid
            assertEquals("food-2026", r.voucher.program)
            assertEquals(5000L, r.voucher.amount)
            assertEquals("KES", r.voucher.currency)
            assertEquals(listOf("SOAP"), r.voucher.items.map { it.code })
            assertTrue(r.voucher.partial)
            assertEquals("SP-0042", r.voucher.provider)
            assertEquals(listOf("grocery", "pharmacy"), r.voucher.categories)
            assertEquals("ev1", r.format)
            // The suspend wrapper gives the same answer.
            val s = runBlocking { verifier.verifySuspend(v.getJSONObject("stages").getString("text"), v.getJSONObject("context").getLong("clock")) }
            assertEquals(r, s)
        }
    }

    @Test
    fun `bad trust stores are typed exceptions`() {
        assertThrows<TrustStoreException> { Verifier("{") }
        assertThrows<TrustStoreException> { Verifier("""{"keys": []}""") }
        val e = assertThrows<TrustStoreException> { Verifier("""{"keys": [{"kty":"OKP","crv":"Ed25519","x":"AQAB"}]}""") }
        assertEquals("trust_store", e.reason)
    }
}
