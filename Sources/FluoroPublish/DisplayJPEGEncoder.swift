import CTurboJPEG
import FluoroCore

/// Compresses display frames (RGB, 8 bits) to baseline JPEG with libjpeg-turbo, for display-only subscribers and
/// compressed recordings: lossy, a fraction of the size. The output buffer is allocated once for the largest JPEG of the frame size, so encoding
/// allocates nothing.
final class DisplayJPEGEncoder {
    let width: Int
    let height: Int
    let quality: Int
    /// The chroma subsampling (4:2:0 for subscribers; 4:2:2 for DICOM's YBR_FULL_422).
    let subsampling: TJSAMP
    private let handle: tjhandle
    private var buffer: UnsafeMutablePointer<UInt8>?
    /// The largest JPEG of the frame size.
    let capacity: UInt

    init(width: Int, height: Int, quality: Int, subsampling: TJSAMP = TJSAMP_420) throws {
        guard (1...100).contains(quality) else { throw FluoroError.invalidArgument("JPEG quality \(quality) is outside 1...100") }
        guard let handle = tjInitCompress() else { throw FluoroError.messaging(detail: "tjInitCompress failed") }
        self.handle = handle
        self.width = width
        self.height = height
        self.quality = quality
        self.subsampling = subsampling
        capacity = tjBufSize(Int32(width), Int32(height), Int32(subsampling.rawValue))
        buffer = tjAlloc(Int32(capacity))
    }

    deinit {
        tjFree(buffer)
        tjDestroy(handle)
    }

    /// The JPEG of `rgb` (`width` × `height` × 3 bytes); valid until the next call.
    func encode(_ rgb: UnsafeBufferPointer<UInt8>) throws -> UnsafeRawBufferPointer {
        precondition(rgb.count >= width * height * 3)
        var size = capacity
        guard
            tjCompress2(
                handle, rgb.baseAddress, Int32(width), 0, Int32(height), Int32(TJPF_RGB.rawValue), &buffer, &size,
                Int32(subsampling.rawValue), Int32(quality), TJFLAG_NOREALLOC | TJFLAG_FASTDCT) == 0
        else {
            throw FluoroError.messaging(detail: "JPEG encoding: \(String(cString: tjGetErrorStr2(handle)))")
        }
        return UnsafeRawBufferPointer(start: buffer, count: Int(size))
    }
}
