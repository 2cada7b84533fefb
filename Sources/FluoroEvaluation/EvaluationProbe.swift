import FluoroCore

/// The last stage of an evaluated pipeline: keeps what each frame carried out of the stages (its grey samples,
/// motion estimate, roadmap as drawn and devices) for scoring after the run. Storage for `capacity` frames is reserved in
/// `prepare`; each frame is still copied into a new array, so the probe belongs to evaluation runs only, never to a
/// live pipeline (where a stage allocates nothing per frame).
public final class EvaluationProbe: Stage {
    public let name = "probe"
    public let capacity: Int
    public private(set) var geometry: FrameGeometry?
    public private(set) var pixels: [[UInt16]] = []
    public private(set) var motion: [MotionEstimate] = []
    public private(set) var roadmap: [RoadmapAnnotation] = []
    /// Each frame's roadmap layer when the map was drawn on it, else nil.
    public private(set) var roadmapLayers: [[UInt8]?] = []
    public private(set) var devices: [ReportedDevices] = []

    public init(capacity: Int) { self.capacity = capacity }

    public func prepare(for geometry: FrameGeometry) throws {
        self.geometry = geometry
        pixels.reserveCapacity(capacity)
        motion.reserveCapacity(capacity)
        roadmap.reserveCapacity(capacity)
        roadmapLayers.reserveCapacity(capacity)
        devices.reserveCapacity(capacity)
    }

    public func process(_ frame: Frame) throws {
        guard pixels.count < capacity else { return }
        pixels.append(Array(frame.pixels))
        motion.append(frame.annotations.motion)
        roadmap.append(frame.annotations.roadmap)
        roadmapLayers.append(frame.annotations.roadmap.drawn ? Array(frame.roadmapLayer) : nil)
        devices.append(ReportedDevices(frame.annotations))
    }
}
