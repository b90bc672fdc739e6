package org.evoucher.sdk

import java.nio.ByteBuffer
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.withContext

/**
 * Reads QR codes from camera frames. Feed it the Y plane of each `YUV_420_888` image: a
 * **direct** [ByteBuffer] read in place (never copied), its row stride, and the rotation the
 * camera reports. Each code is reported once while it stays in view; frames that arrive while
 * another is being scanned are dropped (`feed` returns null) so the camera never queues work.
 * Thread-safe. Close it when done.
 *
 * @param budgetMs no new decoding step starts after this many milliseconds per frame.
 * @param forgetAfterFrames a code out of view for more than this many frames is reported again.
 */
class VoucherScanner(budgetMs: Int = 200, forgetAfterFrames: Int = 15) :
    NativeObject(Native.scannerNew(budgetMs, forgetAfterFrames), Native::scannerDestroy) {

    /**
     * Scan one frame. **Blocking** (a few milliseconds for 720p; run it on the camera's
     * analysis executor or use [feedSuspend]). Returns the new codes, or null if the frame was
     * dropped because another frame was being scanned.
     *
     * @throws IllegalArgumentException for a buffer that is not direct or too small, or bad sizes.
     */
    fun feed(yPlane: ByteBuffer, width: Int, height: Int, rowStride: Int, rotationDegrees: Int = 0): List<ScannedCode>? =
        withHandle { h -> Native.scannerFeed(h, yPlane, width, height, rowStride, rotationDegrees)?.let(ScannedCode::list) }

    /** [feed] on [Dispatchers.Default]. */
    suspend fun feedSuspend(yPlane: ByteBuffer, width: Int, height: Int, rowStride: Int, rotationDegrees: Int = 0): List<ScannedCode>? =
        withContext(Dispatchers.Default) { feed(yPlane, width, height, rowStride, rotationDegrees) }

    companion object {
        /** Scan one still frame (no session, nothing dropped). **Blocking**. */
        @JvmStatic
        fun scanOnce(luma: ByteBuffer, width: Int, height: Int, rowStride: Int, rotationDegrees: Int = 0, budgetMs: Int = 200): List<ScannedCode> =
            ScannedCode.list(Native.scanFrame(luma, width, height, rowStride, rotationDegrees, budgetMs))
    }
}
