package com.consentkit

import org.junit.jupiter.api.AfterEach
import java.io.File
import java.nio.file.Files

/**
 * A test class's own store: a `consent.db` in a fresh temporary folder, opened with the system
 * clock before each test and closed (and the folder removed) after it.
 */
abstract class TempStoreTest(prefix: String) {
    protected val dir: File = Files.createTempDirectory(prefix).toFile()
    protected val consent = ConsentManager.open(File(dir, "consent.db").path)

    @AfterEach
    fun closeAndRemoveTheStore() {
        consent.close()
        dir.deleteRecursively()
    }
}
