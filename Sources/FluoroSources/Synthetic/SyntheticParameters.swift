import FluoroCore

/// Everything that defines a synthetic fluoroscopy run; the same parameters and seed give the same
/// frames, bit for bit.
public struct SyntheticParameters: Sendable, Codable, Equatable {
    /// Frame width and height in pixels (square frames; 512 and 1024 are the usual sizes).
    public var size: Int = 512
    /// Frames in the run.
    public var frameCount: Int = 90
    /// Frames per second of the simulated acquisition.
    public var frameRate: Double = 15
    /// Seed of every random choice (anatomy, vessel tree, quantum noise).
    public var seed: UInt64 = 1
    /// Mean X-ray quanta per pixel reaching the detector without attenuation (sets the noise level).
    public var dose: Double = 1000
    /// Bits stored in the output samples.
    public var bitsStored: Int = 12
    /// Peak-to-peak scale of the respiratory motion, in pixels at 512² (scaled with the size).
    public var respiratoryAmplitude: Double = 4
    /// Amplitude of the cardiac motion, in pixels at 512² (scaled with the size).
    public var cardiacAmplitude: Double = 1.5
    /// Contrast injection: first frame with contrast, frame of peak opacification, frame by which it
    /// has washed out. Nil: no contrast in the run.
    public var contrast: ContrastWindow? = ContrastWindow(start: 30, peak: 45, washedOut: 75)
    /// A sudden table move: from `frame` on, everything is shifted by (`dx`, `dy`) more pixels.
    public var tableJump: TableJump?
    /// Standard deviation of the detector blur, in pixels.
    public var detectorBlur: Double = 0.7
    /// What the run shows: a guidewire advanced through a catheter in the vessel (an intervention), or a
    /// diagnostic injection.
    public var procedure = Procedure.intervention
    /// The collimator's exposed field; nil: the whole detector is exposed.
    public var collimator: Collimator?
    /// The catheter's radius in pixels at 512² (scaled with the size; at least 1.5 px).
    public var catheterRadius: Double = 2.8
    /// Attenuation of the catheter's wall along its centre line (ln of the intensity drop; a diagnostic catheter's
    /// contrast adds to it).
    public var catheterWall: Double = 0.5

    public init() {}

    enum CodingKeys: String, CodingKey {
        case size, frameCount = "frame_count", frameRate = "frame_rate", seed, dose, bitsStored = "bits_stored"
        case respiratoryAmplitude = "respiratory_amplitude", cardiacAmplitude = "cardiac_amplitude", contrast
        case tableJump = "table_jump", detectorBlur = "detector_blur", procedure, collimator
        case catheterRadius = "catheter_radius", catheterWall = "catheter_wall"
    }

    /// The devices in view.
    public enum Procedure: String, Sendable, Codable, CaseIterable {
        /// A guidewire, advancing and retracting, runs through a catheter that lies inside the main vessel.
        case intervention
        /// A catheter sits at the main vessel's ostium, with no guidewire; the vessel tree starts at its tip, and
        /// contrast is injected through it (its lumen fills as the vessels do), so the catheter runs through
        /// unopacified tissue.
        case diagnostic
    }

    /// A collimated field: a circle or an octagon (the two common iris shapes) around the frame's centre. Outside
    /// it the lead blades let through `leakage` of the X-rays; the edge is soft over a few pixels (the focal
    /// spot's penumbra).
    public struct Collimator: Sendable, Codable, Equatable {
        public enum Shape: String, Sendable, Codable, CaseIterable { case circle, octagon }
        public var shape: Shape
        /// Radius (circle) or half the distance between opposite sides (octagon), as a share of half the frame
        /// side: below 1 the whole field is in the frame; above, its edge is cut by the frame.
        public var radius: Double
        /// Share of the X-rays that pass the blades.
        public var leakage: Double = 0.004
        public init(shape: Shape, radius: Double) { self.shape = shape; self.radius = radius }

        /// How far the pixel centre (`x`, `y`) of a `size`² frame lies inside the field's edge, in pixels (negative
        /// behind the blades); the octagon's edge is its nearest side.
        public func depth(x: Double, y: Double, size: Int) -> Double {
            let centre = Double(size - 1) / 2, u = abs(x - centre), v = abs(y - centre)
            let distance =
                switch shape {
                case .circle: (u * u + v * v).squareRoot()
                case .octagon: max(u, v, (u + v) / 2.squareRoot())
                }
            return radius * Double(size) / 2 - distance
        }
    }

    /// Frame window of a contrast injection.
    public struct ContrastWindow: Sendable, Codable, Equatable {
        public var start: Int
        public var peak: Int
        public var washedOut: Int
        public init(start: Int, peak: Int, washedOut: Int) { self.start = start; self.peak = peak; self.washedOut = washedOut }
        enum CodingKeys: String, CodingKey { case start, peak, washedOut = "washed_out" }
    }

    /// A table move at a frame.
    public struct TableJump: Sendable, Codable, Equatable {
        public var frame: Int
        public var dx: Double
        public var dy: Double
        public init(frame: Int, dx: Double, dy: Double) { self.frame = frame; self.dx = dx; self.dy = dy }
    }

    /// Checks every value is in a range the generator supports.
    public func validate() throws {
        guard (64...4096).contains(size) else { throw FluoroError.invalidArgument("synthetic size \(size) is outside 64...4096") }
        guard (1...1_000_000).contains(frameCount) else {
            throw FluoroError.invalidArgument("synthetic frame count \(frameCount) is outside 1...1000000")
        }
        guard frameRate > 0, frameRate <= 1000 else { throw FluoroError.invalidArgument("frame rate \(frameRate) is outside (0, 1000]") }
        guard (1...1e7).contains(dose) else {
            throw FluoroError.invalidArgument("dose \(dose) is outside 1...1e7 quanta per pixel")
        }
        guard (8...16).contains(bitsStored) else { throw FluoroError.invalidArgument("bits stored \(bitsStored) is outside 8...16") }
        if let contrast, !(0 <= contrast.start && contrast.start <= contrast.peak && contrast.peak < contrast.washedOut) {
            throw FluoroError.invalidArgument("contrast window needs 0 <= start <= peak < washed_out")
        }
        if let tableJump {
            let limit = Double(size) / 4
            guard tableJump.frame >= 0, abs(tableJump.dx) <= limit, abs(tableJump.dy) <= limit else {
                throw FluoroError.invalidArgument(
                    "table jump \(tableJump.frame):\(tableJump.dx):\(tableJump.dy) needs a frame >= 0 "
                        + "and moves within ±\(limit) px (a quarter of the frame)")
            }
        }
        guard detectorBlur >= 0, detectorBlur <= 3 else { throw FluoroError.invalidArgument("detector blur must be in 0...3 px") }
        guard (0.5...8).contains(catheterRadius) else {
            throw FluoroError.invalidArgument("catheter radius \(catheterRadius) is outside 0.5...8 px")
        }
        guard (0...3).contains(catheterWall) else {
            throw FluoroError.invalidArgument("catheter wall attenuation \(catheterWall) is outside 0...3")
        }
        if let collimator {
            guard (0.3...1.5).contains(collimator.radius) else {
                throw FluoroError.invalidArgument("collimator radius \(collimator.radius) is outside 0.3...1.5 (a share of half the frame)")
            }
            guard (0...0.5).contains(collimator.leakage) else {
                throw FluoroError.invalidArgument("collimator leakage \(collimator.leakage) is outside 0...0.5")
            }
        }
    }

    /// Pixel lengths scale with the frame size relative to 512².
    var scale: Double { Double(size) / 512 }

    /// The true shift of the anatomy in frame `index`: a point at `p` in the reference frame (shift 0)
    /// appears at `p + shift` in this frame.
    public func shift(atFrame index: Int) -> (dx: Double, dy: Double) {
        let t = Double(index) / frameRate
        let respiration = 2 * Double.pi * 0.25 * t, heartbeat = 2 * Double.pi * 1.15 * t
        var dx =
            scale
            * (respiratoryAmplitude * 0.35 * sin(respiration)
                + cardiacAmplitude * (0.8 * sin(heartbeat + 0.4) + 0.25 * sin(2 * heartbeat)))
        var dy =
            scale
            * (respiratoryAmplitude * 0.5 * (sin(respiration - 0.3))
                + cardiacAmplitude * (0.6 * sin(heartbeat) + 0.3 * sin(2 * heartbeat + 1)))
        if let jump = tableJump, index >= jump.frame {
            dx += jump.dx
            dy += jump.dy
        }
        return (dx, dy)
    }

    /// Contrast opacification in frame `index`, 0 (none) to 1 (peak).
    public func contrastLevel(atFrame index: Int) -> Double {
        guard let window = contrast, index >= window.start else { return 0 }
        if index < window.peak {
            let x = Double(index - window.start + 1) / Double(window.peak - window.start + 1)
            return x * x * (3 - 2 * x)
        }
        let decay = Double(window.washedOut - window.peak) / 4
        return exp(-Double(index - window.peak) / decay)
    }

    /// Share of the main vessel's length that the catheter covers, from where the vessel enters the frame.
    static let catheterShare = 0.33

    /// Largest shift the run can reach, for the margin of the precomputed anatomy.
    var maximumShift: Double {
        scale * (respiratoryAmplitude * 0.5 + cardiacAmplitude * 1.1) + 2
            + (tableJump.map { max(abs($0.dx), abs($0.dy)) } ?? 0)
    }
}

#if canImport(Glibc)
    import Glibc
#endif
