import FluoroCore
@testable import FluoroSources
import Foundation
import Synchronization
import Testing

/// Pixel formats and device errors: no device needed.
@Suite struct CapturePixelFormatTests {
    @Test func namesAndFourCCsFollowV4L2() throws {
        #expect(CapturePixelFormat.grey.fourCC == 0x5945_5247)  // v4l2_fourcc('G','R','E','Y')
        #expect(CapturePixelFormat.y16.fourCC == 0x2036_3159)  // 'Y16 '
        #expect(try CapturePixelFormat(name: "Y16 ") == .y16)
        #expect(try CapturePixelFormat(name: "yuyv") == .yuyv)
        #expect(CapturePixelFormat(fourCC: 0x2032_3159) == .y12)
        #expect(fourCCText(0x2036_3159 | 0x8000_0000) == "Y16 -BE")
        #expect(throws: FluoroError.self) { try CapturePixelFormat(name: "MJPG") }
        #expect(
            try CapturePixelFormat.y12.geometry(width: 4, height: 2)
                == FrameGeometry(width: 4, height: 2, format: .grey16, bitsStored: 12))
    }

    /// Lines padded beyond the picture (bytesperline > width) are skipped, YUYV keeps its luma bytes, and
    /// deep grey is read little endian and masked to its depth.
    @Test(arguments: CapturePixelFormat.allCases)
    func copyLumaReadsEveryFormatWithPaddedLines(format: CapturePixelFormat) {
        let width = 5, height = 3, padding = 6
        let bytesPerLine = width * format.bytesPerPixel + padding
        var buffer = [UInt8](repeating: 0xEE, count: bytesPerLine * height)
        var expected: [UInt16] = []
        for y in 0..<height {
            for x in 0..<width {
                let value = 1000 * y + 37 * x + 3
                let line = y * bytesPerLine
                switch format {
                case .grey:
                    buffer[line + x] = UInt8(value & 0xFF)
                    expected.append(UInt16(value & 0xFF))
                case .yuyv:
                    buffer[line + 2 * x] = UInt8(value & 0xFF)
                    buffer[line + 2 * x + 1] = 0x80  // chroma
                    expected.append(UInt16(value & 0xFF))
                default:
                    let word = UInt16(value) | 0xC000  // bits above the depth must be ignored (except for Y16)
                    buffer[line + 2 * x] = UInt8(word & 0xFF)
                    buffer[line + 2 * x + 1] = UInt8(word >> 8)
                    expected.append(word & UInt16((1 << format.bitsStored) - 1))
                }
            }
        }
        var pixels = [UInt16](repeating: 0, count: width * height)
        buffer.withUnsafeBytes { raw in
            pixels.withUnsafeMutableBufferPointer {
                format.copyLuma(
                    from: raw.baseAddress!, bytesPerLine: bytesPerLine, width: width, height: height,
                    into: $0.baseAddress!)
            }
        }
        #expect(pixels == expected)
    }

    @Test func missingDeviceIsNamed() {
        #expect(
            throws: FluoroError.cannotOpen(
                path: "/dev/video-fluorostream-missing",
                reason: "no such device (is the frame grabber connected and its driver loaded?)")
        ) {
            try V4L2Source(settings: CaptureSettings(device: "/dev/video-fluorostream-missing"), newestWins: true)
        }
    }

    @Test func aFileThatIsNotAV4L2DeviceIsRefused() {
        #expect(throws: FluoroError.cannotOpen(path: "/dev/null", reason: "not a V4L2 video device")) {
            try V4L2Source(settings: CaptureSettings(device: "/dev/null"), newestWins: true)
        }
    }
}

/// The vivid devices `tools/test-v4l2` sets up in its virtual machine: a webcam input (fixed sizes and
/// rates), an HDMI input with a scaler (any size), and a spare one for fault injection.
enum Vivid {
    static let webcam = ProcessInfo.processInfo.environment["FLUORO_V4L2_WEBCAM"]
    static let scaler = ProcessInfo.processInfo.environment["FLUORO_V4L2_SCALER"]
    static let spare = ProcessInfo.processInfo.environment["FLUORO_V4L2_SPARE"]
    static var available: Bool { webcam != nil && scaler != nil && spare != nil }

    /// Sets a vivid control with v4l2-ctl (error injection, pattern settings).
    static func setControl(_ device: String, _ assignment: String) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["v4l2-ctl", "-d", device, "-c", assignment]
        try process.run()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw FluoroError.invalidArgument("v4l2-ctl -d \(device) -c \(assignment) failed")
        }
    }

    /// Reads `count` frames, returning copies of their pixels and their bookkeeping.
    static func capture(_ source: V4L2Source, count: Int) throws -> [(pixels: [UInt16], index: Int, time: Double, captured: UInt64)] {
        let frame = Frame(slot: 0, geometry: source.geometry, stageCount: 1)
        var frames: [(pixels: [UInt16], index: Int, time: Double, captured: UInt64)] = []
        for _ in 0..<count {
            frame.recycle()
            guard try source.read(into: frame) else { break }
            frames.append((Array(frame.pixels), frame.index, frame.sourceTime, frame.availableAt))
        }
        return frames
    }

    /// Mean sample of each of vivid's eight 75 % colour bars, on one row below the on-screen text.
    static func barLevels(_ pixels: [UInt16], width: Int, height: Int) -> [Double] {
        let row = height * 3 / 4
        return (0..<8).map { bar in
            let first = bar * width / 8 + width / 32, last = (bar + 1) * width / 8 - width / 32
            return (first..<last).reduce(0.0) { $0 + Double(pixels[row * width + $1]) } / Double(last - first)
        }
    }
}

/// Capture from a real kernel V4L2 device: runs where vivid is loaded (`tools/test-v4l2` boots it in QEMU).
@Suite(.serialized, .enabled(if: Vivid.available, "needs the vivid V4L2 driver: tools/test-v4l2 runs these in a QEMU VM"))
struct V4L2DeviceTests {
    /// N frames arrive, numbered and stamped in increasing order by the kernel's monotonic clock, showing
    /// vivid's colour bars (eight vertical bars, luma falling from white to black), for grey at 8 and 16 bits
    /// at 640x480 (the webcam input at 25 fps) and 1024x1024 (the scaler); Y10 and Y12 show the same bars as
    /// GREY at their depth, and YUYV's luma the bars' video levels (limited range; Rec. 601 on the webcam input,
    /// Rec. 709 on the HDMI input).
    @Test(arguments: [("webcam", 640, 480), ("scaler", 1024, 1024)])
    func capturesNumberedFramesShowingTheColourBars(input: String, width: Int, height: Int) throws {
        let device = input == "webcam" ? Vivid.webcam! : Vivid.scaler!
        var levels: [CapturePixelFormat: [Double]] = [:]
        for format in [CapturePixelFormat.grey, .y16, .y10, .y12, .yuyv] {
            let rate: Double? = input == "webcam" ? 25 : nil
            let source = try V4L2Source(
                settings: CaptureSettings(
                    device: device, pixelFormat: format, width: width,
                    height: height, frameRate: rate),
                newestWins: false)
            #expect(source.geometry == (try format.geometry(width: width, height: height)))
            if let rate { #expect(abs(source.frameInterval! - 1 / rate) < 1e-6) }
            let count = format == .grey || format == .y16 ? 12 : 3
            let frames = try Vivid.capture(source, count: count)
            #expect(frames.count == count)
            #expect(source.counters.delivered == count)
            for (earlier, later) in zip(frames, frames.dropFirst()) {
                #expect(later.index > earlier.index && later.time > earlier.time && later.captured > earlier.captured)
            }
            let now = MonotonicClock.now()
            #expect(
                frames.last!.captured <= now && now - frames.last!.captured < 5_000_000_000,
                "the buffer timestamp is on the pipeline's monotonic clock")
            let bars = Vivid.barLevels(frames.last!.pixels, width: width, height: height)
            levels[format] = bars
            #expect(zip(bars, bars.dropFirst()).allSatisfy { $0 > $1 }, "bars \(bars) fall from white to black")
            #expect(bars[0] - bars[7] > 0.5 * Double(source.geometry.maximumValue), "bars \(bars) span the range")
        }
        // The same picture at each depth (vivid puts its 8-bit level in the high bits).
        for format in [CapturePixelFormat.y16, .y10, .y12] {
            let scale = Double(1 << (format.bitsStored - 8))
            for (grey, deep) in zip(levels[.grey]!, levels[format]!) {
                #expect(abs(deep / scale - grey) < 2, "\(format.rawValue): \(levels[format]!) against GREY \(levels[.grey]!)")
            }
        }
        // 75 % colour bars in Y'CbCr: Y' = 16 + 219 × 0.75 × (Kr R + (1 − Kr − Kb) G + Kb B).
        let (kr, kb) = input == "webcam" ? (0.299, 0.114) : (0.2126, 0.0722)
        let bars: [(Double, Double, Double)] = [(1, 1, 1), (1, 1, 0), (0, 1, 1), (0, 1, 0), (1, 0, 1), (1, 0, 0), (0, 0, 1), (0, 0, 0)]
        let videoLevels = bars.map { r, g, b in 16 + 219 * 0.75 * (kr * r + (1 - kr - kb) * g + kb * b) }
        for (expected, luma) in zip(videoLevels, levels[.yuyv]!) {
            #expect(abs(luma - expected) < 3, "YUYV luma \(levels[.yuyv]!) against \(videoLevels)")
        }
    }

    @Test func aFormatTheDeviceDoesNotOfferIsRefusedWithWhatItOffers() {
        do {
            _ = try V4L2Source(settings: CaptureSettings(device: Vivid.webcam!, pixelFormat: .y14), newestWins: true)
            Issue.record("Y14 was accepted")
        } catch {
            let message = "\(error)"
            #expect(message.hasPrefix(Vivid.webcam! + ": unsupported: vivid does not offer pixel format 'Y14'"), "\(message)")
            #expect(message.contains("'GREY'") && message.contains("'Y16 '"), "\(message)")
        }
    }

    @Test func aSizeOrRateTheWebcamDoesNotOfferIsRefused() {
        #expect(throws: FluoroError.self) {
            try V4L2Source(settings: CaptureSettings(device: Vivid.webcam!, width: 1024, height: 1024), newestWins: true)
        }
        #expect(throws: FluoroError.self) {
            try V4L2Source(
                settings: CaptureSettings(device: Vivid.webcam!, width: 640, height: 480, frameRate: 60),
                newestWins: true)
        }
    }

    @Test func aSecondCaptureOfABusyDeviceIsRefused() throws {
        let first = try V4L2Source(settings: CaptureSettings(device: Vivid.webcam!, width: 640, height: 480), newestWins: true)
        #expect(try Vivid.capture(first, count: 2).count == 2)
        do {
            _ = try V4L2Source(settings: CaptureSettings(device: Vivid.webcam!, width: 640, height: 480), newestWins: true)
            Issue.record("a second capture of a busy device was accepted")
        } catch {
            #expect("\(error)".hasPrefix(Vivid.webcam! + ": busy: another program is capturing from it"), "\(error)")
        }
    }

    /// vivid dropping a share of its frames: the gaps in the sequence numbers are counted, and frame indices
    /// skip the lost frames.
    @Test func framesTheDeviceDropsAreCountedFromSequenceGaps() throws {
        let device = Vivid.spare!
        try Vivid.setControl(device, "percentage_of_dropped_buffers=50")
        defer { try? Vivid.setControl(device, "percentage_of_dropped_buffers=0") }
        let source = try V4L2Source(
            settings: CaptureSettings(device: device, width: 320, height: 180, frameRate: 60),
            newestWins: false)
        let frames = try Vivid.capture(source, count: 20)
        #expect(frames.count == 20)
        #expect(source.counters.lostByDevice > 0)
        #expect(frames.last!.index - frames.first!.index == 19 + source.counters.lostByDevice)
    }

    @Test func aDeviceThatStopsDeliveringEndsTheCaptureWithAClearError() throws {
        let device = Vivid.spare!
        let source = try V4L2Source(
            settings: CaptureSettings(device: device, width: 320, height: 180, timeout: 1),
            newestWins: true)
        #expect(try Vivid.capture(source, count: 2).count == 2)
        try Vivid.setControl(device, "percentage_of_dropped_buffers=100")
        defer { try? Vivid.setControl(device, "percentage_of_dropped_buffers=0") }
        let frame = Frame(slot: 0, geometry: source.geometry, stageCount: 1)
        #expect(
            throws: FluoroError.deviceFailed(
                device: device,
                detail: "no frame for 1.0 s: the device stopped delivering "
                    + "(is the video signal connected?)")
        ) {
            while try source.read(into: frame) {}
        }
    }

    /// A fatal streaming error (the driver's queue fails) ends a plain capture; with reconnect the device is
    /// reopened and frames flow again.
    @Test func aFatalStreamingErrorEndsTheCaptureOrIsReconnected() throws {
        let device = Vivid.spare!
        let settings = CaptureSettings(device: device, width: 320, height: 180, timeout: 1)
        do {
            let source = try V4L2Source(settings: settings, newestWins: true)
            #expect(try Vivid.capture(source, count: 2).count == 2)
            try Vivid.setControl(device, "inject_fatal_streaming_error=1")
            let frame = Frame(slot: 0, geometry: source.geometry, stageCount: 1)
            do {
                while try source.read(into: frame) {}
            } catch {
                #expect("\(error)".hasPrefix(device + ": the device"), "\(error)")
            }
        }
        let messages = Mutex<[String]>([])
        let source = try V4L2Source(settings: settings, newestWins: true, reconnect: true) { message in
            messages.withLock { $0.append(message) }
        }
        #expect(try Vivid.capture(source, count: 2).count == 2)
        try Vivid.setControl(device, "inject_fatal_streaming_error=1")
        #expect(try Vivid.capture(source, count: 3).count == 3)
        #expect(source.counters.reconnects == 1)
        #expect(messages.withLock { $0 }.contains("\(device): reconnected"))
    }
}
