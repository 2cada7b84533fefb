import CZeroMQ
import FluoroCore
import Foundation
import Synchronization

/// Holds the publisher to a number of simultaneous connections, so that no peer can drive it to the process's
/// descriptor limit (where libzmq's listener retries a failing `accept` without pause and spins a core).
///
/// It watches the publisher's socket events (`zmq_socket_monitor`: accepted and disconnected connections, with
/// their descriptors) on a small thread of its own, away from the frame path; a connection accepted beyond
/// `maximum` is shut down at once (`shutdown(2)`: libzmq sees the end of the stream and closes it itself) and
/// counted. Connections already admitted keep their frames.
final class ConnectionLimiter: @unchecked Sendable {
    /// The most connections the publisher serves at once, and below what the descriptor limit allows.
    let maximum: Int
    /// Connections shut down because `maximum` were already open.
    let refused = Atomic<Int>(0)
    private var service: SocketServiceThread?

    /// Starts watching `publisher` (call before it binds). `maximum` is lowered to leave half the descriptor limit
    /// free for everything else the process opens.
    init(watching publisher: ZeroMQSocket, maximum: Int) throws {
        var limit = rlimit()
        let descriptors = getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 ? Int(clamping: limit.rlim_cur) : 1024
        let most = max(1, min(maximum, descriptors / 2 - 16))
        self.maximum = most
        let endpoint = "inproc://fluoro-connections-\(UInt64.random(in: 0...UInt64.max))"
        guard zmq_socket_monitor(publisher.socket, endpoint, ZMQ_EVENT_ACCEPTED | ZMQ_EVENT_DISCONNECTED) == 0 else {
            throw FluoroError.messaging(detail: "zmq_socket_monitor: \(ZeroMQSocket.lastError())")
        }
        let socket = try ZeroMQSocket(type: ZMQ_PAIR, sharingContextOf: publisher)
        try socket.connect(endpoint)
        var open = Set<Int32>()  // used on the service thread only
        // The closure holds this limiter until `stop` lets the service go.
        service = SocketServiceThread(name: "fluoro-conn", socket: socket) { [self] parts in
            // Each event: 6 bytes (event number, then the connection's descriptor), then the endpoint.
            guard let first = parts.first, first.count >= 6 else { return }
            let event = Int32(UInt16(first[0]) | UInt16(first[1]) << 8)
            let descriptor = first[2...5].reversed().reduce(Int32(0)) { $0 << 8 | Int32($1) }
            if event == ZMQ_EVENT_ACCEPTED {
                if open.count >= most {
                    _ = shutdown(descriptor, Int32(SHUT_RDWR))
                    refused.add(1, ordering: .relaxed)
                } else {
                    open.insert(descriptor)
                }
            } else if event == ZMQ_EVENT_DISCONNECTED {
                open.remove(descriptor)
            }
        }
    }

    /// Stops watching and closes the monitor socket (before the publisher's context is terminated).
    func stop() {
        service?.stop()
        service = nil
    }
}
