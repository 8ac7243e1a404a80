package com.consentkit

import com.consentkit.ffi.ConsentKitException

/**
 * Checks that [value] is well-formed UTF-16 before it crosses to Rust (which takes UTF-8): a lone
 * surrogate would otherwise fail deep in the generated code with `MalformedInputException`.
 * Returns [value]; throws [ConsentKitException.InvalidInput] naming [what] and the value, with the
 * surrogate written as `\uXXXX`.
 */
internal fun text(what: String, value: String): String {
    var i = 0
    while (i < value.length) {
        val c = value[i]
        val paired = when {
            Character.isHighSurrogate(c) -> i + 1 < value.length && Character.isLowSurrogate(value[i + 1])
            Character.isLowSurrogate(c) -> false
            else -> true
        }
        if (!paired) {
            throw ConsentKitException.InvalidInput(
                "invalid $what '${escaped(value)}': lone UTF-16 surrogate \\u%04X at index $i is not Unicode text".format(c.code),
            )
        }
        i += if (Character.isHighSurrogate(c)) 2 else 1
    }
    return value
}

/** [text] for an optional value. */
internal fun textOrNull(what: String, value: String?): String? = value?.let { text(what, it) }

/** [value] shortened to 64 characters, with surrogates and control characters written as `\uXXXX`. */
private fun escaped(value: String): String = buildString {
    for (c in value.take(64)) {
        if (Character.isSurrogate(c) || Character.isISOControl(c)) append("\\u%04X".format(c.code)) else append(c)
    }
    if (value.length > 64) append("…")
}
