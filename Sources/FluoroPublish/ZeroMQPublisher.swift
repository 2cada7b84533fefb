import CZeroMQ
import FluoroCore
#if canImport(Glibc)
    import Glibc
#endif

/// The last stage: publishes each annotated frame over ZeroMQ (libzmq's XPUB socket) in the imagezmq-compatible format.
///
/// Each frame is one two-part message: (1) a UTF-8 JSON header with imagezmq's keys `msg`, `dtype` and
/// `shape` plus FluoroStream's measurements, (2) the display image, `shape` = [height, width, 3] uint8,
/// C-contiguous RGB, or its JPEG with `.jpeg` encoding. A stock `imagezmq.ImageHub(open_port=..., REQ_REP=False)`
/// or any SUB socket reads it (docs/wire-format.md is the contract). With `imagezmq`, the header travels as the text of
/// imagezmq's `msg` and the image in OpenCV's BGR order, for stock imagezmq subscribers. In layers mode each frame is
/// instead up to three topic messages (grey frame, devices, roadmap) for subscribers that render it themselves. On
/// the `measurements` topic each frame's header goes out alone, and in annotated mode on the `frame` topic the
/// annotated frame with its topic first, while someone subscribes to them. After the last
/// frame, an end-of-stream message. With CURVE, only allow-listed client keys are admitted.
///
/// Zero copy: a frame's messages are written once into a buffer of a `SendBufferPool` and handed to libzmq with a
/// free callback that returns the buffer to the pool, so publishing allocates nothing in FluoroStream's code (libzmq
/// allocates a small record per message part). When every pool buffer is still held by subscribers that read
/// slowly, the frame is sent by copy instead (counted in `copied`), so one slow peer never starves the others.
///
/// Back-pressure follows the graph's policy. Live: a send never waits; a subscriber that cannot keep up loses the
/// frames that arrive while its queue is at the high-water mark (it sees gaps in `sequence`, which counts every
/// frame that reached the publisher). Replay: sends wait for the slowest subscriber, so every subscriber receives
/// every frame; one that stops reading for `replayStallMilliseconds` fails the run. docs/security.md lists the
/// limits a peer is held to.
public final class ZeroMQPublisher: Stage {
    public let name = "publish"
    public let address: PublisherAddress
    /// Frames published.
    public private(set) var published = 0
    /// Live mode only: frames libzmq would not queue (they still take a `sequence` number).
    public private(set) var refused = 0
    /// Frames sent by copy because every pool buffer was still held by slow subscribers.
    public private(set) var copied = 0
    /// Subscriptions with a prefix that matches nothing this publisher sends (ignored).
    public private(set) var ignoredSubscriptions = 0

    private let policy: Policy
    private let socket: ZeroMQSocket
    private let authenticator: CurveAuthenticator?
    private let limiter: ConnectionLimiter
    private var header: FrameHeader
    /// What the first part of a message can start with; a subscription must be a prefix of one of these.
    private let messageLeads: [[UInt8]]
    /// What a subscription to everything (the empty prefix) is applied as: the frame messages' leads, so that a
    /// stock subscriber never receives a `measurements` message it cannot read.
    private let wholeStreamLeads: [[UInt8]]
    /// Subscriptions that match the `measurements` topic, counted from (un)subscription messages: a hint, as a
    /// peer may unsubscribe without having subscribed; the topic's messages are composed only while it is above 0.
    private var measurementSubscriptions = 0
    /// Annotated mode: subscriptions that match the `frame` topic (a hint, as above); while above 0 each annotated
    /// frame also goes out as a `frame` topic message.
    private var frameTopicSubscriptions = 0
    /// Buffers for the `measurements` messages, apart from the frames' so that they never take a frame's.
    private var measurementsPool: SendBufferPool?
    private let subscriptionBuffer = UnsafeMutableRawBufferPointer.allocate(
        byteCount: ZeroMQPublisher.maximumSubscription,
        alignment: 8)
    private var subscriptionsSeen = 0
    private var pool: SendBufferPool?
    /// Every frame that reached this stage, published or not: the header's `sequence`.
    private var sequence = 0

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
    /// annotated image (docs/wire-format.md, "Layers mode").
    public let layers: Bool
    private var deviceMask: UnsafeMutableBufferPointer<UInt8>?
    /// imagezmq mode: the header as the text of imagezmq's `msg`, the raw image in BGR order.
    public let imagezmq: Bool
    private var envelope: ImagezmqEnvelope?
    private var bgr: UnsafeMutableBufferPointer<UInt8>?
    private static let measurementsTopic = Array("measurements".utf8)
    private static let frameTopic = Array("frame".utf8)

    /// The longest subscription prefix applied (a longer one matches nothing this publisher sends and is ignored).
    static let maximumSubscription = 256
    /// Subscription messages read per frame at most, so that a flood of them cannot hold up a frame.
    static let subscriptionsPerFrame = 64

    /// Binds the socket at once, so a busy or refused address fails before any frame is read.
    /// - Parameters:
    ///   - upstreamStages: names of the stages before this one, in order (their latencies go in the header).
    ///   - imaging: the run's pixel spacing and C-arm position, published as `geometry`.
    ///   - encoding: raw RGB (the default) or JPEG at a quality.
    ///   - layers: send the grey frame, the devices and the roadmap as separate topic messages.
    ///   - imagezmq: annotated mode for stock imagezmq subscribers: the header as the text of imagezmq's `msg`, a raw
    ///     image in BGR order. Not with `layers`.
    ///   - curve: encrypt with CURVE and admit only the listed client keys (checked through ZAP); any address.
    ///   - allowPlaintextNonLoopback: bind a non-loopback TCP address without CURVE (anyone on the network can
    ///     read the frames). Without CURVE or this, such an address is refused.
    ///   - replayStallMilliseconds: replay only: how long a frame may wait for a subscriber that stopped reading
    ///     before the run fails.
    public init(
        address: PublisherAddress, policy: Policy, streamName: String = "fluorostream",
        upstreamStages: [String], imaging: ImagingGeometry = .unknown, encoding: Encoding = .raw, layers: Bool = false,
        imagezmq: Bool = false,
        curve: CurveSecurity? = nil,
        allowPlaintextNonLoopback: Bool = false, replayStallMilliseconds: Int32 = 10_000
    ) throws {
        try address.checkExposure(encrypted: curve != nil, allowPlaintext: allowPlaintextNonLoopback)
        guard !(layers && imagezmq) else {
            throw FluoroError.invalidArgument("imagezmq mode sends the annotated image; it cannot be combined with layers")
        }
        self.address = address
        self.policy = policy
        self.encoding = encoding
        self.layers = layers
        self.imagezmq = imagezmq
        self.replayStallMilliseconds = replayStallMilliseconds
        header = FrameHeader(
            streamName: streamName, encoding: encoding == .raw ? "raw" : "jpeg",
            channels: encoding == .raw ? (imagezmq ? "BGR" : "RGB") : nil, upstreamStages: upstreamStages,
            imaging: imaging)
        let topics = Self.layerOrder.map { Array($0.rawValue.utf8) }
        let annotated = imagezmq ? ImagezmqEnvelope.lead(streamName: streamName) : FrameHeader.lead(streamName: streamName)
        messageLeads = [annotated] + topics + [Self.measurementsTopic]
        wholeStreamLeads = layers ? topics : [annotated]
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
        try PeerLimits.apply(to: socket, heartbeats: policy == .live)
        try socket.setOption(ZMQ_XPUB_MANUAL, 1)
        switch policy {
        case .live:
            try socket.setOption(ZMQ_SNDHWM, layers ? 6 : 2)
        case .replay:
            try socket.setOption(ZMQ_SNDHWM, layers ? 48 : 16)
            try socket.setOption(ZMQ_XPUB_NODROP, 1)
            try socket.setOption(ZMQ_SNDTIMEO, replayStallMilliseconds)
        }
        do {
            limiter = try ConnectionLimiter(watching: socket, maximum: PeerLimits.maximumConnections)
        } catch {
            authenticator?.stop()
            throw error
        }
        do {
            try socket.bind(address.endpoint)
        } catch {
            // Their threads hold sockets of the publisher's context, which cannot end until they are closed.
            authenticator?.stop()
            limiter.stop()
            throw error
        }
    }

    deinit {
        authenticator?.stop()
        limiter.stop()
        socket.close(lingerMilliseconds: 0)  // libzmq releases every pool buffer before this returns
        header.deallocate()
        subscriptionBuffer.deallocate()
        deviceMask?.deallocate()
        envelope?.deallocate()
        bgr?.deallocate()
    }

    /// Waits until `count` subscriptions have arrived (each SUB socket sends one per topic), or until
    /// `timeoutSeconds` pass. Returns whether they did. Frames sent before a subscriber joins never reach it.
    public func waitForSubscribers(_ count: Int, timeoutSeconds: Double) -> Bool {
        let deadline = MonotonicClock.now() + UInt64(clampingFinite: min(max(timeoutSeconds, 0), 86_400) * 1e9)
        while subscriptionsSeen < count {
            let now = MonotonicClock.now()
            guard now < deadline else { return false }
            if socket.waitReadable(milliseconds: Int(min((deadline - now) / 1_000_000, 100) + 1)) { drainSubscriptions() }
        }
        return true
    }

    public func prepare(for geometry: FrameGeometry) throws {
        if layers { deviceMask = .allocate(capacity: geometry.pixelCount) }
        if case let .jpeg(quality) = encoding {
            jpeg = try DisplayJPEGEncoder(width: geometry.width, height: geometry.height, quality: quality)
        }
        if imagezmq {
            envelope = ImagezmqEnvelope(headerCapacity: FrameHeader.maximumSize)
            if encoding == .raw { bgr = .allocate(capacity: geometry.pixelCount * 3) }
        }
        // Room for a frame's messages: their headers and the largest payloads, each part 64-byte aligned.
        let payload = layers ? geometry.pixelCount * 4 : jpeg.map { Int($0.capacity) } ?? geometry.pixelCount * 3
        let headerRoom = imagezmq ? 2 * FrameHeader.maximumSize + 128 : FrameHeader.maximumSize
        let byteCount = (layers ? 3 : 1) * (headerRoom + 64) + payload + 4 * 64
        // Enough buffers for the high-water mark of a few slow subscribers before the publisher falls back to copies.
        pool = SendBufferPool(count: policy == .live ? 8 : 24, byteCount: byteCount)
        measurementsPool = SendBufferPool(count: policy == .live ? 8 : 24, byteCount: FrameHeader.maximumSize + 256)
    }

    public func process(_ frame: Frame) throws {
        drainSubscriptions()
        defer { sequence += 1 }
        let sent: Bool
        let now = MonotonicClock.now()
        if layers {
            sent = try publishLayers(of: frame, now: now)
        } else {
            let flat = header.write(for: frame, sequence: sequence, now: now)
            let first = envelope?.wrap(flat, height: frame.geometry.height, width: frame.geometry.width) ?? flat
            let image = try jpeg?.encode(UnsafeBufferPointer(frame.display)) ?? displayImage(of: frame)
            sent = try send(first, image)
            if frameTopicSubscriptions > 0 {
                _ = try Self.frameTopic.withUnsafeBytes { try send($0, flat, image) }
            }
        }
        if sent { published += 1 } else { refused += 1 }
        if measurementSubscriptions > 0 {
            _ = try Self.measurementsTopic.withUnsafeBytes {
                try send($0, header.write(for: frame, sequence: sequence, now: now, layer: .measurements), measurements: true)
            }
        }
    }

    /// The raw display image as sent: the frame's RGB, or in imagezmq mode its BGR copy.
    private func displayImage(of frame: Frame) -> UnsafeRawBufferPointer {
        guard let bgr else { return UnsafeRawBufferPointer(frame.display) }
        let rgb = frame.display
        var index = 0
        while index + 2 < bgr.count {
            bgr[index] = rgb[index + 2]
            bgr[index + 1] = rgb[index + 1]
            bgr[index + 2] = rgb[index]
            index += 3
        }
        return UnsafeRawBufferPointer(bgr)
    }

    /// Sends the end-of-stream message (in layers mode one per layer topic, so every subscriber sees it), then
    /// closes the socket. Replay waits for subscribers to take it, as for frames; live sends it if it can queue it.
    public func finish() throws {
        defer { close() }
        guard pool != nil else { return }
        let empty = UnsafeRawBufferPointer(start: nil, count: 0)
        if layers {
            for layer in Self.layerOrder {
                var topic = layer.rawValue
                let end = header.writeEnd(frames: sequence, layer: layer)
                _ = try topic.withUTF8 { try send(UnsafeRawBufferPointer($0), end, empty) }
            }
        } else {
            let end = header.writeEnd(frames: sequence)
            if frameTopicSubscriptions > 0 { _ = try Self.frameTopic.withUnsafeBytes { try send($0, end, empty) } }
            _ = try send(envelope?.wrap(end, height: 0, width: 0) ?? end, empty)
        }
        if measurementSubscriptions > 0 {
            _ = try Self.measurementsTopic.withUnsafeBytes {
                try send($0, header.writeEnd(frames: sequence, layer: .measurements), measurements: true)
            }
        }
    }

    private func close() {
        authenticator?.stop()
        limiter.stop()
        socket.close(lingerMilliseconds: policy == .replay ? 2000 : 200)
    }

    /// Replay: a send waited `replayStallMilliseconds` for a subscriber.
    private var stalled: FluoroError {
        .messaging(
            detail: "\(address): a subscriber has not read for \(Double(replayStallMilliseconds) / 1000) s; "
                + "replay waits for every subscriber")
    }

    /// Sends one message of two or three parts (subscribers match their prefixes against the first), from a pool
    /// buffer without copying, or by copy when none is free. Live: false when libzmq would not queue it.
    private func send(
        _ first: UnsafeRawBufferPointer, _ second: UnsafeRawBufferPointer,
        _ third: UnsafeRawBufferPointer? = nil, measurements: Bool = false
    ) throws -> Bool {
        guard let pool = measurements ? measurementsPool : pool else {
            throw FluoroError.messaging(detail: "\(address): a frame came before prepare(for:)")
        }
        let buffer =
            policy == .replay
            ? pool.waitForFree(nanoseconds: Int64(replayStallMilliseconds) * 1_000_000) : pool.takeFree()
        guard let buffer else {
            if policy == .replay { throw stalled }
            copied += 1
            return try sendCopies(first, second, third)
        }
        let count = third == nil ? 2 : 3
        var messages = (zmq_msg_t(), zmq_msg_t(), zmq_msg_t())
        return try withUnsafeMutableBytes(of: &messages) { raw in
            let message = raw.bindMemory(to: zmq_msg_t.self)
            var offset = 0, made = 0
            defer { for index in 0..<made { zmq_msg_close(&message[index]) } }
            for index in 0..<count {
                let part = index == 0 ? first : index == 1 ? second : third!
                UnsafeMutableRawBufferPointer(rebasing: buffer.bytes[offset..<(offset + part.count)]).copyMemory(from: part)
                try pool.initialise(&message[index], over: offset..<(offset + part.count), of: buffer)
                made += 1
                offset = (offset + part.count + 63) & ~63
            }
            for index in 0..<count {
                guard try socket.send(&message[index], more: index < count - 1, dontWait: policy == .live && index == 0) else {
                    if policy == .replay { throw stalled }
                    return false
                }
            }
            return true
        }
    }

    /// Sends the parts by copy (libzmq allocates and copies each). Live: false when libzmq would not queue it.
    private func sendCopies(
        _ first: UnsafeRawBufferPointer, _ second: UnsafeRawBufferPointer,
        _ third: UnsafeRawBufferPointer?
    ) throws -> Bool {
        guard try socket.send(first, more: true, dontWait: policy == .live) else {
            if policy == .replay { throw stalled }
            return false
        }
        _ = try socket.send(second, more: third != nil, dontWait: false)
        if let third { _ = try socket.send(third, more: false, dontWait: false) }
        return true
    }

    /// The layers mode's messages per frame, in order (a stored array: iterating it allocates nothing).
    private static let layerOrder: [FrameHeader.Layer] = [.frame, .devices, .roadmap]

    /// Layers mode: the topic messages of one frame. The first one that libzmq will not queue (live) ends the frame.
    private func publishLayers(of frame: Frame, now: UInt64) throws -> Bool {
        let mask = deviceMask!
        mask.update(repeating: 0)
        Self.rasterise(frame.annotations.guidewire, value: 1, into: mask, width: frame.geometry.width)
        Self.rasterise(frame.annotations.catheter, value: 2, into: mask, width: frame.geometry.width)
        for layer in Self.layerOrder {
            let payload: UnsafeRawBufferPointer
            switch layer {
            case .frame: payload = UnsafeRawBufferPointer(frame.pixels)
            case .devices: payload = UnsafeRawBufferPointer(mask)
            case .roadmap:
                guard frame.annotations.roadmap.drawn else { continue }
                payload = UnsafeRawBufferPointer(frame.roadmapLayer)
            case .display, .measurements: continue
            }
            var topic = layer.rawValue
            let header = header.write(for: frame, sequence: sequence, now: now, layer: layer)
            guard try topic.withUTF8({ try send(UnsafeRawBufferPointer($0), header, payload) }) else { return false }
        }
        return true
    }

    /// Draws a device's centre line, one pixel wide, into `mask` with `value`.
    private static func rasterise(
        _ trace: DeviceTrace, value: UInt8, into mask: UnsafeMutableBufferPointer<UInt8>,
        width: Int
    ) {
        let line = trace.centerline, height = mask.count / width
        guard line.count > 1 else { return }
        // A segment is drawn with at most one step per pixel of the frame's perimeter (points far outside cost nothing).
        let stepLimit = 4 * (width + height)
        for k in 1..<line.count {
            let a = line[k - 1], b = line[k]
            guard let length = Int(checked: max(abs(b.x - a.x), abs(b.y - a.y)).rounded(.up)) else { continue }
            let steps = min(max(1, length), stepLimit)
            for step in 0...steps {
                let t = Float(step) / Float(steps)
                let x = Int(clampingFinite: (a.x + t * (b.x - a.x)).rounded()), y = Int(clampingFinite: (a.y + t * (b.y - a.y)).rounded())
                if x >= 0, y >= 0, x < width, y < height { mask[y * width + x] = value }
            }
        }
    }

    /// Connections shut down at once because the publisher already served its most (`PeerLimits.maximumConnections`,
    /// lowered to half the descriptor limit).
    public var refusedConnections: (count: Int, maximum: Int) { (limiter.refused.load(ordering: .relaxed), limiter.maximum) }

    /// With CURVE: connection handshakes admitted and refused so far (refused: unknown keys, plain-text peers).
    public var handshakes: (admitted: Int, refused: Int)? {
        authenticator.map { ($0.admitted.load(ordering: .relaxed), $0.refused.load(ordering: .relaxed)) }
    }

    /// Reads waiting (un)subscription messages, a bounded number per call: a subscription whose prefix could match
    /// what this publisher sends is applied to the peer that sent it (and counted), any other is ignored, so no
    /// peer can grow the subscription table with prefixes that match nothing.
    private func drainSubscriptions() {
        for _ in 0..<Self.subscriptionsPerFrame {
            guard let size = socket.receiveNow(into: subscriptionBuffer) else { return }
            guard size >= 1, size <= subscriptionBuffer.count, subscriptionBuffer[0] <= 1 else { continue }
            let prefix = UnsafeRawBufferPointer(rebasing: subscriptionBuffer[1..<size])
            guard messageLeads.contains(where: { $0.starts(with: prefix) }) else {
                ignoredSubscriptions += 1
                continue
            }
            let subscribe = subscriptionBuffer[0] == 1
            let option = subscribe ? ZMQ_SUBSCRIBE : ZMQ_UNSUBSCRIBE
            if prefix.isEmpty {
                var applied = false
                for lead in wholeStreamLeads {
                    applied = lead.withUnsafeBytes { (try? socket.setOption(option, raw: $0)) != nil } || applied
                }
                guard applied else { continue }
            } else {
                guard (try? socket.setOption(option, raw: prefix)) != nil else { continue }
                if Self.measurementsTopic.starts(with: prefix) {
                    measurementSubscriptions = max(measurementSubscriptions + (subscribe ? 1 : -1), 0)
                }
                if !layers, Self.frameTopic.starts(with: prefix) {
                    frameTopicSubscriptions = max(frameTopicSubscriptions + (subscribe ? 1 : -1), 0)
                }
            }
            if subscribe { subscriptionsSeen += 1 }
        }
    }
}
