package com.consentkit

import com.consentkit.ffi.CheckResult
import java.util.concurrent.ConcurrentHashMap
import java.util.concurrent.atomic.AtomicInteger

/**
 * The gate cache of one [ConsentManager]: the core's last answer per subject, feature and scope,
 * held in nested maps (subject -> feature -> scope), so a hit allocates nothing and hashes each
 * string once (a `String` caches its hash, so an id the app reuses costs no hashing at all).
 *
 * The cache only stores and finds entries; [ConsentManager.check] decides whether an entry may be
 * served (same commit generation, before [Entry.deadlineNanos], and before the decision's
 * `validUntil`). At most [limit] entries: past it the cache starts afresh.
 */
internal class GateCache(private val limit: Int) {
    /**
     * One cached answer: made at commit [generation]; servable until the monotonic clock
     * (`System.nanoTime`) reaches [deadlineNanos], the earlier of the end of the answer's proof
     * ([ProvenAnswer.proofNanos]) and the decision's `validUntil`, both counted from a reading
     * taken before the answer was asked.
     */
    class Entry(val generation: Long, val decision: CheckResult, val deadlineNanos: Long)

    /** A feature's entries for one subject: the unscoped check, and one per scope. */
    private class PerFeature {
        @Volatile var unscoped: Entry? = null
        val scoped = ConcurrentHashMap<String, Entry>(4)
    }

    private val subjects = ConcurrentHashMap<String, ConcurrentHashMap<String, PerFeature>>()
    private val size = AtomicInteger()

    /** The entry for this check, or null. Allocation-free. */
    fun get(subject: String, feature: String, scope: String?): Entry? {
        val perFeature = subjects[subject]?.get(feature) ?: return null
        return if (scope == null) perFeature.unscoped else perFeature.scoped[scope]
    }

    /** Stores [entry] for this check, replacing any older one. */
    fun put(subject: String, feature: String, scope: String?, entry: Entry) {
        if (size.get() >= limit) clear()
        val perFeature = subjects.computeIfAbsent(subject) { ConcurrentHashMap(8) }.computeIfAbsent(feature) { PerFeature() }
        val replaced = if (scope == null) perFeature.unscoped.also { perFeature.unscoped = entry } else perFeature.scoped.put(scope, entry)
        if (replaced == null) size.incrementAndGet()
    }

    /** Forgets every entry. */
    fun clear() {
        size.set(0)
        subjects.clear()
    }

    /** How many entries are held (at most [limit]; approximate while other threads put). */
    val count: Int get() = size.get()
}

/**
 * The core's answer to a check, with how long it stays proven current: [proofNanos], the core's
 * `proofRemainingNanos` read *before* the check (the cross-process bound counted from the proof
 * of the snapshot that answered, not from the check; 0 when that proof has run out). A cache may
 * serve [decision] no longer than that.
 */
internal class ProvenAnswer(val decision: CheckResult, val proofNanos: Long)
