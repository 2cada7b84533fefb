@testable import FluoroVision
import Testing

@Suite struct FieldMaskTests {
    /// A level (−log intensity) of `side`² with a flat field at 1.0 and, where `behindBlades` says so, 4.0 (an
    /// intensity e³ ≈ 20 times lower).
    func level(side: Int, behindBlades: (Int, Int) -> Bool) -> [Float] {
        (0..<(side * side)).map { behindBlades($0 % side, $0 / side) ? 4 : 1 }
    }

    @Test func bladesAndTheMarginAroundThemAreOutside() {
        let side = 128, mask = FieldMask(width: side, height: side, margin: 12)
        // A shutter over the left 20 columns.
        let image = level(side: side) { x, _ in x < 20 }
        #expect(image.withUnsafeBufferPointer { mask.update($0.baseAddress!) })
        for y in [0, 64, 127] {
            for x in 0..<side {
                #expect(mask.outside[y * side + x] == (x < 20 ? 1 : 0), "(\(x), \(y)) behind the blade")
                #expect(mask.inside[y * side + x] == (x > 31 ? 1 : 0), "(\(x), \(y)) inside the field")
            }
        }
    }

    /// At a low dose a pixel can be as dark as a blade by chance: lone dark pixels, and pairs, are not a collimator.
    @Test func loneDarkPixelsAreNotBlades() {
        let side = 128, mask = FieldMask(width: side, height: side, margin: 12)
        let image = level(side: side) { x, y in (x * 7 + y * 13) % 97 == 0 || (x == 40 && (y == 50 || y == 51)) }
        #expect(image.filter { $0 > 1 }.count > 100)
        #expect(!image.withUnsafeBufferPointer { mask.update($0.baseAddress!) })
        #expect(!mask.inside.contains(0) && !mask.outside.contains(1))
    }
}
