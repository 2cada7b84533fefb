import FluoroCore
import FluoroEvaluation
import Foundation
import Testing

/// A manifest keeps the field's rule: no patient in both tuning and validation, and every run named once.
@Suite struct ManifestTests {
    func write(_ runs: [[String: Any]]) throws -> String {
        let path = NSTemporaryDirectory() + "manifest-\(UUID().uuidString).json"
        let data = try JSONSerialization.data(withJSONObject: ["data": "data", "runs": runs])
        try data.write(to: URL(fileURLWithPath: path))
        return path
    }

    func run(_ name: String, _ patient: String, _ split: String) -> [String: Any] {
        ["name": name, "patient": patient, "split": split, "source": "\(name)/frames", "fps": 7.5]
    }

    @Test func aPatientInBothSplitsIsRefusedByName() throws {
        let path = try write([run("a", "P1", "tuning"), run("b", "P1", "validation"), run("c", "P2", "validation")])
        #expect { _ = try EvaluationManifest.load(path) } throws: { "\($0)".contains("P1") && "\($0)".contains("both") }
    }

    @Test func aRunNamedTwiceOrAnUnknownSplitIsRefused() throws {
        #expect(throws: FluoroError.self) {
            _ = try EvaluationManifest.load(try write([run("a", "P1", "tuning"), run("a", "P2", "tuning")]))
        }
        #expect(throws: FluoroError.self) { _ = try EvaluationManifest.load(try write([run("a", "P1", "test")])) }
    }

    @Test func runPathsAreRelativeToTheDataFolderBesideTheManifest() throws {
        let path = try write([run("a", "P1", "tuning"), run("b", "P2", "validation")])
        let (manifest, data) = try EvaluationManifest.load(path)
        #expect(manifest.runs.count == 2 && manifest.runs[0].fps == 7.5)
        if ProcessInfo.processInfo.environment["FLUORO_TEST_DATA"] == nil {
            #expect(data == (path as NSString).deletingLastPathComponent + "/data")
        }
    }
}
