package quickstart

import kotlinx.coroutines.cancelChildren
import kotlinx.coroutines.delay
import kotlinx.coroutines.runBlocking
import java.nio.file.Files
import kotlin.system.exitProcess

/** Runs the README's quick start (target/quickstart/QuickStart.kt) as a client app would. */
fun main() {
    val dir = Files.createTempDirectory("quickstart-client").toFile()
    var sent = 0
    runBlocking {
        quickStart(dir.path, "alice", this) { sent++ }
        delay(200)
        coroutineContext.cancelChildren()
    }
    dir.deleteRecursively()
    if (sent != 1) {
        System.err.println("quick start client: expected one analytics event, got $sent")
        exitProcess(1)
    }
    println("quick start client: compiled against the installed package and ran, no JNA flags")
}
