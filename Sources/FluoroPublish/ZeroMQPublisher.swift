import CZeroMQ
import FluoroCore

/// The last stage: publishes each annotated frame over ZeroMQ in the imagezmq-compatible format.
///
/// Each frame is one two-part message: (1) a UTF-8 JSON header with imagezmq's keys `msg`, `dtype` and
/// `shape` plus FluoroStream's measurements, (2) the display image, `shape` = [height, width, 3] uint8,
/// C-contiguous RGB. A stock `imagezmq.ImageHub(open_port=..., REQ_REP=False)` or any SUB socket reads it
/// (the README's "Wire format" section is the contract).
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
    private let streamName: String
    private let upstreamStages: [String]
    private let socket: ZeroMQSocket
    private let authenticator: CurveAuthenticator?
    /// Room for the largest header: two full device traces (a point is at most 2 × 19 digits and 5 marks), a full
    /// local motion field (two numbers of at most 19 digits and a comma per grid point) plus the fixed keys.
    private var header = JSONHeaderWriter(capacity: 2 * DeviceTrace.capacity * 48 + 2 * LocalMotionField.capacity * 24 + 16_384)
    private let subscriptionBuffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 256, alignment: 8)
    private var subscriptions = 0

    /// Replay: how long a send may wait for a subscriber that stopped reading before the run fails.
    static let replayStallMilliseconds: Int32 = 10_000

    /// Whether sends may wait for subscribers.
    public enum Policy: Sendable { case live, replay }

    /// Binds the socket at once, so a busy or refused address fails before any frame is read.
    /// - Parameters:
    ///   - upstreamStages: names of the stages before this one, in order (their latencies go in the header).
    ///   - curve: encrypt with CURVE and admit only the listed client keys (checked through ZAP); any address.
    ///   - allowPlaintextNonLoopback: bind a non-loopback TCP address without CURVE (anyone on the network can
    ///     read the frames). Without CURVE or this, such an address is refused.
    public init(address: PublisherAddress, policy: Policy, streamName: String = "fluorostream",
                upstreamStages: [String], curve: CurveSecurity? = nil, allowPlaintextNonLoopback: Bool = false) throws {
        guard address.isLocalOnly || curve != nil || allowPlaintextNonLoopback else {
            throw FluoroError.cannotBind(address: address.endpoint, reason: "not a loopback address; frames are patient images "
                                         + "and would be sent in plain text to the network (use 127.0.0.1, encrypt with "
                                         + "--curve-secret and --curve-clients (see fluoro keys), or pass "
                                         + "--insecure-plaintext to do it anyway)")
        }
        self.address = address
        self.policy = policy
        self.streamName = streamName
        self.upstreamStages = upstreamStages
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
            try socket.setOption(ZMQ_SNDHWM, 2)
        case .replay:
            try socket.setOption(ZMQ_SNDHWM, 16)
            try socket.setOption(ZMQ_XPUB_NODROP, 1)
            try socket.setOption(ZMQ_SNDTIMEO, Self.replayStallMilliseconds)
        }
        try socket.bind(address.endpoint)
    }

    deinit {
        authenticator?.stop()
        header.deallocate()
        subscriptionBuffer.deallocate()
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
        writeHeader(for: frame)
        let dontWait = policy == .live
        guard try socket.send(header.bytes, more: true, dontWait: dontWait) else {
            if policy == .replay {
                throw FluoroError.messaging(detail: "\(address): a subscriber has not read for "
                                            + "\(Self.replayStallMilliseconds / 1000) s; replay waits for every subscriber")
            }
            refused += 1
            return
        }
        _ = try socket.send(UnsafeRawBufferPointer(frame.display), more: false, dontWait: false)
        published += 1
    }

    public func finish() throws {
        authenticator?.stop()
        socket.close(lingerMilliseconds: policy == .replay ? 2000 : 0)
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

    private func writeHeader(for frame: Frame) {
        let geometry = frame.geometry
        let now = MonotonicClock.now()
        header.reset()
        header.key("msg"); header.string(streamName)
        header.key("dtype"); header.literal("\"uint8\"")
        header.key("shape"); header.beginArray()
        header.element(); header.integer(geometry.height)
        header.element(); header.integer(geometry.width)
        header.element(); header.integer(3)
        header.endArray()
        header.key("frame"); header.integer(frame.index)
        header.key("sequence"); header.integer(published)
        header.key("source_time_s"); header.number(frame.sourceTime, decimals: 6)
        header.key("available_ns"); header.integer(Int(frame.availableAt))
        header.key("published_ns"); header.integer(Int(now))
        header.key("bits_stored"); header.integer(geometry.bitsStored)
        header.key("latency_ms"); header.beginObject()
        var previous = frame.availableAt
        for (position, stage) in upstreamStages.enumerated() where position < frame.stageExit.count {
            let exit = frame.stageExit[position]
            header.key(stage); header.number(Double(exit &- previous) / 1e6)
            previous = exit
        }
        header.key("age_at_publish"); header.number(Double(now &- frame.availableAt) / 1e6)
        header.endObject()
        let motion = frame.annotations.motion
        header.key("motion"); header.beginObject()
        header.key("dx"); header.number(Double(motion.dx))
        header.key("dy"); header.number(Double(motion.dy))
        header.key("confidence"); header.number(Double(motion.confidence))
        header.key("state"); header.string(motion.state.rawValue)
        let field = frame.annotations.localMotion
        header.key("local_field")
        if field.isPresent {
            header.beginObject()
            header.key("grid"); header.integer(field.gridSize)
            header.key("dx"); writeNumbers(field.dx)
            header.key("dy"); writeNumbers(field.dy)
            header.endObject()
        } else {
            header.literal("null")
        }
        header.endObject()
        writeDevice("guidewire", frame.annotations.guidewire)
        writeDevice("catheter", frame.annotations.catheter)
        let roadmap = frame.annotations.roadmap
        header.key("roadmap"); header.beginObject()
        header.key("state"); header.string(roadmap.state.rawValue)
        header.key("drawn"); header.literal(roadmap.drawn ? "true" : "false")
        header.key("offset"); header.beginArray()
        header.element(); header.number(Double(roadmap.offsetX), decimals: 3)
        header.element(); header.number(Double(roadmap.offsetY), decimals: 3)
        header.endArray()
        header.key("contrast_frames"); header.integer(roadmap.contrastFrames)
        header.key("vessel_pixels"); header.integer(roadmap.vesselPixels)
        header.key("invalidation")
        if let reason = roadmap.invalidation { header.string(reason.rawValue) } else { header.literal("null") }
        header.endObject()
        header.finish()
    }

    private func writeNumbers(_ values: [Float]) {
        header.beginArray()
        for value in values {
            header.element(); header.number(Double(value), decimals: 3)
        }
        header.endArray()
    }

    private func writeDevice(_ key: StaticString, _ trace: DeviceTrace) {
        header.key(key); header.beginObject()
        header.key("present"); header.literal(trace.isPresent ? "true" : "false")
        header.key("tip")
        if let tip = trace.tip {
            header.beginArray()
            header.element(); header.number(Double(tip.x), decimals: 2)
            header.element(); header.number(Double(tip.y), decimals: 2)
            header.endArray()
        } else {
            header.literal("null")
        }
        header.key("confidence"); header.number(Double(trace.confidence))
        header.key("centerline"); header.beginArray()
        for point in trace.centerline {
            header.element(); header.beginArray()
            header.element(); header.number(Double(point.x), decimals: 2)
            header.element(); header.number(Double(point.y), decimals: 2)
            header.endArray()
        }
        header.endArray()
        header.endObject()
    }
}
