import CZeroMQ
import FluoroCore

/// A subscriber to a FluoroStream publisher (or any imagezmq-style PUB): connects a SUB socket, optionally as a
/// CURVE client, and hands over each two-part message (JSON header, image bytes) as it arrives.
public final class ZeroMQSubscriber {
    public let address: String
    private let socket: ZeroMQSocket

    /// Connects to `address` (connecting succeeds before the publisher exists; frames arrive once it does).
    /// - Parameters:
    ///   - client: this subscriber's secret certificate, for a CURVE publisher.
    ///   - server: the publisher's public certificate (with `client`).
    public init(address: String, client: CurveCertificate? = nil, server: CurveCertificate? = nil) throws {
        self.address = address
        socket = try ZeroMQSocket(type: ZMQ_SUB)
        switch (client, server) {
        case (nil, nil):
            break
        case let (client?, server?):
            try CurveClient(client: client, server: server).apply(to: socket)
        default:
            throw FluoroError.invalidArgument("a CURVE subscriber needs both its own secret certificate and the publisher's public one")
        }
        try socket.setOption(ZMQ_RCVHWM, 4)
        try socket.setOption(ZMQ_SUBSCRIBE, bytes: [])
        guard zmq_connect(socket.socket, address) == 0 else {
            throw FluoroError.cannotBind(address: address, reason: "cannot connect: \(ZeroMQSocket.lastError())")
        }
    }

    /// The next message's parts, or nil when none arrives within `timeoutMilliseconds`.
    public func receive(timeoutMilliseconds: Int) -> [[UInt8]]? {
        guard socket.waitReadable(milliseconds: timeoutMilliseconds) else { return nil }
        return socket.receiveMessageNow()
    }

    public func close() { socket.close(lingerMilliseconds: 0) }
}
