import ArgumentParser
import FluoroSources

/// Options for capturing from a V4L2 frame grabber (`fluoro run /dev/videoN`).
struct CaptureOptions: ParsableArguments {
    @Option(help: "Pixel format to capture: GREY, Y10, Y12, Y14, Y16 or YUYV (its luma).")
    var pixelFormat = "GREY"
    @Option(help: "Frame size WIDTHxHEIGHT (default: as the device is set).")
    var captureSize: String?
    @Option(parsing: .unconditional, help: "Frames per second (default: as the device is set).")
    var captureRate: Double?
    @Option(parsing: .unconditional, help: "Driver buffers to stream with (mmap).")
    var captureBuffers = 4
    @Option(parsing: .unconditional, help: "Seconds without a frame after which the device counts as stopped.")
    var captureTimeout = 2.0
    @Flag(
        help:
            "When the device disappears, fails or stops delivering, reopen it with back-off (0.25 s doubling to 4 s) instead of ending the run."
    )
    var reconnect = false

    /// The capture settings for `device`.
    func settings(device: String) throws -> CaptureSettings {
        var settings = CaptureSettings(
            device: device, pixelFormat: try CapturePixelFormat(name: pixelFormat),
            frameRate: captureRate, bufferCount: captureBuffers, timeout: captureTimeout)
        if let captureSize {
            let parts = captureSize.lowercased().split(separator: "x").map { Int($0) }
            guard parts.count == 2, let width = parts[0], let height = parts[1], width > 0, height > 0 else {
                throw ValidationError("--capture-size takes WIDTHxHEIGHT, e.g. 1024x1024, got '\(captureSize)'")
            }
            settings.width = width
            settings.height = height
        }
        if let captureRate, captureRate <= 0 { throw ValidationError("--capture-rate must be positive") }
        return settings
    }

    /// Whether SOURCE names a capture device rather than a file.
    static func isDevice(_ source: String) -> Bool { source.hasPrefix("/dev/") }
}
