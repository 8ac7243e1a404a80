package com.consentkit

import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Test
import java.util.Properties

/** Issue #16 item 4: the Maven package and the native library it loads are the same version. */
class VersionTest {
    @Test
    fun `the jar's version is the native library's version`() {
        val props = Properties().apply { load(VersionTest::class.java.classLoader.getResourceAsStream("consentkit-version.properties")) }
        assertEquals(props.getProperty("version"), ConsentManager.version)
    }
}
