import FluoroCore
import Foundation
import Synchronization

/// A small thread of its own, away from the frame path, that answers the messages arriving on one socket in the
/// publisher's context (ZAP requests, socket events) until stopped, then closes that socket — which must happen
/// before the publisher's context can end.
final class SocketServiceThread: @unchecked Sendable {
    private let socket: ZeroMQSocket
    private let handle: ([[UInt8]]) -> Void
    private let stopRequested = Atomic<Bool>(false)
    private let stopped = DispatchSemaphore(value: 0)
    private var isStopped = false

    /// Starts a thread named `name` that calls `handle` with every message `socket` receives.
    init(name: String, socket: ZeroMQSocket, handle: @escaping ([[UInt8]]) -> Void) {
        self.socket = socket
        self.handle = handle
        let thread = Thread { [self] in serve() }
        thread.name = name
        thread.start()
    }

    /// Stops the thread and closes its socket; later calls do nothing.
    func stop() {
        guard !isStopped else { return }
        isStopped = true
        stopRequested.store(true, ordering: .releasing)
        stopped.wait()
    }

    private func serve() {
        while !stopRequested.load(ordering: .acquiring) {
            guard socket.waitReadable(milliseconds: 50), let message = socket.receiveMessageNow() else { continue }
            handle(message)
        }
        socket.close(lingerMilliseconds: 0)
        stopped.signal()
    }
}
