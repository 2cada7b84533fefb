#if canImport(Glibc)
import Glibc
#endif

/// One subscriber connection of `ZMTPPublisher`: its handshake, its subscriptions, and the bytes still to be
/// written to it. Used only by the publisher's I/O thread.
final class ZMTPSubscriber {
    enum State { case greeting, ready, open }

    /// Why a connection ends.
    enum Closing: Error {
        case peerClosed
        /// The peer broke the protocol or asked for what this publisher does not do.
        case refused(String)
        case failed(String)
    }

    let fd: Int32
    /// The peer's address, for messages.
    let peer: String
    private(set) var state = State.greeting
    /// Prefixes the subscriber asked for (ZeroMQ keeps duplicates: each cancel removes one).
    private var subscriptions: [[UInt8]] = []
    /// Whether the I/O thread waits for this socket to become writable.
    var waitsToWrite = false

    /// Subscriptions are short: a frame from a subscriber that does not fit here ends the connection.
    private static let inputCapacity = 4096
    private let input = UnsafeMutableRawBufferPointer.allocate(byteCount: inputCapacity, alignment: 8)
    private var inputCount = 0

    private var output: UnsafeMutableRawBufferPointer
    private var outputStart = 0, outputEnd = 0
    /// A PONG owed while a frame is half written (sent when it is done).
    private let pong = UnsafeMutableRawBufferPointer.allocate(byteCount: 64, alignment: 8)
    private var pongCount = 0

    init(fd: Int32, peer: String) {
        self.fd = fd
        self.peer = peer
        output = .allocate(byteCount: ZMTPWire.greetingSize + ZMTPWire.ready.count, alignment: 64)
        ZMTPWire.greeting.withUnsafeBytes { append($0) }
        ZMTPWire.ready.withUnsafeBytes { append($0) }
    }

    deinit {
        input.deallocate()
        output.deallocate()
        pong.deallocate()
    }

    /// True while bytes wait to be written.
    var isBusy: Bool { outputStart < outputEnd }

    /// Whether a message whose first part is `topic` matches one of the subscriptions (a prefix of it).
    func wants(topic: UnsafeRawBufferPointer) -> Bool {
        guard state == .open else { return false }
        return subscriptions.contains { $0.count <= topic.count && $0.elementsEqual(topic.prefix($0.count)) }
    }

    /// Makes room for `byteCount` bytes of queued output (done once, on the first frame, so that sending
    /// allocates nothing afterwards).
    func reserveOutput(_ byteCount: Int) {
        guard output.count < byteCount else { return }
        let grown = UnsafeMutableRawBufferPointer.allocate(byteCount: byteCount, alignment: 64)
        let pending = outputEnd - outputStart
        if pending > 0 { grown.baseAddress!.copyMemory(from: output.baseAddress! + outputStart, byteCount: pending) }
        output.deallocate()
        output = grown
        outputStart = 0
        outputEnd = pending
    }

    /// Sends `bytes` now as far as the socket takes them and queues the rest (after anything already queued).
    func send(_ bytes: UnsafeRawBufferPointer) throws(Closing) {
        var sent = 0
        if !isBusy {
            sent = try write(bytes)
            if sent == bytes.count { return }
        }
        append(UnsafeRawBufferPointer(rebasing: bytes[sent...]))
    }

    /// Writes queued bytes; returns true when none are left. A PONG owed goes out once the queue is empty.
    func flush() throws(Closing) -> Bool {
        while true {
            if isBusy {
                outputStart += try write(UnsafeRawBufferPointer(start: output.baseAddress! + outputStart, count: outputEnd - outputStart))
                if isBusy { return false }
            }
            outputStart = 0
            outputEnd = 0
            guard pongCount > 0 else { return true }
            append(UnsafeRawBufferPointer(start: pong.baseAddress, count: pongCount))
            pongCount = 0
        }
    }

    /// Reads what the subscriber sent (greeting, READY, subscriptions, heartbeats); returns how many
    /// subscriptions arrived.
    func receive() throws(Closing) -> Int {
        var subscribed = 0
        while true {
            let room = Self.inputCapacity - inputCount
            guard room > 0 else { throw .refused("sent a frame of more than \(Self.inputCapacity) bytes (a subscriber sends only short ones)") }
            let got = recv(fd, input.baseAddress! + inputCount, room, 0)
            if got == 0 { throw .peerClosed }
            if got < 0 {
                if errno == EINTR { continue }
                if errno == EAGAIN || errno == EWOULDBLOCK { return subscribed }
                if errno == ECONNRESET { throw .peerClosed }
                throw .failed("reading: \(String(cString: strerror(errno)))")
            }
            inputCount += got
            subscribed += try parse()
        }
    }

    // MARK: - Private

    private func write(_ bytes: UnsafeRawBufferPointer) throws(Closing) -> Int {
        var sent = 0
        while sent < bytes.count {
            let written = Glibc.send(fd, bytes.baseAddress! + sent, bytes.count - sent, Int32(MSG_NOSIGNAL))
            if written > 0 {
                sent += written
            } else if written < 0, errno == EINTR {
                continue
            } else if written < 0, errno == EAGAIN || errno == EWOULDBLOCK {
                return sent
            } else if written < 0, errno == EPIPE || errno == ECONNRESET {
                throw .peerClosed
            } else {
                throw .failed("writing: \(String(cString: strerror(errno)))")
            }
        }
        return sent
    }

    private func append(_ bytes: UnsafeRawBufferPointer) {
        if outputEnd + bytes.count > output.count { reserveOutput(max(outputEnd - outputStart + bytes.count, 2 * output.count)) }
        (output.baseAddress! + outputEnd).copyMemory(from: bytes.baseAddress!, byteCount: bytes.count)
        outputEnd += bytes.count
    }

    /// Consumes every complete greeting or frame in the input; returns the subscriptions among them.
    private func parse() throws(Closing) -> Int {
        var at = 0, subscribed = 0
        defer {
            if at > 0 {
                if at < inputCount { input.baseAddress!.copyMemory(from: input.baseAddress! + at, byteCount: inputCount - at) }
                inputCount -= at
            }
        }
        while true {
            let available = inputCount - at
            if state == .greeting {
                // The signature alone tells a peer that is not ZeroMQ at all.
                if available >= 1, input[0] != 0xFF { throw .refused("not a ZMTP 3 peer (no ZeroMQ signature)") }
                guard available >= ZMTPWire.greetingSize else { return subscribed }
                if let problem = ZMTPWire.problem(withGreeting: UnsafeRawBufferPointer(rebasing: input[at..<(at + ZMTPWire.greetingSize)])) {
                    throw .refused(problem)
                }
                at += ZMTPWire.greetingSize
                state = .ready
                continue
            }
            guard available >= 2 else { return subscribed }
            let flags = input[at]
            let long = flags & 2 != 0
            let headerSize = long ? 9 : 2
            guard available >= headerSize else { return subscribed }
            let size = long ? Int(min(UInt64(bigEndian: input.loadUnaligned(fromByteOffset: at + 1, as: UInt64.self)), UInt64(Int32.max)))
                            : Int(input[at + 1])
            guard headerSize + size <= Self.inputCapacity else {
                throw .refused("sent a frame of \(size) bytes (a subscriber sends only short ones)")
            }
            guard available >= headerSize + size else { return subscribed }
            let body = UnsafeRawBufferPointer(rebasing: input[(at + headerSize)..<(at + headerSize + size)])
            at += headerSize + size
            if flags & 4 != 0 {
                subscribed += try command(body)
            } else if state == .open, let first = body.first, first <= 1 {
                // A subscription message: 1 and a prefix to subscribe, 0 and a prefix to cancel.
                subscribed += update(subscribe: first == 1, prefix: UnsafeRawBufferPointer(rebasing: body.dropFirst()))
            }
        }
    }

    /// Handles one command; returns 1 for a SUBSCRIBE.
    private func command(_ body: UnsafeRawBufferPointer) throws(Closing) -> Int {
        // A command name is 1 to 255 bytes.
        guard let nameLength = body.first.map(Int.init), nameLength > 0, nameLength + 1 <= body.count else {
            throw .refused("sent a malformed command")
        }
        let name = String(decoding: body[1..<(1 + nameLength)], as: UTF8.self)
        let rest = UnsafeRawBufferPointer(rebasing: body[(1 + nameLength)...])
        switch (state, name) {
        case (.ready, "READY"):
            guard let properties = ZMTPWire.properties(in: rest) else { throw .refused("sent a malformed READY") }
            let type = properties["Socket-Type"] ?? "none"
            guard type == "SUB" || type == "XSUB" else {
                throw .refused("is a \(type) socket; only SUB and XSUB sockets can subscribe to a publisher")
            }
            state = .open
        case (.ready, _):
            throw .refused("sent \(name) before READY")
        case (.open, "SUBSCRIBE"), (.open, "CANCEL"):
            return update(subscribe: name == "SUBSCRIBE", prefix: rest)
        case (.open, "PING"):
            // PING: a 2-byte time to live and up to 16 bytes of context, which the PONG echoes.
            let context = rest.dropFirst(2).prefix(16)
            let pongCommand = ZMTPWire.command(name: "PONG", body: Array(context))
            pongCommand.withUnsafeBytes { pong.copyMemory(from: $0) }
            pongCount = pongCommand.count
            _ = try flush()
        case (.open, "ERROR"):
            throw .refused("reported an error: \(String(decoding: rest.dropFirst(), as: UTF8.self))")
        default:
            break  // PONG and commands of later versions need nothing from a publisher
        }
        return 0
    }

    private func update(subscribe: Bool, prefix: UnsafeRawBufferPointer) -> Int {
        if subscribe {
            subscriptions.append(Array(prefix))
            return 1
        }
        if let index = subscriptions.firstIndex(where: { $0.elementsEqual(prefix) }) { subscriptions.remove(at: index) }
        return 0
    }
}
