import COpenBLAS

/// Feature planes in channel-major order (`channels` planes of `height` × `width`, row-major), as PyTorch lays out
/// one image of a batch. The memory belongs to whoever made the map.
struct FeatureMap {
    let channels: Int
    let height: Int
    let width: Int
    let data: UnsafeMutablePointer<Float>

    var planeSize: Int { height * width }

    func plane(_ channel: Int) -> UnsafeMutablePointer<Float> { data + channel * planeSize }
}

/// A 2-D convolution as PyTorch's `Conv2d` computes it (kernel 1 or 3, padding (kernel − 1)/2, stride 1 or 2,
/// with bias), optionally followed by ReLU: the input is unfolded into columns (im2col: one row per input channel
/// and kernel tap, one column per output pixel) and multiplied by the weight matrix with `cblas_sgemm`, one band
/// of output rows at a time. A 1×1 convolution multiplies the input planes directly.
final class Convolution {
    let inputChannels: Int
    let outputChannels: Int
    let kernel: Int
    let stride: Int
    let relu: Bool
    /// `outputChannels` × (`inputChannels` · kernel²), PyTorch's (out, in, kh, kw) order.
    private let weights: UnsafeMutableBufferPointer<Float>
    private let bias: UnsafeMutableBufferPointer<Float>

    init(
        _ name: String, from file: NetworkWeights, input: Int, output: Int, kernel: Int = 3, stride: Int = 1,
        relu: Bool = true
    ) throws {
        precondition(kernel == 1 || kernel == 3, "kernels are 1×1 or 3×3")
        precondition(stride == 1 || (stride == 2 && kernel == 3), "stride 2 only for 3×3 kernels")
        inputChannels = input
        outputChannels = output
        self.kernel = kernel
        self.stride = stride
        self.relu = relu
        let w = try file.tensor(name + ".weight", shape: [output, input, kernel, kernel])
        let b = try file.tensor(name + ".bias", shape: [output])
        weights = .allocate(capacity: w.count)
        _ = weights.initialize(from: w)
        bias = .allocate(capacity: b.count)
        _ = bias.initialize(from: b)
    }

    deinit {
        weights.deallocate()
        bias.deallocate()
    }

    /// Rows of the unfolded input: input channels times kernel taps.
    var columnRows: Int { inputChannels * kernel * kernel }

    /// Whether OpenBLAS multiplies small products without packing them (`OpenBLASKernel`).
    private let unpackedSmallProducts = OpenBLASKernel.multipliesSmallProductsUnpacked
    /// Floats of unfolded input per band where OpenBLAS packs its operands.
    private static let packedBandFloats = 256 * 1024
    /// The most multiply-adds OpenBLAS's small-matrix path takes.
    private static let smallProduct = 1_000_000

    /// Output pixels per product, for output rows `outputWidth` wide: bands of output rows are unfolded and
    /// multiplied one at a time, so the columns stay in the cache between im2col, the product and the bias pass.
    /// Where OpenBLAS multiplies small products without packing them, a band is the largest product it takes that
    /// way (10⁶ multiply-adds): no copy of the columns, no separate zeroing of the result
    /// (docs/decisions/im2col-openblas-inference.md). That path mallocs a buffer for a product whose pixel count
    /// leaves 1–8 over a multiple of 16 (with ≥ 32 rows of columns), so it is used only where every band is a
    /// multiple of 16 pixels: rows a multiple of 16 wide. Elsewhere, 1 MB of columns.
    private func bandPixels(outputWidth: Int) -> Int {
        guard unpackedSmallProducts, outputWidth % 16 == 0 else { return max(1, Self.packedBandFloats / columnRows) }
        return max(16, Self.smallProduct / (columnRows * outputChannels) / 16 * 16)
    }

    /// The `columns` buffer `apply` needs for an input `width` pixels wide (nothing for 1×1).
    func columnCapacity(width: Int) -> Int {
        let outputWidth = outputSize(height: 1, width: width).width
        return kernel == 1 ? 0 : columnRows * bandRows(outputWidth: outputWidth) * outputWidth
    }

    private func bandRows(outputWidth: Int) -> Int { max(1, bandPixels(outputWidth: outputWidth) / outputWidth) }

    /// The output size for an input of `height` × `width`.
    func outputSize(height: Int, width: Int) -> (height: Int, width: Int) {
        stride == 1 ? (height, width) : ((height + 1) / 2, (width + 1) / 2)
    }

    /// How many bands `apply` cuts an output of `height` × `width` into: the unit a split pass shares out, so that
    /// every band is computed alike (OpenBLAS's sums depend on where a product's rows start) however it is split.
    func bandCount(height: Int, width: Int) -> Int {
        let (items, perBand) =
            kernel == 1
            ? (height * width, bandPixels(outputWidth: width))
            : (height, bandRows(outputWidth: width))
        return (items + perBand - 1) / perBand
    }

    /// Computes bands `bands` (all when nil; see `bandCount`) of `output` from `input`; `columns` must hold
    /// `columnCapacity(width:)` floats. Calls for disjoint bands may run at the same time with their own `columns`.
    func apply(
        _ input: FeatureMap, into output: FeatureMap, bands: Range<Int>? = nil,
        columns: UnsafeMutablePointer<Float>
    ) {
        precondition(input.channels == inputChannels && output.channels == outputChannels)
        precondition(outputSize(height: input.height, width: input.width) == (output.height, output.width))
        let bands = bands ?? 0..<bandCount(height: output.height, width: output.width)
        let n = output.planeSize, wo = output.width
        if kernel == 1 {
            let band = bandPixels(outputWidth: wo)
            for first in Swift.stride(from: bands.lowerBound * band, to: min(bands.upperBound * band, n), by: band) {
                multiply(
                    UnsafePointer(input.data + first), rowStride: n, count: min(band, n - first),
                    into: output.data + first, outputStride: n)
            }
            return
        }
        let rows = bandRows(outputWidth: wo)
        for firstRow in Swift.stride(
            from: bands.lowerBound * rows, to: min(bands.upperBound * rows, output.height),
            by: rows)
        {
            let lastRow = min(firstRow + rows, output.height), count = (lastRow - firstRow) * wo
            unfold(input, rows: firstRow..<lastRow, outputWidth: wo, into: columns)
            multiply(
                UnsafePointer(columns), rowStride: count, count: count, into: output.data + firstRow * wo,
                outputStride: n)
        }
    }

    /// `count` output pixels of every channel (channel c at `output + c·outputStride`) from the matrix of unfolded
    /// input (`columnRows` rows `rowStride` apart, `count` columns): one GEMM, then bias and ReLU while the band is
    /// in the cache.
    func multiply(
        _ matrix: UnsafePointer<Float>, rowStride: Int, count: Int, into output: UnsafeMutablePointer<Float>,
        outputStride: Int
    ) {
        // Column-major, the pixels are the long side of the product, which suits OpenBLAS's kernels.
        cblas_sgemm(
            CblasColMajor, CblasNoTrans, CblasNoTrans, Int32(count), Int32(outputChannels), Int32(columnRows), 1,
            matrix, Int32(rowStride), weights.baseAddress, Int32(columnRows), 0, output, Int32(outputStride))
        for channel in 0..<outputChannels {
            let plane = output + channel * outputStride, b = bias[channel]
            if relu {
                for i in 0..<count { plane[i] = max(plane[i] + b, 0) }
            } else {
                for i in 0..<count { plane[i] += b }
            }
        }
    }

    /// im2col of output rows `rows` for a 3×3 kernel with padding 1: row (channel·9 + ky·3 + kx), column
    /// ((oy − first row)·outputWidth + ox) holds input (oy·stride + ky − 1, ox·stride + kx − 1), zero outside.
    private func unfold(
        _ input: FeatureMap, rows: Range<Int>, outputWidth wo: Int,
        into columns: UnsafeMutablePointer<Float>
    ) {
        let h = input.height, w = input.width, s = stride
        var target = columns
        for channel in 0..<inputChannels {
            let plane = input.plane(channel)
            for ky in 0..<3 {
                for kx in 0..<3 {
                    for oy in rows {
                        defer { target += wo }
                        let iy = oy * s + ky - 1
                        guard iy >= 0, iy < h else {
                            target.update(repeating: 0, count: wo)
                            continue
                        }
                        let source = plane + iy * w
                        if s == 1 {
                            switch kx {
                            case 0:
                                target[0] = 0
                                (target + 1).update(from: source, count: wo - 1)
                            case 1:
                                target.update(from: source, count: wo)
                            default:
                                target.update(from: source + 1, count: wo - 1)
                                target[wo - 1] = 0
                            }
                        } else {
                            // ix = 2·ox + kx − 1 leaves the row only at ox = 0 (kx = 0) or at the last ox (kx = 2,
                            // even width).
                            let first = kx == 0 ? 1 : 0, last = 2 * (wo - 1) + kx - 1 < w ? wo : wo - 1
                            if first == 1 { target[0] = 0 }
                            if last < wo { target[wo - 1] = 0 }
                            let from = source + (kx - 1)
                            for ox in first..<last { target[ox] = from[2 * ox] }
                        }
                    }
                }
            }
        }
    }
}
