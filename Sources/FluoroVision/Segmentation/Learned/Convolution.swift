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
/// and kernel tap, one column per output pixel) and multiplied by the weight matrix in one `cblas_sgemm`.
/// A 1×1 convolution multiplies the input planes directly.
final class Convolution {
    let inputChannels: Int
    let outputChannels: Int
    let kernel: Int
    let stride: Int
    let relu: Bool
    /// `outputChannels` × (`inputChannels` · kernel²), PyTorch's (out, in, kh, kw) order.
    private let weights: UnsafeMutableBufferPointer<Float>
    private let bias: UnsafeMutableBufferPointer<Float>

    init(_ name: String, from file: NetworkWeights, input: Int, output: Int, kernel: Int = 3, stride: Int = 1,
         relu: Bool = true) throws {
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

    /// The output size for an input of `height` × `width`.
    func outputSize(height: Int, width: Int) -> (height: Int, width: Int) {
        stride == 1 ? (height, width) : ((height + 1) / 2, (width + 1) / 2)
    }

    /// Computes `output` from `input`; `columns` must hold `columnRows` × output pixels (unused for 1×1).
    func apply(_ input: FeatureMap, into output: FeatureMap, columns: UnsafeMutablePointer<Float>) {
        precondition(input.channels == inputChannels && output.channels == outputChannels)
        precondition(outputSize(height: input.height, width: input.width) == (output.height, output.width))
        let n = output.planeSize, k = columnRows
        let matrix: UnsafePointer<Float>
        if kernel == 1 {
            matrix = UnsafePointer(input.data)
        } else {
            unfold(input, into: columns, outputHeight: output.height, outputWidth: output.width)
            matrix = UnsafePointer(columns)
        }
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(outputChannels), Int32(n), Int32(k), 1,
                    weights.baseAddress, Int32(k), matrix, Int32(n), 0, output.data, Int32(n))
        for channel in 0..<outputChannels {
            let plane = output.plane(channel), b = bias[channel]
            if relu {
                for i in 0..<n { plane[i] = max(plane[i] + b, 0) }
            } else {
                for i in 0..<n { plane[i] += b }
            }
        }
    }

    /// im2col for a 3×3 kernel with padding 1: row (channel·9 + ky·3 + kx), column (oy·outputWidth + ox) holds
    /// input (oy·stride + ky − 1, ox·stride + kx − 1), zero outside the image.
    private func unfold(_ input: FeatureMap, into columns: UnsafeMutablePointer<Float>, outputHeight: Int,
                        outputWidth: Int) {
        let h = input.height, w = input.width, wo = outputWidth, s = stride
        var row = columns
        for channel in 0..<inputChannels {
            let plane = input.plane(channel)
            for ky in 0..<3 {
                for kx in 0..<3 {
                    for oy in 0..<outputHeight {
                        let target = row + oy * wo
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
                            for ox in 0..<wo {
                                let ix = 2 * ox + kx - 1
                                target[ox] = ix >= 0 && ix < w ? source[ix] : 0
                            }
                        }
                    }
                    row += outputHeight * wo
                }
            }
        }
    }
}
