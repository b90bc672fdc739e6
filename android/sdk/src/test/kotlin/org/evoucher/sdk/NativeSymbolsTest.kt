package org.evoucher.sdk

import java.lang.reflect.Modifier
import org.junit.jupiter.api.Assertions.assertEquals
import java.lang.management.ManagementFactory
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.assertThrows

/** Every `external fun` has its native symbol, and every exported symbol its `external fun`. */
class NativeSymbolsTest {
    @Test
    fun `external funs and exported symbols match one to one`() {
        val declared = Native::class.java.declaredMethods
            .filter { Modifier.isNative(it.modifiers) }
            .map { "Java_org_evoucher_sdk_Native_" + it.name.replace("_", "_1") }
            .toSortedSet()
        val lib = System.getProperty("evoucher.native.lib")
        val nm = ProcessBuilder("nm", "-D", "--defined-only", lib).redirectErrorStream(true).start()
        val exported = nm.inputStream.bufferedReader().readLines()
            .map { it.trim().split(Regex("\\s+")).last() }
            .filter { it.startsWith("Java_") }
            .toSortedSet()
        assertEquals(0, nm.waitFor())
        assertEquals(declared, exported)
        assertEquals(36, declared.size)
    }

    @Test
    fun `the suite runs under -Xcheck-jni`() {
        assertTrue("-Xcheck:jni" in ManagementFactory.getRuntimeMXBean().inputArguments)
    }

    @Test
    fun `a panic becomes an exception and the VM carries on`() {
        assertEquals(42, Native.selfTest(0))
        val p = assertThrows<NativePanicException> { Native.selfTest(1) }
        assertEquals("panic", p.reason)
        assertThrows<LedgerException> { Native.selfTest(2) }
        repeat(100) { assertThrows<NativePanicException> { Native.selfTest(1) } }
        assertEquals(42, Native.selfTest(0))
    }
}
