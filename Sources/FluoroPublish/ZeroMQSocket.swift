import CZeroMQ
import FluoroCore
#if canImport(Glibc)
import Glibc
#endif

/// Owns a ZeroMQ context and one socket. Single-owner rule: after `init`, only one thread at a time
/// uses it (the publisher's stage thread); it crosses threads only through the graph's hand-over.
final class ZeroMQSocket: @unchecked Sendable {
    private let context: UnsafeMutableRawPointer
    let socket: UnsafeMutableRawPointer

    init(type: Int32) throws {
        guard let context = zmq_ctx_new() else { throw FluoroError.messaging(detail: "zmq_ctx_new: \(Self.lastError())") }
        guard let socket = zmq_socket(context, type) else {
            zmq_ctx_term(context)
            throw FluoroError.messaging(detail: "zmq_socket: \(Self.lastError())")
        }
        self.context = context
        self.socket = socket
    }

    deinit { close(lingerMilliseconds: 0) }

    private var isClosed = false

    /// Closes the socket, waiting up to `lingerMilliseconds` for queued messages to leave.
    func close(lingerMilliseconds: Int32) {
        guard !isClosed else { return }
        isClosed = true
        try? setOption(ZMQ_LINGER, lingerMilliseconds)
        zmq_close(socket)
        zmq_ctx_term(context)
    }

    func setOption(_ option: Int32, _ value: Int32) throws {
        var value = value
        guard zmq_setsockopt(socket, option, &value, MemoryLayout<Int32>.size) == 0 else {
            throw FluoroError.messaging(detail: "zmq_setsockopt(\(option)): \(Self.lastError())")
        }
    }

    func bind(_ address: String) throws {
        guard zmq_bind(socket, address) == 0 else {
            let code = zmq_errno()
            let reason = code == EADDRINUSE ? "address already in use (is another publisher running?)" : Self.lastError()
            throw FluoroError.cannotBind(address: address, reason: reason)
        }
    }

    /// Sends one message part; returns false when it would block (only with `ZMQ_DONTWAIT`).
    func send(_ bytes: UnsafeRawBufferPointer, more: Bool, dontWait: Bool) throws -> Bool {
        let flags = (more ? ZMQ_SNDMORE : 0) | (dontWait ? ZMQ_DONTWAIT : 0)
        while true {
            if zmq_send(socket, bytes.baseAddress, bytes.count, flags) >= 0 { return true }
            let code = zmq_errno()
            if code == EAGAIN { return false }
            if code == EINTR { continue }
            throw FluoroError.messaging(detail: "zmq_send: \(Self.lastError())")
        }
    }

    /// Receives one message part into `buffer` without waiting; returns its size, or nil if none waits.
    func receiveNow(into buffer: UnsafeMutableRawBufferPointer) -> Int? {
        let got = zmq_recv(socket, buffer.baseAddress, buffer.count, ZMQ_DONTWAIT)
        return got >= 0 ? Int(got) : nil
    }

    /// Waits up to `milliseconds` for a message to arrive.
    func waitReadable(milliseconds: Int) -> Bool {
        var item = zmq_pollitem_t(socket: socket, fd: 0, events: Int16(ZMQ_POLLIN), revents: 0)
        return zmq_poll(&item, 1, milliseconds) > 0
    }

    static func lastError() -> String { String(cString: zmq_strerror(zmq_errno())) }
}
