import FluoroCore
import FluoroConcurrency

/// The device segmenter. Device pixels come from a multi-scale Hessian ridge filter in the log domain (the classic
/// path) or from a small U-Net's centre-line probability (the learned path), inside the exposed field (collimator
/// and shutter edges are dropped); then non-maximum suppression and hysteresis, tracing of the strongest
/// consistent centre line, a change point along it where the line stops being catheter-like (its contrast drops, or
/// the network's catheter probability falls: the catheter's tip, beyond which only the guidewire continues), and
/// temporal tracking: the previous centre line, moved by the motion estimate (its dominant structures' shift), seeds the trace and is preferred
/// over new ridges (ribs, vessel edges), and tips move at most `maximumTipStep` per frame along the line (the
/// learned wire's as far as the network still sees it). Last, the wire's tip is placed on the full-resolution
/// frame (`TipRefiner`).
///
/// The guidewire's centre line includes the part inside the catheter (the wire runs through it). All memory is
/// allocated in `init`; `segment` allocates nothing.
public final class DeviceSegmenter {
    public let geometry: FrameGeometry
    public let parameters: SegmentationParameters
    private let reduction: LogReduction
    private let level: UnsafeMutableBufferPointer<Float>
    /// The classic path's filter, or the learned path's network; `evidence` is the one in use.
    private let filter: RidgeFilter?
    private let network: DeviceNetwork?
    private let evidence: LineEvidence
    private let tracer: CenterlineTracer
    private let field: FieldMask
    private let tipRefiner: TipRefiner
    /// The responses above which a pixel is a weak and a strong ridge, set by `findCandidates` for the frame.
    private var thresholds = (low: Float(0), high: Float(0))
    private let splitter: WorkSplitter?
    private lazy var suppression = OwnedWork(self) { $0.suppress(rows: $1) }
    private let best: UnsafeMutableBufferPointer<Int32>
    private var bestCount = 0
    /// The previous frame's centre line (level pixels, proximal to distal), its catheter-tip index, and the motion
    /// estimate it was found with.
    private let previousX: UnsafeMutableBufferPointer<Float>
    private let previousY: UnsafeMutableBufferPointer<Float>
    private var previousCount = 0
    private var previousCatheterTip = 0
    /// Where the catheter's tip was while lines stop short of it (a trace that fades before the catheter's end),
    /// for at most `shortLineMemory` frames in a row: when the line grows back, its tip is found there again.
    private var heldCatheterTip: (x: Float, y: Float)?
    private var framesShortOfCatheter = 0
    private static let shortLineMemory = 30
    private var previousMotion = (dx: Float(0), dy: Float(0))
    /// The predicted centre line, dilated, as stamps on the level (equal to `priorStamp` inside).
    private let prior: UnsafeMutableBufferPointer<UInt32>
    private var priorStamp: UInt32 = 0
    /// Subpixel positions of the chosen path (level pixels).
    private let pointX: UnsafeMutableBufferPointer<Float>
    private let pointY: UnsafeMutableBufferPointer<Float>
    /// The contrast along the chosen path (classic path; see `measureLineContrast`).
    private let lineContrast: UnsafeMutableBufferPointer<Float>

    /// With a `splitter`, the log reduction, the ridge filter (or the network's layers) and the non-maximum
    /// suppression share each frame's rows between two threads.
    /// Throws when the learned network's weights cannot be read.
    public init(
        geometry: FrameGeometry, parameters: SegmentationParameters = SegmentationParameters(),
        splitter: WorkSplitter? = nil
    ) throws {
        precondition(!parameters.scales.isEmpty && parameters.levelSide >= 16, "invalid segmentation settings")
        self.geometry = geometry
        self.parameters = parameters
        self.splitter = splitter
        reduction = LogReduction(geometry: geometry, largestSide: parameters.levelSide, splitter: splitter)
        let pixels = reduction.width * reduction.height
        switch parameters.method {
        case .ridge:
            let filter = RidgeFilter(
                width: reduction.width, height: reduction.height, scales: parameters.scales,
                splitter: splitter)
            (self.filter, network, evidence) = (filter, nil, filter)
        case .learned:
            let network = try DeviceNetwork(
                width: reduction.width, height: reduction.height,
                weightsPath: parameters.weightsPath,
                splitter: splitter)
            (filter, self.network, evidence) = (nil, network, network)
        }
        level = .allocate(capacity: pixels)
        tracer = CenterlineTracer(width: reduction.width, height: reduction.height)
        field = FieldMask(width: reduction.width, height: reduction.height)
        tipRefiner = TipRefiner(geometry: geometry, factor: reduction.factor)
        best = .allocate(capacity: tracer.capacity)
        previousX = .allocate(capacity: tracer.capacity)
        previousY = .allocate(capacity: tracer.capacity)
        pointX = .allocate(capacity: tracer.capacity)
        pointY = .allocate(capacity: tracer.capacity)
        lineContrast = .allocate(capacity: tracer.capacity)
        prior = .allocate(capacity: pixels)
        prior.update(repeating: 0)
    }

    deinit {
        for buffer in [level, previousX, previousY, pointX, pointY, lineContrast] { buffer.deallocate() }
        best.deallocate()
        prior.deallocate()
    }

    /// Finds the guidewire and catheter in `pixels` and writes them into `annotations`. Its `motion` (the frame's
    /// registration against the motion reference) moves the previous centre line onto this frame.
    public func segment(_ pixels: UnsafeBufferPointer<UInt16>, into annotations: inout FrameAnnotations) {
        findCandidates(in: pixels)
        trace(pixels, into: &annotations)
    }

    /// The part of `segment` that needs no motion estimate, so it may run while the frame is being registered:
    /// reduction, exposed field, ridge filter (or network), thresholds and candidate centre-line pixels.
    /// `trace` must follow, on the same frame.
    public func findCandidates(in pixels: UnsafeBufferPointer<UInt16>) {
        reduction.reduce(pixels, into: level.baseAddress!)
        let response = evidence.response
        let high: Float, low: Float
        let collimated = field.update(level.baseAddress!)
        if let filter {
            filter.apply(level.baseAddress!)
        } else {
            network!.run(level.baseAddress!, field: field)
        }
        if collimated {
            for i in 0..<field.inside.count where field.inside[i] == 0 { response[i] = 0 }
        }
        if filter != nil {
            let noise = max(tracer.noiseLevel(of: response), 1e-12)
            (high, low) = (parameters.highThreshold * noise, parameters.lowThreshold * noise)
        } else {
            (high, low) = (parameters.learnedHighThreshold, parameters.learnedLowThreshold)
        }
        thresholds = (low, high)
        suppression.perform(0..<reduction.height, splitter: splitter)
        tracer.keepConnected()
    }

    /// Non-maximum suppression of `rows` with the frame's `thresholds`, through the concrete evidence type (a call
    /// per ridge pixel: no dynamic dispatch).
    private func suppress(rows: Range<Int>) {
        if let filter {
            tracer.suppress(rows: rows, filter, low: thresholds.low, high: thresholds.high)
        } else if let network {
            tracer.suppress(rows: rows, network, low: thresholds.low, high: thresholds.high)
        }
    }

    /// The rest of `segment` after `findCandidates(in:)` on the same `pixels`: traces and tracks the centre line
    /// with the frame's motion (`annotations.motion`), splits it into catheter and wire and writes both.
    public func trace(_ pixels: UnsafeBufferPointer<UInt16>, into annotations: inout FrameAnnotations) {
        let motion = annotations.motion
        annotations.guidewire.clear()
        annotations.catheter.clear()
        let response = evidence.response, high = thresholds.high
        let factor = Float(reduction.factor)
        var shift = (dx: Float(0), dy: Float(0))
        if motion.state == .tracking {
            shift = ((motion.dominantDx - previousMotion.dx) / factor, (motion.dominantDy - previousMotion.dy) / factor)
            previousMotion = (motion.dominantDx, motion.dominantDy)
        } else if motion.state == .lost {
            previousMotion = (0, 0)
        }
        var tracking = previousCount > 0
        if tracking {
            stampPrior(shift: shift)
            chooseCenterline(tracking: true, shift: shift)
            var inside = 0
            for k in 0..<bestCount where prior[Int(best[k])] == priorStamp { inside += 1 }
            if Float(inside) < parameters.minimumTrackCoverage * Float(previousCount) { tracking = false }
        }
        if !tracking { chooseCenterline(tracking: false, shift: shift) }
        guard bestCount >= parameters.minimumLength else {
            previousCount = 0
            return
        }
        orient(tracking: tracking, shift: shift)
        var (catheterTip, wireEnd) = split()
        if filter == nil {
            // The wire's tip is where the centre-line probability falls through `learnedTipProbability`.
            while wireEnd > catheterTip + 2, response[Int(best[wireEnd - 1])] < parameters.learnedTipProbability {
                wireEnd -= 1
            }
        }
        if tracking {
            (wireEnd, catheterTip) = holdTips(wireEnd: wireEnd, catheterTip: catheterTip, shift: shift)
        } else {
            (heldCatheterTip, framesShortOfCatheter) = (nil, 0)
        }
        // A wire must reach `minimumWireExtension` beyond a catheter; on the classic path a shorter part beyond it is
        // the catheter's end (whose narrowing the split takes for its tip), on the learned path the network's
        // catheter probability has placed the tip and a shorter part is dropped.
        if filter != nil, catheterTip > 0, wireEnd - 1 <= catheterTip + parameters.minimumWireExtension {
            catheterTip = wireEnd - 1
        }
        // On the classic path a wire is clearly fainter than the end of the catheter it leaves: a part beyond the
        // catheter's tip about as dark as that end or darker is a contrast-filled vessel the trace ran on into, and
        // is cut off (the ridge filter answers to both; on rubo-0002, a diagnostic injection, such a part would
        // otherwise be reported as a wire).
        if filter != nil, catheterTip > parameters.minimumWireExtension,
            catheterTip + parameters.minimumWireExtension < wireEnd - 1,
            mean(of: .contrast, over: (catheterTip + 1)..<wireEnd) > parameters.vesselContrastShare
                * mean(of: .contrast, over: max(catheterTip - Self.catheterEndSpan, 0)..<catheterTip)
        {
            wireEnd = catheterTip + 1
        }
        refineSubpixel(count: wireEnd)
        // A catheter with no wire in it can lose its catheter probability (learned path) or show no contrast drop
        // (classic path) well before its end (diagnostic injections), and the rest, or all of it, would be
        // reported as a wire: on a fresh detection (tracking keeps the split from then on), a "wire" about as wide
        // as the catheter before it, or wider than any wire, is catheter.
        if !tracking, catheterTip + parameters.minimumWireExtension < wireEnd - 1,
            let beyondWidth = profileWidth((catheterTip + 3)..<wireEnd, refined: wireEnd)
        {
            let catheterWidth = profileWidth(max(catheterTip - 40, 0)..<max(catheterTip - 2, 0), refined: wireEnd)
            let wideAsCatheter =
                beyondWidth >= parameters.catheterWidthFloor
                || catheterWidth.map { beyondWidth >= parameters.wireNarrowing * $0 } ?? false
            if wideAsCatheter {
                catheterTip = wireEnd - 1
            }
        }
        remember(count: wireEnd, catheterTip: catheterTip)

        // Confidence: the share of the line carried by strong ridge pixels.
        var strong = 0
        for k in 0..<wireEnd where response[Int(best[k])] > high { strong += 1 }
        let confidence = Float(strong) / Float(wireEnd)
        let stride = max(1, 2 / reduction.factor)
        func fullResolution(_ k: Int) -> Point2 {
            Point2(x: (pointX[k] + 0.5) * factor - 0.5, y: (pointY[k] + 0.5) * factor - 0.5)
        }
        if catheterTip > 0 {
            for k in Swift.stride(from: 0, to: catheterTip, by: stride) { annotations.catheter.append(fullResolution(k)) }
            annotations.catheter.append(fullResolution(catheterTip))
            annotations.catheter.tip = fullResolution(catheterTip)
            annotations.catheter.confidence = confidence
        }
        // A wire must reach `minimumWireExtension` beyond a catheter; with none, any traced line is the wire.
        if (catheterTip > 0 ? catheterTip + parameters.minimumWireExtension : 0) < wireEnd - 1 {
            let (tip, pointsBefore) =
                tipRefiner.refine(
                    pixels, count: wireEnd, catheterTip: catheterTip,
                    point: fullResolution, isInsideField: isInsideField)
                ?? (fullResolution(wireEnd - 1), wireEnd - 1)
            for k in Swift.stride(from: 0, to: pointsBefore, by: stride) { annotations.guidewire.append(fullResolution(k)) }
            annotations.guidewire.append(tip)
            annotations.guidewire.tip = tip
            annotations.guidewire.confidence = confidence
        }
    }

    /// Whether the frame position (x, y) lies in the exposed field, away from its edge.
    private func isInsideField(_ x: Float, _ y: Float) -> Bool {
        let factor = Float(reduction.factor)
        let lx = Int(clampingFinite: ((x + 0.5) / factor).rounded(.down)), ly = Int(clampingFinite: ((y + 0.5) / factor).rounded(.down))
        guard lx >= 0, ly >= 0, lx < reduction.width, ly < reduction.height else { return false }
        return field.inside[ly * reduction.width + lx] != 0
    }

    // MARK: - Steps

    /// Marks the previous centre line, moved by `shift`, dilated by 3 pixels, in `prior`.
    private func stampPrior(shift: (dx: Float, dy: Float)) {
        if priorStamp == UInt32.max {
            prior.update(repeating: 0)
            priorStamp = 0
        }
        priorStamp += 1
        let w = reduction.width, h = reduction.height
        for k in 0..<previousCount {
            // A point moved off the image (or by a non-finite shift) stamps nothing.
            guard let x = Int(checked: (previousX[k] + shift.dx).rounded()),
                let y = Int(checked: (previousY[k] + shift.dy).rounded())
            else { continue }
            let top = max(y &- 3, 0), bottom = min(y &+ 4, h), left = max(x &- 3, 0), right = min(x &+ 4, w)
            guard top < bottom, left < right else { continue }
            for py in top..<bottom {
                for px in left..<right { prior[py * w + px] = priorStamp }
            }
        }
    }

    /// Traces from seeds (points of the predicted centre line first, then the strongest ridge pixels) and keeps
    /// the best line in `best`: the largest summed response, counting, when tracking, only the response within
    /// the predicted corridor (a contrast-filled vessel must not take the trace over from the device it holds);
    /// when not tracking, any line that enters the field (`entersField`) before any that does not.
    private func chooseCenterline(tracking: Bool, shift: (dx: Float, dy: Float)) {
        let w = reduction.width, h = reduction.height, response = evidence.response
        tracer.beginSearch()
        bestCount = 0
        var bestScore: Float = 0, bestEnters = false
        func consider(_ seed: Int) {
            guard tracer.isKept(seed), !tracer.wasVisited(seed) else { return }
            tracer.trace(from: seed, evidence: evidence)
            var score: Float = 0
            for k in 0..<tracer.pathCount {
                let i = Int(tracer.path[k])
                if !tracking || prior[i] == priorStamp { score += response[i] }
            }
            // A fresh detection prefers a line long enough to be a device that enters the field: devices come in
            // from outside it.
            let enters = !tracking && tracer.pathCount >= parameters.minimumLength && entersField()
            if (enters && !bestEnters) || (enters == bestEnters && score > bestScore) {
                bestScore = score
                bestEnters = enters
                bestCount = tracer.pathCount
                best.baseAddress!.update(from: tracer.path.baseAddress!, count: bestCount)
            }
        }
        if tracking {
            // Five points along the predicted line, at 10 %, 30 %, … 90 % of its length.
            for tenths in Swift.stride(from: 1, through: 9, by: 2) {
                let k = min(tenths * previousCount / 10, previousCount - 1)
                guard let x = Int(checked: (previousX[k] + shift.dx).rounded()),
                    let y = Int(checked: (previousY[k] + shift.dy).rounded())
                else { continue }
                var nearest = -1, nearestDistance = Int.max
                let top = max(y &- 3, 1), bottom = min(y &+ 4, h - 1), left = max(x &- 3, 1), right = min(x &+ 4, w - 1)
                guard top < bottom, left < right else { continue }
                for py in top..<bottom {
                    for px in left..<right {
                        let i = py * w + px, distance = (px - x) * (px - x) + (py - y) * (py - y)
                        if tracer.isKept(i), distance < nearestDistance { (nearest, nearestDistance) = (i, distance) }
                    }
                }
                if nearest >= 0 { consider(nearest) }
            }
        }
        for _ in 0..<parameters.seeds {
            var strongest = -1, strongestResponse: Float = 0
            for k in 0..<tracer.keptCount {
                let i = Int(tracer.kept[k])
                if response[i] > strongestResponse, !tracer.wasVisited(i) { (strongest, strongestResponse) = (i, response[i]) }
            }
            guard strongest >= 0 else { break }
            consider(strongest)
            if !tracer.wasVisited(strongest) { break }
        }
    }

    /// Whether the traced path enters the exposed field: one end lies within `parameters.entryDistance` of the
    /// image's border or of the collimator, and the other end `parameters.entryDepth` times further in (a line
    /// along a collimator edge or the border does not enter).
    private func entersField() -> Bool {
        let w = reduction.width, h = reduction.height, reach = Int(clampingFinite: parameters.entryDistance.rounded(.up))
        func depth(_ i: Int) -> Int {
            let x = i % w, y = i / w
            var nearest = min(x, y, w - 1 - x, h - 1 - y)
            guard nearest > 0 else { return 0 }
            for dy in Swift.stride(from: -reach, through: reach, by: 2) {
                for dx in Swift.stride(from: -reach, through: reach, by: 2) {
                    let px = x + dx, py = y + dy
                    guard px >= 0, py >= 0, px < w, py < h, field.outside[py * w + px] != 0 else { continue }
                    nearest = min(nearest, max(abs(dx), abs(dy)))
                }
            }
            return nearest
        }
        let first = depth(Int(tracer.path[0])), last = depth(Int(tracer.path[tracer.pathCount - 1]))
        let entry = Float(min(first, last)), inner = Float(max(first, last))
        return entry <= parameters.entryDistance && inner >= parameters.entryDepth * max(entry, 1)
            && inner >= 2 * parameters.entryDistance
    }

    /// Puts the proximal end first: when tracking, the orientation whose ends lie nearer the predicted line's
    /// ends (its proximal end and its tip: a line that grew far at one end, as a trace running on into a
    /// contrast-filled vessel does, keeps its direction); otherwise the end nearer the image border (devices enter
    /// the field from outside it), unless neither end is near the border and the device clearly goes on beyond the
    /// other end (a partial line: see `continuation(beyond:)`).
    private func orient(tracking: Bool, shift: (dx: Float, dy: Float)) {
        let w = reduction.width, h = reduction.height
        let first = Int(best[0]), last = Int(best[bestCount - 1])
        func point(_ i: Int) -> (x: Float, y: Float) { (Float(i % w), Float(i / w)) }
        var reverse: Bool
        if tracking {
            let base = (x: previousX[0] + shift.dx, y: previousY[0] + shift.dy)
            let tip = (x: previousX[previousCount - 1] + shift.dx, y: previousY[previousCount - 1] + shift.dy)
            func distance(_ p: (x: Float, y: Float), _ q: (x: Float, y: Float)) -> Float {
                ((p.x - q.x) * (p.x - q.x) + (p.y - q.y) * (p.y - q.y)).squareRoot()
            }
            let (a, b) = (point(first), point(last))
            reverse = distance(a, tip) + distance(b, base) < distance(a, base) + distance(b, tip)
        } else {
            func border(_ p: (x: Float, y: Float)) -> Float { min(p.x, p.y, Float(w - 1) - p.x, Float(h - 1) - p.y) }
            reverse = border(point(last)) < border(point(first))
            // A line away from the image's border (a partial line, e.g. a wire found only beyond its balloon): where
            // the device goes on beyond the end taken for the tip, clearly darker than the background beside it (into
            // its balloon or catheter), and not beyond the other end, that end is the proximal one: a free tip ends in
            // background.
            if min(border(point(first)), border(point(last))) > Self.borderReach {
                let (proximal, distal) = reverse ? (bestCount - 1, 0) : (0, bestCount - 1)
                if let beyondTip = continuation(beyond: distal), beyondTip > Self.deviceContinuation,
                    beyondTip - (continuation(beyond: proximal) ?? -.infinity) > Self.continuationMargin
                {
                    reverse.toggle()
                }
            }
        }
        if reverse {
            var i = 0, j = bestCount - 1
            while i < j {
                best.swapAt(i, j)
                i += 1
                j -= 1
            }
        }
    }

    /// Orienting a partial line by what lies beyond its ends: an end this many level pixels from the image's border
    /// or nearer is oriented by the border alone; a device goes on beyond an end whose continuation is darker than the
    /// background beside it by `deviceContinuation` (log units, ≈ 14 %), and by `continuationMargin` more than beyond
    /// the other end.
    private static let borderReach: Float = 12
    private static let deviceContinuation: Float = 0.15
    private static let continuationMargin: Float = 0.05

    /// How much darker (log attenuation of the level) the straight continuation of `best` beyond its end `k` (0 or
    /// the last point), 4 to 14 pixels out along the direction of its last 8 pixels, is than the background 8 pixels
    /// to either side of it; nil where those samples leave the exposed field.
    private func continuation(beyond k: Int) -> Float? {
        let w = reduction.width, h = reduction.height, span = 8
        guard bestCount > span else { return nil }
        let inner = Int(best[k == 0 ? span : k - span]), end = Int(best[k])
        var dx = Float(end % w - inner % w), dy = Float(end / w - inner / w)
        let length = (dx * dx + dy * dy).squareRoot()
        guard length > 0 else { return nil }
        (dx, dy) = (dx / length, dy / length)
        func sample(_ x: Float, _ y: Float) -> Float? {
            let px = Int(clampingFinite: x.rounded()), py = Int(clampingFinite: y.rounded())
            guard px >= 0, py >= 0, px < w, py < h, field.inside[py * w + px] != 0 else { return nil }
            return level[py * w + px]
        }
        var along: Float = 0, side: Float = 0, count: Float = 0
        for step in 4...14 {
            let x = Float(end % w) + dx * Float(step), y = Float(end / w) + dy * Float(step)
            guard let centre = sample(x, y), let left = sample(x - dy * 8, y + dx * 8),
                let right = sample(x + dy * 8, y - dx * 8)
            else { return nil }
            along += centre
            side += 0.5 * (left + right)
            count += 1
        }
        return (along - side) / count
    }

    /// How catheter-like point `k` of `best` is: on the classic path the widest scale's share of the widest and
    /// narrowest scales' responses (higher on a catheter, or a contrast-filled vessel, than on a wire); on the
    /// learned path the network's catheter probability.
    private func widthShare(_ k: Int) -> Float {
        let i = Int(best[k])
        guard let filter else { return network!.catheterProbability(at: i) }
        let wide = filter.scaleResponses[filter.scales.count - 1][i], thin = filter.scaleResponses[0][i]
        return wide / max(wide + thin, 1e-20)
    }

    /// What is measured along the line: the width share (`widthShare`) or the contrast (`lineContrast`, measured in
    /// `split` on the classic path).
    private enum LineMeasure { case widthShare, contrast }

    /// `measure` at point `k` of `best`.
    private func value(of measure: LineMeasure, at k: Int) -> Float {
        measure == .contrast ? lineContrast[k] : widthShare(k)
    }

    /// The mean of `measure` over `range` of `best` (0 when it is empty).
    private func mean(of measure: LineMeasure = .widthShare, over range: Range<Int>) -> Float {
        var total: Float = 0
        for k in range { total += value(of: measure, at: k) }
        return total / Float(max(range.count, 1))
    }

    /// The contrast of each point of `best` against the level 5 pixels to either side of the line (log units; the
    /// line's direction from the points 3 before and after; a side behind the collimator or beyond the image is
    /// left out, and with both out the contrast is 0), into `lineContrast`.
    private func measureLineContrast() {
        let w = reduction.width, h = reduction.height, side: Float = 5
        for k in 0..<bestCount {
            let i = Int(best[k]), before = Int(best[max(k - 3, 0)]), after = Int(best[min(k + 3, bestCount - 1)])
            var dx = Float(after % w - before % w), dy = Float(after / w - before / w)
            let length = max((dx * dx + dy * dy).squareRoot(), 1e-6)
            (dx, dy) = (dx / length, dy / length)
            func sample(_ t: Float) -> Float? {
                let x = Int(clampingFinite: (Float(i % w) - dy * t).rounded()), y = Int(clampingFinite: (Float(i / w) + dx * t).rounded())
                guard x >= 0, y >= 0, x < w, y < h, field.outside[y * w + x] == 0 else { return nil }
                return level[y * w + x]
            }
            switch (sample(side), sample(-side)) {
            case let (left?, right?): lineContrast[k] = level[i] - 0.5 * (left + right)
            case let (left?, nil): lineContrast[k] = level[i] - left
            case let (nil, right?): lineContrast[k] = level[i] - right
            case (nil, nil): lineContrast[k] = 0
            }
        }
    }

    /// How many points before the catheter's tip its end's contrast is averaged over.
    private static let catheterEndSpan = 40

    /// The best single change point of `measure` within `range` of `best` (the last index of the first part),
    /// where the part before is higher (`narrowing`) or lower than the part after by at least `margin` (and, for the
    /// contrast, the lower part at most `wireContrastShare` of the higher); nil when there is none.
    private func changePoint(
        in range: Range<Int>, narrowing: Bool, margin: Float,
        of measure: LineMeasure = .widthShare
    ) -> Int? {
        func value(_ k: Int) -> Float { self.value(of: measure, at: k) }
        let n = range.count, minimumSide = 8
        guard n >= 2 * minimumSide else { return nil }
        var total: Float = 0
        for k in range { total += value(k) }
        var before: Float = 0, split: Int?, largest: Float = 0
        for k in range {
            before += value(k)
            let left = k - range.lowerBound + 1, right = n - left
            guard left >= minimumSide, right >= minimumSide else { continue }
            let meanBefore = before / Float(left), meanAfter = (total - before) / Float(right)
            let (wider, narrower) = narrowing ? (meanBefore, meanAfter) : (meanAfter, meanBefore)
            guard wider > narrower + margin,
                measure == .widthShare || narrower <= parameters.wireContrastShare * wider
            else { continue }
            let statistic = (wider - narrower) * (Float(left * right) / Float(n)).squareRoot()
            if statistic > largest { (split, largest) = (k, statistic) }
        }
        return split
    }

    /// Splits `best` into catheter and wire: returns the catheter tip's index (0 when the whole line is a wire,
    /// `count - 1` when it is all catheter) and the wire's end. A ridge that widens by `vesselWidening` towards
    /// the end is a contrast-filled vessel the trace ran into beyond the wire's tip: it is cut off first, if the
    /// line's last `minimumLength` points are that much wider too (a wire beyond a balloon or a crossing edge is
    /// thin again) and at least `minimumLength` would be left (near a collimator's edge the share is unreliable). The
    /// catheter's tip is where the line's contrast drops (a catheter, with the wire inside it, is darker than the
    /// wire alone; `catheterContrastDrop`, `wireContrastShare`), moved back by 1.5 σ of the widest scale; with no
    /// such drop the line is all catheter or all wire by its mean width share. On the learned path the network
    /// does not answer to vessels (no cut), and the tip is where the catheter probability falls through one half
    /// near its change point, moved back by `learnedCatheterTipBack`.
    private func split() -> (catheterTip: Int, wireEnd: Int) {
        let w = reduction.width
        var wireEnd = bestCount
        if filter != nil,
            let widening = changePoint(in: 0..<bestCount, narrowing: false, margin: parameters.vesselWidening),
            widening + 1 >= parameters.minimumLength,
            mean(over: max(bestCount - parameters.minimumLength, widening + 1)..<bestCount)
                >= mean(over: 0..<(widening + 1)) + parameters.vesselWidening
        {
            wireEnd = widening + 1
        }
        let margin = filter != nil ? parameters.catheterWidening : parameters.learnedCatheterMargin
        var catheterTip: Int
        let found: Int?
        if filter != nil {
            measureLineContrast()
            found = changePoint(in: 0..<wireEnd, narrowing: true, margin: parameters.catheterContrastDrop, of: .contrast)
        } else {
            found = changePoint(in: 0..<wireEnd, narrowing: true, margin: margin)
        }
        if var narrowing = found {
            if filter == nil {
                // Where the catheter probability crosses one half.
                if widthShare(narrowing) >= 0.5 {
                    while narrowing + 1 < wireEnd - 1, widthShare(narrowing + 1) >= 0.5 { narrowing += 1 }
                } else {
                    while narrowing > 1, widthShare(narrowing) < 0.5 { narrowing -= 1 }
                }
            }
            let back = filter.map { 1.5 * $0.scales[$0.scales.count - 1] } ?? parameters.learnedCatheterTipBack
            let end = Int(best[narrowing])
            while narrowing > 0 {
                let i = Int(best[narrowing - 1])
                let dx = Float(i % w - end % w), dy = Float(i / w - end / w)
                if dx * dx + dy * dy > back * back { break }
                narrowing -= 1
            }
            catheterTip = max(narrowing, 1)
        } else {
            var total: Float = 0
            for k in 0..<wireEnd { total += widthShare(k) }
            catheterTip = total / Float(wireEnd) > 0.5 - margin / 2 ? wireEnd - 1 : 0
        }
        return (catheterTip, wireEnd)
    }

    /// Tracking. On the classic path the wire may leave the predicted centre line (moved by the motion, 3 pixels
    /// either side) by at most `maximumTipStep` along the line, and only over wire-like ridge (a width share like
    /// the wire's so far); on the learned path it goes on as far as the centre-line probability stays above
    /// `learnedTipProbability`, inside contrast-filled vessels too. The catheter's tip, which moves with the
    /// anatomy, is smoothed: it goes a third of the way from the prediction to the measurement, or stays at the
    /// prediction when the measurement is beyond the step (or, on the learned path, inside a contrast-filled vessel);
    /// a line that stops short of the prediction is all catheter, and the prediction is kept (`heldCatheterTip`).
    private func holdTips(wireEnd: Int, catheterTip: Int, shift: (dx: Float, dy: Float)) -> (Int, Int) {
        let w = reduction.width, limit = parameters.maximumTipStep
        func position(_ k: Int) -> (x: Float, y: Float) { (Float(Int(best[k]) % w), Float(Int(best[k]) / w)) }
        func nearestIndex(to p: (x: Float, y: Float), below end: Int) -> (index: Int, distance: Float) {
            var index = 0, distance = Float.greatestFiniteMagnitude
            for k in 0..<end {
                let q = position(k)
                let d = ((q.x - p.x) * (q.x - p.x) + (q.y - p.y) * (q.y - p.y)).squareRoot()
                if d < distance { (index, distance) = (k, d) }
            }
            return (index, distance)
        }
        var split = min(catheterTip, wireEnd - 1)
        var stoppedShort = false
        defer {
            framesShortOfCatheter = stoppedShort ? framesShortOfCatheter + 1 : 0
            if !stoppedShort { heldCatheterTip = nil }
        }
        if previousCatheterTip > 0 {
            let tip = heldCatheterTip ?? (previousX[previousCatheterTip], previousY[previousCatheterTip])
            let predicted = (x: tip.x + shift.dx, y: tip.y + shift.dy)
            let measured = position(split)
            let dx = measured.x - predicted.x, dy = measured.y - predicted.y
            // On the learned path a measurement inside a contrast-filled vessel is not trusted either.
            let inVessel = network.map { $0.vesselProbability(at: Int(best[split])) >= 0.5 } ?? false
            let target =
                inVessel || (dx * dx + dy * dy).squareRoot() > limit
                ? predicted : (x: predicted.x + dx / 3, y: predicted.y + dy / 3)
            let nearestSplit = nearestIndex(to: target, below: wireEnd)
            if nearestSplit.distance <= limit {
                split = nearestSplit.index
            } else if nearestSplit.index == wireEnd - 1 {
                // The line stops short of the predicted catheter tip: all of it is catheter.
                split = wireEnd - 1
                stoppedShort = framesShortOfCatheter < Self.shortLineMemory
                if stoppedShort { heldCatheterTip = predicted }
            }
        }
        var end = wireEnd
        // Where the line leaves the predicted corridor (three points in a row outside it), past the catheter.
        var anchor = end - 1, outside = 0
        for k in (split + 1)..<max(end, split + 1) {
            outside = prior[Int(best[k])] == priorStamp ? 0 : outside + 1
            if outside == 3 {
                anchor = k - 3
                break
            }
        }
        if network != nil {
            if anchor > split {
                // The network's centre-line probability answers to devices only: the learned wire goes on as far
                // as it stays at the tip's probability, over dips of at most `learnedTipGap` points (on a real
                // wire the probability wavers around it).
                var k = anchor + 1, below = 0
                while k < end {
                    below = evidence.response[Int(best[k])] >= parameters.learnedTipProbability ? 0 : below + 1
                    k += 1
                    if below > parameters.learnedTipGap { break }
                }
                end = k - below
            }
        } else {
            // The ridge filter also answers to vessels: the classic wire moves at most `maximumTipStep` beyond the
            // corridor, over ridge as narrow as the wire's inside it (when the line leaves the corridor at the
            // catheter's tip there is no wire to compare with: over ridge narrower than the catheter's).
            let start = max(anchor, split), reach = start + Int(clampingFinite: limit.rounded(.up))
            var k = start + 1
            if anchor > split {
                let wireRatio = mean(over: (split + 1)..<(anchor + 1))
                while k < end, k <= reach, widthShare(k) < wireRatio + parameters.vesselWidening { k += 1 }
            } else {
                let catheterRatio = mean(over: 0..<(split + 1))
                while k < end, k <= reach, widthShare(k) < catheterRatio - parameters.catheterWidening { k += 1 }
            }
            end = min(end, k)
        }
        return (end, split)
    }

    /// Moves each pixel of the line to the response's peak across the line (a parabola through three samples
    /// along the normal).
    private func refineSubpixel(count: Int) {
        let w = reduction.width, response = evidence.response
        for k in 0..<count {
            let i = Int(best[k])
            let (nx, ny) = evidence.normal(at: i)
            let ox = Int(clampingFinite: nx.rounded()), oy = Int(clampingFinite: ny.rounded())
            let minus = response[i - oy * w - ox], centre = response[i], plus = response[i + oy * w + ox]
            let curvature = minus - 2 * centre + plus
            let t: Float = curvature < 0 ? min(max(0.5 * (minus - plus) / curvature, -0.5), 0.5) : 0
            pointX[k] = Float(i % w) + t * Float(ox)
            pointY[k] = Float(i / w) + t * Float(oy)
        }
    }

    /// The full width at half maximum (level pixels) of the line's mean profile across `range` of the points
    /// (the first `refined` have subpixel positions): the level sampled at −6…6 pixels across the line (its
    /// direction from the points 3 before and after), averaged, less the background at ±5 and ±6. Points whose
    /// samples reach behind the collimator are left out, and so are those the network takes for a contrast-filled
    /// vessel (a wire inside one looks as wide as the vessel). Nil when fewer than `minimumWireExtension` points
    /// are left or the mean profile has no peak above its background.
    private func profileWidth(_ range: Range<Int>, refined: Int) -> Float? {
        let w = reduction.width, h = reduction.height, reach = 6, span = 3
        var sums = InlineArray<13, Float>(repeating: 0)
        var count = 0
        func sample(_ x: Float, _ y: Float) -> Float? {
            let x0 = Int(clampingFinite: x.rounded(.down)), y0 = Int(clampingFinite: y.rounded(.down))
            guard x0 >= 0, y0 >= 0, x0 + 1 < w, y0 + 1 < h, field.outside[y0 * w + x0] == 0,
                field.outside[(y0 + 1) * w + x0 + 1] == 0
            else { return nil }
            let fx = x - Float(x0), fy = y - Float(y0), i = y0 * w + x0
            let top = level[i] + fx * (level[i + 1] - level[i])
            let bottom = level[i + w] + fx * (level[i + w + 1] - level[i + w])
            return top + fy * (bottom - top)
        }
        for k in range where k >= span && k + span < refined {
            if let network, network.vesselProbability(at: Int(best[k])) >= 0.5 { continue }
            var dx = pointX[k + span] - pointX[k - span], dy = pointY[k + span] - pointY[k - span]
            let length = (dx * dx + dy * dy).squareRoot()
            guard length > 0 else { continue }
            (dx, dy) = (dx / length, dy / length)
            var profile = InlineArray<13, Float>(repeating: 0)
            var complete = true
            for t in -reach...reach {
                guard let value = sample(pointX[k] - dy * Float(t), pointY[k] + dx * Float(t)) else {
                    complete = false
                    break
                }
                profile[t + reach] = value
            }
            guard complete else { continue }
            for t in 0...(2 * reach) { sums[t] += profile[t] }
            count += 1
        }
        guard count >= parameters.minimumWireExtension else { return nil }
        let background = (sums[0] + sums[1] + sums[2 * reach - 1] + sums[2 * reach]) / 4
        var peakIndex = reach
        for t in (reach - 1)...(reach + 1) where sums[t] > sums[peakIndex] { peakIndex = t }
        let half = background + 0.5 * (sums[peakIndex] - background)
        guard sums[peakIndex] > background else { return nil }
        // The half-maximum crossings on either side of the peak, interpolated linearly.
        var left = Float(0), right = Float(2 * reach)
        var t = peakIndex
        while t > 0, sums[t - 1] >= half { t -= 1 }
        if t > 0 { left = Float(t) - (sums[t] - half) / (sums[t] - sums[t - 1]) }
        t = peakIndex
        while t < 2 * reach, sums[t + 1] >= half { t += 1 }
        if t < 2 * reach { right = Float(t) + (sums[t] - half) / (sums[t] - sums[t + 1]) }
        return right - left
    }

    private func remember(count: Int, catheterTip: Int) {
        previousX.baseAddress!.update(from: pointX.baseAddress!, count: count)
        previousY.baseAddress!.update(from: pointY.baseAddress!, count: count)
        previousCount = count
        previousCatheterTip = catheterTip
    }
}
