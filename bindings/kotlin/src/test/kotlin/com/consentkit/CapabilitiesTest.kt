package com.consentkit

import org.json.JSONObject
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Test
import java.io.File
import kotlin.reflect.KVisibility
import kotlin.reflect.full.companionObject
import kotlin.reflect.full.declaredMemberFunctions
import kotlin.reflect.full.declaredMemberProperties

/**
 * Issue #10 item 10: the Kotlin ConsentManager's public API is exactly the capability list that
 * the Swift manager is also checked against (`bindings/capabilities.json`).
 */
class CapabilitiesTest {
    private val repo = File(System.getProperty("consentkit.repo") ?: "../..")

    @Test
    fun `the public API of ConsentManager is the capability list, both ways`() {
        val listed = JSONObject(File(repo, "bindings/capabilities.json").readText()).getJSONArray("capabilities")
            .map { (it as JSONObject).getString("kotlin") }.toSortedSet()
        val type = ConsentManager::class
        val companion = type.companionObject!!
        val members = (type.declaredMemberFunctions.filter { it.visibility == KVisibility.PUBLIC }.map { it.name } +
            type.declaredMemberProperties.filter { it.visibility == KVisibility.PUBLIC }.map { it.name }).toSet()
        val statics = companion.declaredMemberFunctions.filter { it.visibility == KVisibility.PUBLIC }.map { "static ${it.name}" }.toSet()
        assertEquals(listed, (members + statics).toSortedSet())
    }
}
