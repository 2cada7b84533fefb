import CZeroMQ
import FluoroCore
#if canImport(Glibc)
    import Glibc
#endif

/// Owns a ZeroMQ context and one socket (or, made with `sharingContextOf:`, a second socket in another one's
/// context, which must be closed before that one). Single-owner rule: after `init`, only one thread at a time
/// uses it (the publisher's stage thread); it crosses threads only through the graph's hand-over.
final class ZeroMQSocket: @unchecked Sendable {
    private let context: UnsafeMutableRawPointer
    private let ownsContext: Bool
    let socket: UnsafeMutableRawPointer

    init(type: Int32) throws {
        guard let context = zmq_ctx_new() else { throw FluoroError.messaging(detail: "zmq_ctx_new: \(Self.lastError())") }
        guard let socket = zmq_socket(context, type) else {
            zmq_ctx_term(context)
            throw FluoroError.messaging(detail: "zmq_socket: \(Self.lastError())")
        }
        self.context = context
        self.socket = socket
        ownsContext = true
    }

    /// A socket in `owner`'s context (inproc endpoints are per context).
    init(type: Int32, sharingContextOf owner: ZeroMQSocket) throws {
        guard let socket = zmq_socket(owner.context, type) else {
            throw FluoroError.messaging(detail: "zmq_socket: \(Self.lastError())")
        }
        context = owner.context
        self.socket = socket
        ownsContext = false
    }

    deinit { close(lingerMilliseconds: 0) }

    private var isClosed = false

    /// Closes the socket, waiting up to `lingerMilliseconds` for queued messages to leave.
    func close(lingerMilliseconds: Int32) {
        guard !isClosed else { return }
        isClosed = true
        try? setOption(ZMQ_LINGER, lingerMilliseconds)
        zmq_close(socket)
        if ownsContext { zmq_ctx_term(context) }
    }

    func setOption(_ option: Int32, _ value: Int32) throws {
        var value = value
        guard zmq_setsockopt(socket, option, &value, MemoryLayout<Int32>.size) == 0 else {
            throw FluoroError.messaging(detail: "zmq_setsockopt(\(option)): \(Self.lastError())")
        }
    }

    /// Sets a string option (sent with its terminating NUL, as libzmq expects Z85 keys).
    func setOption(_ option: Int32, string: String) throws {
        let bytes = Array(string.utf8CString)
        guard zmq_setsockopt(socket, option, bytes, bytes.count) == 0 else {
            throw FluoroError.messaging(detail: "zmq_setsockopt(\(option)): \(Self.lastError())")
        }
    }

    /// Sets a binary option (e.g. a subscription prefix; empty for all messages).
    func setOption(_ option: Int32, bytes: [UInt8]) throws {
        guard zmq_setsockopt(socket, option, bytes, bytes.count) == 0 else {
            throw FluoroError.messaging(detail: "zmq_setsockopt(\(option)): \(Self.lastError())")
        }
    }

    /// Sets a binary option from raw bytes (allocates nothing).
    func setOption(_ option: Int32, raw bytes: UnsafeRawBufferPointer) throws {
        guard zmq_setsockopt(socket, option, bytes.baseAddress, bytes.count) == 0 else {
            throw FluoroError.messaging(detail: "zmq_setsockopt(\(option)): \(Self.lastError())")
        }
    }

    /// Receives every part of one message without waiting; nil if none waits.
    func receiveMessageNow() -> [[UInt8]]? {
        var parts: [[UInt8]] = []
        var more: Int32 = 1
        while more != 0 {
            var message = zmq_msg_t()
            zmq_msg_init(&message)
            defer { zmq_msg_close(&message) }
            guard zmq_msg_recv(&message, socket, parts.isEmpty ? ZMQ_DONTWAIT : 0) >= 0 else { return parts.isEmpty ? nil : parts }
            let data = zmq_msg_data(&message).assumingMemoryBound(to: UInt8.self)
            parts.append(Array(UnsafeBufferPointer(start: data, count: zmq_msg_size(&message))))
            more = zmq_msg_more(&message)
        }
        return parts
    }

    /// Sends a message of several parts.
    func sendMessage(_ parts: [[UInt8]]) throws {
        for (index, part) in parts.enumerated() {
            _ = try part.withUnsafeBytes { try send($0, more: index < parts.count - 1, dontWait: false) }
        }
    }

    func connect(_ address: String) throws {
        guard zmq_connect(socket, address) == 0 else {
            throw FluoroError.messaging(detail: "zmq_connect(\(address)): \(Self.lastError())")
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

    /// Sends one prepared message part (libzmq takes it over on success; on failure the caller still owns it);
    /// returns false when it would block (with `ZMQ_DONTWAIT`, or after `ZMQ_SNDTIMEO`).
    func send(_ message: inout zmq_msg_t, more: Bool, dontWait: Bool) throws -> Bool {
        let flags = (more ? ZMQ_SNDMORE : 0) | (dontWait ? ZMQ_DONTWAIT : 0)
        while true {
            if zmq_msg_send(&message, socket, flags) >= 0 { return true }
            let code = zmq_errno()
            if code == EAGAIN { return false }
            if code == EINTR { continue }
            throw FluoroError.messaging(detail: "zmq_msg_send: \(Self.lastError())")
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
