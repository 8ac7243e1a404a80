import Foundation
import XCTest

/// What a program that ran to its end said: its exit status, its standard output (with its standard
/// error in it when the two were merged), and its standard error when they were not.
struct ProgramOutput {
    let status: Int32
    let output: Data
    let errors: String

    /// The standard output as text.
    var text: String { String(decoding: output, as: UTF8.self) }
}

/// A program that exited with a status other than 0.
struct CommandFailed: Error {
    let status: Int32
}

/// Runs `executable` with `arguments` to its end and returns what it printed; `mergeErrors` puts
/// its standard error into the same pipe as its output.
func runProgram(_ executable: URL, _ arguments: [String], mergeErrors: Bool = true) throws -> ProgramOutput {
    let process = Process()
    process.executableURL = executable
    process.arguments = arguments
    let output = Pipe()
    let errors = mergeErrors ? output : Pipe()
    process.standardOutput = output
    process.standardError = errors
    try process.run()
    let data = output.fileHandleForReading.readDataToEndOfFile()
    let errorText = mergeErrors ? "" : String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    process.waitUntilExit()
    return ProgramOutput(status: process.terminationStatus, output: data, errors: errorText)
}

/// Runs a program as [`runProgram`] does; if it fails, fails the test with its command line and
/// what it printed, and throws `CommandFailed`. Returns its standard output.
@discardableResult
func runChecked(_ executable: URL, _ arguments: [String], mergeErrors: Bool = true) throws -> Data {
    let result = try runProgram(executable, arguments, mergeErrors: mergeErrors)
    if result.status != 0 {
        let said = mergeErrors ? result.text : result.errors
        XCTFail("\(([executable.path] + arguments).joined(separator: " ")) failed (\(result.status)):\n\(said)")
        throw CommandFailed(status: result.status)
    }
    return result.output
}
