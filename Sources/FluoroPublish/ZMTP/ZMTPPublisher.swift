import FluoroCore
import FluoroGraph
import CFluoroLinux
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// FluoroStream's own ZeroMQ publisher for plain-text `tcp://` and `ipc://` endpoints: it speaks ZMTP 3.0 with
/// NULL security to any ZeroMQ SUB socket (libzmq, pyzmq, imagezmq), like a libzmq PUB socket, but sends from
/// buffers allocated once, so publishing a frame allocates nothing (libzmq allocates every message it sends).
///
/// The owner (the publish stage) writes each frame's messages into one of a few preallocated batches and hands
/// it to the I/O thread through a lock-free ring; the I/O thread accepts subscribers, reads their subscriptions
/// and writes each batch to the subscribers whose subscriptions match a message's first part. What a socket does
/// not take at once is copied into that subscriber's own buffer, so a batch is free again as soon as the I/O
/// thread has handed it out. Live: a subscriber still taking an earlier frame skips this one (it sees a gap in
/// `sequence`). Replay: the I/O thread waits until every matching subscriber has taken the previous frame, and
/// the owner waits for a free batch. The owner must `close` it: the I/O thread holds it until then.
final class ZMTPPublisher: @unchecked Sendable {
    let endpoint: String
    /// Subscription messages received so far (each SUB socket sends one per topic).
    let subscriptions = Atomic<Int>(0)
    /// Frames skipped for a subscriber that was still taking an earlier one (live mode), over all subscribers.
    let skipped = Atomic<Int>(0)
    /// Connections refused, or closed by the peer, before or for breaking the protocol (the handshake included).
    let refusedConnections = Atomic<Int>(0)
    /// Why the last connection was refused (nil when none was).
    var lastRefusal: String? { refusal.withLock { $0 } }

    private let waitsForEverySubscriber: Bool
    private let listener: Int32
    private let unixPath: String?
    private let epoll: Int32
    private let wakeUp: Int32
    private var thread: GraphThread?
    private let stopping = Atomic<Bool>(false)
    private let lingerDeadline = Atomic<UInt64>(0)
    private let refusal = Mutex<String?>(nil)

    /// Batches: the owner fills one, the I/O thread sends it and gives it back.
    private static let batchCount = 4
    private let batches: [OutgoingBatch]
    private let filled = SPSCRing<Int>(minimumCapacity: batchCount)
    private let emptied = SPSCRing<Int>(minimumCapacity: batchCount)
    private let batchFreed = Doorbell()
    private var neverUsed = batchCount
    private var current: OutgoingBatch?

    // The I/O thread's own state.
    private var subscribers: [ZMTPSubscriber] = []
    private var pending: OutgoingBatch?
    private let events = UnsafeMutablePointer<epoll_event>.allocate(capacity: 64)

    /// Binds `endpoint` at once; nil when it is not one this publisher handles (then libzmq does: other transports,
    /// host names, wildcard ports). `replay`: wait for every subscriber instead of skipping slow ones.
    init?(endpoint: String, replay: Bool) throws {
        guard let address = BindAddress(endpoint) else { return nil }
        self.endpoint = endpoint
        waitsForEverySubscriber = replay
        batches = (0..<Self.batchCount).map { _ in OutgoingBatch() }
        let fd = socket(address.family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw FluoroError.cannotBind(address: endpoint, reason: String(cString: strerror(errno))) }
        var yes: Int32 = 1
        if address.family == AF_INET || address.family == AF_INET6 {
            setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &yes, socklen_t(MemoryLayout<Int32>.size))
        } else if let path = address.unixPath {
            unlink(path)  // a socket file left by an earlier run, as libzmq does
        }
        let bound = address.withSockaddr { bind(fd, $0, $1) }
        guard bound == 0, listen(fd, 128) == 0 else {
            let code = errno
            Glibc.close(fd)
            throw FluoroError.cannotBind(address: endpoint, reason: code == EADDRINUSE ? "address already in use (is another publisher running?)"
                                                                                        : String(cString: strerror(code)))
        }
        listener = fd
        unixPath = address.unixPath
        epoll = epoll_create1(Int32(EPOLL_CLOEXEC))
        wakeUp = eventfd(0, Int32(EFD_NONBLOCK | EFD_CLOEXEC))
        guard epoll >= 0, wakeUp >= 0 else {
            let reason = String(cString: strerror(errno))
            Glibc.close(fd)
            throw FluoroError.cannotBind(address: endpoint, reason: "epoll/eventfd: \(reason)")
        }
        watch(listener, token: Self.listenerToken, events: EPOLLIN.rawValue)
        watch(wakeUp, token: Self.wakeUpToken, events: EPOLLIN.rawValue)
        thread = GraphThread(name: "fluoro-zmtp") { [self] in serve() }
    }

    /// Runs once `close` has stopped the I/O thread (which holds the publisher until then).
    deinit { events.deallocate() }

    // MARK: - The owner's side

    /// Makes every batch hold at least `byteCount` bytes (call before the first frame, so that frames allocate
    /// nothing; a batch also grows on demand).
    func reserve(batchBytes byteCount: Int) {
        for batch in batches { batch.reserve(byteCount) }
    }

    /// Starts a frame's batch. Live (`waitNanoseconds` 0): false at once when every batch is still being sent.
    /// Replay: waits up to `waitNanoseconds` for one and returns false if none came.
    func beginFrame(waitNanoseconds: Int64) -> Bool {
        if let unfinished = current {
            // The last frame failed before `endFrame` (a JPEG error, say): its batch is still ours.
            unfinished.clear()
            return true
        }
        if neverUsed > 0 {
            neverUsed -= 1
            current = batches[neverUsed]
        } else {
            if !emptied.hasElement, waitNanoseconds > 0 {
                let deadline = MonotonicClock.now() + UInt64(waitNanoseconds)
                while !emptied.hasElement, MonotonicClock.now() < deadline {
                    _ = batchFreed.wait(until: { emptied.hasElement }, timeoutNanoseconds: 100_000_000)
                }
            }
            guard let index = emptied.pop() else { return false }
            current = batches[index]
        }
        current!.clear()
        return true
    }

    /// Adds one message of two or three parts to the frame's batch; subscribers match their prefixes against `first`.
    func append(_ first: UnsafeRawBufferPointer, _ second: UnsafeRawBufferPointer, _ third: UnsafeRawBufferPointer? = nil) {
        current!.append(first, second, third)
    }

    /// Hands the frame's batch to the I/O thread.
    func endFrame() {
        guard let batch = current else { return }
        current = nil
        let pushed = filled.push(batches.firstIndex { $0 === batch }!)
        assert(pushed, "more batches in flight than exist")
        var one: UInt64 = 1
        _ = write(wakeUp, &one, 8)
    }

    /// Stops the I/O thread, first waiting up to `lingerMilliseconds` for queued frames to be written; closes every
    /// connection and the listening socket.
    func close(lingerMilliseconds: Int) {
        guard let running = thread else { return }
        thread = nil
        lingerDeadline.store(MonotonicClock.now() + UInt64(max(lingerMilliseconds, 0)) * 1_000_000, ordering: .relaxed)
        stopping.store(true, ordering: .releasing)
        var one: UInt64 = 1
        _ = write(wakeUp, &one, 8)
        running.join()
        for subscriber in subscribers { Glibc.close(subscriber.fd) }
        subscribers.removeAll()
        Glibc.close(listener)
        Glibc.close(epoll)
        Glibc.close(wakeUp)
        if let unixPath { unlink(unixPath) }
    }

    // MARK: - The I/O thread

    private static let listenerToken: UInt64 = 0
    private static let wakeUpToken: UInt64 = 1

    private func serve() {
        while true {
            let stop = stopping.load(ordering: .acquiring)
            if stop, (pending == nil && !filled.hasElement && !subscribers.contains { $0.isBusy })
                || MonotonicClock.now() >= lingerDeadline.load(ordering: .relaxed) {
                return
            }
            let count = epoll_wait(epoll, events, 64, stop ? 10 : 200)
            for index in 0..<max(Int(count), 0) {
                let event = events[index]
                switch event.data.u64 {
                case Self.listenerToken: acceptSubscribers()
                case Self.wakeUpToken:
                    var value: UInt64 = 0
                    _ = read(wakeUp, &value, 8)
                default:
                    let subscriber = Unmanaged<ZMTPSubscriber>.fromOpaque(UnsafeRawPointer(bitPattern: UInt(event.data.u64))!)
                        .takeUnretainedValue()
                    handle(subscriber, events: event.events)
                }
            }
            sendQueuedFrames()
        }
    }

    private func acceptSubscribers() {
        while true {
            var storage = sockaddr_storage()
            var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
            let fd = withUnsafeMutablePointer(to: &storage) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    fluoro_accept_nonblocking(listener, $0, &length)
                }
            }
            guard fd >= 0 else { return }  // EAGAIN: none left (other errors: the next event retries)
            var yes: Int32 = 1
            if storage.ss_family == sa_family_t(AF_INET) || storage.ss_family == sa_family_t(AF_INET6) {
                setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &yes, socklen_t(MemoryLayout<Int32>.size))
            }
            let subscriber = ZMTPSubscriber(fd: fd, peer: Self.describe(storage))
            subscribers.append(subscriber)
            watch(fd, token: UInt64(UInt(bitPattern: Unmanaged.passUnretained(subscriber).toOpaque())),
                  events: EPOLLIN.rawValue | EPOLLOUT.rawValue)
            subscriber.waitsToWrite = true  // the greeting goes out when the socket is writable
        }
    }

    private func handle(_ subscriber: ZMTPSubscriber, events: UInt32) {
        do {
            if events & (EPOLLIN.rawValue | EPOLLHUP.rawValue | EPOLLERR.rawValue) != 0 {
                let subscribed = try subscriber.receive()
                if subscribed > 0 { subscriptions.add(subscribed, ordering: .releasing) }
            }
            if events & EPOLLOUT.rawValue != 0 || subscriber.isBusy { try flush(subscriber) }
        } catch {
            drop(subscriber, because: error)
        }
    }

    /// Writes what is queued for `subscriber` and watches for writability only while something is left.
    private func flush(_ subscriber: ZMTPSubscriber) throws(ZMTPSubscriber.Closing) {
        let done = try subscriber.flush()
        if done == subscriber.waitsToWrite {
            subscriber.waitsToWrite = !done
            watch(subscriber.fd, token: UInt64(UInt(bitPattern: Unmanaged.passUnretained(subscriber).toOpaque())),
                  events: EPOLLIN.rawValue | (done ? 0 : EPOLLOUT.rawValue), modify: true)
        }
    }

    private func drop(_ subscriber: ZMTPSubscriber, because closing: ZMTPSubscriber.Closing) {
        var reason: String?
        switch closing {
        case .peerClosed where subscriber.state != .open:
            // libzmq hangs up on a greeting it cannot accept before saying why.
            reason = "closed the connection during the handshake (a CURVE client of this plain-text publisher, or a socket "
                + "type that cannot subscribe?)"
        case .peerClosed: break
        case let .refused(why), let .failed(why): reason = why
        }
        if let reason {
            refusedConnections.add(1, ordering: .relaxed)
            refusal.withLock { $0 = "\(subscriber.peer) on \(endpoint): \(reason)" }
        }
        epoll_ctl(epoll, EPOLL_CTL_DEL, subscriber.fd, nil)
        Glibc.close(subscriber.fd)
        subscribers.removeAll { $0 === subscriber }
    }

    /// Sends the frames the owner handed over, in order; replay stops at the first that a subscriber cannot take yet.
    private func sendQueuedFrames() {
        while let batch = pending ?? filled.pop().map({ batches[$0] }) {
            guard send(batch) else {
                pending = batch
                return
            }
            pending = nil
            _ = emptied.push(batches.firstIndex { $0 === batch }!)
            batchFreed.ring()
        }
    }

    /// Hands `batch` to every matching subscriber; false (replay only) when one is still taking an earlier frame.
    private func send(_ batch: OutgoingBatch) -> Bool {
        if waitsForEverySubscriber {
            for subscriber in subscribers where subscriber.isBusy && batch.matches(subscriber) { return false }
        }
        var index = 0
        while index < subscribers.count {
            let subscriber = subscribers[index]
            index += 1
            guard batch.matches(subscriber) else { continue }
            if subscriber.isBusy {
                skipped.add(1, ordering: .relaxed)
                continue
            }
            subscriber.reserveOutput(batch.capacity)
            do {
                for message in 0..<batch.messageCount where subscriber.wants(topic: batch.topic(message)) {
                    try subscriber.send(batch.message(message))
                }
                try flush(subscriber)
            } catch {
                drop(subscriber, because: error)
                index -= 1
            }
        }
        return true
    }

    private func watch(_ fd: Int32, token: UInt64, events: UInt32, modify: Bool = false) {
        var event = epoll_event()
        event.events = events
        event.data.u64 = token
        epoll_ctl(epoll, modify ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, fd, &event)
    }

    /// A peer's address for messages: `ip:port`, `[ip6]:port`, or "(local)" for ipc.
    private static func describe(_ storage: sockaddr_storage) -> String {
        withUnsafeBytes(of: storage) { raw in
            var text = [CChar](repeating: 0, count: 64)
            switch Int32(storage.ss_family) {
            case AF_INET:
                var address = raw.load(as: sockaddr_in.self)
                inet_ntop(AF_INET, &address.sin_addr, &text, 64)
                return "\(String(cString: text)):\(UInt16(bigEndian: address.sin_port))"
            case AF_INET6:
                var address = raw.load(as: sockaddr_in6.self)
                inet_ntop(AF_INET6, &address.sin6_addr, &text, 64)
                return "[\(String(cString: text))]:\(UInt16(bigEndian: address.sin6_port))"
            default:
                return "(local)"
            }
        }
    }
}

/// One frame's messages, framed for the wire: the owner writes it, the I/O thread sends it.
final class OutgoingBatch {
    private(set) var bytes = UnsafeMutableRawBufferPointer.allocate(byteCount: 0, alignment: 64)
    private(set) var count = 0
    private(set) var messageCount = 0
    /// Per message: where it starts and ends in `bytes`, and where its first part's body is (the topic).
    private var messages: [(start: Int, end: Int, topicStart: Int, topicCount: Int)] =
        Array(repeating: (0, 0, 0, 0), count: OutgoingBatch.maximumMessages)
    static let maximumMessages = 4

    var capacity: Int { bytes.count }

    deinit { bytes.deallocate() }

    func reserve(_ byteCount: Int) {
        guard bytes.count < byteCount else { return }
        let grown = UnsafeMutableRawBufferPointer.allocate(byteCount: byteCount, alignment: 64)
        if count > 0 { grown.baseAddress!.copyMemory(from: bytes.baseAddress!, byteCount: count) }
        bytes.deallocate()
        bytes = grown
    }

    func clear() {
        count = 0
        messageCount = 0
    }

    func append(_ first: UnsafeRawBufferPointer, _ second: UnsafeRawBufferPointer, _ third: UnsafeRawBufferPointer?) {
        precondition(messageCount < Self.maximumMessages, "at most \(Self.maximumMessages) messages per frame")
        let needed = 3 * ZMTPWire.maximumPartHeaderSize + first.count + second.count + (third?.count ?? 0)
        if count + needed > bytes.count { reserve(count + needed + (count + needed) / 4) }
        let start = count
        put(first, more: true)
        let topicStart = count - first.count
        put(second, more: third != nil)
        if let third { put(third, more: false) }
        messages[messageCount] = (start, count, topicStart, first.count)
        messageCount += 1
    }

    func message(_ index: Int) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(start: bytes.baseAddress! + messages[index].start, count: messages[index].end - messages[index].start)
    }

    func topic(_ index: Int) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(start: bytes.baseAddress! + messages[index].topicStart, count: messages[index].topicCount)
    }

    /// Whether any message goes to `subscriber`.
    func matches(_ subscriber: ZMTPSubscriber) -> Bool {
        for index in 0..<messageCount where subscriber.wants(topic: topic(index)) { return true }
        return false
    }

    private func put(_ part: UnsafeRawBufferPointer, more: Bool) {
        count += ZMTPWire.writePartHeader(size: part.count, more: more, to: bytes.baseAddress! + count)
        if part.count > 0 { (bytes.baseAddress! + count).copyMemory(from: part.baseAddress!, byteCount: part.count) }
        count += part.count
    }
}

/// A `tcp://` or `ipc://` endpoint as a socket address. Handles IPv4 and IPv6 addresses, `localhost`, `*` (every
/// IPv4 interface) and numeric ports; anything else is left to libzmq.
struct BindAddress {
    let family: Int32
    private let storage: sockaddr_storage
    private let length: Int
    let unixPath: String?

    init?(_ endpoint: String) {
        if endpoint.hasPrefix("ipc://") {
            let path = String(endpoint.dropFirst("ipc://".count))
            guard !path.isEmpty, !path.hasPrefix("@"), path.utf8.count < 108 else { return nil }
            family = AF_UNIX
            unixPath = path
            var address = sockaddr_un()
            address.sun_family = sa_family_t(AF_UNIX)
            withUnsafeMutableBytes(of: &address.sun_path) { raw in
                for (offset, byte) in path.utf8.enumerated() { raw[offset] = byte }
            }
            (storage, length) = Self.stored(address)
            return
        }
        guard endpoint.hasPrefix("tcp://") else { return nil }
        let rest = endpoint.dropFirst("tcp://".count)
        guard let colon = rest.lastIndex(of: ":"), let port = UInt16(rest[rest.index(after: colon)...]), port > 0 else { return nil }
        var host = String(rest[..<colon])
        unixPath = nil
        if host.hasPrefix("[") && host.hasSuffix("]") {
            host = String(host.dropFirst().dropLast())
            var address = sockaddr_in6()
            address.sin6_family = sa_family_t(AF_INET6)
            address.sin6_port = port.bigEndian
            guard inet_pton(AF_INET6, host, &address.sin6_addr) == 1 else { return nil }
            family = AF_INET6
            (storage, length) = Self.stored(address)
            return
        }
        if host == "localhost" { host = "127.0.0.1" }
        if host == "*" { host = "0.0.0.0" }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = port.bigEndian
        guard inet_pton(AF_INET, host, &address.sin_addr) == 1 else { return nil }
        family = AF_INET
        (storage, length) = Self.stored(address)
    }

    /// A `sockaddr_in`, `sockaddr_in6` or `sockaddr_un` in generic storage, and its size.
    private static func stored<Address>(_ address: Address) -> (sockaddr_storage, Int) {
        var storage = sockaddr_storage()
        withUnsafeMutableBytes(of: &storage) { $0.storeBytes(of: address, as: Address.self) }
        return (storage, MemoryLayout<Address>.size)
    }

    func withSockaddr<Result>(_ body: (UnsafePointer<sockaddr>, socklen_t) -> Result) -> Result {
        withUnsafeBytes(of: storage) { body($0.baseAddress!.assumingMemoryBound(to: sockaddr.self), socklen_t(length)) }
    }
}
