import FluoroCore

/// The stream header of a YUV4MPEG2 file: size, frame rate and colour space (of which we use luma).
public struct Y4MHeader: Sendable, Equatable {
    public var width: Int
    public var height: Int
    /// Frame rate as a fraction (frames per `frameRateDenominator` seconds).
    public var frameRateNumerator: Int
    public var frameRateDenominator: Int
    /// The colour space tag (`C...`), e.g. "mono", "mono12", "420jpeg", "420p16".
    public var colourSpace: String
    /// Bits per sample (8 for 8-bit tags; 9...16 for the high-bit-depth tags, stored in 2 bytes).
    public var bitsPerSample: Int
    /// Bytes of chroma that follow the luma plane in each frame (skipped).
    public var chromaBytes: Int

    /// Luma bytes per frame.
    public var lumaBytes: Int { width * height * (bitsPerSample > 8 ? 2 : 1) }

    /// Seconds per frame, when the header gives a usable rate.
    public var frameInterval: Double? {
        frameRateNumerator > 0 && frameRateDenominator > 0 ? Double(frameRateDenominator) / Double(frameRateNumerator) : nil
    }

    /// The pipeline geometry of the luma plane.
    public func geometry() throws -> FrameGeometry {
        try FrameGeometry(width: width, height: height, format: bitsPerSample > 8 ? .grey16 : .grey8, bitsStored: bitsPerSample)
    }

    /// Parses the text of the first line after the `YUV4MPEG2` signature; `path` names the input in errors.
    public static func parse(_ line: [UInt8], path: String) throws -> Y4MHeader {
        let text = String(decoding: line, as: UTF8.self)
        var fields = text.split(separator: " ", omittingEmptySubsequences: true)
        guard fields.first == "YUV4MPEG2" else {
            throw FluoroError.malformed(path: path, detail: "not a YUV4MPEG2 stream (expected the signature 'YUV4MPEG2')")
        }
        fields.removeFirst()
        var width = 0, height = 0, numerator = 0, denominator = 0
        var colourSpace = "420jpeg"
        for field in fields {
            let value = field.dropFirst()
            switch field.first {
            case "W": width = Int(value) ?? -1
            case "H": height = Int(value) ?? -1
            case "F":
                let parts = value.split(separator: ":")
                guard parts.count == 2, let n = Int(parts[0]), let d = Int(parts[1]), n > 0, d > 0 else {
                    throw FluoroError.malformed(
                        path: path,
                        detail: "bad frame rate '\(field)' (expected F<num>:<den>, "
                            + "both positive)")
                }
                (numerator, denominator) = (n, d)
            case "C": colourSpace = String(value)
            case "I":
                // Fields of an interlaced frame are woven line by line: the luma plane is not one picture.
                guard value == "p" || value == "?" else {
                    throw FluoroError.unsupported(
                        path: path,
                        detail: "interlaced Y4M ('I\(value)'): only progressive "
                            + "frames are processed (deinterlace first, e.g. ffmpeg -vf yadif)")
                }
            default: break  // aspect ratio and X- extensions do not change the luma plane
            }
        }
        guard width > 0, height > 0 else {
            throw FluoroError.malformed(path: path, detail: "header lacks a valid width and height ('\(text.printable)')")
        }
        guard width <= FrameGeometry.maximumSide, height <= FrameGeometry.maximumSide else {
            throw FluoroError.unsupported(
                path: path,
                detail: "frame size \(width)x\(height): the pipeline takes at most "
                    + "\(FrameGeometry.maximumSide) pixels a side")
        }
        let (bits, chromaSamples) = try layout(of: colourSpace, width: width, height: height, path: path)
        return Y4MHeader(
            width: width, height: height, frameRateNumerator: numerator, frameRateDenominator: denominator,
            colourSpace: colourSpace, bitsPerSample: bits,
            chromaBytes: chromaSamples * (bits > 8 ? 2 : 1))
    }

    /// Bits per sample and chroma samples per frame for a colour-space tag.
    static func layout(of tag: String, width: Int, height: Int, path: String) throws -> (bits: Int, chroma: Int) {
        let halfWidth = (width + 1) / 2, halfHeight = (height + 1) / 2
        func bits(after prefix: String) -> Int? {
            let rest = tag.dropFirst(prefix.count)
            if rest.isEmpty { return 8 }
            guard rest.first == "p", let value = Int(rest.dropFirst()), (9...16).contains(value) else { return nil }
            return value
        }
        if tag.hasPrefix("mono") {
            let rest = tag.dropFirst(4)
            if rest.isEmpty { return (8, 0) }
            if let value = Int(rest), (9...16).contains(value) { return (value, 0) }
        } else if ["420jpeg", "420paldv", "420mpeg2"].contains(tag) {
            return (8, 2 * halfWidth * halfHeight)
        } else if tag.hasPrefix("420"), let value = bits(after: "420") {
            return (value, 2 * halfWidth * halfHeight)
        } else if tag.hasPrefix("422"), let value = bits(after: "422") {
            return (value, 2 * halfWidth * height)
        } else if tag.hasPrefix("444"), !tag.hasPrefix("444alpha"), let value = bits(after: "444") {
            return (value, 2 * width * height)
        }
        throw FluoroError.unsupported(
            path: path,
            detail: "Y4M colour space 'C\(tag)' (supported: mono, mono9-16, "
                + "420jpeg/420paldv/420mpeg2, 420/422/444 and their p9-p16 forms)")
    }
}
