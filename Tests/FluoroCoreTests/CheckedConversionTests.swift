import FluoroCore
import Testing

/// Converting an outside number to an integer never traps: `checked:` says when there is no such integer and
/// `clampingFinite:` gives the nearest one a caller can bound-check.
@Suite struct CheckedConversionTests {
    @Test func valuesWithoutAnIntegerGiveNil() {
        for value in [Double.nan, .infinity, -.infinity, 1e19, -1e19, 9.3e18, .greatestFiniteMagnitude] {
            #expect(Int(checked: value) == nil, "\(value)")
        }
        #expect(UInt8(checked: 256.0) == nil && UInt8(checked: -1.0) == nil && UInt64(checked: Double(bitPattern: ~0)) == nil)
    }

    @Test func ordinaryValuesConvertAsInitDoes() {
        for value in [0.0, -0.0, 1.9, -1.9, 255.5, 4096, -9.2e18] {
            #expect(Int(checked: value) == Int(value), "\(value)")
            #expect(Int(clampingFinite: value) == Int(value), "\(value)")
        }
        #expect(UInt8(checked: 255.9) == 255 && Int32(checked: Float(-2_147_483_648)) == .min)
    }

    @Test func clampingGivesTheNearestEndAndZeroForNaN() {
        #expect(Int(clampingFinite: Double.nan) == 0)
        #expect(Int(clampingFinite: Double.infinity) == .max && Int(clampingFinite: -Double.infinity) == .min)
        #expect(UInt8(clampingFinite: 300.0) == 255 && UInt8(clampingFinite: -5.0) == 0)
        #expect(Int32(clampingFinite: Float(3e9)) == .max && UInt64(clampingFinite: 1e30) == .max)
        #expect(Int(clampingFinite: Float.greatestFiniteMagnitude) == .max)
    }
}
