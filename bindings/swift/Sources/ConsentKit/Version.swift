import ConsentKitFFI

extension ConsentManager {
    /// The ConsentKit version of the linked native library: the one version that Cargo, Maven, the
    /// SwiftPM release (its tag `v<version>` and XCFramework URL) and `CHANGELOG.md` carry.
    /// `"unknown"` only if the library could not answer (it has no failure of its own).
    public static var version: String { (try? consentkitVersion()) ?? "unknown" }
}
