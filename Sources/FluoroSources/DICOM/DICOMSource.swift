import FluoroCore

/// A recorded DICOM run (multi-frame XA/RF, or a single frame) as a `FrameSource`: frames are decoded one at
/// a time in the source thread from the memory-mapped file, with the buffers allocated once.
public final class DICOMSource: FrameSource {
    public let file: DICOMFile
    public let geometry: FrameGeometry
    public var name: String { file.path }
    public var frameCount: Int? { file.numberOfFrames }
    public var frameInterval: Double? { file.frameTimeMilliseconds.map { $0 / 1000 } }
    public let imaging: ImagingGeometry

    private var nextIndex = 0
    private let contiguous: UnsafeMutableRawBufferPointer
    private let bytePlane: UnsafeMutableBufferPointer<UInt8>
    private let jpegBaseline: JPEGBaselineDecoder?
    private let jpegLossless: JPEGLosslessDecoder
    /// Seconds from the first frame, per frame (from the Frame Time Vector or the frame time).
    private let frameTimes: [Double]
    private let cardiacPhases: [Float]

    public init(path: String) throws {
        file = try DICOMFile(path: path)
        geometry = try file.geometry()
        imaging = file.imagingGeometry
        let syntax = file.transferSyntax
        switch syntax {
        case .implicitVRLittleEndian, .explicitVRLittleEndian, .explicitVRBigEndian, .rleLossless, .jpegLossless, .jpegLosslessSV1,
            .jpegLSLossless, .jpegLSNearLossless, .jpeg2000Lossless, .jpeg2000:
            break
        case .jpegBaseline:
            guard file.bitsAllocated == 8 else {
                throw FluoroError.unsupported(path: path, detail: "\(syntax.name) with \(file.bitsAllocated) bits allocated")
            }
        default:
            throw FluoroError.unsupported(
                path: path,
                detail: "transfer syntax \(syntax.name) (\(syntax.rawValue)) is not decoded "
                    + "by this build; transcode the run, e.g. `gdcmconv --raw` or `dcmdjpeg`, to an "
                    + "uncompressed or lossless syntax")
        }
        let largestFrame = file.frameFragments.map { $0.reduce(0) { $0 + $1.count } }.max() ?? 0
        contiguous = .allocate(byteCount: max(largestFrame, 1), alignment: 64)
        bytePlane = .allocate(capacity: geometry.pixelCount)
        jpegBaseline = syntax == .jpegBaseline ? try JPEGBaselineDecoder(path: path) : nil
        jpegLossless = JPEGLosslessDecoder(path: path)
        let steps = file.frameTimeVector ?? Array(repeating: file.frameTimeMilliseconds ?? 1000.0 / 30, count: file.numberOfFrames)
        cardiacPhases = Self.cardiacPhases(rWaves: file.rWavePointer, frameCount: file.numberOfFrames)
        var elapsed = 0.0
        frameTimes = steps.enumerated().map { index, step in
            if index > 0 { elapsed += step / 1000 }
            return elapsed
        }
    }

    deinit {
        contiguous.deallocate()
        bytePlane.deallocate()
    }

    public func read(into frame: Frame) throws -> Bool {
        guard nextIndex < file.numberOfFrames else { return false }
        try decode(frameAt: nextIndex, into: frame.pixels)
        frame.index = nextIndex
        frame.sourceTime = frameTimes[nextIndex]
        frame.cardiacPhase = cardiacPhase(ofFrame: nextIndex)
        nextIndex += 1
        return true
    }

    /// Where frame `index` (0-based) lies in the cardiac cycle: 0 at an R wave, towards 1 before the next (NaN
    /// when the run has fewer than two R waves).
    public func cardiacPhase(ofFrame index: Int) -> Float { cardiacPhases[index] }

    /// Cardiac phases of every frame from the R Wave Pointer (1-based frame numbers); before the first and after
    /// the last R wave the mean R–R interval extends the cycle.
    static func cardiacPhases(rWaves pointer: [Int], frameCount: Int) -> [Float] {
        let waves = pointer.map { $0 - 1 }.sorted()
        guard waves.count >= 2, let first = waves.first, let last = waves.last, last > first else {
            return Array(repeating: .nan, count: frameCount)
        }
        let mean = Double(last - first) / Double(waves.count - 1)
        return (0..<frameCount).map { index in
            if let next = waves.firstIndex(where: { $0 > index }), next > 0 {
                let start = waves[next - 1], end = waves[next]
                return Float(Double(index - start) / Double(end - start))
            }
            let cycles = Double(index - (index < first ? first : last)) / mean
            return Float(cycles - cycles.rounded(.down))
        }
    }

    /// Decodes frame `index` (0-based) into `output`, as unsigned MONOCHROME2 samples of `bitsStored` bits.
    public func decode(frameAt index: Int, into output: UnsafeMutableBufferPointer<UInt16>) throws {
        let path = file.path
        let fragments = file.frameFragments[index]
        let bytes: UnsafeRawBufferPointer
        if fragments.count == 1 {
            bytes = UnsafeRawBufferPointer(rebasing: file.file.bytes[fragments[0]])
        } else {
            var filled = 0
            for fragment in fragments {
                let part = UnsafeRawBufferPointer(rebasing: file.file.bytes[fragment])
                UnsafeMutableRawBufferPointer(rebasing: contiguous[filled..<(filled + part.count)]).copyMemory(from: part)
                filled += part.count
            }
            bytes = UnsafeRawBufferPointer(rebasing: contiguous[0..<filled])
        }
        let count = geometry.pixelCount
        let out = output.baseAddress!
        switch file.transferSyntax {
        case .rleLossless:
            try RLEDecoder.decode(bytes, bytesPerSample: file.bitsAllocated / 8, into: output, plane: bytePlane, path: path, frame: index)
        case .jpegLossless, .jpegLosslessSV1:
            try jpegLossless.decode(bytes, frame: index, width: geometry.width, height: geometry.height, into: output)
        case .jpegBaseline:
            try jpegBaseline!.decode(bytes, width: geometry.width, height: geometry.height, frame: index, into: bytePlane)
            for i in 0..<count { out[i] = UInt16(bytePlane[i]) }
        case .jpegLSLossless, .jpegLSNearLossless, .jpeg2000Lossless, .jpeg2000:
            let codec: LibraryCodecs.Codec =
                file.transferSyntax == .jpegLSLossless || file.transferSyntax == .jpegLSNearLossless
                ? .jpegLS : .jpeg2000
            try LibraryCodecs.decode(
                codec, bytes, width: geometry.width, height: geometry.height,
                bytesPerSample: file.bitsAllocated / 8, into: output, bytePlane: bytePlane, path: path, frame: index)
        default:
            if file.bitsAllocated == 8 {
                for i in 0..<count { out[i] = UInt16(bytes[i]) }
            } else if file.transferSyntax.isBigEndian {
                for i in 0..<count { out[i] = UInt16(bigEndian: bytes.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self)) }
            } else {
                for i in 0..<count { out[i] = UInt16(littleEndian: bytes.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self)) }
            }
        }
        // Keep only the stored bits (High Bit says where they sit), then MONOCHROME1 → MONOCHROME2.
        let shift = UInt16(file.highBit + 1 - file.bitsStored)
        let mask = geometry.maximumValue
        if shift != 0 || file.bitsStored < file.bitsAllocated {
            for i in 0..<count { out[i] = (out[i] >> shift) & mask }
        }
        if file.isSigned {
            let signBit = UInt16(1) << UInt16(file.bitsStored - 1)
            for i in 0..<count { out[i] ^= signBit }
        }
        if file.isMonochrome1 {
            for i in 0..<count { out[i] = mask &- out[i] }
        }
    }
}
