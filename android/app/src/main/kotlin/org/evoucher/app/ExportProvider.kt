package org.evoucher.app

import android.content.ContentProvider
import android.content.ContentValues
import android.database.Cursor
import android.database.MatrixCursor
import android.net.Uri
import android.os.ParcelFileDescriptor
import android.provider.OpenableColumns
import java.io.File
import java.io.FileNotFoundException

/**
 * Hands files to other apps through per-use permission grants (Android refuses `file://`
 * URIs): exported files (the ledger CSV, `export/…`) to read, and the photo the camera app
 * takes for a claim (`capture/…`, into the app's own files, where the claim outbox keeps it
 * until it is sent) to write.
 */
class ExportProvider : ContentProvider() {
    override fun onCreate() = true

    private fun file(uri: Uri, forWriting: Boolean = false): File {
        val segs = uri.pathSegments
        val name = segs.getOrNull(1) ?: throw FileNotFoundException("no file")
        if (segs.size != 2 || name.contains('/') || name.startsWith(".")) throw FileNotFoundException("no such file")
        val f = when (segs[0]) {
            "export" -> File(File(context!!.cacheDir, "export"), name)
            "capture" -> File(claimDocs(context!!), name)
            else -> throw FileNotFoundException("no such file")
        }
        if (!forWriting && !f.isFile) throw FileNotFoundException("no such file")
        return f
    }

    override fun openFile(uri: Uri, mode: String): ParcelFileDescriptor {
        if (uri.pathSegments.firstOrNull() == "capture" && mode.startsWith("w")) {
            return ParcelFileDescriptor.open(
                file(uri, forWriting = true),
                ParcelFileDescriptor.MODE_WRITE_ONLY or ParcelFileDescriptor.MODE_CREATE or ParcelFileDescriptor.MODE_TRUNCATE,
            )
        }
        if (mode != "r") throw SecurityException("read only")
        return ParcelFileDescriptor.open(file(uri), ParcelFileDescriptor.MODE_READ_ONLY)
    }

    override fun query(uri: Uri, projection: Array<out String>?, selection: String?, args: Array<out String>?, sort: String?): Cursor {
        val f = file(uri)
        return MatrixCursor(arrayOf(OpenableColumns.DISPLAY_NAME, OpenableColumns.SIZE)).apply { addRow(arrayOf<Any>(f.name, f.length())) }
    }

    override fun getType(uri: Uri) = if (uri.pathSegments.firstOrNull() == "capture") "image/jpeg" else "text/csv"
    override fun insert(uri: Uri, values: ContentValues?): Uri? = null
    override fun delete(uri: Uri, selection: String?, args: Array<out String>?) = 0
    override fun update(uri: Uri, values: ContentValues?, selection: String?, args: Array<out String>?) = 0

    companion object {
        const val AUTHORITY = "org.evoucher.app.export"
        fun uri(name: String): Uri = Uri.parse("content://$AUTHORITY/export/$name")
        fun captureUri(name: String): Uri = Uri.parse("content://$AUTHORITY/capture/$name")

        /** Where a claim's photos and PDFs wait until the claim is sent. */
        fun claimDocs(c: android.content.Context): File = File(c.filesDir, "claim-docs").apply { mkdirs() }
    }
}
