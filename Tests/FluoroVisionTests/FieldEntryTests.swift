import FluoroCore
import Foundation
import Testing

@testable import FluoroVision

/// The segmenter's field-entry rule, on a frame made to the point: a fresh detection takes the line that enters the
/// field over a darker, longer one that does not (as a spine edge, a rib or an opacified vessel does not).
@Suite struct FieldEntryTests {
    /// A 512² 12-bit frame on a gentle gradient: a 7 px wide, moderately dark tube entering from the top edge and
    /// bending down to the middle, and a darker and longer 7 px band across the lower half touching no border.
    static func frame() -> [UInt16] {
        var pixels = [UInt16](repeating: 0, count: 512 * 512)
        func distanceToSegment(_ x: Double, _ y: Double, _ a: (Double, Double), _ b: (Double, Double)) -> Double {
            let (dx, dy) = (b.0 - a.0, b.1 - a.1)
            let t = max(0, min(1, ((x - a.0) * dx + (y - a.1) * dy) / (dx * dx + dy * dy)))
            return hypot(x - a.0 - t * dx, y - a.1 - t * dy)
        }
        for y in 0..<512 {
            for x in 0..<512 {
                let (fx, fy) = (Double(x), Double(y))
                var attenuation = 0.0
                let tube = min(distanceToSegment(fx, fy, (250, 0), (250, 160)), distanceToSegment(fx, fy, (250, 160), (300, 230)))
                if tube < 3.5 { attenuation += 0.25 }
                if distanceToSegment(fx, fy, (60, 380), (450, 330)) < 3.5 { attenuation += 0.45 }
                pixels[y * 512 + x] = UInt16(2500 * (1 + 0.1 * fx / 512) * exp(-attenuation))
            }
        }
        return pixels
    }

    static func segment(_ configure: (inout SegmentationParameters) -> Void = { _ in }) throws -> FrameAnnotations {
        let geometry = try FrameGeometry(width: 512, height: 512, format: .grey16, bitsStored: 12)
        var parameters = SegmentationParameters()
        configure(&parameters)
        let segmenter = try DeviceSegmenter(geometry: geometry, parameters: parameters)
        var annotations = FrameAnnotations()
        Self.frame().withUnsafeBufferPointer { segmenter.segment($0, into: &annotations) }
        return annotations
    }

    @Test func aFreshDetectionTakesTheLineEnteringTheField() throws {
        let found = try Self.segment()
        let catheter = found.catheter.centerline, wire = found.guidewire.centerline
        // The tube from the top edge (x 250, then towards (300, 230)), not the band across the lower half...
        #expect(catheter.allSatisfy { $0.y < 240 } && catheter.contains { $0.y < 20 } && catheter.contains { $0.y > 200 })
        // ...called catheter: a wire, if any, is the catheter's fading end (its tip at most 10 px beyond).
        let tip = try #require(found.catheter.tip)
        #expect(found.guidewire.tip.map { hypot($0.x - tip.x, $0.y - tip.y) <= 10 } ?? true, "\(wire.suffix(3))")

        // Without the rule (no end is near enough to the border) the darker band wins.
        let anywhere = try Self.segment { $0.entryDistance = -1 }
        let traced = anywhere.catheter.centerline + anywhere.guidewire.centerline
        #expect(!traced.isEmpty && traced.allSatisfy { $0.y > 300 })
    }
}
