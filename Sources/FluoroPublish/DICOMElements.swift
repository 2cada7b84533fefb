import Foundation

/// Explicit VR Little Endian data elements, in the order added (callers add them in ascending tag order).
struct DICOMElements {
    private(set) var data = Data()

    /// A single text value copied from another file, cut to its VR's longest value (whole characters) and with control
    /// characters and backslashes made spaces, so that it cannot make the element invalid.
    mutating func addCopied(_ group: UInt16, _ element: UInt16, _ vr: String, _ value: String) {
        var kept = "", used = 0
        for character in value {
            let text = (character.asciiValue.map { $0 < 0x20 || $0 == 0x5C } ?? false) ? " " : String(character)
            guard used + text.utf8.count <= Self.maximumLength(vr) else { break }
            kept += text
            used += text.utf8.count
        }
        add(group, element, vr, kept)
    }

    mutating func add(_ group: UInt16, _ element: UInt16, _ vr: String, _ value: String) {
        var bytes = Data(value.utf8)
        if bytes.count % 2 == 1 { bytes.append(vr == "UI" ? 0 : 0x20) }
        add(group, element, vr, bytes)
    }

    mutating func add(_ group: UInt16, _ element: UInt16, _ vr: String, _ value: UInt16) {
        add(group, element, vr, withUnsafeBytes(of: value.littleEndian) { Data($0) })
    }

    mutating func add(_ group: UInt16, _ element: UInt16, _ vr: String, _ value: UInt32) {
        add(group, element, vr, withUnsafeBytes(of: value.littleEndian) { Data($0) })
    }

    mutating func add(_ group: UInt16, _ element: UInt16, _ vr: String, _ value: Data) {
        var value = value
        if value.count % 2 == 1 { value.append(vr == "UT" ? 0x20 : 0) }
        addHeader(group, element, vr, length: value.count)
        data.append(value)
    }

    /// The longest value of a text VR in bytes (PS3.5 table 6.2-1), or the element's 16-bit length limit.
    static func maximumLength(_ vr: String) -> Int {
        switch vr {
        case "DA": 8
        case "CS", "SH", "TM": 16
        case "DS": 16
        case "IS": 12
        case "LO", "PN", "UI": 64
        case "ST": 1024
        default: vr == "UT" ? Int(UInt32.max - 1) : 65_534
        }
    }

    /// A sequence (SQ) of the given items, each an item of defined length.
    mutating func addSequence(_ group: UInt16, _ element: UInt16, items: [DICOMElements]) {
        var content = DICOMElements()
        for item in items { content.addItem(item.data) }
        addHeader(group, element, "SQ", length: content.data.count)
        data.append(content.data)
    }

    /// An item (FFFE,E000) of defined length: a sequence's item or an encapsulated pixel data fragment.
    mutating func addItem(_ value: Data) {
        addItemHeader(length: value.count)
        data.append(value)
    }

    /// The header of an item (FFFE,E000) of `length` bytes.
    mutating func addItemHeader(length: Int) {
        appendTag(0xFFFE, 0xE000)
        withUnsafeBytes(of: UInt32(length).littleEndian) { data.append(contentsOf: $0) }
    }

    /// The sequence delimitation item (FFFE,E0DD) that ends encapsulated pixel data.
    mutating func addSequenceDelimiter() {
        appendTag(0xFFFE, 0xE0DD)
        data.append(contentsOf: [0, 0, 0, 0])
    }

    /// The element's tag, VR and length (4 bytes after two reserved ones for OB, OW, UT, UN, SQ); `length` nil
    /// writes the undefined length (encapsulated pixel data).
    mutating func addHeader(_ group: UInt16, _ element: UInt16, _ vr: String, length: Int?) {
        appendTag(group, element)
        data.append(contentsOf: Array(vr.utf8))
        if ["OB", "OW", "UT", "UN", "SQ", "OF"].contains(vr) {
            data.append(contentsOf: [0, 0])
            withUnsafeBytes(of: (length.map { UInt32($0) } ?? 0xFFFF_FFFF).littleEndian) { data.append(contentsOf: $0) }
        } else {
            withUnsafeBytes(of: UInt16(length ?? 0).littleEndian) { data.append(contentsOf: $0) }
        }
    }

    private mutating func appendTag(_ group: UInt16, _ element: UInt16) {
        withUnsafeBytes(of: group.littleEndian) { data.append(contentsOf: $0) }
        withUnsafeBytes(of: element.littleEndian) { data.append(contentsOf: $0) }
    }
}
