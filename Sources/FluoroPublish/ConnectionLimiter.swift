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
    private let socket: ZeroMQSocket
    private let stopRequested = Atomic<Bool>(false)
    private let stopped = DispatchSemaphore(value: 0)
    private var isStopped = false

    /// Starts watching `publisher` (call before it binds). `maximum` is lowered to leave half the descriptor limit
    /// free for everything else the process opens.
    init(watching publisher: ZeroMQSocket, maximum: Int) throws {
        var limit = rlimit()
        let descriptors = getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 ? Int(clamping: limit.rlim_cur) : 1024
        self.maximum = max(1, min(maximum, descriptors / 2 - 16))
        let endpoint = "inproc://fluoro-connections-\(UInt64.random(in: 0...UInt64.max))"
        let events = ZMQ_EVENT_ACCEPTED | ZMQ_EVENT_DISCONNECTED
        guard zmq_socket_monitor(publisher.socket, endpoint, events) == 0 else {
            throw FluoroError.messaging(detail: "zmq_socket_monitor: \(ZeroMQSocket.lastError())")
        }
        socket = try ZeroMQSocket(type: ZMQ_PAIR, sharingContextOf: publisher)
        try socket.connect(endpoint)
        let thread = Thread { [self] in serve() }
        thread.name = "fluoro-conn"
        thread.start()
    }

    /// Stops watching and closes the monitor socket (before the publisher's context is terminated).
    func stop() {
        guard !isStopped else { return }
        isStopped = true
        stopRequested.store(true, ordering: .releasing)
        stopped.wait()
    }

    private func serve() {
        var open = Set<Int32>()
        while !stopRequested.load(ordering: .acquiring) {
            // Each event: 6 bytes (event number, then the connection's descriptor), then the endpoint.
            guard socket.waitReadable(milliseconds: 50), let parts = socket.receiveMessageNow(), let first = parts.first,
                first.count >= 6
            else { continue }
            let event = UInt16(first[0]) | UInt16(first[1]) << 8
            let descriptor = first[2...5].reversed().reduce(Int32(0)) { $0 << 8 | Int32($1) }
            if Int32(event) == ZMQ_EVENT_ACCEPTED {
                if open.count >= maximum {
                    _ = shutdown(descriptor, Int32(SHUT_RDWR))
                    refused.add(1, ordering: .relaxed)
                } else {
                    open.insert(descriptor)
                }
            } else if Int32(event) == ZMQ_EVENT_DISCONNECTED {
                open.remove(descriptor)
            }
        }
        socket.close(lingerMilliseconds: 0)
        stopped.signal()
    }
}
