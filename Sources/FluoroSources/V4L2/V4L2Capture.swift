#if canImport(Glibc)
    import Glibc
#endif
import CV4L2
import FluoroCore

/// What to capture from a V4L2 device.
public struct CaptureSettings: Sendable, Equatable {
    /// The device node, e.g. /dev/video0.
    public var device: String
    public var pixelFormat: CapturePixelFormat
    /// Frame size; nil keeps the size the device is set to.
    public var width: Int?
    public var height: Int?
    /// Frames per second; nil keeps the device's rate.
    public var frameRate: Double?
    /// Driver buffers to stream with (mmap); at least 2, 4 or more so the device never waits for us.
    public var bufferCount: Int
    /// Seconds without a frame after which the device counts as stopped.
    public var timeout: Double

    public init(
        device: String, pixelFormat: CapturePixelFormat = .grey, width: Int? = nil, height: Int? = nil,
        frameRate: Double? = nil, bufferCount: Int = 4, timeout: Double = 2
    ) {
        self.device = device
        self.pixelFormat = pixelFormat
        self.width = width
        self.height = height
        self.frameRate = frameRate
        self.bufferCount = bufferCount
        self.timeout = timeout
    }
}

/// One filled driver buffer, until it is given back with `V4L2Capture.requeue`.
struct CapturedBuffer {
    var index: Int
    var bytesUsed: Int
    /// The driver's frame counter (gaps are frames the device dropped).
    var sequence: UInt32
    /// Capture time on the monotonic clock, in nanoseconds (the kernel's buffer timestamp).
    var timestamp: UInt64
    /// The driver flagged the data as possibly corrupt (V4L2_BUF_FLAG_ERROR).
    var isCorrupt: Bool
}

/// A streaming session on a V4L2 device: the format set, `bufferCount` driver buffers mapped and queued,
/// streaming on. Buffers are dequeued as frames arrive and re-queued as soon as their pixels are copied.
/// Streaming stops and the buffers are released when the session is released.
final class V4L2Capture {
    let device: VideoDevice
    let pixelFormat: CapturePixelFormat
    let width: Int, height: Int, bytesPerLine: Int
    /// Seconds per frame as the device reports it, when it does.
    let frameInterval: Double?
    private var buffers: [UnsafeMutableRawBufferPointer] = []
    private var streaming = false

    /// Opens the device, agrees the format, size and rate, maps the buffers and starts streaming.
    init(settings: CaptureSettings) throws {
        let device = try VideoDevice(path: settings.device)
        self.device = device
        pixelFormat = settings.pixelFormat
        guard device.isStreamingCapture else {
            throw FluoroError.unsupported(
                path: device.path,
                detail: "\(device.card) (driver \(device.driver)) is not a video "
                    + "capture device with streaming I/O")
        }
        let offered = device.formats().filter { !$0.emulated }
        guard offered.contains(where: { $0.fourCC == settings.pixelFormat.fourCC }) else {
            let usable = offered.filter(\.isCapturable).map { "'\($0.name)'" }
            throw FluoroError.unsupported(
                path: device.path,
                detail: "\(device.card) does not offer pixel format "
                    + "'\(settings.pixelFormat.rawValue)'; of the formats FluoroStream captures it offers "
                    + (usable.isEmpty ? "none" : usable.joined(separator: ", ")))
        }

        var format = v4l2_format()
        format.type = V4L2_BUF_TYPE_VIDEO_CAPTURE.rawValue
        try Self.check(device.control(fluoro_vidioc_g_fmt(), &format), "VIDIOC_G_FMT", device)
        format.fmt.pix.pixelformat = settings.pixelFormat.fourCC
        if let width = settings.width { format.fmt.pix.width = UInt32(width) }
        if let height = settings.height { format.fmt.pix.height = UInt32(height) }
        format.fmt.pix.field = V4L2_FIELD_NONE.rawValue
        format.fmt.pix.bytesperline = 0
        try Self.check(device.control(fluoro_vidioc_s_fmt(), &format), "VIDIOC_S_FMT", device)
        let pixels = format.fmt.pix
        guard pixels.pixelformat == settings.pixelFormat.fourCC else {
            throw FluoroError.unsupported(
                path: device.path,
                detail: "asked for '\(settings.pixelFormat.rawValue)', the "
                    + "device set '\(fourCCText(pixels.pixelformat))'")
        }
        let setWidth = Int(pixels.width), setHeight = Int(pixels.height)
        if settings.width.map({ $0 != setWidth }) ?? false || settings.height.map({ $0 != setHeight }) ?? false {
            let sizes = offered.first { $0.fourCC == settings.pixelFormat.fourCC }?.sizes.map(\.description) ?? []
            throw FluoroError.unsupported(
                path: device.path,
                detail: "cannot capture \(settings.width ?? setWidth)x"
                    + "\(settings.height ?? setHeight) '\(settings.pixelFormat.rawValue)' (the device chose \(setWidth)x"
                    + "\(setHeight)); it offers " + sizes.joined(separator: "; "))
        }
        width = setWidth
        height = setHeight
        guard pixels.field == V4L2_FIELD_NONE.rawValue || pixels.field == V4L2_FIELD_ANY.rawValue else {
            throw FluoroError.unsupported(
                path: device.path,
                detail: "interlaced video (field order \(pixels.field)); "
                    + "FluoroStream captures progressive frames")
        }
        bytesPerLine = max(Int(pixels.bytesperline), width * settings.pixelFormat.bytesPerPixel)

        frameInterval = try Self.setFrameRate(settings.frameRate, on: device)
        do {
            try mapBuffers(count: settings.bufferCount)
            var type = V4L2_BUF_TYPE_VIDEO_CAPTURE.rawValue
            try Self.check(device.control(fluoro_vidioc_streamon(), &type), "VIDIOC_STREAMON", device)
            streaming = true
        } catch {
            release()
            throw error
        }
    }

    deinit { release() }

    /// The frame's geometry in the pipeline.
    func geometry() throws -> FrameGeometry { try pixelFormat.geometry(width: width, height: height) }

    /// Bytes one frame takes in a driver buffer.
    var frameBytes: Int { bytesPerLine * (height - 1) + width * pixelFormat.bytesPerPixel }

    /// Waits up to `timeoutNanoseconds` (0: not at all) for a filled buffer; nil when none came in time. Throws
    /// when the device fails or disappears.
    func dequeue(timeoutNanoseconds: UInt64) throws -> CapturedBuffer? {
        // Poll first: libv4l2 reports every VIDIOC_DQBUF that finds no buffer on standard error.
        var descriptor = pollfd(fd: device.descriptor, events: Int16(POLLIN), revents: 0)
        let milliseconds = Int32(min(timeoutNanoseconds / 1_000_000, UInt64(Int32.max)))
        let ready = poll(&descriptor, 1, milliseconds)
        if ready < 0, errno != EINTR {
            throw FluoroError.deviceFailed(device: device.path, detail: "poll failed: \(VideoDevice.errnoText())")
        }
        guard ready > 0 else { return nil }
        if descriptor.revents & Int16(POLLIN) == 0, descriptor.revents & Int16(POLLERR | POLLHUP | POLLNVAL) != 0 {
            throw FluoroError.deviceFailed(
                device: device.path,
                detail: "the device reports an error on its stream "
                    + "(disconnected or a fatal streaming error)")
        }
        var buffer = v4l2_buffer()
        buffer.type = V4L2_BUF_TYPE_VIDEO_CAPTURE.rawValue
        buffer.memory = V4L2_MEMORY_MMAP.rawValue
        let failure = device.control(fluoro_vidioc_dqbuf(), &buffer)
        switch failure {
        case 0: break
        case EAGAIN: return nil
        case ENODEV: throw FluoroError.deviceFailed(device: device.path, detail: "the device disappeared (disconnected)")
        case EIO, EPIPE:
            throw FluoroError.deviceFailed(
                device: device.path,
                detail: "the device reported a fatal "
                    + "streaming error (\(VideoDevice.errnoText(failure)))")
        default: throw FluoroError.deviceFailed(device: device.path, detail: "VIDIOC_DQBUF failed: \(VideoDevice.errnoText(failure))")
        }
        let flags = buffer.flags
        // Drivers stamp with the monotonic clock (the pipeline's); the rare one that does not is stamped on arrival.
        let monotonic = flags & UInt32(V4L2_BUF_FLAG_TIMESTAMP_MASK) == UInt32(V4L2_BUF_FLAG_TIMESTAMP_MONOTONIC)
        let timestamp =
            monotonic
            ? UInt64(buffer.timestamp.tv_sec) &* 1_000_000_000 &+ UInt64(buffer.timestamp.tv_usec) &* 1000
            : MonotonicClock.now()
        return CapturedBuffer(
            index: Int(buffer.index), bytesUsed: Int(buffer.bytesused), sequence: buffer.sequence,
            timestamp: timestamp, isCorrupt: flags & UInt32(V4L2_BUF_FLAG_ERROR) != 0)
    }

    /// The pixels of a dequeued buffer.
    func data(of buffer: CapturedBuffer) -> UnsafeRawPointer { UnsafeRawPointer(buffers[buffer.index].baseAddress!) }

    /// Gives a buffer back to the driver to fill again.
    func requeue(_ captured: CapturedBuffer) throws {
        var buffer = v4l2_buffer()
        buffer.type = V4L2_BUF_TYPE_VIDEO_CAPTURE.rawValue
        buffer.memory = V4L2_MEMORY_MMAP.rawValue
        buffer.index = UInt32(captured.index)
        let failure = device.control(fluoro_vidioc_qbuf(), &buffer)
        guard failure == 0 else {
            throw FluoroError.deviceFailed(
                device: device.path,
                detail: failure == ENODEV
                    ? "the device disappeared (disconnected)"
                    : "VIDIOC_QBUF failed: \(VideoDevice.errnoText(failure))")
        }
    }

    private func mapBuffers(count: Int) throws {
        var request = v4l2_requestbuffers()
        request.count = UInt32(count)
        request.type = V4L2_BUF_TYPE_VIDEO_CAPTURE.rawValue
        request.memory = V4L2_MEMORY_MMAP.rawValue
        try Self.check(device.control(fluoro_vidioc_reqbufs(), &request), "VIDIOC_REQBUFS", device)
        guard request.count >= 2 else {
            throw FluoroError.deviceFailed(
                device: device.path,
                detail: "the driver granted \(request.count) buffer(s); "
                    + "streaming needs at least 2")
        }
        for index in 0..<Int(request.count) {
            var buffer = v4l2_buffer()
            buffer.type = V4L2_BUF_TYPE_VIDEO_CAPTURE.rawValue
            buffer.memory = V4L2_MEMORY_MMAP.rawValue
            buffer.index = UInt32(index)
            try Self.check(device.control(fluoro_vidioc_querybuf(), &buffer), "VIDIOC_QUERYBUF", device)
            guard Int(buffer.length) >= frameBytes else {
                throw FluoroError.deviceFailed(
                    device: device.path,
                    detail: "driver buffer \(index) holds \(buffer.length) "
                        + "bytes, a frame needs \(frameBytes)")
            }
            let address = fluoro_v4l2_mmap(Int(buffer.length), device.descriptor, Int64(buffer.m.offset))
            guard let address, address != MAP_FAILED else {
                throw FluoroError.deviceFailed(
                    device: device.path,
                    detail: "cannot map driver buffer \(index): "
                        + VideoDevice.errnoText())
            }
            buffers.append(UnsafeMutableRawBufferPointer(start: address, count: Int(buffer.length)))
            try requeue(CapturedBuffer(index: index, bytesUsed: 0, sequence: 0, timestamp: 0, isCorrupt: false))
        }
    }

    /// Sets the frame rate when asked and returns the interval the device reports.
    private static func setFrameRate(_ rate: Double?, on device: VideoDevice) throws -> Double? {
        var parameters = v4l2_streamparm()
        parameters.type = V4L2_BUF_TYPE_VIDEO_CAPTURE.rawValue
        let canSet =
            device.control(fluoro_vidioc_g_parm(), &parameters) == 0
            && parameters.parm.capture.capability & UInt32(V4L2_CAP_TIMEPERFRAME) != 0
        if let rate {
            guard canSet else {
                throw FluoroError.unsupported(path: device.path, detail: "the device's frame rate cannot be set (asked for \(rate) fps)")
            }
            parameters.parm.capture.timeperframe = v4l2_fract(numerator: 1000, denominator: UInt32(clampingFinite: (rate * 1000).rounded()))
            try check(device.control(fluoro_vidioc_s_parm(), &parameters), "VIDIOC_S_PARM", device)
        }
        let interval = parameters.parm.capture.timeperframe
        guard interval.numerator > 0, interval.denominator > 0 else { return nil }
        let seconds = Double(interval.numerator) / Double(interval.denominator)
        if let rate, abs(seconds * rate - 1) > 0.01 {
            throw FluoroError.unsupported(
                path: device.path,
                detail: "cannot capture at \(rate) fps at this format and size "
                    + "(the device chose \(String(format2: 1 / seconds)) fps)")
        }
        return seconds
    }

    private func release() {
        if streaming {
            var type = V4L2_BUF_TYPE_VIDEO_CAPTURE.rawValue
            _ = device.control(fluoro_vidioc_streamoff(), &type)
            streaming = false
        }
        for buffer in buffers { _ = fluoro_v4l2_munmap(buffer.baseAddress, buffer.count) }
        if !buffers.isEmpty {
            buffers.removeAll()
            var request = v4l2_requestbuffers()
            request.type = V4L2_BUF_TYPE_VIDEO_CAPTURE.rawValue
            request.memory = V4L2_MEMORY_MMAP.rawValue
            _ = device.control(fluoro_vidioc_reqbufs(), &request)
        }
    }

    private static func check(_ failure: Int32, _ request: String, _ device: VideoDevice) throws {
        switch failure {
        case 0: return
        case EBUSY:
            throw FluoroError.deviceFailed(device: device.path, detail: "busy: another program is capturing from it (\(request))")
        case ENODEV:
            throw FluoroError.deviceFailed(device: device.path, detail: "the device disappeared (disconnected) during \(request)")
        default:
            throw FluoroError.deviceFailed(device: device.path, detail: "\(request) failed: \(VideoDevice.errnoText(failure))")
        }
    }
}
