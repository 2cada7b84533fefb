import FluoroCore
import FluoroConcurrency

/// A roadmap for a beating heart, as in dynamic coronary roadmapping: a coronary moves by about its own width
/// between frames, so no single map fits every frame. Each frame is box-averaged to a level whose shorter side is
/// at most `vesselLevelSide` (−log) and its vessels mapped (`FrameVesselMap`); the number of vessel pixels is the run's
/// contrast curve.
///
/// - The contrast starts when the curve rises by `contrastRise` pixels over its lowest value so far, to at least
///   `contrastRatio` times it.
/// - A frame whose map holds at least `liveShare` of the largest map so far shows its contrast: it is drawn with
///   its own map (with `drawLive`), and the map is stored (`PhaseMatchedMaps`) with the frame's thumbnail.
/// - Any other frame after the start is drawn with the stored map (of at least `storedShare` of the largest) of
///   the frame it looks most like: the same cardiac and respiratory phase. A registration loss (a table move)
///   discards the stored maps; the live maps need no registration.
///
/// All memory is allocated in `init`; `process` allocates nothing.
final class DynamicRoadmap {
    /// What to draw on a frame: nothing yet, its own map, or the stored map of an earlier frame.
    typealias Shift = PhaseMatchedMaps.Shift

    enum Choice: Equatable {
        case building
        case live
        /// The map of frame `frameIndex` (which had motion estimate `shift`), matched with `correlation`.
        case stored(frameIndex: Int, correlation: Float, shift: Shift)
    }

    let geometry: FrameGeometry
    let parameters: RoadmapParameters
    /// The map to draw after `process` returned `.live` or `.stored`: full resolution, 0 outside vessels.
    private(set) var drawnMap: UnsafeMutableBufferPointer<UInt8>
    private(set) var drawnPixels = 0
    /// Contrast frames whose maps were stored since the contrast started.
    private(set) var contrastFrames = 0
    /// Frames must be at least this large on their shorter side (the phase thumbnails are 64 × 64).
    static let smallestSide = PhaseMatchedMaps.side
    private(set) var contrastStarted = false

    private let reduction: LogReduction
    private let level: UnsafeMutableBufferPointer<Float>
    private let frameMap: FrameVesselMap
    private let stored: PhaseMatchedMaps
    /// The full-resolution map when the level is smaller than the frame.
    private let upsampled: UnsafeMutableBufferPointer<UInt8>?
    private let contrastRise: Int
    private var fewest = Int.max
    private var largest = 0

    init(geometry: FrameGeometry, parameters: RoadmapParameters, splitter: WorkSplitter? = nil) {
        self.geometry = geometry
        self.parameters = parameters
        reduction = LogReduction(geometry: geometry, largestSide: parameters.vesselLevelSide, splitter: splitter)
        let width = reduction.width, height = reduction.height
        level = .allocate(capacity: width * height)
        frameMap = FrameVesselMap(width: width, height: height, splitter: splitter)
        stored = PhaseMatchedMaps(width: width, height: height, capacity: max(parameters.storedMaps, 1))
        upsampled = reduction.factor > 1 ? .allocate(capacity: geometry.pixelCount) : nil
        drawnMap = upsampled ?? frameMap.map
        let scale = Float(width * height) / Float(512 * 512)
        contrastRise = max(Int(clampingFinite: (Float(parameters.contrastRise) * scale).rounded()), 1)
    }

    deinit {
        level.deallocate()
        upsampled?.deallocate()
    }

    /// Starts again: no contrast seen, no stored maps.
    func reset() {
        stored.reset()
        contrastStarted = false
        contrastFrames = 0
        fewest = .max
        largest = 0
    }

    /// Maps the vessels of frame `frameIndex` and decides what to draw on it; `shift` is its motion estimate
    /// (nil when registration was lost on it: the stored maps are discarded).
    func process(_ pixels: UnsafeBufferPointer<UInt16>, frameIndex: Int, shift: Shift?) -> Choice {
        if shift == nil { stored.reset() }
        reduction.reduce(pixels, into: level.baseAddress!)
        let count = frameMap.compute(level.baseAddress!)
        stored.describe(level: level.baseAddress!, field: frameMap.field.baseAddress!)
        fewest = min(fewest, count)
        largest = max(largest, count)
        if !contrastStarted, count - fewest >= contrastRise, Float(count) >= parameters.contrastRatio * Float(fewest) {
            contrastStarted = true
        }
        guard contrastStarted else { return .building }
        let inRange = parameters.frameRange?.contains(frameIndex) ?? true
        if inRange, Float(count) >= parameters.liveShare * Float(largest) {
            if stored.store(frameMap.map, vesselPixels: count, frameIndex: frameIndex, shift: shift ?? Shift(dx: 0, dy: 0)) {
                contrastFrames += 1
            }
            if parameters.drawLive {
                draw(frameMap.map, pixels: count)
                return .live
            }
        }
        let minimum = Int(clampingFinite: (parameters.storedShare * Float(largest)).rounded(.up))
        // A stored map of this very frame (stored above, when live maps are not drawn) is not a match.
        guard let match = stored.bestMatch(minimumPixels: minimum, before: frameIndex) else { return .building }
        let entry = stored.entries[match.place]
        draw(stored.map(at: match.place), pixels: entry.vesselPixels)
        return .stored(frameIndex: entry.frameIndex, correlation: match.correlation, shift: entry.shift)
    }

    /// Makes `map` (level pixels) the drawn map at full resolution (each level pixel covers factor² pixels;
    /// columns and rows past the level's last repeat it): each level row is widened once, then copied.
    private func draw(_ map: UnsafeMutableBufferPointer<UInt8>, pixels: Int) {
        guard let upsampled else {
            drawnMap = map
            drawnPixels = pixels
            return
        }
        let factor = reduction.factor, width = reduction.width, height = reduction.height
        let fullWidth = geometry.width, target = upsampled.baseAddress!
        var count = 0
        for levelY in 0..<height {
            let source = map.baseAddress! + levelY * width
            let first = target + levelY * factor * fullWidth
            var rowPixels = 0
            for x in 0..<width {
                (first + x * factor).update(repeating: source[x], count: factor)
                if source[x] > 0 { rowPixels += factor }
            }
            let filled = width * factor
            (first + filled).update(repeating: source[width - 1], count: fullWidth - filled)
            if source[width - 1] > 0 { rowPixels += fullWidth - filled }
            let rowCount = levelY == height - 1 ? geometry.height - levelY * factor : factor
            for row in 1..<max(rowCount, 1) { (first + row * fullWidth).update(from: first, count: fullWidth) }
            count += rowPixels * rowCount
        }
        drawnMap = upsampled
        drawnPixels = count
    }
}
