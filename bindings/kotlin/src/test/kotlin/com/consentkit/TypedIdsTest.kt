package com.consentkit

import com.consentkit.ffi.ReasonCode
import com.consentkit.ffi.Source
import com.consentkit.ffi.Status
import org.json.JSONObject
import org.junit.jupiter.api.AfterEach
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertFalse
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.Test
import java.io.File
import java.nio.file.Files
import kotlin.reflect.full.companionObject
import kotlin.reflect.full.memberFunctions
import kotlin.reflect.full.memberProperties

/** Issue #10 item 3: typed ids for the built-in catalog; plain strings for any catalog. */
class TypedIdsTest {
    private val dir: File = Files.createTempDirectory("consentkit-ids").toFile()
    private val consent = ConsentManager.openStrict(File(dir, "consent.db").path)
    private val repo = File(System.getProperty("consentkit.repo") ?: "../..")

    @AfterEach
    fun cleanUp() {
        consent.close()
        dir.deleteRecursively()
    }

    private inline fun <reified T : Any> constants(): Set<String> =
        T::class.companionObject!!.memberProperties.filter { it.returnType.classifier == T::class }
            .map { it.getter.call(T::class.companionObject!!.objectInstance).toString() }.toSet()

    /** The ids compare as the core does (code unit for code unit): no Unicode normalization. */
    @Test
    fun `canonically equivalent ids are different ids, as in the core`() {
        val nfc = "jos\u00e9"
        val nfd = "jose\u0301"
        assertFalse(Category(nfc) == Category(nfd))
        assertFalse(Feature(nfc) == Feature(nfd))
        assertEquals(2, setOf(Category(nfc), Category(nfd), Category(String(nfc.toByteArray(Charsets.UTF_8), Charsets.UTF_8))).size)
        assertEquals(2, setOf(Feature(nfc), Feature(nfd)).size)
    }

    @Test
    fun `the constants are exactly the built-in catalog's ids`() {
        val policy = JSONObject(consent.policyJson)
        val categories = policy.getJSONArray("categories").map { (it as JSONObject).getString("id") }.toSet()
        val features = policy.getJSONArray("features").map { (it as JSONObject).getString("id") }.toSet()
        assertEquals(categories, constants<Category>())
        assertEquals(features, constants<Feature>())
        val inOrder = { key: String -> policy.getJSONArray(key).map { (it as JSONObject).getString("id") } }
        assertEquals(inOrder("categories"), Category.BUILT_IN.map { it.id }, "BUILT_IN in the catalog's order, as Swift's builtIn")
        assertEquals(inOrder("features"), Feature.BUILT_IN.map { it.id })
        assertEquals(Category.BUILT_IN, consent.statuses("alice").map { it.categoryId })
        consent.grant("alice", Category.USAGE_STATISTICS, Source.ONBOARDING)
        assertEquals(null, consent.history("alice").single().osPermission)
        assertEquals(OsPermission.CONTACTS, consent.reportOsPermission(OsPermission.CONTACTS, OsState.GRANTED)!!.osPermission)
    }

    @Test
    fun `typed ids work like the strings they stand for`() {
        assertTrue(consent.shouldAsk("alice", Category.USAGE_STATISTICS))
        consent.grant("alice", Category.USAGE_STATISTICS, Source.ONBOARDING)
        assertTrue(consent.isAllowed("alice", Feature.USAGE_ANALYTICS))
        assertTrue(consent.isAllowed("alice", "usage_analytics"), "plain strings still work")
        assertEquals(Status.GRANTED, consent.status("alice", Category.USAGE_STATISTICS).status)
        consent.withdraw("alice", Category.USAGE_STATISTICS)
        assertEquals(ReasonCode.CONSENT_WITHDRAWN, consent.check("alice", Feature.USAGE_ANALYTICS).reasons.single().code)
        consent.objectTo("alice", Category.CONTACT_INFORMATION)
        consent.withdrawObjection("alice", Category.CONTACT_INFORMATION)
        consent.refuse("alice", Category.PHOTOS_MEDIA)
        assertFalse(consent.isAllowed("alice", Feature.PHOTO_SHARING))
        assertEquals(Category("usage_statistics"), Category.USAGE_STATISTICS, "another catalog's ids are Category(\"id\")")
    }

    @Test
    fun `a dialog's choices take typed categories too, as Swift's ConsentChoice does`() {
        val receipts = consent.record(
            listOf(
                ConsentChoice("alice", Category.USAGE_STATISTICS, Action.GRANT, Source.ONBOARDING),
                ConsentChoice("alice", Category.DEVICE_CONTACTS, Action.GRANT, Source.ONBOARDING, scope = "c1"),
            ),
        )
        assertEquals(listOf("usage_statistics", "device_contacts"), receipts.map { it.category })
        assertEquals("c1", receipts[1].scope)
        assertTrue(consent.isAllowed("alice", Feature.USAGE_ANALYTICS))
    }

    @Test
    fun `another catalog works with plain strings`() {
        val policy = File(repo, "tests/fixtures").listFiles()!!.first { it.name.endsWith(".json") }.readText()
        ConsentManager.openStrict(File(dir, "other.db").path, policy).use { other ->
            val json = JSONObject(other.policyJson)
            val category = json.getJSONArray("categories").map { it as JSONObject }.first { it.getString("legal_basis") == "consent" }.getString("id")
            other.grant("bob", category, Source.ONBOARDING)
            assertEquals(Status.GRANTED, other.status("bob", Category(category)).status)
        }
    }

    @Test
    fun `a category where a feature belongs does not type-check`() {
        // The typed overloads take Category for writes and status, Feature for the gate; the
        // compiler therefore rejects consent.grant(user, Feature.USAGE_ANALYTICS) and
        // consent.isAllowed(user, Category.USAGE_STATISTICS). Checked here on the signatures.
        val typed = ConsentManager::class.memberFunctions.mapNotNull { f ->
            val t = f.parameters.getOrNull(2)?.type?.classifier
            if (t == Category::class || t == Feature::class) f.name to t else null
        }.toMap()
        assertEquals(Feature::class, typed["check"])
        assertEquals(Feature::class, typed["isAllowed"])
        for (write in listOf("grant", "refuse", "withdraw", "objectTo", "withdrawObjection", "status", "shouldAsk")) {
            assertEquals(Category::class, typed[write], write)
        }
    }
}
