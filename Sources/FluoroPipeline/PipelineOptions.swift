import FluoroCore
import FluoroGraph
import FluoroPublish
import FluoroVision

/// What a pipeline is asked to do, independent of where the request came from (`fluoro run`'s options, the
/// benchmark): `PipelineBuilder` turns it into the chain of stages.
public struct PipelineOptions {
    /// Estimate each frame's motion (implied by every option that needs it).
    public var motion = false
    /// Publish motion-corrected subtraction images instead of the live frames (`--dsa`).
    public var subtraction = false
    /// With `subtraction`: warp the mask by a local control-point field.
    public var localCorrection = false
    /// Find the guidewire and catheter with these settings.
    public var segmentation: SegmentationParameters?
    /// Run motion and segmentation side by side on each frame (one stage) rather than one after the other.
    public var overlapMotionAndSegmentation = true
    /// Build and draw a roadmap with these settings.
    public var roadmap: RoadmapParameters?
    /// The earlier run the roadmap is built from (else the live run's own contrast frames).
    public var roadmapBuildRun: FrameSource?
    /// Live delivery: a late frame is dropped; the roadmap completes off the frames' path.
    public var policy: DeliveryPolicy = .replay
    /// Let stages share a frame's rows with a helper thread.
    public var splitting = true
    /// Publish with these settings (nil: process and measure only).
    public var publishing: Publishing?
    /// Record the processed run as DICOM with these settings.
    public var recording: Recording?

    /// The publisher's settings.
    public struct Publishing {
        public var address: PublisherAddress
        public var encoding: ZeroMQPublisher.Encoding = .raw
        public var layers = false
        /// The header as the text of imagezmq's `msg`, a raw image in BGR order (stock imagezmq subscribers).
        public var imagezmq = false
        public var curve: CurveSecurity?
        public var allowPlaintextNonLoopback = false
        public init(address: PublisherAddress) { self.address = address }
    }

    /// The OpenIGTLink server's address (`--igtl`), and whether it may be other than loopback.
    public var openIGTLink: OpenIGTLinkAddress?
    public var allowPlaintextNonLoopback = false

    /// The recorder's settings.
    public struct Recording {
        public var path: String
        public var patient: RecordedPatient?
        public var compression: RecordingCompression = .jpeg
        /// The source's modality (DICOM sources), recorded in place of OT.
        public var modality: String?
        /// Replace an existing file (`--force`).
        public var replace = false
        /// Files the run reads, which the recording may not overwrite.
        public var inputs: [String] = []
        public init(path: String) { self.path = path }
    }

    public init() {}

    /// Whether any stage needs the frames' motion.
    var needsMotion: Bool { motion || subtraction || segmentation != nil || roadmap != nil }
}
