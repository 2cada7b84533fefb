import FluoroConcurrency
import Foundation
import Synchronization
import Testing

@Suite struct TripleBufferTests {
    @Test func nothingNewUntilPublishedAndEachBlockOnce() {
        let buffer = TripleBuffer(capacity: 16)
        #expect(buffer.takeNewest() == nil)
        buffer.writeBuffer.storeBytes(of: 7, as: UInt8.self)
        buffer.publish(count: 1)
        #expect(buffer.takeNewest().map(Array.init) == [7])
        #expect(buffer.takeNewest() == nil, "a block is taken once")
        for value in UInt8(1)...3 {
            buffer.writeBuffer.storeBytes(of: value, as: UInt8.self)
            buffer.publish(count: 1)
        }
        #expect(buffer.takeNewest().map(Array.init) == [3], "only the newest block is kept")
    }

    /// A writer publishes 200,000 blocks, each filled with its number; a reader on another thread never sees a
    /// block being written (every byte of a block agrees with its length) and sees the numbers only increase.
    @Test func theReaderNeverSeesATornOrOlderBlock() {
        let blocks = 200_000
        let buffer = TripleBuffer(capacity: 4096)
        let done = Atomic<Bool>(false)
        let writer = Thread {
            for number in 1...blocks {
                let count = 1024 + number % 3072
                let out = buffer.writeBuffer
                for index in 0..<count { out[index] = UInt8(truncatingIfNeeded: number) }
                out.storeBytes(of: UInt32(number), as: UInt32.self)
                buffer.publish(count: count)
            }
            done.store(true, ordering: .releasing)
        }
        writer.start()
        var last = 0, taken = 0, torn = 0
        while true {
            let finished = done.load(ordering: .acquiring)
            if let block = buffer.takeNewest() {
                let number = Int(block.loadUnaligned(as: UInt32.self))
                if block.count != 1024 + number % 3072 || block.dropFirst(4).contains(where: { $0 != UInt8(truncatingIfNeeded: number) }) {
                    torn += 1
                }
                #expect(number > last)
                last = number
                taken += 1
            } else if finished {
                break
            }
        }
        #expect(torn == 0)
        #expect(last == blocks, "the last block published is taken")
        #expect(taken > 1)
    }
}
