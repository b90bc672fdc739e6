package org.evoucher.sdk

import java.lang.ref.PhantomReference
import java.lang.ref.ReferenceQueue
import java.util.concurrent.ConcurrentHashMap
import java.util.concurrent.locks.ReentrantReadWriteLock
import kotlin.concurrent.read
import kotlin.concurrent.write

/**
 * A native handle shared by a wrapper and the safety-net cleaner. Calls hold the read lock for
 * their whole duration; close takes the write lock, so a handle is never destroyed while a call
 * (on any thread) is using it, even if the wrapper became unreachable mid-call.
 */
internal class HandleState(private var handle: Long, private val destroy: (Long) -> Unit) {
    private val lock = ReentrantReadWriteLock()

    fun <R> use(name: String, block: (Long) -> R): R = lock.read {
        val h = handle
        check(h != 0L) { "$name is closed" }
        block(h)
    }

    /** Close once; later calls do nothing. */
    fun close() = lock.write {
        val h = handle
        handle = 0L
        if (h != 0L) destroy(h)
    }
}

/**
 * Safety net for wrappers that were not closed: when one becomes unreachable its handle is
 * destroyed on a daemon thread. (A portable stand-in for java.lang.ref.Cleaner, which Android
 * has only from API 33.) Closing explicitly, with `use {}`, is still the rule.
 */
internal object NativeCleaner {
    private val queue = ReferenceQueue<Any>()
    private val pending = ConcurrentHashMap.newKeySet<Ref>()

    private class Ref(owner: Any, val state: HandleState) : PhantomReference<Any>(owner, queue)

    init {
        Thread({
            while (true) {
                val r = queue.remove() as Ref
                pending.remove(r)
                runCatching { r.state.close() }
            }
        }, "evoucher-cleaner").apply { isDaemon = true }.start()
    }

    fun register(owner: Any, state: HandleState) {
        pending.add(Ref(owner, state))
    }
}

/** Base of the SDK's native-backed objects: close-once, use-after-close is an [IllegalStateException]. */
abstract class NativeObject internal constructor(handle: Long, destroy: (Long) -> Unit) : AutoCloseable {
    internal val state = HandleState(handle, destroy)

    init {
        NativeCleaner.register(this, state)
    }

    internal fun <R> withHandle(block: (Long) -> R): R = state.use(javaClass.simpleName, block)

    /** Release the native object. Closing twice is harmless. */
    override fun close() = state.close()
}
