import CZeroMQ
import FluoroCore
@testable import FluoroPublish
import Foundation
import Testing

/// A plain SUB socket, to check what the publisher puts on the wire.
final class TestSubscriber {
    let context = zmq_ctx_new()!
    let socket: UnsafeMutableRawPointer
    init(address: String, ipv6: Bool = false) {
        socket = zmq_socket(context, ZMQ_SUB)!
        var on: Int32 = ipv6 ? 1 : 0
        zmq_setsockopt(socket, ZMQ_IPV6, &on, 4)
        var timeout: Int32 = 5000
        zmq_setsockopt(socket, ZMQ_RCVTIMEO, &timeout, 4)
        zmq_setsockopt(socket, ZMQ_SUBSCRIBE, "", 0)
        zmq_connect(socket, address)
    }
    deinit {
        var linger: Int32 = 0
        zmq_setsockopt(socket, ZMQ_LINGER, &linger, 4)
        zmq_close(socket)
        zmq_ctx_term(context)
    }
    /// Receives one multipart message.
    func receive() -> [Data]? {
        var parts: [Data] = []
        var more = true
        while more && parts.count < 8 {
            var message = zmq_msg_t()
            zmq_msg_init(&message)
            defer { zmq_msg_close(&message) }
            guard zmq_msg_recv(&message, socket, 0) >= 0 else { return nil }
            parts.append(Data(bytes: zmq_msg_data(&message), count: zmq_msg_size(&message)))
            more = zmq_msg_more(&message) != 0
        }
        return parts
    }
}

func freeAddress() -> String { "tcp://127.0.0.1:\(Int.random(in: 20_000..<60_000))" }

@Suite struct ZeroMQPublisherTests {
    @Test func publishesHeaderAndPixelsAsDocumented() throws {
        let address = freeAddress()
        let publisher = try ZeroMQPublisher(address: try PublisherAddress(address), policy: .replay, upstreamStages: ["render"])
        let subscriber = TestSubscriber(address: address)
        #expect(publisher.waitForSubscribers(1, timeoutSeconds: 5))
        let geometry = try FrameGeometry(width: 6, height: 4, format: .grey16, bitsStored: 12)
        let frame = Frame(slot: 0, geometry: geometry, stageCount: 2)
        for i in 0..<frame.display.count { frame.display[i] = UInt8(i % 251) }
        frame.index = 41
        frame.sourceTime = 2.5
        frame.availableAt = MonotonicClock.now()
        frame.stageExit[0] = frame.availableAt + 1_500_000
        frame.annotations.motion.dx = -1.25
        frame.annotations.motion.state = .tracking
        frame.annotations.guidewire.append(Point2(x: 1, y: 2))
        frame.annotations.guidewire.append(Point2(x: 3.5, y: 2.25))
        frame.annotations.guidewire.tip = Point2(x: 3.5, y: 2.25)
        let shifts: [Float] = [0.5, -0.25, 1, 2]
        shifts.withUnsafeBufferPointer { frame.annotations.localMotion.set(gridSize: 2, shiftX: $0, shiftY: $0) }
        frame.annotations.roadmap.state = .active
        frame.annotations.roadmap.drawn = true
        frame.annotations.roadmap.offsetX = 0.5
        frame.annotations.roadmap.contrastFrames = 12
        frame.annotations.roadmap.vesselPixels = 7
        try publisher.prepare(for: geometry)
        try publisher.process(frame)

        let parts = try #require(subscriber.receive())
        #expect(parts.count == 2)
        let header = try #require(try JSONSerialization.jsonObject(with: parts[0]) as? [String: Any])
        #expect(header["msg"] as? String == "fluorostream")
        #expect(header["dtype"] as? String == "uint8")
        #expect(header["shape"] as? [Int] == [4, 6, 3])
        #expect(header["frame"] as? Int == 41 && header["sequence"] as? Int == 0)
        #expect(header["source_time_s"] as? Double == 2.5)
        let latency = try #require(header["latency_ms"] as? [String: Double])
        #expect(latency["render"] == 1.5)
        let motion = try #require(header["motion"] as? [String: Any])
        #expect(motion["dx"] as? Double == -1.25 && motion["state"] as? String == "tracking")
        let field = try #require(motion["local_field"] as? [String: Any])
        #expect(
            field["grid"] as? Int == 2 && field["dx"] as? [Double] == [0.5, -0.25, 1, 2] && field["dy"] as? [Double] == [0.5, -0.25, 1, 2])
        let wire = try #require(header["guidewire"] as? [String: Any])
        #expect(wire["present"] as? Bool == true)
        #expect(wire["tip"] as? [Double] == [3.5, 2.25])
        #expect(wire["centerline"] as? [[Double]] == [[1, 2], [3.5, 2.25]])
        #expect((header["catheter"] as? [String: Any])?["tip"] is NSNull)
        let roadmap = try #require(header["roadmap"] as? [String: Any])
        #expect(roadmap["state"] as? String == "active" && roadmap["drawn"] as? Bool == true)
        #expect(roadmap["offset"] as? [Double] == [0.5, 0] && roadmap["contrast_frames"] as? Int == 12)
        #expect(roadmap["vessel_pixels"] as? Int == 7 && roadmap["invalidation"] is NSNull)
        #expect(parts[1] == Data(UnsafeBufferPointer(frame.display)))
        try publisher.finish()
    }

    @Test func secondPublisherOnTheSameAddressFailsNamingIt() throws {
        let address = freeAddress()
        let first = try ZeroMQPublisher(address: try PublisherAddress(address), policy: .live, upstreamStages: [])
        #expect(throws: FluoroError.cannotBind(address: address, reason: "address already in use (is another publisher running?)")) {
            try ZeroMQPublisher(address: try PublisherAddress(address), policy: .live, upstreamStages: [])
        }
        try first.finish()
    }

    @Test func nonLoopbackAddressesNeedConsent() throws {
        #expect(try PublisherAddress("tcp://127.0.0.1:5555").isLocalOnly)
        #expect(try PublisherAddress("tcp://localhost:5555").isLocalOnly)
        #expect(try PublisherAddress("tcp://[::1]:5555").isLocalOnly)
        #expect(try PublisherAddress("ipc:///tmp/fluoro").isLocalOnly)
        #expect(try !PublisherAddress("tcp://0.0.0.0:5555").isLocalOnly)
        #expect(try !PublisherAddress("tcp://*:5555").isLocalOnly)
        #expect(try !PublisherAddress("tcp://192.0.2.7:5555").isLocalOnly)
        #expect(throws: FluoroError.self) { try PublisherAddress("udp://127.0.0.1:5555") }
        #expect(throws: FluoroError.self) {
            try ZeroMQPublisher(address: try PublisherAddress("tcp://0.0.0.0:5555"), policy: .live, upstreamStages: [])
        }
    }

    @Test func numbersAreWrittenExactlyWithoutFoundation() throws {
        var writer = JSONHeaderWriter(capacity: 256)
        defer { writer.deallocate() }
        writer.reset()
        writer.key("a"); writer.number(-0.0004)
        writer.key("b"); writer.number(12.3456, decimals: 2)
        writer.key("c"); writer.number(.nan)
        writer.key("d"); writer.integer(-9_007_199_254_740_993)
        writer.key("e"); writer.string("say \"hi\"\\")
        writer.finish()
        let text = String(decoding: writer.bytes, as: UTF8.self)
        #expect(text == #"{"a":0.000,"b":12.35,"c":null,"d":-9007199254740993,"e":"say \"hi\"\\"}"#)
    }
}
