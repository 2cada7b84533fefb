import FluoroCore

/// One attribute as found in the file: its VR and where its value lies (nothing is copied).
public struct DICOMElement: Sendable {
    public let tag: DICOMTag
    public let vr: String
    /// Byte range of the value in the file (for a sequence or encapsulated pixel data: its whole extent).
    public let valueOffset: Int
    public let valueLength: Int
    /// Items of a sequence.
    public let items: [DICOMDataSet]
    /// Encapsulated pixel data: the byte ranges of the fragments after the Basic Offset Table item, and the
    /// Basic Offset Table's own byte range.
    public let fragments: [Range<Int>]
    public let basicOffsetTable: Range<Int>?
}

/// The attributes of a data set (or of a sequence item), by tag.
public struct DICOMDataSet: Sendable {
    public internal(set) var elements: [DICOMTag: DICOMElement] = [:]
    /// The bytes the element ranges point into.
    let file: MappedFile
    let bigEndian: Bool

    public subscript(tag: DICOMTag) -> DICOMElement? { elements[tag] }

    /// The raw value bytes of `tag`.
    func bytes(_ tag: DICOMTag) -> UnsafeRawBufferPointer? {
        guard let element = elements[tag], element.items.isEmpty, element.fragments.isEmpty else { return nil }
        return UnsafeRawBufferPointer(rebasing: file.bytes[element.valueOffset..<(element.valueOffset + element.valueLength)])
    }

    /// A text value with trailing padding removed (first value of a multi-valued attribute unless `all`).
    public func string(_ tag: DICOMTag, all: Bool = false) -> String? {
        guard let raw = bytes(tag) else { return nil }
        var text = String(decoding: raw, as: UTF8.self)
        while let last = text.last, last == " " || last == "\0" { text.removeLast() }
        while let first = text.first, first == " " { text.removeFirst() }
        if !all, let separator = text.firstIndex(of: "\\") { text = String(text[..<separator]) }
        return text
    }

    /// Numbers of a DS/IS/FL/FD/US/UL/SS/SL attribute, whatever its VR.
    public func numbers(_ tag: DICOMTag) -> [Double] {
        guard let element = elements[tag], let raw = bytes(tag) else { return [] }
        func words<T: FixedWidthInteger>(_ type: T.Type) -> [T] {
            stride(from: 0, to: raw.count - MemoryLayout<T>.size + 1, by: MemoryLayout<T>.size).map { offset in
                let value = raw.loadUnaligned(fromByteOffset: offset, as: T.self)
                return bigEndian ? T(bigEndian: value) : T(littleEndian: value)
            }
        }
        func binary<T: FixedWidthInteger>(_ type: T.Type) -> [Double] { words(type).map { Double($0) } }
        switch element.vr {
        case "US": return binary(UInt16.self)
        case "SS": return binary(Int16.self)
        case "UL": return binary(UInt32.self)
        case "SL": return binary(Int32.self)
        case "FL":
            return words(UInt32.self).map { Double(Float(bitPattern: $0)) }
        case "FD":
            return words(UInt64.self).map { Double(bitPattern: $0) }
        default:
            return (string(tag, all: true) ?? "").split(separator: "\\").compactMap {
                Double($0.trimmingCharacters(in: " "))
            }
        }
    }

    /// The first number of `tag`, as an integer; nil when absent, NaN, infinite or beyond `Int`'s range.
    public func integer(_ tag: DICOMTag) -> Int? { numbers(tag).first.flatMap { Int(checked: $0) } }
}

extension Substring {
    func trimmingCharacters(in set: Character) -> Substring {
        var text = self
        while text.first == set { text.removeFirst() }
        while text.last == set { text.removeLast() }
        return text
    }
}
