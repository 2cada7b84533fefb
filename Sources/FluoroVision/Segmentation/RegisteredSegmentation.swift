import FluoroCore
import FluoroConcurrency
import Synchronization

/// Motion compensation and device segmentation as one stage, side by side on each frame: the segmenter's filter (or
/// network), which needs no motion estimate, runs on a helper thread while the stage's thread registers the frame
/// and then, with `splitting` (the default), takes pieces of the filter's row passes until it is done; last, the
/// centre line is traced and tracked with the frame's motion. It writes what a `MotionCompensation` stage followed by
/// a `DeviceSegmentation` stage writes, sooner: a frame passes a chain of stages one after the other, so their times
/// add up, while here registration and filtering overlap on the two cores. There is no subtraction mode (the devices
/// are found on the live frames).
public final class RegisteredSegmentation: Stage {
    public let name = "motion+segment"
    public let registrationParameters: RegistrationParameters
    public let segmentationParameters: SegmentationParameters
    public let splitting: Bool
    private var registration: Registration?
    private var segmenter: DeviceSegmenter?
    private var filterSplitter: WorkSplitter?
    private var filtering: HelperThread?
    private var findCandidates: OwnedWork<RegisteredSegmentation>?
    /// The frame `findCandidates` works on, set before it starts, and whether it has ended (for `assist`).
    private var pixels = UnsafeBufferPointer<UInt16>(start: nil, count: 0)
    private let candidatesFound = Atomic<Bool>(false)

    public init(
        registration: RegistrationParameters = RegistrationParameters(),
        segmentation: SegmentationParameters = SegmentationParameters(), splitting: Bool = true
    ) {
        registrationParameters = registration
        segmentationParameters = segmentation
        self.splitting = splitting
    }

    public func prepare(for geometry: FrameGeometry) throws {
        registration = Registration(geometry: geometry, parameters: registrationParameters)
        // The filter's row passes are shared with this thread once it has registered the frame (`assist`).
        filterSplitter = splitting ? WorkSplitter(name: nil) : nil
        segmenter = try DeviceSegmenter(geometry: geometry, parameters: segmentationParameters, splitter: filterSplitter)
        filtering = HelperThread(name: "segment-filter")
        findCandidates = OwnedWork(self) { stage, _ in
            stage.segmenter!.findCandidates(in: stage.pixels)
            stage.candidatesFound.store(true, ordering: .releasing)
            stage.filterSplitter?.wakeAssistant()
        }
    }

    public func process(_ frame: Frame) throws {
        guard let registration, let segmenter, let filtering, let findCandidates else { return }
        pixels = UnsafeBufferPointer(frame.pixels)
        candidatesFound.store(false, ordering: .relaxed)
        filtering.start(findCandidates, part: 0, range: 0..<1)
        frame.annotations.motion = registration.estimate(pixels)
        if registrationParameters.localCorrection { registration.writeLocalField(into: &frame.annotations.localMotion) }
        filterSplitter?.assist { candidatesFound.load(ordering: .acquiring) }
        filtering.wait()
        segmenter.trace(pixels, into: &frame.annotations)
    }
}
