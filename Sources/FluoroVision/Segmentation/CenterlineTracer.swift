/// Turns a line response (a ridge filter's or a network's) into ordered centre lines: non-maximum suppression across the line (which thins the
/// ridges to one pixel, as in Canny's detector), hysteresis thresholding (weak ridge pixels survive only when
/// connected to strong ones), then tracing: from a seed pixel, step to the best surviving pixel ahead (within
/// 60° of the current direction), bridging gaps of a few pixels, with the direction smoothed so that crossings
/// (ribs, vessel edges) do not divert the trace. Memory is allocated in `init`; tracing allocates nothing.
final class CenterlineTracer {
    let width: Int
    let height: Int
    /// Longest path, in pixels.
    let capacity: Int
    /// The traced path, in pixels (row-major index), in order; `pathCount` are valid.
    let path: UnsafeMutableBufferPointer<Int32>
    private(set) var pathCount = 0
    /// 0: nothing, 1: weak ridge, 2: strong ridge, 3: kept by hysteresis.
    private let state: UnsafeMutableBufferPointer<UInt8>
    /// Trace number that last visited each pixel (so no clearing between traces).
    private let visited: UnsafeMutableBufferPointer<UInt32>
    private var traceStamp: UInt32 = 0
    private let stack: UnsafeMutableBufferPointer<Int32>
    private let backward: UnsafeMutableBufferPointer<Int32>
    private let histogram: UnsafeMutableBufferPointer<Int32>
    /// Kept ridge pixels, for seeding.
    let kept: UnsafeMutableBufferPointer<Int32>
    private(set) var keptCount = 0
    /// Longest gap bridged between ridge pixels, in pixels.
    var maximumGap = 8

    init(width: Int, height: Int, capacity: Int = 4096) {
        self.width = width
        self.height = height
        self.capacity = capacity
        let pixels = width * height
        path = .allocate(capacity: capacity)
        backward = .allocate(capacity: capacity)
        state = .allocate(capacity: pixels)
        visited = .allocate(capacity: pixels)
        visited.update(repeating: 0)
        stack = .allocate(capacity: pixels)
        kept = .allocate(capacity: pixels)
        histogram = .allocate(capacity: Self.bins)
    }

    deinit {
        for buffer in [path, backward, stack, kept, histogram] { buffer.deallocate() }
        state.deallocate()
        visited.deallocate()
    }

    // MARK: - Candidates

    private static let bins = 256
    /// Histogram bins are log-spaced: bin = 16·log2(response / 2⁻²⁰).
    private static func bin(_ value: Float) -> Int {
        value > 0 && value.isFinite ? min(max(Int(clampingFinite: 16 * (log2(value) + 20)), 0), bins - 1) : 0
    }
    private static func value(ofBin bin: Int) -> Float { exp2(Float(bin) / 16 - 20) }

    /// The 90th percentile of the response over the image (its background level: most of an image is not a
    /// device; a median would be near zero on quantised 8-bit images), from a log-spaced histogram of every
    /// fourth pixel in each direction.
    func noiseLevel(of response: UnsafeMutableBufferPointer<Float>) -> Float {
        histogram.update(repeating: 0)
        var total: Int32 = 0
        for y in stride(from: 1, to: height - 1, by: 4) {
            for x in stride(from: 1, to: width - 1, by: 4) {
                histogram[Self.bin(response[y * width + x])] += 1
                total += 1
            }
        }
        var cumulative: Int32 = 0
        for bin in 0..<Self.bins {
            cumulative += histogram[bin]
            if 10 * cumulative >= 9 * total { return Self.value(ofBin: bin) }
        }
        return Self.value(ofBin: Self.bins - 1)
    }

    /// Non-maximum suppression along the normal for `rows` (parts may run at the same time on disjoint rows): marks
    /// each ridge pixel above `low` that is a maximum across the line, weak (≤ `high`) or strong. Once every row is
    /// done, `keepConnected()` applies the hysteresis.
    func suppress(rows: Range<Int>, _ evidence: some LineEvidence, low: Float, high: Float) {
        let w = width, response = evidence.response.baseAddress!
        (state.baseAddress! + rows.lowerBound * w).update(repeating: 0, count: rows.count * w)
        for y in max(rows.lowerBound, 2)..<min(rows.upperBound, height - 2) {
            for x in 2..<(w - 2) {
                let i = y * w + x
                let r = response[i]
                guard r > low else { continue }
                let normal = evidence.normal(at: i)
                let ox = Int(clampingFinite: normal.x.rounded()), oy = Int(clampingFinite: normal.y.rounded())
                let j = oy * w + ox
                guard r >= response[i + j], r > response[i - j] else { continue }
                state[i] = r > high ? 2 : 1
            }
        }
    }

    /// Hysteresis after `suppress` has marked every row: weak pixels connected to strong ones are kept, in `kept`
    /// in the order a depth-first search from the strong pixels (in row-major order) reaches them.
    func keepConnected() {
        let w = width, pixels = width * height
        var strong = 0
        // Strong pixels (state 2: the only value with bit 1 set) in row-major order, eight states at a time.
        let words = pixels / 8, raw = UnsafeRawPointer(state.baseAddress!)
        for word in 0..<words where raw.loadUnaligned(fromByteOffset: word * 8, as: UInt64.self) & 0x0202_0202_0202_0202 != 0 {
            for i in (word * 8)..<(word * 8 + 8) where state[i] == 2 {
                stack[strong] = Int32(i)
                strong += 1
            }
        }
        for i in (words * 8)..<pixels where state[i] == 2 {
            stack[strong] = Int32(i)
            strong += 1
        }
        keptCount = 0
        var top = strong
        for k in 0..<strong { state[Int(stack[k])] = 3 }
        while top > 0 {
            top -= 1
            let i = Int(stack[top])
            kept[keptCount] = Int32(i)
            keptCount += 1
            for dy in -1...1 {
                for dx in -1...1 where dx != 0 || dy != 0 {
                    let j = i + dy * w + dx
                    if state[j] == 1 || state[j] == 2 {
                        state[j] = 3
                        stack[top] = Int32(j)
                        top += 1
                    }
                }
            }
        }
    }

    /// Whether pixel `i` survived hysteresis.
    func isKept(_ i: Int) -> Bool { state[i] == 3 }

    /// Whether pixel `i` was visited by any trace since `beginSearch`.
    func wasVisited(_ i: Int) -> Bool { visited[i] > searchStamp }

    private var searchStamp: UInt32 = 0

    /// Starts a new round of traces (pixels visited before no longer count as visited).
    func beginSearch() {
        if traceStamp > UInt32.max - 1024 {
            visited.update(repeating: 0)
            traceStamp = 0
        }
        searchStamp = traceStamp
    }

    // MARK: - Tracing

    /// Traces both ways from `seed` along the ridge through kept pixels; the result in `path` runs from one end
    /// to the other (the seed's backward side first).
    func trace(from seed: Int, evidence: some LineEvidence) {
        let response = evidence.response
        traceStamp += 1
        // The line's direction is perpendicular to its normal.
        let normal = evidence.normal(at: seed)
        let directionX = -normal.y, directionY = normal.x
        visited[seed] = traceStamp
        let backwardCount = walk(
            from: seed, directionX: -directionX, directionY: -directionY, response: response,
            into: backward, limit: capacity / 2)
        pathCount = 0
        for k in stride(from: backwardCount - 1, through: 0, by: -1) {
            path[pathCount] = backward[k]
            pathCount += 1
        }
        path[pathCount] = Int32(seed)
        pathCount += 1
        let forward = UnsafeMutableBufferPointer(rebasing: path[pathCount...])
        pathCount += walk(
            from: seed, directionX: directionX, directionY: directionY, response: response,
            into: forward, limit: min(forward.count, capacity / 2))
    }

    /// Steps from `start` in the given direction until no kept pixel lies ahead within the gap; returns the
    /// number of pixels written to `output`.
    private func walk(
        from start: Int, directionX startX: Float, directionY startY: Float,
        response: UnsafeMutableBufferPointer<Float>, into output: UnsafeMutableBufferPointer<Int32>,
        limit: Int
    ) -> Int {
        let w = width
        var x = start % w, y = start / w
        var directionX = startX, directionY = startY
        var count = 0
        while count < limit {
            var best = -1, bestScore: Float = 0, bestX = 0, bestY = 0
            ring: for radius in 1...maximumGap {
                // Straight on within 60° for a neighbour, narrower across a gap.
                let minimumCosine: Float = radius <= 2 ? 0.5 : (radius <= 4 ? 0.8 : 0.92)
                for dy in -radius...radius {
                    let ny = y + dy
                    guard ny >= 1, ny < height - 1 else { continue }
                    let stepX = dy == -radius || dy == radius ? 1 : 2 * radius
                    for dx in stride(from: -radius, through: radius, by: stepX) {
                        let nx = x + dx
                        guard nx >= 1, nx < w - 1 else { continue }
                        let j = ny * w + nx
                        guard state[j] == 3, visited[j] != traceStamp else { continue }
                        let length = Float(dx * dx + dy * dy).squareRoot()
                        let cosine = (Float(dx) * directionX + Float(dy) * directionY) / length
                        guard cosine >= minimumCosine else { continue }
                        let score = response[j] * cosine * cosine
                        if score > bestScore {
                            (best, bestScore, bestX, bestY) = (j, score, nx, ny)
                        }
                    }
                }
                if best >= 0 { break ring }
            }
            guard best >= 0 else { break }
            // Mark the neighbourhood of the step as visited so the parallel pixels of a two-pixel-wide spot are
            // not taken again.
            for my in max(y - 1, 0)...min(y + 1, height - 1) {
                for mx in max(x - 1, 0)...min(x + 1, w - 1) { visited[my * w + mx] = traceStamp }
            }
            visited[best] = traceStamp
            let stepX = Float(bestX - x), stepY = Float(bestY - y)
            let length = (stepX * stepX + stepY * stepY).squareRoot()
            directionX = 0.7 * directionX + 0.3 * stepX / length
            directionY = 0.7 * directionY + 0.3 * stepY / length
            let norm = (directionX * directionX + directionY * directionY).squareRoot()
            directionX /= norm
            directionY /= norm
            x = bestX
            y = bestY
            output[count] = Int32(best)
            count += 1
        }
        return count
    }
}

#if canImport(Glibc)
    import Glibc
#endif
