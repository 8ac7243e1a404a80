// swift-tools-version:6.0
// ConsentKit for Swift. `./generate.sh` makes the generated bindings (Sources/ConsentKitFFI, the C
// header); they are never committed. Two ways to link the Rust library, neither with unsafe flags,
// so the package can be added by URL:
// - Apple platforms with `ConsentKitFFI.xcframework` beside this file (`./build-xcframework.sh` on a
//   Mac: iOS device, iOS simulator, macOS): a binary target.
// - Otherwise (Linux, the tests here): a system library whose module map says
//   `link "consentkit_ffi"`; the caller passes where the library is, e.g. `./run-tests.sh` runs
//   `swift test -Xlinker -L<dir> -Xlinker -rpath -Xlinker <dir>` with cargo's target directory.
import Foundation
import PackageDescription

let here = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
#if os(Linux) || os(Windows)
let useXCFramework = false // binary targets exist only on Apple platforms
#else
let useXCFramework = FileManager.default.fileExists(atPath: here.appendingPathComponent("ConsentKitFFI.xcframework").path)
#endif

let ffiC: Target = useXCFramework
    ? .binaryTarget(name: "ConsentKitFFIC", path: "ConsentKitFFI.xcframework")
    : .systemLibrary(name: "ConsentKitFFIC", path: "Sources/ConsentKitFFIC")

let package = Package(
    name: "ConsentKit",
    platforms: [.iOS(.v15), .macOS(.v12)],
    products: [.library(name: "ConsentKit", targets: ["ConsentKit"])],
    targets: [
        ffiC,
        // The generated Swift: uniffi's templates are not yet clean in the Swift 6 language mode,
        // so this one target stays in Swift 5 mode. Apps never import it.
        .target(
            name: "ConsentKitFFI",
            dependencies: ["ConsentKitFFIC"],
            path: "Sources/ConsentKitFFI",
            swiftSettings: [.swiftLanguageMode(.v5)]
        ),
        // The API apps use: Swift 6 language mode, complete concurrency checking. It calls the
        // hand-written C gate (ConsentKitFFIC/ConsentKitGate.h) directly, hence ConsentKitFFIC.
        .target(
            name: "ConsentKit",
            dependencies: ["ConsentKitFFI", "ConsentKitFFIC"],
            path: "Sources/ConsentKit",
            resources: [.copy("PrivacyInfo.xcprivacy")]
        ),
        .testTarget(name: "ConsentKitTests", dependencies: ["ConsentKit"], path: "Tests/ConsentKitTests"),
    ]
)
