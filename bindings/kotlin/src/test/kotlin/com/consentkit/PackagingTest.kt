package com.consentkit

import com.sun.jna.Platform
import org.junit.jupiter.api.Assertions.assertNotNull
import org.junit.jupiter.api.Assertions.assertNull
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.Test
import java.nio.file.Files

/** Issue #16 item 2: a JVM client loads the library from the jar, with no system property. */
class PackagingTest {
    @Test
    fun `the host library is a JNA resource on the classpath and loads with no jna library path`() {
        assertNull(System.getProperty("jna.library.path"), "the suite runs as a client would: no -Djna.library.path")
        val resource = "${Platform.RESOURCE_PREFIX}/${System.mapLibraryName("consentkit_ffi")}"
        assertNotNull(javaClass.classLoader.getResource(resource), "$resource is in the jar")
        val dir = Files.createTempDirectory("consentkit-pkg").toFile()
        ConsentManager.openStrict("${dir.path}/c.db").use { assertTrue(it.isAllowed("alice", Feature.CALLING)) }
        dir.deleteRecursively()
    }

    @Test
    fun `consumer ProGuard and R8 rules ship in the jar`() {
        val rules = javaClass.classLoader.getResource("META-INF/proguard/consentkit.pro")!!.readText()
        assertTrue(rules.contains("-keep class com.sun.jna.** { *; }"))
        assertTrue(rules.contains("-keep class com.consentkit.ffi.** { *; }"))
        assertTrue(rules.contains("-keepclasseswithmembernames class com.consentkit.JniGate { native <methods>; }"), "the JNI gate's native names survive R8")
    }
}
