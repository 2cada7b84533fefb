import FluoroCore
import FluoroConcurrency

/// Box-averages frames by an integer factor and takes them into the log (attenuation) domain in one pass:
/// the −log look-up table is indexed by a block's sum (shifted so the table stays within 2¹⁶ entries), so
/// structures add and an exposure change becomes an offset. With a splitter, the rows are shared between two
/// threads. Allocates in `init` only.
final class LogReduction: SplittableWork {
    let geometry: FrameGeometry
    /// Full-resolution pixels per reduced pixel along each axis.
    let factor: Int
    let width: Int
    let height: Int
    private let table: UnsafeMutableBufferPointer<Float>
    private let shift: Int
    /// One row of block sums per part of a split frame.
    private let rowSums: UnsafeMutableBufferPointer<UInt32>
    private let splitter: WorkSplitter?
    /// The frame and the output of the `reduce` in progress.
    private var input: UnsafePointer<UInt16>?
    private var output: UnsafeMutablePointer<Float>?

    /// Reduces by the smallest factor that brings the shorter side to at most `largestSide` pixels.
    init(geometry: FrameGeometry, largestSide: Int, splitter: WorkSplitter? = nil) {
        self.geometry = geometry
        var factor = 1
        while min(geometry.width, geometry.height) / factor > largestSide { factor += 1 }
        self.factor = factor
        width = geometry.width / factor
        height = geometry.height / factor
        let largestSum = factor * factor * Int(geometry.maximumValue)
        shift = max(0, (Int.bitWidth - largestSum.leadingZeroBitCount) - 16)
        table = .allocate(capacity: (largestSum >> shift) + 1)
        for index in 0..<table.count {
            let sum = shift == 0 ? Double(index) : (Double(index) + 0.5) * Double(1 << shift)
            table[index] = Float(-log(max(sum, 0.5) / Double(largestSum)))
        }
        self.splitter = splitter
        rowSums = .allocate(capacity: geometry.width * (splitter?.parts ?? 1))
    }

    deinit {
        table.deallocate()
        rowSums.deallocate()
    }

    /// Writes the reduced −log image of `pixels` (`width` × `height`, row-major) into `output`.
    func reduce(_ pixels: UnsafeBufferPointer<UInt16>, into output: UnsafeMutablePointer<Float>) {
        (input, self.output) = (pixels.baseAddress, output)
        perform(0..<height, splitter: splitter)
        (input, self.output) = (nil, nil)
    }

    /// Reduces the output rows `rows` of the frame `reduce` is working on.
    func perform(part: Int, range rows: Range<Int>) {
        let fullWidth = geometry.width, r = factor, shift = UInt32(shift), limit = UInt32(table.count - 1)
        let source = input!, output = output!, sums = rowSums.baseAddress! + part * fullWidth, table = table.baseAddress!
        for y in rows {
            let first = source + y * r * fullWidth, target = output + y * width
            if r == 2 {
                // The common case (1024² frames to a 512² level): each block's four pixels summed in place.
                let second = first + fullWidth
                for x in 0..<width {
                    let sum =
                        UInt32(first[2 * x]) &+ UInt32(first[2 * x + 1]) &+ UInt32(second[2 * x])
                        &+ UInt32(second[2 * x + 1])
                    target[x] = table[Int(min(sum >> shift, limit))]
                }
                continue
            }
            for x in 0..<fullWidth { sums[x] = UInt32(first[x]) }
            for k in stride(from: 1, to: r, by: 1) {
                let row = first + k * fullWidth
                for x in 0..<fullWidth { sums[x] &+= UInt32(row[x]) }
            }
            for x in 0..<width {
                let block = sums + x &* r
                var sum: UInt32 = 0
                for j in 0..<r { sum &+= block[j] }
                target[x] = table[Int(min(sum >> shift, limit))]
            }
        }
    }
}

#if canImport(Glibc)
    import Glibc
#endif
