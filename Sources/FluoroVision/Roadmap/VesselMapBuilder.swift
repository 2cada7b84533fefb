import FluoroCore
import FluoroConcurrency

/// Builds a vessel map from a run's contrast frames, in the coordinates of the motion reference:
///
/// - every frame is box-averaged to the working level in the log domain and moved onto the reference with its
///   motion estimate (bilinear);
/// - before contrast, frames are averaged into the mask; the noise σ of the smoothed subtraction (frame − mask,
///   exposure offset removed by the median) is measured on them;
/// - a frame whose opacified share of the field rises above the mask frames' by `contrastShare` starts the
///   contrast phase; the peak opacification of every pixel is estimated by a matched filter in time (as in
///   matched-filter DSA): the contrast frames' subtractions weighted by how much contrast each frame shows
///   (its opacified share above the mask frames'), scaled to the strongest frame; its noise is known from the
///   weights, so the thresholds are in σ of the estimate;
/// - when the contrast washes out (or the frame range ends, or after `maximumContrastFrames`), pixels whose peak exceeds `vesselThreshold` σ and
///   lies inside the lumen (`VesselEdgeModel`), in connected regions of at least `minimumRegion` pixels, form the vessel
///   map (an opacity 0…255 at full resolution, ready to be drawn).
///
/// All memory is allocated in `init`; `add` allocates nothing.
public final class VesselMapBuilder {
    public enum Phase: Sendable, Equatable {
        /// Collecting pre-contrast frames; contrast frames; contrast over, the map waiting for `completeMap()`
        /// (only with `deferredCompletion`); the map ready.
        case mask, contrast, completing, complete
    }

    public let geometry: FrameGeometry
    public let parameters: RoadmapParameters
    /// When the contrast is over, `add` leaves the map `completing` instead of completing it (tens of
    /// milliseconds at 1024²), so that the caller can complete it off its hot path with `completeMap()`.
    public let deferredCompletion: Bool
    public private(set) var phase = Phase.mask
    public private(set) var maskFrames = 0
    public private(set) var contrastFrames = 0
    /// The last frame's opacified share of the field (diagnostics and tests).
    public private(set) var lastShare: Float = 0
    /// Whether the map is built per cardiac phase (decided by the first contrast frame: it has a phase).
    public private(set) var gated = false
    /// The vessel maps at full resolution, in reference coordinates, one per cardiac phase bin (one when not
    /// gated): 0 outside vessels, up to 255 where the opacification was strongest. Valid once complete.
    private let maps: [UnsafeMutableBufferPointer<UInt8>]
    private var vesselPixelsPerBin: [Int]
    private var framesPerBin: [Int]
    /// The bin the per-bin buffers (`peak`, `map`) refer to.
    private var bin = 0

    private let reduction: LogReduction
    private let edgeModel: VesselEdgeModel
    private let splitter: WorkSplitter?
    private lazy var alignment = OwnedWork(self) { $0.align(rows: $1) }
    /// The shift `align` is applying (level pixels).
    private var alignShift = (dx: Float(0), dy: Float(0))
    private let level: UnsafeMutableBufferPointer<Float>
    private let aligned: UnsafeMutableBufferPointer<Float>
    private let mask: UnsafeMutableBufferPointer<Float>
    private let difference: UnsafeMutableBufferPointer<Float>
    /// Per bin: the contrast frames' subtractions summed with their weights; the peak opacification once complete.
    private let peaks: [UnsafeMutableBufferPointer<Float>]
    /// Per bin: the sum of the squared weights, and the largest weight.
    private var squaredWeights: [Float]
    private var largestWeight: [Float]
    private var peak: UnsafeMutableBufferPointer<Float> { peaks[bin] }
    private var map: UnsafeMutableBufferPointer<UInt8> { maps[bin] }
    private let scratch: UnsafeMutableBufferPointer<Float>
    private let stack: UnsafeMutableBufferPointer<Int32>
    /// Sum of the mask frames' squared subtractions per pixel: the local noise (dense anatomy is noisier).
    private let noiseSum: UnsafeMutableBufferPointer<Float>
    private var noiseFrames = 0
    private let regionLabel: UnsafeMutableBufferPointer<Int32>
    private let histogram: UnsafeMutableBufferPointer<Int32>
    private var maskShare: Float = 0
    private var noise: Float = 0
    private var belowInARow = 0

    /// With a `splitter`, each frame's reduction and alignment share their rows between two threads.
    public init(
        geometry: FrameGeometry, parameters: RoadmapParameters = RoadmapParameters(), deferredCompletion: Bool = false,
        splitter: WorkSplitter? = nil
    ) {
        self.geometry = geometry
        self.parameters = parameters
        self.deferredCompletion = deferredCompletion
        self.splitter = splitter
        reduction = LogReduction(geometry: geometry, largestSide: parameters.levelSide, splitter: splitter)
        // The map's own smoothing ([1 2 1] in both directions) adds a variance of ½ pixel² to the imaging blur.
        edgeModel = VesselEdgeModel(blur: (parameters.imagingBlur * parameters.imagingBlur + 0.5).squareRoot())
        let pixels = reduction.width * reduction.height
        level = .allocate(capacity: pixels)
        aligned = .allocate(capacity: pixels)
        mask = .allocate(capacity: pixels)
        difference = .allocate(capacity: pixels)
        let bins = max(parameters.cardiacBins, 1)
        peaks = (0..<bins).map { _ in .allocate(capacity: pixels) }
        squaredWeights = Array(repeating: 0, count: bins)
        largestWeight = Array(repeating: 0, count: bins)
        maps = (0..<bins).map { _ in .allocate(capacity: geometry.pixelCount) }
        vesselPixelsPerBin = Array(repeating: 0, count: bins)
        framesPerBin = Array(repeating: 0, count: bins)
        scratch = .allocate(capacity: pixels)
        stack = .allocate(capacity: pixels)
        noiseSum = .allocate(capacity: pixels)
        regionLabel = .allocate(capacity: pixels)
        histogram = .allocate(capacity: Self.bins)
        reset()
    }

    deinit {
        for buffer in [level, aligned, mask, difference, scratch, noiseSum] + peaks { buffer.deallocate() }
        for buffer in maps { buffer.deallocate() }
        stack.deallocate()
        regionLabel.deallocate()
        histogram.deallocate()
    }

    /// Starts again: no mask, no contrast, empty map.
    public func reset() {
        phase = .mask
        maskFrames = 0
        contrastFrames = 0
        maskShare = 0
        noise = 0
        belowInARow = 0
        gated = false
        for index in maps.indices {
            vesselPixelsPerBin[index] = 0
            framesPerBin[index] = 0
            squaredWeights[index] = 0
            largestWeight[index] = 0
            peaks[index].update(repeating: 0)
            maps[index].update(repeating: 0)
        }
        mask.update(repeating: 0)
        noiseSum.update(repeating: 0)
        noiseFrames = 0
    }

    /// The map to draw on a frame at `cardiacPhase` (NaN: unknown, the first bin's), and its vessel pixels.
    public func map(forPhase cardiacPhase: Float) -> (opacity: UnsafeMutableBufferPointer<UInt8>, vesselPixels: Int) {
        let index = binIndex(cardiacPhase)
        return (maps[index], vesselPixelsPerBin[index])
    }

    private func binIndex(_ cardiacPhase: Float) -> Int {
        guard gated, cardiacPhase.isFinite else { return 0 }
        return min(max(Int(clampingFinite: cardiacPhase * Float(maps.count)), 0), maps.count - 1)
    }

    /// Adds a frame whose shift against the reference is (dx, dy) (full-resolution pixels), at `cardiacPhase`
    /// (NaN when unknown). `last` completes the map after this frame whatever the contrast does (the end of a
    /// frame range).
    public func add(
        _ pixels: UnsafeBufferPointer<UInt16>, dx: Float, dy: Float, cardiacPhase: Float = .nan,
        last: Bool = false
    ) {
        guard phase == .mask || phase == .contrast else { return }
        reduction.reduce(pixels, into: level.baseAddress!)
        let factor = Float(reduction.factor)
        align(dx: dx / factor, dy: dy / factor)
        if maskFrames == 0 {
            mask.baseAddress!.update(from: aligned.baseAddress!, count: aligned.count)
            maskFrames = 1
            return
        }
        subtractMask()
        let share = opacifiedShare()
        lastShare = share
        switch phase {
        case .mask:
            if maskFrames >= parameters.minimumMaskFrames, share > maskShare + parameters.contrastShare {
                phase = .contrast
                contrastFrames = 1
                gated = maps.count > 1 && cardiacPhase.isFinite
                bin = binIndex(cardiacPhase)
                addToPeak()
            } else {
                for i in 0..<noiseSum.count { noiseSum[i] += difference[i] * difference[i] }
                noiseFrames += 1
                // Running averages of the mask (over maskFrames + 1 frames), and of the mask frames' own opacified
                // share (measured from the second frame on: maskFrames shares).
                let weight = 1 / Float(maskFrames + 1)
                for i in 0..<mask.count { mask[i] += (aligned[i] - mask[i]) * weight }
                maskShare += (share - maskShare) / Float(maskFrames)
                maskFrames += 1
            }
        case .contrast:
            contrastFrames += 1
            bin = binIndex(cardiacPhase)
            addToPeak()
            belowInARow = share > maskShare + parameters.contrastShare ? 0 : belowInARow + 1
            if belowInARow >= parameters.washOutFrames || contrastFrames >= parameters.maximumContrastFrames { contrastEnded() }
        case .completing, .complete:
            break
        }
        if last, phase == .contrast { contrastEnded() }
    }

    /// Completes the map now if contrast was seen (the end of the frames it is built from).
    public func finish() {
        if phase == .contrast || phase == .completing { complete() }
    }

    /// Completes a map left `completing` (by `add` with `deferredCompletion`); may run on another thread than
    /// `add`, as long as nothing else touches the builder meanwhile.
    public func completeMap() {
        if phase == .completing { complete() }
    }

    private func contrastEnded() {
        if deferredCompletion {
            phase = .completing
        } else {
            complete()
        }
    }

    // MARK: - Steps

    /// `aligned` = the level image sampled at p + (dx, dy): the frame moved back onto the reference.
    private func align(dx: Float, dy: Float) {
        alignShift = (dx, dy)
        alignment.perform(0..<reduction.height, splitter: splitter)
    }

    /// Rows `rows` of `align(dx:dy:)`.
    private func align(rows: Range<Int>) {
        let (dx, dy) = alignShift, w = reduction.width, h = reduction.height
        let ix = Int(clampingFinite: dx.rounded(.down)), iy = Int(clampingFinite: dy.rounded(.down))
        let fx = dx - Float(ix), fy = dy - Float(iy)
        let w00 = (1 - fx) * (1 - fy), w01 = fx * (1 - fy), w10 = (1 - fx) * fy, w11 = fx * fy
        for y in rows {
            let y0 = min(max(y + iy, 0), h - 1), y1 = min(max(y + iy + 1, 0), h - 1)
            for x in 0..<w {
                let x0 = min(max(x + ix, 0), w - 1), x1 = min(max(x + ix + 1, 0), w - 1)
                aligned[y * w + x] =
                    w00 * level[y0 * w + x0] + w01 * level[y0 * w + x1]
                    + w10 * level[y1 * w + x0] + w11 * level[y1 * w + x1]
            }
        }
    }

    /// `difference` = smoothed (aligned − mask − median offset): opacification, positive where contrast adds
    /// attenuation. The median removes the exposure change of automatic dose control.
    private func subtractMask() {
        for i in 0..<difference.count { difference[i] = aligned[i] - mask[i] }
        let offset = quantile(difference, 0.5)
        for i in 0..<difference.count { difference[i] -= offset }
        smooth(difference)
    }

    /// The share of the level whose opacification exceeds `opacityThreshold` σ, σ measured on the mask frames
    /// (the spread of the smoothed subtraction's lower half, which contrast does not reach).
    private func opacifiedShare() -> Float {
        if phase == .mask {
            // Robust σ from below the median: 1.4826 × median absolute deviation of the negative side.
            let lower = quantile(difference, 0.25)
            let estimate = -lower / 0.6745
            noise = maskFrames <= 1 ? estimate : noise + (estimate - noise) / Float(maskFrames)
        }
        let threshold = parameters.opacityThreshold * max(noise, 1e-6)
        var count = 0
        for i in 0..<difference.count where difference[i] > threshold { count += 1 }
        return Float(count) / Float(difference.count)
    }

    /// Adds the frame's subtraction to the bin's sum, weighted by the contrast the frame shows (its opacified
    /// share above the mask frames'): the matched filter in time, best where the contrast in a pixel rises and
    /// falls with the contrast in the field.
    private func addToPeak() {
        framesPerBin[bin] += 1
        let weight = max(lastShare - maskShare, 0)
        squaredWeights[bin] += weight * weight
        largestWeight[bin] = max(largestWeight[bin], weight)
        for i in 0..<peak.count { peak[i] += weight * difference[i] }
    }

    /// Zeroes the peak map's connected regions (8-neighbours, peak > 0) smaller than `minimumRegion`.
    private func removeSmallRegions() {
        regionLabel.update(repeating: 0)
        var label: Int32 = 0
        for start in 0..<peak.count where peak[start] > 0 && regionLabel[start] == 0 {
            label += 1
            let current = label
            regionLabel[start] = current
            stack[0] = Int32(start)
            let size = flood(from: 1) { j in
                guard self.peak[j] > 0, self.regionLabel[j] == 0 else { return false }
                self.regionLabel[j] = current
                return true
            }
            if size < parameters.minimumRegion {
                peak[start] = 0
                stack[0] = Int32(start)
                _ = flood(from: 1) { j in
                    guard self.regionLabel[j] == current, self.peak[j] > 0 else { return false }
                    self.peak[j] = 0
                    return true
                }
            }
        }
    }

    /// Visits the pixels 8-connected to those on `stack[0..<count]`, pushing each neighbour `take` accepts
    /// (`take` marks it, so it is not taken twice); returns how many pixels were visited.
    private func flood(from count: Int, take: (Int) -> Bool) -> Int {
        let w = reduction.width, h = reduction.height
        var top = count, visited = 0
        while top > 0 {
            top -= 1
            let i = Int(stack[top])
            visited += 1
            let x = i % w, y = i / w
            for ny in max(y - 1, 0)...min(y + 1, h - 1) {
                for nx in max(x - 1, 0)...min(x + 1, w - 1) where take(ny * w + nx) {
                    stack[top] = Int32(ny * w + nx)
                    top += 1
                }
            }
        }
        return visited
    }

    /// Thresholds the peak map (hysteresis between `weakThreshold` and `vesselThreshold` local σ, inside
    /// the lumen as the edge model places its border, regions of at least `minimumRegion` pixels) and writes it
    /// at full resolution (bilinear), 0…255 over 1…3 thresholds.
    private func complete() {
        let bins = gated ? maps.count : 1
        // The local noise σ into `level` (free now): the mask frames' squared subtractions averaged over a
        // 31 × 31 box, or the global σ without mask frames.
        if noiseFrames > 0 {
            boxMean(noiseSum, radius: 15, into: level)
            let scale = 1 / Float(noiseFrames)
            for i in 0..<level.count { level[i] = (level[i] * scale).squareRoot() }
        } else {
            level.update(repeating: max(noise, 1e-6))
        }
        for index in 0..<bins where framesPerBin[index] > 0 {
            bin = index
            completeBin(noise: noise)
        }
        // A phase no contrast frame fell in takes the nearest phase's map.
        for index in 0..<bins where framesPerBin[index] == 0 {
            for distance in 1..<bins {
                let after = (index + distance) % bins, before = (index - distance + bins) % bins
                guard framesPerBin[after] > 0 || framesPerBin[before] > 0 else { continue }
                let nearest = framesPerBin[after] > 0 ? after : before
                maps[index].baseAddress!.update(from: maps[nearest].baseAddress!, count: maps[index].count)
                vesselPixelsPerBin[index] = vesselPixelsPerBin[nearest]
                break
            }
        }
        bin = 0
        phase = .complete
    }

    /// Thresholds the current bin's peak map into its full-resolution map (`level` holds the local σ of one
    /// frame's subtraction, `noise` the global one).
    private func completeBin(noise: Float) {
        let w = reduction.width, h = reduction.height, factor = Float(reduction.factor)
        // The weighted sum Σ wᵢdᵢ becomes the least-squares opacification at the strongest contrast,
        // (Σ wᵢdᵢ / Σ wᵢ²) · max w; its noise is σ · max w / √(Σ wᵢ²).
        let squares = max(squaredWeights[bin], 1e-12)
        let scale = largestWeight[bin] / squares
        for i in 0..<peak.count { peak[i] *= scale }
        let noiseScale = max(largestWeight[bin] / squares.squareRoot(), 1e-6)
        let threshold = parameters.vesselThreshold * max(noise, 1e-6) * noiseScale
        // The background's level, in local σ: the median over the field, which is mostly background.
        for i in 0..<peak.count { scratch[i] = peak[i] / level[i] }
        let background = max(quantile(scratch, 0.5), 0)
        difference.update(repeating: .nan)
        // Hysteresis: pixels above `weakThreshold` σ and inside their vessel's lumen are kept when connected
        // to pixels above `vesselThreshold` σ: a thin branch continues the vessel it leaves.
        regionLabel.update(repeating: 0)
        var top = 0
        let weak = parameters.weakThreshold * noiseScale, strong = parameters.vesselThreshold * noiseScale
        for i in 0..<peak.count where peak[i] > weak * level[i] && insideLumen(i, background: background) {
            if peak[i] > strong * level[i] {
                regionLabel[i] = 2
                stack[top] = Int32(i)
                top += 1
            } else {
                regionLabel[i] = 1
            }
        }
        _ = flood(from: top) { j in
            guard self.regionLabel[j] == 1 else { return false }
            self.regionLabel[j] = 2
            return true
        }
        for i in 0..<peak.count where regionLabel[i] != 2 { peak[i] = 0 }
        removeSmallRegions()
        var vesselPixels = 0
        for y in 0..<geometry.height {
            let ly = min(max((Float(y) + 0.5) / factor - 0.5, 0), Float(h - 1))
            let y0 = min(Int(clampingFinite: ly), h - 2 < 0 ? 0 : h - 2), fy = ly - Float(y0), y1 = min(y0 + 1, h - 1)
            for x in 0..<geometry.width {
                let lx = min(max((Float(x) + 0.5) / factor - 0.5, 0), Float(w - 1))
                let x0 = min(Int(clampingFinite: lx), w - 2 < 0 ? 0 : w - 2), fx = lx - Float(x0), x1 = min(x0 + 1, w - 1)
                let value =
                    (1 - fy) * ((1 - fx) * peak[y0 * w + x0] + fx * peak[y0 * w + x1])
                    + fy * ((1 - fx) * peak[y1 * w + x0] + fx * peak[y1 * w + x1])
                // Inside where the nearest level pixel is kept; as opaque as the (interpolated) peak is strong.
                let nearest = Int(clampingFinite: ly.rounded()) * w + Int(clampingFinite: lx.rounded())
                let strength = (value - threshold) / (2 * threshold)
                let opacity: UInt8 = peak[nearest] > 0 ? UInt8(clampingFinite: min(max(64 + 191 * strength, 64), 255)) : 0
                map[y * geometry.width + x] = opacity
                if opacity > 0 { vesselPixels += 1 }
            }
        }
        vesselPixelsPerBin[bin] = vesselPixels
    }

    /// Whether level pixel `i` lies inside its vessel's lumen. Its vessel's centre is where steepest ascent
    /// from `i` leads (at most `edgeReach` steps); the vessel's equivalent width is the opacification summed
    /// over a disk around the centre, per length of vessel crossing it, over the centre's peak; `i` is inside
    /// when its peak reaches the share of the centre's at which the edge model puts the lumen's border.
    /// Opacification counts above the background's level (`background` local σ; `level` holds σ); `difference`
    /// caches each centre's edge share (NaN until computed).
    private func insideLumen(_ i: Int, background: Float) -> Bool {
        let w = reduction.width, h = reduction.height
        var centre = i
        for _ in 0..<parameters.edgeReach {
            let x = centre % w, y = centre / w
            var best = centre
            for ny in max(y - 1, 0)...min(y + 1, h - 1) {
                for nx in max(x - 1, 0)...min(x + 1, w - 1) where peak[ny * w + nx] > peak[best] { best = ny * w + nx }
            }
            if best == centre { break }
            centre = best
        }
        let floor = background * level[centre]
        let top = peak[centre] - floor
        guard top > 0 else { return false }
        if difference[centre].isNaN {
            let radius = parameters.edgeReach + 1, x = centre % w, y = centre / w
            var area: Float = 0
            for dy in max(-radius, -y)...min(radius, h - 1 - y) {
                let half = Int(clampingFinite: Float(radius * radius - dy * dy).squareRoot())
                let row = (y + dy) * w
                for dx in max(-half, -x)...min(half, w - 1 - x) {
                    area += max(peak[row + x + dx] - background * level[row + x + dx], 0)
                }
            }
            difference[centre] = edgeModel.edgeShare(equivalentWidth: area / (2 * Float(radius) * top))
        }
        return peak[i] - background * level[i] >= difference[centre] * top
    }

    // MARK: - Helpers

    private static let bins = 4096
    private static let range: Float = 4

    /// The `q` quantile of `values`, from a histogram over ±`range` (log-domain differences are small).
    private func quantile(_ values: UnsafeMutableBufferPointer<Float>, _ q: Float) -> Float {
        histogram.update(repeating: 0)
        let scale = Float(Self.bins) / (2 * Self.range)
        for i in Swift.stride(from: 0, to: values.count, by: 3) {
            let bin = Int(clampingFinite: ((values[i] + Self.range) * scale).rounded(.down))
            histogram[min(max(bin, 0), Self.bins - 1)] += 1
        }
        let total = Float((values.count + 2) / 3)
        var cumulative: Int32 = 0
        for bin in 0..<Self.bins {
            cumulative += histogram[bin]
            if Float(cumulative) >= q * total { return (Float(bin) + 0.5) / scale - Self.range }
        }
        return Self.range
    }

    /// The mean of `image` over a (2·radius + 1)² box (clamped at the borders) into `output`, by running sums
    /// along rows (into `difference`, free once the map is being completed) and then columns.
    private func boxMean(_ image: UnsafeMutableBufferPointer<Float>, radius: Int, into output: UnsafeMutableBufferPointer<Float>) {
        let w = reduction.width, h = reduction.height, rows = difference
        for y in 0..<h {
            var sum: Float = 0, count: Float = 0
            for x in 0..<min(radius, w) { sum += image[y * w + x]; count += 1 }
            for x in 0..<w {
                if x + radius < w { sum += image[y * w + x + radius]; count += 1 }
                if x - radius - 1 >= 0 { sum -= image[y * w + x - radius - 1]; count -= 1 }
                rows[y * w + x] = sum / count
            }
        }
        for x in 0..<w {
            var sum: Float = 0, count: Float = 0
            for y in 0..<min(radius, h) { sum += rows[y * w + x]; count += 1 }
            for y in 0..<h {
                if y + radius < h { sum += rows[(y + radius) * w + x]; count += 1 }
                if y - radius - 1 >= 0 { sum -= rows[(y - radius - 1) * w + x]; count -= 1 }
                output[y * w + x] = sum / count
            }
        }
    }

    /// Binomial [1 2 1]/4 in both directions, in place, edges clamped.
    private func smooth(_ image: UnsafeMutableBufferPointer<Float>) {
        let w = reduction.width, h = reduction.height
        for y in 0..<h {
            for x in 0..<w {
                let i = y * w + x
                scratch[i] = 0.25 * (image[y * w + max(x - 1, 0)] + 2 * image[i] + image[y * w + min(x + 1, w - 1)])
            }
        }
        for y in 0..<h {
            let up = max(y - 1, 0) * w, here = y * w, down = min(y + 1, h - 1) * w
            for x in 0..<w { image[here + x] = 0.25 * (scratch[up + x] + 2 * scratch[here + x] + scratch[down + x]) }
        }
    }
}
