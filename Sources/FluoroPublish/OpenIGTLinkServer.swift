import COpenIGTLink
import FluoroConcurrency
import FluoroCore

#if canImport(Glibc)
    import Glibc
#endif

/// Serves each processed frame to OpenIGTLink clients (3D Slicer, PLUS, pyigtl): a stage after the publisher whose
/// messages libOpenIGTLink packs (`COpenIGTLink`), sent by `OpenIGTLinkSender` on its own thread.
///
/// Per frame, with the same time stamp: IMAGE `Image` (the annotated RGB display, uint8, with the run's pixel spacing
/// and an image-to-world matrix from `ImageToWorld`), POLYDATA `Guidewire` and `Catheter` (the centre line as one
/// polyline in RAS millimetres, from the proximal end to the tip; no cells when absent), POINT `Tips` (the tips
/// found, named `guidewire tip` and `catheter tip`), and STRING `Measurements` (the frame's JSON header,
/// docs/wire-format.md). OpenIGTLink has no encryption: a non-loopback address needs `allowNonLoopback`.
///
/// The stage packs into a buffer of a `TripleBuffer` and never waits for a client; a client slower than the stream
/// gets the newest frame when it is ready for one.
public final class OpenIGTLinkServer: Stage {
    public let name = "igtl"
    public let address: OpenIGTLinkAddress
    private let imaging: ImagingGeometry
    private var header: FrameHeader
    private var listener: Int32
    private var packer: OpaquePointer?
    private var frames: TripleBuffer?
    private var sender: OpenIGTLinkSender?
    private var toWorld: ImageToWorld?
    private var points = UnsafeMutableBufferPointer<Float>.allocate(capacity: 3 * DeviceTrace.capacity)
    private var text = UnsafeMutableBufferPointer<CChar>.allocate(capacity: FrameHeader.maximumSize + 1)
    private var tipNames = UnsafeMutableBufferPointer<UnsafePointer<CChar>?>.allocate(capacity: 2)
    private var tipColours = UnsafeMutableBufferPointer<UInt8>.allocate(capacity: 8)
    private let guidewireTip = UnsafePointer(strdup("guidewire tip")!)
    private let catheterTip = UnsafePointer(strdup("catheter tip")!)
    /// The image's spacing (column, row, slice) and 4 × 4 matrix, as OpenIGTLink's IMAGE takes them.
    private let spacing = UnsafeMutableBufferPointer<Float>.allocate(capacity: 3)
    private let matrix = UnsafeMutableBufferPointer<Float>.allocate(capacity: 16)
    /// Messages left out because they did not fit (a STRING over 65535 bytes).
    public private(set) var skippedMessages = 0

    /// Listens at once, so a busy or refused address fails before any frame is read.
    /// - Parameters:
    ///   - upstreamStages: names of the stages before this one (their latencies go in `Measurements`).
    ///   - imaging: the run's pixel spacing and C-arm position (the image's spacing and matrix).
    ///   - allowNonLoopback: listen on an address other machines reach; frames are patient images and OpenIGTLink
    ///     sends them in plain text.
    public init(
        address: OpenIGTLinkAddress, upstreamStages: [String], imaging: ImagingGeometry = .unknown,
        allowNonLoopback: Bool = false
    ) throws {
        guard address.isLoopback || allowNonLoopback else {
            throw FluoroError.cannotBind(
                address: "--igtl \(address)",
                reason: "not a loopback address; OpenIGTLink has no encryption and frames are patient images "
                    + "(use 127.0.0.1, or pass --insecure-plaintext to do it anyway)")
        }
        self.address = address
        self.imaging = imaging
        header = FrameHeader(streamName: "fluorostream", upstreamStages: upstreamStages, imaging: imaging)
        listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard listener >= 0 else {
            throw FluoroError.cannotBind(address: "--igtl \(address)", reason: String(cString: strerror(errno)))
        }
        var on: Int32 = 1
        setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &on, socklen_t(MemoryLayout<Int32>.size))
        var socketAddress = sockaddr_in()
        socketAddress.sin_family = sa_family_t(AF_INET)
        socketAddress.sin_port = address.port.bigEndian
        socketAddress.sin_addr = address.host
        let bound = withUnsafePointer(to: &socketAddress) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(listener, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0, listen(listener, 8) == 0 else {
            let reason = String(cString: strerror(errno))
            close(listener)
            throw FluoroError.cannotBind(address: "--igtl \(address)", reason: reason)
        }
    }

    deinit {
        sender?.stop()
        if sender == nil, listener >= 0 { close(listener) }
        if let packer { fluoro_igtl_packer_destroy(packer) }
        header.deallocate()
        points.deallocate()
        text.deallocate()
        tipNames.deallocate()
        tipColours.deallocate()
        free(UnsafeMutablePointer(mutating: guidewireTip))
        free(UnsafeMutablePointer(mutating: catheterTip))
        spacing.deallocate()
        matrix.deallocate()
    }

    public func prepare(for geometry: FrameGeometry) throws {
        guard let made = fluoro_igtl_packer_create() else {
            throw FluoroError.messaging(detail: "--igtl \(address): the OpenIGTLink packer could not be made")
        }
        packer = made
        let toWorld = ImageToWorld(imaging: imaging, width: geometry.width, height: geometry.height)
        self.toWorld = toWorld
        (spacing[0], spacing[1], spacing[2]) = (Float(toWorld.spacing.column), Float(toWorld.spacing.row), 1)
        _ = matrix.update(fromContentsOf: toWorld.matrix)
        // The image, two full centre lines, the tips and the longest STRING, with room for their headers.
        let frames = TripleBuffer(capacity: geometry.pixelCount * 3 + 2 * DeviceTrace.capacity * 16 + 65_536 + 4096)
        self.frames = frames
        sender = try OpenIGTLinkSender(listener: listener, frames: frames, name: "fluoro-igtl")
        listener = -1  // the sender closes it
    }

    public func process(_ frame: Frame) throws {
        guard let packer, let frames, let toWorld, let sender else { return }
        var time = timespec()
        clock_gettime(CLOCK_REALTIME, &time)
        let stamp = (seconds: UInt32(truncatingIfNeeded: time.tv_sec), nanoseconds: UInt32(truncatingIfNeeded: time.tv_nsec))
        used = 0
        let geometry = frame.geometry
        var size = 0
        append(
            fluoro_igtl_pack_image(
                packer, "Image", Int32(geometry.width), Int32(geometry.height), 3, frame.display.baseAddress,
                spacing.baseAddress, matrix.baseAddress, stamp.seconds, stamp.nanoseconds, &size), size, into: frames)
        packLine("Guidewire", frame.annotations.guidewire, toWorld: toWorld, stamp: stamp, into: frames)
        packLine("Catheter", frame.annotations.catheter, toWorld: toWorld, stamp: stamp, into: frames)
        var tips = 0
        addTip(frame.annotations.guidewire, name: guidewireTip, colour: (255, 220, 0), at: &tips, toWorld: toWorld)
        addTip(frame.annotations.catheter, name: catheterTip, colour: (0, 220, 255), at: &tips, toWorld: toWorld)
        append(
            fluoro_igtl_pack_points(
                packer, "Tips", tipNames.baseAddress, points.baseAddress, tipColours.baseAddress, 3, Int32(tips),
                stamp.seconds, stamp.nanoseconds, &size), size, into: frames)
        let json = header.write(for: frame, sequence: sequence, now: MonotonicClock.now())
        sequence += 1
        if json.count < text.count {
            UnsafeMutableRawBufferPointer(text).copyMemory(from: json)
            text[json.count] = 0
            append(
                fluoro_igtl_pack_string(packer, "Measurements", text.baseAddress, stamp.seconds, stamp.nanoseconds, &size),
                size, into: frames)
        } else {
            skippedMessages += 1
        }
        frames.publish(count: used)
        sender.ring()
    }

    /// Frames that reached this stage (the `sequence` of `Measurements`).
    private var sequence = 0
    /// Bytes of this frame's messages in the triple buffer's write buffer so far.
    private var used = 0

    /// Copies a packed message after the frame's earlier ones (a message that does not fit is left out and counted).
    private func append(_ message: UnsafeRawPointer?, _ size: Int, into frames: TripleBuffer) {
        let out = frames.writeBuffer
        guard let message, used + size <= out.count else {
            skippedMessages += 1
            return
        }
        UnsafeMutableRawBufferPointer(rebasing: out[used..<(used + size)]).copyMemory(
            from: UnsafeRawBufferPointer(start: message, count: size))
        used += size
    }

    /// A device's centre line as a POLYDATA polyline in RAS millimetres.
    private func packLine(
        _ device: StaticString, _ trace: DeviceTrace, toWorld: ImageToWorld, stamp: (seconds: UInt32, nanoseconds: UInt32),
        into frames: TripleBuffer
    ) {
        let count = min(trace.centerline.count, DeviceTrace.capacity)
        var index = 0
        for point in trace.centerline where index < count {
            let world = toWorld.world(x: point.x, y: point.y)
            (points[3 * index], points[3 * index + 1], points[3 * index + 2]) = (world.x, world.y, world.z)
            index += 1
        }
        var size = 0
        let name = UnsafeRawPointer(device.utf8Start).assumingMemoryBound(to: CChar.self)  // literals end in NUL
        append(
            fluoro_igtl_pack_polyline(packer, name, points.baseAddress, Int32(count), stamp.seconds, stamp.nanoseconds, &size),
            size, into: frames)
    }

    /// Adds a device's tip, when found, as the next point of `Tips`.
    private func addTip(
        _ trace: DeviceTrace, name: UnsafePointer<CChar>, colour: (UInt8, UInt8, UInt8), at tips: inout Int,
        toWorld: ImageToWorld
    ) {
        guard let tip = trace.tip else { return }
        let world = toWorld.world(x: tip.x, y: tip.y)
        (points[3 * tips], points[3 * tips + 1], points[3 * tips + 2]) = (world.x, world.y, world.z)
        tipNames[tips] = name
        (tipColours[4 * tips], tipColours[4 * tips + 1], tipColours[4 * tips + 2], tipColours[4 * tips + 3]) =
            (colour.0, colour.1, colour.2, 255)
        tips += 1
    }

    public func finish() throws {
        sender?.stop()
    }

    /// Connections accepted, frames sent, clients disconnected for not reading.
    public var statistics: (accepted: Int, framesSent: Int, disconnected: Int) {
        guard let sender else { return (0, 0, 0) }
        return (
            sender.accepted.load(ordering: .relaxed), sender.framesSent.load(ordering: .relaxed),
            sender.disconnected.load(ordering: .relaxed)
        )
    }

}
