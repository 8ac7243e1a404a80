// swift-tools-version:5.9
// ConsentKit for Swift. The generated bindings (Sources/ConsentKitFFI, the C header) are made by
// `./generate.sh` and never committed. On a Mac, `./build-xcframework.sh` builds
// ConsentKitFFI.xcframework (iOS device + simulator); when it is present this manifest links it.
// Elsewhere (Linux, tests) the host library is linked from the workspace's target/debug.
import Foundation
import PackageDescription

let here = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
let useXCFramework = FileManager.default.fileExists(atPath: here.appendingPathComponent("ConsentKitFFI.xcframework").path)
let hostLibDir = ProcessInfo.processInfo.environment["CONSENTKIT_LIB_DIR"]
    ?? here.appendingPathComponent("../../target/debug").standardizedFileURL.path

let ffiC: Target = useXCFramework
    ? .binaryTarget(name: "ConsentKitFFIC", path: "ConsentKitFFI.xcframework")
    : .systemLibrary(name: "ConsentKitFFIC", path: "Sources/ConsentKitFFIC")

let package = Package(
    name: "ConsentKit",
    platforms: [.iOS(.v15), .macOS(.v12)],
    products: [.library(name: "ConsentKit", targets: ["ConsentKit"])],
    targets: [
        ffiC,
        .target(
            name: "ConsentKitFFI",
            dependencies: ["ConsentKitFFIC"],
            path: "Sources/ConsentKitFFI",
            linkerSettings: useXCFramework ? [] : [.unsafeFlags(["-L", hostLibDir])]
        ),
        .target(name: "ConsentKit", dependencies: ["ConsentKitFFI"], path: "Sources/ConsentKit"),
        .testTarget(name: "ConsentKitTests", dependencies: ["ConsentKit"], path: "Tests/ConsentKitTests"),
    ]
)
