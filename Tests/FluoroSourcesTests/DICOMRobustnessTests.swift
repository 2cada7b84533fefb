import FluoroCore
import FluoroSources
import Foundation
import Testing

/// Real runs from ../shared/data (or FLUORO_TEST_DATA), cut short and corrupted: every case must end in a
/// typed error or a full decode; a crash would take the test process down, a hang would time it out.
@Suite struct DICOMRobustnessTests {
    static let dataDirectory: String = {
        if let configured = ProcessInfo.processInfo.environment["FLUORO_TEST_DATA"] { return configured }
        let here = URL(fileURLWithPath: #filePath)  // Tests/FluoroSourcesTests/...
        return here.deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("shared/data").path
    }()
    static let files = [
        "xa/XA-MONO2-8-12x-catheter.dcm", "xa/rubo-0002-rca-contrast.dcm", "wg04/XA1_RLE.dcm",
        "wg04/XA1_JPLL.dcm", "wg04/XA1_UNC.dcm", "wg04/XA1_JLSL.dcm", "wg04/XA1_J2KR.dcm",
        "rf/KarstenHilbertRF.dcm",
    ]
    static var available: Bool { FileManager.default.fileExists(atPath: dataDirectory + "/xa") }
    /// Corruption rounds per file (FLUORO_FUZZ_ROUNDS raises it for a longer run outside CI).
    static let rounds = Int(ProcessInfo.processInfo.environment["FLUORO_FUZZ_ROUNDS"] ?? "") ?? 60

    /// Opens and decodes every frame; returns nil on success or the error.
    func decodeAll(_ path: String) -> FluoroError? {
        do {
            let source = try DICOMSource(path: path)
            let frame = Frame(slot: 0, geometry: source.geometry, stageCount: 1)
            while try source.read(into: frame) {}
            return nil
        } catch let error as FluoroError {
            return error
        } catch {
            Issue.record("untyped error \(error) for \(path)")
            return nil
        }
    }

    @Test(.enabled(if: available, "real DICOM test data not found (set FLUORO_TEST_DATA)"), arguments: files)
    func truncatedFilesFailWithATypedErrorNamingTheFile(name: String) throws {
        let original = try Data(contentsOf: URL(fileURLWithPath: Self.dataDirectory + "/" + name))
        let scratch = ScratchDirectory()
        let path = scratch.file("cut.dcm")
        var random = SystemRandomNumberGenerator()
        // Cuts in the header region byte by byte, then spread over the whole file.
        var cuts = Array(stride(from: 0, to: min(original.count, 1500), by: 7))
        cuts += (0..<40).map { _ in Int.random(in: 0..<original.count, using: &random) }
        var failures = 0
        for cut in cuts {
            try original.prefix(cut).write(to: URL(fileURLWithPath: path))
            if let error = decodeAll(path) {
                failures += 1
                #expect(error.description.contains(path), "\(error)")
            }
        }
        #expect(failures >= cuts.count - 2, "a file cut short must not decode as if complete (\(failures) of \(cuts.count) failed)")
    }

    @Test(.enabled(if: available, "real DICOM test data not found (set FLUORO_TEST_DATA)"), arguments: files)
    func corruptedBytesGiveAnErrorOrADecodeNeverACrash(name: String) throws {
        let original = try Data(contentsOf: URL(fileURLWithPath: Self.dataDirectory + "/" + name))
        let scratch = ScratchDirectory()
        let path = scratch.file("corrupt.dcm")
        var random = SystemRandomNumberGenerator()
        for round in 0..<Self.rounds {
            var damaged = original
            // Half the rounds hit the header and offset tables, the rest anywhere.
            let limit = round % 2 == 0 ? min(original.count, 4096) : original.count
            for _ in 0..<Int.random(in: 1...8, using: &random) {
                damaged[Int.random(in: 0..<limit, using: &random)] = UInt8.random(in: 0...255, using: &random)
            }
            try damaged.write(to: URL(fileURLWithPath: path))
            _ = decodeAll(path)
        }
    }
}

@Suite struct DICOMAttributeTests {
    @Test(.enabled(if: DICOMRobustnessTests.available, "real DICOM test data not found (set FLUORO_TEST_DATA)"))
    func cardiacAttributesOfTheContrastRun() throws {
        let run = try DICOMFile(path: DICOMRobustnessTests.dataDirectory + "/xa/rubo-0002-rca-contrast.dcm")
        #expect(run.rWavePointer == [20, 53, 77])
        let ecg = try #require(run.ecgCurve)
        #expect(ecg.samples.count == 3840)
        let mean = ecg.samples.reduce(0, +) / Double(ecg.samples.count)
        let spread = ecg.samples.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(ecg.samples.count)
        #expect(spread > 0 && ecg.samples.allSatisfy { (0...65535).contains($0) })
        #expect(run.frameTimeMilliseconds == 33 && run.numberOfFrames == 96 && run.modality == "XA")
        #expect(run.positionerAngles.map { [$0.primary, $0.secondary] } == [-32, 2])
    }
}
