import FluoroCore

/// JPEG Lossless, process 14 (ITU T.81 Annex H): Huffman-coded differences from one of seven predictors,
/// 2 to 16 bits per sample, optional point transform and restart intervals. Greyscale (one component).
/// One decoder serves a whole run: its tables are allocated once and rebuilt in place for each frame.
final class JPEGLosslessDecoder {
    private struct HuffmanTable {
        /// For the next 9 bits: code length (0: longer than 9 bits) and symbol.
        var fastLength = [UInt8](repeating: 0, count: 512)
        var fastSymbol = [UInt8](repeating: 0, count: 512)
        /// For the next `differenceBits` bits: the whole difference (code and its extra bits) when both fit,
        /// with the bits it takes (0: use the slow path).
        var differenceLength = [UInt8](repeating: 0, count: 1 << differenceBits)
        var difference = [Int32](repeating: 0, count: 1 << differenceBits)
        /// Canonical decoding for longer codes (T.81 F.2.2.3).
        var maxCode = [Int32](repeating: -1, count: 18)
        var valueOffset = [Int32](repeating: 0, count: 17)
        var symbols = [UInt8](repeating: 0, count: 256)
        var symbolCount = 0
        var isDefined = false
    }

    private let path: String
    /// The frame being decoded, for messages.
    private var frame = 0
    private var tables = [HuffmanTable](repeating: HuffmanTable(), count: 4)
    private var counts = [Int](repeating: 0, count: 17)
    /// Look-ahead of the combined code-and-difference table.
    private static let differenceBits = 12

    init(path: String) { self.path = path }

    private func fail(_ detail: String) -> FluoroError {
        .malformed(path: path, detail: "JPEG Lossless frame \(frame): \(detail)")
    }

    /// Decodes frame `frame` from `data` into `output` (`width * height` samples); checks the size and precision it declares.
    func decode(_ data: UnsafeRawBufferPointer, frame: Int, width: Int, height: Int, into output: UnsafeMutableBufferPointer<UInt16>) throws
    {
        self.frame = frame
        for index in tables.indices { tables[index].isDefined = false }
        var precision = 0, restartInterval = 0
        var position = 0
        func byte(_ at: Int) throws -> Int {
            guard at < data.count else { throw FluoroError.truncated(path: path, detail: "JPEG frame \(frame) ends at byte \(data.count)") }
            return Int(data[at])
        }
        func word(_ at: Int) throws -> Int { try byte(at) << 8 | byte(at + 1) }

        guard try word(0) == 0xFFD8 else { throw fail("no start-of-image marker") }
        position = 2
        while true {
            // Skip fill bytes before a marker.
            guard try byte(position) == 0xFF else { throw fail("expected a marker at byte \(position)") }
            while try byte(position + 1) == 0xFF { position += 1 }
            let marker = try byte(position + 1)
            position += 2
            if marker == 0xD9 { throw fail("end of image before any scan") }
            let length = try word(position)
            guard length >= 2, position + length <= data.count else { throw fail("marker FF\(String(marker, radix: 16)) has a bad length") }
            let segment = position + 2, segmentEnd = position + length
            switch marker {
            case 0xC3:
                precision = try byte(segment)
                let lines = try word(segment + 1), samples = try word(segment + 3), components = try byte(segment + 5)
                guard components == 1 else {
                    throw FluoroError.unsupported(
                        path: path, detail: "JPEG Lossless frame \(frame) has \(components) components (greyscale has 1)")
                }
                guard lines == height, samples == width else {
                    throw fail("the JPEG frame is \(samples)x\(lines), the DICOM header says \(width)x\(height)")
                }
                guard (2...16).contains(precision) else { throw fail("precision \(precision) outside 2...16") }
            case 0xC0, 0xC1, 0xC2, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF:
                throw FluoroError.unsupported(
                    path: path, detail: "frame \(frame) is JPEG process SOF\(marker - 0xC0), not lossless process 14")
            case 0xC4:
                var cursor = segment
                while cursor < segmentEnd {
                    let info = try byte(cursor)
                    guard info >> 4 == 0, info & 0x0F < 4 else { throw fail("bad Huffman table id \(info)") }
                    var total = 0
                    for length in 1...16 { counts[length] = try byte(cursor + length); total += counts[length] }
                    guard total <= 256, cursor + 17 + total <= segmentEnd else { throw fail("Huffman table overruns its segment") }
                    try buildTable(
                        &tables[info & 0x0F], symbols: UnsafeRawBufferPointer(rebasing: data[(cursor + 17)..<(cursor + 17 + total)]))
                    cursor += 17 + total
                }
            case 0xDD:
                restartInterval = try word(segment)
            case 0xDA:
                guard precision > 0 else { throw fail("scan before the frame header") }
                let components = try byte(segment)
                guard components == 1 else { throw fail("scan with \(components) components") }
                let tableIndex = try byte(segment + 2) >> 4
                let predictor = try byte(segment + 1 + 2 * components)
                let pointTransform = try byte(segment + 3 + 2 * components) & 0x0F
                guard tableIndex < 4, tables[tableIndex].isDefined else { throw fail("scan uses undefined Huffman table \(tableIndex)") }
                let table = tables[tableIndex]
                guard (1...7).contains(predictor) else { throw fail("predictor \(predictor) outside 1...7") }
                guard pointTransform < precision else { throw fail("point transform \(pointTransform) >= precision") }
                try decodeScan(
                    data, from: segmentEnd, table: table, width: width, height: height, precision: precision,
                    predictor: predictor, pointTransform: pointTransform, restartInterval: restartInterval, into: output)
                return
            default:
                break  // APPn, COM, DQT and the like carry nothing a lossless greyscale decode needs
            }
            position = segmentEnd
        }
    }

    /// Rebuilds `table` in place from the code-length counts in `counts` and `symbols` (T.81 Annex C).
    private func buildTable(_ table: inout HuffmanTable, symbols: UnsafeRawBufferPointer) throws {
        for i in table.fastLength.indices { table.fastLength[i] = 0 }
        for i in table.differenceLength.indices { table.differenceLength[i] = 0 }
        for i in table.maxCode.indices { table.maxCode[i] = -1 }
        for (i, symbol) in symbols.enumerated() { table.symbols[i] = symbol }
        table.symbolCount = symbols.count
        var code: Int32 = 0, index: Int32 = 0
        for length in 1...16 {
            let count = Int32(counts[length])
            table.valueOffset[length] = index - code
            if count > 0 {
                if length <= 9 {
                    for symbolIndex in 0..<count {
                        let prefix = Int((code + symbolIndex) << (9 - length))
                        for fill in 0..<(1 << (9 - length)) {
                            table.fastLength[prefix + fill] = UInt8(length)
                            table.fastSymbol[prefix + fill] = symbols[Int(index + symbolIndex)]
                        }
                    }
                }
                code += count
                index += count
                table.maxCode[length] = code - 1
            }
            guard code <= (1 << length) else { throw fail("Huffman code lengths are inconsistent") }
            code <<= 1
        }
        table.maxCode[17] = Int32.max
        // Combined table: code plus extra bits in one look-up for the short (most frequent) differences.
        let lookahead = Self.differenceBits
        for pattern in 0..<(1 << lookahead) {
            let codeLength = Int(table.fastLength[pattern >> (lookahead - 9)])
            guard codeLength > 0 else { continue }
            let category = Int(table.fastSymbol[pattern >> (lookahead - 9)])
            guard category < 16, codeLength + category <= lookahead else { continue }
            let extra = category == 0 ? 0 : Int32((pattern >> (lookahead - codeLength - category)) & ((1 << category) - 1))
            let value = category == 0 ? 0 : (extra < (1 << (category - 1)) ? extra - (1 << category) + 1 : extra)
            table.differenceLength[pattern] = UInt8(codeLength + category)
            table.difference[pattern] = value
        }
        table.isDefined = true
    }

    private func decodeScan(
        _ data: UnsafeRawBufferPointer, from start: Int, table: HuffmanTable, width: Int, height: Int,
        precision: Int, predictor: Int, pointTransform: Int, restartInterval: Int,
        into output: UnsafeMutableBufferPointer<UInt16>
    ) throws {
        var bits = BitReader(data: data, position: start)
        let initial = Int32(1 << (precision - pointTransform - 1))
        let out = output.baseAddress!
        var untilRestart = restartInterval
        var resetPending = true  // first sample of the scan, or of a restart interval
        var firstLine = true  // Ra is the predictor on the first line (of the scan, or after a restart)
        let lookahead = Self.differenceBits
        try table.fastLength.withUnsafeBufferPointer { fastLength in
            try table.fastSymbol.withUnsafeBufferPointer { fastSymbol in
                try table.differenceLength.withUnsafeBufferPointer { differenceLength in
                    try table.difference.withUnsafeBufferPointer { differences in
                        for y in 0..<height {
                            let row = out + y * width
                            let above = row - width
                            for x in 0..<width {
                                if restartInterval > 0 {
                                    if untilRestart == 0 {
                                        try bits.restart(path: path, frame: frame)
                                        untilRestart = restartInterval
                                        resetPending = true
                                        firstLine = true
                                    }
                                    untilRestart -= 1
                                }
                                bits.fill()
                                var difference: Int32
                                let pattern = Int(bits.peek(lookahead))
                                let combinedLength = Int(differenceLength[pattern])
                                if combinedLength > 0 {
                                    // The frequent case: code and extra bits in one look-up.
                                    bits.consume(combinedLength)
                                    difference = differences[pattern]
                                } else {
                                    // Huffman-decode the difference category, then read its extra bits.
                                    let peek = Int(bits.peek(9))
                                    var category: Int
                                    let fast = Int(fastLength[peek])
                                    if fast > 0 {
                                        bits.consume(fast)
                                        category = Int(fastSymbol[peek])
                                    } else {
                                        var code = Int32(bits.peek(9))
                                        bits.consume(9)
                                        var length = 9
                                        while true {
                                            length += 1
                                            code = code << 1 | Int32(bits.take(1))
                                            if length > 16 { throw fail("invalid Huffman code at row \(y)") }
                                            if code <= table.maxCode[length] { break }
                                        }
                                        let symbolIndex = Int(code + table.valueOffset[length])
                                        guard symbolIndex >= 0, symbolIndex < table.symbolCount else {
                                            throw fail("invalid Huffman code at row \(y)")
                                        }
                                        category = Int(table.symbols[symbolIndex])
                                    }
                                    switch category {
                                    case 0: difference = 0
                                    case 16: difference = 32768
                                    case 1...15:
                                        bits.fill()
                                        let value = Int32(bits.take(category))
                                        difference = value < (1 << (category - 1)) ? value - (1 << category) + 1 : value
                                    default: throw fail("difference category \(category) at row \(y)")
                                    }
                                }
                                guard !bits.overran else {
                                    throw FluoroError.truncated(
                                        path: path, detail: "JPEG Lossless frame \(frame): entropy-coded data ends at row \(y)")
                                }
                                let prediction: Int32
                                if resetPending {
                                    prediction = initial
                                    resetPending = false
                                } else if firstLine {
                                    prediction = Int32(row[x - 1])
                                } else if x == 0 {
                                    prediction = Int32(above[0])
                                } else {
                                    let a = Int32(row[x - 1]), b = Int32(above[x]), c = Int32(above[x - 1])
                                    switch predictor {
                                    case 1: prediction = a
                                    case 2: prediction = b
                                    case 3: prediction = c
                                    case 4: prediction = a + b - c
                                    case 5: prediction = a + ((b - c) >> 1)
                                    case 6: prediction = b + ((a - c) >> 1)
                                    default: prediction = (a + b) >> 1
                                    }
                                }
                                row[x] = UInt16(truncatingIfNeeded: prediction &+ difference)
                            }
                            firstLine = false
                        }
                    }
                }
            }
        }
        if pointTransform > 0 {
            let shift = UInt16(pointTransform)
            for i in 0..<(width * height) { out[i] <<= shift }
        }
    }
}

/// Reads bits MSB first from JPEG entropy-coded data, removing stuffed zero bytes and stopping at markers.
struct BitReader {
    let data: UnsafeRawBufferPointer
    var position: Int
    private var buffer: UInt64 = 0
    private var count = 0
    /// The reader ran past the data (it fed zeros).
    private(set) var overran = false
    /// A marker was reached (its position is `position`).
    private var atMarker = false

    init(data: UnsafeRawBufferPointer, position: Int) {
        self.data = data
        self.position = position
    }

    /// Tops the buffer up to at least 57 bits (zeros past a marker or the end).
    @inline(__always)
    mutating func fill() {
        while count <= 56 {
            var byte: UInt64 = 0
            if !atMarker, position < data.count {
                let value = data[position]
                if value == 0xFF {
                    let next = position + 1 < data.count ? data[position + 1] : 0xD9
                    if next == 0 {
                        byte = 0xFF
                        position += 2
                    } else {
                        atMarker = true
                    }
                } else {
                    byte = UInt64(value)
                    position += 1
                }
            } else {
                padding += 8
            }
            buffer |= byte << UInt64(56 - count)
            count += 8
        }
    }

    /// Bits of zeros fed after the data ended (at a marker or the end of the fragment).
    private var padding = 0

    @inline(__always)
    func peek(_ n: Int) -> UInt64 { buffer >> UInt64(64 - n) }

    @inline(__always)
    mutating func consume(_ n: Int) {
        buffer <<= UInt64(n)
        count -= n
        if padding > 0, count < padding { overran = true }
    }

    @inline(__always)
    mutating func take(_ n: Int) -> UInt64 {
        guard n > 0 else { return 0 }
        let value = peek(n)
        consume(n)
        return value
    }

    /// Expects an RSTn marker: drops the remaining bits of the byte and the marker, resets the reader.
    mutating func restart(path: String, frame: Int) throws {
        buffer = 0
        count = 0
        padding = 0
        atMarker = false
        while position + 1 < data.count, data[position] == 0xFF, data[position + 1] == 0xFF { position += 1 }
        guard position + 1 < data.count, data[position] == 0xFF, (0xD0...0xD7).contains(data[position + 1]) else {
            throw FluoroError.malformed(path: path, detail: "JPEG Lossless frame \(frame): expected a restart marker at byte \(position)")
        }
        position += 2
    }
}
