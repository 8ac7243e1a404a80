package com.consentkit

import com.sun.jna.Platform
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertNotNull
import org.junit.jupiter.api.Assertions.assertNull
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.Test
import java.io.File
import java.nio.file.Files
import javax.xml.parsers.DocumentBuilderFactory
import org.w3c.dom.Element

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

    /**
     * The build names the host library by the host's file name: on a Mac cargo writes
     * `libconsentkit_ffi.dylib`, and a bindgen pointed at `.so` failed the Mac build at
     * generate-sources (README: the jar carries `darwin-aarch64/` or `darwin-x86-64/` built on a Mac).
     * Each profile that picks a JNA resource folder names the library file of that platform.
     */
    @Test
    fun `the POM names the host library by the platform's file name, for every JNA platform it builds`() {
        val pom = DocumentBuilderFactory.newInstance().newDocumentBuilder()
            .parse(File(System.getProperty("consentkit.repo") ?: "../..", "bindings/kotlin/pom.xml")).documentElement
        fun Element.child(name: String): Element? =
            (0 until childNodes.length).map { childNodes.item(it) }.filterIsInstance<Element>().firstOrNull { it.tagName == name }
        fun Element.prop(name: String): String? = child("properties")?.child(name)?.textContent?.trim()
        val arguments = pom.getElementsByTagName("argument").let { list -> (0 until list.length).map { list.item(it).textContent.trim() } }
        val bindgenLibrary = arguments[arguments.indexOf("generate") + 1]
        assertEquals("\${rust.libdir}/\${native.library}", bindgenLibrary, "uniffi-bindgen reads the library of this host, not a fixed .so")
        val expected = mapOf("linux" to "libconsentkit_ffi.so", "darwin" to "libconsentkit_ffi.dylib")
        val platforms = mutableMapOf(pom.prop("jna.platform")!! to pom.prop("native.library"))
        val profiles = pom.child("profiles")!!.getElementsByTagName("profile")
        for (i in 0 until profiles.length) {
            val profile = profiles.item(i) as Element
            val platform = profile.prop("jna.platform") ?: continue
            platforms[platform] = profile.prop("native.library") ?: pom.prop("native.library")
        }
        assertTrue(setOf("linux-x86-64", "darwin-aarch64", "darwin-x86-64").all { it in platforms }, "platforms: $platforms")
        for ((platform, library) in platforms) {
            assertEquals(expected[platform.substringBefore('-')], library, "the library file cargo writes for $platform")
        }
    }
}
