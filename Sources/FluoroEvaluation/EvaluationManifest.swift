import FluoroCore
import Foundation

/// The runs an evaluation scores, with their truth and patient (a JSON file; docs/validation.md, "Manifests").
///
/// Run paths are relative to `data` (itself relative to the manifest's folder unless absolute); the environment
/// variable `FLUORO_TEST_DATA`, when set, stands for the `shared/data` folder that `data` names, so the same
/// manifest works wherever the data lives. Device truth files are relative to the manifest's folder.
public struct EvaluationManifest: Codable, Sendable {
    /// The folder the run paths are relative to.
    public var data: String
    public var runs: [Run]

    /// One run: a frame folder, DICOM or Y4M file, and its truth.
    public struct Run: Codable, Sendable {
        /// A short unique name for tables and files.
        public var name: String
        /// The patient the run belongs to: the unit of the confidence intervals and of the split.
        public var patient: String
        /// `tuning` (parameters may be chosen on it) or `validation` (reported, never tuned on).
        public var split: String
        /// The frames: a folder of images, a DICOM or a Y4M file.
        public var source: String
        /// Frames per second, for a frame folder.
        public var fps: Double?
        /// A folder of vessel masks, one per frame in the same name order (grey > 127 is vessel).
        public var vesselMasks: String?
        /// The devices' annotated centre lines (a `DeviceTruth` file).
        public var deviceTruth: String?

        enum CodingKeys: String, CodingKey {
            case name, patient, split, source, fps
            case vesselMasks = "vessel_masks", deviceTruth = "device_truth"
        }
    }

    /// Reads and checks a manifest.
    public static func load(_ path: String) throws -> (manifest: EvaluationManifest, dataFolder: String) {
        let folder = (path as NSString).deletingLastPathComponent
        let here = folder.isEmpty ? "." : folder
        var manifest = try JSONFile.decode(EvaluationManifest.self, from: path, kind: "an evaluation manifest")
        var names = Set<String>()
        for run in manifest.runs {
            guard names.insert(run.name).inserted else { throw FluoroError.malformed(path: path, detail: "run name \(run.name) twice") }
            guard ["tuning", "validation"].contains(run.split) else {
                throw FluoroError.malformed(path: path, detail: "run \(run.name): split must be tuning or validation, got \(run.split)")
            }
        }
        let patientsInBoth = Set(manifest.runs.filter { $0.split == "tuning" }.map(\.patient))
            .intersection(manifest.runs.filter { $0.split == "validation" }.map(\.patient))
        guard patientsInBoth.isEmpty else {
            throw FluoroError.malformed(
                path: path, detail: "patients in both tuning and validation: \(patientsInBoth.sorted().joined(separator: ", "))")
        }
        for index in manifest.runs.indices {
            if let truth = manifest.runs[index].deviceTruth, !truth.hasPrefix("/") { manifest.runs[index].deviceTruth = here + "/" + truth }
        }
        let data = dataFolder(manifest.data, manifestFolder: here, testData: ProcessInfo.processInfo.environment["FLUORO_TEST_DATA"])
        return (manifest, data)
    }

    /// The folder run paths are relative to: `data` beside the manifest (unless absolute), or, with `testData`
    /// (`FLUORO_TEST_DATA`) and a `data` that names a `shared/data` folder, that folder's part of `data` inside
    /// `testData`.
    public static func dataFolder(_ data: String, manifestFolder: String, testData: String?) -> String {
        let components = data.split(separator: "/", omittingEmptySubsequences: false)
        if let testData,
            let shared = components.indices.dropLast().first(where: { components[$0] == "shared" && components[$0 + 1] == "data" })
        {
            return ([testData] + components[(shared + 2)...].map(String.init)).joined(separator: "/")
        }
        return data.hasPrefix("/") ? data : manifestFolder + "/" + data
    }
}
