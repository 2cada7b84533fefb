import Synchronization

/// Hands the newest of a stream of byte blocks from one writer thread to one reader thread without locks and
/// without either waiting: the writer fills its own buffer and swaps it into the middle; the reader swaps the
/// middle out when it holds something new. A block the reader did not take in time is replaced by the next one.
///
/// Three buffers of `capacity` bytes are allocated once.
public final class TripleBuffer: @unchecked Sendable {
    public let capacity: Int
    private let buffers: [UnsafeMutableRawBufferPointer]
    private let counts: UnsafeMutableBufferPointer<Int>
    /// The middle buffer's index, with `fresh` set when the writer put it there after the reader's last take.
    private let middle = Atomic<Int>(1)
    private static let fresh = 4
    private var writing = 0
    private var reading = 2

    public init(capacity: Int) {
        self.capacity = capacity
        buffers = (0..<3).map { _ in .allocate(byteCount: max(capacity, 1), alignment: 64) }
        counts = .allocate(capacity: 3)
        counts.initialize(repeating: 0)
    }

    deinit {
        for buffer in buffers { buffer.deallocate() }
        counts.deallocate()
    }

    /// The writer's buffer, to fill before `publish(count:)`.
    public var writeBuffer: UnsafeMutableRawBufferPointer { buffers[writing] }

    /// Makes the first `count` bytes of the write buffer the newest block (writer thread).
    public func publish(count: Int) {
        precondition(count <= capacity)
        counts[writing] = count
        writing = middle.exchange(writing | Self.fresh, ordering: .acquiringAndReleasing) & 3
    }

    /// The newest block if one came since the last call, valid until the next call (reader thread).
    public func takeNewest() -> UnsafeRawBufferPointer? {
        guard middle.load(ordering: .acquiring) & Self.fresh != 0 else { return nil }
        reading = middle.exchange(reading, ordering: .acquiringAndReleasing) & 3
        return UnsafeRawBufferPointer(rebasing: buffers[reading][..<counts[reading]])
    }
}
