import CZeroMQ
import FluoroCore
@testable import FluoroPublish
import Foundation
import Testing

/// FluoroStream's own ZMTP sender (plain-text tcp:// and ipc://) against libzmq's SUB socket as the reference peer.
@Suite struct ZMTPPublisherTests {
    /// A small frame whose display bytes are `seed`-dependent.
    static func frame(seed: Int, width: Int = 64, height: Int = 48) throws -> Frame {
        let frame = Frame(slot: 0, geometry: try FrameGeometry(width: width, height: height, format: .grey16, bitsStored: 12),
                          stageCount: 1)
        for i in 0..<frame.display.count { frame.display[i] = UInt8((i &* 7 &+ seed) % 251) }
        frame.index = seed
        frame.availableAt = MonotonicClock.now()
        return frame
    }

    @Test func partsAreFramedAsZMTPSays() {
        var bytes = [UInt8](repeating: 0, count: 9)
        let short = bytes.withUnsafeMutableBytes { ZMTPWire.writePartHeader(size: 255, more: true, to: $0.baseAddress!) }
        #expect(short == 2 && bytes[0] == 0x01 && bytes[1] == 255)
        let long = bytes.withUnsafeMutableBytes { ZMTPWire.writePartHeader(size: 3 << 20, more: false, to: $0.baseAddress!) }
        #expect(long == 9 && bytes == [0x02, 0, 0, 0, 0, 0, 0x30, 0, 0])
        #expect(ZMTPWire.greeting.count == 64 && ZMTPWire.greeting[0] == 0xFF && ZMTPWire.greeting[9] == 0x7F)
        #expect(ZMTPWire.ready == [0x04, 25, 5] + Array("READY".utf8) + [11] + Array("Socket-Type".utf8) + [0, 0, 0, 3] + Array("PUB".utf8))
    }

    @Test func ipcEndpointsServeLibzmqSubscribers() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("fluoro-zmtp-\(getpid())").path
        let publisher = try ZeroMQPublisher(address: try PublisherAddress("ipc://\(path)"), policy: .replay, upstreamStages: [])
        let subscriber = TestSubscriber(address: "ipc://\(path)")
        #expect(publisher.waitForSubscribers(1, timeoutSeconds: 5))
        for seed in 0..<3 {
            let frame = try Self.frame(seed: seed)
            try publisher.process(frame)
            let parts = try #require(subscriber.receive())
            #expect(parts.count == 2 && parts[1] == Data(UnsafeBufferPointer(frame.display)))
            let header = try #require(try JSONSerialization.jsonObject(with: parts[0]) as? [String: Any])
            #expect(header["sequence"] as? Int == seed)
        }
        try publisher.finish()
        #expect(!FileManager.default.fileExists(atPath: path), "the socket file is removed at the end")
    }

    /// Whether this machine can listen on the IPv6 loopback address.
    static let hasIPv6Loopback: Bool = {
        let probe = socket(AF_INET6, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(probe) }
        var address = sockaddr_in6()
        address.sin6_family = sa_family_t(AF_INET6)
        address.sin6_addr = in6addr_loopback
        return withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(probe, $0, socklen_t(MemoryLayout<sockaddr_in6>.size)) }
        } == 0
    }()

    @Test(.enabled(if: hasIPv6Loopback, "this machine has no IPv6 loopback address"))
    func ipv6EndpointsServeLibzmqSubscribers() throws {
        let address = "tcp://[::1]:\(Int.random(in: 20_000..<60_000))"
        let publisher = try ZeroMQPublisher(address: try PublisherAddress(address), policy: .replay, upstreamStages: [])
        let subscriber = TestSubscriber(address: address, ipv6: true)
        #expect(publisher.waitForSubscribers(1, timeoutSeconds: 5))
        let frame = try Self.frame(seed: 9)
        try publisher.process(frame)
        let parts = try #require(subscriber.receive())
        #expect(parts.count == 2 && parts[1] == Data(UnsafeBufferPointer(frame.display)))
        try publisher.finish()
    }

    /// Peers that are not ZeroMQ subscribers are refused with the reason, and the subscribers keep their frames.
    @Test func peersThatCannotSubscribeAreRefusedNamingWhy() throws {
        let address = freeAddress()
        let publisher = try ZeroMQPublisher(address: try PublisherAddress(address), policy: .replay, upstreamStages: [])
        let subscriber = TestSubscriber(address: address)
        #expect(publisher.waitForSubscribers(1, timeoutSeconds: 5))

        // Not ZeroMQ at all.
        let web = try RawPeer(address: address)
        web.send(Array("GET / HTTP/1.1\r\n\r\n".utf8))
        #expect(try waitForRefusals(publisher, 1)?.contains("not a ZMTP 3 peer") == true)
        // A ZMTP peer whose socket type cannot subscribe.
        let push = try RawPeer(address: address)
        push.send(ZMTPWire.greeting + ZMTPWire.command(name: "READY", body: ZMTPWire.property(name: "Socket-Type", value: "PUSH")))
        #expect(try waitForRefusals(publisher, 2)?.contains("is a PUSH socket; only SUB and XSUB sockets can subscribe") == true)
        // A libzmq CURVE client hangs up on the plain-text greeting before saying anything.
        let context = zmq_ctx_new()!
        defer { zmq_ctx_term(context) }
        let curveClient = zmq_socket(context, ZMQ_SUB)!
        let server = try CurveCertificate.generate(), client = try CurveCertificate.generate()
        _ = server.publicKey.withCString { zmq_setsockopt(curveClient, ZMQ_CURVE_SERVERKEY, $0, 41) }
        _ = client.publicKey.withCString { zmq_setsockopt(curveClient, ZMQ_CURVE_PUBLICKEY, $0, 41) }
        _ = client.secretKey!.withCString { zmq_setsockopt(curveClient, ZMQ_CURVE_SECRETKEY, $0, 41) }
        zmq_setsockopt(curveClient, ZMQ_SUBSCRIBE, "", 0)
        zmq_connect(curveClient, address)
        #expect(try waitForRefusals(publisher, 3)?.contains("a CURVE client of this plain-text publisher") == true)
        var linger: Int32 = 0
        zmq_setsockopt(curveClient, ZMQ_LINGER, &linger, 4)
        zmq_close(curveClient)
        // A subscriber that sends a command without a name (once a crash: a 1...0 range).
        let nameless = try RawPeer(address: address)
        nameless.send(ZMTPWire.greeting + ZMTPWire.command(name: "READY", body: ZMTPWire.property(name: "Socket-Type", value: "SUB"))
                      + [0x04, 1, 0])
        #expect(try waitForRefusals(publisher, 4)?.contains("sent a malformed command") == true)

        let frame = try Self.frame(seed: 5)
        try publisher.process(frame)
        let parts = try #require(subscriber.receive())
        #expect(parts.count == 2 && parts[1] == Data(UnsafeBufferPointer(frame.display)))
        try publisher.finish()
    }

    /// A subscriber that sends heartbeats (ZMQ_HEARTBEAT_IVL) gets PONGs: libzmq would otherwise drop the
    /// connection after the timeout, reconnect and subscribe again.
    @Test func heartbeatsAreAnswered() throws {
        let address = freeAddress()
        let publisher = try ZeroMQPublisher(address: try PublisherAddress(address), policy: .replay, upstreamStages: [])
        let context = zmq_ctx_new()!
        let sub = zmq_socket(context, ZMQ_SUB)!
        var interval: Int32 = 50, timeout: Int32 = 200, receiveTimeout: Int32 = 5000
        zmq_setsockopt(sub, ZMQ_HEARTBEAT_IVL, &interval, 4)
        zmq_setsockopt(sub, ZMQ_HEARTBEAT_TIMEOUT, &timeout, 4)
        zmq_setsockopt(sub, ZMQ_RCVTIMEO, &receiveTimeout, 4)
        zmq_setsockopt(sub, ZMQ_SUBSCRIBE, "", 0)
        zmq_connect(sub, address)
        #expect(publisher.waitForSubscribers(1, timeoutSeconds: 5))
        Thread.sleep(forTimeInterval: 1.5)  // 30 heartbeats, nothing else sent
        #expect(!publisher.waitForSubscribers(2, timeoutSeconds: 0.1), "the subscriber never had to reconnect")
        #expect(publisher.subscriberCounts?.refusedConnections == 0)
        try publisher.process(try Self.frame(seed: 1))
        var message = zmq_msg_t()
        zmq_msg_init(&message)
        #expect(zmq_msg_recv(&message, sub, 0) > 0)
        zmq_msg_close(&message)
        var linger: Int32 = 0
        zmq_setsockopt(sub, ZMQ_LINGER, &linger, 4)
        zmq_close(sub)
        zmq_ctx_term(context)
        try publisher.finish()
    }

    /// Replay waits for a subscriber that stopped reading, then fails naming the address, instead of hanging.
    @Test func replayFailsOnASubscriberThatStoppedReading() throws {
        let address = freeAddress()
        let publisher = try ZeroMQPublisher(address: try PublisherAddress(address), policy: .replay, upstreamStages: [],
                                            replayStallMilliseconds: 300)
        let context = zmq_ctx_new()!
        let sub = zmq_socket(context, ZMQ_SUB)!
        var highWater: Int32 = 1, buffer: Int32 = 4096
        zmq_setsockopt(sub, ZMQ_RCVHWM, &highWater, 4)
        zmq_setsockopt(sub, ZMQ_RCVBUF, &buffer, 4)
        zmq_setsockopt(sub, ZMQ_SUBSCRIBE, "", 0)
        zmq_connect(sub, address)
        #expect(publisher.waitForSubscribers(1, timeoutSeconds: 5))
        let frame = try Self.frame(seed: 2, width: 512, height: 512)
        try publisher.prepare(for: frame.geometry)
        let started = Date()
        var failure: FluoroError?
        for _ in 0..<200 where failure == nil {
            do { try publisher.process(frame) } catch let error as FluoroError { failure = error }
        }
        #expect(failure == .messaging(detail: "\(address): a subscriber has not read for 0.3 s; replay waits for every subscriber"))
        #expect(Date().timeIntervalSince(started) < 10)
        var linger: Int32 = 0
        zmq_setsockopt(sub, ZMQ_LINGER, &linger, 4)
        zmq_close(sub)
        zmq_ctx_term(context)
        try publisher.finish()
    }

    /// A plain TCP connection that sends what it is given.
    final class RawPeer {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        init(address: String) throws {
            var target = sockaddr_in()
            target.sin_family = sa_family_t(AF_INET)
            target.sin_port = UInt16(address.split(separator: ":").last!)!.bigEndian
            inet_pton(AF_INET, "127.0.0.1", &target.sin_addr)
            let connected = withUnsafePointer(to: &target) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
            try #require(connected == 0)
        }
        deinit { close(fd) }
        func send(_ bytes: [UInt8]) { _ = bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, 0) } }
    }

    /// Waits until `count` connections have been refused; returns the last reason.
    private func waitForRefusals(_ publisher: ZeroMQPublisher, _ count: Int) throws -> String? {
        let deadline = Date().addingTimeInterval(5)
        while Date() < deadline {
            if let counts = publisher.subscriberCounts, counts.refusedConnections >= count { return counts.lastRefusal }
            Thread.sleep(forTimeInterval: 0.01)
        }
        return nil
    }
}
