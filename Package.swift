// swift-tools-version: 6.0
import PackageDescription

/// FluoroStream: a real-time fluoroscopy stream processor.
/// Layout (each arrow an import, none upwards): fluoro → FluoroSources / FluoroVision / FluoroPublish
/// → FluoroGraph → FluoroCore, with C shims for the system libraries at the bottom.
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
    ],
    targets: [
        // C shims for what Swift cannot reach directly.
        .systemLibrary(name: "CZeroMQ", providers: [.apt(["libzmq3-dev"])]),
        .systemLibrary(name: "COpenBLAS", pkgConfig: "openblas", providers: [.apt(["libopenblas-dev"])]),
        .systemLibrary(name: "CTurboJPEG", providers: [.apt(["libturbojpeg0-dev"])]),
        .target(name: "CV4L2", linkerSettings: [.linkedLibrary("v4l2")]),
        .target(name: "CFluoroLinux"),
        .target(name: "CImageCodecs", cSettings: [.unsafeFlags(["-I/usr/include/openjpeg-2.5"])],
                linkerSettings: [.linkedLibrary("charls"), .linkedLibrary("openjp2")]),

        .target(name: "FluoroCore"),
        .target(name: "FluoroGraph", dependencies: [
            "FluoroCore", "CFluoroLinux",
            .product(name: "Histogram", package: "hdrhistogram-swift"),
        ]),
        .target(name: "FluoroSources", dependencies: ["FluoroCore", "CTurboJPEG", "CImageCodecs", "CV4L2"]),
        .target(name: "FluoroVision", dependencies: ["FluoroCore", "COpenBLAS"],
                resources: [.copy("Resources/device-net.fsnn")]),
        .target(name: "FluoroPublish", dependencies: ["FluoroCore", "CZeroMQ", "CTurboJPEG"]),
        .executableTarget(name: "fluoro", dependencies: [
            "FluoroCore", "FluoroGraph", "FluoroSources", "FluoroVision", "FluoroPublish",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),
        .executableTarget(name: "FluoroBench", dependencies: [
            "FluoroCore", "FluoroGraph", "FluoroSources", "FluoroVision", "FluoroPublish",
            .product(name: "MallocInterposerSwift", package: "malloc-interposer"),
        ]),

        .testTarget(name: "FluoroCoreTests", dependencies: ["FluoroCore", "COpenBLAS", "CV4L2"]),
        .testTarget(name: "FluoroGraphTests", dependencies: ["FluoroGraph", "FluoroCore"]),
        .testTarget(name: "FluoroSourcesTests", dependencies: ["FluoroSources", "FluoroCore"]),
        .testTarget(name: "FluoroVisionTests", dependencies: ["FluoroVision", "FluoroCore", "FluoroSources"],
                    resources: [.copy("Fixtures")]),
        .testTarget(name: "FluoroPublishTests", dependencies: ["FluoroPublish", "FluoroCore", "CZeroMQ"]),
    ]
)
