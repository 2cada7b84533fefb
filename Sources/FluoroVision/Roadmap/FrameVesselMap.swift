import FluoroConcurrency
import FluoroCore

/// The vessels that contrast shows in one frame, on a level image in the log (attenuation) domain:
///
/// 1. the background is removed by a white top-hat (the image less its opening by a square wider than any
///    vessel), so the heart's shadow, the diaphragm and the spine's slow shading drop out;
/// 2. multi-scale Hessian vesselness (`HessianVesselness`) marks bright ridges: vessels, catheter, wire;
/// 3. the exposed field (brighter than a tenth of its brightest percentile, in intensity) is shrunk away from
///    the collimator blades and the image border, whose edges are the strongest ridges of a frame otherwise;
/// 4. pixels above the field's median response plus `threshold` robust σ (1.4826 × median absolute deviation),
///    in 8-connected regions of at least `minimumRegion` pixels, are vessel.
///
/// The result is an opacity 0…255 per level pixel (64 at the threshold, 255 from three times it). Sizes are
/// given for a 512-pixel level and scale with the level's shorter side. All memory is allocated in `init`;
/// `compute` allocates nothing.
final class FrameVesselMap {
    struct Parameters: Sendable {
        /// Gaussian σ of the vesselness scales.
        var scales: [Float] = [1.5, 2, 3, 4]
        /// Half side of the square whose opening is the background.
        var backgroundRadius = 15
        /// How far the field is shrunk from the collimator blades and the image border.
        var fieldMargin = 24
        /// Robust σ above the median response that a vessel pixel needs.
        var threshold: Float = 7
        /// Smallest connected vessel region (level pixels).
        var minimumRegion = 400
    }

    let width: Int
    let height: Int
    /// The last frame's map: 0 outside vessels, 64…255 inside.
    let map: UnsafeMutableBufferPointer<UInt8>
    /// The last frame's exposed field, shrunk (1 inside, 0 outside).
    let field: UnsafeMutableBufferPointer<Float>
    /// The last frame's background: the level without its vessels, catheter and wire (its opening).
    private let background: UnsafeMutableBufferPointer<Float>
    /// The last frame's vessel pixels.
    private(set) var vesselPixels = 0

    private let backgroundRadius: Int
    private let fieldMargin: Int
    private let threshold: Float
    private let minimumRegion: Int
    private let vesselness: HessianVesselness
    private let morphology: SquareMorphology
    private let topHat: UnsafeMutableBufferPointer<Float>
    private let response: UnsafeMutableBufferPointer<Float>
    private let histogram: UnsafeMutableBufferPointer<Int32>
    private let stack: UnsafeMutableBufferPointer<Int32>
    private static let bins = 4096

    /// With a `splitter`, the vesselness shares its rows between two threads.
    init(width: Int, height: Int, parameters: Parameters = Parameters(), splitter: WorkSplitter? = nil) {
        self.width = width
        self.height = height
        let scale = Float(min(width, height)) / 512
        func scaled(_ length: Int) -> Int { max(Int(clampingFinite: (Float(length) * scale).rounded()), 1) }
        backgroundRadius = scaled(parameters.backgroundRadius)
        fieldMargin = scaled(parameters.fieldMargin)
        threshold = parameters.threshold
        minimumRegion = max(Int(clampingFinite: (Float(parameters.minimumRegion) * scale * scale).rounded()), 1)
        vesselness = HessianVesselness(
            width: width, height: height, scales: parameters.scales.map { max($0 * scale, 0.5) }, splitter: splitter)
        morphology = SquareMorphology(width: width, height: height, largestRadius: max(backgroundRadius, fieldMargin))
        let pixels = width * height
        map = .allocate(capacity: pixels)
        field = .allocate(capacity: pixels)
        background = .allocate(capacity: pixels)
        topHat = .allocate(capacity: pixels)
        response = .allocate(capacity: pixels)
        histogram = .allocate(capacity: Self.bins)
        stack = .allocate(capacity: pixels)
    }

    deinit {
        map.deallocate()
        field.deallocate()
        background.deallocate()
        topHat.deallocate()
        response.deallocate()
        histogram.deallocate()
        stack.deallocate()
    }

    /// Maps the vessels of `level` (−log intensity, `width` × `height`); returns the number of vessel pixels.
    @discardableResult
    func compute(_ level: UnsafePointer<Float>) -> Int {
        let pixels = width * height
        // 1. White top-hat: the level less its opening (the erosion's dilation).
        let ground = background.baseAddress!
        morphology.filter(level, into: ground, radius: backgroundRadius, maximum: false, outside: .infinity)
        morphology.filter(ground, into: ground, radius: backgroundRadius, maximum: true, outside: -.infinity)
        // 2. Vesselness of what stands out of the background.
        let standing = topHat.baseAddress!
        for i in 0..<pixels { standing[i] = level[i] - ground[i] }
        vesselness.apply(standing, into: response.baseAddress!)
        // 3. The exposed field: intensity above a tenth of the 99th percentile's, i.e. −log below the 1st
        //    percentile's plus ln 10; shrunk with the image's outside counted as unexposed.
        let brightest = quantile(level, count: pixels, 0.01, low: minimum(level, pixels), high: maximum(level, pixels))
        let limit = brightest + Float(log(10.0))
        for i in 0..<pixels { field[i] = level[i] <= limit ? 1 : 0 }
        morphology.filter(field.baseAddress!, into: field.baseAddress!, radius: fieldMargin, maximum: false, outside: 0)
        // 4. The robust threshold over the field's responses.
        var largest: Float = 0, inside = 0
        for i in 0..<pixels where field[i] > 0 {
            largest = Swift.max(largest, response[i])
            inside += 1
        }
        map.update(repeating: 0)
        vesselPixels = 0
        guard inside > 0, largest > 0 else { return 0 }
        for i in 0..<pixels where field[i] == 0 { response[i] = -1 }
        let median = fieldQuantile(0.5, high: largest, centre: nil)
        let deviation = 1.4826 * fieldQuantile(0.5, high: largest, centre: median)
        let cut = median + threshold * Swift.max(deviation, largest * 1e-4)
        for i in 0..<pixels where response[i] > cut {
            let strength = (response[i] - cut) / (2 * cut)
            map[i] = UInt8(clampingFinite: Swift.min(Swift.max(64 + 191 * strength, 64), 255))
        }
        removeSmallRegions()
        for i in 0..<pixels where map[i] > 0 { vesselPixels += 1 }
        return vesselPixels
    }

    // MARK: - Helpers

    private func minimum(_ values: UnsafePointer<Float>, _ count: Int) -> Float {
        var result = Float.infinity
        for i in 0..<count { result = Swift.min(result, values[i]) }
        return result
    }

    private func maximum(_ values: UnsafePointer<Float>, _ count: Int) -> Float {
        var result = -Float.infinity
        for i in 0..<count { result = Swift.max(result, values[i]) }
        return result
    }

    /// The `q` quantile of `values` from a histogram over [low, high].
    private func quantile(_ values: UnsafePointer<Float>, count: Int, _ q: Float, low: Float, high: Float) -> Float {
        guard high > low else { return low }
        histogram.update(repeating: 0)
        let scale = Float(Self.bins) / (high - low)
        for i in 0..<count {
            histogram[Swift.min(Swift.max(Int(clampingFinite: (values[i] - low) * scale), 0), Self.bins - 1)] += 1
        }
        return histogramQuantile(q, total: count, low: low, scale: scale)
    }

    /// The `q` quantile of the field's responses (pixels outside the field hold −1), or of their distances from
    /// `centre` when given, from a histogram over [0, high].
    private func fieldQuantile(_ q: Float, high: Float, centre: Float?) -> Float {
        histogram.update(repeating: 0)
        let scale = Float(Self.bins) / high
        var total = 0
        let pixels = width * height
        if let centre {
            for i in 0..<pixels where response[i] >= 0 {
                histogram[Swift.min(Int(clampingFinite: abs(response[i] - centre) * scale), Self.bins - 1)] += 1
                total += 1
            }
        } else {
            for i in 0..<pixels where response[i] >= 0 {
                histogram[Swift.min(Int(clampingFinite: response[i] * scale), Self.bins - 1)] += 1
                total += 1
            }
        }
        return histogramQuantile(q, total: total, low: 0, scale: scale)
    }

    private func histogramQuantile(_ q: Float, total: Int, low: Float, scale: Float) -> Float {
        var cumulative = 0
        for bin in 0..<Self.bins {
            cumulative += Int(histogram[bin])
            if Float(cumulative) >= q * Float(total) { return low + (Float(bin) + 0.5) / scale }
        }
        return low + Float(Self.bins) / scale
    }

    /// Clears the map's 8-connected regions smaller than `minimumRegion` (a region's pixels are visited twice at
    /// most: once to measure it, once to clear it; `response` marks visited pixels by turning negative).
    private func removeSmallRegions() {
        let w = width, h = height
        for start in 0..<(w * h) where map[start] > 0 && response[start] >= 0 {
            response[start] = -2
            stack[0] = Int32(start)
            var top = 1, size = 0
            while top > 0 {
                top -= 1
                let i = Int(stack[top])
                size += 1
                let x = i % w, y = i / w
                for ny in Swift.max(y - 1, 0)...Swift.min(y + 1, h - 1) {
                    for nx in Swift.max(x - 1, 0)...Swift.min(x + 1, w - 1) {
                        let j = ny * w + nx
                        if map[j] > 0 && response[j] >= 0 {
                            response[j] = -2
                            stack[top] = Int32(j)
                            top += 1
                        }
                    }
                }
            }
            guard size < minimumRegion else { continue }
            map[start] = 0
            stack[0] = Int32(start)
            top = 1
            while top > 0 {
                top -= 1
                let i = Int(stack[top])
                let x = i % w, y = i / w
                for ny in Swift.max(y - 1, 0)...Swift.min(y + 1, h - 1) {
                    for nx in Swift.max(x - 1, 0)...Swift.min(x + 1, w - 1) where map[ny * w + nx] > 0 {
                        map[ny * w + nx] = 0
                        stack[top] = Int32(ny * w + nx)
                        top += 1
                    }
                }
            }
        }
    }
}

#if canImport(Glibc)
    import Glibc
#endif
