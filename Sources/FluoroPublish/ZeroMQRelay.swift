import CZeroMQ
import FluoroCore
import Foundation
import Synchronization

/// Passes a publisher's stream on to many subscribers: an XSUB socket connected to the publisher (upstream) and an
/// XPUB socket bound where the subscribers connect, joined by libzmq's own `zmq_proxy_steerable`. Messages go through
/// unchanged (docs/wire-format.md holds for both sides); subscriptions go the other way, every one of them
/// (`ZMQ_XPUB_VERBOSE`), so the publisher's `--wait-subscribers` counts the subscribers behind the relay.
///
/// The subscribers' side is held to the publisher's limits (`PeerLimits`, `ConnectionLimiter`, CURVE through the same
/// ZAP handler). The relay never waits for a subscriber (a display): each has a queue of `queue` messages (`ZMQ_SNDHWM`), and
/// later messages are dropped for it alone (it sees gaps in `sequence`). Upstream, at most `queue` messages wait in
/// the relay (`ZMQ_RCVHWM`); beyond that the publisher's own policy applies (live: it drops for the relay; replay:
/// it waits).
public final class ZeroMQRelay: @unchecked Sendable {
    /// The publisher's endpoint the relay connects to.
    public let upstream: String
    /// Where subscribers connect.
    public let address: PublisherAddress
    /// Messages queued for one subscriber before later ones are dropped for it.
    public let queue: Int32

    /// The sockets share the subscribers' socket's context: the ZAP handler and the control pair need it.
    private let subscribers: ZeroMQSocket
    private let publisher: ZeroMQSocket
    private let control: ZeroMQSocket
    private let controller: ZeroMQSocket
    private let authenticator: CurveAuthenticator?
    private let limiter: ConnectionLimiter
    /// The proxy's `errno` when it failed (0 while it runs or after it was told to stop).
    private let proxyFailure = Atomic<Int32>(0)

    /// Connections served at once unless told otherwise: the publisher's limit.
    public static var defaultMaximumSubscribers: Int { PeerLimits.maximumConnections }

    /// What the proxy counted: messages (a multipart message counts once) and their bytes, each way.
    public struct Statistics: Sendable, Equatable {
        /// From the publisher, to be passed on.
        public var messages = 0, bytes = 0
        /// From the subscribers: subscriptions and cancellations.
        public var subscriptionMessages = 0
    }

    /// Connects to `upstream` and binds `address` at once, so a busy or refused address fails before anything is
    /// relayed (an unreachable publisher is not an error: libzmq connects when it appears).
    /// - Parameters:
    ///   - upstream: the publisher's ZeroMQ endpoint (`PublisherAddress.subscriberEndpoint` reads `HOST:PORT`).
    ///   - upstreamCurve: connect to a CURVE publisher as this client.
    ///   - curve: encrypt the subscribers' side with CURVE and admit only the listed client keys; any address.
    ///   - allowPlaintextNonLoopback: bind a non-loopback TCP address without CURVE.
    ///   - queue: messages queued per subscriber, and from the publisher, before later ones are dropped (1 or more).
    ///   - maximumSubscribers: connections served at once (lowered to half the descriptor limit).
    public init(
        upstream: String, address: PublisherAddress, upstreamCurve: CurveClient? = nil, curve: CurveSecurity? = nil,
        allowPlaintextNonLoopback: Bool = false, queue: Int32 = 8,
        maximumSubscribers: Int = ZeroMQRelay.defaultMaximumSubscribers
    ) throws {
        try address.checkExposure(encrypted: curve != nil, allowPlaintext: allowPlaintextNonLoopback)
        guard queue > 0, maximumSubscribers > 0 else {
            throw FluoroError.invalidArgument("a relay needs a queue and a number of subscribers of at least 1")
        }
        self.upstream = upstream
        self.address = address
        self.queue = queue
        let subscribers = try ZeroMQSocket(type: ZMQ_XPUB)
        self.subscribers = subscribers
        // Every socket made below is closed before `subscribers`, whose context cannot end while they are open.
        var made: [ZeroMQSocket] = []
        var authenticator: CurveAuthenticator?
        var limiter: ConnectionLimiter?
        do {
            if let curve {
                authenticator = try CurveAuthenticator(sharingContextOf: subscribers, allowedKeys: curve.allowedClients)
                try subscribers.setOption(ZMQ_CURVE_SERVER, 1)
                try subscribers.setOption(ZMQ_CURVE_SECRETKEY, string: curve.server.secretKey!)
                try subscribers.setOption(ZMQ_ZAP_DOMAIN, string: "fluoro-relay")
            }
            try PeerLimits.apply(to: subscribers, heartbeats: true)
            try subscribers.setOption(ZMQ_SNDHWM, queue)
            try subscribers.setOption(ZMQ_XPUB_VERBOSE, 1)

            let publisher = try ZeroMQSocket(type: ZMQ_XSUB, sharingContextOf: subscribers)
            made.append(publisher)
            try upstreamCurve?.apply(to: publisher)
            try publisher.setOption(ZMQ_RCVHWM, queue)
            try publisher.setOption(ZMQ_HEARTBEAT_IVL, PeerLimits.heartbeatMilliseconds)
            try publisher.setOption(ZMQ_HEARTBEAT_TIMEOUT, PeerLimits.heartbeatTimeoutMilliseconds)
            try publisher.setOption(ZMQ_TCP_KEEPALIVE, 1)

            let endpoint = "inproc://fluoro-relay-control-\(UInt64.random(in: 0...UInt64.max))"
            let control = try ZeroMQSocket(type: ZMQ_PAIR, sharingContextOf: subscribers)
            made.append(control)
            try control.bind(endpoint)
            let controller = try ZeroMQSocket(type: ZMQ_PAIR, sharingContextOf: subscribers)
            made.append(controller)
            try controller.connect(endpoint)

            limiter = try ConnectionLimiter(watching: subscribers, maximum: maximumSubscribers)
            try subscribers.bind(address.endpoint)
            guard zmq_connect(publisher.socket, upstream) == 0 else {
                throw FluoroError.invalidArgument("cannot connect to the publisher at '\(upstream)': \(ZeroMQSocket.lastError())")
            }
            self.publisher = publisher
            self.control = control
            self.controller = controller
            self.authenticator = authenticator
            self.limiter = limiter!
        } catch {
            authenticator?.stop()
            limiter?.stop()
            for socket in made.reversed() { socket.close(lingerMilliseconds: 0) }
            throw error
        }
    }

    deinit {
        authenticator?.stop()
        limiter.stop()
        controller.close(lingerMilliseconds: 0)
        control.close(lingerMilliseconds: 0)
        publisher.close(lingerMilliseconds: 0)
        subscribers.close(lingerMilliseconds: 0)
    }

    /// Relays until `stopRequested` returns true (asked every 50 ms on the calling thread), then returns what the
    /// proxy counted. The proxy runs on a thread of its own (`fluoro-relay`) with SIGINT and SIGTERM blocked, so
    /// their handlers run on the calling thread. Call once.
    public func run(until stopRequested: () -> Bool) throws -> Statistics {
        let finished = DispatchSemaphore(value: 0)
        let thread = Thread { [self] in
            var signals = sigset_t()
            sigemptyset(&signals)
            sigaddset(&signals, SIGINT)
            sigaddset(&signals, SIGTERM)
            pthread_sigmask(SIG_BLOCK, &signals, nil)
            if zmq_proxy_steerable(publisher.socket, subscribers.socket, nil, control.socket) != 0 {
                proxyFailure.store(zmq_errno(), ordering: .relaxed)
            }
            finished.signal()
        }
        thread.name = "fluoro-relay"
        thread.start()
        while finished.wait(timeout: .now() + .milliseconds(50)) == .timedOut {
            guard stopRequested() else { continue }
            let statistics = askStatistics()
            try controller.sendMessage([Array("TERMINATE".utf8)])
            finished.wait()
            return statistics ?? Statistics()
        }
        let code = proxyFailure.load(ordering: .relaxed)
        throw FluoroError.messaging(detail: "relay from \(upstream) to \(address): zmq_proxy: \(String(cString: zmq_strerror(code)))")
    }

    /// The proxy's counters (its `STATISTICS` command: eight 64-bit numbers, the publisher's side first), or nil
    /// when it does not answer within a second.
    private func askStatistics() -> Statistics? {
        guard (try? controller.sendMessage([Array("STATISTICS".utf8)])) != nil, controller.waitReadable(milliseconds: 1_000),
            let parts = controller.receiveMessageNow(), parts.count == 8,
            parts.allSatisfy({ $0.count == 8 })
        else { return nil }
        let numbers = parts.map { part in part.withUnsafeBytes { Int(clamping: $0.loadUnaligned(as: UInt64.self)) } }
        return Statistics(messages: numbers[0], bytes: numbers[1], subscriptionMessages: numbers[4])
    }

    /// Connections shut down at once because the relay already served its most.
    public var refusedConnections: (count: Int, maximum: Int) { (limiter.refused.load(ordering: .relaxed), limiter.maximum) }

    /// With CURVE on the subscribers' side: handshakes admitted and refused so far.
    public var handshakes: (admitted: Int, refused: Int)? {
        authenticator.map { ($0.admitted.load(ordering: .relaxed), $0.refused.load(ordering: .relaxed)) }
    }
}
