import FluoroConcurrency
import FluoroCore

#if canImport(Glibc)
    import Glibc
#endif

/// Serves each processed frame to OpenIGTLink clients (3D Slicer, PLUS, pyigtl): a stage after the publisher that
/// copies the frame into an `OpenIGTLinkSnapshot`; `OpenIGTLinkSender`, on its own thread, packs the messages with
/// libOpenIGTLink (`OpenIGTLinkPacker`) and sends them.
///
/// Per frame, with the same time stamp: IMAGE `Image` (the annotated RGB display, uint8, with the run's pixel spacing
/// and an image-to-world matrix from `ImageToWorld`), POLYDATA `Guidewire` and `Catheter` (the centre line as one
/// polyline in RAS millimetres, from the proximal end to the tip; no cells when absent), POINT `Tips` (the tips
/// found, named `guidewire tip` and `catheter tip`), and STRING `Measurements` (the frame's JSON header,
/// docs/wire-format.md). OpenIGTLink has no encryption: a non-loopback address needs `allowNonLoopback`.
///
/// The stage writes into a buffer of a `TripleBuffer` and never waits for the sender or a client; a client slower
/// than the stream gets the newest frame when it is ready for one.
public final class OpenIGTLinkServer: Stage {
    public let name = "igtl"
    public let address: OpenIGTLinkAddress
    private let imaging: ImagingGeometry
    private var header: FrameHeader
    private var listener: Int32
    private var frames: TripleBuffer?
    private var sender: OpenIGTLinkSender?
    private var toWorld: ImageToWorld?
    /// Frames that reached this stage (the `sequence` of `Measurements`).
    private var sequence = 0

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
        header.deallocate()
    }

    public func prepare(for geometry: FrameGeometry) throws {
        let toWorld = ImageToWorld(imaging: imaging, width: geometry.width, height: geometry.height)
        self.toWorld = toWorld
        let frames = TripleBuffer(capacity: OpenIGTLinkSnapshot.capacity(width: geometry.width, height: geometry.height))
        self.frames = frames
        sender = try OpenIGTLinkSender(
            listener: listener, frames: frames, packer: try OpenIGTLinkPacker(toWorld: toWorld), name: "fluoro-igtl")
        listener = -1  // the sender closes it
    }

    public func process(_ frame: Frame) throws {
        guard let frames, let toWorld, let sender else { return }
        var time = timespec()
        clock_gettime(CLOCK_REALTIME, &time)
        let json = header.write(for: frame, sequence: sequence, now: MonotonicClock.now())
        sequence += 1
        let count = OpenIGTLinkSnapshot.write(
            frame, json: json, toWorld: toWorld, seconds: UInt32(truncatingIfNeeded: time.tv_sec),
            nanoseconds: UInt32(truncatingIfNeeded: time.tv_nsec), into: frames.writeBuffer)
        frames.publish(count: count)
        sender.ring()
    }

    public func finish() throws {
        sender?.stop()
    }

    /// Connections accepted, frames sent, clients disconnected for not reading, messages left out.
    public var statistics: (accepted: Int, framesSent: Int, disconnected: Int, leftOut: Int) {
        guard let sender else { return (0, 0, 0, 0) }
        return (
            sender.accepted.load(ordering: .relaxed), sender.framesSent.load(ordering: .relaxed),
            sender.disconnected.load(ordering: .relaxed), sender.leftOut.load(ordering: .relaxed)
        )
    }
}
