package org.evoucher.sdk

import java.io.File
import java.nio.ByteBuffer
import java.util.Base64
import javax.imageio.ImageIO
import org.json.JSONObject

object Support {
    val repo = File(System.getProperty("evoucher.repo") ?: "../..")

    fun vectors(dir: String): List<JSONObject> =
        File(repo, "test-vectors/$dir").listFiles { f -> f.name.endsWith(".json") }!!.sorted().map { JSONObject(it.readText()) }

    fun vector(name: String): JSONObject = JSONObject(File(repo, "test-vectors/vouchers/$name.json").readText())

    /** The vector's QR PNG as 8-bit luma: (width, height, pixels). */
    fun qrLuma(v: JSONObject): Triple<Int, Int, ByteArray> {
        val img = ImageIO.read(Base64.getDecoder().decode(v.getJSONObject("stages").getString("qr_png_b64")).inputStream())
        val px = ByteArray(img.width * img.height) { i -> (img.getRGB(i % img.width, i / img.width) and 0xFF).toByte() }
        return Triple(img.width, img.height, px)
    }

    /** A direct buffer holding a `w`×`h` grey frame with rows `stride` bytes apart and the symbol pasted at (x0, y0). */
    fun frame(w: Int, h: Int, stride: Int, sym: Triple<Int, Int, ByteArray>, x0: Int, y0: Int): ByteBuffer {
        val buf = ByteBuffer.allocateDirect(stride * h)
        for (i in 0 until stride * h) buf.put(i, if (i % stride < w) 200.toByte() else 17.toByte())
        val (sw, sh, spx) = sym
        for (y in 0 until sh) for (x in 0 until sw) buf.put((y0 + y) * stride + x0 + x, spx[y * sw + x])
        return buf
    }

    /** Rotate a tightly packed frame clockwise by 90°. */
    fun rotate(src: ByteBuffer, w: Int, h: Int): ByteBuffer {
        val out = ByteBuffer.allocateDirect(w * h)
        for (y in 0 until h) for (x in 0 until w) out.put(x * h + (h - 1 - y), src.get(y * w + x))
        return out
    }
}
