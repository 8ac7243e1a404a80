// swift-tools-version:6.0
// UCAnywhere's iOS sample. The logic (UCAnywhereSampleKit) is plain Swift and tested by
// `make test-swift` on Linux and macOS; the SwiftUI app (UCAnywhereSampleApp) compiles where
// SwiftUI exists. README.md walks through running it in Xcode.
import PackageDescription

let package = Package(
    name: "UCAnywhereSample",
    platforms: [.iOS(.v17), .macOS(.v14)],
    products: [
        .library(name: "UCAnywhereSampleKit", targets: ["UCAnywhereSampleKit"]),
        .library(name: "UCAnywhereSampleApp", targets: ["UCAnywhereSampleApp"]),
    ],
    dependencies: [.package(path: "../bindings/swift")],
    targets: [
        .target(name: "UCAnywhereSampleKit", dependencies: [.product(name: "ConsentKit", package: "swift")]),
        .target(name: "UCAnywhereSampleApp", dependencies: ["UCAnywhereSampleKit", .product(name: "ConsentKit", package: "swift")]),
        .testTarget(name: "UCAnywhereSampleKitTests", dependencies: ["UCAnywhereSampleKit"]),
    ]
)
