import Synchronization

/// Work over a range of items (rows of a frame) that can be split between two threads.
public protocol SplittableWork: AnyObject {
    /// Does the items `range`, as part `part` (0 or 1) of the whole. Two parts run at the same time: they must
    /// write disjoint memory (or per-part scratch, chosen by `part`).
    func perform(part: Int, range: Range<Int>)
}

extension SplittableWork {
    /// Does the items `range`: split over the splitter's two threads, or all on this one when there is none.
    public func perform(_ range: Range<Int>, splitter: WorkSplitter?) {
        if let splitter {
            splitter.run(self, over: range)
        } else {
            perform(part: 0, range: range)
        }
    }
}

/// Splits a data-parallel pass of one stage between the stage's thread and a helper thread, so that a frame's
/// heaviest passes use both cores (the stages of a chain run one after the other for a given frame, so between
/// frames the second core is mostly idle). `run` gives the first half of the range to the helper, does the second
/// half itself and returns when both are done. Hand-offs go through atomics and futex doorbells: no lock, no
/// allocation (the work is an object, not a closure: a closure handed to another thread costs an allocated
/// context on every call). A splitter is used by one thread at a time (its stage's).
public final class WorkSplitter: @unchecked Sendable {
    /// The number of parts `run` splits a range into.
    public let parts = 2
    private let shared: Shared
    private let thread: GraphThread

    /// The hand-off between the caller and the helper. `work` and `range` are written before `posted` is
    /// released and read after it is acquired; `finished` releases the helper's writes back to the caller.
    private final class Shared: @unchecked Sendable {
        let posted = Atomic<UInt32>(0)
        let finished = Atomic<UInt32>(0)
        let stopping = Atomic<Bool>(false)
        let start = Doorbell()
        let done = Doorbell()
        unowned(unsafe) var work: (any SplittableWork)?
        var range = 0..<0

        func serve() {
            var seen: UInt32 = 0
            while !stopping.load(ordering: .acquiring) {
                _ = start.wait(until: { posted.load(ordering: .acquiring) != seen || stopping.load(ordering: .relaxed) },
                               timeoutNanoseconds: 1_000_000_000)
                let ticket = posted.load(ordering: .acquiring)
                guard ticket != seen else { continue }
                seen = ticket
                work?.perform(part: 0, range: range)
                finished.store(ticket, ordering: .releasing)
                done.ring()
            }
        }
    }

    /// Starts the helper thread, named `name` (visible in `top -H`).
    public init(name: String) {
        let shared = Shared()
        self.shared = shared
        thread = GraphThread(name: name) { shared.serve() }
    }

    deinit {
        shared.stopping.store(true, ordering: .releasing)
        shared.start.ring()
        thread.join()
    }

    /// Calls `work.perform` for part 0 (the first half of `range`, on the helper thread) and part 1 (the rest, on
    /// the calling thread); returns when both calls have returned.
    public func run(_ work: some SplittableWork, over range: Range<Int>) {
        let middle = range.lowerBound + range.count / 2
        shared.work = work
        shared.range = range.lowerBound..<middle
        let ticket = shared.posted.wrappingAdd(1, ordering: .releasing).newValue
        shared.start.ring()
        work.perform(part: 1, range: middle..<range.upperBound)
        while !shared.done.wait(until: { shared.finished.load(ordering: .acquiring) == ticket },
                                timeoutNanoseconds: 1_000_000_000) {}
        shared.work = nil
    }
}
