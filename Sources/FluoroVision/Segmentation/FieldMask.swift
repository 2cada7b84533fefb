/// The exposed field of a frame: collimator blades and shutters leave regions far darker than the anatomy, and
/// their edges are the strongest "ridges" in the image. A pixel of the log-domain image is outside the field
/// when it attenuates `ln 8` more than the frame's median (an eighth of the median intensity or less) and lies in
/// a 3 × 3 block of such pixels (a morphological opening: a lone pixel that dark is quantum noise at a low dose,
/// not a blade); the mask also drops everything within `margin` pixels of the outside. Allocates in `init` only.
final class FieldMask {
    let width: Int
    let height: Int
    /// Pixels this close to the outside are dropped too.
    let margin: Int
    /// 1 inside the field (away from its edge), 0 elsewhere.
    let inside: UnsafeMutableBufferPointer<UInt8>
    /// 1 behind the collimator (outside the field, margin not included), 0 elsewhere.
    let outside: UnsafeMutableBufferPointer<UInt8>
    private let dilated: UnsafeMutableBufferPointer<UInt8>
    private let columnSums: UnsafeMutableBufferPointer<Int32>
    private let histogram: UnsafeMutableBufferPointer<Int32>
    private static let bins = 512
    private static let binWidth: Float = 1.0 / 32

    init(width: Int, height: Int, margin: Int = 12) {
        self.width = width
        self.height = height
        self.margin = margin
        inside = .allocate(capacity: width * height)
        outside = .allocate(capacity: width * height)
        dilated = .allocate(capacity: width * height)
        columnSums = .allocate(capacity: width)
        histogram = .allocate(capacity: Self.bins)
    }

    deinit {
        inside.deallocate()
        outside.deallocate()
        dilated.deallocate()
        columnSums.deallocate()
        histogram.deallocate()
    }

    /// Computes the mask of `image` (−log intensity); returns whether anything lies outside the field.
    @discardableResult
    func update(_ image: UnsafePointer<Float>) -> Bool {
        let w = width, h = height, pixels = w * h, m = margin
        histogram.update(repeating: 0)
        var total: Int32 = 0
        for i in Swift.stride(from: 0, to: pixels, by: 7) {
            histogram[min(max(Int(clampingFinite: image[i] / Self.binWidth), 0), Self.bins - 1)] += 1
            total += 1
        }
        var cumulative: Int32 = 0, medianBin = 0
        while medianBin < Self.bins - 1 {
            cumulative += histogram[medianBin]
            if 2 * cumulative >= total { break }
            medianBin += 1
        }
        let threshold = (Float(medianBin) + 0.5) * Self.binWidth + Float(log(8.0))
        // Dark pixels (in `inside` for now), opened by a 3 × 3 square into `outside`...
        var dark = 0
        for i in 0..<pixels {
            let isDark: UInt8 = image[i] > threshold ? 1 : 0
            inside[i] = isDark
            dark &+= Int(isDark)
        }
        guard dark > 0 else {
            inside.update(repeating: 1)
            outside.update(repeating: 0)
            return false
        }
        combine3x3(inside, into: outside, erode: true)
        guard outside.contains(1) else {
            inside.update(repeating: 1)
            return false
        }
        combine3x3(outside, into: outside, erode: false)
        for i in 0..<pixels { outside[i] &= inside[i] }
        // ...dilated along rows into `dilated`...
        for y in 0..<h {
            let row = outside.baseAddress! + y * w, target = dilated.baseAddress! + y * w
            var sum = 0
            for x in 0..<min(m, w) { sum += Int(row[x]) }
            for x in 0..<w {
                if x + m < w { sum += Int(row[x + m]) }
                if x - m - 1 >= 0 { sum -= Int(row[x - m - 1]) }
                target[x] = sum > 0 ? 1 : 0
            }
        }
        // ...then along columns with running column sums; inside = nothing dark within the box.
        columnSums.update(repeating: 0)
        for y in 0..<min(m, h) {
            for x in 0..<w { columnSums[x] += Int32(dilated[y * w + x]) }
        }
        for y in 0..<h {
            if y + m < h {
                let entering = dilated.baseAddress! + (y + m) * w
                for x in 0..<w { columnSums[x] += Int32(entering[x]) }
            }
            if y - m - 1 >= 0 {
                let leaving = dilated.baseAddress! + (y - m - 1) * w
                for x in 0..<w { columnSums[x] -= Int32(leaving[x]) }
            }
            let target = inside.baseAddress! + y * w
            for x in 0..<w { target[x] = columnSums[x] == 0 ? 1 : 0 }
        }
        return true
    }

    /// Each pixel of `source` combined with its 3 × 3 neighbourhood into `target` (which may be `source`), along
    /// rows into `dilated` then along columns: all of them set (`erode`) or any. Beyond the border counts as
    /// set when eroding (blades reach the frame's edge) and as clear when dilating.
    private func combine3x3(
        _ source: UnsafeMutableBufferPointer<UInt8>, into target: UnsafeMutableBufferPointer<UInt8>,
        erode: Bool
    ) {
        let w = width, h = height
        for y in 0..<h {
            let row = source.baseAddress! + y * w, out = dilated.baseAddress! + y * w
            if erode {
                out[0] = row[0] & row[min(1, w - 1)]
                for x in 1..<max(w - 1, 1) { out[x] = row[x - 1] & row[x] & row[x + 1] }
                out[w - 1] = row[max(w - 2, 0)] & row[w - 1]
            } else {
                out[0] = row[0] | row[min(1, w - 1)]
                for x in 1..<max(w - 1, 1) { out[x] = row[x - 1] | row[x] | row[x + 1] }
                out[w - 1] = row[max(w - 2, 0)] | row[w - 1]
            }
        }
        for y in 0..<h {
            let above = dilated.baseAddress! + max(y - 1, 0) * w, centre = dilated.baseAddress! + y * w
            let below = dilated.baseAddress! + min(y + 1, h - 1) * w, out = target.baseAddress! + y * w
            if erode {
                for x in 0..<w { out[x] = above[x] & centre[x] & below[x] }
            } else {
                for x in 0..<w { out[x] = above[x] | centre[x] | below[x] }
            }
        }
    }
}

#if canImport(Glibc)
    import Glibc
#endif
