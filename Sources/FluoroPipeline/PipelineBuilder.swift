import FluoroCore
import FluoroGraph
import FluoroPublish
import FluoroSources
import FluoroVision

/// The composed chain of stages for one source, with handles on the stages a caller reports on.
public struct Pipeline {
    public let stages: [Stage]
    public let publisher: ZeroMQPublisher?
    public let openIGTLink: OpenIGTLinkServer?
    public let recorder: DICOMRecorder?
    /// Warnings found while composing (e.g. the C-arm moved between the roadmap's run and the live run).
    public let warnings: [String]
}

/// Composes the graph's stages from `PipelineOptions`: the one place that decides which stages run, in which
/// order, with which settings. `fluoro run` and `fluoro-bench pipeline` both build through it, so the benchmark
/// measures the pipeline users run.
public enum PipelineBuilder {
    /// The stages for `source`, in order: motion (with segmentation side by side, or after it), display, roadmap,
    /// publisher, recorder. Binds the publisher and checks the recording's path before returning.
    public static func build(for source: FrameSource, options: PipelineOptions) throws -> Pipeline {
        var stages: [Stage] = []
        var warnings: [String] = []
        if let segmentation = options.segmentation {
            if options.overlapMotionAndSegmentation {
                stages.append(RegisteredSegmentation(segmentation: segmentation, splitting: options.splitting))
            } else {
                stages.append(MotionCompensation(splitting: options.splitting))
                stages.append(DeviceSegmentation(parameters: segmentation, splitting: options.splitting))
            }
        } else if options.needsMotion {
            var settings = RegistrationParameters()
            settings.localCorrection = options.subtraction && options.localCorrection
            stages.append(MotionCompensation(parameters: settings, subtraction: options.subtraction, splitting: options.splitting))
        }
        stages.append(
            options.subtraction
                ? DisplayChoice.subtraction(of: source.geometry, splitting: options.splitting)
                : DisplayChoice.recorded(of: source, splitting: options.splitting))
        if let roadmap = options.roadmap {
            let moved = CArmCheck.movement(between: options.roadmapBuildRun, and: source)
            if let moved { warnings.append("roadmap: \(moved): the roadmap stays invalid") }
            // Live: the map is completed off the frames' path (a late frame is worse than a later roadmap).
            stages.append(
                RoadmapOverlay(
                    parameters: roadmap, buildRun: options.roadmapBuildRun, cArmMoved: moved != nil,
                    splitting: options.splitting, backgroundCompletion: options.policy == .live))
        }
        var publisher: ZeroMQPublisher?
        if let publishing = options.publishing {
            let made = try ZeroMQPublisher(
                address: publishing.address, policy: options.policy == .live ? .live : .replay,
                upstreamStages: stages.map(\.name), imaging: source.imaging, encoding: publishing.encoding,
                layers: publishing.layers, imagezmq: publishing.imagezmq, curve: publishing.curve,
                allowPlaintextNonLoopback: publishing.allowPlaintextNonLoopback)
            stages.append(made)
            publisher = made
        }
        var openIGTLink: OpenIGTLinkServer?
        if let address = options.openIGTLink {
            let made = try OpenIGTLinkServer(
                address: address, upstreamStages: stages.map(\.name), imaging: source.imaging,
                allowNonLoopback: options.allowPlaintextNonLoopback)
            stages.append(made)
            openIGTLink = made
        }
        var recorder: DICOMRecorder?
        if let recording = options.recording {
            let made = try DICOMRecorder(
                path: recording.path, upstreamStages: stages.map(\.name), imaging: source.imaging,
                frameTimeMilliseconds: source.frameInterval.map { $0 * 1000 },
                patient: recording.patient, compression: recording.compression, modality: recording.modality,
                replace: recording.replace, inputs: recording.inputs)
            stages.append(made)
            recorder = made
        }
        return Pipeline(
            stages: stages, publisher: publisher, openIGTLink: openIGTLink, recorder: recorder, warnings: warnings)
    }
}
