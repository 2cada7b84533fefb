import CImageCodecs
import FluoroCore

/// JPEG-LS (CharLS) and JPEG 2000 (OpenJPEG), decoded through the small C wrappers in CImageCodecs.
enum LibraryCodecs {
    enum Codec { case jpegLS, jpeg2000 }

    /// Decodes one greyscale frame: 8-bit frames into `bytePlane` then widened, others straight into `output`.
    static func decode(_ codec: Codec, _ data: UnsafeRawBufferPointer, width: Int, height: Int, bytesPerSample: Int,
                       into output: UnsafeMutableBufferPointer<UInt16>, bytePlane: UnsafeMutableBufferPointer<UInt8>,
                       path: String, frame: Int) throws {
        var message = [CChar](repeating: 0, count: 256)
        let destination = bytesPerSample == 1 ? UnsafeMutableRawPointer(bytePlane.baseAddress!) : UnsafeMutableRawPointer(output.baseAddress!)
        let result = message.withUnsafeMutableBufferPointer { text in
            switch codec {
            case .jpegLS:
                return fluoro_jpegls_decode(data.baseAddress, data.count, destination, Int32(width), Int32(height),
                                            Int32(bytesPerSample), text.baseAddress, text.count)
            case .jpeg2000:
                return fluoro_jpeg2000_decode(data.baseAddress, data.count, destination, Int32(width), Int32(height),
                                              Int32(bytesPerSample), text.baseAddress, text.count)
            }
        }
        guard result == 0 else {
            throw FluoroError.malformed(path: path, detail: "frame \(frame): " + String(cString: message))
        }
        if bytesPerSample == 1 {
            for i in 0..<(width * height) { output[i] = UInt16(bytePlane[i]) }
        }
    }
}
