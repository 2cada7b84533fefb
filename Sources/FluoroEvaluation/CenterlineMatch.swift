import FluoroCore

/// Centre lines as ../shared/EVALUATION.md compares them: resampled every 0.5 px, each point of one line counted
/// as matched when a point of the other lies within a tolerance.
public struct CenterlineMatch {
    /// The resampling step along a polyline, px.
    public static let step: Float = 0.5

    /// Points every `step` along the polyline, its two ends included; a one-point line stays one point.
    public static func resample(_ line: [Point2]) -> [Point2] {
        guard let first = line.first else { return [] }
        var points = [first]
        var carried: Float = 0  // distance walked since the last point placed
        for (a, b) in zip(line, line.dropFirst()) {
            let length = ((b.x - a.x) * (b.x - a.x) + (b.y - a.y) * (b.y - a.y)).squareRoot()
            guard length > 0 else { continue }
            var along = step - carried
            while along <= length {
                let t = along / length
                points.append(Point2(x: a.x + t * (b.x - a.x), y: a.y + t * (b.y - a.y)))
                along += step
            }
            carried = length - (along - step)
        }
        if let last = line.last, last != points.last { points.append(last) }
        return points
    }

    /// A set of points that answers "is there one within t of p?" quickly (sorted by x, searched by range).
    public struct PointSet {
        private let points: [Point2]

        public init(_ points: [Point2]) { self.points = points.sorted { $0.x < $1.x } }

        public func contains(within tolerance: Float, of p: Point2) -> Bool {
            var low = 0, high = points.count
            while low < high {
                let middle = (low + high) / 2
                if points[middle].x < p.x - tolerance { low = middle + 1 } else { high = middle }
            }
            let squared = tolerance * tolerance
            var index = low
            while index < points.count, points[index].x <= p.x + tolerance {
                let dx = points[index].x - p.x, dy = points[index].y - p.y
                if dx * dx + dy * dy <= squared { return true }
                index += 1
            }
            return false
        }
    }

    /// How many of `points` lie within `tolerance` of a point of `set`.
    public static func matched(_ points: [Point2], in set: PointSet, tolerance: Float) -> Int {
        points.reduce(0) { $0 + (set.contains(within: tolerance, of: $1) ? 1 : 0) }
    }

    /// Precision, recall and F1 of a predicted centre line against the truth at a tolerance (all 0 when either is
    /// empty).
    public static func f1(predicted: [Point2], truth: [Point2], tolerance: Float) -> (precision: Double, recall: Double, f1: Double) {
        guard !predicted.isEmpty, !truth.isEmpty else { return (0, 0, 0) }
        let precision = Double(matched(predicted, in: PointSet(truth), tolerance: tolerance)) / Double(predicted.count)
        let recall = Double(matched(truth, in: PointSet(predicted), tolerance: tolerance)) / Double(truth.count)
        let f1 = precision + recall > 0 ? 2 * precision * recall / (precision + recall) : 0
        return (precision, recall, f1)
    }
}
