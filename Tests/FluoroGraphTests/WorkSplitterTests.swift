import FluoroGraph
import Foundation
import Testing

/// Records which part did each item, and on which thread.
private final class Marking: SplittableWork, @unchecked Sendable {
    let marks: UnsafeMutableBufferPointer<Int32>
    var threads: [pthread_t?] = [nil, nil]

    init(count: Int) {
        marks = .allocate(capacity: count)
        marks.initialize(repeating: 0)
    }

    deinit { marks.deallocate() }

    func perform(part: Int, range: Range<Int>) {
        threads[part] = pthread_self()
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
