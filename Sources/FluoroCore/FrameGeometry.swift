/// How a source encodes its grey samples before they enter the pipeline.
public enum PixelFormat: String, Sendable, Equatable, CaseIterable {
    /// 8-bit grey (one byte per sample).
    case grey8
    /// 16-bit grey container (two bytes per sample, little endian); `bitsStored` says how many are used.
    case grey16

    /// Bytes per sample in the source encoding.
    public var bytesPerSample: Int { self == .grey8 ? 1 : 2 }
}

/// The size and sample format of every frame in a run, agreed when the graph is built.
///
/// Inside the pipeline every sample is held as `UInt16` whatever the source format, so each algorithm has
/// one sample type; `bitsStored` (1...16) says which range the values span (`0 ..< 1 << bitsStored`).
public struct FrameGeometry: Sendable, Equatable, CustomStringConvertible {
    public let width: Int
    public let height: Int
    public let format: PixelFormat
    public let bitsStored: Int

    /// The largest width or height the pipeline takes. X-ray detectors deliver at most 3072² (and fluoroscopy mostly
    /// 512² to 1024²); the frame pool holds a dozen frames, so a larger declared size is refused before anything is
    /// allocated rather than committing gigabytes.
    public static let maximumSide = 4096

    /// Creates a geometry; fails when a dimension is not in 1...`maximumSide` or `bitsStored` does not fit the format.
    public init(width: Int, height: Int, format: PixelFormat, bitsStored: Int? = nil) throws {
        let bits = bitsStored ?? (format == .grey8 ? 8 : 16)
        guard width > 0, height > 0, width <= Self.maximumSide, height <= Self.maximumSide else {
            throw FluoroError.invalidArgument("frame size \(width)x\(height) is outside 1...\(Self.maximumSide) a side")
        }
        guard bits >= 1, bits <= format.bytesPerSample * 8 else {
            throw FluoroError.invalidArgument("\(bits) bits stored do not fit \(format.rawValue)")
        }
        self.width = width
        self.height = height
        self.format = format
        self.bitsStored = bits
    }

    /// Number of samples in one frame.
    public var pixelCount: Int { width * height }
    /// The largest sample value the format can hold.
    public var maximumValue: UInt16 { UInt16(truncatingIfNeeded: (1 << bitsStored) - 1) }

    public var description: String { "\(width)x\(height) \(format.rawValue) (\(bitsStored) bits stored)" }
}

/// A point in image coordinates: x to the right, y down, in pixels, pixel centres at integers.
public struct Point2: Sendable, Equatable, Codable {
    public var x: Float
    public var y: Float
    public init(x: Float, y: Float) { self.x = x; self.y = y }
}
