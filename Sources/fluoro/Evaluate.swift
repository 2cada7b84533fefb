import ArgumentParser
import FluoroCore
import FluoroEvaluation
import FluoroPipeline
import FluoroVision
import Foundation

/// `fluoro evaluate`: runs the pipeline over a manifest of real runs with truth and scores it, with confidence
/// intervals over patients.
struct Evaluate: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Score the pipeline on real runs with truth (devices, motion, roadmap), with 95 % intervals over patients.",
        discussion: """
            MANIFEST is a JSON list of runs with their patient, split (tuning or validation), source and truth \
            (docs/validation.md, "Manifests"). Each run goes through the pipeline `fluoro run --roadmap` builds \
            (with --segmenter as given), replayed without drops, in a process of its own so that a crash is \
            scored, not fatal. Motion: residual ratio with the estimated motion ÷ without, against the reference \
            the program used and between consecutive frames, and the share of frames lost. Roadmap: IoU, \
            precision and recall against the vessel masks on contrast frames, and whether it became active. \
            Devices (runs with device truth, with --segmenter): centre-line F1 at 2 and 3 px, tip error, label \
            agreement, and devices reported on frames without one. Intervals resample patients, then runs within them.
            """)

    @Argument(help: "The evaluation manifest (JSON).")
    var manifest: String
    @Option(help: "Which runs: validation (the default), tuning or all.")
    var split = "validation"
    @Option(help: "Find the guidewire and catheter too: ridge or learned.")
    var segmenter: SegmentationMethod?
    @Option(parsing: .unconditional, help: "Runs evaluated at once, each in its own process (1 to 16).")
    var jobs = 1
    @Option(help: "Write every run's scores and the summary as JSON to this file.")
    var json: String?
    @Flag(help: "Replace an existing --json file.")
    var force = false
    @Option(parsing: .unconditional, help: "Bootstrap resamples for the intervals (100 to 100000).")
    var resamples = 2000
    @Option(
        help: "Write each run's overlay pictures (NAME-roadmap.png, NAME-motion.png, NAME-devices.png) into this folder (made if missing).")
    var overlays: String?
    @Flag(
        help:
            "Score the roadmap's stored maps alone: every frame is drawn with the map of an earlier contrast frame at its phase, as after the contrast, instead of its own while it shows contrast."
    )
    var storedMapsOnly = false
    @Option(help: .hidden)
    var onlyRun: String?

    func validate() throws {
        guard ["validation", "tuning", "all"].contains(split) else { throw ValidationError("--split takes validation, tuning or all") }
        guard (1...16).contains(jobs) else { throw ValidationError("--jobs \(jobs) is outside 1...16") }
        guard (100...100_000).contains(resamples) else { throw ValidationError("--resamples \(resamples) is outside 100...100000") }
    }

    func run() throws {
        let (loaded, dataFolder) = try EvaluationManifest.load(manifest)
        var settings = EvaluationSettings()
        settings.roadmap.drawLive = !storedMapsOnly
        if let segmenter {
            var parameters = SegmentationParameters()
            parameters.method = segmenter
            settings.segmentation = parameters
        }
        if let overlays {
            try FileManager.default.createDirectory(atPath: overlays, withIntermediateDirectories: true)
            settings.overlays = overlays
        }
        if let onlyRun {
            // A child process: one run, its result as one JSON line.
            guard let entry = loaded.runs.first(where: { $0.name == onlyRun }) else {
                throw ValidationError("no run named \(onlyRun) in \(manifest)")
            }
            let result = try RunEvaluation.evaluate(entry, dataFolder: dataFolder, settings: settings)
            print(String(decoding: try JSONEncoder().encode(result), as: UTF8.self))
            return
        }
        let output = try json.map { try OutputFile(path: $0, replace: force, inputs: [manifest]) }
        let selected = loaded.runs.filter { split == "all" || $0.split == split }
        guard !selected.isEmpty else { throw ValidationError("\(manifest) has no \(split) runs") }
        FileHandle.standardError.write(
            Data("evaluating \(selected.count) runs of \(Set(selected.map(\.patient)).count) patients from \(dataFolder)\n".utf8))
        let results = try EvaluationRunner(
            manifest: manifest, segmenter: segmenter, overlays: overlays, storedMapsOnly: storedMapsOnly, jobs: jobs
        ).evaluate(selected)
        let summary = EvaluationSummary(results: results, resamples: resamples)
        print(summary.table(split: split))
        if let output {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            try output.write(Array(try encoder.encode(EvaluationReport(runs: results, summary: summary))))
            try output.commit()
        }
    }
}

/// Runs each run in a child `fluoro evaluate --only-run NAME` process, `jobs` at a time.
struct EvaluationRunner {
    let manifest: String
    let segmenter: SegmentationMethod?
    let overlays: String?
    let storedMapsOnly: Bool
    let jobs: Int

    func evaluate(_ runs: [EvaluationManifest.Run]) throws -> [RunResult] {
        var results = [RunResult?](repeating: nil, count: runs.count)
        var running: [(index: Int, process: Process, output: Pipe, errors: Pipe)] = []
        var next = 0
        while next < runs.count || !running.isEmpty {
            while running.count < jobs, next < runs.count {
                let process = Process()
                // The running binary itself, however it was invoked (a bare name found on PATH included).
                process.executableURL = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
                process.arguments =
                    ["evaluate", manifest, "--only-run", runs[next].name] + (segmenter.map { ["--segmenter", $0.rawValue] } ?? [])
                    + (overlays.map { ["--overlays", $0] } ?? []) + (storedMapsOnly ? ["--stored-maps-only"] : [])
                let output = Pipe(), errors = Pipe()
                process.standardOutput = output
                process.standardError = errors
                try process.run()
                running.append((next, process, output, errors))
                next += 1
            }
            // Collect the first child that ends (reading its pipes so a full pipe never stalls it).
            let finished = running.removeFirst()
            let data = finished.output.fileHandleForReading.readDataToEndOfFile()
            let errors = finished.errors.fileHandleForReading.readDataToEndOfFile()
            finished.process.waitUntilExit()
            let run = runs[finished.index]
            if finished.process.terminationReason == .exit, finished.process.terminationStatus == 0,
                let line = String(decoding: data, as: UTF8.self).split(separator: "\n").last,
                let result = try? JSONDecoder().decode(RunResult.self, from: Data(line.utf8))
            {
                results[finished.index] = result
            } else {
                let lastLine = String(decoding: errors, as: UTF8.self).split(separator: "\n").last(where: { $0.hasPrefix("Error:") })
                let why =
                    finished.process.terminationReason == .uncaughtSignal
                    ? "crashed (signal \(finished.process.terminationStatus))"
                    : String(lastLine ?? "exit \(finished.process.terminationStatus)")
                results[finished.index] = RunResult(name: run.name, patient: run.patient, split: run.split, failure: why)
            }
            let done = results[finished.index]!
            FileHandle.standardError.write(
                Data("  \(run.name): \(done.failure ?? "scored") (\(String(format: "%.1f", done.seconds)) s)\n".utf8))
        }
        return results.map { $0! }
    }
}

/// The figures over runs, each a mean with its 95 % interval over patients.
struct EvaluationSummary: Codable {
    var motionRatioToReference: PatientBootstrap.Interval?
    var motionRatioConsecutive: PatientBootstrap.Interval?
    var motionLostShare: PatientBootstrap.Interval?
    var roadmapActive: PatientBootstrap.Interval?
    var roadmapIoU: PatientBootstrap.Interval?
    var roadmapPrecision: PatientBootstrap.Interval?
    var roadmapRecall: PatientBootstrap.Interval?
    var devices: DeviceSummary?
    var failures: Int
    var runs: Int

    enum CodingKeys: String, CodingKey {
        case motionRatioToReference = "motion_ratio_to_reference", motionRatioConsecutive = "motion_ratio_consecutive"
        case motionLostShare = "motion_lost_share", roadmapActive = "roadmap_active", roadmapIoU = "roadmap_iou"
        case roadmapPrecision = "roadmap_precision", roadmapRecall = "roadmap_recall", devices, failures, runs
    }

    init(results: [RunResult], resamples: Int) {
        var bootstrap = PatientBootstrap(resamples: resamples)
        func interval(_ value: (RunResult) -> Double?) -> PatientBootstrap.Interval? {
            bootstrap.interval(results.compactMap { result in value(result).map { (result.patient, $0) } })
        }
        motionRatioToReference = interval { $0.motion?.ratioToReference }
        motionRatioConsecutive = interval { $0.motion?.ratioConsecutive }
        motionLostShare = interval { $0.motion?.lostShare }
        roadmapActive = interval { result in result.roadmap.map { $0.activeFrame == nil ? 0 : 1 } }
        roadmapIoU = interval { $0.roadmap?.iou }
        roadmapPrecision = interval { $0.roadmap?.precision }
        roadmapRecall = interval { $0.roadmap?.recall }
        if results.contains(where: { $0.devices != nil }) {
            func kind(_ pick: @escaping (DeviceScore) -> DeviceScore.KindScore?) -> DeviceSummary.Kind {
                DeviceSummary.Kind(
                    f1At2: interval { $0.devices.flatMap(pick)?.f1At2 }, f1At3: interval { $0.devices.flatMap(pick)?.f1At3 },
                    tipMedian: interval { $0.devices.flatMap(pick)?.tipMedian },
                    tipReported: interval { $0.devices.flatMap(pick)?.tipReported },
                    tipWithin8: interval { $0.devices.flatMap(pick)?.tipWithin8 },
                    labelAgreement: interval { $0.devices.flatMap(pick)?.labelAgreement })
            }
            devices = DeviceSummary(
                guidewire: kind(\.guidewire), catheter: kind(\.catheter),
                labelCorrectShare: interval { $0.devices?.labelCorrectShare }, phantomRate: interval { $0.devices?.phantomRate })
        }
        failures = results.filter { $0.failure != nil }.count
        runs = results.count
    }

    /// The terminal table.
    func table(split: String) -> String {
        let patients = [motionRatioToReference, motionLostShare].compactMap { $0?.patients }.max() ?? 0
        var lines = [
            "\(runs) \(split) runs, \(patients) patients; 95 % intervals resample patients, then runs"
                + (patients < 5 ? " (with \(patients) patients they are wide and uncertain themselves)" : "")
        ]
        lines.append("measure                                         mean     95 % interval     runs")
        func row(_ name: String, _ interval: PatientBootstrap.Interval?) {
            guard let interval else { return lines.append(name.padding(toLength: 46, withPad: " ", startingAt: 0) + "  —") }
            lines.append(
                name.padding(toLength: 46, withPad: " ", startingAt: 0)
                    + String(format: "%7.3f    [%6.3f, %6.3f]   %4d", interval.mean, interval.low, interval.high, interval.runs))
        }
        row("motion: residual ratio to reference (<1 helps)", motionRatioToReference)
        row("motion: residual ratio, consecutive frames", motionRatioConsecutive)
        row("motion: share of frames lost", motionLostShare)
        row("roadmap: share of runs where it became active", roadmapActive)
        row("roadmap: IoU on contrast frames", roadmapIoU)
        row("roadmap: precision on contrast frames", roadmapPrecision)
        row("roadmap: recall on contrast frames", roadmapRecall)
        if let devices {
            for (name, kind) in [("guidewire", devices.guidewire), ("catheter", devices.catheter)] {
                row("\(name): centre-line F1 at 2 px", kind.f1At2)
                row("\(name): centre-line F1 at 3 px", kind.f1At3)
                row("\(name): share of frames with a tip", kind.tipReported)
                row("\(name): share of tips within 8 px", kind.tipWithin8)
                row("\(name): tip median, px (runs with one)", kind.tipMedian)
                row("\(name): label agreement (length)", kind.labelAgreement)
            }
            row("devices: label right, of the reported length", devices.labelCorrectShare)
            row("devices: reported on device-free frames", devices.phantomRate)
        }
        lines.append("runs that failed or crashed: \(failures) of \(runs)")
        return lines.joined(separator: "\n")
    }
}

/// The device figures over runs with device truth (../shared/EVALUATION.md, "Devices").
struct DeviceSummary: Codable {
    var guidewire: Kind
    var catheter: Kind
    var labelCorrectShare: PatientBootstrap.Interval?
    var phantomRate: PatientBootstrap.Interval?

    struct Kind: Codable {
        var f1At2: PatientBootstrap.Interval?
        var f1At3: PatientBootstrap.Interval?
        var tipMedian: PatientBootstrap.Interval?
        var tipReported: PatientBootstrap.Interval?
        var tipWithin8: PatientBootstrap.Interval?
        var labelAgreement: PatientBootstrap.Interval?

        enum CodingKeys: String, CodingKey {
            case f1At2 = "f1_2px", f1At3 = "f1_3px", tipMedian = "tip_median_px", tipReported = "tip_reported"
            case tipWithin8 = "tip_within_8px"
            case labelAgreement = "label_agreement"
        }
    }

    enum CodingKeys: String, CodingKey {
        case guidewire, catheter, labelCorrectShare = "label_correct_share", phantomRate = "phantom_rate"
    }
}

/// What `fluoro evaluate --json` writes.
struct EvaluationReport: Codable {
    var runs: [RunResult]
    var summary: EvaluationSummary
}
