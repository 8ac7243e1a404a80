package com.consentkit

import kotlinx.coroutines.cancelChildren
import kotlinx.coroutines.runBlocking
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Test
import java.io.File
import java.nio.file.Files

class QuickStartTest {
    private val repo = File(System.getProperty("consentkit.repo") ?: "../..")

    private fun block(lines: List<String>, begin: String, end: String): List<String> =
        lines.dropWhile { !it.contains(begin) }.drop(1).takeWhile { !it.contains(end) }.map { it.trim() }.filter { it.isNotEmpty() }

    @Test
    fun `the README's quick start is the compiled one`() {
        val readme = block(File(repo, "README.md").readLines(), "<!-- quick-start-kotlin:begin -->", "<!-- quick-start-kotlin:end -->")
            .filter { !it.startsWith("```") }
        val file = File(repo, "bindings/kotlin/src/test/kotlin/com/consentkit/QuickStart.kt").readLines()
        val compiled = file.filter { it.startsWith("import ") } + block(file, "// quick-start:begin", "// quick-start:end")
        assertEquals(compiled, readme, "the README block shows its imports and the compiled body")
        assertEquals(listOf("import com.consentkit.*", "import kotlinx.coroutines.launch"), readme.filter { it.startsWith("import") })
        assertEquals(true, readme.size in 5..13, "about ten lines")
    }

    @Test
    fun `the quick start runs`(): Unit = runBlocking {
        val dir = Files.createTempDirectory("quickstart").toFile()
        var sent = 0
        quickstart.quickStart(dir.path, "alice", this) { sent++ }
        assertEquals(1, sent)
        kotlinx.coroutines.delay(100)
        coroutineContext.cancelChildren()
        dir.deleteRecursively()
    }
}
