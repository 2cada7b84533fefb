import CTurboJPEG
import FluoroCore

/// JPEG Baseline (process 1, 8-bit) through libjpeg-turbo, decoded straight to 8-bit grey.
final class JPEGBaselineDecoder {
    private let handle: tjhandle
    private let path: String

    init(path: String) throws {
        guard let handle = tjInitDecompress() else {
            throw FluoroError.messaging(detail: "libjpeg-turbo could not be initialised")
        }
        self.handle = handle
        self.path = path
    }

    deinit { tjDestroy(handle) }

    /// Decodes one frame into `grey` (width × height bytes), checking the size the JPEG declares.
    func decode(_ data: UnsafeRawBufferPointer, width: Int, height: Int, frame: Int, into grey: UnsafeMutableBufferPointer<UInt8>) throws {
        var jpegWidth: Int32 = 0, jpegHeight: Int32 = 0, subsampling: Int32 = 0, colourspace: Int32 = 0
        let source = data.baseAddress!.assumingMemoryBound(to: UInt8.self)
        guard tjDecompressHeader3(handle, source, UInt(data.count), &jpegWidth, &jpegHeight, &subsampling, &colourspace) == 0 else {
            throw FluoroError.malformed(path: path, detail: "JPEG Baseline frame \(frame): \(String(cString: tjGetErrorStr2(handle)))")
        }
        guard Int(jpegWidth) == width, Int(jpegHeight) == height else {
            throw FluoroError.malformed(
                path: path,
                detail: "JPEG Baseline frame \(frame) is \(jpegWidth)x\(jpegHeight), "
                    + "the DICOM header says \(width)x\(height)")
        }
        let result = tjDecompress2(
            handle, source, UInt(data.count), grey.baseAddress, jpegWidth, Int32(width), jpegHeight,
            Int32(TJPF_GRAY.rawValue), Int32(TJFLAG_ACCURATEDCT))
        guard result == 0 || tjGetErrorCode(handle) == Int32(TJERR_WARNING.rawValue) else {
            throw FluoroError.malformed(path: path, detail: "JPEG Baseline frame \(frame): \(String(cString: tjGetErrorStr2(handle)))")
        }
    }
}
