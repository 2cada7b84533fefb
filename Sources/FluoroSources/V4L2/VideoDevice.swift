#if canImport(Glibc)
    import Glibc
#endif
import CV4L2
import FluoroCore

/// An open V4L2 video node (through libv4l2): its identity, the formats it offers, and the ioctl calls the
/// capture makes. Closed when released.
public final class VideoDevice {
    /// The device node, e.g. /dev/video0.
    public let path: String
    /// The file descriptor libv4l2 opened.
    let descriptor: Int32
    /// What VIDIOC_QUERYCAP says.
    public let driver: String, card: String, busInfo: String
    /// The node's own capabilities (V4L2_CAP_*).
    public let capabilities: UInt32

    /// Opens `path` non-blocking (handing it to libv4l2) and checks that it is a V4L2 video capture node that can stream.
    public init(path: String) throws {
        self.path = path
        let descriptor = open(path, O_RDWR | O_NONBLOCK | O_CLOEXEC)
        guard descriptor >= 0 else {
            let reason =
                errno == ENOENT
                ? "no such device (is the frame grabber connected and its driver loaded?)"
                : errno == ENODEV
                    ? "the device disappeared (disconnected)"
                    : errno == EACCES ? "permission denied (add the user to the 'video' group)" : Self.errnoText()
            throw FluoroError.cannotOpen(path: path, reason: reason)
        }
        // Ask the kernel first, so a file that is not a V4L2 device gets our message rather than libv4l2's.
        var capability = v4l2_capability()
        guard ioctl(descriptor, fluoro_vidioc_querycap(), &capability) == 0 else {
            let reason = errno == ENOTTY ? "not a V4L2 video device" : "VIDIOC_QUERYCAP failed: \(Self.errnoText())"
            close(descriptor)
            throw FluoroError.cannotOpen(path: path, reason: reason)
        }
        guard fluoro_v4l2_fd_open(descriptor) == descriptor else {
            let reason = Self.errnoText()
            close(descriptor)
            throw FluoroError.cannotOpen(path: path, reason: "libv4l2 cannot take the device: \(reason)")
        }
        self.descriptor = descriptor
        driver = Self.text(of: capability.driver)
        card = Self.text(of: capability.card)
        busInfo = Self.text(of: capability.bus_info)
        capabilities = capability.capabilities & UInt32(V4L2_CAP_DEVICE_CAPS) != 0 ? capability.device_caps : capability.capabilities
    }

    deinit { fluoro_v4l2_close(descriptor) }

    /// Whether the node captures video and can stream (the two things FluoroStream needs).
    public var isStreamingCapture: Bool {
        capabilities & UInt32(V4L2_CAP_VIDEO_CAPTURE) != 0 && capabilities & UInt32(V4L2_CAP_STREAMING) != 0
    }

    /// "card (driver) at path", for messages.
    public var label: String { "\(path) (\(card), driver \(driver))" }

    /// Calls `ioctl`, retrying when a signal interrupts it; returns 0 or the errno value.
    func control<Argument>(_ request: UInt, _ argument: inout Argument) -> Int32 {
        withUnsafeMutablePointer(to: &argument) { pointer in
            while true {
                if fluoro_v4l2_ioctl(descriptor, request, pointer) == 0 { return 0 }
                if errno != EINTR { return errno }
            }
        }
    }

    /// Every capture format the device offers, with its frame sizes and, for fixed sizes, its frame rates.
    public func formats() -> [DeviceFormat] {
        var formats: [DeviceFormat] = []
        var description = v4l2_fmtdesc()
        description.type = V4L2_BUF_TYPE_VIDEO_CAPTURE.rawValue
        while control(fluoro_vidioc_enum_fmt(), &description) == 0 {
            let code = description.pixelformat
            formats.append(
                DeviceFormat(
                    fourCC: code, description: Self.text(of: description.description),
                    emulated: description.flags & UInt32(V4L2_FMT_FLAG_EMULATED) != 0,
                    sizes: frameSizes(of: code)))
            description.index += 1
        }
        return formats
    }

    private func frameSizes(of code: UInt32) -> [DeviceFrameSize] {
        var sizes: [DeviceFrameSize] = []
        var size = v4l2_frmsizeenum()
        size.pixel_format = code
        while control(fluoro_vidioc_enum_framesizes(), &size) == 0 {
            if size.type == V4L2_FRMSIZE_TYPE_DISCRETE.rawValue {
                let width = Int(size.discrete.width), height = Int(size.discrete.height)
                sizes.append(
                    .fixed(
                        width: width, height: height,
                        rates: frameRates(of: code, width: width, height: height)))
            } else {
                let range = size.stepwise
                sizes.append(
                    .range(
                        minimumWidth: Int(range.min_width), maximumWidth: Int(range.max_width),
                        minimumHeight: Int(range.min_height), maximumHeight: Int(range.max_height),
                        step: Int(range.step_width)))
                break
            }
            size.index += 1
        }
        return sizes
    }

    private func frameRates(of code: UInt32, width: Int, height: Int) -> [Double] {
        var rates: [Double] = []
        var interval = v4l2_frmivalenum()
        interval.pixel_format = code
        interval.width = UInt32(width)
        interval.height = UInt32(height)
        while control(fluoro_vidioc_enum_frameintervals(), &interval) == 0 {
            guard interval.type == V4L2_FRMIVAL_TYPE_DISCRETE.rawValue else { break }
            if interval.discrete.numerator > 0 {
                rates.append(Double(interval.discrete.denominator) / Double(interval.discrete.numerator))
            }
            interval.index += 1
        }
        return rates
    }

    /// The V4L2 video nodes present (/dev/video*), in numeric order.
    public static func nodePaths() -> [String] {
        guard let directory = opendir("/dev") else { return [] }
        defer { closedir(directory) }
        var numbers: [Int] = []
        while let entry = readdir(directory) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix(while: { $0 != 0 }), as: UTF8.self) }
            if name.hasPrefix("video"), let number = Int(name.dropFirst(5)) { numbers.append(number) }
        }
        return numbers.sorted().map { "/dev/video\($0)" }
    }

    static func errnoText(_ code: Int32 = errno) -> String { String(cString: strerror(code)) }

    /// A fixed-size C character array as text.
    static func text<Tuple>(of characters: Tuple) -> String {
        withUnsafeBytes(of: characters) { String(decoding: $0.prefix(while: { $0 != 0 }), as: UTF8.self) }
    }
}

/// A pixel format a device offers.
public struct DeviceFormat: Sendable, Equatable {
    public var fourCC: UInt32
    public var description: String
    /// Produced by libv4l2's conversion, not by the device.
    public var emulated: Bool
    public var sizes: [DeviceFrameSize]

    /// The code as V4L2 prints it ("GREY", "Y16 ").
    public var name: String { fourCCText(fourCC) }
    /// Whether FluoroStream captures this format (from the device itself, not through libv4l2's conversion).
    public var isCapturable: Bool { CapturePixelFormat(fourCC: fourCC) != nil && !emulated }
}

/// The frame sizes a format comes in.
public enum DeviceFrameSize: Sendable, Equatable, CustomStringConvertible {
    /// One size, with the frame rates it offers (frames per second; empty when the device does not say).
    case fixed(width: Int, height: Int, rates: [Double])
    /// Any size in a range (stepwise or continuous).
    case range(minimumWidth: Int, maximumWidth: Int, minimumHeight: Int, maximumHeight: Int, step: Int)

    public var description: String {
        switch self {
        case let .fixed(width, height, rates):
            let shown = rates.map { $0 == $0.rounded() ? String(Int(clampingFinite: $0)) : String(format2: $0) }
            return "\(width)x\(height)" + (shown.isEmpty ? "" : " @ " + shown.joined(separator: ", ") + " fps")
        case let .range(minimumWidth, maximumWidth, minimumHeight, maximumHeight, step):
            return "\(minimumWidth)x\(minimumHeight) to \(maximumWidth)x\(maximumHeight) (step \(step))"
        }
    }
}

extension String {
    /// A number with two decimals, without Foundation.
    init(format2 value: Double) {
        let hundredths = Int(clampingFinite: (value * 100).rounded())
        let fraction = hundredths % 100
        self = "\(hundredths / 100)." + (fraction < 10 ? "0" : "") + "\(fraction)"
    }
}
