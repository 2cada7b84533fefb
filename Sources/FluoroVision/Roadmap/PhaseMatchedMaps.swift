import FluoroCore

/// The vessel maps of a run's contrast frames, kept so that a later frame can be drawn with the map of the
/// earlier frame that looks most like it. A coronary moves by about a vessel's width between frames with the
/// heartbeat and breathing; the stored frame whose heart border, diaphragm and catheter sit where the live
/// frame's do is at the same cardiac and respiratory phase (an image-based phase, for runs without an ECG). The
/// likeness is the normalised cross-correlation of 64 × 64 thumbnails (the level averaged in blocks, less its
/// Gaussian blur of σ 3 thumbnail pixels), over the thumbnail pixels inside both frames' exposed fields.
///
/// When all `capacity` places are taken, a new map replaces the stored one with the fewest vessel pixels (the
/// weakest contrast). All memory is allocated in `init`; nothing after it allocates.
final class PhaseMatchedMaps {
    /// A frame's motion estimate against the reference (pixels).
    struct Shift: Equatable {
        var dx: Float
        var dy: Float
    }

    /// One stored frame: its map's vessel pixels, its index in the run, and its motion estimate.
    struct Entry {
        var vesselPixels = 0
        var frameIndex = 0
        var shift = Shift(dx: 0, dy: 0)
    }

    static let side = 64
    let width: Int
    let height: Int
    let capacity: Int
    private(set) var entries: [Entry]
    private(set) var count = 0
    private let maps: UnsafeMutableBufferPointer<UInt8>
    /// Per place: the thumbnail (high-passed) and its field (1 inside, 0 outside); the live frame's last.
    private let thumbnails: UnsafeMutableBufferPointer<Float>
    private let fields: UnsafeMutableBufferPointer<Float>
    private let live: UnsafeMutableBufferPointer<Float>
    private let liveField: UnsafeMutableBufferPointer<Float>
    private let blurred: UnsafeMutableBufferPointer<Float>
    private let kernel: [Float]
    /// Level pixels per thumbnail pixel, and the origin of the thumbnail's square on the level.
    private let block: Int
    private let originX: Int
    private let originY: Int

    init(width: Int, height: Int, capacity: Int) {
        precondition(capacity > 0 && min(width, height) >= Self.side, "phase matching needs a place and a level of at least 64²")
        self.width = width
        self.height = height
        self.capacity = capacity
        entries = Array(repeating: Entry(), count: capacity)
        block = min(width, height) / Self.side
        originX = (width - block * Self.side) / 2
        originY = (height - block * Self.side) / 2
        let cells = Self.side * Self.side
        maps = .allocate(capacity: capacity * width * height)
        thumbnails = .allocate(capacity: (capacity + 1) * cells)
        fields = .allocate(capacity: (capacity + 1) * cells)
        live = thumbnails.extracting((capacity * cells)...)
        liveField = fields.extracting((capacity * cells)...)
        blurred = .allocate(capacity: cells)
        let radius = 9
        var weights = (-radius...radius).map { Float(exp(-Double($0 * $0) / 18)) }
        let total = weights.reduce(0, +)
        weights = weights.map { $0 / total }
        kernel = weights
    }

    deinit {
        maps.deallocate()
        thumbnails.deallocate()
        fields.deallocate()
        blurred.deallocate()
    }

    /// Forgets every stored map.
    func reset() { count = 0 }

    /// The stored map at `place` (level pixels, 0 outside vessels).
    func map(at place: Int) -> UnsafeMutableBufferPointer<UInt8> {
        maps.extracting((place * width * height)..<((place + 1) * width * height))
    }

    /// Makes the live frame's thumbnail from its level (−log) and exposed field.
    func describe(level: UnsafePointer<Float>, field: UnsafePointer<Float>) {
        let n = Self.side, area = Float(block * block)
        for cy in 0..<n {
            for cx in 0..<n {
                var sum: Float = 0, inside: Float = 0
                for y in 0..<block {
                    let row = (originY + cy * block + y) * width + originX + cx * block
                    for x in 0..<block {
                        sum += level[row + x]
                        inside += field[row + x]
                    }
                }
                live[cy * n + cx] = sum / area
                liveField[cy * n + cx] = inside >= 0.99 * area ? 1 : 0
            }
        }
        highPass(live)
    }

    /// Stores `map` (level pixels) with the live frame's thumbnail; false when every place holds a map with more
    /// vessel pixels.
    @discardableResult
    func store(_ map: UnsafeMutableBufferPointer<UInt8>, vesselPixels: Int, frameIndex: Int, shift: Shift) -> Bool {
        var place = count
        if count == capacity {
            place = 0
            for index in 1..<capacity where entries[index].vesselPixels < entries[place].vesselPixels { place = index }
            guard entries[place].vesselPixels < vesselPixels else { return false }
        } else {
            count += 1
        }
        entries[place] = Entry(vesselPixels: vesselPixels, frameIndex: frameIndex, shift: shift)
        self.map(at: place).baseAddress!.update(from: map.baseAddress!, count: width * height)
        let cells = Self.side * Self.side
        (thumbnails.baseAddress! + place * cells).update(from: live.baseAddress!, count: cells)
        (fields.baseAddress! + place * cells).update(from: liveField.baseAddress!, count: cells)
        return true
    }

    /// The stored map of a frame before `frameIndex` with at least `minimumPixels` vessel pixels most like the
    /// live frame, and the correlation.
    func bestMatch(minimumPixels: Int, before frameIndex: Int) -> (place: Int, correlation: Float)? {
        var best: (place: Int, correlation: Float)?
        for place in 0..<count where entries[place].vesselPixels >= minimumPixels && entries[place].frameIndex < frameIndex {
            let correlation = self.correlation(with: place)
            if correlation > best?.correlation ?? -.infinity { best = (place, correlation) }
        }
        return best
    }

    /// The normalised cross-correlation of the live thumbnail with the one at `place`, over both fields.
    private func correlation(with place: Int) -> Float {
        let cells = Self.side * Self.side
        let stored = thumbnails.baseAddress! + place * cells, storedField = fields.baseAddress! + place * cells
        var n: Float = 0, sumA: Float = 0, sumB: Float = 0
        for i in 0..<cells {
            let inside = storedField[i] * liveField[i]
            n += inside
            sumA += inside * live[i]
            sumB += inside * stored[i]
        }
        guard n >= 16 else { return -1 }
        let meanA = sumA / n, meanB = sumB / n
        var ab: Float = 0, aa: Float = 0, bb: Float = 0
        for i in 0..<cells {
            let inside = storedField[i] * liveField[i]
            let a = live[i] - meanA, b = stored[i] - meanB
            ab += inside * a * b
            aa += inside * a * a
            bb += inside * b * b
        }
        return aa > 0 && bb > 0 ? ab / (aa * bb).squareRoot() : -1
    }

    /// `image` (a thumbnail) less its Gaussian blur, edges clamped.
    private func highPass(_ image: UnsafeMutableBufferPointer<Float>) {
        let n = Self.side, radius = kernel.count / 2
        for y in 0..<n {
            for x in 0..<n {
                var sum: Float = 0
                for k in 0..<kernel.count { sum += kernel[k] * image[y * n + min(max(x + k - radius, 0), n - 1)] }
                blurred[y * n + x] = sum
            }
        }
        for y in 0..<n {
            for x in 0..<n {
                var sum: Float = 0
                for k in 0..<kernel.count { sum += kernel[k] * blurred[min(max(y + k - radius, 0), n - 1) * n + x] }
                // Writing in place is safe: the column pass reads `blurred` only.
                image[y * n + x] -= sum
            }
        }
    }
}

#if canImport(Glibc)
    import Glibc
#endif
