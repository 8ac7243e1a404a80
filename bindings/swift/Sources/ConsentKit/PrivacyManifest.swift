import Foundation

/// The privacy manifest shipped with the library (`PrivacyInfo.xcprivacy`, a resource of this
/// target, so Xcode merges it into the app's privacy report).
package enum PrivacyManifest {
    /// Where the manifest is in the built resource bundle, or nil if it was not bundled.
    package static var url: URL? { Bundle.module.url(forResource: "PrivacyInfo", withExtension: "xcprivacy") }
}
