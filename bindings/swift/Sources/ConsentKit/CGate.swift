import ConsentKitFFI
import ConsentKitFFIC
import Foundation

/// The C gate: a cache miss of ``ConsentManager/check(_:feature:scope:)`` asks the core through one
/// hand-written C call (`consentkit_gate_check`, `bindings/src/c_gate.rs`) instead of the uniffi
/// call, which copies each String argument into a `RustBuffer` with its own call into Rust and
/// decodes the answer from another (`make bench-swift` has both rows). The strings cross as
/// pointer and length, the answer comes back in stack buffers.
///
/// It answers exactly what the uniffi `check` answers; where it cannot (a library of another
/// layout, a closed store, an unknown feature, bad input, an answer with more reasons than its
/// buffers hold, a caught panic), ``check(subject:feature:scope:)`` returns nil and the caller
/// asks through uniffi, which answers or throws the typed error. The gate never turns a
/// non-answer into an allow: only the `CONSENTKIT_GATE_ANSWERED` status is read as a decision.
package struct CGate: Sendable {
    /// Most reasons an answer carries here (more: asked through uniffi).
    static let maxReasons = 16
    /// Bytes for the reasons' category ids (more: asked through uniffi).
    static let textBytes = 512
    /// `ReasonCode` in the core's declaration order: the gate's code `i` is `codes[i]`.
    static let codes: [ReasonCode] = [
        .consentNotAsked, .consentRefused, .consentWithdrawn, .consentExpired, .renewalRequired, .objected,
        .scopeNotGranted, .osPermissionDenied, .osPermissionNotDetermined, .osPermissionRestricted, .underAge,
        .storeUnavailable,
    ]
    /// True when the loaded library's answer layout and reason codes are the ones this file reads.
    package static let usable: Bool =
        consentkit_gate_layout() == CONSENTKIT_GATE_LAYOUT && consentkit_gate_reason_codes() == Int32(codes.count)
        && CONSENTKIT_GATE_REASON_CODES == Int32(codes.count)

    /// The kit's token in the Rust registry of gates (weak there: it keeps no store alive).
    package let token: UInt64

    /// The gate for `kit`, or nil (then every check goes through uniffi).
    package static func register(_ kit: RustConsentKit) -> CGate? {
        guard usable, let token = try? cGateToken(kit: kit) else { return nil }
        return CGate(token: token)
    }

    /// The core's answer through the C gate, with the nanoseconds it stays proven current (the
    /// core's proof remaining, read before the check), or nil: then ask through uniffi (it answers
    /// or throws the typed error).
    package func check(subject: String, feature: String, scope: String?) -> (decision: CheckResult, provenNanos: UInt64)? {
        // withUTF8 borrows a native string's bytes in place (a small string's from the stack).
        var subjectText = subject
        var featureText = feature
        return subjectText.withUTF8 { subjectBytes in
            featureText.withUTF8 { featureBytes in
                guard var scopeText = scope else { return ask(subjectBytes, featureBytes, nil, feature: feature) }
                return scopeText.withUTF8 { scopeBytes in ask(subjectBytes, featureBytes, scopeBytes, feature: feature) }
            }
        }
    }

    private func ask(
        _ subject: UnsafeBufferPointer<UInt8>, _ feature: UnsafeBufferPointer<UInt8>, _ scope: UnsafeBufferPointer<UInt8>?,
        feature featureID: String
    ) -> (decision: CheckResult, provenNanos: UInt64)? {
        let header = Int(CONSENTKIT_GATE_HEADER)
        return withUnsafeTemporaryAllocation(of: Int64.self, capacity: header + 2 * Self.maxReasons) { words in
            withUnsafeTemporaryAllocation(of: UInt8.self, capacity: Self.textBytes) { text in
                let status = consentkit_gate_check(
                    token, subject.baseAddress, subject.count, feature.baseAddress, feature.count,
                    scope != nil, scope?.baseAddress, scope?.count ?? 0,
                    words.baseAddress, words.count, text.baseAddress, text.count)
                guard status == CONSENTKIT_GATE_ANSWERED, let decision = Self.decode(words, text, feature: featureID) else { return nil }
                let proven = words[Int(CONSENTKIT_GATE_PROOF_WORD)]
                return (decision, proven > 0 ? UInt64(proven) : 0)
            }
        }
    }

    /// The decision in `words` and `text` (layout: `ConsentKitGate.h`), or nil if they do not read as one.
    private static func decode(_ words: UnsafeMutableBufferPointer<Int64>, _ text: UnsafeMutableBufferPointer<UInt8>, feature: String) -> CheckResult? {
        let header = Int(CONSENTKIT_GATE_HEADER)
        let flags = words[0]
        let count = Int(words[2])
        guard count >= 0, header + 2 * count <= words.count else { return nil }
        var reasons: [Reason] = []
        if count > 0 {
            reasons.reserveCapacity(count)
            var at = 0
            for i in 0..<count {
                let code = Int(words[header + i])
                let length = Int(words[header + count + i])
                guard codes.indices.contains(code), length >= 0, length <= text.count - at else { return nil }
                let category = String(decoding: UnsafeBufferPointer(rebasing: text[at..<at + length]), as: UTF8.self)
                reasons.append(Reason(code: codes[code], category: category))
                at += length
            }
        }
        let validUntil = flags & Int64(CONSENTKIT_GATE_HAS_VALID_UNTIL) != 0 ? Date(timeIntervalSince1970: Double(words[1]) / 1000) : nil
        return CheckResult(
            feature: feature, allowed: flags & Int64(CONSENTKIT_GATE_ALLOWED) != 0, limited: flags & Int64(CONSENTKIT_GATE_LIMITED) != 0,
            reasons: reasons, validUntil: validUntil)
    }
}
