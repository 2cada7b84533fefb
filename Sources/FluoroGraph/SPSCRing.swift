import Synchronization

/// A bounded lock-free single-producer/single-consumer ring (after rigtorp/SPSCQueue).
///
/// `head` (written by the consumer) and `tail` (written by the producer) sit on separate cache lines,
/// and each side keeps a private copy of the other's index so that it touches the shared line only
/// when its copy says the ring looks full (producer) or empty (consumer). Ordering is acquire/release
/// and nothing stronger. Exactly one thread may call `push` and exactly one thread `pop`/`hasElement`.
public final class SPSCRing<Element: BitwiseCopyable>: @unchecked Sendable {
    /// Number of elements the ring holds (a power of two).
    public let capacity: Int
    private let mask: Int
    private let storage: UnsafeMutablePointer<Element>

    // Each group below lives on its own cache line(s); the padding keeps the groups 128 bytes apart so
    // neither false sharing nor the adjacent-line prefetcher couples the two threads.
    private let padding0 = CacheLinePadding()
    /// Next index to read; written by the consumer only.
    private let head = Atomic<Int>(0)
    /// The consumer's copy of `tail`.
    private var cachedTail = 0
    private let padding1 = CacheLinePadding()
    /// Next index to write; written by the producer only.
    private let tail = Atomic<Int>(0)
    /// The producer's copy of `head`.
    private var cachedHead = 0
    private let padding2 = CacheLinePadding()

    /// Creates a ring holding at least `minimumCapacity` elements (rounded up to a power of two).
    public init(minimumCapacity: Int) {
        precondition(minimumCapacity > 0, "a ring needs room for at least one element")
        var size = 1
        while size < minimumCapacity { size <<= 1 }
        capacity = size
        mask = size - 1
        storage = .allocate(capacity: size)
    }

    deinit { storage.deallocate() }

    /// Producer: appends `element`; returns false (and changes nothing) when the ring is full.
    @inline(__always)
    public func push(_ element: Element) -> Bool {
        let index = tail.load(ordering: .relaxed)
        if index &- cachedHead == capacity {
            cachedHead = head.load(ordering: .acquiring)
            if index &- cachedHead == capacity { return false }
        }
        (storage + (index & mask)).initialize(to: element)
        tail.store(index &+ 1, ordering: .releasing)
        return true
    }

    /// Consumer: removes and returns the oldest element, or nil when the ring is empty.
    @inline(__always)
    public func pop() -> Element? {
        let index = head.load(ordering: .relaxed)
        if index == cachedTail {
            cachedTail = tail.load(ordering: .acquiring)
            if index == cachedTail { return nil }
        }
        let element = storage[index & mask]
        head.store(index &+ 1, ordering: .releasing)
        return element
    }

    /// Consumer: whether an element is waiting.
    @inline(__always)
    public var hasElement: Bool {
        let index = head.load(ordering: .relaxed)
        if index != cachedTail { return true }
        cachedTail = tail.load(ordering: .acquiring)
        return index != cachedTail
    }
}

/// 128 bytes of nothing, to keep fields written by different threads on different cache lines.
struct CacheLinePadding {
    private let words: (UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64,
                        UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64) =
        (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
}
