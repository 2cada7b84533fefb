/// Conversions of outside values (file attributes, options, estimates) to integers that cannot trap.
///
/// Swift's `Int(someDouble)` traps on NaN, infinity and values beyond the integer's range. Every conversion of a
/// value that came from outside the program, or was computed from one, goes through `init?(checked:)` (nil when the
/// value has no integer of this type) or `init(clampingFinite:)` (rounded toward zero like `Int(_:)`, clamped to the
/// type's range; NaN gives 0), so `grep -rn 'checked:\|clampingFinite:'` finds them all and no other conversion
/// from a floating-point value remains in Sources/.
extension FixedWidthInteger {
    /// The value rounded toward zero, or nil when it is NaN, infinite or outside this type's range.
    @inlinable
    public init?<Source: BinaryFloatingPoint>(checked value: Source) {
        guard value.isFinite else { return nil }
        self.init(exactly: value.rounded(.towardZero))
    }

    /// The value rounded toward zero (as `init(_:)` does) and clamped to this type's range; NaN gives 0.
    @inlinable @inline(__always)
    public init<Source: BinaryFloatingPoint>(clampingFinite value: Source) {
        if value.isNaN {
            self = 0
        } else if value <= Source(Self.min) {
            self = .min
        } else if value >= Source(Self.max) {
            self = .max
        } else {
            self.init(value)
        }
    }
}
