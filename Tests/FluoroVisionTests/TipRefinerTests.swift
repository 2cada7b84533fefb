import FluoroCore
@testable import FluoroVision
import Foundation
import Testing

@Suite struct TipRefinerTests {
    /// A 256² frame (12 bits, about 2000 counts with ±2 % noise) with a wire 1.2 px wide (σ) and 30 % dark along a
    /// slanted straight line from x = 20 to the tip at x = `tipX`.
    static let size = 256, slope: Float = 0.3, tipX: Float = 150

    static func frame() throws -> (FrameGeometry, [UInt16]) {
        let geometry = try FrameGeometry(width: size, height: size, format: .grey16, bitsStored: 12)
        var state: UInt64 = 12345
        func uniform() -> Float {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return Float(state >> 40) / Float(1 << 24)
        }
        let pixels = (0..<(size * size)).map { i -> UInt16 in
            let x = Float(i % size), y = Float(i / size)
            // Distance to the segment from (20, line(20)) to the tip.
            let along = min(max(x + slope * (y - 60 - slope * x) / (1 + slope * slope), 20), tipX)
            let dx = x - along, dy = y - (60 + slope * along)
            let wire = 0.3 * exp(-(dx * dx + dy * dy) / (2 * 1.2 * 1.2))
            let noise = 0.02 * (uniform() + uniform() + uniform() - 1.5) * 2
            return UInt16(2000 * (1 - wire) * (1 + noise) + Float(x) * 2)
        }
        return (geometry, pixels)
    }

    /// A traced line that ends 10 px short of the tip, at it, or 10 px beyond it (the working level at half the
    /// frame's resolution, as at 1024²): the refined tip is within a pixel and a half of the true one.
    @Test(arguments: [-10, -5, 0, 5, 10] as [Float])
    func theTipIsWhereTheWireEnds(tracedBeyond offset: Float) throws {
        let (geometry, pixels) = try Self.frame()
        let refiner = TipRefiner(geometry: geometry, factor: 2)
        let end = Self.tipX + offset
        let xs = Array(stride(from: Float(20), through: end, by: 2))
        let refined = try #require(
            pixels.withUnsafeBufferPointer { frame in
                refiner.refine(
                    frame, count: xs.count, catheterTip: 0, point: { Point2(x: xs[$0], y: 60 + Self.slope * xs[$0]) },
                    isInsideField: { _, _ in true })
            })
        let truth = Point2(x: Self.tipX, y: 60 + Self.slope * Self.tipX)
        let error = ((refined.tip.x - truth.x) * (refined.tip.x - truth.x) + (refined.tip.y - truth.y) * (refined.tip.y - truth.y))
            .squareRoot()
        #expect(error <= 1.5, "traced end \(offset) px from the tip: refined to (\(refined.tip.x), \(refined.tip.y)), \(error) px off")
        // The points kept before the tip all lie proximal to it.
        #expect(refined.pointsBefore <= xs.count && xs[0..<refined.pointsBefore].allSatisfy { $0 < refined.tip.x })
    }

    /// Where the line's continuation leaves the image or the exposed field, there is too little to judge: the
    /// traced tip stands (nil), rather than a change point found in a handful of samples.
    @Test func aLineEndingAtTheEdgeIsLeftAlone() throws {
        let (geometry, pixels) = try Self.frame()
        let refiner = TipRefiner(geometry: geometry, factor: 2)
        let xs = Array(stride(from: Float(20), through: Self.tipX, by: 2))
        pixels.withUnsafeBufferPointer { frame in
            let point = { (k: Int) in Point2(x: xs[k], y: 60 + Self.slope * xs[k]) }
            #expect(
                refiner.refine(
                    frame, count: xs.count, catheterTip: 0, point: point,
                    isInsideField: { x, _ in x < Self.tipX + 1 }) == nil)
            #expect(
                refiner.refine(
                    frame, count: xs.count, catheterTip: xs.count - 2, point: point,
                    isInsideField: { _, _ in true }) == nil, "nothing behind the end but the catheter")
        }
    }
}
