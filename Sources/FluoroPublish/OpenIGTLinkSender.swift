import FluoroConcurrency
import FluoroCore
import Foundation
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// Serves OpenIGTLink clients on a thread of its own, away from the frame path: accepts connections on the
/// listening socket (at most `maximumClients`), packs the newest frame's snapshot into its messages
/// (`OpenIGTLinkPacker`) and sends them whole to every client, and reads and discards what clients send. A client that cannot take a frame within `sendTimeoutMilliseconds` is disconnected,
/// as a message cut short would corrupt its stream; one slower than the stream skips frames. The stage wakes the
/// thread through a pipe, which never blocks it.
final class OpenIGTLinkSender: @unchecked Sendable {
    static let maximumClients = 16
    static let sendTimeoutMilliseconds = 500

    /// Connections accepted, frames sent to at least one client, clients disconnected for not reading.
    let accepted = Atomic<Int>(0)
    let framesSent = Atomic<Int>(0)
    let disconnected = Atomic<Int>(0)
    /// Messages the packer could not make (a STRING over 65535 bytes).
    let leftOut = Atomic<Int>(0)

    private let listener: Int32
    private let frames: TripleBuffer
    private let packer: OpenIGTLinkPacker
    private let wake: (read: Int32, write: Int32)
    private let stopRequested = Atomic<Bool>(false)
    private let stopped = DispatchSemaphore(value: 0)
    private var isStopped = false

    /// Starts serving on `listener` (a listening TCP socket, which the sender closes when it stops) the snapshots
    /// published in `frames`, packed by `packer` (which this thread alone uses from then on).
    init(listener: Int32, frames: TripleBuffer, packer: OpenIGTLinkPacker, name: String) throws {
        var ends: [Int32] = [-1, -1]
        guard pipe(&ends) == 0 else {
            throw FluoroError.messaging(detail: "OpenIGTLink: pipe: \(String(cString: strerror(errno)))")
        }
        for end in ends { _ = fcntl(end, F_SETFL, fcntl(end, F_GETFL) | O_NONBLOCK) }
        self.listener = listener
        self.frames = frames
        self.packer = packer
        wake = (ends[0], ends[1])
        let thread = Thread { [self] in serve() }
        thread.name = name
        thread.start()
    }

    /// Tells the thread a new frame is in `frames` (never blocks: a full pipe already means "wake up").
    func ring() {
        var byte: UInt8 = 1
        _ = write(wake.write, &byte, 1)
    }

    /// Sends what is pending, then closes every connection and the listening socket; later calls do nothing.
    func stop() {
        guard !isStopped else { return }
        isStopped = true
        stopRequested.store(true, ordering: .releasing)
        ring()
        stopped.wait()
        close(wake.read)
        close(wake.write)
    }

    private func serve() {
        var clients: [Int32] = []
        var events: [pollfd] = []
        var scratch = [UInt8](repeating: 0, count: 4096)
        while true {
            // The flag first: a frame published before the stop is still sent.
            let stopping = stopRequested.load(ordering: .acquiring)
            if let block = frames.takeNewest(), !clients.isEmpty {
                packer.pack(OpenIGTLinkSnapshot(block)) { message in
                    clients.removeAll { client in
                        guard Self.sendAll(message, to: client) else {
                            close(client)
                            disconnected.add(1, ordering: .relaxed)
                            return true
                        }
                        return false
                    }
                }
                if !clients.isEmpty { framesSent.add(1, ordering: .relaxed) }
                leftOut.store(packer.failed, ordering: .relaxed)
            }
            if stopping { break }
            events.removeAll(keepingCapacity: true)
            events.append(pollfd(fd: wake.read, events: Int16(POLLIN), revents: 0))
            events.append(pollfd(fd: listener, events: Int16(POLLIN), revents: 0))
            for client in clients { events.append(pollfd(fd: client, events: Int16(POLLIN), revents: 0)) }
            guard poll(&events, nfds_t(events.count), 100) > 0 else { continue }
            if events[0].revents != 0 { while read(wake.read, &scratch, scratch.count) > 0 {} }
            if events[1].revents & Int16(POLLIN) != 0, let client = accept() {
                if clients.count < Self.maximumClients {
                    clients.append(client)
                    accepted.add(1, ordering: .relaxed)
                } else {
                    close(client)
                }
            }
            // What clients send (queries, status) is read and dropped; a closed connection is removed.
            for event in events.dropFirst(2) where event.revents != 0 {
                let got = recv(event.fd, &scratch, scratch.count, Int32(MSG_DONTWAIT))
                if got == 0 || (got < 0 && errno != EAGAIN && errno != EINTR) || event.revents & Int16(POLLERR | POLLHUP) != 0 {
                    close(event.fd)
                    clients.removeAll { $0 == event.fd }
                }
            }
        }
        for client in clients { close(client) }
        close(listener)
        stopped.signal()
    }

    /// A new connection, with a send timeout and no Nagle delay, or nil.
    private func accept() -> Int32? {
        let client = Glibc.accept(listener, nil, nil)
        guard client >= 0 else { return nil }
        _ = fcntl(client, F_SETFD, FD_CLOEXEC)
        var timeout = timeval(tv_sec: 0, tv_usec: Self.sendTimeoutMilliseconds * 1000)
        setsockopt(client, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var on: Int32 = 1
        setsockopt(client, Int32(IPPROTO_TCP), TCP_NODELAY, &on, socklen_t(MemoryLayout<Int32>.size))
        return client
    }

    /// Writes all of `block` (one message) to `client`; false when the client is gone or has not taken it all within
    /// the send timeout (one `send` waits at most that long, so a message may take at most twice that).
    private static func sendAll(_ block: UnsafeRawBufferPointer, to client: Int32) -> Bool {
        let deadline = MonotonicClock.now() + UInt64(sendTimeoutMilliseconds) * 1_000_000
        var offset = 0
        while offset < block.count {
            guard MonotonicClock.now() < deadline else { return false }
            let sent = send(client, block.baseAddress! + offset, block.count - offset, Int32(MSG_NOSIGNAL))
            if sent < 0, errno == EINTR { continue }
            guard sent > 0 else { return false }
            offset += sent
        }
        return true
    }
}
