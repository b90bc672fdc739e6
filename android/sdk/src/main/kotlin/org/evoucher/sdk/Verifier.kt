package org.evoucher.sdk

import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.withContext

/**
 * Verifies vouchers offline against a trust store (a JWKS holding issuer keys: Ed25519 for
 * `EV1:` vouchers, RSA or P-256 for OpenG2P JWT vouchers). Thread-safe. Close it when done.
 *
 * @throws TrustStoreException if the JWKS is malformed or holds no usable key.
 */
class Verifier(jwks: String) : NativeObject(Native.verifierNew(jwks), Native::verifierDestroy) {
    /**
     * Verify [text] as of [nowEpochSeconds]. **Blocking** (about 50 µs; call off the main
     * thread or use [verifySuspend]).
     */
    fun verify(text: String, nowEpochSeconds: Long = System.currentTimeMillis() / 1000): VerificationResult =
        withHandle { h -> VerificationResult.from(org.json.JSONObject(Native.verifierVerify(h, text, nowEpochSeconds))) }

    /** [verify] on [Dispatchers.Default]. */
    suspend fun verifySuspend(text: String, nowEpochSeconds: Long = System.currentTimeMillis() / 1000): VerificationResult =
        withContext(Dispatchers.Default) { verify(text, nowEpochSeconds) }
}
