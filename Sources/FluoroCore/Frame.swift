/// One slot of the preallocated frame pool: the grey pixels, the rendered display image and the
/// bookkeeping of one frame as it passes through the graph.
///
/// Storage is allocated once, when the pool is built, and reused for every frame the slot carries.
/// Ownership rule: exactly one thread touches a frame at a time; it changes hands only through the
/// graph's rings, whose release/acquire ordering makes the previous owner's writes visible.
public final class Frame: @unchecked Sendable {
    /// The slot number in the pool (stable for the frame's lifetime).
    public let slot: Int
    /// Size and sample format, fixed when the graph is built.
    public let geometry: FrameGeometry
    /// Grey samples, row-major, `geometry.pixelCount` of them.
    public let pixels: UnsafeMutableBufferPointer<UInt16>
    /// The annotated picture for display: RGB, 8 bits per channel, row-major, `pixelCount * 3` bytes.
    public let display: UnsafeMutableBufferPointer<UInt8>
    /// The roadmap's vessel map as drawn on this frame (0…255 per pixel, moved by the frame's motion), valid when
    /// `annotations.roadmap.drawn`: the publisher's layers mode sends it as its own part.
    public let roadmapLayer: UnsafeMutableBufferPointer<UInt8>
    /// Monotonic nanoseconds at which each stage released the frame (index = stage position).
    public let stageExit: UnsafeMutableBufferPointer<UInt64>

    /// Position of the frame in its run (0-based, as numbered by the source).
    public var index = 0
    /// The frame's time in the recording, in seconds from the first frame (or the capture time).
    public var sourceTime: Double = 0
    /// Monotonic nanoseconds at which the frame became available to the pipeline.
    public var availableAt: UInt64 = 0
    /// Where the frame lies in the cardiac cycle, 0 at an R wave to 1 at the next, when the source knows (a DICOM
    /// run's R Wave Pointer); NaN otherwise.
    public var cardiacPhase: Float = .nan
    /// Set by the live policy when a newer frame overtook this one: later stages pass it on untouched.
    public var isSkipped = false
    /// What the stages found.
    public var annotations = FrameAnnotations()

    /// Allocates a slot for frames of `geometry` passing through `stageCount` stages.
    public init(slot: Int, geometry: FrameGeometry, stageCount: Int) {
        self.slot = slot
        self.geometry = geometry
        pixels = .allocate(capacity: geometry.pixelCount)
        pixels.initialize(repeating: 0)
        display = .allocate(capacity: geometry.pixelCount * 3)
        display.initialize(repeating: 0)
        roadmapLayer = .allocate(capacity: geometry.pixelCount)
        roadmapLayer.initialize(repeating: 0)
        stageExit = .allocate(capacity: max(stageCount, 1))
        stageExit.initialize(repeating: 0)
    }

    deinit {
        pixels.deallocate()
        display.deallocate()
        roadmapLayer.deallocate()
        stageExit.deallocate()
    }

    /// Prepares the slot to carry a new frame: clears annotations and timestamps, keeps the storage.
    public func recycle() {
        index = 0
        sourceTime = 0
        cardiacPhase = .nan
        availableAt = 0
        isSkipped = false
        annotations.reset()
        for stage in stageExit.indices { stageExit[stage] = 0 }
    }
}
