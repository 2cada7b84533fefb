import FluoroCore

/// DICOM RLE Lossless (PS3.5 Annex G): a 64-byte header of segment offsets, then one PackBits segment per
/// byte plane (most significant byte first).
enum RLEDecoder {
    /// Decodes one frame of `bytesPerSample` (1 or 2) into `output` (`pixelCount` samples).
    static func decode(
        _ data: UnsafeRawBufferPointer, bytesPerSample: Int, into output: UnsafeMutableBufferPointer<UInt16>,
        plane: UnsafeMutableBufferPointer<UInt8>, path: String, frame: Int
    ) throws {
        func fail(_ detail: String) -> FluoroError { .malformed(path: path, detail: "RLE frame \(frame): \(detail)") }
        guard data.count >= 64 else { throw fail("\(data.count) bytes cannot hold the 64-byte RLE header") }
        let segmentCount = Int(UInt32(littleEndian: data.loadUnaligned(fromByteOffset: 0, as: UInt32.self)))
        guard segmentCount == bytesPerSample else {
            throw fail("\(segmentCount) segments for \(bytesPerSample)-byte grey samples (expected \(bytesPerSample))")
        }
        func offset(_ segment: Int) -> Int {
            segment < segmentCount
                ? Int(UInt32(littleEndian: data.loadUnaligned(fromByteOffset: 4 + segment * 4, as: UInt32.self))) : data.count
        }
        let pixelCount = output.count
        for segment in 0..<segmentCount {
            let start = offset(segment), end = offset(segment + 1)
            guard start >= 64, start <= end, end <= data.count else { throw fail("segment \(segment) offsets are out of range") }
            var input = start, produced = 0
            while produced < pixelCount {
                guard input < end else { throw fail("segment \(segment) ends after \(produced) of \(pixelCount) bytes") }
                let control = Int(Int8(bitPattern: data[input]))
                input += 1
                if control >= 0 {
                    let count = control + 1
                    guard input + count <= end, produced + count <= pixelCount else {
                        throw fail("segment \(segment) literal run overflows")
                    }
                    for i in 0..<count { plane[produced + i] = data[input + i] }
                    input += count
                    produced += count
                } else if control != -128 {
                    let count = 1 - control
                    guard input < end, produced + count <= pixelCount else { throw fail("segment \(segment) repeat run overflows") }
                    let value = data[input]
                    input += 1
                    for i in 0..<count { plane[produced + i] = value }
                    produced += count
                }
            }
            let shift = UInt16((segmentCount - 1 - segment) * 8)
            if segment == 0 {
                for i in 0..<pixelCount { output[i] = UInt16(plane[i]) << shift }
            } else {
                for i in 0..<pixelCount { output[i] |= UInt16(plane[i]) << shift }
            }
        }
    }
}
