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
            histogram[min(max(Int(image[i] / Self.binWidth), 0), Self.bins - 1)] += 1
            total += 1
        }
        var cumulative: Int32 = 0, medianBin = 0
        while medianBin < Self.bins - 1 {
            cumulative += histogram[medianBin]
            if 2 * cumulative >= total { break }
            medianBin += 1
        }
        let threshold = (Float(medianBin) + 0.5) * Self.binWidth + Float(log(8.0))
        // Dark pixels (in `inside` for now), eroded by their 3 × 3 neighbourhood (along rows into `dilated`, then
        // along columns) into `outside`; beyond the frame's border counts as dark (blades reach it)...
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
        for y in 0..<h {
            let row = inside.baseAddress! + y * w, target = dilated.baseAddress! + y * w
            target[0] = row[0] & row[min(1, w - 1)]
            for x in 1..<max(w - 1, 1) { target[x] = row[x - 1] & row[x] & row[x + 1] }
            target[w - 1] = row[max(w - 2, 0)] & row[w - 1]
        }
        var outsideCount = 0
        for y in 0..<h {
            let above = dilated.baseAddress! + max(y - 1, 0) * w, centre = dilated.baseAddress! + y * w
            let below = dilated.baseAddress! + min(y + 1, h - 1) * w, target = outside.baseAddress! + y * w
            for x in 0..<w {
                let value = above[x] & centre[x] & below[x]
                target[x] = value
                outsideCount &+= Int(value)
            }
        }
        guard outsideCount > 0 else {
            inside.update(repeating: 1)
            return false
        }
        // ...and dilated back (the dark pixels within 3 × 3 of what is left: an opening keeps the blades' edges)...
        for y in 0..<h {
            let row = outside.baseAddress! + y * w, target = dilated.baseAddress! + y * w
            target[0] = row[0] | row[min(1, w - 1)]
            for x in 1..<max(w - 1, 1) { target[x] = row[x - 1] | row[x] | row[x + 1] }
            target[w - 1] = row[max(w - 2, 0)] | row[w - 1]
        }
        for y in 0..<h {
            let above = dilated.baseAddress! + max(y - 1, 0) * w, centre = dilated.baseAddress! + y * w
            let below = dilated.baseAddress! + min(y + 1, h - 1) * w
            let dark = inside.baseAddress! + y * w, target = outside.baseAddress! + y * w
            for x in 0..<w { target[x] = (above[x] | centre[x] | below[x]) & dark[x] }
        }
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
}

#if canImport(Glibc)
import Glibc
#endif
