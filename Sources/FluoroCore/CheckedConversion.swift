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
}

// `init(clampingFinite:)` for each integer and floating-point type the code converts, written out: the generic
// `FixedWidthInteger.init(_:)` from a `BinaryFloatingPoint` is a slow bit-by-bit conversion, while these call the
// concrete initialisers (one instruction) once the value is known to be in range.
extension Int {
    /// The value rounded toward zero (as `init(_:)` does) and clamped to this type's range; NaN gives 0.
    @inlinable @inline(__always)
    public init(clampingFinite value: Float) {
        if value > Float(Int.min) && value < Float(Int.max) {
            self.init(value)
        } else if value.isNaN {
            self = 0
        } else {
            self = value <= Float(Int.min) ? .min : .max
        }
    }

    /// The value rounded toward zero (as `init(_:)` does) and clamped to this type's range; NaN gives 0.
    @inlinable @inline(__always)
    public init(clampingFinite value: Double) {
        if value > Double(Int.min) && value < Double(Int.max) {
            self.init(value)
        } else if value.isNaN {
            self = 0
        } else {
            self = value <= Double(Int.min) ? .min : .max
        }
    }
}

extension Int16 {
    /// The value rounded toward zero (as `init(_:)` does) and clamped to this type's range; NaN gives 0.
    @inlinable @inline(__always)
    public init(clampingFinite value: Float) {
        if value > Float(Int16.min) && value < Float(Int16.max) {
            self.init(value)
        } else if value.isNaN {
            self = 0
        } else {
            self = value <= Float(Int16.min) ? .min : .max
        }
    }

    /// The value rounded toward zero (as `init(_:)` does) and clamped to this type's range; NaN gives 0.
    @inlinable @inline(__always)
    public init(clampingFinite value: Double) {
        if value > Double(Int16.min) && value < Double(Int16.max) {
            self.init(value)
        } else if value.isNaN {
            self = 0
        } else {
            self = value <= Double(Int16.min) ? .min : .max
        }
    }
}

extension Int32 {
    /// The value rounded toward zero (as `init(_:)` does) and clamped to this type's range; NaN gives 0.
    @inlinable @inline(__always)
    public init(clampingFinite value: Float) {
        if value > Float(Int32.min) && value < Float(Int32.max) {
            self.init(value)
        } else if value.isNaN {
            self = 0
        } else {
            self = value <= Float(Int32.min) ? .min : .max
        }
    }

    /// The value rounded toward zero (as `init(_:)` does) and clamped to this type's range; NaN gives 0.
    @inlinable @inline(__always)
    public init(clampingFinite value: Double) {
        if value > Double(Int32.min) && value < Double(Int32.max) {
            self.init(value)
        } else if value.isNaN {
            self = 0
        } else {
            self = value <= Double(Int32.min) ? .min : .max
        }
    }
}

extension Int64 {
    /// The value rounded toward zero (as `init(_:)` does) and clamped to this type's range; NaN gives 0.
    @inlinable @inline(__always)
    public init(clampingFinite value: Float) {
        if value > Float(Int64.min) && value < Float(Int64.max) {
            self.init(value)
        } else if value.isNaN {
            self = 0
        } else {
            self = value <= Float(Int64.min) ? .min : .max
        }
    }

    /// The value rounded toward zero (as `init(_:)` does) and clamped to this type's range; NaN gives 0.
    @inlinable @inline(__always)
    public init(clampingFinite value: Double) {
        if value > Double(Int64.min) && value < Double(Int64.max) {
            self.init(value)
        } else if value.isNaN {
            self = 0
        } else {
            self = value <= Double(Int64.min) ? .min : .max
        }
    }
}

extension UInt8 {
    /// The value rounded toward zero (as `init(_:)` does) and clamped to this type's range; NaN gives 0.
    @inlinable @inline(__always)
    public init(clampingFinite value: Float) {
        if value > Float(UInt8.min) && value < Float(UInt8.max) {
            self.init(value)
        } else if value.isNaN {
            self = 0
        } else {
            self = value <= Float(UInt8.min) ? .min : .max
        }
    }

    /// The value rounded toward zero (as `init(_:)` does) and clamped to this type's range; NaN gives 0.
    @inlinable @inline(__always)
    public init(clampingFinite value: Double) {
        if value > Double(UInt8.min) && value < Double(UInt8.max) {
            self.init(value)
        } else if value.isNaN {
            self = 0
        } else {
            self = value <= Double(UInt8.min) ? .min : .max
        }
    }
}

extension UInt16 {
    /// The value rounded toward zero (as `init(_:)` does) and clamped to this type's range; NaN gives 0.
    @inlinable @inline(__always)
    public init(clampingFinite value: Float) {
        if value > Float(UInt16.min) && value < Float(UInt16.max) {
            self.init(value)
        } else if value.isNaN {
            self = 0
        } else {
            self = value <= Float(UInt16.min) ? .min : .max
        }
    }

    /// The value rounded toward zero (as `init(_:)` does) and clamped to this type's range; NaN gives 0.
    @inlinable @inline(__always)
    public init(clampingFinite value: Double) {
        if value > Double(UInt16.min) && value < Double(UInt16.max) {
            self.init(value)
        } else if value.isNaN {
            self = 0
        } else {
            self = value <= Double(UInt16.min) ? .min : .max
        }
    }
}

extension UInt32 {
    /// The value rounded toward zero (as `init(_:)` does) and clamped to this type's range; NaN gives 0.
    @inlinable @inline(__always)
    public init(clampingFinite value: Float) {
        if value > Float(UInt32.min) && value < Float(UInt32.max) {
            self.init(value)
        } else if value.isNaN {
            self = 0
        } else {
            self = value <= Float(UInt32.min) ? .min : .max
        }
    }

    /// The value rounded toward zero (as `init(_:)` does) and clamped to this type's range; NaN gives 0.
    @inlinable @inline(__always)
    public init(clampingFinite value: Double) {
        if value > Double(UInt32.min) && value < Double(UInt32.max) {
            self.init(value)
        } else if value.isNaN {
            self = 0
        } else {
            self = value <= Double(UInt32.min) ? .min : .max
        }
    }
}

extension UInt64 {
    /// The value rounded toward zero (as `init(_:)` does) and clamped to this type's range; NaN gives 0.
    @inlinable @inline(__always)
    public init(clampingFinite value: Float) {
        if value > Float(UInt64.min) && value < Float(UInt64.max) {
            self.init(value)
        } else if value.isNaN {
            self = 0
        } else {
            self = value <= Float(UInt64.min) ? .min : .max
        }
    }

    /// The value rounded toward zero (as `init(_:)` does) and clamped to this type's range; NaN gives 0.
    @inlinable @inline(__always)
    public init(clampingFinite value: Double) {
        if value > Double(UInt64.min) && value < Double(UInt64.max) {
            self.init(value)
        } else if value.isNaN {
            self = 0
        } else {
            self = value <= Double(UInt64.min) ? .min : .max
        }
    }
}

extension Int {
    /// The value rounded toward zero, or nil when it is NaN, infinite or outside `Int`'s range (written out for
    /// `Float` and `Double`, as `init(clampingFinite:)` is).
    @inlinable @inline(__always)
    public init?(checked value: Float) {
        guard value > Float(Int.min) && value < Float(Int.max) else {
            if value == Float(Int.min) { self = .min } else { return nil }
            return
        }
        self.init(value)
    }

    /// The value rounded toward zero, or nil when it is NaN, infinite or outside `Int`'s range.
    @inlinable @inline(__always)
    public init?(checked value: Double) {
        guard value > Double(Int.min) && value < Double(Int.max) else {
            if value == Double(Int.min) { self = .min } else { return nil }
            return
        }
        self.init(value)
    }
}
