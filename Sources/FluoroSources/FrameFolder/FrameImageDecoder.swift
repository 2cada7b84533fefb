import CPNG
import CTurboJPEG
import FluoroCore
import Foundation

/// Decodes one image file held in memory to 8-bit grey: JPEG through libjpeg-turbo's decompressor, BMP and PGM
/// through libjpeg-turbo's image loader, PNG through libpng's simplified API. Colour is converted to grey
/// (luminance); images with more than 8 bits per sample are refused.
final class FrameImageDecoder {
    private let jpeg: tjhandle
    /// libpng's simplified reader keeps the address of its `png_image` (its error handler writes there): one
    /// control structure at a fixed address, reused for every PNG.
    private let png = UnsafeMutablePointer<png_image>.allocate(capacity: 1)

    init() throws {
        guard let handle = tjInitDecompress() else {
            png.deallocate()
            throw FluoroError.messaging(detail: "libjpeg-turbo could not be initialised")
        }
        jpeg = handle
    }

    deinit {
        tjDestroy(jpeg)
        png.deallocate()
    }

    enum Format { case jpeg, png, bmp, pgm }

    /// The format from the file's first bytes (not its name).
    func format(of bytes: UnsafeRawBufferPointer, path: String) throws -> Format {
        func starts(_ signature: [UInt8]) -> Bool {
            bytes.count >= signature.count && bytes.prefix(signature.count).elementsEqual(signature)
        }
        if starts([0xFF, 0xD8, 0xFF]) { return .jpeg }
        if starts([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]) { return .png }
        if starts([0x42, 0x4D]) { return .bmp }
        if starts([0x50, 0x35]) { return .pgm }  // "P5": binary greymap
        throw FluoroError.unsupported(path: path, detail: "not a JPEG, PNG, BMP or binary PGM (P5) image")
    }

    /// Width and height of the image.
    func size(of bytes: UnsafeRawBufferPointer, path: String) throws -> (width: Int, height: Int) {
        switch try format(of: bytes, path: path) {
        case .jpeg:
            var width: Int32 = 0, height: Int32 = 0, subsampling: Int32 = 0, colourspace: Int32 = 0
            guard
                tjDecompressHeader3(
                    jpeg, bytes.baseAddress!.assumingMemoryBound(to: UInt8.self), UInt(bytes.count),
                    &width, &height, &subsampling, &colourspace) == 0
            else { throw FluoroError.malformed(path: path, detail: "JPEG: \(String(cString: tjGetErrorStr2(jpeg)))") }
            return (Int(width), Int(height))
        case .png:
            try beginPNG(bytes, path: path)
            defer { png_image_free(png) }
            return (Int(png.pointee.width), Int(png.pointee.height))
        case .bmp, .pgm:
            let loaded = try load(bytes, path: path)
            defer { tjFree(loaded.pixels) }
            return (loaded.width, loaded.height)
        }
    }

    /// Decodes the image into `grey` (width × height bytes), checking that it has that size.
    func decode(_ bytes: UnsafeRawBufferPointer, path: String, width: Int, height: Int, into grey: UnsafeMutableBufferPointer<UInt8>) throws
    {
        func checkSize(_ actual: (Int, Int)) throws {
            guard actual == (width, height) else {
                throw FluoroError.malformed(
                    path: path, detail: "frame is \(actual.0)x\(actual.1), the run's first frame \(width)x\(height)")
            }
        }
        switch try format(of: bytes, path: path) {
        case .jpeg:
            try checkSize(try size(of: bytes, path: path))
            let result = tjDecompress2(
                jpeg, bytes.baseAddress!.assumingMemoryBound(to: UInt8.self), UInt(bytes.count), grey.baseAddress, Int32(width),
                Int32(width), Int32(height), Int32(TJPF_GRAY.rawValue), Int32(TJFLAG_ACCURATEDCT))
            guard result == 0 || tjGetErrorCode(jpeg) == Int32(TJERR_WARNING.rawValue) else {
                throw FluoroError.malformed(path: path, detail: "JPEG: \(String(cString: tjGetErrorStr2(jpeg)))")
            }
        case .png:
            try beginPNG(bytes, path: path)
            defer { png_image_free(png) }
            try checkSize((Int(png.pointee.width), Int(png.pointee.height)))
            png.pointee.format = UInt32(PNG_FORMAT_GRAY)
            guard png_image_finish_read(png, nil, grey.baseAddress, Int32(width), nil) != 0 else {
                throw FluoroError.malformed(path: path, detail: "PNG: \(Self.message(of: png.pointee))")
            }
        case .bmp, .pgm:
            let loaded = try load(bytes, path: path)
            defer { tjFree(loaded.pixels) }
            try checkSize((loaded.width, loaded.height))
            grey.baseAddress!.update(from: loaded.pixels, count: width * height)
        }
    }

    /// Reads the PNG's header into `png` (free it with `png_image_free`).
    private func beginPNG(_ bytes: UnsafeRawBufferPointer, path: String) throws {
        png.initialize(to: png_image())
        png.pointee.version = UInt32(PNG_IMAGE_VERSION)
        guard png_image_begin_read_from_memory(png, bytes.baseAddress, bytes.count) != 0 else {
            let message = Self.message(of: png.pointee)
            png_image_free(png)
            throw FluoroError.malformed(path: path, detail: "PNG: \(message)")
        }
        // 16-bit PNGs would be converted to linear light by libpng's simplified reader: refused rather than altered.
        guard png.pointee.format & UInt32(PNG_FORMAT_FLAG_LINEAR) == 0 else {
            png_image_free(png)
            throw FluoroError.unsupported(path: path, detail: "16-bit PNG frames (8-bit grey or colour PNGs are read)")
        }
    }

    /// The maximum sample value in a binary PGM's header (the fourth token), when readable.
    static func pgmMaximum(_ bytes: UnsafeRawBufferPointer) -> Int? {
        var tokens: [String] = [], current = "", inComment = false
        for byte in bytes.prefix(256) {
            if inComment {
                if byte == 0x0A { inComment = false }
                continue
            }
            if byte == 0x23 { inComment = true; continue }  // '#'
            if byte == 0x20 || byte == 0x0A || byte == 0x0D || byte == 0x09 {
                if !current.isEmpty { tokens.append(current); current = "" }
                if tokens.count == 4 { break }
            } else {
                current.append(Character(UnicodeScalar(byte)))
            }
        }
        return tokens.count == 4 ? Int(tokens[3]) : nil
    }

    private static func message(of image: png_image) -> String {
        withUnsafeBytes(of: image.message) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
    }

    /// BMP and PGM through libjpeg-turbo's loader, which reads the file itself (and allocates the image it returns).
    private func load(_ bytes: UnsafeRawBufferPointer, path: String) throws -> (
        pixels: UnsafeMutablePointer<UInt8>, width: Int, height: Int
    ) {
        if try format(of: bytes, path: path) == .pgm, let maximum = Self.pgmMaximum(bytes), maximum > 255 {
            // The loader would scale the samples to 8 bits.
            throw FluoroError.unsupported(path: path, detail: "PGM with maximum value \(maximum) (8-bit PGMs are read)")
        }
        var width: Int32 = 0, height: Int32 = 0, pixelFormat = Int32(TJPF_GRAY.rawValue)
        guard let pixels = tjLoadImage(path, &width, 1, &height, &pixelFormat, 0) else {
            throw FluoroError.malformed(path: path, detail: "\(String(cString: tjGetErrorStr2(nil)))")
        }
        return (pixels, Int(width), Int(height))
    }
}
