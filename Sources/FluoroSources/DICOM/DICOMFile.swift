import FluoroCore

/// A DICOM Part 10 file opened for frame-by-frame decoding: its attributes, the image description the
/// pipeline needs, and where each frame's bytes lie. The file is memory-mapped; nothing is decoded until
/// a frame is asked for.
public final class DICOMFile: @unchecked Sendable {
    public let path: String
    public let transferSyntax: TransferSyntax
    public let meta: DICOMDataSet
    public let dataSet: DICOMDataSet
    public let rows: Int
    public let columns: Int
    public let numberOfFrames: Int
    public let bitsAllocated: Int
    public let bitsStored: Int
    public let highBit: Int
    /// MONOCHROME1 files are inverted on decoding, so frames always read as MONOCHROME2.
    public let isMonochrome1: Bool
    /// Samples per pixel: 1, or 3 for a colour file (inspected, not processed).
    public let samplesPerPixel: Int
    /// 8-bit colour (RGB, or YBR_FULL / YBR_FULL_422 as JPEG stores it), interleaved: readable for inspection only.
    public let isColour: Bool
    /// The Photometric Interpretation (MONOCHROME2 where absent).
    public let photometricInterpretation: String
    /// Signed samples (Pixel Representation 1) are read as offset binary: value + 2^(bitsStored − 1), so the
    /// pipeline's unsigned samples keep their order.
    public let isSigned: Bool
    let file: MappedFile
    /// The encoded bytes of each frame: one range for native data, one or more fragments when encapsulated.
    let frameFragments: [[Range<Int>]]

    /// The most frames a run may declare (an hour at 30 frames/s); a larger count is taken as a corrupt value.
    public static let maximumFrames = 108_000

    public init(path: String) throws {
        file = try MappedFile(path: path)
        self.path = path
        (meta, dataSet, transferSyntax) = try DICOMParser(file: file).parse()
        let data = dataSet
        /// The attribute's integer within `range`; `fallback` when it is absent, an error naming it when its value
        /// is not an integer in that range (NaN, infinite, fractional counts, absurd sizes).
        func integer(_ tag: DICOMTag, _ name: String, in range: ClosedRange<Int>, fallback: Int? = nil) throws -> Int {
            guard let first = data.numbers(tag).first else {
                if let fallback { return fallback }
                throw FluoroError.malformed(path: path, detail: "missing \(name) \(tag)")
            }
            guard let value = Int(checked: first), Double(value) == first, range.contains(value) else {
                throw FluoroError.malformed(
                    path: path,
                    detail: "\(name) \(tag) is \(first), expected an integer in "
                        + "\(range.lowerBound)...\(range.upperBound)")
            }
            return value
        }
        rows = try integer(DICOMDictionary.rows, "Rows", in: 1...16384)
        columns = try integer(DICOMDictionary.columns, "Columns", in: 1...16384)
        bitsAllocated = try integer(DICOMDictionary.bitsAllocated, "Bits Allocated", in: 1...64)
        bitsStored = try integer(DICOMDictionary.bitsStored, "Bits Stored", in: 1...64, fallback: bitsAllocated)
        highBit = try integer(DICOMDictionary.highBit, "High Bit", in: 0...63, fallback: bitsStored - 1)
        numberOfFrames = try integer(
            DICOMDictionary.numberOfFrames, "Number of Frames", in: 0...Self.maximumFrames,
            fallback: 1)
        guard numberOfFrames > 0 else {
            throw FluoroError.malformed(path: path, detail: "Number of Frames \(DICOMDictionary.numberOfFrames) is 0")
        }
        let photometric = data.string(DICOMDictionary.photometricInterpretation) ?? "MONOCHROME2"
        photometricInterpretation = photometric
        isMonochrome1 = photometric == "MONOCHROME1"

        guard rows > 0, columns > 0, rows <= 16384, columns <= 16384 else {
            throw FluoroError.malformed(path: path, detail: "image size \(columns)x\(rows) is outside 1...16384")
        }
        samplesPerPixel = try integer(DICOMDictionary.samplesPerPixel, "Samples per Pixel", in: 1...4, fallback: 1)
        isColour =
            ["RGB", "YBR_FULL", "YBR_FULL_422"].contains(photometric) && samplesPerPixel == 3 && bitsAllocated == 8
            && (data.integer(DICOMDictionary.planarConfiguration) ?? 0) == 0
        // Colour is read for inspection only (e.g. FluoroStream's own recordings); `geometry()` refuses it.
        guard photometric == "MONOCHROME1" || photometric == "MONOCHROME2" || isColour else {
            throw FluoroError.unsupported(
                path: path,
                detail: "photometric interpretation \(photometric): only greyscale "
                    + "(MONOCHROME1/2) X-ray runs are processed")
        }
        guard samplesPerPixel == 1 || isColour else {
            throw FluoroError.unsupported(path: path, detail: "more than one sample per pixel")
        }
        guard bitsAllocated == 8 || bitsAllocated == 16 else {
            throw FluoroError.unsupported(path: path, detail: "Bits Allocated \(bitsAllocated) (8 or 16 are supported)")
        }
        guard (1...bitsAllocated).contains(bitsStored), highBit >= bitsStored - 1, highBit < bitsAllocated else {
            throw FluoroError.malformed(
                path: path,
                detail: "Bits Stored \(bitsStored) / High Bit \(highBit) do not fit "
                    + "Bits Allocated \(bitsAllocated)")
        }
        isSigned = (data.integer(DICOMDictionary.pixelRepresentation) ?? 0) == 1
        guard let pixels = data[DICOMDictionary.pixelData] else {
            throw FluoroError.malformed(path: path, detail: "no Pixel Data (7FE0,0010)")
        }
        frameFragments = try Self.locateFrames(
            pixels, in: file, data: data, syntax: transferSyntax, frames: numberOfFrames,
            frameBytes: rows * columns * samplesPerPixel * bitsAllocated / 8, path: path)
    }

    /// The pipeline geometry of the frames; colour files are refused.
    public func geometry() throws -> FrameGeometry {
        guard !isColour else {
            throw FluoroError.unsupported(
                path: path,
                detail: "photometric interpretation \(photometricInterpretation): only greyscale "
                    + "(MONOCHROME1/2) X-ray runs are processed")
        }
        return try FrameGeometry(width: columns, height: rows, format: bitsAllocated == 8 ? .grey8 : .grey16, bitsStored: bitsStored)
    }

    // MARK: - Attributes the pipeline uses

    public var modality: String? { dataSet.string(DICOMDictionary.modality) }
    public var sopClassUID: String? { dataSet.string(DICOMDictionary.sopClassUID) }
    public var manufacturer: String? { dataSet.string(DICOMDictionary.manufacturer) }
    /// Milliseconds between frames (Frame Time, else Cine Rate or Recommended Display Frame Rate).
    public var frameTimeMilliseconds: Double? {
        // Between 1 ms and a minute; other values (0, negative, NaN, infinite) are taken as absent.
        let plausible = 1.0...60_000.0
        if let time = dataSet.numbers(DICOMDictionary.frameTime).first, plausible.contains(time) { return time }
        for tag in [DICOMDictionary.cineRate, DICOMDictionary.recommendedDisplayFrameRate] {
            if let rate = dataSet.numbers(tag).first, rate > 0, plausible.contains(1000 / rate) { return 1000 / rate }
        }
        return nil
    }
    /// Frame Time Vector: milliseconds from the previous frame, per frame (the first is 0).
    public var frameTimeVector: [Double]? {
        let vector = dataSet.numbers(DICOMDictionary.frameTimeVector)
        guard vector.count == numberOfFrames, vector.allSatisfy({ (0...60_000).contains($0) }) else { return nil }
        return vector
    }
    public var windowCenterWidth: (center: Double, width: Double)? {
        guard let center = dataSet.numbers(DICOMDictionary.windowCenter).first,
            let width = dataSet.numbers(DICOMDictionary.windowWidth).first,
            center.isFinite, width.isFinite, width > 0
        else { return nil }
        return (center, width)
    }
    /// Imager Pixel Spacing in mm (row spacing, column spacing).
    public var imagerPixelSpacing: [Double] {
        let spacing = dataSet.numbers(DICOMDictionary.imagerPixelSpacing)
        return spacing.allSatisfy({ $0.isFinite && $0 > 0 }) ? spacing : []
    }
    /// Pixel spacing and C-arm position: Pixel Spacing where the modality calibrated it, else Imager Pixel Spacing
    /// scaled to the isocentre by the source distances where they are known, else at the detector. Implausible
    /// values (not finite, spacing outside (0, 10] mm, distances outside (0, 5000] mm, angles beyond ±360°) are
    /// taken as absent.
    public var imagingGeometry: ImagingGeometry {
        var geometry = ImagingGeometry()
        func spacing(_ tag: DICOMTag) -> (Double, Double)? {
            let values = dataSet.numbers(tag)
            guard values.count == 2, values.allSatisfy({ $0.isFinite && $0 > 0 && $0 <= 10 }) else { return nil }
            return (values[0], values[1])
        }
        func distance(_ tag: DICOMTag) -> Double? {
            dataSet.numbers(tag).first.flatMap { $0.isFinite && $0 > 0 && $0 <= 5000 ? $0 : nil }
        }
        func angle(_ tag: DICOMTag) -> Double? {
            dataSet.numbers(tag).first.flatMap { $0.isFinite && abs($0) <= 360 ? $0 : nil }
        }
        geometry.sourceToDetector = distance(DICOMDictionary.distanceSourceToDetector)
        geometry.sourceToPatient = distance(DICOMDictionary.distanceSourceToPatient)
        geometry.primaryAngle = angle(DICOMDictionary.positionerPrimaryAngle)
        geometry.secondaryAngle = angle(DICOMDictionary.positionerSecondaryAngle)
        if let (row, column) = spacing(DICOMDictionary.pixelSpacing) {
            (geometry.rowSpacing, geometry.columnSpacing, geometry.spacingPlane) = (row, column, .patient)
        } else if let (row, column) = spacing(DICOMDictionary.imagerPixelSpacing) {
            if let detector = geometry.sourceToDetector, let patient = geometry.sourceToPatient, patient < detector {
                let scale = patient / detector
                (geometry.rowSpacing, geometry.columnSpacing, geometry.spacingPlane) = (row * scale, column * scale, .isocenter)
            } else {
                (geometry.rowSpacing, geometry.columnSpacing, geometry.spacingPlane) = (row, column, .detector)
            }
        }
        return geometry
    }

    public var positionerAngles: (primary: Double, secondary: Double)? {
        guard let primary = dataSet.numbers(DICOMDictionary.positionerPrimaryAngle).first,
            let secondary = dataSet.numbers(DICOMDictionary.positionerSecondaryAngle).first,
            primary.isFinite, secondary.isFinite
        else { return nil }
        return (primary, secondary)
    }
    /// The first VOI LUT of the VOI LUT Sequence, when present (it takes precedence over the window).
    public var voiLookUpTable: VOILookUpTable? {
        guard let item = dataSet[DICOMDictionary.voiLUTSequence]?.items.first else { return nil }
        let descriptor = item.numbers(DICOMDictionary.lutDescriptor)
        guard descriptor.count == 3, let raw = item.bytes(DICOMDictionary.lutData),
            let entryCount = Int(checked: descriptor[0]), let mapped = Int(checked: descriptor[1]),
            let bits = Int(checked: descriptor[2]), (0...65535).contains(entryCount), (-32768...65535).contains(mapped)
        else { return nil }
        // PS3.3 C.11.2.1.1: 0 entries means 65536; the first mapped value is US or SS as the pixels are.
        let count = entryCount == 0 ? 65536 : entryCount
        let firstMapped = isSigned ? Int(Int16(truncatingIfNeeded: mapped)) : mapped
        guard (8...16).contains(bits), raw.count >= count * 2 else { return nil }
        let entries = (0..<count).map { index -> UInt16 in
            let value = raw.loadUnaligned(fromByteOffset: 2 * index, as: UInt16.self)
            return dataSet.bigEndian ? UInt16(bigEndian: value) : UInt16(littleEndian: value)
        }
        return VOILookUpTable(firstMapped: firstMapped, bits: bits, entries: entries)
    }

    /// The ECG stored as a (retired) curve in group 5000, when present.
    public var ecgCurve: ECGCurve? {
        guard dataSet.string(DICOMDictionary.curveTypeOfData) == "ECG", let raw = dataSet.bytes(DICOMDictionary.curveData),
            let points = dataSet.integer(DICOMDictionary.curveNumberOfPoints), (1...raw.count).contains(points)
        else { return nil }
        let representation = dataSet.integer(DICOMDictionary.curveDataValueRepresentation) ?? 0
        let size = [0: 2, 1: 2, 2: 4, 3: 8, 4: 4][representation] ?? 0
        guard size > 0 else { return nil }
        let count = min(points, raw.count / size)
        // Each point is one value when the x axis is implicit (start and step), else an (x, y) pair: keep y.
        let stride = raw.count >= points * size * 2 ? 2 : 1
        let samples = (0..<(count / stride)).map { index -> Double in
            let offset = (index * stride + stride - 1) * size
            func word<T: FixedWidthInteger>(_ type: T.Type) -> T {
                let value = raw.loadUnaligned(fromByteOffset: offset, as: T.self)
                return dataSet.bigEndian ? T(bigEndian: value) : T(littleEndian: value)
            }
            switch representation {
            case 0: return Double(word(UInt16.self))
            case 1: return Double(word(Int16.self))
            case 2: return Double(Float(bitPattern: word(UInt32.self)))
            case 3: return Double(bitPattern: word(UInt64.self))
            default: return Double(word(Int32.self))
            }
        }
        return ECGCurve(
            samples: samples, axisUnits: dataSet.string(DICOMDictionary.curveAxisUnits, all: true),
            coordinateStart: dataSet.numbers(DICOMDictionary.curveCoordinateStartValue).first,
            coordinateStep: dataSet.numbers(DICOMDictionary.curveCoordinateStepValue).first)
    }

    /// R Wave Pointer: frame numbers (1-based in the file) at the R waves.
    /// Values that cannot be frame numbers (not an integer, outside 1...`maximumFrames`) are left out.
    public var rWavePointer: [Int] {
        dataSet.numbers(DICOMDictionary.rWavePointer).compactMap { Int(checked: $0) }.filter { (1...Self.maximumFrames).contains($0) }
    }
    /// Whether the file carries an ECG (a retired curve group 50xx or a Waveform Sequence).
    public var hasECG: Bool {
        dataSet.elements.keys.contains { ($0.group & 0xFF00) == 0x5000 && $0.group & 1 == 0 }
            || dataSet[DICOMTag(0x5400, 0x0100)] != nil
    }

    // MARK: - Frames

    private static func locateFrames(
        _ pixels: DICOMElement, in file: MappedFile, data: DICOMDataSet,
        syntax: TransferSyntax, frames: Int, frameBytes: Int, path: String
    ) throws -> [[Range<Int>]] {
        if !syntax.isEncapsulated {
            guard pixels.fragments.isEmpty else {
                throw FluoroError.malformed(path: path, detail: "encapsulated pixel data in a native transfer syntax")
            }
            guard pixels.valueLength >= frames * frameBytes else {
                throw FluoroError.truncated(
                    path: path,
                    detail: "pixel data holds \(pixels.valueLength) bytes, \(frames) frames "
                        + "of \(frameBytes) bytes need \(frames * frameBytes)")
            }
            return (0..<frames).map { [(pixels.valueOffset + $0 * frameBytes)..<(pixels.valueOffset + ($0 + 1) * frameBytes)] }
        }
        let fragments = pixels.fragments
        guard !fragments.isEmpty else { throw FluoroError.malformed(path: path, detail: "encapsulated pixel data has no fragments") }
        // Offsets of each frame's first fragment, relative to the first fragment's item tag.
        var offsets: [Int] = []
        if let extended = data.bytes(DICOMDictionary.extendedOffsetTable), extended.count == frames * 8 {
            offsets = (0..<frames).map { Int(UInt64(littleEndian: extended.loadUnaligned(fromByteOffset: $0 * 8, as: UInt64.self))) }
        } else if let table = pixels.basicOffsetTable, table.count == frames * 4 {
            offsets = (0..<frames).map {
                Int(UInt32(littleEndian: file.bytes.loadUnaligned(fromByteOffset: table.lowerBound + $0 * 4, as: UInt32.self)))
            }
        }
        if !offsets.isEmpty {
            let base = fragments[0].lowerBound - 8
            var result: [[Range<Int>]] = Array(repeating: [], count: frames)
            for fragment in fragments {
                let position = fragment.lowerBound - 8 - base
                guard let frame = offsets.lastIndex(where: { $0 <= position }) else {
                    throw FluoroError.malformed(path: path, detail: "a fragment lies before the first frame's offset")
                }
                result[frame].append(fragment)
            }
            guard result.allSatisfy({ !$0.isEmpty }) else {
                throw FluoroError.malformed(path: path, detail: "the offset table does not match the fragments")
            }
            return result
        }
        if fragments.count == frames { return fragments.map { [$0] } }
        if frames == 1 { return [fragments] }
        // No usable offset table and more fragments than frames: a JPEG frame starts with an SOI marker.
        var result: [[Range<Int>]] = []
        for fragment in fragments {
            let startsFrame = fragment.count >= 2 && file.bytes[fragment.lowerBound] == 0xFF && file.bytes[fragment.lowerBound + 1] == 0xD8
            if startsFrame || result.isEmpty { result.append([fragment]) } else { result[result.count - 1].append(fragment) }
        }
        guard result.count == frames else {
            throw FluoroError.malformed(
                path: path,
                detail: "\(fragments.count) fragments cannot be split into \(frames) frames "
                    + "(no offset table; \(result.count) JPEG start-of-image markers)")
        }
        return result
    }
}

/// A VOI LUT (PS3.3 C.11.2): stored values from `firstMapped` map to `entries`, each of `bits` bits; values
/// below or above the table take its first or last entry.
public struct VOILookUpTable: Sendable, Equatable {
    public let firstMapped: Int
    public let bits: Int
    public let entries: [UInt16]

    /// The output for a stored value, as a fraction of full scale (0...1).
    public func level(for value: Int) -> Double {
        let index = min(max(value - firstMapped, 0), entries.count - 1)
        return Double(entries[index]) / Double((1 << bits) - 1)
    }
}

/// An ECG curve from a DICOM file: its samples (the y values) and how the x axis is described.
public struct ECGCurve: Sendable {
    public let samples: [Double]
    /// Curve Axis Units (x\\y), e.g. "DPPS\\NONE".
    public let axisUnits: String?
    /// Coordinate Start Value and Coordinate Step Value of the implicit x axis, when given.
    public let coordinateStart: Double?
    public let coordinateStep: Double?
}
