import FluoroCore

/// The V4L2 pixel formats FluoroStream captures: grey at 8 to 16 bits, and YUYV video (of which only the luma
/// is kept, as a fluoroscopy picture is grey).
public enum CapturePixelFormat: String, CaseIterable, Sendable {
    /// 8-bit grey, one byte per pixel.
    case grey = "GREY"
    /// 10-bit grey in the low bits of a little-endian 16-bit word.
    case y10 = "Y10"
    /// 12-bit grey in the low bits of a little-endian 16-bit word.
    case y12 = "Y12"
    /// 14-bit grey in the low bits of a little-endian 16-bit word (flat-panel detectors).
    case y14 = "Y14"
    /// 16-bit grey, little endian.
    case y16 = "Y16"
    /// 4:2:2 video, Y0 U Y1 V: the luma bytes are kept.
    case yuyv = "YUYV"

    /// Parses a format name as `v4l2-ctl` prints it, case-insensitive, trailing spaces ignored ("Y16 " is Y16).
    public init(name: String) throws {
        let trimmed = name.trimmingTrailingSpaces().uppercased()
        guard let format = CapturePixelFormat(rawValue: trimmed) else {
            throw FluoroError.invalidArgument(
                "pixel format '\(name)' is not one FluoroStream captures; use one of "
                    + CapturePixelFormat.allCases.map(\.rawValue).joined(separator: ", "))
        }
        self = format
    }

    /// The format's V4L2 four-character code (`v4l2_fourcc`, first character in the low byte).
    public var fourCC: UInt32 {
        let padded = Array((rawValue + "    ").utf8.prefix(4))
        return UInt32(padded[0]) | UInt32(padded[1]) << 8 | UInt32(padded[2]) << 16 | UInt32(padded[3]) << 24
    }

    /// The format with this four-character code, if FluoroStream captures it.
    public init?(fourCC: UInt32) {
        guard let format = CapturePixelFormat.allCases.first(where: { $0.fourCC == fourCC }) else { return nil }
        self = format
    }

    /// Significant bits per sample.
    public var bitsStored: Int {
        switch self {
        case .grey, .yuyv: return 8
        case .y10: return 10
        case .y12: return 12
        case .y14: return 14
        case .y16: return 16
        }
    }

    /// Bytes each pixel takes in a line of the device's buffer.
    public var bytesPerPixel: Int { self == .grey ? 1 : 2 }

    /// How the frame's samples are held in the pipeline.
    public func geometry(width: Int, height: Int) throws -> FrameGeometry {
        try FrameGeometry(width: width, height: height, format: bitsStored == 8 ? .grey8 : .grey16, bitsStored: bitsStored)
    }

    /// Copies the grey samples (the luma, for YUYV) of a device buffer into `destination`, `width` × `height`,
    /// reading lines `bytesPerLine` apart. 10- to 14-bit samples are masked to their bit depth.
    public func copyLuma(
        from buffer: UnsafeRawPointer, bytesPerLine: Int, width: Int, height: Int,
        into destination: UnsafeMutablePointer<UInt16>
    ) {
        for row in 0..<height {
            let line = buffer + row * bytesPerLine
            let out = destination + row * width
            switch self {
            case .grey:
                let bytes = line.assumingMemoryBound(to: UInt8.self)
                for x in 0..<width { out[x] = UInt16(bytes[x]) }
            case .yuyv:
                let bytes = line.assumingMemoryBound(to: UInt8.self)
                for x in 0..<width { out[x] = UInt16(bytes[2 * x]) }
            case .y10, .y12, .y14, .y16:
                let mask = UInt16(truncatingIfNeeded: (1 << bitsStored) - 1)
                let bytes = line.assumingMemoryBound(to: UInt8.self)
                for x in 0..<width { out[x] = (UInt16(bytes[2 * x]) | UInt16(bytes[2 * x + 1]) << 8) & mask }
            }
        }
    }
}

/// A four-character code as text ("Y16 " stays with its space, as V4L2 defines it).
public func fourCCText(_ code: UInt32) -> String {
    let characters = (0..<4).map { UInt8(truncatingIfNeeded: code >> (8 * $0)) }
    var text = String(decoding: characters.map { (0x20...0x7E).contains($0) ? $0 : UInt8(ascii: "?") }, as: UTF8.self)
    if code & 0x8000_0000 != 0 { text = String(text.dropLast()) + String(UnicodeScalar(characters[3] & 0x7F)) + "-BE" }
    return text
}

extension String {
    func trimmingTrailingSpaces() -> String {
        var text = self
        while text.last == " " { text.removeLast() }
        return text
    }
}
