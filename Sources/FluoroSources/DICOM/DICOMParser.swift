import FluoroCore

/// Reads the elements of a DICOM Part 10 file: the preamble and meta group, then the data set in the
/// transfer syntax the meta group names (Explicit or Implicit VR Little Endian, Explicit VR Big Endian),
/// sequences and items of defined and undefined length, and encapsulated pixel data as fragment ranges.
/// Every length is checked against the file; problems are errors naming the file, element and byte offset.
struct DICOMParser {
    let file: MappedFile
    private var bytes: UnsafeRawBufferPointer { file.bytes }
    private var path: String { file.path }

    /// VRs whose explicit encoding has two reserved bytes and a 4-byte length.
    private static let longVRs: Set<String> = ["OB", "OD", "OF", "OL", "OV", "OW", "SQ", "SV", "UC", "UN", "UR", "UT", "UV"]
    private static let maximumDepth = 12

    init(file: MappedFile) { self.file = file }

    /// Parses the whole file; returns the meta group, the data set and its transfer syntax.
    func parse() throws -> (meta: DICOMDataSet, dataSet: DICOMDataSet, syntax: TransferSyntax) {
        guard bytes.count >= 132 else {
            throw FluoroError.truncated(path: path, detail: "\(bytes.count) bytes is too short for the 128-byte preamble and 'DICM'")
        }
        guard bytes[128] == 0x44, bytes[129] == 0x49, bytes[130] == 0x43, bytes[131] == 0x4D else {
            throw FluoroError.malformed(path: path, detail: "no 'DICM' prefix at byte 128: not a DICOM Part 10 file")
        }
        var offset = 132
        var meta = DICOMDataSet(file: file, bigEndian: false)
        // The meta group is always Explicit VR Little Endian; it ends where group 0002 does.
        while offset + 4 <= bytes.count, readUInt16(offset, bigEndian: false) == 0x0002 {
            let element = try readElement(at: &offset, explicit: true, bigEndian: false, depth: 0)
            meta.elements[element.tag] = element
        }
        guard let uid = meta.string(DICOMDictionary.transferSyntaxUID) else {
            throw FluoroError.malformed(path: path, detail: "the meta group has no Transfer Syntax UID (0002,0010)")
        }
        guard let syntax = TransferSyntax(rawValue: uid) else {
            throw FluoroError.unsupported(
                path: path,
                detail: "transfer syntax \(uid) is not one this reader knows; transcode "
                    + "it, e.g. with dcmconv +te (Explicit VR Little Endian)")
        }
        guard syntax != .deflatedExplicitVRLittleEndian else {
            throw FluoroError.unsupported(path: path, detail: "\(syntax.name) (\(uid)); transcode it, e.g. with dcmconv +te")
        }
        var dataSet = DICOMDataSet(file: file, bigEndian: syntax.isBigEndian)
        while offset < bytes.count {
            let element = try readElement(at: &offset, explicit: syntax.isExplicitVR, bigEndian: syntax.isBigEndian, depth: 0)
            dataSet.elements[element.tag] = element
        }
        return (meta, dataSet, syntax)
    }

    // MARK: - Elements

    private func readElement(at offset: inout Int, explicit: Bool, bigEndian: Bool, depth: Int) throws -> DICOMElement {
        let start = offset
        try need(8, at: offset, what: "an element header")
        let tag = DICOMTag(readUInt16(offset, bigEndian: bigEndian), readUInt16(offset + 2, bigEndian: bigEndian))
        var vr: String
        var length: UInt32
        if explicit && tag.group != 0xFFFE {
            vr = String(decoding: bytes[(offset + 4)..<(offset + 6)], as: UTF8.self)
            guard vr.utf8.allSatisfy({ $0 >= 0x41 && $0 <= 0x5A }) else {
                throw FluoroError.malformed(path: path, detail: "element \(tag) at byte \(start) has an invalid VR")
            }
            if Self.longVRs.contains(vr) {
                try need(12, at: offset, what: "the header of \(tag)")
                length = readUInt32(offset + 8, bigEndian: bigEndian)
                offset += 12
            } else {
                length = UInt32(readUInt16(offset + 6, bigEndian: bigEndian))
                offset += 8
            }
        } else {
            vr = DICOMDictionary.implicitVR[tag] ?? "UN"
            length = readUInt32(offset + 4, bigEndian: bigEndian)
            offset += 8
        }

        if length == 0xFFFF_FFFF {
            if tag == DICOMDictionary.pixelData {
                let (table, fragments) = try readFragments(at: &offset, tag: tag)
                return DICOMElement(
                    tag: tag, vr: vr, valueOffset: start, valueLength: offset - start, items: [],
                    fragments: fragments, basicOffsetTable: table)
            }
            guard vr == "SQ" || vr == "UN" else {
                throw FluoroError.malformed(path: path, detail: "element \(tag) (\(vr)) at byte \(start) has undefined length")
            }
            // Undefined-length UN is a sequence in Implicit VR Little Endian (PS3.5 6.2.2).
            let items = try readItems(
                at: &offset, end: nil, explicit: vr == "UN" ? false : explicit,
                bigEndian: bigEndian, depth: depth + 1, owner: tag)
            return DICOMElement(
                tag: tag, vr: "SQ", valueOffset: start, valueLength: offset - start, items: items,
                fragments: [], basicOffsetTable: nil)
        }

        let valueLength = Int(length)
        guard valueLength <= bytes.count - offset else {
            throw FluoroError.truncated(
                path: path,
                detail: "element \(tag) at byte \(start) needs \(valueLength) bytes, "
                    + "only \(bytes.count - offset) remain")
        }
        var items: [DICOMDataSet] = []
        if vr == "SQ" {
            var inner = offset
            items = try readItems(
                at: &inner, end: offset + valueLength, explicit: explicit, bigEndian: bigEndian,
                depth: depth + 1, owner: tag)
        }
        let element = DICOMElement(
            tag: tag, vr: vr, valueOffset: offset, valueLength: valueLength, items: items,
            fragments: [], basicOffsetTable: nil)
        offset += valueLength
        return element
    }

    /// Items of a sequence, up to `end` (defined length) or the Sequence Delimitation Item.
    private func readItems(
        at offset: inout Int, end: Int?, explicit: Bool, bigEndian: Bool, depth: Int,
        owner: DICOMTag
    ) throws -> [DICOMDataSet] {
        guard depth <= Self.maximumDepth else {
            throw FluoroError.malformed(path: path, detail: "sequences nested deeper than \(Self.maximumDepth) levels at byte \(offset)")
        }
        var items: [DICOMDataSet] = []
        while end.map({ offset < $0 }) ?? true {
            try need(8, at: offset, what: "an item of \(owner)")
            let tag = DICOMTag(readUInt16(offset, bigEndian: bigEndian), readUInt16(offset + 2, bigEndian: bigEndian))
            let length = readUInt32(offset + 4, bigEndian: bigEndian)
            offset += 8
            if tag == DICOMDictionary.sequenceDelimitation { break }
            guard tag == DICOMDictionary.item else {
                throw FluoroError.malformed(path: path, detail: "expected an item in \(owner) at byte \(offset - 8), found \(tag)")
            }
            var item = DICOMDataSet(file: file, bigEndian: bigEndian)
            if length == 0xFFFF_FFFF {
                while true {
                    try need(8, at: offset, what: "an element of an item of \(owner)")
                    if readUInt16(offset, bigEndian: bigEndian) == 0xFFFE, readUInt16(offset + 2, bigEndian: bigEndian) == 0xE00D {
                        offset += 8
                        break
                    }
                    let element = try readElement(at: &offset, explicit: explicit, bigEndian: bigEndian, depth: depth)
                    item.elements[element.tag] = element
                }
            } else {
                let itemEnd = offset + Int(length)
                guard itemEnd <= (end ?? bytes.count) else {
                    throw FluoroError.truncated(path: path, detail: "an item of \(owner) at byte \(offset - 8) runs past its end")
                }
                while offset < itemEnd {
                    let element = try readElement(at: &offset, explicit: explicit, bigEndian: bigEndian, depth: depth)
                    item.elements[element.tag] = element
                }
                guard offset == itemEnd else {
                    throw FluoroError.malformed(path: path, detail: "an item of \(owner) overruns its length at byte \(offset)")
                }
            }
            items.append(item)
        }
        return items
    }

    /// Encapsulated pixel data: the Basic Offset Table item, then fragments up to the Sequence Delimitation.
    private func readFragments(at offset: inout Int, tag: DICOMTag) throws -> (Range<Int>?, [Range<Int>]) {
        var table: Range<Int>?
        var fragments: [Range<Int>] = []
        var first = true
        while true {
            try need(8, at: offset, what: "a pixel data fragment")
            let itemTag = DICOMTag(readUInt16(offset, bigEndian: false), readUInt16(offset + 2, bigEndian: false))
            let length = Int(readUInt32(offset + 4, bigEndian: false))
            offset += 8
            if itemTag == DICOMDictionary.sequenceDelimitation { break }
            guard itemTag == DICOMDictionary.item else {
                throw FluoroError.malformed(
                    path: path, detail: "expected a fragment item in pixel data at byte \(offset - 8), found \(itemTag)")
            }
            guard length <= bytes.count - offset else {
                throw FluoroError.truncated(
                    path: path,
                    detail: "pixel data fragment \(fragments.count) at byte \(offset - 8) "
                        + "needs \(length) bytes, only \(bytes.count - offset) remain")
            }
            if first { table = offset..<(offset + length) } else { fragments.append(offset..<(offset + length)) }
            first = false
            offset += length
        }
        return (table, fragments)
    }

    // MARK: - Bytes

    private func need(_ count: Int, at offset: Int, what: String) throws {
        guard offset + count <= bytes.count else {
            throw FluoroError.truncated(path: path, detail: "the file ends at byte \(bytes.count) inside \(what) (byte \(offset))")
        }
    }

    private func readUInt16(_ offset: Int, bigEndian: Bool) -> UInt16 {
        let value = bytes.loadUnaligned(fromByteOffset: offset, as: UInt16.self)
        return bigEndian ? UInt16(bigEndian: value) : UInt16(littleEndian: value)
    }

    private func readUInt32(_ offset: Int, bigEndian: Bool) -> UInt32 {
        let value = bytes.loadUnaligned(fromByteOffset: offset, as: UInt32.self)
        return bigEndian ? UInt32(bigEndian: value) : UInt32(littleEndian: value)
    }
}
