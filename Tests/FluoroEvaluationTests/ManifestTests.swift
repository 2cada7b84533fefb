import FluoroCore
import FluoroEvaluation
import Foundation
import Testing

/// A manifest keeps the field's rule: no patient in both tuning and validation, and every run named once; its
/// paths resolve beside it, and `FLUORO_TEST_DATA` stands for the `shared/data` folder it names.
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

    @Test func runPathsAreRelativeToTheDataFolderBesideTheManifestAndTruthToTheManifest() throws {
        var annotated = run("b", "P2", "validation")
        annotated["device_truth"] = "devices/b.truth.json"
        let path = try write([run("a", "P1", "tuning"), annotated])
        let (manifest, _) = try EvaluationManifest.load(path)
        let folder = (path as NSString).deletingLastPathComponent
        #expect(manifest.runs.count == 2 && manifest.runs[0].fps == 7.5)
        #expect(manifest.runs[1].deviceTruth == folder + "/devices/b.truth.json" && manifest.runs[0].deviceTruth == nil)
        #expect(EvaluationManifest.dataFolder("data", manifestFolder: folder, testData: nil) == folder + "/data")
        #expect(EvaluationManifest.dataFolder("/abs/data", manifestFolder: folder, testData: nil) == "/abs/data")
    }

    @Test func theTestDataFolderStandsForSharedDataWholeComponentsOnly() {
        let folder = "/repo/Evaluation"
        #expect(EvaluationManifest.dataFolder("../../shared/data/real", manifestFolder: folder, testData: "/mnt/d") == "/mnt/d/real")
        #expect(EvaluationManifest.dataFolder("../../shared/data", manifestFolder: folder, testData: "/mnt/d") == "/mnt/d")
        // Not a `shared/data` folder: the variable does not apply.
        #expect(
            EvaluationManifest.dataFolder("/mnt/shared/data-copy/xa", manifestFolder: folder, testData: "/mnt/shared/data-copy")
                == "/mnt/shared/data-copy/xa")
        #expect(EvaluationManifest.dataFolder("local", manifestFolder: folder, testData: "/mnt/d") == "/repo/Evaluation/local")
    }
}
