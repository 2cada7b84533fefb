/// How the vessel map of a roadmap is made.
public enum RoadmapMethod: String, Sendable, CaseIterable {
    /// Dynamic roadmap for a beating heart (`DynamicRoadmap`): each frame's own vessel map (Hessian vesselness)
    /// while its contrast lasts, then the stored map of the contrast frame most like the live one.
    case vesselness
    /// One map per cardiac phase from motion-corrected subtraction (`VesselMapBuilder`), complete once the
    /// contrast has washed out: for anatomy that moves rigidly (peripheral, cerebral runs).
    case subtraction
}

/// Settings of the roadmap: how the vessel map is built and how it is drawn.
public struct RoadmapParameters: Sendable {
    /// How the map is made; a map from another run (`--roadmap-from`) is always made by subtraction.
    public var method = RoadmapMethod.vesselness

    // MARK: Dynamic (vesselness) roadmap

    /// The level the vessels are mapped on: the frame box-averaged until its shorter side is at most this.
    public var vesselLevelSide = 256
    /// A rise of the frame's vessel pixels over the run's fewest so far by this many (on a 512² level; scaled
    /// with the level's area), to at least `contrastRatio` times them, starts the contrast.
    public var contrastRise = 3000
    public var contrastRatio: Float = 1.5
    /// A frame whose vessel map has at least this share of the largest map of the run so far shows its contrast:
    /// its own map is drawn, and stored for the frames after the contrast.
    public var liveShare: Float = 0.5
    /// Later frames are drawn with a stored map that has at least this share of the largest map's pixels.
    public var storedShare: Float = 0.7
    /// How many contrast frames' maps are kept (about two heartbeats at 30 frames/s).
    public var storedMaps = 48
    /// Whether each frame with contrast is drawn with its own map (else only stored maps of earlier frames are
    /// drawn: what the roadmap shows after the contrast, measurable on the contrast frames).
    public var drawLive = true

    // MARK: Subtraction roadmap

    /// Longest side of the working level the map is built on.
    public var levelSide = 512
    /// Pre-contrast frames averaged into the mask before contrast can be detected.
    public var minimumMaskFrames = 3
    /// A frame is a contrast frame when the share of its field that is opacified (smoothed subtraction above
    /// `opacityThreshold` noise σ) exceeds the mask frames' share by this much (a fraction of the field).
    public var contrastShare: Float = 0.005
    /// Opacification, in noise σ of the smoothed subtraction, that counts as vessel.
    public var opacityThreshold: Float = 4
    /// Peak opacification that a vessel pixel of the map needs, in the local noise σ of the map's estimate of
    /// it (regions smaller than `minimumRegion` are dropped as noise).
    public var vesselThreshold: Float = 5
    /// Weaker opacification (same σ) kept where it connects to vessel pixels (hysteresis).
    public var weakThreshold: Float = 3
    /// Connected vessel regions smaller than this (level pixels) are noise, not vessels.
    public var minimumRegion = 30
    /// Blur of the imaging chain as the edge model assumes it (a Gaussian σ in level pixels, added to the map's
    /// own smoothing): a vessel's edge lies where a cylinder of its measured size, blurred so, meets its lumen
    /// border: high on a thin vessel's profile, low on a wide one's. Tuned on synthetic runs, whose detector
    /// blur is 0.7 px: the vessel's centre is read at a local maximum of a noisy map, which overestimates it,
    /// and a smaller blur (lower edge shares) makes up for that.
    public var imagingBlur: Float = 0.4
    /// How far (level pixels) a vessel's edge may lie from its centre (the disk its equivalent width is
    /// measured over reaches one pixel further).
    public var edgeReach = 5
    /// Contrast frames in a row below the contrast share that end the build (the contrast has washed out).
    public var washOutFrames = 3
    /// A contrast phase this long ends the build even if the contrast has not washed out (6 s at 15 frames/s:
    /// the vessels have filled by then).
    public var maximumContrastFrames = 90
    /// Cardiac phases the map is built for separately when frames carry their phase (a DICOM run's R waves):
    /// a coronary moves with the heartbeat, so each phase gets its own map, drawn on the frames of that phase.
    public var cardiacBins = 8
    /// Build only from these frames (inclusive indices), when set; a subtraction map becomes active after the
    /// last one, a dynamic roadmap stores and draws live maps of these frames only.
    public var frameRange: ClosedRange<Int>?

    // MARK: Drawing

    /// Blend strength of the map in the overlay (0…1).
    public var opacity: Float = 0.45
    /// Colour of the vessels in the overlay.
    public var colour: (red: UInt8, green: UInt8, blue: UInt8) = (255, 70, 40)

    public init() {}
}
