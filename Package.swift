// swift-tools-version: 6.0
import Foundation
import PackageDescription

/// Swift's default x86-64 target is baseline SSE2, so the image filters' `SIMD8<Float>` would run as pairs of
/// 128-bit operations. Where the building machine has AVX2 and FMA (Haswell or later, as every current x86-64
/// server and workstation), FluoroStream is compiled for it, so that those vectors run as single 256-bit
/// operations with fused multiply-adds (docs/architecture.md, "Modules and import rules"). `FLUORO_TARGET_CPU=NAME`
/// picks another CPU (`x86-64` for a build that runs on any x86-64 machine).
let targetCPU: String? = {
    if let chosen = ProcessInfo.processInfo.environment["FLUORO_TARGET_CPU"] { return chosen.isEmpty ? nil : chosen }
    #if arch(x86_64) && os(Linux)
        guard let info = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8),
            let flagsLine = info.split(separator: "\n").first(where: { $0.hasPrefix("flags") })
        else { return nil }
        let flags = Set(flagsLine.split(separator: " ").map(String.init))
        let haswell: Set = ["avx", "avx2", "fma", "bmi1", "bmi2", "f16c", "movbe", "abm"]
        return flags.isSuperset(of: haswell) ? "haswell" : nil
    #else
        return nil
    #endif
}()
let tuned: [SwiftSetting] = targetCPU.map { [.unsafeFlags(["-target-cpu", $0])] } ?? []

/// FluoroStream: a real-time fluoroscopy stream processor.
/// Layout (each arrow an import, none upwards): fluoro, fluoro-bench → FluoroPipeline (composes the stages)
/// → FluoroGraph (the graph: pool, stage threads, policy, statistics) and FluoroSources / FluoroVision /
/// FluoroPublish (sources, algorithms, publishers) → FluoroConcurrency (ring, doorbell, threads, work splitter)
/// → FluoroCore, with C shims for the system libraries at the bottom.
let package = Package(
    name: "FluoroStream",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "fluoro", targets: ["fluoro"]),
        .executable(name: "fluoro-bench", targets: ["FluoroBench"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/HdrHistogram/hdrhistogram-swift", from: "0.2.0"),
        .package(url: "https://github.com/ordo-one/malloc-interposer", from: "1.6.1"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.2.2"),
    ],
    targets: [
        // C shims for what Swift cannot reach directly.
        .systemLibrary(name: "CZeroMQ", providers: [.apt(["libzmq3-dev"])]),
        .systemLibrary(name: "COpenBLAS", pkgConfig: "openblas", providers: [.apt(["libopenblas-dev"])]),
        .systemLibrary(name: "CTurboJPEG", providers: [.apt(["libturbojpeg0-dev"])]),
        .systemLibrary(name: "CPNG", providers: [.apt(["libpng-dev"])]),
        .target(name: "CV4L2", linkerSettings: [.linkedLibrary("v4l2")]),
        .target(name: "CFluoroLinux"),
        .target(
            name: "COpenIGTLink", cxxSettings: [.unsafeFlags(["-I/usr/include/openigtlink"])],
            linkerSettings: [.linkedLibrary("OpenIGTLink"), .linkedLibrary("stdc++")]),
        .target(
            name: "CImageCodecs", cSettings: [.unsafeFlags(["-I/usr/include/openjpeg-2.5"])],
            linkerSettings: [.linkedLibrary("charls"), .linkedLibrary("openjp2")]),

        .target(name: "FluoroCore", dependencies: ["CFluoroLinux"]),
        .target(name: "FluoroConcurrency", dependencies: ["FluoroCore", "CFluoroLinux"]),
        .target(
            name: "FluoroGraph",
            dependencies: [
                "FluoroCore", "FluoroConcurrency", "CFluoroLinux",
                .product(name: "Histogram", package: "hdrhistogram-swift"),
            ]),
        .target(name: "FluoroSources", dependencies: ["FluoroCore", "CTurboJPEG", "CPNG", "CImageCodecs", "CV4L2"]),
        .target(
            name: "FluoroVision", dependencies: ["FluoroCore", "FluoroConcurrency", "COpenBLAS"],
            resources: [.copy("Resources/device-net.fsnn")]),
        .target(
            name: "FluoroPublish",
            dependencies: ["FluoroCore", "FluoroConcurrency", "CFluoroLinux", "CZeroMQ", "CTurboJPEG", "COpenIGTLink"]),
        .target(name: "FluoroPipeline", dependencies: ["FluoroCore", "FluoroGraph", "FluoroSources", "FluoroVision", "FluoroPublish"]),
        .target(
            name: "FluoroEvaluation",
            dependencies: ["FluoroCore", "FluoroGraph", "FluoroSources", "FluoroVision", "FluoroPipeline"]),
        .executableTarget(
            name: "fluoro",
            dependencies: [
                "FluoroCore", "FluoroGraph", "FluoroSources", "FluoroVision", "FluoroPublish", "FluoroPipeline", "FluoroEvaluation",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Yams", package: "Yams"),
            ]),
        .executableTarget(
            name: "FluoroBench",
            dependencies: [
                "FluoroConcurrency", "FluoroCore", "FluoroGraph", "FluoroSources", "FluoroVision", "FluoroPublish", "FluoroPipeline",
                .product(name: "MallocInterposerSwift", package: "malloc-interposer"),
            ]),

        .testTarget(name: "FluoroCoreTests", dependencies: ["FluoroCore", "COpenBLAS", "CV4L2"]),
        .testTarget(name: "FluoroGraphTests", dependencies: ["FluoroGraph", "FluoroCore", "CFluoroLinux"]),
        .testTarget(name: "FluoroConcurrencyTests", dependencies: ["FluoroConcurrency", "FluoroCore", "CFluoroLinux"]),
        .testTarget(name: "FluoroSourcesTests", dependencies: ["FluoroSources", "FluoroCore"]),
        .testTarget(
            name: "FluoroVisionTests", dependencies: ["FluoroVision", "FluoroCore", "FluoroConcurrency", "FluoroSources"],
            resources: [.copy("Fixtures")]),
        .testTarget(name: "FluoroEvaluationTests", dependencies: ["FluoroEvaluation", "FluoroCore"]),
        .testTarget(name: "FluoroPublishTests", dependencies: ["FluoroPublish", "FluoroCore", "CZeroMQ"]),
    ]
)

for target in package.targets where target.type != .system && !target.name.hasPrefix("C") {
    target.swiftSettings = (target.swiftSettings ?? []) + tuned
}
