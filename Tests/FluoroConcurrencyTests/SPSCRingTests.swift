import FluoroConcurrency
import Foundation
import Testing

@Suite struct SPSCRingTests {
    @Test func capacityRoundsUpAndFullRingRefusesPush() {
        let ring = SPSCRing<Int>(minimumCapacity: 5)
        #expect(ring.capacity == 8)
        for value in 0..<8 { #expect(ring.push(value)) }
        #expect(!ring.push(99), "a full ring must refuse, not overwrite")
        #expect(ring.peek() == 0 && ring.peek() == 0, "peek does not consume")
        #expect(ring.pop() == 0)
        #expect(ring.push(8))
        var drained: [Int] = []
        while let value = ring.pop() { drained.append(value) }
        #expect(drained == Array(1...8))
        #expect(ring.pop() == nil)
        #expect(!ring.hasElement)
    }

    /// Ten million items between two threads: each arrives exactly once and in order.
    @Test func tenMillionItemsArriveOnceInOrderAcrossThreads() {
        let count = 10_000_000
        let ring = SPSCRing<Int>(minimumCapacity: 1024)
        let producer = Thread {
            var next = 0
            while next < count {
                if ring.push(next) { next += 1 }
            }
        }
        producer.start()
        var expected = 0
        var outOfOrder = 0
        while expected < count {
            if let value = ring.pop() {
                if value != expected { outOfOrder += 1 }
                expected += 1
            }
        }
        #expect(outOfOrder == 0)
        #expect(ring.pop() == nil, "nothing may arrive twice")
    }
}
