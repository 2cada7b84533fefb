#if canImport(Glibc)
    import Glibc
#endif
import FluoroCore

/// Writes grey frames as a YUV4MPEG2 stream (`Cmono` for 8 bits, `Cmono10`/`Cmono12`/`Cmono16`… above; or with
/// neutral 4:2:0 chroma, `Y4MChroma`), which ffmpeg and `Y4MReader` read back. The file appears under its name only when `finish()` completes it
/// (`OutputFile`).
public final class Y4MWriter {
    public let path: String
    public let geometry: FrameGeometry
    /// Samples of at most 8 bits are written as bytes (`Cmono`, `C420jpeg`), whatever the frame's format.
    private let narrow: Bool
    private let output: OutputFile
    private let raw: UnsafeMutableRawBufferPointer
    /// The neutral chroma planes written after each frame's luma (empty for `mono`).
    private let neutralChroma: UnsafeMutableRawBufferPointer
    private static let frameMarker = Array("FRAME\n".utf8)

    /// Starts `path` and writes the header; `frameRate` is a fraction, e.g. (15, 1). An existing `path` is replaced
    /// only with `replace`, and never when it is one of `inputs`.
    public init(
        path: String, geometry: FrameGeometry, frameRate: (numerator: Int, denominator: Int), chroma: Y4MChroma = .mono,
        replace: Bool = false, inputs: [String] = []
    ) throws {
        self.path = path
        self.geometry = geometry
        output = try OutputFile(path: path, replace: replace, inputs: inputs)
        narrow = geometry.bitsStored <= 8
        let bytesPerSample = narrow ? 1 : 2
        raw = .allocate(byteCount: geometry.pixelCount * bytesPerSample, alignment: 64)
        let chromaSamples = chroma == .mono ? 0 : 2 * ((geometry.width + 1) / 2) * ((geometry.height + 1) / 2)
        neutralChroma = .allocate(byteCount: chromaSamples * bytesPerSample, alignment: 64)
        if narrow {
            neutralChroma.initializeMemory(as: UInt8.self, repeating: 128)
        } else {
            neutralChroma.initializeMemory(as: UInt16.self, repeating: UInt16(1 << (geometry.bitsStored - 1)).littleEndian)
        }
        let tag =
            switch chroma {
            case .mono: narrow ? "mono" : "mono\(geometry.bitsStored)"
            case .yuv420: narrow ? "420jpeg" : "420p\(geometry.bitsStored)"
            }
        try write(
            Array(
                "YUV4MPEG2 W\(geometry.width) H\(geometry.height) F\(frameRate.numerator):\(frameRate.denominator) Ip A1:1 C\(tag) XCOLORRANGE=FULL\n"
                    .utf8))
    }

    deinit {
        raw.deallocate()
        neutralChroma.deallocate()
    }

    /// Completes the file under its name.
    public func finish() throws { try output.commit() }

    /// Appends one frame's grey samples.
    public func append(_ frame: Frame) throws {
        let count = geometry.pixelCount
        if narrow {
            let bytes = raw.baseAddress!.assumingMemoryBound(to: UInt8.self)
            for i in 0..<count { bytes[i] = UInt8(truncatingIfNeeded: frame.pixels[i]) }
        } else {
            let samples = raw.baseAddress!.assumingMemoryBound(to: UInt16.self)
            for i in 0..<count { samples[i] = frame.pixels[i].littleEndian }
        }
        try write(Self.frameMarker)
        try write(UnsafeRawBufferPointer(raw))
        if neutralChroma.count > 0 { try write(UnsafeRawBufferPointer(neutralChroma)) }
    }

    private func write(_ bytes: [UInt8]) throws { try output.write(bytes) }

    private func write(_ bytes: UnsafeRawBufferPointer) throws { try output.write(bytes) }
}
