import FluoroCore

/// The exact ground truth of one synthetic frame (all coordinates in frame pixels, x right, y down,
/// pixel centres at integers).
public struct SyntheticFrameTruth: Sendable, Codable, Equatable {
    /// A device's true centre line, from where it enters the frame to its tip.
    public struct Device: Sendable, Codable, Equatable {
        public var centerline: [Point2]
        public var tip: Point2
        /// Radius of the device in pixels.
        public var radius: Double
    }

    public var index: Int
    /// Seconds since the first frame.
    public var time: Double
    /// The anatomy's shift against the reference frame: a reference point p appears at p + (dx, dy).
    public var dx: Double
    public var dy: Double
    /// Contrast opacification, 0 (none) to 1 (peak).
    public var contrast: Double
    /// Nil when the run has no guidewire (a diagnostic injection).
    public var guidewire: Device?
    public var catheter: Device
}

/// The ground truth of a whole run, as written beside a synthetic recording (`*.truth.json`).
public struct SyntheticRunTruth: Sendable, Codable {
    /// Format version of this file.
    public var format = "fluorostream-synthetic-truth/1"
    public var parameters: SyntheticParameters
    /// File name (beside the truth file) of the reference vessel mask: binary PGM (P5), 255 = vessel.
    public var vesselMask: String
    /// Frames in which contrast opacification exceeds 5 %.
    public var contrastFrames: [Int]
    public var frames: [SyntheticFrameTruth]

    enum CodingKeys: String, CodingKey {
        case format, parameters, vesselMask = "vessel_mask", contrastFrames = "contrast_frames", frames
    }
}

extension Point2 {
    init(_ point: (x: Double, y: Double)) { self.init(x: Float(point.x), y: Float(point.y)) }
}
