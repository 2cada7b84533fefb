import FluoroCore

/// A path in pixel coordinates with its cumulative arc length, for vessels and devices.
struct Polyline: Sendable {
    private(set) var points: [(x: Double, y: Double)] = []
    /// Arc length from the first point to each point.
    private(set) var arcLength: [Double] = []

    var length: Double { arcLength.last ?? 0 }

    mutating func append(x: Double, y: Double) {
        if let last = points.last {
            arcLength.append(arcLength.last! + ((x - last.x) * (x - last.x) + (y - last.y) * (y - last.y)).squareRoot())
        } else {
            arcLength.append(0)
        }
        points.append((x, y))
    }

    /// The point at arc length `s` (clamped to the path).
    func point(atArcLength s: Double) -> (x: Double, y: Double) {
        guard points.count > 1 else { return points.first ?? (0, 0) }
        let target = min(max(s, 0), length)
        var low = 0, high = arcLength.count - 1
        while high - low > 1 {
            let middle = (low + high) / 2
            if arcLength[middle] <= target { low = middle } else { high = middle }
        }
        let span = arcLength[high] - arcLength[low]
        let t = span > 0 ? (target - arcLength[low]) / span : 0
        return (points[low].x + t * (points[high].x - points[low].x), points[low].y + t * (points[high].y - points[low].y))
    }

    /// Calls `body` for points every `step` along arc length [`from`, `to`], both ends included.
    func sample(from: Double, to: Double, step: Double, _ body: ((x: Double, y: Double)) -> Void) {
        guard to > from else { body(point(atArcLength: from)); return }
        let count = max(1, Int(clampingFinite: ((to - from) / step).rounded(.up)))
        for i in 0...count { body(point(atArcLength: from + (to - from) * Double(i) / Double(count))) }
    }
}

/// How a tube's cross-section turns into projected attenuation at a distance from its centre line.
enum TubeProfile {
    /// A solid cylinder of `radius`: chord length 2√(r² − d²) times `attenuation` per pixel of path.
    case cylinder(radius: Double, attenuation: Double)
    /// A tube thinner than a pixel, drawn as a Gaussian of width `sigma` with `peak` attenuation
    /// (sampling a sub-pixel cylinder directly would alias).
    case gaussian(sigma: Double, peak: Double)

    var reach: Double {
        switch self {
        case let .cylinder(radius, _): return radius
        case let .gaussian(sigma, _): return 3.5 * sigma
        }
    }

    @inline(__always)
    func value(distanceSquared d2: Double) -> Double {
        switch self {
        case let .cylinder(radius, attenuation):
            let chord = radius * radius - d2
            return chord > 0 ? 2 * chord.squareRoot() * attenuation : 0
        case let .gaussian(sigma, peak):
            return peak * exp(-d2 / (2 * sigma * sigma))
        }
    }
}

/// Draws tubes into a Float image, keeping at each pixel the larger value, so overlapping segments of one
/// path are not counted twice.
struct TubeRasterizer {
    let width: Int
    let height: Int

    /// Draws the segment from `a` to `b` (pixel centres at integer coordinates).
    func drawSegment(
        from a: (x: Double, y: Double), to b: (x: Double, y: Double), profile: TubeProfile,
        into image: UnsafeMutablePointer<Float>
    ) {
        let reach = profile.reach + 1
        let x0 = max(0, Int(clampingFinite: (min(a.x, b.x) - reach).rounded(.down))),
            x1 = min(width - 1, Int(clampingFinite: (max(a.x, b.x) + reach).rounded(.up)))
        let y0 = max(0, Int(clampingFinite: (min(a.y, b.y) - reach).rounded(.down))),
            y1 = min(height - 1, Int(clampingFinite: (max(a.y, b.y) + reach).rounded(.up)))
        guard x0 <= x1, y0 <= y1 else { return }
        let ex = b.x - a.x, ey = b.y - a.y
        let lengthSquared = ex * ex + ey * ey
        let limit = profile.reach * profile.reach
        for y in y0...y1 {
            let row = image + y * width
            for x in x0...x1 {
                let px = Double(x) - a.x, py = Double(y) - a.y
                let t = lengthSquared > 0 ? min(max((px * ex + py * ey) / lengthSquared, 0), 1) : 0
                let dx = px - t * ex, dy = py - t * ey
                let d2 = dx * dx + dy * dy
                guard d2 < limit else { continue }
                let value = Float(profile.value(distanceSquared: d2))
                if value > row[x] { row[x] = value }
            }
        }
    }

    /// Draws the part of `path` between arc lengths `from` and `to`, shifted by `offset`.
    func drawPath(
        _ path: Polyline, from: Double, to: Double, offset: (x: Double, y: Double), profile: TubeProfile,
        into image: UnsafeMutablePointer<Float>
    ) {
        var previous: (x: Double, y: Double)?
        path.sample(from: from, to: to, step: 1.5) { point in
            let shifted = (x: point.x + offset.x, y: point.y + offset.y)
            if let previous { drawSegment(from: previous, to: shifted, profile: profile, into: image) }
            previous = shifted
        }
    }
}

#if canImport(Glibc)
    import Glibc
#endif
