#if canImport(Glibc)
    import Glibc
#endif
import FluoroCore

/// Writes grey frames as a YUV4MPEG2 stream (`Cmono` for 8 bits, `Cmono10`/`Cmono12`/`Cmono16`… above),
/// which ffmpeg and `Y4MReader` read back. The file appears under its name only when `finish()` completes it
/// (`OutputFile`).
public final class Y4MWriter {
    public let path: String
    public let geometry: FrameGeometry
    private let output: OutputFile
    private let raw: UnsafeMutableRawBufferPointer
    private static let frameMarker = Array("FRAME\n".utf8)

    /// Starts `path` and writes the header; `frameRate` is a fraction, e.g. (15, 1). An existing `path` is replaced
    /// only with `replace`, and never when it is one of `inputs`.
    public init(
        path: String, geometry: FrameGeometry, frameRate: (numerator: Int, denominator: Int),
        replace: Bool = false, inputs: [String] = []
    ) throws {
        self.path = path
        self.geometry = geometry
        output = try OutputFile(path: path, replace: replace, inputs: inputs)
        raw = .allocate(byteCount: geometry.pixelCount * geometry.format.bytesPerSample, alignment: 64)
        let tag = geometry.format == .grey8 ? "mono" : "mono\(geometry.bitsStored)"
        try write(
            Array(
                "YUV4MPEG2 W\(geometry.width) H\(geometry.height) F\(frameRate.numerator):\(frameRate.denominator) Ip A1:1 C\(tag) XCOLORRANGE=FULL\n"
                    .utf8))
    }

    deinit { raw.deallocate() }

    /// Completes the file under its name.
    public func finish() throws { try output.commit() }

    /// Appends one frame's grey samples.
    public func append(_ frame: Frame) throws {
        let count = geometry.pixelCount
        if geometry.format == .grey8 {
            let bytes = raw.baseAddress!.assumingMemoryBound(to: UInt8.self)
            for i in 0..<count { bytes[i] = UInt8(truncatingIfNeeded: frame.pixels[i]) }
        } else {
            let samples = raw.baseAddress!.assumingMemoryBound(to: UInt16.self)
            for i in 0..<count { samples[i] = frame.pixels[i].littleEndian }
        }
        try write(Self.frameMarker)
        try write(UnsafeRawBufferPointer(raw))
    }

    private func write(_ bytes: [UInt8]) throws { try output.write(bytes) }

    private func write(_ bytes: UnsafeRawBufferPointer) throws { try output.write(bytes) }
}
