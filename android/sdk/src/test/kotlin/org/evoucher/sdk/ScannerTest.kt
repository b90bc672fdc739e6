package org.evoucher.sdk

import java.nio.ByteBuffer
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertNotNull
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.assertThrows

class ScannerTest {
    private val vector = Support.vector("valid-inkind-single")
    private val text = vector.getJSONObject("stages").getString("text")
    private val sym = Support.qrLuma(vector)

    @Test
    fun `a Y plane with padded row stride is read in place`() {
        val (w, h, stride) = Triple(640, 480, 704)
        val buf = Support.frame(w, h, stride, sym, 100, 60)
        val codes = VoucherScanner.scanOnce(buf, w, h, stride)
        assertEquals(listOf(text), codes.map { it.text })
        assertEquals(4, codes[0].corners.size)
        assertTrue(codes[0].corners.all { it.x in 100f..(100f + sym.first) && it.y in 60f..(60f + sym.second) })
    }

    @Test
    fun `each camera rotation reads`() {
        var (w, h) = 640 to 480
        var buf = Support.frame(w, h, w, sym, 150, 90)
        for (rotation in listOf(0, 90, 180, 270)) {
            assertEquals(listOf(text), VoucherScanner.scanOnce(buf, w, h, w, rotation).map { it.text }, "rotation $rotation")
            buf = Support.rotate(buf, w, h)
            w = h.also { h = w }
        }
    }

    @Test
    fun `a session reports a code once while it stays in view`() {
        VoucherScanner(forgetAfterFrames = 2).use { s ->
            val buf = Support.frame(640, 480, 640, sym, 10, 10)
            assertEquals(listOf(text), s.feed(buf, 640, 480, 640)!!.map { it.text })
            assertEquals(emptyList<String>(), s.feed(buf, 640, 480, 640)!!.map { it.text })
            val blank = ByteBuffer.allocateDirect(640 * 480)
            repeat(3) { assertNotNull(s.feed(blank, 640, 480, 640)) }
            assertEquals(listOf(text), s.feed(buf, 640, 480, 640)!!.map { it.text })
        }
    }

    @Test
    fun `bad frames are exceptions, not crashes`() {
        val buf = ByteBuffer.allocateDirect(100)
        assertThrows<IllegalArgumentException> { VoucherScanner.scanOnce(buf, -1, 10, 10) }
        assertThrows<IllegalArgumentException> { VoucherScanner.scanOnce(buf, 10, 11, 10) } // too small
        assertThrows<IllegalArgumentException> { VoucherScanner.scanOnce(buf, 10, 10, 9) } // stride < width
        assertThrows<IllegalArgumentException> { VoucherScanner.scanOnce(buf, 10, 10, 10, rotationDegrees = 45) }
        assertThrows<IllegalArgumentException> { VoucherScanner.scanOnce(ByteBuffer.allocate(100), 10, 10, 10) } // not direct
        assertThrows<IllegalArgumentException> { Native.scanFrame(null, 10, 10, 10, 0, 200) }
        assertEquals(emptyList<ScannedCode>(), VoucherScanner.scanOnce(buf, 10, 10, 10))
    }
}
