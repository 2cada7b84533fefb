/// What registration found for a frame.
public enum RegistrationState: String, Sendable, Codable {
    /// No registration ran.
    case none
    /// The shift was estimated against the current reference.
    case tracking
    /// Registration failed (e.g. a table move); the reference is reset.
    case lost
}

/// The estimated shift of a live frame relative to the reference, in pixels.
public struct MotionEstimate: Sendable, Equatable {
    /// The translation that best lines up the whole exposed field (published).
    public var dx: Float = 0
    public var dy: Float = 0
    public var confidence: Float = 0
    public var state: RegistrationState = .none
    /// The translation of the structures most of the field agrees on (robust weights, from the correlation
    /// peak), against the same reference: what device tracking follows. On a beating heart the whole field's
    /// best translation follows the heart's border and the diaphragm, which a catheter in the aortic root does
    /// not. Not published.
    public var dominantDx: Float = 0
    public var dominantDy: Float = 0
    public init() {}
}

/// The local (non-rigid) part of a frame's motion: shifts at the centres of a grid of blocks over the frame
/// (row-major, `gridSize` × `gridSize`, full-resolution pixels). Storage is reserved once, so refilling it within
/// `capacity` points never allocates.
public struct LocalMotionField: Sendable {
    /// Grid points a field holds without allocating (a 16 × 16 grid).
    public static let capacity = 256
    public private(set) var gridSize = 0
    public private(set) var dx: [Float]
    public private(set) var dy: [Float]

    public init() {
        dx = []
        dy = []
        dx.reserveCapacity(Self.capacity)
        dy.reserveCapacity(Self.capacity)
    }

    /// Whether a field was estimated for this frame.
    public var isPresent: Bool { gridSize > 0 }

    /// Replaces the field by `gridSize`² points from `shiftX`/`shiftY`; a grid beyond `capacity` is not kept.
    public mutating func set(gridSize: Int, shiftX: UnsafeBufferPointer<Float>, shiftY: UnsafeBufferPointer<Float>) {
        clear()
        guard gridSize * gridSize <= Self.capacity, shiftX.count >= gridSize * gridSize, shiftY.count >= gridSize * gridSize
        else { return }
        self.gridSize = gridSize
        for i in 0..<(gridSize * gridSize) {
            dx.append(shiftX[i])
            dy.append(shiftY[i])
        }
    }

    /// Forgets the field, keeping the storage.
    public mutating func clear() {
        gridSize = 0
        dx.removeAll(keepingCapacity: true)
        dy.removeAll(keepingCapacity: true)
    }
}

/// The kind of interventional device a centre line belongs to.
public enum DeviceKind: String, Sendable, Codable, CaseIterable {
    case guidewire
    case catheter
}

/// One device's centre line (ordered from the proximal end to the tip) and tip, in image coordinates.
///
/// The polyline keeps its capacity across frames, so refilling it within `capacity` never allocates.
public struct DeviceTrace: Sendable {
    /// Points a trace holds without allocating.
    public static let capacity = 1024
    public let kind: DeviceKind
    public private(set) var centerline: [Point2]
    public var tip: Point2?
    public var confidence: Float = 0

    public init(kind: DeviceKind) {
        self.kind = kind
        centerline = []
        centerline.reserveCapacity(Self.capacity)
    }

    /// Whether the stage found this device in the frame.
    public var isPresent: Bool { !centerline.isEmpty }

    /// Forgets the previous frame's trace, keeping the storage.
    public mutating func clear() {
        centerline.removeAll(keepingCapacity: true)
        tip = nil
        confidence = 0
    }

    /// Appends a centre-line point; points beyond `capacity` are ignored so the hot path never allocates.
    public mutating func append(_ point: Point2) {
        if centerline.count < Self.capacity { centerline.append(point) }
    }
}

/// The state of the roadmap overlay as of this frame.
public enum RoadmapState: String, Sendable, Codable {
    /// No roadmap stage runs.
    case none
    /// Collecting the mask frames, then integrating the contrast frames.
    case building
    /// The vessel map is complete and drawn on the live frame.
    case active
    /// The map no longer fits the live image (registration lost, a table move, or the C-arm moved): not drawn.
    case invalid
    /// The map was discarded; a new one is built from the next frames.
    case cleared
}

/// Why a roadmap became invalid.
public enum RoadmapInvalidation: String, Sendable, Codable {
    case registrationLost = "registration_lost"
    case geometryChanged = "geometry_changed"
}

/// Which vessel map the roadmap drew on a frame.
public enum RoadmapMapSource: String, Sendable, Codable {
    /// The frame's own vessel map (it shows its contrast).
    case live
    /// The map of an earlier contrast frame at the same cardiac and respiratory phase.
    case stored
    /// The map built by subtraction from the contrast frames (of this run or of `--roadmap-from`).
    case subtraction
}

/// What the roadmap stage did with a frame: its state and what it drew.
public struct RoadmapAnnotation: Sendable, Equatable {
    public var state: RoadmapState = .none
    /// Whether the vessel map was blended into this frame's display image.
    public var drawn = false
    /// The shift the map was drawn with (the frame's motion against the map's reference), in pixels.
    public var offsetX: Float = 0
    public var offsetY: Float = 0
    /// Contrast frames integrated into the map so far, and the map's vessel pixels (full resolution).
    public var contrastFrames = 0
    public var vesselPixels = 0
    /// Set on the frame that made the map invalid.
    public var invalidation: RoadmapInvalidation?
    /// The map drawn, and the frame it was made from (this frame's index for a live map); nil when not drawn or
    /// not from one frame.
    public var mapSource: RoadmapMapSource?
    public var mapFrame: Int?

    public init() {}
}

/// What the stages found in a frame, filled in as it passes through them.
public struct FrameAnnotations: Sendable {
    public var motion = MotionEstimate()
    /// The local motion field, when the motion stage estimates one (`--dsa --local`).
    public var localMotion = LocalMotionField()
    public var guidewire = DeviceTrace(kind: .guidewire)
    public var catheter = DeviceTrace(kind: .catheter)
    public var roadmap = RoadmapAnnotation()

    public init() {}

    /// Resets every annotation for a new frame without releasing storage.
    public mutating func reset() {
        motion = MotionEstimate()
        localMotion.clear()
        guidewire.clear()
        catheter.clear()
        roadmap = RoadmapAnnotation()
    }
}
