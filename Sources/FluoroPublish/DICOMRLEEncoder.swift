/// Compresses RGB frames (8 bits a sample) to DICOM RLE Lossless (PS3.5 Annex G): a 64-byte header of segment
/// offsets, then one PackBits segment per colour plane (red, green, blue), each row encoded on its own and each
/// segment padded to an even length. The output buffer is allocated once for the largest frame of the size.
///
/// Written here because no maintained C library encodes DICOM RLE apart from whole DICOM toolkits (DCMTK, GDCM)
/// whose C++ APIs would be wrapped for fifty lines of PackBits; `docs/decisions/` records it.
final class DICOMRLEEncoder {
    let width: Int
    let height: Int
    private let buffer: UnsafeMutableBufferPointer<UInt8>

    init(width: Int, height: Int) {
        self.width = width
        self.height = height
        // A literal run costs one header byte per 128 bytes; each segment may gain a pad byte.
        let rowWorst = width + (width + 127) / 128
        buffer = .allocate(capacity: 64 + 3 * (height * rowWorst + 1))
    }

    deinit { buffer.deallocate() }

    /// The RLE frame of `rgb` (`width` × `height` × 3 bytes, interleaved); valid until the next call.
    func encode(_ rgb: UnsafeBufferPointer<UInt8>) -> UnsafeRawBufferPointer {
        precondition(rgb.count >= width * height * 3)
        let out = buffer
        for index in 0..<64 { out[index] = 0 }
        storeLittleEndian(3, at: 0, in: out)
        var position = 64
        for plane in 0..<3 {
            storeLittleEndian(UInt32(position), at: 4 * (plane + 1), in: out)
            for row in 0..<height {
                position = encodeRow(rgb, start: (row * width) * 3 + plane, into: out, at: position)
            }
            if position % 2 == 1 {
                out[position] = 0x80  // a no-op header byte pads the segment to an even length
                position += 1
            }
        }
        return UnsafeRawBufferPointer(rebasing: UnsafeRawBufferPointer(out)[..<position])
    }

    /// PackBits of one row of one plane (samples 3 bytes apart): runs of 2 to 128 equal bytes as a replicate run,
    /// everything else as literal runs of up to 128 bytes that stop where a run of 3 begins.
    private func encodeRow(
        _ rgb: UnsafeBufferPointer<UInt8>, start: Int, into out: UnsafeMutableBufferPointer<UInt8>, at position: Int
    ) -> Int {
        var position = position
        func sample(_ x: Int) -> UInt8 { rgb[start + 3 * x] }
        var x = 0
        while x < width {
            var run = 1
            while x + run < width, run < 128, sample(x + run) == sample(x) { run += 1 }
            if run >= 2 {
                out[position] = UInt8(257 - run)
                out[position + 1] = sample(x)
                position += 2
                x += run
                continue
            }
            let first = x
            x += 1
            while x < width, x - first < 128 {
                if x + 2 < width, sample(x) == sample(x + 1), sample(x + 1) == sample(x + 2) { break }
                x += 1
            }
            out[position] = UInt8(x - first - 1)
            position += 1
            for literal in first..<x {
                out[position] = sample(literal)
                position += 1
            }
        }
        return position
    }

    private func storeLittleEndian(_ value: UInt32, at offset: Int, in out: UnsafeMutableBufferPointer<UInt8>) {
        for byte in 0..<4 { out[offset + byte] = UInt8(truncatingIfNeeded: value >> (8 * byte)) }
    }
}
