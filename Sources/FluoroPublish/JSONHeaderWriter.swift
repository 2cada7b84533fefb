/// Writes a JSON object into a buffer allocated once, so a message header costs no allocation per frame.
struct JSONHeaderWriter {
    private let buffer: UnsafeMutableBufferPointer<UInt8>
    private(set) var count = 0
    private var needsComma = false

    init(capacity: Int) { buffer = .allocate(capacity: capacity) }

    func deallocate() { buffer.deallocate() }

    var bytes: UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: buffer.baseAddress, count: count) }

    /// Starts a new top-level object.
    mutating func reset() {
        count = 0
        needsComma = false
        raw(0x7B)  // {
    }

    /// Closes the top-level object.
    mutating func finish() { raw(0x7D) }

    mutating func key(_ name: StaticString) {
        separator()
        raw(0x22)
        for byte in UnsafeBufferPointer(start: name.utf8Start, count: name.utf8CodeUnitCount) { raw(byte) }
        raw(0x22)
        raw(0x3A)
    }

    mutating func key(_ name: String) {
        separator()
        string(name)
        raw(0x3A)
        needsComma = false
    }

    mutating func beginObject() { raw(0x7B); needsComma = false }
    mutating func endObject() { raw(0x7D); needsComma = true }
    mutating func beginArray() { raw(0x5B); needsComma = false }
    mutating func endArray() { raw(0x5D); needsComma = true }

    /// An array element separator, when needed.
    mutating func element() { separator() }

    mutating func string(_ value: String) {
        raw(0x22)
        for byte in value.utf8 {
            switch byte {
            case 0x22, 0x5C: raw(0x5C); raw(byte)
            case 0..<0x20: raw(0x20)  // control characters never occur in our names; keep the JSON valid
            default: raw(byte)
            }
        }
        raw(0x22)
        needsComma = true
    }

    /// `bytes` (UTF-8 without control characters, such as another JSON text) as a JSON string: quotes and
    /// backslashes escaped.
    mutating func string(bytes: UnsafeRawBufferPointer) {
        raw(0x22)
        for byte in bytes {
            if byte == 0x22 || byte == 0x5C { raw(0x5C) }
            raw(byte < 0x20 ? 0x20 : byte)
        }
        raw(0x22)
        needsComma = true
    }

    mutating func literal(_ text: StaticString) {
        for byte in UnsafeBufferPointer(start: text.utf8Start, count: text.utf8CodeUnitCount) { raw(byte) }
        needsComma = true
    }

    mutating func integer(_ value: Int) {
        if value < 0 { raw(0x2D) }
        var magnitude = value.magnitude
        var digits:
            (
                UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8,
                UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8
            ) =
                (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        var used = 0
        withUnsafeMutableBytes(of: &digits) { storage in
            repeat {
                storage[used] = 0x30 + UInt8(magnitude % 10)
                magnitude /= 10
                used += 1
            } while magnitude > 0
            for i in stride(from: used - 1, through: 0, by: -1) { raw(storage[i]) }
        }
        needsComma = true
    }

    /// A number with `decimals` digits after the point; NaN and infinities become null.
    mutating func number(_ value: Double, decimals: Int = 3) {
        guard value.isFinite, abs(value) < 1e15 else { literal("null"); return }
        var scale = 1.0
        for _ in 0..<decimals { scale *= 10 }
        let scaled = Int(clampingFinite: (abs(value) * scale).rounded())
        if value < 0, scaled != 0 { raw(0x2D) }
        var power = 1
        for _ in 0..<decimals { power *= 10 }
        integer(scaled / power)
        if decimals > 0 {
            raw(0x2E)
            var fraction = scaled % power
            var divisor = power / 10
            while divisor > 0 {
                raw(0x30 + UInt8(fraction / divisor))
                fraction %= divisor
                divisor /= 10
            }
        }
        needsComma = true
    }

    private mutating func separator() {
        if needsComma { raw(0x2C) }
        needsComma = false
    }

    /// The publisher sizes the buffer for the largest header it can write, so running out is a bug.
    @inline(__always)
    private mutating func raw(_ byte: UInt8) {
        assert(count < buffer.count, "JSON header buffer too small")
        guard count < buffer.count else { return }
        buffer[count] = byte
        count += 1
    }
}
