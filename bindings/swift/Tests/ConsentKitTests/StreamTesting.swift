@_spi(Testing) import ConsentKit
import Foundation

/// A stream did not deliver what a test waited for in time (a lost event fails the test instead
/// of hanging the run).
struct StreamTimedOut: Error, CustomStringConvertible {
    let waitingFor: String
    let seen: Int
    var description: String { "timed out waiting for \(waitingFor) (\(seen) elements seen)" }
}

/// What a stream delivered, and whether it finished.
struct Collected {
    var changes: [StatusChange] = []
    var finished = false
}

/// Consumes `stream`, calling `step` with everything seen so far after each element, until
/// `step` returns true (or the stream finishes). Throws `StreamTimedOut` after `seconds`; the
/// timeout is a guard against hangs, not a speed assertion.
func consume(
    _ stream: AsyncStream<StatusChange>, waitingFor: String, within seconds: Double = 20,
    step: @escaping @Sendable ([StatusChange]) throws -> Bool = { _ in false }
) async throws -> Collected {
    let progress = Progress()
    return try await withThrowingTaskGroup(of: Collected?.self) { group in
        group.addTask {
            var collected = Collected()
            for await change in stream {
                collected.changes.append(change)
                progress.count = collected.changes.count
                if try step(collected.changes) { return collected }
            }
            collected.finished = true
            return collected
        }
        group.addTask {
            try await Task.sleep(nanoseconds: UInt64(seconds * 1_000_000_000))
            return nil
        }
        defer { group.cancelAll() }
        guard let first = try await group.next(), let collected = first else {
            throw StreamTimedOut(waitingFor: waitingFor, seen: progress.count)
        }
        return collected
    }
}

private final class Progress: @unchecked Sendable {
    private let lock = NSLock()
    private var value = 0
    var count: Int {
        get { lock.lock(); defer { lock.unlock() }; return value }
        set { lock.lock(); value = newValue; lock.unlock() }
    }
}
