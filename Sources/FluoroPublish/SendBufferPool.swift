import CZeroMQ
import FluoroCore
import FluoroConcurrency
import Synchronization

/// Publisher-owned buffers that libzmq sends from without copying (`zmq_msg_init_data`).
///
/// Each frame's messages are written into one free buffer; every message part made from it holds a reference, and
/// libzmq's free callback (on a libzmq I/O thread) drops it once the last subscriber pipe has written or discarded
/// that part. A buffer is free again when its last part is released, so a stalled subscriber holds only the
/// buffers of the frames it still has queued (at most its high-water mark plus the one being written).
/// Allocated once, before the first frame: taking a buffer and releasing it allocate nothing and take no lock.
final class SendBufferPool: @unchecked Sendable {
    /// One buffer and the count of message parts that still point into it.
    final class Buffer: @unchecked Sendable {
        let bytes: UnsafeMutableRawBufferPointer
        /// Parts handed to libzmq and not yet released; 0 = free.
        let references = Atomic<Int>(0)
        /// The pool's bell, rung when this buffer becomes free.
        fileprivate let released: Doorbell

        fileprivate init(byteCount: Int, released: Doorbell) {
            bytes = .allocate(byteCount: byteCount, alignment: 64)
            self.released = released
        }

        deinit { bytes.deallocate() }
    }

    let buffers: [Buffer]
    /// Rung whenever a buffer becomes free (replay waits on it).
    private let released: Doorbell
    private var next = 0

    /// `count` buffers of `byteCount` bytes each.
    init(count: Int, byteCount: Int) {
        let released = Doorbell()
        self.released = released
        buffers = (0..<count).map { _ in Buffer(byteCount: byteCount, released: released) }
    }

    /// A free buffer (searched from the one after the last taken), or nil when every buffer is still in libzmq's
    /// hands. Publishing thread only.
    func takeFree() -> Buffer? {
        for step in 0..<buffers.count {
            let candidate = buffers[(next + step) % buffers.count]
            if candidate.references.load(ordering: .acquiring) == 0 {
                next = (next + step + 1) % buffers.count
                return candidate
            }
        }
        return nil
    }

    /// Waits up to `nanoseconds` for a buffer to be freed; nil when none was.
    func waitForFree(nanoseconds: Int64) -> Buffer? {
        let deadline = MonotonicClock.now() + UInt64(max(nanoseconds, 0))
        var found = takeFree()
        while found == nil, MonotonicClock.now() < deadline {
            let ready = { () -> Bool in
                found = self.takeFree()
                return found != nil
            }
            _ = released.wait(until: ready, timeoutNanoseconds: 50_000_000)
        }
        return found
    }

    /// Makes `message` a zero-copy part over `range` of `buffer`: the buffer stays taken until libzmq releases it.
    func initialise(_ message: inout zmq_msg_t, over range: Range<Int>, of buffer: Buffer) throws {
        buffer.references.add(1, ordering: .relaxed)
        let start = buffer.bytes.baseAddress! + range.lowerBound
        let hint = Unmanaged.passUnretained(buffer).toOpaque()
        guard zmq_msg_init_data(&message, start, range.count, sendBufferReleased, hint) == 0 else {
            buffer.references.subtract(1, ordering: .releasing)
            throw FluoroError.messaging(detail: "zmq_msg_init_data: \(ZeroMQSocket.lastError())")
        }
    }
}

/// libzmq's free callback: one part over a pool buffer was written or dropped by every pipe that held it.
private func sendBufferReleased(_ data: UnsafeMutableRawPointer?, _ hint: UnsafeMutableRawPointer?) {
    guard let hint else { return }
    let buffer = Unmanaged<SendBufferPool.Buffer>.fromOpaque(hint).takeUnretainedValue()
    if buffer.references.subtract(1, ordering: .releasing).newValue == 0 { buffer.released.ring() }
}
