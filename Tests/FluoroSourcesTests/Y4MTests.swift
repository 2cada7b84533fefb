import FluoroCore
import FluoroSources
import Foundation
import Testing

/// A scratch directory removed when the test ends.
final class ScratchDirectory {
    let path: String
    init() {
        path = NSTemporaryDirectory() + "fluoro-test-" + UUID().uuidString
        try! FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }
    deinit { try? FileManager.default.removeItem(atPath: path) }
    func file(_ name: String) -> String { path + "/" + name }
}

func readAllFrames(_ reader: Y4MReader) throws -> [[UInt16]] {
    let frame = Frame(slot: 0, geometry: reader.geometry, stageCount: 1)
    var frames: [[UInt16]] = []
    while try reader.read(into: frame) { frames.append(Array(frame.pixels)) }
    return frames
}

/// Runs ffmpeg with `arguments`; fails the test with a clear message when ffmpeg is not installed.
func ffmpeg(_ arguments: [String]) throws {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = ["ffmpeg", "-hide_banner", "-loglevel", "error", "-y"] + arguments
    try process.run()
    process.waitUntilExit()
    guard process.terminationStatus == 0 else {
        throw FluoroError.invalidArgument("ffmpeg failed (\(process.terminationStatus)); is it installed? apt-get install ffmpeg")
    }
}

@Suite struct Y4MTests {
    /// ffmpeg writes a test pattern both as Y4M and as raw video in the same pixel format; the reader's
    /// frames must equal the raw luma planes exactly.
    @Test(arguments: [
        ("gray", 1, 0), ("gray16le", 2, 0), ("gray12le", 2, 0), ("yuv420p", 1, 2 * 48 * 32),
        ("yuv420p10le", 2, 2 * 48 * 32), ("yuv444p", 1, 2 * 96 * 64),
    ])
    func ffmpegTestPatternReadsFrameExact(pixelFormat: String, bytesPerSample: Int, chromaSamples: Int) throws {
        let scratch = ScratchDirectory()
        let y4m = scratch.file("pattern.y4m"), raw = scratch.file("pattern.raw")
        let pattern = ["-f", "lavfi", "-i", "testsrc2=size=96x64:rate=25", "-frames:v", "5", "-pix_fmt", pixelFormat]
        try ffmpeg(pattern + ["-strict", "-1", "-f", "yuv4mpegpipe", y4m])
        try ffmpeg(pattern + ["-f", "rawvideo", raw])

        let reader = try Y4MReader(path: y4m)
        #expect(reader.geometry.width == 96 && reader.geometry.height == 64)
        #expect(reader.frameInterval == 1.0 / 25)
        let frames = try readAllFrames(reader)
        let reference = try Data(contentsOf: URL(fileURLWithPath: raw))
        let lumaSamples = 96 * 64, frameBytes = (lumaSamples + chromaSamples) * bytesPerSample
        #expect(frames.count == 5 && reference.count == 5 * frameBytes)
        var mismatches = 0, distinct = Set<UInt16>()
        reference.withUnsafeBytes { bytes in
            for (index, frame) in frames.enumerated() {
                for i in 0..<lumaSamples {
                    let offset = index * frameBytes + i * bytesPerSample
                    let expected = bytesPerSample == 1 ? UInt16(bytes[offset]) : UInt16(bytes[offset]) | UInt16(bytes[offset + 1]) << 8
                    if frame[i] != expected { mismatches += 1 }
                    distinct.insert(expected)
                }
            }
        }
        #expect(mismatches == 0)
        #expect(distinct.count > 10, "the pattern is not flat")
    }

    @Test(arguments: [PixelFormat.grey8, .grey16])
    func writerOutputReadsBackIdentically(format: PixelFormat) throws {
        let scratch = ScratchDirectory()
        let geometry = try FrameGeometry(width: 33, height: 17, format: format, bitsStored: format == .grey8 ? 8 : 12)
        let writer = try Y4MWriter(path: scratch.file("out.y4m"), geometry: geometry, frameRate: (30000, 1001))
        let frame = Frame(slot: 0, geometry: geometry, stageCount: 1)
        var written: [[UInt16]] = []
        for index in 0..<3 {
            for i in 0..<geometry.pixelCount { frame.pixels[i] = UInt16((i * 7 + index * 13) % Int(geometry.maximumValue)) }
            written.append(Array(frame.pixels))
            try writer.append(frame)
        }
        #expect(!FileManager.default.fileExists(atPath: scratch.file("out.y4m")), "no file under its name before it is complete")
        try writer.finish()
        let reader = try Y4MReader(path: scratch.file("out.y4m"))
        #expect(reader.geometry == geometry)
        #expect(try readAllFrames(reader) == written)
        #expect(abs(reader.frameInterval! - 1001.0 / 30000) < 1e-12)
    }

    @Test func truncatedFrameIsAnErrorNamingFileAndFrame() throws {
        let scratch = ScratchDirectory()
        let path = scratch.file("cut.y4m")
        var data = Data("YUV4MPEG2 W4 H2 F25:1 Cmono\nFRAME\n".utf8) + Data(repeating: 9, count: 8)
        data += Data("FRAME\n".utf8) + Data(repeating: 9, count: 5)
        try data.write(to: URL(fileURLWithPath: path))
        let reader = try Y4MReader(path: path)
        let frame = Frame(slot: 0, geometry: reader.geometry, stageCount: 1)
        #expect(try reader.read(into: frame))
        #expect(throws: FluoroError.truncated(path: path, detail: "frame 1 has 5 of 8 bytes")) { try reader.read(into: frame) }
    }

    @Test func badHeadersAreRejectedWithTheReason() throws {
        let scratch = ScratchDirectory()
        let cases: [(String, String)] = [
            ("P5\n4 4\n255\n", "not a YUV4MPEG2 stream"),
            ("YUV4MPEG2 W0 H4 Cmono\n", "valid width and height"),
            ("YUV4MPEG2 W4 H4 F25 Cmono\n", "bad frame rate"),
            ("YUV4MPEG2 W4 H4 C411\n", "colour space 'C411'"),
            ("", "empty input"),
        ]
        for (index, (content, reason)) in cases.enumerated() {
            let path = scratch.file("bad\(index).y4m")
            try Data(content.utf8).write(to: URL(fileURLWithPath: path))
            do {
                _ = try Y4MReader(path: path)
                Issue.record("\(content) was accepted")
            } catch let error as FluoroError {
                #expect(error.description.contains(path) && error.description.contains(reason), "\(error)")
            }
        }
    }

    @Test func missingFileNamesThePath() {
        #expect(throws: FluoroError.cannotOpen(path: "/nonexistent/run.y4m", reason: "No such file or directory")) {
            try Y4MReader(path: "/nonexistent/run.y4m")
        }
    }

    @Test func garbageWhereAFrameMarkerShouldBeIsAnError() throws {
        let scratch = ScratchDirectory()
        let path = scratch.file("garbage.y4m")
        try Data("YUV4MPEG2 W2 H2 Cmono\nFRAMX\n1234".utf8).write(to: URL(fileURLWithPath: path))
        let reader = try Y4MReader(path: path)
        let frame = Frame(slot: 0, geometry: reader.geometry, stageCount: 1)
        #expect(throws: FluoroError.self) { try reader.read(into: frame) }
    }
}
