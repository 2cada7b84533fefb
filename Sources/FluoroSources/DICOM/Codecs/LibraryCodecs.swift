import CImageCodecs
import FluoroCore

/// JPEG-LS (CharLS) and JPEG 2000 (OpenJPEG), decoded through the small C wrappers in CImageCodecs.
enum LibraryCodecs {
    enum Codec { case jpegLS, jpeg2000 }

    /// Decodes one greyscale frame: 8-bit frames into `bytePlane` then widened, others straight into `output`.
    static func decode(
        _ codec: Codec, _ data: UnsafeRawBufferPointer, width: Int, height: Int, bytesPerSample: Int,
        into output: UnsafeMutableBufferPointer<UInt16>, bytePlane: UnsafeMutableBufferPointer<UInt8>,
        path: String, frame: Int
    ) throws {
        let destination =
            bytesPerSample == 1 ? UnsafeMutableRawPointer(bytePlane.baseAddress!) : UnsafeMutableRawPointer(output.baseAddress!)
        // The message buffer lives on the stack: nothing is allocated per frame here.
        let failure: String? = withUnsafeTemporaryAllocation(of: CChar.self, capacity: 256) { text in
            text[0] = 0
            let result: Int32
            switch codec {
            case .jpegLS:
                result = fluoro_jpegls_decode(
                    data.baseAddress, data.count, destination, Int32(width), Int32(height),
                    Int32(bytesPerSample), text.baseAddress, text.count)
            case .jpeg2000:
                result = fluoro_jpeg2000_decode(
                    data.baseAddress, data.count, destination, Int32(width), Int32(height),
                    Int32(bytesPerSample), text.baseAddress, text.count)
            }
            return result == 0 ? nil : String(cString: text.baseAddress!)
        }
        if let failure { throw FluoroError.malformed(path: path, detail: "frame \(frame): " + failure) }
        if bytesPerSample == 1 {
            for i in 0..<(width * height) { output[i] = UInt16(bytePlane[i]) }
        }
    }
}
