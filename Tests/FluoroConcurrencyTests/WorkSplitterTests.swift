import CFluoroLinux
import FluoroCore
import FluoroConcurrency
import Foundation
import Synchronization
import Testing

/// Linux's SCHED_BATCH (Glibc exports it only with _GNU_SOURCE).
private let schedBatch: Int32 = 3

/// Records which part did each item, and on which thread, CPU and scheduling policy. The two parts write to
/// their own slots of fixed buffers: two threads writing to one Swift array would race on its copy-on-write
/// storage and could lose a write.
private final class Marking: SplittableWork, @unchecked Sendable {
    let marks: UnsafeMutableBufferPointer<Int32>
    let threads = UnsafeMutableBufferPointer<pthread_t?>.allocate(capacity: 2)
    let cpus = UnsafeMutableBufferPointer<Int32>.allocate(capacity: 2)
    let policies = UnsafeMutableBufferPointer<Int32>.allocate(capacity: 2)

    /// How long each call keeps its thread busy (microseconds), so that the helper has time to wake and join.
    let busyMicroseconds: UInt64

    init(count: Int, busyMicroseconds: UInt64 = 0) {
        self.busyMicroseconds = busyMicroseconds
        marks = .allocate(capacity: count)
        marks.initialize(repeating: 0)
        threads.initialize(repeating: nil)
        cpus.initialize(repeating: -1)
        policies.initialize(repeating: -1)
    }

    deinit {
        marks.deallocate()
        threads.deallocate()
        cpus.deallocate()
        policies.deallocate()
    }

    func perform(part: Int, range: Range<Int>) {
        threads[part] = pthread_self()
        cpus[part] = fluoro_current_cpu()
        var policy: Int32 = 0, parameters = sched_param()
        pthread_getschedparam(pthread_self(), &policy, &parameters)
        policies[part] = policy
        for i in range { marks[i] += Int32(part + 1) }
        let until = MonotonicClock.now() + busyMicroseconds * 1000
        while MonotonicClock.now() < until {}
    }
}

@Suite struct WorkSplitterTests {
    @Test func everyItemIsDoneOnceByOneOfTwoThreads() throws {
        let splitter = WorkSplitter(name: "test-helper")
        for count in [0, 1, 2, 7, 9, 1000] {
            for round in 0..<200 {
                // Some rounds keep each piece busy long enough for the helper to take pieces too.
                let work = Marking(count: count, busyMicroseconds: round % 4 == 0 ? 50 : 0)
                work.perform(0..<count, splitter: splitter)
                // Each item once, by the helper (part 0, mark 1) or by this thread (part 1, mark 2).
                #expect((0..<count).allSatisfy { work.marks[$0] == 1 || work.marks[$0] == 2 })
                if let caller = work.threads[1] { #expect(pthread_equal(caller, pthread_self()) != 0) }
                if let helper = work.threads[0] { #expect(pthread_equal(helper, pthread_self()) == 0) }
            }
        }
    }

    /// The range is cut into pieces that both threads take in turn: with slow pieces both do some; when the helper
    /// cannot take part (its CPU is busy, it wakes late), the caller does them all instead of waiting for it.
    @Test func bothThreadsTakePieces() throws {
        let splitter = WorkSplitter(name: "test-helper", pieces: 8)
        var shared = 0
        for _ in 0..<20 {
            let work = Marking(count: 64, busyMicroseconds: 2_000)
            work.perform(0..<64, splitter: splitter)
            let byHelper = (0..<64).filter { work.marks[$0] == 1 }.count
            #expect(byHelper % 8 == 0, "pieces are whole eighths: the helper did \(byHelper) items")
            if byHelper > 0 && byHelper < 64 { shared += 1 }
        }
        #expect(shared >= 10, "both threads took pieces in \(shared) of 20 runs")
    }

    /// The helper keeps off its caller's CPU (the kernel would otherwise often wake it there, where it waits for
    /// the caller's half), and takes its caller's scheduling policy (a real-time stage's helper must be too).
    @Test(.enabled(if: sysconf(Int32(_SC_NPROCESSORS_ONLN)) >= 2, "needs two CPUs"))
    func theHelperRunsBesideItsCallerWithItsScheduling() throws {
        let splitter = WorkSplitter(name: "test-helper")
        var apart = 0
        var joined = 0
        for _ in 0..<200 {
            let work = Marking(count: 64, busyMicroseconds: 1_000)
            work.perform(0..<64, splitter: splitter)
            guard work.cpus[0] >= 0 else { continue }
            joined += 1
            if work.cpus[0] != work.cpus[1] { apart += 1 }
        }
        #expect(joined >= 150, "the helper took part \(joined) times of 200")
        #expect(apart >= joined * 9 / 10, "the parts ran on different CPUs \(apart) times of \(joined)")
        // SCHED_BATCH needs no privilege; the helper follows the caller's policy when it changes.
        var policy: Int32 = 0, original = sched_param()
        pthread_getschedparam(pthread_self(), &policy, &original)
        var batch = sched_param()
        try #require(pthread_setschedparam(pthread_self(), schedBatch, &batch) == 0)
        defer { pthread_setschedparam(pthread_self(), policy, &original) }
        let work = Marking(count: 8, busyMicroseconds: 2_000)
        work.perform(0..<8, splitter: splitter)
        #expect(Array(work.policies) == [schedBatch, schedBatch])
    }

    /// A splitter without a thread of its own: its caller does every piece alone, and a thread that assists takes
    /// pieces of the jobs started meanwhile, until told to stop.
    @Test func anAssistingThreadTakesPiecesOfASplitterWithoutAThread() throws {
        let splitter = WorkSplitter(name: nil, pieces: 8)
        let alone = Marking(count: 64, busyMicroseconds: 100)
        alone.perform(0..<64, splitter: splitter)
        #expect((0..<64).allSatisfy { alone.marks[$0] == 2 })

        let works = (0..<20).map { _ in Marking(count: 64, busyMicroseconds: 1_000) }
        let over = Atomic<Bool>(false)
        let caller = Thread {
            for work in works { work.perform(0..<64, splitter: splitter) }
            over.store(true, ordering: .releasing)
            splitter.wakeAssistant()
        }
        caller.start()
        let started = MonotonicClock.now()
        splitter.assist { over.load(ordering: .acquiring) }
        // Woken when the caller is done, not by the 1 s safety timeout (20 jobs take 80–160 ms).
        #expect(MonotonicClock.now() - started < 900_000_000)
        var assisted = 0
        for work in works {
            #expect((0..<64).allSatisfy { work.marks[$0] == 1 || work.marks[$0] == 2 })
            if (0..<64).contains(where: { work.marks[$0] == 1 }) {
                assisted += 1
                #expect(pthread_equal(try #require(work.threads[0]), pthread_self()) != 0)
            }
        }
        #expect(assisted >= 10, "the assisting thread took pieces of \(assisted) of 20 jobs")
    }

    @Test func withoutASplitterTheCallerDoesEverything() {
        let work = Marking(count: 100)
        work.perform(10..<100, splitter: nil)
        #expect((0..<100).allSatisfy { work.marks[$0] == ($0 < 10 ? 0 : 1) })
    }

    @Test func aSplitterStopsWhenReleased() {
        // Each splitter's helper thread is joined in deinit: making and dropping many must not hang or leak threads.
        for _ in 0..<50 {
            let work = Marking(count: 10)
            work.perform(0..<10, splitter: WorkSplitter(name: "short-lived"))
            #expect((0..<10).allSatisfy { work.marks[$0] == 1 || work.marks[$0] == 2 })
        }
    }
}
