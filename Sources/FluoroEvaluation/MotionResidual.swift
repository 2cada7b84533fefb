import FluoroCore

/// The evaluation's motion measure (../shared/EVALUATION.md, "Motion"): the RMS of the difference of two
/// log-intensity images, its median removed, inside the exposed field shrunk by `shrink` pixels; the live image is
/// sampled at `x + shift` (bilinear), where the estimated shift says the reference's point `x` appears.
public struct MotionResidual {
    public let width: Int
    public let height: Int
    /// Pixels inside the exposed field of the reference, at least `shrink` pixels from its edge.
    public let field: [Bool]
    public static let shrink = 24

    /// The field of `reference`: pixels brighter than a tenth of its 99th percentile (collimator blades and the
    /// detector's unexposed border are darker), shrunk by `shrink` pixels.
    public init(reference: [UInt16], width: Int, height: Int) {
        self.width = width
        self.height = height
        let sorted = reference.sorted()
        let threshold = Double(sorted[min(sorted.count - 1, sorted.count * 99 / 100)]) / 10
        let exposed = reference.map { Double($0) > threshold }
        field = Self.shrunk(exposed, width: width, height: height, by: Self.shrink)
    }

    /// Natural logarithm of each sample (0 counts as 1).
    public static func logarithm(_ pixels: [UInt16]) -> [Float] { pixels.map { Float.log(Float(max($0, 1))) } }

    /// The residual between `live` moved back by `shift` and `reference` (both logarithms); nil when fewer than 1000
    /// pixels of the field can be compared.
    public func residual(live: [Float], reference: [Float], shift: (dx: Float, dy: Float)) -> Double? {
        var differences: [Float] = []
        differences.reserveCapacity(width * height)
        for y in 0..<height {
            for x in 0..<width where field[y * width + x] {
                guard let moved = Self.sample(live, width: width, height: height, x: Float(x) + shift.dx, y: Float(y) + shift.dy)
                else { continue }
                differences.append(moved - reference[y * width + x])
            }
        }
        guard differences.count >= 1000 else { return nil }
        differences.sort()
        let median = differences[differences.count / 2]
        let squares = differences.reduce(0.0) { $0 + Double(($1 - median) * ($1 - median)) }
        return (squares / Double(differences.count)).squareRoot()
    }

    /// `image` at (x, y), bilinear; nil outside the image.
    static func sample(_ image: [Float], width: Int, height: Int, x: Float, y: Float) -> Float? {
        guard x >= 0, y >= 0, x <= Float(width - 1), y <= Float(height - 1) else { return nil }
        let x0 = min(Int(clampingFinite: x), width - 2), y0 = min(Int(clampingFinite: y), height - 2)
        let fx = x - Float(x0), fy = y - Float(y0), i = y0 * width + x0
        let top = image[i] + fx * (image[i + 1] - image[i])
        let bottom = image[i + width] + fx * (image[i + width + 1] - image[i + width])
        return top + fy * (bottom - top)
    }

    /// `mask` with every pixel removed that lies within `distance` (a square neighbourhood) of an outside pixel or of
    /// the image edge, through a summed-area table.
    static func shrunk(_ mask: [Bool], width: Int, height: Int, by distance: Int) -> [Bool] {
        var sums = [Int](repeating: 0, count: (width + 1) * (height + 1))
        for y in 0..<height {
            var row = 0
            for x in 0..<width {
                row += mask[y * width + x] ? 1 : 0
                sums[(y + 1) * (width + 1) + x + 1] = sums[y * (width + 1) + x + 1] + row
            }
        }
        let side = 2 * distance + 1, full = side * side
        var kept = [Bool](repeating: false, count: width * height)
        for y in distance..<max(distance, height - distance) {
            for x in distance..<max(distance, width - distance) {
                let x0 = x - distance, y0 = y - distance, x1 = x + distance + 1, y1 = y + distance + 1
                let inside =
                    sums[y1 * (width + 1) + x1] - sums[y0 * (width + 1) + x1] - sums[y1 * (width + 1) + x0]
                    + sums[y0 * (width + 1) + x0]
                kept[y * width + x] = inside == full
            }
        }
        return kept
    }
}
