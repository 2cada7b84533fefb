import CZeroMQ
import FluoroCore

/// What one connected peer may cost the publisher, as libzmq socket options (docs/security.md explains each).
enum PeerLimits {
    /// A peer must finish the ZMTP (and CURVE) handshake within this time or is disconnected.
    static let handshakeMilliseconds: Int32 = 5_000
    /// Live: every connection is pinged this often; a peer that answers nothing for `heartbeatTimeoutMilliseconds`
    /// (a crashed host, a pulled cable, a subscriber that stopped reading) is disconnected and its queue freed.
    static let heartbeatMilliseconds: Int32 = 2_000
    static let heartbeatTimeoutMilliseconds: Int32 = 10_000
    /// Messages a peer may have waiting to be read by the publisher (its subscriptions); beyond this libzmq stops
    /// reading its socket, so a flood stays in the flooder's own buffers.
    static let inboundQueue: Int32 = 16
    /// The longest message or handshake command a peer may send (a CURVE handshake does not fit in 256 bytes: the
    /// CURVE tests fail with that limit; a subscription is a few dozen); a longer one ends its connection.
    static let maximumMessage: Int64 = 1024
    /// Connections served at once (a procedure room has a handful of displays; a relay fans out further): more are
    /// shut down as they arrive (`ConnectionLimiter`).
    static let maximumConnections = 64

    /// Applies the limits. `heartbeats`: live only; in replay a peer that stops reading is not dropped but holds the
    /// run up until the publisher's stall limit fails it, naming the address (nothing is lost silently).
    static func apply(to socket: ZeroMQSocket, heartbeats: Bool) throws {
        try socket.setOption(ZMQ_HANDSHAKE_IVL, handshakeMilliseconds)
        if heartbeats {
            try socket.setOption(ZMQ_HEARTBEAT_IVL, heartbeatMilliseconds)
            try socket.setOption(ZMQ_HEARTBEAT_TIMEOUT, heartbeatTimeoutMilliseconds)
        }
        try socket.setOption(ZMQ_RCVHWM, inboundQueue)
        try socket.setOption(ZMQ_TCP_KEEPALIVE, 1)
        try socket.setOption(ZMQ_TCP_KEEPALIVE_IDLE, 30)
        try socket.setOption(ZMQ_TCP_KEEPALIVE_INTVL, 5)
        try socket.setOption(ZMQ_TCP_KEEPALIVE_CNT, 3)
        var size = maximumMessage
        guard zmq_setsockopt(socket.socket, ZMQ_MAXMSGSIZE, &size, MemoryLayout<Int64>.size) == 0 else {
            throw FluoroError.messaging(detail: "zmq_setsockopt(ZMQ_MAXMSGSIZE): \(ZeroMQSocket.lastError())")
        }
    }
}
