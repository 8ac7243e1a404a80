// swift-tools-version:6.0
// `make bench-swift` (bindings/swift/bench.sh): the Swift rows of BENCHMARKS.md, a release-built
// executable that depends on bindings/swift by path, as an app does. Not part of the ConsentKit
// package (its manifest and release stay as they are).
import PackageDescription

let package = Package(
    name: "ConsentKitBench",
    platforms: [.iOS(.v15), .macOS(.v12)],
    dependencies: [.package(path: "..")],
    targets: [
        .executableTarget(name: "ConsentKitBench", dependencies: [.product(name: "ConsentKit", package: "swift")]),
    ]
)
