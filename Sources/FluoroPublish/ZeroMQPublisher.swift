import CZeroMQ
import FluoroCore
#if canImport(Glibc)
import Glibc
#endif

/// The last stage: publishes each annotated frame over ZeroMQ in the imagezmq-compatible format.
///
/// Each frame is one two-part message: (1) a UTF-8 JSON header with imagezmq's keys `msg`, `dtype` and
/// `shape` plus FluoroStream's measurements, (2) the display image, `shape` = [height, width, 3] uint8,
/// C-contiguous RGB, or its JPEG with `.jpeg` encoding. A stock `imagezmq.ImageHub(open_port=..., REQ_REP=False)`
/// or any SUB socket reads it (the README's "Wire format" section is the contract). In layers mode each frame is
/// instead up to three topic messages (grey frame, devices, roadmap) for subscribers that render it themselves.
/// With CURVE, only allow-listed client keys are admitted.
///
/// Plain-text `tcp://` and `ipc://` endpoints are served by `ZMTPPublisher`, which speaks ZeroMQ's wire protocol
/// from buffers allocated once (a frame costs no allocation); CURVE and `inproc://` go through libzmq, whose sends
/// allocate each message.
///
/// Back-pressure follows the graph's policy. Live: a send never waits; a subscriber that cannot keep up
/// loses frames (it sees gaps in `sequence`): those that come while it is still taking an earlier one (libzmq: at
/// its high-water mark). Replay: sends wait for the slowest subscriber, so every subscriber receives every frame.
public final class ZeroMQPublisher: Stage {
    public let name = "publish"
    public let address: PublisherAddress
    /// Frames published.
    public private(set) var published = 0
    /// Live mode only: frames refused whole because the sending side was still busy with earlier ones (libzmq
    /// reported its queue full, or every batch of the plain-text publisher was still being written).
    public private(set) var refused = 0

    private let policy: Policy
    /// libzmq's XPUB socket (CURVE, inproc), or nil when `ownPublisher` serves the endpoint.
    private let socket: ZeroMQSocket?
    private let ownPublisher: ZMTPPublisher?
    private let authenticator: CurveAuthenticator?
    private var header: FrameHeader
    private let subscriptionBuffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 256, alignment: 8)
    private var subscriptionsSeen = 0

    /// Replay: how long a send may wait for a subscriber that stopped reading before the run fails.
    public let replayStallMilliseconds: Int32

    /// Whether sends may wait for subscribers.
    public enum Policy: Sendable { case live, replay }

    /// How the image part is sent: the RGB bytes, or JPEG (lossy, for display-only subscribers; imagezmq's
    /// `recv_jpg` reads it).
    public enum Encoding: Sendable, Equatable { case raw, jpeg(quality: Int) }
    public let encoding: Encoding
    private var jpeg: DisplayJPEGEncoder?
    /// Layers mode: each frame goes out as three topic messages (`frame`, `devices`, `roadmap`) instead of the
    /// annotated image (README, "Layers mode").
    public let layers: Bool
    private var deviceMask: UnsafeMutableBufferPointer<UInt8>?

    /// Binds the socket at once, so a busy or refused address fails before any frame is read.
    /// - Parameters:
    ///   - upstreamStages: names of the stages before this one, in order (their latencies go in the header).
    ///   - encoding: raw RGB (the default) or JPEG at a quality.
    ///   - layers: send the grey frame, the devices and the roadmap as separate topic messages.
    ///   - curve: encrypt with CURVE and admit only the listed client keys (checked through ZAP); any address.
    ///   - allowPlaintextNonLoopback: bind a non-loopback TCP address without CURVE (anyone on the network can
    ///     read the frames). Without CURVE or this, such an address is refused.
    ///   - replayStallMilliseconds: replay only: how long a frame may wait for a subscriber that stopped reading
    ///     before the run fails.
    public init(address: PublisherAddress, policy: Policy, streamName: String = "fluorostream",
                upstreamStages: [String], encoding: Encoding = .raw, layers: Bool = false, curve: CurveSecurity? = nil,
                allowPlaintextNonLoopback: Bool = false, replayStallMilliseconds: Int32 = 10_000) throws {
        guard address.isLocalOnly || curve != nil || allowPlaintextNonLoopback else {
            throw FluoroError.cannotBind(address: address.endpoint, reason: "not a loopback address; frames are patient images "
                                         + "and would be sent in plain text to the network (use 127.0.0.1, encrypt with "
                                         + "--curve-secret and --curve-clients (see fluoro keys), or pass "
                                         + "--insecure-plaintext to do it anyway)")
        }
        self.address = address
        self.policy = policy
        self.encoding = encoding
        self.layers = layers
        self.replayStallMilliseconds = replayStallMilliseconds
        header = FrameHeader(streamName: streamName, encoding: encoding == .raw ? "raw" : "jpeg", upstreamStages: upstreamStages)
        if curve == nil, let own = try ZMTPPublisher(endpoint: address.endpoint, replay: policy == .replay) {
            ownPublisher = own
            socket = nil
            authenticator = nil
            return
        }
        ownPublisher = nil
        let socket = try ZeroMQSocket(type: ZMQ_XPUB)
        self.socket = socket
        if let curve {
            authenticator = try CurveAuthenticator(sharingContextOf: socket, allowedKeys: curve.allowedClients)
            try socket.setOption(ZMQ_CURVE_SERVER, 1)
            try socket.setOption(ZMQ_CURVE_SECRETKEY, string: curve.server.secretKey!)
            try socket.setOption(ZMQ_ZAP_DOMAIN, string: streamName)
        } else {
            authenticator = nil
        }
        try socket.setOption(ZMQ_XPUB_VERBOSE, 1)
        switch policy {
        case .live:
            try socket.setOption(ZMQ_SNDHWM, layers ? 6 : 2)
        case .replay:
            try socket.setOption(ZMQ_SNDHWM, layers ? 48 : 16)
            try socket.setOption(ZMQ_XPUB_NODROP, 1)
            try socket.setOption(ZMQ_SNDTIMEO, replayStallMilliseconds)
        }
        try socket.bind(address.endpoint)
    }

    deinit {
        ownPublisher?.close(lingerMilliseconds: 0)  // its I/O thread holds it until closed
        authenticator?.stop()
        header.deallocate()
        subscriptionBuffer.deallocate()
        deviceMask?.deallocate()
    }

    /// Waits until `count` subscriptions have arrived (each SUB socket sends one per topic), or until
    /// `timeoutSeconds` pass. Returns whether they did. Frames sent before a subscriber joins never reach it.
    public func waitForSubscribers(_ count: Int, timeoutSeconds: Double) -> Bool {
        let deadline = MonotonicClock.now() + UInt64(max(timeoutSeconds, 0) * 1e9)
        while subscriptions < count {
            let now = MonotonicClock.now()
            guard now < deadline else { return false }
            if let socket {
                if socket.waitReadable(milliseconds: Int(min((deadline - now) / 1_000_000, 100) + 1)) { drainSubscriptions() }
            } else {
                usleep(1_000)
            }
        }
        return true
    }

    /// Subscription messages received so far.
    private var subscriptions: Int {
        ownPublisher?.subscriptions.load(ordering: .acquiring) ?? subscriptionsSeen
    }

    /// Plain-text publishing only: frames skipped for a subscriber still taking an earlier one (live), over all
    /// subscribers, and connections refused (with the last reason).
    public var subscriberCounts: (skipped: Int, refusedConnections: Int, lastRefusal: String?)? {
        ownPublisher.map { ($0.skipped.load(ordering: .relaxed), $0.refusedConnections.load(ordering: .relaxed), $0.lastRefusal) }
    }

    public func process(_ frame: Frame) throws {
        drainSubscriptions()
        guard try beginFrame() else { return }
        if layers {
            guard try publishLayers(of: frame) else { return }
        } else {
            let bytes = header.write(for: frame, sequence: published, now: MonotonicClock.now())
            let image = try jpeg?.encode(UnsafeBufferPointer(frame.display)) ?? UnsafeRawBufferPointer(frame.display)
            guard try send(bytes, image) else { return }
        }
        ownPublisher?.endFrame()
        published += 1
    }

    public func prepare(for geometry: FrameGeometry) throws {
        if layers { deviceMask = .allocate(capacity: geometry.pixelCount) }
        if case let .jpeg(quality) = encoding {
            jpeg = try DisplayJPEGEncoder(width: geometry.width, height: geometry.height, quality: quality)
        }
        // Room for a frame's messages: headers, the parts' framing and the largest payloads.
        let perMessage = FrameHeader.maximumSize + 64
        let payload = layers ? geometry.pixelCount * 4 : jpeg.map { Int($0.capacity) } ?? geometry.pixelCount * 3
        ownPublisher?.reserve(batchBytes: (layers ? 3 : 1) * perMessage + payload)
    }

    public func finish() throws {
        authenticator?.stop()
        let linger = policy == .replay ? 2000 : 0
        socket?.close(lingerMilliseconds: Int32(linger))
        ownPublisher?.close(lingerMilliseconds: linger)
    }

    /// Replay: a send waited `replayStallMilliseconds` for a subscriber.
    private var stalled: FluoroError {
        .messaging(detail: "\(address): a subscriber has not read for \(Double(replayStallMilliseconds) / 1000) s; "
                   + "replay waits for every subscriber")
    }

    /// Whether this frame can be sent: the plain-text publisher needs a free batch (replay waits for one).
    private func beginFrame() throws -> Bool {
        guard let ownPublisher else { return true }
        let wait = policy == .replay ? Int64(replayStallMilliseconds) * 1_000_000 : 0
        if ownPublisher.beginFrame(waitNanoseconds: wait) { return true }
        if policy == .replay { throw stalled }
        refused += 1
        return false
    }

    /// Sends one message of two or three parts (subscribers match their prefixes against the first). Live, libzmq:
    /// false when its queue refused the first part, which ends the frame.
    private func send(_ first: UnsafeRawBufferPointer, _ second: UnsafeRawBufferPointer, _ third: UnsafeRawBufferPointer? = nil) throws -> Bool {
        guard let socket else {
            ownPublisher!.append(first, second, third)
            return true
        }
        guard try socket.send(first, more: true, dontWait: policy == .live) else {
            if policy == .replay { throw stalled }
            refused += 1
            return false
        }
        _ = try socket.send(second, more: third != nil, dontWait: false)
        if let third { _ = try socket.send(third, more: false, dontWait: false) }
        return true
    }

    /// The layers mode's messages per frame, in order (a stored array: iterating it allocates nothing).
    private static let layerOrder: [FrameHeader.Layer] = [.frame, .devices, .roadmap]

    /// Layers mode: the topic messages of one frame. The first one that cannot be queued (live, libzmq) ends the
    /// frame for every subscriber it would reach late; replay waits as for whole frames.
    private func publishLayers(of frame: Frame) throws -> Bool {
        let now = MonotonicClock.now()
        let mask = deviceMask!
        mask.update(repeating: 0)
        Self.rasterise(frame.annotations.guidewire, value: 1, into: mask, width: frame.geometry.width)
        Self.rasterise(frame.annotations.catheter, value: 2, into: mask, width: frame.geometry.width)
        for layer in Self.layerOrder {
            let payload: UnsafeRawBufferPointer
            switch layer {
            case .frame: payload = UnsafeRawBufferPointer(frame.pixels)
            case .devices: payload = UnsafeRawBufferPointer(mask)
            case .roadmap, .display:
                guard frame.annotations.roadmap.drawn else { continue }
                payload = UnsafeRawBufferPointer(frame.roadmapLayer)
            }
            var topic = layer.rawValue
            let header = header.write(for: frame, sequence: published, now: now, layer: layer)
            guard try topic.withUTF8({ try send(UnsafeRawBufferPointer($0), header, payload) }) else { return false }
        }
        return true
    }

    /// Draws a device's centre line, one pixel wide, into `mask` with `value`.
    private static func rasterise(_ trace: DeviceTrace, value: UInt8, into mask: UnsafeMutableBufferPointer<UInt8>,
                                  width: Int) {
        let line = trace.centerline, height = mask.count / width
        guard line.count > 1 else { return }
        for k in 1..<line.count {
            let a = line[k - 1], b = line[k]
            let steps = max(1, Int(max(abs(b.x - a.x), abs(b.y - a.y)).rounded(.up)))
            for step in 0...steps {
                let t = Float(step) / Float(steps)
                let x = Int((a.x + t * (b.x - a.x)).rounded()), y = Int((a.y + t * (b.y - a.y)).rounded())
                if x >= 0, y >= 0, x < width, y < height { mask[y * width + x] = value }
            }
        }
    }

    /// With CURVE: connection handshakes admitted and refused so far (refused: unknown keys, plain-text peers).
    public var handshakes: (admitted: Int, refused: Int)? {
        authenticator.map { ($0.admitted.load(ordering: .relaxed), $0.refused.load(ordering: .relaxed)) }
    }

    /// Counts subscription messages (first byte 1) from subscribers.
    private func drainSubscriptions() {
        guard let socket else { return }
        while let size = socket.receiveNow(into: subscriptionBuffer) {
            if size > 0, subscriptionBuffer[0] == 1 { subscriptionsSeen += 1 }
        }
    }
}
