import FluoroCore
import FluoroGraph
import FluoroPipeline
import FluoroSources
import FluoroVision
import Foundation

/// What the evaluation found on one run.
public struct RunResult: Codable, Sendable {
    public var name: String
    public var patient: String
    public var split: String
    public var frames: Int
    /// Why the pipeline failed on this run (an error or a crash), if it did.
    public var failure: String?
    public var motion: MotionScore?
    public var roadmap: RoadmapScore?
    public var devices: DeviceScore?
    public var seconds: Double

    public init(name: String, patient: String, split: String, frames: Int = 0, failure: String? = nil, seconds: Double = 0) {
        self.name = name
        self.patient = patient
        self.split = split
        self.frames = frames
        self.failure = failure
        self.seconds = seconds
    }
}

/// The pipeline settings an evaluation runs with: those of `fluoro run --roadmap [--segmenter METHOD]`, replayed
/// as fast as possible (nothing is dropped).
public struct EvaluationSettings: Sendable {
    public var segmentation: SegmentationParameters?
    public var roadmap = RoadmapParameters()
    /// A folder for each run's overlay pictures (`RunOverlays`), or nil.
    public var overlays: String?
    public init() {}
}

/// Runs one manifest entry through the pipeline `fluoro run` builds and scores what came out.
public enum RunEvaluation {
    public static func evaluate(_ run: EvaluationManifest.Run, dataFolder: String, settings: EvaluationSettings) throws -> RunResult {
        let started = MonotonicClock.now()
        let source = try openRecordedSource(dataFolder + "/" + run.source, frameRate: run.fps)
        let truth = try run.deviceTruth.map(DeviceTruth.load)
        if let truth, let path = run.deviceTruth {
            let geometry = source.geometry
            guard truth.width == geometry.width, truth.height == geometry.height else {
                throw FluoroError.malformed(
                    path: path,
                    detail: "truth for \(truth.width) × \(truth.height) frames, the run's are \(geometry.width) × \(geometry.height)")
            }
            if let frames = source.frameCount, truth.frames.count != frames {
                throw FluoroError.malformed(path: path, detail: "\(truth.frames.count) frames of truth for a run of \(frames) frames")
            }
        }
        var options = PipelineOptions()
        options.policy = .replay
        options.motion = true
        options.segmentation = settings.segmentation
        options.roadmap = settings.roadmap
        let pipeline = try PipelineBuilder.build(for: source, options: options)
        let probe = EvaluationProbe(capacity: source.frameCount ?? 10_000)
        let graph = try FrameGraph(
            source: source, stages: pipeline.stages + [probe],
            configuration: GraphConfiguration(policy: .replay, pacing: .asFastAsPossible))
        var result = RunResult(name: run.name, patient: run.patient, split: run.split)
        do {
            _ = try graph.run()
        } catch let failure as GraphFailure {
            result.failure = "\(failure.error)"
        }
        let geometry = source.geometry
        result.frames = probe.pixels.count
        result.motion = MotionScore.score(pixels: probe.pixels, motion: probe.motion, width: geometry.width, height: geometry.height)
        var masks: [[UInt8]] = []
        if let masksFolder = run.vesselMasks {
            masks = try readMasks(dataFolder + "/" + masksFolder)
            result.roadmap = RoadmapScore.score(masks: masks, roadmap: probe.roadmap, layers: probe.roadmapLayers)
        }
        if let truth, let path = run.deviceTruth {
            // A run cut short by a failure reported nothing on the frames it never reached.
            guard result.failure != nil || probe.devices.count == truth.frames.count else {
                throw FluoroError.malformed(
                    path: path, detail: "\(truth.frames.count) frames of truth for a run of \(probe.devices.count) frames")
            }
            let reported = probe.devices + Array(repeating: ReportedDevices(), count: max(truth.frames.count - probe.devices.count, 0))
            result.devices = DeviceScore.score(truth: truth, reported: reported)
        }
        if let folder = settings.overlays {
            let (width, height) = (geometry.width, geometry.height)
            let pictures = [
                ("motion", RunOverlays.motion(pixels: probe.pixels, motion: probe.motion, width: width, height: height)),
                (
                    "roadmap",
                    RunOverlays.roadmap(pixels: probe.pixels, masks: masks, layers: probe.roadmapLayers, width: width, height: height)
                ),
                (
                    "devices",
                    truth.flatMap {
                        RunOverlays.devices(pixels: probe.pixels, truth: $0, reported: probe.devices, width: width, height: height)
                    }
                ),
            ]
            for case let (kind, png?) in pictures {
                let output = try OutputFile(path: folder + "/" + run.name + "-" + kind + ".png", replace: true)
                try output.write(png)
                try output.commit()
            }
        }
        result.seconds = Double(MonotonicClock.now() - started) / 1e9
        return result
    }

    /// The vessel masks of a run, one per frame in name order, as 8-bit grey.
    static func readMasks(_ folder: String) throws -> [[UInt8]] {
        let source = try FrameFolderSource(folder: folder)
        let frame = Frame(slot: 0, geometry: source.geometry, stageCount: 1)
        var masks: [[UInt8]] = []
        while try source.read(into: frame) { masks.append(frame.pixels.map { UInt8(truncatingIfNeeded: $0) }) }
        return masks
    }
}
