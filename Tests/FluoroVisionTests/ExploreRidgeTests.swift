@testable import FluoroVision
import FluoroCore
import FluoroSources
import Foundation
import Testing

func densify(_ points: [Point2]) -> [Point2] {
    guard points.count > 1 else { return points }
    var out: [Point2] = []
    for k in 1..<points.count {
        let a = points[k - 1], b = points[k]
        let steps = max(1, Int((max(abs(b.x - a.x), abs(b.y - a.y)) * 2).rounded(.up)))
        for s in 0..<steps { let t = Float(s) / Float(steps); out.append(Point2(x: a.x + t * (b.x - a.x), y: a.y + t * (b.y - a.y))) }
    }
    out.append(points.last!)
    return out
}
func covered(_ a: [Point2], by b: [Point2], tolerance: Float) -> Int {
    a.filter { p in b.contains { q in (p.x - q.x) * (p.x - q.x) + (p.y - q.y) * (p.y - q.y) <= tolerance * tolerance } }.count
}

@Suite struct ExploreRidge {
    @Test(arguments: [1024]) func run(size: Int) throws {
        var parameters = SyntheticParameters()
        parameters.size = size
        parameters.frameCount = 60
        parameters.seed = 7
        parameters.contrast = .init(start: 20, peak: 30, washedOut: 55)
        let source = try SyntheticSource(parameters: parameters)
        let frame = Frame(slot: 0, geometry: source.geometry, stageCount: 1)
        let registration = Registration(geometry: source.geometry)
        let segmenter = DeviceSegmenter(geometry: source.geometry)
        var annotations = FrameAnnotations()
        var lines = ""
        while try source.read(into: frame) {
            annotations.motion = registration.estimate(UnsafeBufferPointer(frame.pixels))
            let start = Date()
            segmenter.segment(UnsafeBufferPointer(frame.pixels), into: &annotations)
            let wire = annotations.guidewire, catheter = annotations.catheter
            let ms = Date().timeIntervalSince(start) * 1000
            let truth = source.truth(forFrame: frame.index)
            var row = String(format: "%3d c%.2f %5.1fms", frame.index, truth.contrast, ms)
            for (trace, t) in [(wire, truth.guidewire), (catheter, truth.catheter)] {
                let d = densify(trace.centerline), g = densify(t.centerline)
                let p = d.isEmpty ? 0 : Float(covered(d, by: g, tolerance: 2)) / Float(d.count)
                let r = g.isEmpty ? 0 : Float(covered(g, by: d, tolerance: 2)) / Float(g.count)
                let f1 = p + r > 0 ? 2 * p * r / (p + r) : 0
                let tipError = trace.tip.map { ((($0.x - t.tip.x) * ($0.x - t.tip.x) + ($0.y - t.tip.y) * ($0.y - t.tip.y))).squareRoot() } ?? -1
                row += String(format: " | P %.2f R %.2f F1 %.2f tip %6.1f", p, r, f1, tipError)
            }
            if let c = catheter.tip { row += String(format: " cat (%.1f,%.1f) truth (%.1f,%.1f)", c.x, c.y, truth.catheter.tip.x, truth.catheter.tip.y) }
            lines += row + "\n"
        }
        print("size \(size)\n" + lines)
    }
}
