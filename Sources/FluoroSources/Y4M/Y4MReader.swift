import FluoroCore

/// Reads a YUV4MPEG2 stream (a file, or "-" for standard input) frame by frame as a `FrameSource`:
/// the luma plane of grey, 4:2:0, 4:2:2 or 4:4:4 video at 8 or 9-16 bits; chroma is skipped.
///
/// Any video reaches the pipeline through it: `ffmpeg -i run.mp4 -pix_fmt gray -f yuv4mpegpipe - | fluoro run -`.
public final class Y4MReader: FrameSource {
    public let name: String
    public let header: Y4MHeader
    public let geometry: FrameGeometry
    public var frameInterval: Double? { header.frameInterval }
    public var frameCount: Int? { nil }

    private let input: FileDescriptorReader
    private let raw: UnsafeMutableRawBufferPointer
    private let chroma: UnsafeMutableRawBufferPointer
    private var line: [UInt8] = []
    private var nextIndex = 0
    private static let frameMarker = Array("FRAME".utf8)

    /// Opens the stream and reads its header.
    public init(path: String) throws {
        input = try FileDescriptorReader(path: path)
        name = input.path
        line.reserveCapacity(1024)
        guard try input.readLine(limit: 1024, into: &line) else {
            if input.interrupted {
                throw FluoroError.truncated(path: input.path, detail: "stopped while waiting for the YUV4MPEG2 header")
            }
            throw FluoroError.truncated(path: input.path, detail: "empty input: no YUV4MPEG2 header")
        }
        header = try Y4MHeader.parse(line, path: input.path)
        geometry = try header.geometry()
        raw = .allocate(byteCount: header.lumaBytes, alignment: 64)
        chroma = .allocate(byteCount: max(header.chromaBytes, 1), alignment: 64)
    }

    deinit {
        raw.deallocate()
        chroma.deallocate()
    }

    /// Wakes a `read` that waits for input (a quiet pipe or FIFO); it ends the run at the last whole frame.
    public func cancel() { input.interrupt() }

    public func read(into frame: Frame) throws -> Bool {
        guard try input.readLine(limit: 1024, into: &line) else { return false }
        guard line.starts(with: Self.frameMarker) else {
            throw FluoroError.malformed(
                path: input.path,
                detail: "frame \(nextIndex): expected a FRAME marker, found "
                    + "'\(String(decoding: line.prefix(16), as: UTF8.self).printable)'")
        }
        let got = try input.read(into: raw.baseAddress!, count: header.lumaBytes)
        let chromaGot = got == header.lumaBytes ? try input.read(into: chroma.baseAddress!, count: header.chromaBytes) : 0
        if input.interrupted { return false }  // a stop request: end the run at the last whole frame
        guard got == header.lumaBytes, chromaGot == header.chromaBytes else {
            throw FluoroError.truncated(
                path: input.path,
                detail: "frame \(nextIndex) has \(got + chromaGot) of "
                    + "\(header.lumaBytes + header.chromaBytes) bytes")
        }
        let count = geometry.pixelCount
        let destination = frame.pixels.baseAddress!
        if header.bitsPerSample > 8 {
            let samples = raw.baseAddress!.assumingMemoryBound(to: UInt16.self)
            for i in 0..<count { destination[i] = UInt16(littleEndian: samples[i]) }
        } else {
            let samples = raw.baseAddress!.assumingMemoryBound(to: UInt8.self)
            for i in 0..<count { destination[i] = UInt16(samples[i]) }
        }
        frame.index = nextIndex
        frame.sourceTime = Double(nextIndex) * (frameInterval ?? 0)
        nextIndex += 1
        return true
    }
}
