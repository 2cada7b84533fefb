import Synchronization

/// A bounded lock-free single-producer/single-consumer ring (after rigtorp/SPSCQueue).
///
/// `head` (written by the consumer) and `tail` (written by the producer) sit on separate cache lines,
/// and each side keeps a private copy of the other's index (on its own cache line too) so that it reads
/// the shared line only when its copy says the ring looks full (producer) or empty (consumer). Ordering is
/// acquire/release and nothing stronger. Exactly one thread may call `push` and exactly one thread
/// `pop`/`hasElement`.
public final class SPSCRing<Element: BitwiseCopyable>: @unchecked Sendable {
    /// Number of elements the ring holds (a power of two).
    public let capacity: Int
    @usableFromInline let mask: Int
    @usableFromInline let storage: UnsafeMutablePointer<Element>
    /// The consumer's copy of `tail`, and the producer's copy of `head`: plain memory, each written by one
    /// thread only, 128 bytes apart (no exclusivity checks, no false sharing).
    @usableFromInline let cachedTail: UnsafeMutablePointer<Int>
    @usableFromInline let cachedHead: UnsafeMutablePointer<Int>
    private let caches: UnsafeMutableRawPointer

    // 128 bytes of padding around each index keep them off each other's (and the prefetcher's) lines.
    private let padding0 = CacheLinePadding()
    /// Next index to read; written by the consumer only.
    @usableFromInline let head = Atomic<Int>(0)
    private let padding1 = CacheLinePadding()
    /// Next index to write; written by the producer only.
    @usableFromInline let tail = Atomic<Int>(0)
    private let padding2 = CacheLinePadding()

    /// Creates a ring holding at least `minimumCapacity` elements (rounded up to a power of two).
    public init(minimumCapacity: Int) {
        precondition(minimumCapacity > 0, "a ring needs room for at least one element")
        var size = 1
        while size < minimumCapacity { size <<= 1 }
        capacity = size
        mask = size - 1
        storage = .allocate(capacity: size)
        caches = .allocate(byteCount: 256, alignment: 128)
        cachedTail = caches.bindMemory(to: Int.self, capacity: 1)
        cachedHead = (caches + 128).bindMemory(to: Int.self, capacity: 1)
        cachedTail.pointee = 0
        cachedHead.pointee = 0
    }

    deinit {
        storage.deallocate()
        caches.deallocate()
    }

    /// Producer: appends `element`; returns false (and changes nothing) when the ring is full.
    @inlinable @inline(__always)
    public func push(_ element: Element) -> Bool {
        let index = tail.load(ordering: .relaxed)
        if index &- cachedHead.pointee == capacity {
            cachedHead.pointee = head.load(ordering: .acquiring)
            if index &- cachedHead.pointee == capacity { return false }
        }
        (storage + (index & mask)).initialize(to: element)
        tail.store(index &+ 1, ordering: .releasing)
        return true
    }

    /// Consumer: removes and returns the oldest element, or nil when the ring is empty.
    @inlinable @inline(__always)
    public func pop() -> Element? {
        let index = head.load(ordering: .relaxed)
        if index == cachedTail.pointee {
            cachedTail.pointee = tail.load(ordering: .acquiring)
            if index == cachedTail.pointee { return nil }
        }
        let element = storage[index & mask]
        head.store(index &+ 1, ordering: .releasing)
        return element
    }

    /// Consumer: the oldest element without removing it, or nil when the ring is empty.
    @inlinable @inline(__always)
    public func peek() -> Element? {
        hasElement ? storage[head.load(ordering: .relaxed) & mask] : nil
    }

    /// Consumer: whether an element is waiting.
    @inlinable @inline(__always)
    public var hasElement: Bool {
        let index = head.load(ordering: .relaxed)
        if index != cachedTail.pointee { return true }
        cachedTail.pointee = tail.load(ordering: .acquiring)
        return index != cachedTail.pointee
    }
}

/// 128 bytes of nothing, to keep fields written by different threads on different cache lines.
struct CacheLinePadding {
    private let words:
        (
            UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64,
            UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64
        ) =
            (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
}
