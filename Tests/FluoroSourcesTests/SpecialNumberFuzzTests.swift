import FluoroCore
import FluoroSources
import Foundation
import Testing

/// Every numeric attribute the DICOM and Y4M readers convert, given the values that break naive conversions (NaN,
/// infinities, values past 64 bits, negative zero, fractions, empty text) in every encoding a file can use for it:
/// each case ends in a typed error or a decoded run, never a trap (a trap takes the test process down) or a hang.
/// `FLUORO_FUZZ_CASES` sets how many random cases run after the exhaustive single-attribute ones.
@Suite struct SpecialNumberFuzzTests {
    static let randomCases = Int(ProcessInfo.processInfo.environment["FLUORO_FUZZ_CASES"] ?? "") ?? 300

    /// Texts for DS/IS attributes.
    static let specialTexts = [
        "nan", "NaN", "inf", "-inf", "Infinity", "1e19", "-1e19", "9223372036854775807",
        "9223372036854775808", "-9223372036854775809", "1e308", "-1e308", "1e-300", "-0", "0",
        "-1", "1.5", "65535", "65536", "4294967296", "", " ", "1\\nan", "nan\\nan\\nan",
    ]
    /// Binary encodings: (VR, little-endian bytes).
    static let specialBinaries: [(String, [UInt8])] = [
        ("FD", Array(repeating: 0xFF, count: 8)),  // NaN with every bit set
        ("FD", withUnsafeBytes(of: Double.infinity.bitPattern.littleEndian, Array.init)),
        ("FD", withUnsafeBytes(of: (-Double.infinity).bitPattern.littleEndian, Array.init)),
        ("FD", withUnsafeBytes(of: (1e300).bitPattern.littleEndian, Array.init)),
        ("FD", withUnsafeBytes(of: (-0.0).bitPattern.littleEndian, Array.init)),
        ("FL", Array(repeating: 0xFF, count: 4)),
        ("FL", withUnsafeBytes(of: Float.infinity.bitPattern.littleEndian, Array.init)),
        ("UL", Array(repeating: 0xFF, count: 4)),
        ("SL", [0, 0, 0, 0x80]),
        ("US", [0xFF, 0xFF]), ("US", [0, 0]), ("SS", [0, 0x80]),
        ("US", []), ("FD", [1, 2, 3]),  // empty and short values
    ]
    /// Every numeric attribute the readers look at.
    static let attributes: [DICOMTag] = [
        DICOMDictionary.rows, DICOMDictionary.columns, DICOMDictionary.bitsAllocated, DICOMDictionary.bitsStored,
        DICOMDictionary.highBit, DICOMDictionary.numberOfFrames, DICOMDictionary.samplesPerPixel,
        DICOMDictionary.planarConfiguration, DICOMDictionary.pixelRepresentation, DICOMDictionary.frameTime,
        DICOMDictionary.cineRate, DICOMDictionary.recommendedDisplayFrameRate, DICOMDictionary.frameTimeVector,
        DICOMDictionary.windowCenter, DICOMDictionary.windowWidth, DICOMDictionary.imagerPixelSpacing,
        DICOMDictionary.positionerPrimaryAngle, DICOMDictionary.positionerSecondaryAngle, DICOMDictionary.rWavePointer,
        DICOMDictionary.curveNumberOfPoints, DICOMDictionary.curveDataValueRepresentation,
        DICOMDictionary.curveCoordinateStartValue, DICOMDictionary.curveCoordinateStepValue,
        DICOMDictionary.pixelSpacing, DICOMDictionary.distanceSourceToDetector, DICOMDictionary.distanceSourceToPatient,
    ]

    /// Every value of every attribute, one attribute at a time.
    @Test func everySpecialValueOfEveryDICOMAttributeGivesAnErrorOrARun() throws {
        let scratch = ScratchDirectory()
        let path = scratch.file("special.dcm")
        var cases = 0
        for tag in Self.attributes {
            for text in Self.specialTexts {
                for vr in ["DS", "IS"] {
                    try TestDICOMFile.valid(replacing: tag, vr: vr, value: Array(text.utf8)).write(to: path)
                    exercise(path)
                    cases += 1
                }
            }
            for (vr, bytes) in Self.specialBinaries {
                try TestDICOMFile.valid(replacing: tag, vr: vr, value: bytes).write(to: path)
                exercise(path)
                cases += 1
            }
        }
        #expect(cases == Self.attributes.count * (2 * Self.specialTexts.count + Self.specialBinaries.count))
    }

    /// Several attributes at once, chosen at random.
    @Test func randomCombinationsOfSpecialValuesGiveAnErrorOrARun() throws {
        let scratch = ScratchDirectory()
        let path = scratch.file("combined.dcm")
        var random = SystemRandomNumberGenerator()
        for _ in 0..<Self.randomCases {
            var file = TestDICOMFile.valid()
            for _ in 0..<Int.random(in: 2...6, using: &random) {
                let tag = Self.attributes.randomElement(using: &random)!
                if Bool.random(using: &random) {
                    file.set(
                        tag, vr: ["DS", "IS"].randomElement(using: &random)!,
                        value: Array(Self.specialTexts.randomElement(using: &random)!.utf8))
                } else {
                    let (vr, bytes) = Self.specialBinaries.randomElement(using: &random)!
                    file.set(tag, vr: vr, value: bytes)
                }
            }
            try file.write(to: path)
            exercise(path)
        }
    }

    /// A valid file decodes (the fuzz cases above start from a file the reader accepts).
    @Test func theUnchangedTestFileDecodes() throws {
        let scratch = ScratchDirectory()
        let path = scratch.file("valid.dcm")
        try TestDICOMFile.valid().write(to: path)
        let source = try DICOMSource(path: path)
        #expect(source.geometry.width == 8 && source.geometry.height == 6 && source.frameCount == 2)
        #expect(source.file.frameTimeMilliseconds == 40 && source.file.windowCenterWidth?.width == 200)
    }

    @Test func notANumberInASizeIsAnErrorNamingTheAttribute() throws {
        let scratch = ScratchDirectory()
        let path = scratch.file("nan-rows.dcm")
        try TestDICOMFile.valid(replacing: DICOMDictionary.rows, vr: "DS", value: Array("nan".utf8)).write(to: path)
        #expect {
            _ = try DICOMFile(path: path)
        } throws: { error in
            "\(error)".contains("Rows") && "\(error)".contains(path)
        }
        try TestDICOMFile.valid(replacing: DICOMDictionary.numberOfFrames, vr: "IS", value: Array("1e19".utf8)).write(to: path)
        #expect(throws: FluoroError.self) { _ = try DICOMFile(path: path) }
    }

    @Test func specialFrameTimesAndWindowsAreTakenAsAbsent() throws {
        let scratch = ScratchDirectory()
        let path = scratch.file("special-timing.dcm")
        var file = TestDICOMFile.valid()
        file.set(DICOMDictionary.frameTime, vr: "FD", value: Array(repeating: 0xFF, count: 8))
        file.set(DICOMDictionary.windowWidth, vr: "DS", value: Array("inf".utf8))
        try file.write(to: path)
        let run = try DICOMFile(path: path)
        #expect(run.frameTimeMilliseconds == nil && run.windowCenterWidth == nil)
    }

    /// Calls everything a run and `fluoro inspect` read from a file.
    private func exercise(_ path: String) {
        do {
            let source = try DICOMSource(path: path)
            let run = source.file
            _ = (
                run.frameTimeMilliseconds, run.frameTimeVector, run.windowCenterWidth, run.imagerPixelSpacing,
                run.positionerAngles, run.voiLookUpTable, run.ecgCurve, run.rWavePointer, run.hasECG, run.imagingGeometry
            )
            let frame = Frame(slot: 0, geometry: source.geometry, stageCount: 1)
            var frames = 0
            while try source.read(into: frame) {
                frames += 1
                if frames > 100 { break }
            }
        } catch is FluoroError {
        } catch {
            Issue.record("untyped error \(error) for \(path)")
        }
    }

    // MARK: - Y4M

    static let y4mHeaders = [
        "W9223372036854775807 H2", "W2 H9223372036854775807", "W-1 H2", "W0 H0", "W16384 H16384 Cmono16",
        "W4097 H8", "W8 H8 F0:1", "W8 H8 F1:0", "W8 H8 F-1:1", "W8 H8 F9223372036854775807:1",
        "W8 H8 F1:9223372036854775807", "W8 H8 Fnan:1", "W8 H8 Cmono99", "W8 H8 Cmono9223372036854775807",
        "W8 H8 C420p99", "W8 H8 It", "W8 H8 Ib", "W8 H8 Im", "W8 H8 A0:0", "W1e19 H8", "Wnan H8",
    ]

    @Test(arguments: y4mHeaders)
    func absurdY4MHeadersGiveAnErrorOrARun(fields: String) throws {
        let scratch = ScratchDirectory()
        let path = scratch.file("special.y4m")
        try Data(("YUV4MPEG2 " + fields + "\nFRAME\n").utf8 + [UInt8](repeating: 128, count: 64 * 3)).write(to: URL(fileURLWithPath: path))
        do {
            let reader = try Y4MReader(path: path)
            let frame = Frame(slot: 0, geometry: reader.geometry, stageCount: 1)
            while try reader.read(into: frame) {}
        } catch let error as FluoroError {
            #expect(error.description.contains(path))
        }
    }

    @Test func interlacedAndOversizedY4MAreRefusedByName() throws {
        let scratch = ScratchDirectory()
        let path = scratch.file("interlaced.y4m")
        try Data("YUV4MPEG2 W8 H8 F25:1 It Cmono\n".utf8).write(to: URL(fileURLWithPath: path))
        #expect { _ = try Y4MReader(path: path) } throws: { "\($0)".contains("interlaced") }
        try Data("YUV4MPEG2 W16384 H16384 F25:1 Cmono16\n".utf8).write(to: URL(fileURLWithPath: path))
        #expect { _ = try Y4MReader(path: path) } throws: { "\($0)".contains("16384x16384") }
    }

    @Test func controlBytesFromAFileAreEscapedInTheMessage() throws {
        let scratch = ScratchDirectory()
        let path = scratch.file("control.y4m")
        try Data("YUV4MPEG2 W8 H8 F25:1 Cmono\nFR\u{0}\u{1B}[31mAME\n".utf8).write(to: URL(fileURLWithPath: path))
        let reader = try Y4MReader(path: path)
        let frame = Frame(slot: 0, geometry: reader.geometry, stageCount: 1)
        #expect {
            _ = try reader.read(into: frame)
        } throws: { error in
            let text = "\(error)"
            return !text.contains("\u{0}") && !text.contains("\u{1B}") && text.contains("\\u{1b}")
        }
    }
}

/// A small valid DICOM file (Explicit VR Little Endian, 8×6, 8 bits, 2 frames) whose attributes a test can replace.
struct TestDICOMFile {
    private var elements: [DICOMTag: (vr: String, value: [UInt8])] = [:]

    static func valid() -> TestDICOMFile {
        var file = TestDICOMFile()
        func us(_ value: UInt16) -> [UInt8] { [UInt8(value & 0xFF), UInt8(value >> 8)] }
        file.set(DICOMDictionary.sopClassUID, vr: "UI", value: Array("1.2.840.10008.5.1.4.1.1.12.1".utf8))
        file.set(DICOMDictionary.modality, vr: "CS", value: Array("XA".utf8))
        file.set(DICOMDictionary.frameTime, vr: "DS", value: Array("40".utf8))
        file.set(DICOMDictionary.samplesPerPixel, vr: "US", value: us(1))
        file.set(DICOMDictionary.photometricInterpretation, vr: "CS", value: Array("MONOCHROME2 ".utf8))
        file.set(DICOMDictionary.numberOfFrames, vr: "IS", value: Array("2 ".utf8))
        file.set(DICOMDictionary.rows, vr: "US", value: us(6))
        file.set(DICOMDictionary.columns, vr: "US", value: us(8))
        file.set(DICOMDictionary.bitsAllocated, vr: "US", value: us(8))
        file.set(DICOMDictionary.bitsStored, vr: "US", value: us(8))
        file.set(DICOMDictionary.highBit, vr: "US", value: us(7))
        file.set(DICOMDictionary.pixelRepresentation, vr: "US", value: us(0))
        file.set(DICOMDictionary.windowCenter, vr: "DS", value: Array("100 ".utf8))
        file.set(DICOMDictionary.windowWidth, vr: "DS", value: Array("200 ".utf8))
        file.set(DICOMDictionary.pixelData, vr: "OB", value: (0..<96).map { UInt8($0) })
        return file
    }

    static func valid(replacing tag: DICOMTag, vr: String, value: [UInt8]) -> TestDICOMFile {
        var file = valid()
        file.set(tag, vr: vr, value: value)
        return file
    }

    mutating func set(_ tag: DICOMTag, vr: String, value: [UInt8]) {
        elements[tag] = (vr, value.count % 2 == 0 ? value : value + [vr == "OB" || vr.hasPrefix("U") ? 0 : 0x20])
    }

    func write(to path: String) throws {
        var body: [UInt8] = []
        for tag in elements.keys.sorted(by: { ($0.group, $0.element) < ($1.group, $1.element) }) {
            let (vr, value) = elements[tag]!
            body += Self.element(tag, vr: vr, value: value)
        }
        let syntax = Array("1.2.840.10008.1.2.1\0".utf8)
        let meta = Self.element(DICOMTag(0x0002, 0x0010), vr: "UI", value: syntax)
        let metaLength = Self.element(
            DICOMTag(0x0002, 0x0000), vr: "UL",
            value: withUnsafeBytes(of: UInt32(meta.count).littleEndian, Array.init))
        let bytes = [UInt8](repeating: 0, count: 128) + Array("DICM".utf8) + metaLength + meta + body
        try Data(bytes).write(to: URL(fileURLWithPath: path))
    }

    private static func element(_ tag: DICOMTag, vr: String, value: [UInt8]) -> [UInt8] {
        var bytes = withUnsafeBytes(of: tag.group.littleEndian, Array.init) + withUnsafeBytes(of: tag.element.littleEndian, Array.init)
        bytes += Array(vr.utf8)
        if ["OB", "OW", "OF", "SQ", "UT", "UN", "UC", "UR", "OD", "OL", "OV"].contains(vr) {
            bytes += [0, 0] + withUnsafeBytes(of: UInt32(value.count).littleEndian, Array.init)
        } else {
            bytes += withUnsafeBytes(of: UInt16(value.count).littleEndian, Array.init)
        }
        return bytes + value
    }
}
