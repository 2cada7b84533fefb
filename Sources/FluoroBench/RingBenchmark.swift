import FluoroConcurrency
import FluoroCore
import FluoroGraph
import FluoroPublish
import FluoroSources
import FluoroVision
import Foundation
import MallocInterposerSwift
import Synchronization

/// The same hand-off through a queue guarded by a lock, as the baseline.
final class LockedQueue: @unchecked Sendable {
    private let storage = Mutex<[Int]>([])
    init() { storage.withLock { $0.reserveCapacity(1 << 16) } }
    func push(_ value: Int) -> Bool {
        storage.withLock { queue in
            guard queue.count < 1024 else { return false }
            queue.append(value)
            return true
        }
    }
    func pop(into batch: inout [Int]) {
        storage.withLock { queue in
            batch.append(contentsOf: queue)
            queue.removeAll(keepingCapacity: true)
        }
    }
}

func measureRing(items: Int) -> Double {
    let ring = SPSCRing<Int>(minimumCapacity: 1024)
    let producer = Thread {
        var next = 0
        while next < items { if ring.push(next) { next &+= 1 } }
    }
    let start = MonotonicClock.now()
    producer.start()
    var expected = 0, checksum = 0
    while expected < items {
        if let value = ring.pop() {
            checksum &+= value
            expected &+= 1
        }
    }
    let seconds = Double(MonotonicClock.now() - start) / 1e9
    precondition(checksum == items * (items - 1) / 2, "lost or duplicated items")
    return Double(items) / seconds / 1e6
}

func measureLockedQueue(items: Int) -> Double {
    let queue = LockedQueue()
    let producer = Thread {
        var next = 0
        while next < items { if queue.push(next) { next &+= 1 } }
    }
    let start = MonotonicClock.now()
    producer.start()
    var received = 0, checksum = 0
    var batch: [Int] = []
    batch.reserveCapacity(2048)
    while received < items {
        batch.removeAll(keepingCapacity: true)
        queue.pop(into: &batch)
        for value in batch { checksum &+= value }
        received += batch.count
    }
    let seconds = Double(MonotonicClock.now() - start) / 1e9
    precondition(checksum == items * (items - 1) / 2, "lost or duplicated items")
    return Double(items) / seconds / 1e6
}

func ringBenchmark() {
    let items = option("--items", 50_000_000), repeats = option("--repeats", 7)
    print("ring: \(items) slot hand-offs between two threads, \(repeats) repeats (M hand-offs/s)")
    var spsc: [Double] = [], locked: [Double] = []
    for _ in 0..<repeats {
        spsc.append(measureRing(items: items))
        locked.append(measureLockedQueue(items: items / 10))
    }
    let median = percentile(spsc, 50), lockedMedian = percentile(locked, 50)
    print(String(format: "  SPSCRing (Atomic, acquire/release): median %.1f  min %.1f  max %.1f", median, spsc.min()!, spsc.max()!))
    print(
        String(format: "  Mutex-guarded queue (baseline):     median %.1f  min %.1f  max %.1f", lockedMedian, locked.min()!, locked.max()!))
    print(String(format: "  ratio SPSCRing / baseline: %.1fx", median / lockedMedian))
}
