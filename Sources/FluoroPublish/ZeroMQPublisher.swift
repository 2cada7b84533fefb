import CZeroMQ
import FluoroCore

/// The last stage: publishes each annotated frame over ZeroMQ in the imagezmq-compatible format.
///
/// Each frame is one two-part message: (1) a UTF-8 JSON header with imagezmq's keys `msg`, `dtype` and
/// `shape` plus FluoroStream's measurements, (2) the display image, `shape` = [height, width, 3] uint8,
/// C-contiguous RGB, or its JPEG with `.jpeg` encoding. A stock `imagezmq.ImageHub(open_port=..., REQ_REP=False)`
/// or any SUB socket reads it (the README's "Wire format" section is the contract). In layers mode each frame is
/// instead up to three topic messages (grey frame, devices, roadmap) for subscribers that render it themselves.
/// With CURVE, only allow-listed client keys are admitted.
///
/// Back-pressure follows the graph's policy. Live: a send never waits; a subscriber that cannot keep up
/// loses frames at its high-water mark (it sees gaps in `sequence`). Replay: sends wait for the slowest
/// subscriber (`ZMQ_XPUB_NODROP`), so every subscriber receives every frame.
public final class ZeroMQPublisher: Stage {
    public let name = "publish"
    public let address: PublisherAddress
    /// Frames published.
    public private(set) var published = 0
    /// Live mode only: frames no subscriber could take at once (libzmq reported the queue full).
    public private(set) var refused = 0

    private let policy: Policy
    private let socket: ZeroMQSocket
    private let authenticator: CurveAuthenticator?
    private var header: FrameHeader
    private let subscriptionBuffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 256, alignment: 8)
    private var subscriptions = 0

    /// Replay: how long a send may wait for a subscriber that stopped reading before the run fails.
    static let replayStallMilliseconds: Int32 = 10_000

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
    public init(address: PublisherAddress, policy: Policy, streamName: String = "fluorostream",
                upstreamStages: [String], encoding: Encoding = .raw, layers: Bool = false, curve: CurveSecurity? = nil,
                allowPlaintextNonLoopback: Bool = false) throws {
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
        header = FrameHeader(streamName: streamName, encoding: encoding == .raw ? "raw" : "jpeg", upstreamStages: upstreamStages)
        socket = try ZeroMQSocket(type: ZMQ_XPUB)
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
            try socket.setOption(ZMQ_SNDTIMEO, Self.replayStallMilliseconds)
        }
        try socket.bind(address.endpoint)
    }

    deinit {
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
            if socket.waitReadable(milliseconds: Int(min((deadline - now) / 1_000_000, 100) + 1)) { drainSubscriptions() }
        }
        return true
    }

    public func process(_ frame: Frame) throws {
        drainSubscriptions()
        if layers {
            try publishLayers(of: frame)
            return
        }
        let bytes = header.write(for: frame, sequence: published, now: MonotonicClock.now())
        let dontWait = policy == .live
        guard try socket.send(bytes, more: true, dontWait: dontWait) else {
            if policy == .replay { throw stalled }
            refused += 1
            return
        }
        let image = try jpeg?.encode(UnsafeBufferPointer(frame.display)) ?? UnsafeRawBufferPointer(frame.display)
        _ = try socket.send(image, more: false, dontWait: false)
        published += 1
    }

    public func prepare(for geometry: FrameGeometry) throws {
        if layers { deviceMask = .allocate(capacity: geometry.pixelCount) }
        if case let .jpeg(quality) = encoding {
            jpeg = try DisplayJPEGEncoder(width: geometry.width, height: geometry.height, quality: quality)
        }
    }

    public func finish() throws {
        authenticator?.stop()
        socket.close(lingerMilliseconds: policy == .replay ? 2000 : 0)
    }

    /// Replay: a send waited `replayStallMilliseconds` for a subscriber.
    private var stalled: FluoroError {
        .messaging(detail: "\(address): a subscriber has not read for \(Self.replayStallMilliseconds / 1000) s; "
                   + "replay waits for every subscriber")
    }

    /// The layers mode's messages per frame, in order (a stored array: iterating it allocates nothing).
    private static let layerOrder: [FrameHeader.Layer] = [.frame, .devices, .roadmap]

    /// Layers mode: the topic messages of one frame. The first one that cannot be queued (live) ends the frame
    /// for every subscriber it would reach late; replay waits as for whole frames.
    private func publishLayers(of frame: Frame) throws {
        let now = MonotonicClock.now(), dontWait = policy == .live
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
            guard try topic.withUTF8({ try socket.send(UnsafeRawBufferPointer($0), more: true, dontWait: dontWait) }) else {
                if policy == .replay { throw stalled }
                refused += 1
                return
            }
            _ = try socket.send(header.write(for: frame, sequence: published, now: now, layer: layer), more: true, dontWait: false)
            _ = try socket.send(payload, more: false, dontWait: false)
        }
        published += 1
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
        while let size = socket.receiveNow(into: subscriptionBuffer) {
            if size > 0, subscriptionBuffer[0] == 1 { subscriptions += 1 }
        }
    }
}
