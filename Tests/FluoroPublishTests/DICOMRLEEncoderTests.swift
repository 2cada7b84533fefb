import Testing

@testable import FluoroPublish

/// DICOM RLE Lossless frames, decoded here as PS3.5 Annex G describes them, give back the RGB frame exactly, for rows
/// built to hit PackBits' edges: runs of exactly 2, 128 and 129 equal bytes, a single byte before a row's end, a
/// literal stretch longer than 128, and segments of odd length.
@Suite struct DICOMRLEEncoderTests {
    /// Annex G: the header's segment count and offsets, then each segment's PackBits into one colour plane.
    static func decode(_ data: [UInt8], width: Int, height: Int) -> [UInt8]? {
        func word(_ offset: Int) -> Int { (0..<4).reduce(0) { $0 | Int(data[offset + $1]) << (8 * $1) } }
        guard data.count >= 64, word(0) == 3 else { return nil }
        var rgb = [UInt8](repeating: 0, count: width * height * 3)
        for plane in 0..<3 {
            var input = word(4 + 4 * plane), produced = 0
            let end = plane < 2 ? word(8 + 4 * plane) : data.count
            guard input % 2 == 0, end % 2 == 0 else { return nil }  // segments start and end on even offsets
            while produced < width * height, input < end {
                let control = Int(Int8(bitPattern: data[input]))
                input += 1
                if control >= 0 {
                    for _ in 0...control {
                        rgb[3 * produced + plane] = data[input]
                        input += 1
                        produced += 1
                    }
                } else if control != -128 {
                    for _ in 0..<(1 - control) {
                        rgb[3 * produced + plane] = data[input]
                        produced += 1
                    }
                    input += 1
                }
            }
            guard produced == width * height else { return nil }
        }
        return rgb
    }

    @Test(arguments: [(300, 4), (129, 3), (1, 1), (7, 5)])
    func framesComeBackExactly(width: Int, height: Int) {
        var rgb = [UInt8](repeating: 0, count: width * height * 3)
        var generator = SystemRandomNumberGenerator()
        for y in 0..<height {
            for x in 0..<width {
                let index = 3 * (y * width + x)
                switch y % 4 {
                case 0:  // runs of 128, 129 and 2, then a single byte at the row's end
                    let value: UInt8 = x < 128 ? 10 : x < 257 ? 20 : x < 259 ? 30 : x == width - 1 ? 99 : 40
                    (rgb[index], rgb[index + 1], rgb[index + 2]) = (value, value &+ 1, value)
                case 1:  // a literal stretch: no two neighbours equal
                    (rgb[index], rgb[index + 1], rgb[index + 2]) = (UInt8(x % 251), UInt8((x * 7) % 253), UInt8(x % 2))
                case 2:
                    (rgb[index], rgb[index + 1], rgb[index + 2]) = (
                        UInt8.random(in: 0...3, using: &generator), 0, UInt8.random(in: 0...255, using: &generator)
                    )
                default:
                    (rgb[index], rgb[index + 1], rgb[index + 2]) = (255, 255, 255)
                }
            }
        }
        let encoder = DICOMRLEEncoder(width: width, height: height)
        let encoded = rgb.withUnsafeBufferPointer { Array(encoder.encode($0)) }
        #expect(encoded.count % 2 == 0)
        #expect(Self.decode(encoded, width: width, height: height) == rgb)
    }

    @Test func aFlatFrameShrinksToItsRuns() {
        let (width, height) = (512, 512)
        let rgb = [UInt8](repeating: 77, count: width * height * 3)
        let encoder = DICOMRLEEncoder(width: width, height: height)
        let encoded = rgb.withUnsafeBufferPointer { Array(encoder.encode($0)) }
        // Each row of each plane: four replicate runs of 128 (two bytes each).
        #expect(encoded.count == 64 + 3 * height * 4 * 2)
        #expect(Self.decode(encoded, width: width, height: height) == rgb)
    }
}
