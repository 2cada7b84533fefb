import CFluoroLinux
import FluoroGraph
import Foundation
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

    init(count: Int) {
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
    }
}

@Suite struct WorkSplitterTests {
    @Test func everyItemIsDoneOnceByOneOfTwoThreads() throws {
        let splitter = WorkSplitter(name: "test-helper")
        for count in [0, 1, 2, 7, 1000] {
            for _ in 0..<200 {
                let work = Marking(count: count)
                work.perform(0..<count, splitter: splitter)
                // The first half went to the helper (part 0, mark 1), the rest to this thread (part 1, mark 2).
                let middle = count / 2
                #expect((0..<count).allSatisfy { work.marks[$0] == ($0 < middle ? 1 : 2) })
                let helper = try #require(work.threads[0]), caller = try #require(work.threads[1])
                #expect(pthread_equal(caller, pthread_self()) != 0)
                #expect(pthread_equal(helper, pthread_self()) == 0)
            }
        }
    }

    /// The helper keeps off its caller's CPU (the kernel would otherwise often wake it there, where it waits for
    /// the caller's half), and takes its caller's scheduling policy (a real-time stage's helper must be too).
    @Test(.enabled(if: sysconf(Int32(_SC_NPROCESSORS_ONLN)) >= 2, "needs two CPUs"))
    func theHelperRunsBesideItsCallerWithItsScheduling() throws {
        let splitter = WorkSplitter(name: "test-helper")
        var apart = 0
        for _ in 0..<200 {
            let work = Marking(count: 64)
            work.perform(0..<64, splitter: splitter)
            if work.cpus[0] != work.cpus[1] { apart += 1 }
        }
        #expect(apart >= 180, "the parts ran on different CPUs \(apart) times of 200")
        // SCHED_BATCH needs no privilege; the helper follows the caller's policy when it changes.
        var policy: Int32 = 0, original = sched_param()
        pthread_getschedparam(pthread_self(), &policy, &original)
        var batch = sched_param()
        try #require(pthread_setschedparam(pthread_self(), schedBatch, &batch) == 0)
        defer { pthread_setschedparam(pthread_self(), policy, &original) }
        let work = Marking(count: 8)
        work.perform(0..<8, splitter: splitter)
        #expect(Array(work.policies) == [schedBatch, schedBatch])
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
            #expect(work.marks[0] == 1 && work.marks[9] == 2)
        }
    }
}
