#if canImport(Glibc)
import Glibc
#endif
import CFluoroLinux
import FluoroCore
import Synchronization

/// Work over a range of items (rows of a frame) that can be split between threads.
public protocol SplittableWork: AnyObject {
    /// Does the items `range`, as part `part` of the whole. Parts may run at the same time: they must write
    /// disjoint memory (or per-part scratch, chosen by `part`).
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

/// Work whose parts call a method of `owner`, for types that have several passes to split or keep their
/// splittable passes private. Made once (not per frame), so that handing it over allocates nothing.
public final class OwnedWork<Owner: AnyObject>: SplittableWork {
    private unowned let owner: Owner
    private let body: (Owner, Range<Int>) -> Void

    /// `body(owner, range)` does the items `range`.
    public init(_ owner: Owner, _ body: @escaping (Owner, Range<Int>) -> Void) {
        self.owner = owner
        self.body = body
    }

    public func perform(part: Int, range: Range<Int>) { body(owner, range) }
}

/// A stage's second thread: does one piece of work at a time for its owner (one thread), who starts it and later
/// checks or waits for its end. It runs with its owner's scheduling (a real-time stage's helper is real-time too)
/// and on another CPU than its owner's. Hand-offs go through atomics and futex doorbells: no lock, no allocation (the
/// work is an object, not a closure: a closure handed to another thread costs an allocated context each time).
public final class HelperThread: @unchecked Sendable {
    private let shared: Shared
    private let thread: GraphThread

    /// How long the helper stays awake after a piece of work, and `wait` waits awake, before sleeping on the
    /// futex (nanoseconds): a stage's passes follow each other within a frame, and a futex wake-up costs tens
    /// of microseconds here (more than some passes' halves).
    static let helperSpin: UInt64 = 200_000
    static let ownerSpin: UInt64 = 2_000_000

    /// The hand-off. `work`, `part`, `range` and `ownerCPU` are written before `posted` is released and read
    /// after it is acquired; `finished` releases the helper's writes back to the owner.
    private final class Shared: @unchecked Sendable {
        let posted = Atomic<UInt32>(0)
        let finished = Atomic<UInt32>(0)
        let stopping = Atomic<Bool>(false)
        let start = Doorbell()
        let done = Doorbell()
        unowned(unsafe) var work: (any SplittableWork)?
        var part = 0
        var range = 0..<0
        /// The CPU the owner ran on when it posted, and the one the helper keeps off.
        var ownerCPU: Int32 = -1
        var avoidedCPU: Int32 = -1
        /// The owner's thread, whose scheduling (e.g. the graph's real-time priority) the helper follows.
        var owner = pthread_self()

        func serve() {
            var seen: UInt32 = 0
            while !stopping.load(ordering: .acquiring) {
                func ready() -> Bool { posted.load(ordering: .acquiring) != seen || stopping.load(ordering: .relaxed) }
                if !spin(for: HelperThread.helperSpin, until: ready) {
                    _ = start.wait(until: ready, timeoutNanoseconds: 1_000_000_000)
                }
                let ticket = posted.load(ordering: .acquiring)
                guard ticket != seen else { continue }
                seen = ticket
                if ownerCPU != avoidedCPU {
                    // The kernel tends to wake a thread on its waker's CPU, where it would wait until the owner
                    // sleeps: keep the helper on another CPU than its owner's.
                    _ = fluoro_keep_thread_off_cpu(ownerCPU)
                    avoidedCPU = ownerCPU
                }
                _ = fluoro_follow_thread_scheduling(owner)
                work?.perform(part: part, range: range)
                finished.store(ticket, ordering: .releasing)
                done.ring()
            }
        }
    }

    /// Starts the thread, named `name` (visible in `top -H`).
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

    /// Whether the last piece of work started has ended (true when none was started).
    public var isIdle: Bool { shared.finished.load(ordering: .acquiring) == shared.posted.load(ordering: .relaxed) }

    /// Starts `work.perform(part: part, range: range)` on the helper and returns at once. The helper must be idle;
    /// `work` must stay alive until it is again.
    public func start(_ work: some SplittableWork, part: Int, range: Range<Int>) {
        precondition(isIdle, "a helper thread does one piece of work at a time")
        shared.work = work
        shared.part = part
        shared.range = range
        shared.ownerCPU = fluoro_current_cpu()
        shared.owner = pthread_self()
        shared.posted.wrappingAdd(1, ordering: .releasing)
        shared.start.ring()
    }

    /// Returns when the work started last has ended.
    public func wait() {
        func idle() -> Bool { isIdle }
        if !spin(for: Self.ownerSpin, until: idle) {
            while !shared.done.wait(until: idle, timeoutNanoseconds: 1_000_000_000) {}
        }
        shared.work = nil
    }
}

/// Splits a data-parallel pass of one stage between the stage's thread and a helper thread, so that a frame's
/// heaviest passes use both cores (the stages of a chain run one after the other for a given frame, so between
/// frames the second core is mostly idle). `run` gives the first half of the range to the helper, does the second
/// half itself and returns when both are done. Used by one thread at a time (its stage's).
public final class WorkSplitter: @unchecked Sendable {
    /// The number of parts `run` splits a range into.
    public let parts = 2
    private let helper: HelperThread

    /// Starts the helper thread, named `name`.
    public init(name: String) {
        helper = HelperThread(name: name)
    }

    /// Calls `work.perform` for part 0 (the first half of `range`, on the helper thread) and part 1 (the rest, on
    /// the calling thread); returns when both calls have returned.
    public func run(_ work: some SplittableWork, over range: Range<Int>) {
        let middle = range.lowerBound + range.count / 2
        helper.start(work, part: 0, range: range.lowerBound..<middle)
        work.perform(part: 1, range: middle..<range.upperBound)
        helper.wait()
    }
}

/// Checks `ready` until it holds or `nanoseconds` have passed, yielding the core between rounds of checks to any
/// other thread that wants it; returns whether `ready` held.
private func spin(for nanoseconds: UInt64, until ready: () -> Bool) -> Bool {
    let deadline = MonotonicClock.now() &+ nanoseconds
    repeat {
        for _ in 0..<64 where ready() { return true }
        sched_yield()
    } while MonotonicClock.now() < deadline
    return ready()
}
