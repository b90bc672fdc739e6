package org.evoucher.app

import android.Manifest
import android.annotation.SuppressLint
import android.content.Context
import android.content.Intent
import android.content.pm.PackageManager
import android.graphics.Bitmap
import android.graphics.BitmapFactory
import android.graphics.Canvas
import android.graphics.Color
import android.graphics.ImageFormat
import android.graphics.Matrix
import android.graphics.Paint
import android.graphics.SurfaceTexture
import android.hardware.camera2.CameraCaptureSession
import android.hardware.camera2.CameraCharacteristics
import android.hardware.camera2.CameraDevice
import android.hardware.camera2.CameraManager
import android.hardware.camera2.CaptureRequest
import android.media.ImageReader
import android.net.Uri
import android.os.Bundle
import android.os.Handler
import android.os.HandlerThread
import android.os.Looper
import android.view.Gravity
import android.view.Surface
import android.view.TextureView
import android.view.View
import android.view.ViewGroup
import android.widget.Button
import android.widget.FrameLayout
import android.widget.LinearLayout
import android.widget.TextView
import java.nio.ByteBuffer
import org.evoucher.sdk.VoucherScanner

/**
 * The scanner: Camera2 preview with continuous autofocus, the Y plane of each frame straight
 * into the core's scan session on a background thread (frames are dropped, never queued, while
 * one is being read), a torch, a viewfinder, and a photo from the gallery as the fallback.
 *
 * What a code becomes: a verdict (default), the raw text for the caller ([EXTRA_RAW]), or, in
 * [ScanIntentActivity], the answer to another app.
 */
open class ScanActivity : Screen() {
    private val scanner = VoucherScanner(budgetMs = 150)
    private val main = Handler(Looper.getMainLooper())
    private var cameraThread: HandlerThread? = null
    private var camera: CameraDevice? = null
    private var session: CameraCaptureSession? = null
    private var reader: ImageReader? = null
    private var request: CaptureRequest.Builder? = null
    private var torchOn = false
    private lateinit var torch: Button
    private var rotation = 0
    @Volatile private var delivered = false
    private lateinit var preview: TextureView
    protected lateinit var hint: TextView

    override fun onCreate(savedInstanceState: Bundle?) {
        super.onCreate(savedInstanceState)
        val frame = FrameLayout(this).apply { setBackgroundColor(Color.BLACK) }
        preview = TextureView(this)
        frame.addView(preview, FrameLayout.LayoutParams(ViewGroup.LayoutParams.MATCH_PARENT, ViewGroup.LayoutParams.MATCH_PARENT))
        frame.addView(Viewfinder(this), FrameLayout.LayoutParams(ViewGroup.LayoutParams.MATCH_PARENT, ViewGroup.LayoutParams.MATCH_PARENT))
        val bar = column().apply { setBackgroundColor(0xAA000000.toInt()) }
        hint = center(text(getString(R.string.point_camera), 18f, Color.WHITE))
        bar.addView(hint)
        val row = LinearLayout(this).apply { orientation = LinearLayout.HORIZONTAL }
        torch = button(getString(R.string.torch), Palette.MUTED) { toggleTorch() }
        val gallery = button(getString(R.string.from_photo), Palette.MUTED) { pickPhoto() }
        row.addView(torch, LinearLayout.LayoutParams(0, ViewGroup.LayoutParams.WRAP_CONTENT, 1f).apply { marginEnd = dp(8) })
        row.addView(gallery, LinearLayout.LayoutParams(0, ViewGroup.LayoutParams.WRAP_CONTENT, 1f))
        bar.addView(row)
        frame.addView(bar, FrameLayout.LayoutParams(ViewGroup.LayoutParams.MATCH_PARENT, ViewGroup.LayoutParams.WRAP_CONTENT, Gravity.BOTTOM))
        setContentView(frame)
        if (intent.getBooleanExtra(EXTRA_GALLERY, false) && savedInstanceState == null) pickPhoto()
    }

    override fun onResume() {
        super.onResume()
        delivered = false
        if (checkSelfPermission(Manifest.permission.CAMERA) == PackageManager.PERMISSION_GRANTED) startCamera()
        else requestPermissions(arrayOf(Manifest.permission.CAMERA), PERMISSION)
    }

    override fun onPause() {
        stopCamera()
        super.onPause()
    }

    override fun onDestroy() {
        scanner.close()
        super.onDestroy()
    }

    override fun onRequestPermissionsResult(requestCode: Int, permissions: Array<out String>, grantResults: IntArray) {
        if (requestCode == PERMISSION && grantResults.firstOrNull() == PackageManager.PERMISSION_GRANTED) startCamera()
        else noCamera()
    }

    // ------------------------------------------------------------ the pipeline

    /**
     * One camera frame (the Y plane): scanned here, on the calling thread; a code found is
     * delivered on the main thread, once.
     */
    fun feedFrame(yPlane: ByteBuffer, width: Int, height: Int, rowStride: Int, rotationDegrees: Int) {
        if (delivered) return
        val codes = scanner.feed(yPlane, width, height, rowStride, rotationDegrees) ?: return
        val text = codes.firstNotNullOfOrNull { it.text } ?: return
        deliverOnce(text)
    }

    /** A still picture (a photo of a printed letter). */
    fun scanBitmap(bitmap: Bitmap): Boolean {
        val (buf, w, h) = luma(bitmap)
        val text = VoucherScanner.scanOnce(buf, w, h, w, 0, budgetMs = 1500).firstNotNullOfOrNull { it.text }
        if (text == null) {
            hint.text = getString(R.string.no_code_in_photo)
            return false
        }
        deliverOnce(text)
        return true
    }

    private fun deliverOnce(text: String) {
        main.post {
            if (delivered || isFinishing) return@post
            delivered = true
            onCode(text)
        }
    }

    /** What a scanned code becomes. */
    protected open fun onCode(text: String) {
        if (intent.getBooleanExtra(EXTRA_RAW, false)) {
            setResult(RESULT_OK, Intent().putExtra(RESULT_TEXT, text))
        } else {
            startActivity(Intent(this, VerdictActivity::class.java).putExtra(VerdictActivity.EXTRA_TEXT, text))
        }
        finish()
    }

    // ------------------------------------------------------------ gallery

    private fun pickPhoto() {
        val i = Intent(Intent.ACTION_GET_CONTENT).setType("image/*").addCategory(Intent.CATEGORY_OPENABLE)
        runCatching { startActivityForResult(i, PICK) }
    }

    @Deprecated("Activity result API of the platform")
    override fun onActivityResult(requestCode: Int, resultCode: Int, data: Intent?) {
        super.onActivityResult(requestCode, resultCode, data)
        val uri: Uri = data?.data ?: return
        if (requestCode != PICK || resultCode != RESULT_OK) return
        App.background({ decode(this, uri) }) { r ->
            val bmp = r.getOrNull()
            if (bmp == null) hint.text = getString(R.string.no_code_in_photo) else scanBitmap(bmp)
        }
    }

    // ------------------------------------------------------------ camera

    private fun startCamera() {
        if (camera != null) return
        val cm = getSystemService(CameraManager::class.java)
        val id = runCatching {
            cm.cameraIdList.firstOrNull { cm.getCameraCharacteristics(it).get(CameraCharacteristics.LENS_FACING) == CameraCharacteristics.LENS_FACING_BACK }
                ?: cm.cameraIdList.firstOrNull()
        }.getOrNull()
        if (id == null) {
            noCamera()
            return
        }
        rotation = cm.getCameraCharacteristics(id).get(CameraCharacteristics.SENSOR_ORIENTATION) ?: 90
        val flash = runCatching { cm.getCameraCharacteristics(id).get(CameraCharacteristics.FLASH_INFO_AVAILABLE) }.getOrNull()
        torch.visibility = if (flash == true) View.VISIBLE else View.GONE
        val t = HandlerThread("camera").apply { start() }
        cameraThread = t
        val bg = Handler(t.looper)
        val r = ImageReader.newInstance(WIDTH, HEIGHT, ImageFormat.YUV_420_888, 2)
        r.setOnImageAvailableListener({ ir ->
            val img = ir.acquireLatestImage() ?: return@setOnImageAvailableListener
            try {
                val y = img.planes[0]
                feedFrame(y.buffer, img.width, img.height, y.rowStride, rotation)
            } catch (_: RuntimeException) {
                // a frame the scanner refused (odd sizes): the next one will do
            } finally {
                img.close()
            }
        }, bg)
        reader = r
        openWhenReady(cm, id, bg)
    }

    @SuppressLint("MissingPermission")
    private fun openWhenReady(cm: CameraManager, id: String, bg: Handler) {
        if (!preview.isAvailable) {
            preview.surfaceTextureListener = object : TextureView.SurfaceTextureListener {
                override fun onSurfaceTextureAvailable(s: SurfaceTexture, w: Int, h: Int) = openWhenReady(cm, id, bg)
                override fun onSurfaceTextureSizeChanged(s: SurfaceTexture, w: Int, h: Int) = fitPreview()
                override fun onSurfaceTextureDestroyed(s: SurfaceTexture) = true
                override fun onSurfaceTextureUpdated(s: SurfaceTexture) {}
            }
            return
        }
        runCatching {
            cm.openCamera(id, object : CameraDevice.StateCallback() {
                override fun onOpened(d: CameraDevice) { camera = d; startSession(d, bg) }
                override fun onDisconnected(d: CameraDevice) { d.close(); camera = null }
                override fun onError(d: CameraDevice, error: Int) {
                    d.close(); camera = null
                    main.post { noCamera() }
                }
            }, bg)
        }.onFailure { noCamera() }
    }

    @Suppress("DEPRECATION")
    private fun startSession(d: CameraDevice, bg: Handler) {
        val tex = preview.surfaceTexture ?: return
        tex.setDefaultBufferSize(WIDTH, HEIGHT)
        main.post { fitPreview() }
        val surface = Surface(tex)
        val r = reader ?: return
        val b = d.createCaptureRequest(CameraDevice.TEMPLATE_PREVIEW).apply {
            addTarget(surface)
            addTarget(r.surface)
            set(CaptureRequest.CONTROL_AF_MODE, CaptureRequest.CONTROL_AF_MODE_CONTINUOUS_PICTURE)
        }
        request = b
        d.createCaptureSession(listOf(surface, r.surface), object : CameraCaptureSession.StateCallback() {
            override fun onConfigured(s: CameraCaptureSession) {
                session = s
                runCatching { s.setRepeatingRequest(b.build(), null, bg) }
            }
            override fun onConfigureFailed(s: CameraCaptureSession) {
                main.post { noCamera() }
            }
        }, bg)
    }

    /** No camera to read with: say so, and take away the torch, which could do nothing. */
    private fun noCamera() {
        hint.text = getString(R.string.no_camera)
        torch.visibility = View.GONE
    }

    private fun toggleTorch() {
        val b = request ?: return
        torchOn = !torchOn
        b.set(CaptureRequest.FLASH_MODE, if (torchOn) CaptureRequest.FLASH_MODE_TORCH else CaptureRequest.FLASH_MODE_OFF)
        runCatching { session?.setRepeatingRequest(b.build(), null, null) }
    }

    /** Centre-crop the camera's picture into the view (portrait: the buffer arrives turned). */
    private fun fitPreview() {
        val vw = preview.width.toFloat()
        val vh = preview.height.toFloat()
        if (vw == 0f || vh == 0f) return
        val buffer = WIDTH.toFloat() / HEIGHT
        val view = vh / vw
        val m = Matrix()
        if (view > buffer) m.setScale(view / buffer, 1f, vw / 2, vh / 2) else m.setScale(1f, buffer / view, vw / 2, vh / 2)
        preview.setTransform(m)
    }

    private fun stopCamera() {
        runCatching { session?.close() }
        runCatching { camera?.close() }
        runCatching { reader?.close() }
        cameraThread?.quitSafely()
        session = null; camera = null; reader = null; cameraThread = null; request = null; torchOn = false
    }

    /** The square the provider aims with. */
    private class Viewfinder(c: Context) : View(c) {
        private val paint = Paint(Paint.ANTI_ALIAS_FLAG).apply { color = Color.WHITE; strokeWidth = 8f; style = Paint.Style.STROKE }
        init { importantForAccessibility = IMPORTANT_FOR_ACCESSIBILITY_NO }
        override fun onDraw(canvas: Canvas) {
            val side = minOf(width, height) * 0.7f
            val l = (width - side) / 2
            val t = (height - side) / 2.5f
            val k = side / 6
            for ((x, y, dx, dy) in listOf(
                floatArrayOf(l, t, 1f, 1f), floatArrayOf(l + side, t, -1f, 1f),
                floatArrayOf(l, t + side, 1f, -1f), floatArrayOf(l + side, t + side, -1f, -1f),
            ).map { listOf(it[0], it[1], it[2], it[3]) }) {
                canvas.drawLine(x, y, x + dx * k, y, paint)
                canvas.drawLine(x, y, x, y + dy * k, paint)
            }
        }
    }

    companion object {
        const val EXTRA_RAW = "raw"
        const val EXTRA_GALLERY = "gallery"
        const val RESULT_TEXT = "text"
        private const val PERMISSION = 10
        private const val PICK = 11
        private const val WIDTH = 1280
        private const val HEIGHT = 720

        /** A picture, scaled down to at most 2048 px on its longer side. */
        fun decode(c: Context, uri: Uri): Bitmap? {
            val bounds = BitmapFactory.Options().apply { inJustDecodeBounds = true }
            c.contentResolver.openInputStream(uri)?.use { BitmapFactory.decodeStream(it, null, bounds) }
            var sample = 1
            while (maxOf(bounds.outWidth, bounds.outHeight) / sample > 2048) sample *= 2
            return c.contentResolver.openInputStream(uri)?.use { BitmapFactory.decodeStream(it, null, BitmapFactory.Options().apply { inSampleSize = sample }) }
        }

        /** Luma (BT.601) of a bitmap, in a direct buffer. */
        fun luma(b: Bitmap): Triple<ByteBuffer, Int, Int> {
            val w = b.width
            val h = b.height
            val px = IntArray(w * h)
            b.getPixels(px, 0, w, 0, 0, w, h)
            val buf = ByteBuffer.allocateDirect(w * h)
            for (i in px.indices) {
                val p = px[i]
                val y = (299 * (p shr 16 and 0xFF) + 587 * (p shr 8 and 0xFF) + 114 * (p and 0xFF)) / 1000
                buf.put(i, y.toByte())
            }
            return Triple(buf, w, h)
        }
    }
}
