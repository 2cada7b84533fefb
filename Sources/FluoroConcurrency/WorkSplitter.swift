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
    /// of microseconds (more than some passes' pieces).
    static let helperSpin: UInt64 = 200_000
    static let ownerSpin: UInt64 = 2_000_000

    /// The hand-off. `work`, `part`, `range` and the owner's half of `placement` are written before `posted` is
    /// released and read after it is acquired; `finished` releases the helper's writes back to the owner.
    private final class Shared: @unchecked Sendable {
        let posted = Atomic<UInt32>(0)
        let finished = Atomic<UInt32>(0)
        let stopping = Atomic<Bool>(false)
        let start = Doorbell()
        let done = Doorbell()
        unowned(unsafe) var work: (any SplittableWork)?
        var part = 0
        var range = 0..<0
        var placement = HelperPlacement()

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
                placement.followOwner()
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
        shared.placement.recordOwner()
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
/// frames the second core is mostly idle). `run` cuts the range into `pieces` and both threads take pieces in turn
/// until none is left: a helper that wakes late, or whose CPU the host takes away for a while, does fewer of them
/// instead of holding up the frame. The helper is the splitter's own thread, or, for a splitter made without one,
/// whichever thread calls `assist(until:)` meanwhile. Hand-offs go through atomics and futex doorbells: no lock, no
/// allocation. `run` is used by one thread at a time (its stage's).
public final class WorkSplitter: @unchecked Sendable {
    /// The number of parts `run` gives out: part 0 runs on the helper, part 1 on the calling thread.
    public let parts = 2
    /// How many pieces `run` cuts a range into (fewer when it has fewer items).
    public let pieces: Int
    private let shared: Shared
    private let thread: GraphThread?

    /// The job. `work`, `lowerBound`, `count` and the owner's half of `placement` are written before a job's `claim`
    /// is released and read only by a thread that has claimed one of its pieces; `helperFinished` releases the
    /// helper's writes back to the owner.
    private final class Shared: @unchecked Sendable {
        /// The job's number (bits 32–63), its piece count (16–31) and the next piece to take (0–15).
        let claim = Atomic<UInt64>(0)
        /// Pieces of the current job the helper has finished.
        let helperFinished = Atomic<Int>(0)
        let stopping = Atomic<Bool>(false)
        let start = Doorbell()
        let done = Doorbell()
        unowned(unsafe) var work: (any SplittableWork)?
        var lowerBound = 0
        var count = 0
        var placement = HelperPlacement()

        static func job(of claim: UInt64) -> UInt32 { UInt32(truncatingIfNeeded: claim >> 32) }

        /// Takes the next piece of job `job`: its index and the piece count, or nil when it has none left (or a
        /// newer job has started).
        func take(from job: UInt32) -> (piece: Int, of: Int)? {
            var current = claim.load(ordering: .acquiring)
            while true {
                let total = Int((current >> 16) & 0xffff), next = Int(current & 0xffff)
                guard Self.job(of: current) == job, next < total else { return nil }
                let (taken, found) = claim.compareExchange(
                    expected: current, desired: current + 1,
                    successOrdering: .acquiringAndReleasing,
                    failureOrdering: .acquiring)
                if taken { return (next, total) }
                current = found
            }
        }

        /// The items of piece `piece` of `total`.
        func items(ofPiece piece: Int, of total: Int) -> Range<Int> {
            (lowerBound + count * piece / total)..<(lowerBound + count * (piece + 1) / total)
        }

        func serve() {
            var seen: UInt32 = 0
            while !stopping.load(ordering: .acquiring) {
                func ready() -> Bool { Self.job(of: claim.load(ordering: .acquiring)) != seen || stopping.load(ordering: .relaxed) }
                if !spin(for: HelperThread.helperSpin, until: ready) {
                    _ = start.wait(until: ready, timeoutNanoseconds: 1_000_000_000)
                }
                let job = Self.job(of: claim.load(ordering: .acquiring))
                guard job != seen else { continue }
                seen = job
                var joined = false
                while let (piece, total) = take(from: job) {
                    if !joined {
                        joined = true
                        placement.followOwner()
                    }
                    perform(piece, of: total)
                }
                if joined { done.ring() }
            }
        }

        /// Does piece `piece` of `total` as the helper (part 0).
        func perform(_ piece: Int, of total: Int) {
            work?.perform(part: 0, range: items(ofPiece: piece, of: total))
            helperFinished.add(1, ordering: .releasing)
        }
    }

    /// Starts the helper thread, named `name` (visible in `top -H`), or with `name` nil none: then the helper is a
    /// thread that calls `assist(until:)`. `run` cuts ranges into `pieces` (1…65535).
    public init(name: String?, pieces: Int = 16) {
        precondition((1...0xffff).contains(pieces), "a range is cut into 1 to 65535 pieces")
        self.pieces = pieces
        let shared = Shared()
        self.shared = shared
        thread = name.map { GraphThread(name: $0) { shared.serve() } }
    }

    deinit {
        shared.stopping.store(true, ordering: .releasing)
        shared.start.ring()
        thread?.join()
    }

    /// For a splitter without a thread of its own: takes pieces of the jobs that `run` starts on another thread, as
    /// their part 0, until `finished()` holds. Between jobs it stays awake 0.2 ms, then sleeps until the next job
    /// or `wakeAssistant()`: the thread that makes `finished()` true must call that.
    public func assist(until finished: () -> Bool) {
        precondition(thread == nil, "a splitter with a helper thread of its own takes no assistant")
        while !finished() {
            let job = Shared.job(of: shared.claim.load(ordering: .acquiring))
            var took = false
            while let (piece, total) = shared.take(from: job) {
                shared.perform(piece, of: total)
                took = true
            }
            if took { shared.done.ring() }
            // A job's pieces are all taken once `take` returns nil: only a new job or the end is worth waking for.
            func ready() -> Bool { finished() || Shared.job(of: shared.claim.load(ordering: .acquiring)) != job }
            if !spin(for: HelperThread.helperSpin, until: ready) {
                _ = shared.start.wait(until: ready, timeoutNanoseconds: 1_000_000_000)
            }
        }
    }

    /// Wakes a thread sleeping in `assist(until:)` so that it checks its condition again.
    public func wakeAssistant() { shared.start.ring() }

    /// Calls `work.perform` on pieces of `range` that together cover it once, part 0 on the helper thread and part 1
    /// on the calling thread, one piece at a time on each; returns when every piece is done.
    public func run(_ work: some SplittableWork, over range: Range<Int>) {
        let total = min(pieces, range.count)
        guard total > 1 else {
            if total == 1 { work.perform(part: 1, range: range) }
            return
        }
        shared.work = work
        shared.lowerBound = range.lowerBound
        shared.count = range.count
        shared.placement.recordOwner()
        shared.helperFinished.store(0, ordering: .relaxed)
        let job = Shared.job(of: shared.claim.load(ordering: .relaxed)) &+ 1
        shared.claim.store(UInt64(job) << 32 | UInt64(total) << 16, ordering: .releasing)
        shared.start.ring()
        var own = 0
        while let (piece, _) = shared.take(from: job) {
            work.perform(part: 1, range: shared.items(ofPiece: piece, of: total))
            own += 1
        }
        let helperShare = total - own
        func finished() -> Bool { shared.helperFinished.load(ordering: .acquiring) == helperShare }
        if !spin(for: HelperThread.ownerSpin, until: finished) {
            while !shared.done.wait(until: finished, timeoutNanoseconds: 1_000_000_000) {}
        }
        shared.work = nil
    }
}

/// Where a helper thread runs: on another CPU than its owner's (the kernel tends to wake a thread on its waker's
/// CPU, where it would wait until the owner sleeps) and with its owner's scheduling (e.g. the graph's real-time
/// priority). The owner records itself before it posts work; the helper follows before doing it.
private struct HelperPlacement {
    /// The CPU the owner ran on when it posted, and the one the helper keeps off.
    private var ownerCPU: Int32 = -1
    private var avoidedCPU: Int32 = -1
    private var owner = pthread_self()

    /// On the owner's thread, before posting.
    mutating func recordOwner() {
        ownerCPU = fluoro_current_cpu()
        owner = pthread_self()
    }

    /// On the helper's thread, before the work.
    mutating func followOwner() {
        if ownerCPU != avoidedCPU {
            _ = fluoro_keep_thread_off_cpu(ownerCPU)
            avoidedCPU = ownerCPU
        }
        _ = fluoro_follow_thread_scheduling(owner)
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
