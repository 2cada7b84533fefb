import FluoroCore
import FluoroConcurrency
@testable import FluoroVision
import Foundation
import Testing

/// The learned path's network against PyTorch, and its weights file's failure modes.
@Suite struct DeviceNetworkTests {
    /// `tools/training/train_device_net.py` wrote PyTorch's logits for a crop of a synthetic working level beside the
    /// weights; the Swift inference (im2col + cblas_sgemm) must give the same numbers, on one thread and with its
    /// layers' bands split between two.
    @Test(arguments: [false, true])
    func inferenceMatchesPyTorch(split: Bool) throws {
        let path = try #require(Bundle.module.path(forResource: "device-net-check", ofType: "bin", inDirectory: "Fixtures"))
        let data = try #require(FileManager.default.contents(atPath: path))
        #expect(data.starts(with: Data("FSNC1\n".utf8)))
        let floats = data.dropFirst(14).withUnsafeBytes { raw in
            (0..<(raw.count / 4)).map {
                Float(bitPattern: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: 4 * $0, as: UInt32.self)))
            }
        }
        let (height, width) = data.dropFirst(6).withUnsafeBytes { raw in
            (Int(raw.loadUnaligned(as: UInt32.self)), Int(raw.loadUnaligned(fromByteOffset: 4, as: UInt32.self)))
        }
        let pixels = height * width
        #expect(floats.count == 4 * pixels, "the input and three logit planes")
        let network = try DeviceNetwork(
            width: width, height: height,
            splitter: split ? WorkSplitter(name: "network-helper") : nil)
        let input = network.inputMap
        for i in 0..<pixels { input.data[i] = floats[i] }
        let logits = network.logits(of: input)
        #expect(logits.count == 3 * pixels)
        var largest: Float = 0, largestLogit: Float = 0
        for i in 0..<(3 * pixels) {
            largest = max(largest, abs(logits[i] - floats[pixels + i]))
            largestLogit = max(largestLogit, abs(floats[pixels + i]))
        }
        print(
            String(
                format: "learned network%@ vs PyTorch on %d×%d: largest logit difference %.2e (logits up to %.1f)",
                split ? " (split)" : "", width, height, largest, largestLogit))
        #expect(largest <= 1e-4)
        #expect(largestLogit > 1, "the fixture's logits are not trivial")
    }

    @Test func unreadableWeightsAreReportedByName() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("fluoro-weights-\(getpid())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let bundled = try #require(FileManager.default.contents(atPath: DeviceNetwork.bundledWeightsPath()))
        let cases: [(name: String, contents: Data?, message: String)] = [
            ("missing.fsnn", nil, "cannot open"),
            ("not-weights.fsnn", Data("P5\n512 512\n255\n".utf8), "not a FluoroStream weights file"),
            ("truncated.fsnn", bundled.prefix(bundled.count - 100), "runs past the end"),
            ("header.fsnn", Data("FSNN1\n{\"format\": 1}\n".utf8), "header"),
        ]
        for item in cases {
            let path = directory.appendingPathComponent(item.name).path
            if let contents = item.contents { #expect(FileManager.default.createFile(atPath: path, contents: contents)) }
            do {
                _ = try DeviceNetwork(width: 64, height: 64, weightsPath: path)
                Issue.record("\(item.name) was accepted")
            } catch let error as FluoroError {
                #expect(error.description.contains(path) && error.description.contains(item.message), "\(error)")
            }
        }
    }
}
